//! Message identity: every receive must deliver a message that was sent,
//! with identical fields, and the network may lose, duplicate or reorder
//! messages only as far as the trace's header declares.

use std::collections::BTreeMap;

use raft_trace::{EntryData, Message, Network, NodeId, Rpc, Term};
use rangemap::RangeInclusiveSet;

use super::Violation;

/// A sent message that may still be received: what names it in a report,
/// and a 128-bit digest of every field, to compare with what a receive
/// delivers. Equal messages have equal digests, so a receive of the message
/// sent is never rejected; an altered one is, barring a collision of
/// 128-bit hashes. 48 bytes however large the message, and nothing to
/// allocate or free.
struct Sent {
    to: NodeId,
    term: Term,
    digest: [u64; 2],
    /// Position among the messages `from` sent to `to` (0, 1, 2, ...).
    position: u64,
    /// How many times it has been received.
    received: u32,
    /// The RPC, as an index into [`RPC_NAMES`].
    rpc: u8,
}

/// Every RPC's name, in the order of [`rpc_index`] (as `Rpc::name` spells
/// it; a test holds the two together).
const RPC_NAMES: [&str; 12] = [
    "request_vote",
    "request_vote_reply",
    "append_entries",
    "append_entries_reply",
    "install_snapshot",
    "install_snapshot_reply",
    "pre_vote",
    "pre_vote_reply",
    "heartbeat",
    "heartbeat_reply",
    "timeout_now",
    "propose",
];

fn rpc_index(rpc: &Rpc) -> u8 {
    match rpc {
        Rpc::RequestVote { .. } => 0,
        Rpc::RequestVoteReply { .. } => 1,
        Rpc::AppendEntries { .. } => 2,
        Rpc::AppendEntriesReply { .. } => 3,
        Rpc::InstallSnapshot { .. } => 4,
        Rpc::InstallSnapshotReply { .. } => 5,
        Rpc::PreVote { .. } => 6,
        Rpc::PreVoteReply { .. } => 7,
        Rpc::Heartbeat { .. } => 8,
        Rpc::HeartbeatReply { .. } => 9,
        Rpc::TimeoutNow {} => 10,
        Rpc::Propose { .. } => 11,
    }
}

/// The messages of one run, as seen by the sends and receives replayed so far.
///
/// Memory: where the header does not declare duplication, a message is
/// forgotten once it has been received (receiving it again would be
/// `MessageDuplicated`); only its id stays, in a set of id ranges per
/// sender, which holds one range for a sender whose ids count up. The
/// table then holds the messages in flight (and those lost), about 64
/// bytes each (see [`Sent`]), not every message of the run. With
/// duplication any message may be delivered again at any time, so every
/// message is kept.
pub struct NetworkCheck {
    allowed: Network,
    /// Whether the header declares `send` events. Without them a receive
    /// is the first sight of its message (nothing to match it against),
    /// and a second receive of it is checked as a duplicate.
    observes_send: bool,
    /// The messages that may still be received, by (from, id).
    pending: ahash::AHashMap<(NodeId, u64), Sent>,
    /// Every id each sender has used so far, where the header does not
    /// declare duplication (with it, `pending` holds every message sent).
    used: BTreeMap<NodeId, RangeInclusiveSet<u64>>,
    /// Per (from, to): how many messages were sent, and the position of the
    /// last one received.
    channels: BTreeMap<(NodeId, NodeId), Channel>,
    /// Messages sent and never received so far.
    undelivered: usize,
}

#[derive(Default)]
struct Channel {
    sent: u64,
    last_received: Option<u64>,
}

impl NetworkCheck {
    pub fn new(allowed: Network, observes_send: bool) -> Self {
        NetworkCheck {
            allowed,
            observes_send,
            pending: ahash::AHashMap::new(),
            used: BTreeMap::new(),
            channels: BTreeMap::new(),
            undelivered: 0,
        }
    }

