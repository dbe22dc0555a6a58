//! Unit tests of the core, one or more per Raft rule, over a tiny in-memory
//! harness that persists every Ready at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::*;
use crate::bugs::Bug;

mod lease;
mod membership;
mod pre_vote;
mod transfer;

fn cfg(id: NodeId, n: u64) -> Config {
    let mut c = Config::new(id, (1..=n).collect());
    c.seed = 7;
    c
}

fn cmd(req: u64) -> Command {
    Command {
        client: 1,
        req,
        op: Op::Write {
            key: "k".into(),
            value: format!("v{req}"),
        },
    }
}

/// Asserts the fast path's rule (Raft thesis §10.2.1) on what
/// `early_messages` released: the leader's AppendEntries, in its own term,
/// and acknowledgements of durable entries only, all in a durable term.
fn assert_early_rule(n: &RaftNode, early: &[Message]) {
    for m in early {
        assert!(m.from == n.id(), "{m:?}");
        assert!(m.term <= n.durable_hs.term, "term not durable: {m:?}");
        match &m.body {
            Body::AppendEntries { .. } => {
                assert!(n.is_leader() && m.term == n.term(), "{m:?}");
            }
            Body::AppendEntriesReply {
                success: true,
                index,
                ..
            } => assert!(*index <= n.durable_last, "not durable: {m:?}"),
            _ => panic!("only appends and durable acknowledgements leave early: {m:?}"),
        }
    }
}

/// Drains a node's Ready (taking the early messages first, then persisting
/// immediately) and returns the messages.
fn drain(n: &mut RaftNode) -> (Vec<Message>, Vec<Ready>) {
    let mut msgs = Vec::new();
    let mut rds = Vec::new();
    while n.has_ready() {
        let mut rd = n.ready();
        let early = n.early_messages(&mut rd);
        assert_early_rule(n, &early);
        msgs.extend(early);
        msgs.extend(n.persisted(&mut rd));
        for e in &rd.committed_entries {
            n.applied(e.index, false);
        }
        rds.push(rd);
    }
    (msgs, rds)
}

struct Cluster {
    nodes: BTreeMap<NodeId, RaftNode>,
    queue: VecDeque<Message>,
    /// Nodes cut off in both directions.
    cut: BTreeSet<NodeId>,
    /// Nodes that still send but receive nothing.
    cut_in: BTreeSet<NodeId>,
    delivered: Vec<Message>,
}

impl Cluster {
    fn new(n: u64, f: impl Fn(&mut Config)) -> Self {
        let nodes = (1..=n)
            .map(|id| {
                let mut c = cfg(id, n);
                f(&mut c);
                (id, RaftNode::new(c, Recovered::default(), None))
            })
            .collect();
        Cluster {
            nodes,
            queue: VecDeque::new(),
            cut: BTreeSet::new(),
            cut_in: BTreeSet::new(),
            delivered: Vec::new(),
        }
    }

    fn node(&mut self, id: NodeId) -> &mut RaftNode {
        self.nodes.get_mut(&id).unwrap()
    }

    /// Delivers messages until the cluster is quiet.
    fn pump(&mut self) {
        self.pump_dropping(|_| false);
    }

    /// Delivers messages until the cluster is quiet, dropping those to or
    /// from a cut node and those `drop` selects; returns how many `drop`
    /// selected.
    fn pump_dropping(&mut self, drop: impl Fn(&Message) -> bool) -> usize {
        let mut dropped = 0;
        for _ in 0..10_000 {
            for n in self.nodes.values_mut() {
                let (msgs, _) = drain(n);
                self.queue.extend(msgs);
            }
            let Some(m) = self.queue.pop_front() else {
                return dropped;
            };
            if self.cut.contains(&m.from) || self.cut.contains(&m.to) || self.cut_in.contains(&m.to)
            {
                continue;
            }
            if drop(&m) {
                dropped += 1;
                continue;
            }
            self.delivered.push(m.clone());
            self.node(m.to).step(m);
        }
        panic!("cluster did not quiesce");
    }

    /// One tick on every node, then delivery until quiet.
    fn tick_all(&mut self) {
        for n in self.nodes.values_mut() {
            n.tick();
        }
        self.pump();
    }

    fn elect(&mut self, id: NodeId) {
        self.node(id).campaign();
        self.pump();
        assert!(self.node(id).is_leader());
    }
}

#[test]
fn election_timeout_is_randomized_in_range_and_deterministic() {
    let mut seen = BTreeSet::new();
    for id in 1..=5 {
        let n = RaftNode::new(cfg(id, 5), Recovered::default(), None);
        assert!((10..20).contains(&n.election_timeout));
        let again = RaftNode::new(cfg(id, 5), Recovered::default(), None);
        assert_eq!(n.election_timeout, again.election_timeout);
        seen.insert(n.election_timeout);
    }
    assert!(seen.len() > 1, "timeouts should differ between nodes");
}

