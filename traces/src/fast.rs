//! The fast path of the reader: a node event decoded straight from the line's
//! bytes into one flat struct (no intermediate `serde_json::Value`, no
//! buffering of internally tagged enums), then checked against its type's
//! required and allowed fields. It returns `None` for anything it does not
//! accept whole (client events, escaped tags, a missing or foreign field, a
//! type error); the reader then takes the slow path, which either accepts the
//! line in the same way or names exactly what is wrong with it.

use std::borrow::Cow;

use serde::Deserialize;

use crate::event::*;
use crate::history::Op;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    node: Option<NodeId>,
    seq: Option<u64>,
    time: Option<u64>,
    post: Option<PostState>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
    term: Option<Term>,
    #[serde(default, with = "double_option")]
    vote: Option<Option<NodeId>>,
    snapshot: Option<SnapshotMeta>,
    commit: Option<Index>,
    last_index: Option<Index>,
    last_term: Option<Term>,
    entries: Option<Vec<WireEntry>>,
    entry_count: Option<u64>,
    role: Option<Role>,
    timer: Option<TimerKind>,
    msg: Option<WireMsg<'a>>,
    index: Option<Index>,
    from: Option<Index>,
    client: Option<u64>,
    req: Option<u64>,
    duplicate: Option<bool>,
    lost: Option<u64>,
    via: Option<ReadVia>,
    context: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMsg<'a> {
    id: u64,
    from: NodeId,
    to: NodeId,
    term: Term,
    #[serde(borrow)]
    rpc: &'a str,
    last_index: Option<Index>,
    last_term: Option<Term>,
    granted: Option<bool>,
    prev_index: Option<Index>,
    prev_term: Option<Term>,
    commit: Option<Index>,
    entries: Option<Vec<WireEntry>>,
    entry_count: Option<u64>,
    success: Option<bool>,
    match_index: Option<Index>,
    hint_index: Option<Index>,
    hint_term: Option<Term>,
    offset: Option<u64>,
    done: Option<bool>,
    data: Option<serde_json::Value>,
    transfer: Option<bool>,
    context: Option<u64>,
    commit_term: Option<Term>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    term: Term,
    data: Option<WireData>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireData {
    kind: String,
    client: Option<u64>,
    req: Option<u64>,
    op: Option<WireOp>,
    voters: Option<Vec<NodeId>>,
    learners: Option<Vec<NodeId>>,
    outgoing_voters: Option<Vec<NodeId>>,
    data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireOp {
    f: String,
    key: String,
    value: Option<String>,
    #[serde(default, with = "double_option")]
    from: Option<Option<String>>,
    to: Option<String>,
}

/// Serde helper: absent = `None`, `null` = `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn op(w: WireOp) -> Option<Op> {
    let WireOp {
        f,
        key,
        value,
        from,
        to,
    } = w;
    Some(match (f.as_str(), value, from, to) {
        ("read", None, None, None) => Op::Read { key },
        ("write", Some(value), None, None) => Op::Write { key, value },
        ("cas", None, Some(from), Some(to)) => Op::Cas { key, from, to },
        ("delete", None, None, None) => Op::Delete { key },
        ("append", Some(value), None, None) => Op::Append { key, value },
        _ => return None,
    })
}

fn entry(w: WireEntry) -> Option<Entry> {
    let data = match w.data {
        None => None,
        Some(d) => Some(match (d.kind.as_str(), d.client, d.req, d.op, d.data) {
            _ if d.kind != "config"
                && (d.voters.is_some() || d.learners.is_some() || d.outgoing_voters.is_some()) =>
            {
                return None
            }
            ("noop", None, None, None, None) => EntryData::Noop,
            ("command", Some(client), Some(req), Some(o), None) => EntryData::Command {
                client,
                req,
                op: op(o)?,
            },
            // `"data": null` reads as absent on the slow path too.
            ("config", None, None, None, data) => EntryData::Config {
                voters: d.voters,
                learners: d.learners,
                outgoing_voters: d.outgoing_voters,
                data: data.filter(|v| !v.is_null()),
            },
            ("opaque", None, None, None, data) => EntryData::Opaque {
                data: data.filter(|v| !v.is_null()),
            },
            _ => return None,
        }),
    };
    Some(Entry { term: w.term, data })
}

fn entries(w: Option<Vec<WireEntry>>) -> Option<Option<Vec<Entry>>> {
    match w {
        None => Some(None),
        Some(v) => v
            .into_iter()
            .map(entry)
            .collect::<Option<Vec<_>>>()
            .map(Some),
    }
}