    /// Whether a message with this identity has been sent (used to merge
    /// per-node files: a receive waits until its send has been replayed).
    pub fn was_sent(&self, from: NodeId, id: u64) -> bool {
        if self.allowed.duplication {
            self.pending.contains_key(&(from, id))
        } else {
            self.used.get(&from).is_some_and(|ids| ids.contains(&id))
        }
    }

    /// Records a send.
    pub fn send(&mut self, msg: &Message) -> Result<(), Violation> {
        let key = (msg.from, msg.id);
        if self.was_sent(msg.from, msg.id) {
            return Err(Violation::new(
                "MessageIdentity",
                format!("a new message id from node {}", msg.from),
                format!(
                    "id {} was already used by {}",
                    msg.id,
                    self.pending.get(&key).map_or_else(
                        || format!("message {} from {} (received)", msg.id, msg.from),
                        |prev| prev.describe(key)
                    )
                ),
            ));
        }
        if !self.allowed.duplication {
            self.used
                .entry(msg.from)
                .or_default()
                .insert(msg.id..=msg.id);
        }
        let channel = self.channels.entry((msg.from, msg.to)).or_default();
        let position = channel.sent;
        channel.sent += 1;
        self.undelivered += 1;
        self.pending.insert(
            key,
            Sent {
                to: msg.to,
                term: msg.term,
                digest: digest(msg),
                position,
                received: 0,
                rpc: rpc_index(&msg.rpc),
            },
        );
        Ok(())
    }

    /// Records a receive; it must match a send.
    pub fn receive(&mut self, msg: &Message) -> Result<(), Violation> {
        let key = (msg.from, msg.id);
        if !self.observes_send && !self.was_sent(msg.from, msg.id) {
            self.send(msg)?;
        }
        let Some(sent) = self.pending.get_mut(&key) else {
            if self.was_sent(msg.from, msg.id) {
                // Sent, and forgotten once received: only without duplication.
                return Err(Violation::new(
                    "MessageDuplicated",
                    "each message received at most once (the header does not declare duplication)",
                    format!("{} received a second time", describe(msg)),
                ));
            }
            return Err(Violation::new(
                "MessageNeverSent",
                format!(
                    "a send of message {} by node {} before its receive",
                    msg.id, msg.from
                ),
                format!("no such send: {}", describe(msg)),
            ));
        };
        if sent.digest != digest(msg) {
            return Err(Violation::new(
                "MessageAltered",
                sent.describe(key),
                describe(msg),
            ));
        }
        if sent.received == 0 {
            self.undelivered -= 1;
        }
        sent.received = sent.received.saturating_add(1);
        let position = sent.position;
        if !self.allowed.duplication {
            // Never received again (that would be MessageDuplicated).
            self.pending.remove(&key);
        }
        let channel = self.channels.entry((msg.from, msg.to)).or_default();
        if let Some(last) = channel.last_received {
            let in_order = position > last || (position == last && self.allowed.duplication);
            if !in_order && !self.allowed.reorder {
                return Err(Violation::new(
                    "MessageReordered",
                    format!(
                        "messages from {} to {} delivered in the order sent (the header does not declare reorder)",
                        msg.from, msg.to
                    ),
                    format!(
                        "message #{} of that channel delivered after #{}",
                        position + 1,
                        last + 1
                    ),
                ));
            }
        }
        let skipped = match channel.last_received {
            Some(last) => position > last + 1,
            None => position > 0,
        };
        if skipped && !self.allowed.loss && !self.allowed.reorder {
            return Err(Violation::new(
                "MessageLost",
                format!(
                    "every message from {} to {} delivered (the header does not declare loss)",
                    msg.from, msg.to
                ),
                format!(
                    "message #{} delivered while an earlier one never was",
                    position + 1
                ),
            ));
        }
        channel.last_received = Some(channel.last_received.map_or(position, |l| l.max(position)));
        Ok(())
    }

    /// Messages sent and never received (in flight or lost when the trace ends).
    pub fn undelivered(&self) -> usize {
        self.undelivered
    }

    /// Messages the table holds: those that may still be received.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.pending.len()
    }
}