#[test]
fn follower_becomes_candidate_after_timeout() {
    let mut n = RaftNode::new(cfg(1, 3), Recovered::default(), None);
    let t = n.election_timeout;
    for _ in 0..t - 1 {
        n.tick();
    }
    assert_eq!(n.role(), Role::Follower);
    n.tick();
    assert_eq!(n.role(), Role::Candidate);
    assert_eq!(n.term(), 1);
    assert_eq!(n.vote(), Some(1));
    let (msgs, rds) = drain(&mut n);
    assert_eq!(
        rds[0].hard_state.map(|h| (h.term, h.vote)),
        Some((1, Some(1)))
    );
    assert_eq!(msgs.len(), 2);
    assert!(msgs
        .iter()
        .all(|m| matches!(m.body, Body::RequestVote { .. }) && m.term == 1));
}

#[test]
fn leader_is_elected_and_appends_a_noop() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let l = c.node(1);
    assert_eq!(l.term(), 1);
    let e = l.log().entry(1).unwrap();
    assert_eq!((e.term, &e.payload), (1, &Payload::Noop));
    assert_eq!(l.commit_index(), 1);
    assert_eq!(c.node(2).leader(), Some(1));
}

#[test]
fn one_vote_per_term() {
    let mut n = RaftNode::new(cfg(3, 3), Recovered::default(), None);
    let rv = |from, id| Message {
        id,
        from,
        to: 3,
        term: 1,
        body: Body::RequestVote {
            last_index: 0,
            last_term: 0,
            transfer: false,
        },
    };
    n.step(rv(1, 1));
    n.step(rv(2, 1));
    n.step(rv(1, 2));
    let (msgs, _) = drain(&mut n);
    let grants: Vec<(NodeId, bool)> = msgs
        .iter()
        .map(|m| match m.body {
            Body::RequestVoteReply { granted } => (m.to, granted),
            _ => panic!("unexpected {m:?}"),
        })
        .collect();
    assert_eq!(grants, vec![(1, true), (2, false), (1, true)]);
}

#[test]
fn election_restriction_denies_stale_logs() {
    let rec = Recovered {
        hard_state: HardState {
            term: 2,
            vote: None,
            commit: 0,
        },
        entries: vec![Entry {
            index: 1,
            term: 2,
            payload: Payload::Noop,
        }],
        ..Recovered::default()
    };
    let mut n = RaftNode::new(cfg(3, 3), rec, None);
    let rv = |from, last_index, last_term| Message {
        id: 1,
        from,
        to: 3,
        term: 3,
        body: Body::RequestVote {
            last_index,
            last_term,
            transfer: false,
        },
    };
    n.step(rv(1, 5, 1)); // longer but older term: denied
    n.step(rv(2, 1, 2)); // as up to date: granted
    let (msgs, _) = drain(&mut n);
    let g: Vec<bool> = msgs
        .iter()
        .map(|m| matches!(m.body, Body::RequestVoteReply { granted: true }))
        .collect();
    assert_eq!(g, vec![false, true]);
}

#[test]
fn messages_are_released_only_after_persistence() {
    let mut n = RaftNode::new(cfg(3, 3), Recovered::default(), None);
    n.step(Message {
        id: 1,
        from: 1,
        to: 3,
        term: 4,
        body: Body::RequestVote {
            last_index: 0,
            last_term: 0,
            transfer: false,
        },
    });
    let mut rd = n.ready();
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 4,
            vote: Some(1),
            commit: 0
        })
    );
    assert_eq!(rd.pending_messages(), 1);
    let msgs = n.persisted(&mut rd);
    assert_eq!(msgs.len(), 1);
    assert!(n.persisted(&mut rd).is_empty(), "released once");
}

#[test]
fn planted_bug_keeps_vote_off_the_disk() {
    let mut c = cfg(3, 3);
    c.bugs = Bugs::NONE.with(Bug::VolatileVote);
    let mut n = RaftNode::new(c, Recovered::default(), None);
    n.step(Message {
        id: 1,
        from: 1,
        to: 3,
        term: 4,
        body: Body::RequestVote {
            last_index: 0,
            last_term: 0,
            transfer: false,
        },
    });
    let rd = n.ready();
    assert_eq!(rd.hard_state.unwrap().vote, None);
}

