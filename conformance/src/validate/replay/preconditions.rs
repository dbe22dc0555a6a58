//! What the model's rules assume of their inputs, checked before the replay
//! calls them.
//!
//! The rule functions (`raft_model::rules`) are written for states the model
//! itself reaches, and index, `expect` and add accordingly. A trace is not
//! bound by that, so the replay checks each assumption first. A broken one
//! is either a step the specification forbids (an invalid trace, named by
//! the rule) or something the trace does not show that the rule needs (the
//! run is inconclusive, with the reason).
//!
//! | precondition | what relies on it | verdict |
//! |---|---|---|
//! | the terms and indexes an event gives the replay are at most [`MAX_NUMBER`] | `term + 1` in `elections::timeout`; `index + 1` in `elections::become_leader`, `replication::handle_append_entries(_reply)`, `snapshots::handle_install_snapshot(_reply)`; the replay's own index arithmetic | inconclusive |
//! | an append without entry data counts at most [`MAX_ENTRY_COUNT`] entries | the replay builds one model entry per counted entry | inconclusive |
//! | a message's sender and receiver are nodes `1..=n` | a leader's `next_index` / `match_index`, indexed by node id - 1 (`replication::append_entries`, `handle_append_entries_reply`, `handle_install_snapshot_reply`) | inconclusive |
//! | a node's commit index is at or above its snapshot when a rule may commit | `replication::commit_to`'s `expect("committed entries are in the log")`, reached from `handle_append_entries` and `handle_append_entries_reply` | inconclusive |
//! | a leader's AppendEntries starts within its log (`prev_index` at most its last index) | `replication::append_entries`'s `expect("nextIndex - 1 is in the log or its snapshot")` | invalid: `ReplicationRule` |
//! | a truncation starts at index 1 or above | the replay's `from - 1` | invalid: the step's rule |
//!
//! Other assumptions hold by construction: only `elections::become_leader`
//! makes a leader, and it sizes the leader's per-node vectors for every
//! node; `snapshots::take_snapshot` compacts only up to an entry the log
//! holds; an InstallSnapshot is matched only when the leader has a snapshot.

use raft_model::server::Server;
use raft_model::types::{Msg, Role};
use raft_trace as rt;

use super::frontier::Cand;
use super::report::ReplayError;
use crate::validate::Violation;

/// The largest term or index the replay takes from a trace: the rules add
/// to them (a new term, the index after the last), and nothing may
/// overflow.
pub const MAX_NUMBER: u64 = 1 << 62;

/// The most entries one `append` may count without listing them: the
/// replay (like the model) holds every entry of a leader's log.
pub const MAX_ENTRY_COUNT: u64 = 1 << 16;

/// Checks what one event gives the replay before any rule sees it: its
/// numbers are in range, its message names nodes of the cluster, its
/// truncation starts inside the log. `servers` is the cluster size, `rule`
/// the rule of the step in progress (a truncation is one of its effects).
pub(super) fn event(
    e: &rt::NodeEvent,
    servers: u64,
    rule: &'static str,
) -> Result<(), ReplayError> {
    let inconclusive = |why: String| {
        Err(ReplayError::Inconclusive(format!(
            "node {}: {why} at seq {}",
            e.node, e.seq
        )))
    };
    for (field, value) in numbers(&e.event) {
        let Some(value) = value else { continue };
        if value > MAX_NUMBER {
            return inconclusive(format!(
                "{field} {value} is beyond the terms and indexes the model's rules compute \
                 with (at most 2^62)"
            ));
        }
    }
    match &e.event {
        rt::Event::Append(a) if a.entries.is_none() => {
            if let Some(n) = a.entry_count.filter(|&n| n > MAX_ENTRY_COUNT) {
                return inconclusive(format!(
                    "an append of {n} entries without their data is more than the replay \
                     holds in one event (at most {MAX_ENTRY_COUNT})"
                ));
            }
        }
        rt::Event::Send(m) | rt::Event::Receive(m) => {
            for (field, id) in [("msg.from", m.msg.from), ("msg.to", m.msg.to)] {
                if !(1..=servers).contains(&id) {
                    return inconclusive(format!(
                        "{field} {id} is not a node of the model's cluster 1..={servers}"
                    ));
                }
            }
        }
        rt::Event::Truncate(t) if t.from == 0 => {
            return Err(ReplayError::Violation(Violation::new(
                rule,
                "a truncation from index 1 or above (log indexes start at 1)",
                "truncate from index 0",
            )));
        }
        _ => {}
    }
    Ok(())
}