impl Sent {
    /// As [`describe`] of the message sent.
    fn describe(&self, (from, id): (NodeId, u64)) -> String {
        describe_parts(
            id,
            from,
            self.to,
            self.term,
            RPC_NAMES[usize::from(self.rpc)],
        )
    }
}

/// The fixed keys of the two hashers of [`digest`].
static DIGEST_KEYS: [ahash::RandomState; 2] = [
    ahash::RandomState::with_seeds(1, 2, 3, 4),
    ahash::RandomState::with_seeds(5, 6, 7, 8),
];

/// A 128-bit digest of every field of a message: equal messages have equal
/// digests (every field is hashed, so this must follow `Message`'s fields). Two hashers with different fixed keys, over the fields in
/// order; JSON values (`data`) are hashed through their text, whose object
/// keys serde_json keeps sorted.
fn digest(m: &Message) -> [u64; 2] {
    use std::hash::{BuildHasher, Hash, Hasher};
    DIGEST_KEYS.each_ref().map(|k| {
        let mut h = k.build_hasher();
        // The id and sender are the table's key; hashed all the same.
        (m.id, m.from, m.to, m.term, m.commit, m.commit_term).hash(&mut h);
        hash_rpc(&m.rpc, &mut h);
        h.finish()
    })
}

fn hash_rpc(rpc: &Rpc, h: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    rpc.name().hash(h);
    match rpc {
        Rpc::RequestVote {
            last_index,
            last_term,
            transfer,
        } => (last_index, last_term, transfer).hash(h),
        Rpc::RequestVoteReply { granted } | Rpc::PreVoteReply { granted } => granted.hash(h),
        Rpc::AppendEntries {
            prev_index,
            prev_term,
            commit,
            entries,
            entry_count,
            context,
        } => {
            (prev_index, prev_term, commit, entry_count, context).hash(h);
            entries.is_some().hash(h);
            for e in entries.iter().flatten() {
                e.term.hash(h);
                hash_data(e.data.as_ref(), h);
            }
        }
        Rpc::AppendEntriesReply {
            success,
            match_index,
            hint_index,
            hint_term,
            context,
        } => (success, match_index, hint_index, hint_term, context).hash(h),
        Rpc::InstallSnapshot {
            last_index,
            last_term,
            offset,
            done,
            data,
        } => {
            (last_index, last_term, offset, done).hash(h);
            hash_json(data.as_ref(), h);
        }
        Rpc::InstallSnapshotReply { last_index } => last_index.hash(h),
        Rpc::PreVote {
            last_index,
            last_term,
        } => (last_index, last_term).hash(h),
        Rpc::Heartbeat { commit, context } => (commit, context).hash(h),
        Rpc::HeartbeatReply { context } => context.hash(h),
        Rpc::TimeoutNow {} => {}
        Rpc::Propose { entries } => {
            entries.is_some().hash(h);
            for d in entries.iter().flatten() {
                hash_data(Some(d), h);
            }
        }
    }
}

fn hash_data(d: Option<&EntryData>, h: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    match d {
        None => 0u8.hash(h),
        Some(EntryData::Noop) => 1u8.hash(h),
        Some(EntryData::Command { client, req, op }) => (2u8, client, req, op).hash(h),
        Some(EntryData::Config {
            voters,
            learners,
            outgoing_voters,
            data,
        }) => {
            (3u8, voters, learners, outgoing_voters).hash(h);
            hash_json(data.as_ref(), h);
        }
        Some(EntryData::Opaque { data }) => {
            4u8.hash(h);
            hash_json(data.as_ref(), h);
        }
    }
}

fn hash_json(v: Option<&serde_json::Value>, h: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    v.map(|v| v.to_string()).hash(h);
}

/// A one-line description of a message for reports.
pub fn describe(m: &Message) -> String {
    describe_parts(m.id, m.from, m.to, m.term, m.rpc.name())
}