#[test]
fn step_down_on_higher_term() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let l = c.node(1);
    l.step(Message {
        id: 99,
        from: 2,
        to: 1,
        term: 5,
        body: Body::RequestVoteReply { granted: false },
    });
    assert_eq!(l.role(), Role::Follower);
    assert_eq!(l.term(), 5);
    assert_eq!(l.vote(), None);
}

#[test]
fn stale_term_append_is_rejected_with_our_term() {
    let mut n = RaftNode::new(
        cfg(2, 3),
        Recovered {
            hard_state: HardState {
                term: 5,
                vote: None,
                commit: 0,
            },
            ..Default::default()
        },
        None,
    );
    n.step(Message {
        id: 1,
        from: 1,
        to: 2,
        term: 3,
        body: Body::AppendEntries {
            prev_index: 0,
            prev_term: 0,
            commit: 0,
            entries: vec![],
            read_ctx: 0,
        },
    });
    let (msgs, _) = drain(&mut n);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].term, 5);
    assert!(matches!(
        msgs[0].body,
        Body::AppendEntriesReply { success: false, .. }
    ));
    assert_eq!(n.leader(), None);
}

#[test]
fn proposal_on_follower_redirects_to_leader() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(2);
    assert_eq!(
        c.node(1).propose(cmd(1)),
        Err(NotLeader { leader: Some(2) })
    );
    assert!(c.node(2).propose(cmd(1)).is_ok());
}

#[test]
fn proposals_commit_and_apply_everywhere() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    for r in 1..=10 {
        c.node(1).propose(cmd(r)).unwrap();
    }
    c.pump();
    // One more round so followers learn the final commit index.
    c.node(1).tick();
    c.node(1).tick();
    c.pump();
    for id in 1..=3 {
        assert_eq!(c.node(id).commit_index(), 11, "node {id}");
        assert_eq!(c.node(id).log().applied, 11);
    }
}