fn rpc(m: WireMsg) -> Option<Message> {
    // Which optional fields each RPC may carry, as a bit mask.
    const LI: u32 = 1;
    const LT: u32 = 2;
    const GR: u32 = 4;
    const PI: u32 = 8;
    const PT: u32 = 16;
    const CO: u32 = 32;
    const EN: u32 = 64;
    const EC: u32 = 128;
    const SU: u32 = 256;
    const MI: u32 = 512;
    const HI: u32 = 1024;
    const HT: u32 = 2048;
    const OF: u32 = 4096;
    const DO: u32 = 8192;
    const DA: u32 = 16384;
    const CX: u32 = 32768;
    const TR: u32 = 65536;
    let present = [
        (m.last_index.is_some(), LI),
        (m.last_term.is_some(), LT),
        (m.granted.is_some(), GR),
        (m.prev_index.is_some(), PI),
        (m.prev_term.is_some(), PT),
        (m.commit.is_some(), CO),
        (m.entries.is_some(), EN),
        (m.entry_count.is_some(), EC),
        (m.success.is_some(), SU),
        (m.match_index.is_some(), MI),
        (m.hint_index.is_some(), HI),
        (m.hint_term.is_some(), HT),
        (m.offset.is_some(), OF),
        (m.done.is_some(), DO),
        (m.data.is_some(), DA),
        (m.context.is_some(), CX),
        (m.transfer.is_some(), TR),
    ]
    .iter()
    .fold(0, |acc, &(p, bit)| if p { acc | bit } else { acc });
    // Every RPC may carry `commit` (feature commit-any-message; its own for
    // append_entries and heartbeat).
    let allowed = CO
        | match m.rpc {
            "request_vote" => LI | LT | TR,
            "request_vote_reply" => GR,
            "append_entries" => PI | PT | EN | EC | CX,
            "append_entries_reply" => SU | MI | HI | HT | CX,
            "install_snapshot" => LI | LT | OF | DO | DA,
            "install_snapshot_reply" => LI,
            "pre_vote" => LI | LT,
            "pre_vote_reply" => GR,
            "heartbeat" => CX,
            "heartbeat_reply" => CX,
            "timeout_now" => 0,
            _ => return None,
        };
    if present & !allowed != 0 {
        return None;
    }
    let own = Rpc::has_own_commit(Some(m.rpc));
    let (commit, commit_term) = (m.commit, m.commit_term);
    let body = match m.rpc {
        "request_vote" => Rpc::RequestVote {
            last_index: m.last_index?,
            last_term: m.last_term?,
            transfer: m.transfer.unwrap_or(false),
        },
        "request_vote_reply" => Rpc::RequestVoteReply {
            granted: m.granted?,
        },
        "append_entries" => Rpc::AppendEntries {
            prev_index: m.prev_index?,
            prev_term: m.prev_term?,
            commit: m.commit?,
            entries: entries(m.entries)?,
            entry_count: m.entry_count,
            context: m.context,
        },
        "append_entries_reply" => Rpc::AppendEntriesReply {
            success: m.success?,
            match_index: m.match_index,
            hint_index: m.hint_index,
            hint_term: m.hint_term,
            context: m.context,
        },
        "install_snapshot" => Rpc::InstallSnapshot {
            last_index: m.last_index?,
            last_term: m.last_term?,
            offset: m.offset.unwrap_or(0),
            done: m.done?,
            data: m.data,
        },
        "install_snapshot_reply" => Rpc::InstallSnapshotReply {
            last_index: m.last_index?,
        },
        "pre_vote" => Rpc::PreVote {
            last_index: m.last_index?,
            last_term: m.last_term?,
        },
        "pre_vote_reply" => Rpc::PreVoteReply {
            granted: m.granted?,
        },
        "heartbeat" => Rpc::Heartbeat {
            commit: m.commit?,
            context: m.context,
        },
        "heartbeat_reply" => Rpc::HeartbeatReply { context: m.context },
        _ => Rpc::TimeoutNow {},
    };
    let msg = Message {
        id: m.id,
        from: m.from,
        to: m.to,
        term: m.term,
        rpc: body,
        commit: if own { None } else { commit },
        commit_term,
    };
    // A message whose commit fields do not go together takes the slow path,
    // which names the field.
    msg.commit_fields_error().is_none().then_some(msg)
}