fn describe_parts(id: u64, from: NodeId, to: NodeId, term: Term, rpc: &str) -> String {
    format!("message {id} from {from} to {to} (term {term}, {rpc})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_trace::Rpc;

    fn vote(id: u64) -> Message {
        Message {
            id,
            from: 1,
            to: 2,
            term: 1,
            rpc: Rpc::RequestVoteReply { granted: true },
            commit: None,
            commit_term: None,
        }
    }

    fn network(duplication: bool) -> Network {
        Network {
            loss: true,
            duplication,
            reorder: true,
        }
    }

    fn rule(r: Result<(), Violation>) -> &'static str {
        r.expect_err("a violation").rule
    }

    #[test]
    fn a_received_message_is_forgotten_but_not_its_identity() {
        let mut n = NetworkCheck::new(network(false), true);
        n.send(&vote(7)).unwrap();
        n.receive(&vote(7)).unwrap();
        assert_eq!(n.held(), 0, "the message is dropped");
        assert_eq!(rule(n.receive(&vote(7))), "MessageDuplicated");
        assert_eq!(rule(n.send(&vote(7))), "MessageIdentity");
        assert_eq!(n.undelivered(), 0);
        let mut altered = vote(8);
        n.send(&vote(8)).unwrap();
        altered.term = 2;
        assert_eq!(rule(n.receive(&altered)), "MessageAltered");
    }

    #[test]
    fn without_duplication_the_table_holds_only_messages_in_flight() {
        let mut n = NetworkCheck::new(network(false), true);
        // Ids used out of order, as a node's sends interleave.
        for base in (0..10_000u64).step_by(4) {
            for id in [base + 2, base + 1, base + 4, base + 3] {
                n.send(&vote(id)).unwrap();
            }
            for id in [base + 1, base + 2, base + 3] {
                n.receive(&vote(id)).unwrap();
            }
        }
        // Every fourth message is still in flight; the ids are one range.
        assert_eq!(n.held(), 2_500);
        assert_eq!(n.used[&1].iter().count(), 1);
        assert_eq!(rule(n.receive(&vote(5_001))), "MessageDuplicated");
        assert_eq!(rule(n.send(&vote(5_001))), "MessageIdentity");
        assert_eq!(rule(n.send(&vote(5_004))), "MessageIdentity");
        assert_eq!(rule(n.receive(&vote(10_001))), "MessageNeverSent");
        n.receive(&vote(5_004)).unwrap();
        assert_eq!(n.undelivered(), 2_499);
    }

    #[test]
    fn the_rpc_names_kept_are_the_rpcs_own() {
        let rpcs = [
            r#"{"rpc":"request_vote","last_index":1,"last_term":1}"#,
            r#"{"rpc":"request_vote_reply","granted":true}"#,
            r#"{"rpc":"append_entries","prev_index":1,"prev_term":1,"commit":1}"#,
            r#"{"rpc":"append_entries_reply","success":true}"#,
            r#"{"rpc":"install_snapshot","last_index":1,"last_term":1,"done":true}"#,
            r#"{"rpc":"install_snapshot_reply","last_index":1}"#,
            r#"{"rpc":"pre_vote","last_index":1,"last_term":1}"#,
            r#"{"rpc":"pre_vote_reply","granted":true}"#,
            r#"{"rpc":"heartbeat","commit":1}"#,
            r#"{"rpc":"heartbeat_reply"}"#,
            r#"{"rpc":"timeout_now"}"#,
            r#"{"rpc":"propose"}"#,
        ];
        assert_eq!(rpcs.len(), RPC_NAMES.len());
        for r in rpcs {
            let rpc: Rpc = serde_json::from_str(r).expect(r);
            assert_eq!(RPC_NAMES[usize::from(rpc_index(&rpc))], rpc.name());
        }
    }

    #[test]
    fn ids_at_the_ends_of_the_range_are_kept_apart() {
        let mut n = NetworkCheck::new(network(false), true);
        for id in [u64::MAX, 0, u64::MAX - 1, 1, u64::MAX - 3] {
            n.send(&vote(id)).unwrap();
            n.receive(&vote(id)).unwrap();
        }
        for id in [u64::MAX, 0, u64::MAX - 1, 1, u64::MAX - 3] {
            assert_eq!(rule(n.receive(&vote(id))), "MessageDuplicated");
            assert_eq!(rule(n.send(&vote(id))), "MessageIdentity");
        }
        assert_eq!(rule(n.receive(&vote(u64::MAX - 2))), "MessageNeverSent");
        assert_eq!(rule(n.receive(&vote(2))), "MessageNeverSent");
        assert_eq!(n.used[&1].iter().count(), 3);
    }

    /// Every leaf of `v`'s JSON changed in turn.
    fn leaf_edits(v: &serde_json::Value) -> Vec<serde_json::Value> {
        use serde_json::Value;
        match v {
            Value::Bool(b) => vec![Value::Bool(!b)],
            Value::Number(n) => vec![(n.as_u64().unwrap_or(0) + 1).into()],
            Value::String(s) => vec![format!("{s}x").into()],
            Value::Null => vec![7.into()],
            Value::Array(a) => (0..a.len())
                .flat_map(|i| {
                    leaf_edits(&a[i]).into_iter().map(move |e| {
                        let mut c = a.clone();
                        c[i] = e;
                        Value::Array(c)
                    })
                })
                .collect(),
            Value::Object(o) => o
                .keys()
                .flat_map(|k| {
                    leaf_edits(&o[k]).into_iter().map(move |e| {
                        let mut c = o.clone();
                        c[k] = e;
                        Value::Object(c)
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn the_digest_covers_every_field() {
        let messages = [
            r#"{"id":9,"from":1,"to":2,"term":3,"rpc":"append_entries","prev_index":4,"prev_term":2,"commit":3,"context":5,"entries":[{"term":2,"data":{"kind":"noop"}},{"term":3,"data":{"kind":"command","client":1,"req":2,"op":{"f":"cas","key":"k","from":"a","to":"b"}}},{"term":3,"data":{"kind":"config","voters":[1,2],"learners":[3],"outgoing_voters":[1],"data":{"x":[1,true]}}},{"term":3,"data":{"kind":"opaque","data":"q"}},{"term":3}]}"#,
            r#"{"id":9,"from":1,"to":2,"term":3,"rpc":"install_snapshot","last_index":4,"last_term":2,"offset":8,"done":true,"data":{"k":"v","n":[1,2]}}"#,
            r#"{"id":9,"from":1,"to":2,"term":3,"rpc":"append_entries_reply","success":false,"hint_index":4,"hint_term":2,"context":1,"commit":3,"commit_term":2}"#,
            r#"{"id":9,"from":1,"to":2,"term":3,"rpc":"request_vote","last_index":4,"last_term":2,"transfer":true}"#,
            r#"{"id":9,"from":1,"to":2,"term":0,"rpc":"propose","entries":[{"kind":"command","client":1,"req":2,"op":{"f":"write","key":"k","value":"v"}}]}"#,
        ];
        let mut edits = 0;
        for text in messages {
            let json: serde_json::Value = serde_json::from_str(text).unwrap();
            let m: Message = serde_json::from_value(json.clone()).expect(text);
            assert_eq!(digest(&m), digest(&m.clone()));
            for e in leaf_edits(&json) {
                let Ok(altered) = serde_json::from_value::<Message>(e.clone()) else {
                    continue;
                };
                if altered != m {
                    edits += 1;
                    assert_ne!(digest(&altered), digest(&m), "{e}");
                }
            }
        }
        assert!(edits > 60, "{edits} edits tried");
    }

    #[test]
    fn with_duplication_a_message_is_kept_for_its_next_delivery() {
        let mut n = NetworkCheck::new(network(true), true);
        n.send(&vote(7)).unwrap();
        n.receive(&vote(7)).unwrap();
        n.receive(&vote(7)).unwrap();
        let mut altered = vote(7);
        altered.term = 2;
        assert_eq!(rule(n.receive(&altered)), "MessageAltered");
    }
}