#[test]
fn proposals_between_readies_are_batched_in_one_message() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    for r in 1..=20 {
        c.node(1).propose(cmd(r)).unwrap();
    }
    let (msgs, _) = drain(c.node(1));
    let appends: Vec<usize> = msgs
        .iter()
        .filter_map(|m| match &m.body {
            Body::AppendEntries { entries, .. } if !entries.is_empty() => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(appends, vec![20, 20]);
}

#[test]
fn pipelining_is_bounded_by_the_inflight_window() {
    let mut c = Cluster::new(3, |c| {
        c.max_batch = 1;
        c.max_inflight = 3;
    });
    c.elect(1);
    for r in 1..=10 {
        c.node(1).propose(cmd(r)).unwrap();
    }
    let (msgs, _) = drain(c.node(1));
    let to2 = msgs
        .iter()
        .filter(|m| {
            m.to == 2
                && matches!(&m.body, Body::AppendEntries { entries, .. } if entries.len() == 1)
        })
        .count();
    assert_eq!(to2, 3, "three one-entry messages in flight, no more");
}

#[test]
fn commit_only_through_an_entry_of_the_current_term() {
    // Node 1 holds an old-term entry that node 2 also holds; node 1 becomes
    // leader of a later term. A quorum holds index 1, but it must not be
    // committed until the no-op of the new term is replicated.
    for bug in [false, true] {
        let old = vec![Entry {
            index: 1,
            term: 1,
            payload: Payload::Command(Arc::new(cmd(1))),
        }];
        let rec = |entries: Vec<Entry>| Recovered {
            hard_state: HardState {
                term: 2,
                vote: None,
                commit: 0,
            },
            entries,
            ..Default::default()
        };
        let mut c1 = cfg(1, 3);
        if bug {
            c1.bugs = Bugs::NONE.with(Bug::CommitOldTerm);
        }
        let mut l = RaftNode::new(c1, rec(old.clone()), None);
        l.campaign();
        l.step(Message {
            id: 1,
            from: 2,
            to: 1,
            term: 3,
            body: Body::RequestVoteReply { granted: true },
        });
        assert!(l.is_leader());
        drain(&mut l);
        // Node 2 acknowledges index 1 only (the no-op is not there yet).
        l.step(Message {
            id: 2,
            from: 2,
            to: 1,
            term: 3,
            body: Body::AppendEntriesReply {
                success: true,
                index: 1,
                hint_term: 0,
                reject_prev: 0,
                read_ctx: 0,
            },
        });
        assert_eq!(l.commit_index(), if bug { 1 } else { 0 }, "bug={bug}");
        l.step(Message {
            id: 3,
            from: 2,
            to: 1,
            term: 3,
            body: Body::AppendEntriesReply {
                success: true,
                index: 2,
                hint_term: 0,
                reject_prev: 0,
                read_ctx: 0,
            },
        });
        assert_eq!(l.commit_index(), 2);
    }
}

#[test]
fn conflicting_follower_converges_with_few_round_trips() {
    let mut c = Cluster::new(3, |_| {});
    // Node 3 has a long suffix of a stale term.
    let stale: Vec<Entry> = (1..=30)
        .map(|i| Entry {
            index: i,
            term: 1,
            payload: Payload::Noop,
        })
        .collect();
    let rec = Recovered {
        hard_state: HardState {
            term: 1,
            vote: None,
            commit: 0,
        },
        entries: stale,
        ..Default::default()
    };
    let n3 = RaftNode::new(cfg(3, 3), rec, None);
    c.nodes.insert(3, n3);
    // Nodes 1 and 2 are in term 1 too, so the new leader's term is 2.
    for id in [1, 2] {
        let r = Recovered {
            hard_state: HardState {
                term: 1,
                vote: None,
                commit: 0,
            },
            ..Default::default()
        };
        c.nodes.insert(id, RaftNode::new(cfg(id, 3), r, None));
    }
    c.cut.insert(3);
    c.node(1).campaign();
    c.pump();
    for _ in 0..2 {
        // Terms 2, 3: leader 1 with a log of its own.
        c.node(1).propose(cmd(1)).unwrap();
        c.pump();
    }
    c.cut.clear();
    c.delivered.clear();
    c.node(1).tick();
    c.node(1).tick();
    c.pump();
    let rejections = c
        .delivered
        .iter()
        .filter(|m| {
            m.from == 3 && matches!(m.body, Body::AppendEntriesReply { success: false, .. })
        })
        .count();
    assert!(rejections <= 3, "{rejections} rejections");
    let (a, b) = (c.node(1).log().clone(), c.node(3).log().clone());
    assert_eq!(a.last_index(), b.last_index());
    for i in 1..=a.last_index() {
        assert_eq!(a.entry(i), b.entry(i));
    }
}

#[test]
fn read_index_waits_for_a_quorum_heartbeat() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1).read_index(42).unwrap();
    let mut rd = c.node(1).ready();
    assert!(rd.read_states.is_empty(), "not before confirmation");
    let msgs = c.node(1).persisted(&mut rd);
    assert!(msgs
        .iter()
        .all(|m| matches!(m.body, Body::AppendEntries { read_ctx, .. } if read_ctx > 0)));
    c.queue.extend(msgs);
    c.pump();
    // The confirmation came back (pump drained the read state).
    assert_eq!(c.node(1).pending_reads(), 0);
    // Cut off from the others, a leader cannot confirm reads.
    c.cut.insert(2);
    c.cut.insert(3);
    c.node(1).read_index(43).unwrap();
    c.pump();
    assert_eq!(c.node(1).pending_reads(), 1);
    assert!(c.node(1).read_states.is_empty());
    // A follower redirects.
    assert_eq!(c.node(2).read_index(1), Err(NotLeader { leader: Some(1) }));
}

#[test]
fn read_index_serves_at_commit_index_after_confirmation() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1).read_index(7).unwrap();
    let mut rd = c.node(1).ready();
    let msgs = c.node(1).persisted(&mut rd);
    for m in msgs {
        let to = m.to;
        c.node(to).step(m);
        let (replies, _) = drain(c.node(to));
        for r in replies {
            c.node(1).step(r);
        }
    }
    let rd = c.node(1).ready();
    assert_eq!(rd.read_states, vec![ReadState { ctx: 7, index: 1 }]);
}

#[test]
fn reads_started_before_one_ready_share_one_heartbeat_round() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    for ctx in 1..=5 {
        c.node(1).read_index(ctx).unwrap();
    }
    let mut rd = c.node(1).ready();
    let msgs = c.node(1).persisted(&mut rd);
    let rounds: Vec<u64> = msgs
        .iter()
        .filter_map(|m| match m.body {
            Body::AppendEntries { read_ctx, .. } if read_ctx > 0 => Some(read_ctx),
            _ => None,
        })
        .collect();
    // One heartbeat per follower, all of one round.
    assert_eq!(rounds.len(), 2, "{msgs:?}");
    assert_eq!(rounds[0], rounds[1]);
    c.queue.extend(msgs);
    c.pump();
    assert_eq!(c.node(1).pending_reads(), 0);
    // A read started after that round was sent needs a round of its own:
    // acknowledgements of the earlier one say nothing about it.
    c.node(1).read_index(6).unwrap();
    let mut rd = c.node(1).ready();
    let later: Vec<u64> = c
        .node(1)
        .persisted(&mut rd)
        .iter()
        .filter_map(|m| match m.body {
            Body::AppendEntries { read_ctx, .. } if read_ctx > 0 => Some(read_ctx),
            _ => None,
        })
        .collect();
    assert_eq!(later.len(), 2);
    assert!(later.iter().all(|&r| r > rounds[0]));
}