/// Decodes one line as a node event, or `None` (see the module docs).
pub(crate) fn decode(bytes: &[u8]) -> Option<crate::event::Record> {
    // A `null` the format does not allow is named by the slow path.
    if crate::read::may_have_disallowed_null(bytes) {
        return None;
    }
    let l: Line = serde_json::from_slice(bytes).ok()?;
    // Fields every node event has; the rest must belong to the event's type.
    const REASON: u32 = 1;
    const TERM: u32 = 2;
    const VOTE: u32 = 4;
    const SNAPSHOT: u32 = 8;
    const LAST_INDEX: u32 = 16;
    const LAST_TERM: u32 = 32;
    const ENTRIES: u32 = 64;
    const ENTRY_COUNT: u32 = 128;
    const ROLE: u32 = 256;
    const TIMER: u32 = 512;
    const MSG: u32 = 1024;
    const INDEX: u32 = 2048;
    const FROM: u32 = 4096;
    const CLIENT: u32 = 8192;
    const REQ: u32 = 16384;
    const DUPLICATE: u32 = 32768;
    const LOST: u32 = 65536;
    const COMMIT: u32 = 131072;
    const VIA: u32 = 262144;
    const CONTEXT: u32 = 524288;
    let present = [
        (l.commit.is_some(), COMMIT),
        (l.reason.is_some(), REASON),
        (l.term.is_some(), TERM),
        (l.vote.is_some(), VOTE),
        (l.snapshot.is_some(), SNAPSHOT),
        (l.last_index.is_some(), LAST_INDEX),
        (l.last_term.is_some(), LAST_TERM),
        (l.entries.is_some(), ENTRIES),
        (l.entry_count.is_some(), ENTRY_COUNT),
        (l.role.is_some(), ROLE),
        (l.timer.is_some(), TIMER),
        (l.msg.is_some(), MSG),
        (l.index.is_some(), INDEX),
        (l.from.is_some(), FROM),
        (l.client.is_some(), CLIENT),
        (l.req.is_some(), REQ),
        (l.duplicate.is_some(), DUPLICATE),
        (l.lost.is_some(), LOST),
        (l.via.is_some(), VIA),
        (l.context.is_some(), CONTEXT),
    ]
    .iter()
    .fold(0, |acc, &(p, bit)| if p { acc | bit } else { acc });
    let allowed = match l.ty {
        "init" => REASON | TERM | VOTE | SNAPSHOT | COMMIT | LAST_INDEX | LAST_TERM | ENTRIES,
        "crash" => 0,
        "role" => ROLE | TERM | REASON,
        "timeout" => TIMER,
        "send" | "receive" => MSG,
        "append" => INDEX | ENTRIES | ENTRY_COUNT,
        "truncate" => FROM,
        "persist" => TERM | VOTE | LAST_INDEX,
        "commit" => INDEX,
        "apply" => INDEX | TERM | CLIENT | REQ | DUPLICATE,
        "snapshot" | "install" => INDEX | TERM,
        "gap" => LOST | REASON,
        "read" => INDEX | VIA | CONTEXT | CLIENT | REQ,
        _ => return None,
    };
    if present & !allowed != 0 {
        return None;
    }
    let event = match l.ty {
        "init" => Event::Init(Init {
            reason: match l.reason?.as_ref() {
                "boot" => InitReason::Boot,
                "restart" => InitReason::Restart,
                _ => return None,
            },
            term: l.term?,
            vote: l.vote?,
            snapshot: l.snapshot,
            commit: l.commit,
            last_index: l.last_index?,
            last_term: l.last_term?,
            entries: entries(l.entries)?,
        }),
        "crash" => Event::Crash(Crash {}),
        "role" => Event::Role(RoleChange {
            role: l.role?,
            term: l.term?,
            reason: match l.reason?.as_ref() {
                "election_timeout" => RoleReason::ElectionTimeout,
                "won_election" => RoleReason::WonElection,
                "higher_term" => RoleReason::HigherTerm,
                "leader_discovered" => RoleReason::LeaderDiscovered,
                "lost_election" => RoleReason::LostElection,
                "pre_vote_won" => RoleReason::PreVoteWon,
                "check_quorum" => RoleReason::CheckQuorum,
                "transfer" => RoleReason::Transfer,
                "other" => RoleReason::Other,
                _ => return None,
            },
        }),
        "timeout" => Event::Timeout(Timeout { timer: l.timer? }),
        "send" => Event::Send(MessageEvent { msg: rpc(l.msg?)? }),
        "receive" => Event::Receive(MessageEvent { msg: rpc(l.msg?)? }),
        "append" => Event::Append(Append {
            index: l.index?,
            entries: entries(l.entries)?,
            entry_count: l.entry_count,
        }),
        "truncate" => Event::Truncate(Truncate { from: l.from? }),
        "persist" => Event::Persist(Persist {
            term: l.term?,
            vote: l.vote?,
            last_index: l.last_index?,
        }),
        "commit" => Event::Commit(Commit { index: l.index? }),
        "apply" => Event::Apply(Apply {
            index: l.index?,
            term: l.term?,
            client: l.client,
            req: l.req,
            duplicate: l.duplicate.unwrap_or(false),
        }),
        "snapshot" => Event::Snapshot(SnapshotEvent {
            index: l.index?,
            term: l.term?,
        }),
        "install" => Event::Install(SnapshotEvent {
            index: l.index?,
            term: l.term?,
        }),
        "read" => Event::Read(Read {
            index: l.index?,
            via: l.via?,
            context: l.context,
            client: l.client,
            req: l.req,
        }),
        _ => Event::Gap(Gap {
            lost: l.lost,
            reason: l.reason.map(Cow::into_owned),
        }),
    };
    Some(Record::Node(NodeEvent {
        node: l.node?,
        seq: l.seq?,
        time: l.time,
        event,
        post: l.post,
    }))
}