/// The terms and indexes of an event that the replay computes with (it
/// only compares the rest: entry terms, last terms, post states), at most
/// three per event, without allocating.
fn numbers(e: &rt::Event) -> [(&'static str, Option<u64>); 3] {
    const NONE: (&str, Option<u64>) = ("", None);
    let one = |field, value| [(field, Some(value)), NONE, NONE];
    match e {
        rt::Event::Init(i) => [
            ("init.term", Some(i.term)),
            ("init.last_index", Some(i.last_index)),
            ("init.snapshot.index", i.snapshot.as_ref().map(|s| s.index)),
        ],
        rt::Event::Send(m) | rt::Event::Receive(m) => {
            let term = ("msg.term", Some(m.msg.term));
            match &m.msg.rpc {
                rt::Rpc::RequestVote { last_index, .. }
                | rt::Rpc::PreVote { last_index, .. }
                | rt::Rpc::InstallSnapshot { last_index, .. }
                | rt::Rpc::InstallSnapshotReply { last_index } => {
                    [term, ("msg.last_index", Some(*last_index)), NONE]
                }
                rt::Rpc::RequestVoteReply { .. }
                | rt::Rpc::PreVoteReply { .. }
                | rt::Rpc::HeartbeatReply { .. }
                | rt::Rpc::TimeoutNow {}
                | rt::Rpc::Propose { .. } => [term, NONE, NONE],
                rt::Rpc::Heartbeat { commit, .. } => [term, ("msg.commit", Some(*commit)), NONE],
                rt::Rpc::AppendEntries {
                    prev_index, commit, ..
                } => [
                    term,
                    ("msg.prev_index", Some(*prev_index)),
                    ("msg.commit", Some(*commit)),
                ],
                rt::Rpc::AppendEntriesReply {
                    match_index,
                    hint_index,
                    ..
                } => [
                    term,
                    ("msg.match_index", *match_index),
                    ("msg.hint_index", *hint_index),
                ],
            }
        }
        rt::Event::Append(a) => one("append.index", a.index),
        rt::Event::Truncate(t) => one("truncate.from", t.from),
        rt::Event::Commit(c) => one("commit.index", c.index),
        rt::Event::Apply(a) => one("apply.index", a.index),
        rt::Event::Snapshot(s) => one("snapshot.index", s.index),
        rt::Event::Install(s) => one("install.index", s.index),
        _ => [NONE; 3],
    }
}

/// Before a received message's rule: a rule that commits
/// (`replication::commit_to`) applies the entries after the commit index,
/// which must still be in the log, not compacted. The replay can leave a
/// candidate's snapshot above its commit index when the node snapshots
/// entries it applied that the trace never showed committed (commits not
/// observed, or a commit index kept across a restart).
pub(super) fn receive(
    frontier: &[Cand],
    msg: &Msg,
    rule: &'static str,
    e: &rt::NodeEvent,
) -> Result<(), ReplayError> {
    for c in frontier {
        let s = &c.s;
        if s.commit >= s.log.snapshot_index || !may_commit(s, msg) {
            continue;
        }
        return Err(ReplayError::Inconclusive(format!(
            "node {}: {rule} cannot be applied at seq {}: the node's snapshot ends at index \
             {}, above the commit index {} the trace shows (it compacted entries it was never \
             seen to commit; log commit events, see traces/SCHEMA.md)",
            e.node, e.seq, s.log.snapshot_index, s.commit
        )));
    }
    Ok(())
}

/// Whether the rule for `msg` may commit entries on `s`: an AppendEntries
/// of the current or a newer term whose leader commit index and entries
/// reach past the commit index (Figure 2, AppendEntries RPC, step 5), or a
/// successful reply to the leader of its term (Figure 2, Leaders).
fn may_commit(s: &Server, msg: &Msg) -> bool {
    match msg {
        Msg::AppendEntries {
            term,
            prev_index,
            entries,
            commit,
            ..
        } => *term >= s.term && *commit > s.commit && prev_index + entries.len() as u64 > s.commit,
        Msg::AppendEntriesReply {
            term,
            success: true,
            ..
        } => s.role == Role::Leader && *term == s.term,
        // A heartbeat commits up to its commit index (feature heartbeat).
        Msg::Heartbeat { term, commit, .. } => *term >= s.term && *commit > s.commit,
        _ => false,
    }
}

/// Before a leader's replication message is rebuilt with
/// `replication::append_entries`, whose nextIndex - 1 must be in the log or
/// its snapshot: an AppendEntries of the leader's term that starts past the
/// end of its log is one no leader sends (Figure 2, Leaders: "send
/// AppendEntries RPC with log entries starting at nextIndex", and
/// nextIndex is at most last log index + 1).
pub(super) fn replication_start(
    s: &Server,
    m: &rt::Message,
    prev_index: u64,
) -> Result<(), Violation> {
    if prev_index <= s.log.last_index() || m.term != s.term {
        return Ok(());
    }
    Err(Violation::new(
        "ReplicationRule",
        format!(
            "an AppendEntries whose prev_index is at most {}, the leader's last log index \
             (Figure 2, Leaders: entries are sent from nextIndex, at most last log index + 1)",
            s.log.last_index()
        ),
        format!("prev_index {prev_index}"),
    ))
}

#[cfg(test)]
mod tests {
    //! Preconditions that the trace reader already guarantees (a message
    //! names nodes of the header) or that the invariant checks meet first
    //! (an append's entry count), checked on the replay alone.

    use raft_trace as rt;

    use super::super::{Replay, ReplayError, DEFAULT_BUDGET};

    /// Node 1 of nodes 1 and 2 wins the election of term 1; its next seq
    /// is 6.
    const LEADER: &str = r#"{"type":"header","format":"raft-trace/1","implementation":"test","nodes":[1,2],"observes":{"events":["init","role","timeout","send","receive","append"],"state":[],"entries":"full"},"network":{"loss":true,"duplication":false,"reorder":true}}
{"type":"init","node":1,"seq":1,"reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0}
{"type":"timeout","node":1,"seq":2,"timer":"election"}
{"type":"role","node":1,"seq":3,"role":"candidate","term":1,"reason":"election_timeout"}
{"type":"receive","node":1,"seq":4,"msg":{"id":1,"from":2,"to":1,"term":1,"rpc":"request_vote_reply","granted":true}}
{"type":"role","node":1,"seq":5,"role":"leader","term":1,"reason":"won_election"}
"#;

    /// Replays `LEADER` followed by `more` (a valid line, then changed by
    /// `change`) on the replay alone.
    fn replay(more: &str, change: impl FnOnce(&mut rt::NodeEvent)) -> Result<(), ReplayError> {
        let (header, records) = rt::read_all(format!("{LEADER}{more}\n").as_bytes(), "t").unwrap();
        let mut replay = Replay::new(&header, &[], DEFAULT_BUDGET).unwrap();
        let mut events: Vec<rt::NodeEvent> = records
            .into_iter()
            .filter_map(|r| match r {
                rt::Record::Node(e) => Some(*e),
                rt::Record::Client(_) => None,
            })
            .collect();
        change(events.last_mut().unwrap());
        for e in &events {
            replay.step(e)?;
        }
        Ok(())
    }

    fn inconclusive(r: Result<(), ReplayError>) -> String {
        match r {
            Err(ReplayError::Inconclusive(why)) => why,
            other => panic!("expected an inconclusive replay, got {other:?}"),
        }
    }

    const HEARTBEAT: &str = r#"{"type":"send","node":1,"seq":6,"msg":{"id":2,"from":1,"to":2,"term":1,"rpc":"append_entries","prev_index":0,"prev_term":0,"commit":0,"entries":[]}}"#;

    #[test]
    fn a_heartbeat_to_a_node_of_the_cluster_replays() {
        replay(HEARTBEAT, |_| {}).unwrap();
    }

    /// A leader's nextIndex is kept per node of the cluster.
    #[test]
    fn a_message_to_a_node_outside_the_cluster_is_inconclusive() {
        let why = inconclusive(replay(HEARTBEAT, |e| {
            if let rt::Event::Send(m) = &mut e.event {
                m.msg.to = 3;
            }
        }));
        assert_eq!(
            why,
            "node 1: msg.to 3 is not a node of the model's cluster 1..=2 at seq 6"
        );
    }

    const APPEND: &str = r#"{"type":"append","node":1,"seq":6,"index":1,"entry_count":1}"#;

    #[test]
    fn a_leader_appends_counted_entries() {
        replay(APPEND, |_| {}).unwrap();
    }

    /// The replay builds a model entry for every entry an append counts.
    #[test]
    fn an_append_of_too_many_counted_entries_is_inconclusive() {
        let why = inconclusive(replay(APPEND, |e| {
            if let rt::Event::Append(a) = &mut e.event {
                a.entry_count = Some(1 << 62);
            }
        }));
        assert_eq!(
            why,
            format!(
                "node 1: an append of {} entries without their data is more than the replay \
                 holds in one event (at most 65536) at seq 6",
                1u64 << 62
            )
        );
    }
}