#[test]
fn planted_stale_read_skips_confirmation() {
    let mut c = Cluster::new(3, |c| c.bugs = Bugs::NONE.with(Bug::StaleRead));
    c.elect(1);
    c.cut.insert(2);
    c.cut.insert(3);
    c.node(1).read_index(9).unwrap();
    assert_eq!(c.node(1).ready().read_states.len(), 1);
}

#[test]
fn lagging_follower_gets_a_chunked_snapshot() {
    let mut c = Cluster::new(3, |c| c.snapshot_chunk = 4);
    c.elect(1);
    c.cut.insert(3);
    for r in 1..=10 {
        c.node(1).propose(cmd(r)).unwrap();
        c.pump();
    }
    let applied = c.node(1).log().applied;
    assert_eq!(applied, 11);
    let data = Arc::new(b"state machine bytes".to_vec());
    c.node(1).compact(applied, data.clone());
    assert_eq!(c.node(1).log().snapshot_meta().index, 11);
    c.cut.clear();
    c.delivered.clear();
    for _ in 0..4 {
        c.node(1).tick();
        c.pump();
    }
    let chunks = c
        .delivered
        .iter()
        .filter(|m| m.to == 3 && matches!(m.body, Body::InstallSnapshot { .. }))
        .count();
    assert!(chunks >= 5, "{chunks} chunks");
    let n3 = c.node(3);
    assert_eq!(n3.log().snapshot_meta().index, 11);
    assert_eq!(n3.snapshot.as_ref().unwrap().data, data);
    assert_eq!(n3.commit_index(), 11);
}

/// The snapshot of [`chunk`]: index 5, term 1.
const SNAPSHOT_5: SnapshotMeta = SnapshotMeta { index: 5, term: 1 };

/// Node 1's chunk at `offset` of [`SNAPSHOT_5`] (voters 1-3) to node 2.
fn chunk(offset: u64, data: &[u8], done: bool) -> Message {
    Message {
        id: offset + 1,
        from: 1,
        to: 2,
        term: 1,
        body: Body::InstallSnapshot {
            meta: SNAPSHOT_5,
            config: Membership::of_voters([1, 2, 3]),
            offset,
            chunk: data.to_vec(),
            done,
        },
    }
}

#[test]
fn a_snapshot_installs_on_its_last_chunk_once_every_byte_is_held() {
    let mut n = RaftNode::new(cfg(2, 3), Recovered::default(), None);
    let meta = SNAPSHOT_5;
    // The last chunk overtakes the others: nothing to install yet.
    n.step(chunk(4, b"ef", true));
    n.step(chunk(2, b"cd", false));
    assert_eq!(n.log().snapshot_meta().index, 0);
    n.step(chunk(0, b"ab", false));
    // Every byte is held, but only the last chunk installs (Figure 13):
    // the leader's resend brings it again; the chunks held need not come back.
    assert_eq!(n.log().snapshot_meta().index, 0);
    n.step(chunk(4, b"ef", true));
    assert_eq!(n.log().snapshot_meta(), meta);
    let (_, rds) = drain(&mut n);
    let snap = rds.iter().find_map(|r| r.snapshot.clone()).unwrap();
    assert_eq!(&snap.data[..], b"abcdef");
}

/// A host may step messages between `ready` and `persisted` (the
/// simulator does). Here a follower's write of entry 1 of term 1 is in
/// flight when the leader of term 2 replaces that entry: the
/// acknowledgement of the term-1 entry, queued with the write, must not
/// leave, since what it acknowledges never became durable (simulator seed
/// 340 with `--membership --leader-transfer`, EntriesPersistedBeforeAck).
#[test]
fn an_acknowledgement_of_entries_truncated_during_the_write_is_dropped() {
    let mut n = RaftNode::new(cfg(2, 3), Recovered::default(), None);
    n.step(first_noop(1, 1, 1));
    let mut rd = n.ready();
    assert_eq!(rd.entries.len(), 1);
    n.step(first_noop(2, 3, 2));
    let acks = |msgs: &[Message]| -> Vec<(NodeId, Term, Index)> {
        msgs.iter()
            .filter_map(|m| match m.body {
                Body::AppendEntriesReply {
                    success: true,
                    index,
                    ..
                } => Some((m.to, m.term, index)),
                _ => None,
            })
            .collect()
    };
    let sent = n.persisted(&mut rd);
    assert_eq!(acks(&sent), vec![], "{sent:?}");
    // The entry of term 2 is acknowledged once it is durable.
    let (sent, _) = drain(&mut n);
    assert_eq!(acks(&sent), vec![(3, 2, 1)]);
}

#[test]
fn a_snapshot_with_a_gap_is_not_installed() {
    let mut n = RaftNode::new(cfg(2, 3), Recovered::default(), None);
    let meta = SNAPSHOT_5;
    n.step(chunk(0, b"ab", false));
    n.step(chunk(4, b"ef", true)); // offset 2 is missing
    assert_eq!(n.log().snapshot_meta().index, 0);
    // A chunk from the wire claiming an absurd offset neither panics nor
    // allocates for it.
    n.step(chunk(u64::MAX - 1, b"zz", true));
    assert_eq!(n.log().snapshot_meta().index, 0);
    // Chunks of another size from an earlier send fill the gap where they overlap.
    n.step(chunk(1, b"bcd", false));
    n.step(chunk(4, b"ef", true));
    assert_eq!(n.log().snapshot_meta(), meta);
    let (_, rds) = drain(&mut n);
    let snap = rds.iter().find_map(|r| r.snapshot.clone()).unwrap();
    assert_eq!(&snap.data[..], b"abcdef");
}

#[test]
fn tracing_emits_events_and_none_without_sink() {
    use crate::trace::SharedTrace;
    let t = SharedTrace::default();
    let mut n = RaftNode::new(cfg(1, 1), Recovered::default(), Some(Box::new(t.clone())));
    for _ in 0..20 {
        n.tick();
    }
    n.propose(cmd(1)).unwrap();
    drain(&mut n);
    let kinds: Vec<&str> =
        t.0.lock()
            .unwrap()
            .records
            .iter()
            .map(|r| r.event_type().as_str())
            .collect();
    for k in [
        "init", "timeout", "role", "append", "persist", "commit", "apply",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
}

#[test]
fn heartbeats_keep_followers_from_campaigning() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.delivered.clear();
    for _ in 0..100 {
        for id in 1..=3 {
            c.node(id).tick();
        }
        c.pump();
    }
    assert!(c.node(1).is_leader());
    assert_eq!(c.node(2).term(), 1);
    assert_eq!(c.node(3).term(), 1);
    let heartbeats = c
        .delivered
        .iter()
        .filter(|m| {
            m.from == 1
                && m.to == 2
                && matches!(&m.body, Body::AppendEntries { entries, .. } if entries.is_empty())
        })
        .count();
    // heartbeat_ticks = 2: one heartbeat every two ticks.
    assert!((45..=55).contains(&heartbeats), "{heartbeats} heartbeats");
}

#[test]
fn lost_pipeline_falls_back_to_probing() {
    let mut c = Cluster::new(3, |c| c.max_batch = 1);
    c.elect(1);
    for r in 1..=4 {
        c.node(1).propose(cmd(r)).unwrap();
    }
    // Everything sent now to node 3 is lost.
    let (msgs, _) = drain(c.node(1));
    c.queue.extend(msgs.into_iter().filter(|m| m.to != 3));
    c.pump();
    assert_eq!(c.node(3).last_index(), 1);
    for _ in 0..6 {
        c.node(1).tick();
        c.pump();
    }
    assert_eq!(c.node(3).last_index(), 5, "resent after the stall");
}

#[test]
fn acks_for_entries_truncated_by_a_newer_leader_are_dropped() {
    let mut n = RaftNode::new(cfg(3, 3), Recovered::default(), None);
    let ent = |index, term| Entry {
        index,
        term,
        payload: Payload::Noop,
    };
    let ae = |id, from, term, entries: Vec<Entry>| Message {
        id,
        from,
        to: 3,
        term,
        body: Body::AppendEntries {
            prev_index: 0,
            prev_term: 0,
            commit: 0,
            entries,
            read_ctx: 0,
        },
    };
    // Leader 1 of term 1 sends two entries; before they are persisted,
    // leader 2 of term 2 overwrites them.
    n.step(ae(1, 1, 1, vec![ent(1, 1), ent(2, 1)]));
    n.step(ae(1, 2, 2, vec![ent(1, 2)]));
    let (msgs, _) = drain(&mut n);
    let acks: Vec<(NodeId, Index)> = msgs
        .iter()
        .filter_map(|m| match m.body {
            Body::AppendEntriesReply {
                success: true,
                index,
                ..
            } => Some((m.to, index)),
            _ => None,
        })
        .collect();
    assert_eq!(acks, vec![(2, 1)], "the ack to leader 1 was never durable");
}

/// Thesis §10.2.1: a leader's AppendEntries may leave before its own write,
/// but the leader counts itself only for entries durable on its own disk, so
/// with one follower's acknowledgement nothing commits until the leader's
/// write is done.
#[test]
fn early_appends_and_the_leader_counts_itself_only_when_durable() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let committed = c.node(1).commit_index();
    let index = c.node(1).propose(cmd(1)).unwrap();
    let mut rd = c.node(1).ready();
    assert!(rd.entries.iter().any(|e| e.index == index));
    assert_eq!(rd.early_messages(), 2);
    let early = c.node(1).early_messages(&mut rd);
    assert_early_rule(c.node(1), &early);
    assert_eq!(early.len(), 2, "one AppendEntries per follower");
    assert!(
        c.node(1).early_messages(&mut rd).is_empty(),
        "released once"
    );
    // Only follower 2 gets the entry; it persists and acknowledges.
    let to2 = early.into_iter().find(|m| m.to == 2).unwrap();
    c.node(2).step(to2);
    let (acks, _) = drain(c.node(2));
    assert!(acks
        .iter()
        .any(|m| matches!(m.body, Body::AppendEntriesReply { success: true, .. })));
    for a in acks {
        c.node(1).step(a);
    }
    // The follower's durable copy alone is no quorum: the leader's is not.
    assert_eq!(c.node(1).commit_index(), committed);
    assert!(c.node(1).persisted(&mut rd).is_empty(), "nothing held back");
    assert_eq!(c.node(1).commit_index(), index);
}

/// Entry i is durable on the leader, and the leader's write of entry i+1 is
/// running when both followers' acknowledgements of entry i arrive: entry i
/// is committed and may be applied before that write ends. Entry i+1 is not
/// applicable even once acknowledged by both, as it is not durable here.
/// Only a leader's acknowledgements of its own term may be stepped then.
#[test]
fn acknowledgements_during_the_leaders_write_commit_and_apply_meanwhile() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    let index = c.node(1).propose(cmd(1)).unwrap();
    let mut rd = c.node(1).ready();
    let early = c.node(1).early_messages(&mut rd);
    c.node(1).persisted(&mut rd);
    let next = c.node(1).propose(cmd(2)).unwrap();
    let mut rd = c.node(1).ready();
    let mut early = early;
    early.extend(c.node(1).early_messages(&mut rd));
    let mut acks = Vec::new();
    for m in early {
        let to = m.to;
        c.node(to).step(m);
        acks.extend(drain(c.node(to)).0);
    }
    assert!(
        c.node(1).take_applicable().0.is_empty(),
        "nothing committed yet"
    );
    let term = c.node(1).term();
    let vote = request_vote(2, 1, term + 1);
    assert!(
        !c.node(1).may_step_during_write(&vote),
        "a term change waits"
    );
    for a in acks {
        assert!(c.node(1).may_step_during_write(&a), "{a:?}");
        c.node(1).step(a);
    }
    assert_eq!(c.node(1).commit_index(), next, "two followers are a quorum");
    let (applicable, _) = c.node(1).take_applicable();
    assert_eq!(
        applicable.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![index]
    );
    assert!(c.node(1).take_applicable().0.is_empty(), "handed out once");
    c.node(1).persisted(&mut rd);
    let rd = c.node(1).ready();
    assert!(
        rd.committed_entries.iter().all(|e| e.index != index),
        "not handed out again by the next Ready"
    );
    // A follower steps no acknowledgement during its write.
    let ack = Message {
        id: 9,
        from: 1,
        to: 2,
        term,
        body: Body::AppendEntriesReply {
            success: true,
            index,
            hint_term: 0,
            reject_prev: 0,
            read_ctx: 0,
        },
    };
    assert!(!c.node(2).may_step_during_write(&ack));
}

/// An AppendEntries to node 2 carrying the first entry of the log, a no-op
/// of `term`.
fn first_noop(id: u64, from: NodeId, term: Term) -> Message {
    Message {
        id,
        from,
        to: 2,
        term,
        body: Body::AppendEntries {
            prev_index: 0,
            prev_term: 0,
            commit: 0,
            entries: vec![Entry {
                index: 1,
                term,
                payload: Payload::Noop,
            }],
            read_ctx: 0,
        },
    }
}

fn request_vote(from: NodeId, to: NodeId, term: Term) -> Message {
    Message {
        id: 1,
        from,
        to,
        term,
        body: Body::RequestVote {
            last_index: 0,
            last_term: 0,
            transfer: false,
        },
    }
}

/// Votes, vote requests, pre-votes, a follower's acknowledgements and a
/// stale-term refusal are never early: they wait for `persisted`.
#[test]
fn votes_requests_and_acks_are_never_early() {
    // A candidate's requests (its vote for itself).
    let mut n = RaftNode::new(cfg(1, 3), Recovered::default(), None);
    n.campaign();
    let mut rd = n.ready();
    assert!(rd.hard_state.is_some());
    assert!(n.early_messages(&mut rd).is_empty());
    let msgs = n.persisted(&mut rd);
    assert_eq!(msgs.len(), 2);
    assert!(msgs
        .iter()
        .all(|m| matches!(m.body, Body::RequestVote { .. })));

    // A pre-candidate's requests and a pre-vote reply.
    let mut p = RaftNode::new(
        {
            let mut c = cfg(1, 3);
            c.pre_vote = true;
            c
        },
        Recovered::default(),
        None,
    );
    for _ in 0..40 {
        p.tick();
    }
    let mut rd = p.ready();
    assert!(p.early_messages(&mut rd).is_empty());
    assert!(p
        .persisted(&mut rd)
        .iter()
        .any(|m| matches!(m.body, Body::PreVote { .. })));

    // A granted vote.
    let mut n = RaftNode::new(cfg(2, 3), Recovered::default(), None);
    n.step(request_vote(1, 2, 1));
    let mut rd = n.ready();
    assert!(n.early_messages(&mut rd).is_empty());
    assert_eq!(rd.pending_messages(), 1);
    let msgs = n.persisted(&mut rd);
    assert!(matches!(
        msgs[0].body,
        Body::RequestVoteReply { granted: true }
    ));

    // A follower's acknowledgement of entries.
    n.step(first_noop(2, 1, 1));
    let mut rd = n.ready();
    assert!(n.early_messages(&mut rd).is_empty());
    let msgs = n.persisted(&mut rd);
    assert!(matches!(
        msgs[0].body,
        Body::AppendEntriesReply { success: true, .. }
    ));

    // A refusal to a stale candidate, carrying our (durable) term.
    n.step(request_vote(3, 2, 0));
    let mut rd = n.ready();
    assert!(n.early_messages(&mut rd).is_empty());
    assert_eq!(n.persisted(&mut rd).len(), 1);
}

/// A leader that steps down while its appends wait keeps nothing early
/// for its new term: the vote it then grants waits for the write.
#[test]
fn a_deposed_leader_sends_nothing_early() {
    let mut c = Cluster::new(3, |_| {});
    c.elect(1);
    c.node(1).propose(cmd(1)).unwrap();
    c.node(1).step(request_vote(2, 1, 5));
    assert!(!c.node(1).is_leader());
    let mut rd = c.node(1).ready();
    assert!(c.node(1).early_messages(&mut rd).is_empty());
    assert_eq!(rd.hard_state.map(|h| h.term), Some(5));
}

/// The planted bug lets a vote leave before its write.
#[test]
fn planted_early_vote_releases_votes_early() {
    let mut c = cfg(2, 3);
    c.bugs = Bugs::NONE.with(Bug::EarlyVote);
    let mut n = RaftNode::new(c, Recovered::default(), None);
    n.step(request_vote(1, 2, 1));
    let mut rd = n.ready();
    let early = n.early_messages(&mut rd);
    assert!(matches!(
        early[0].body,
        Body::RequestVoteReply { granted: true }
    ));
}

#[test]
fn a_lost_snapshot_is_sent_again_after_the_retry_interval() {
    let mut c = Cluster::new(3, |c| c.snapshot_retry_ticks = 6);
    c.elect(1);
    c.cut.insert(3);
    for r in 1..=4 {
        c.node(1).propose(cmd(r)).unwrap();
        c.pump();
    }
    let applied = c.node(1).log().applied;
    c.node(1)
        .compact(applied, Arc::new(b"state machine".to_vec()));
    c.cut.clear();
    // Node 3 refuses the next append, the leader sends it the snapshot, and
    // the snapshot is lost.
    let snapshot_to_3 = |m: &Message| m.to == 3 && matches!(m.body, Body::InstallSnapshot { .. });
    let mut lost = 0;
    for _ in 0..6 {
        lost += c.pump_dropping(snapshot_to_3);
        if lost > 0 {
            break;
        }
        c.node(1).tick();
    }
    assert!(lost > 0, "{:?}", c.node(1).progress[&3]);
    assert_eq!(c.node(3).log().snapshot_meta().index, 0);
    for _ in 0..8 {
        c.node(1).tick();
        c.pump();
    }
    assert_eq!(c.node(3).log().snapshot_meta().index, applied, "sent again");
    assert_eq!(c.node(3).commit_index(), applied);
}
