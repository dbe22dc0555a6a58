//! Client interaction (section 8): redirection, and commands through the log.
//!
//! Reads are linearizable because they go through the log like writes: the
//! leader answers a read only after the read's entry, created in its own
//! term, is committed and applied, which proves it was still leader when the
//! read took effect. (No no-op entry on election is needed for this.)
//! Retries keep (client, seq); the state machine's sessions apply each
//! command at most once.

use super::Step;
use crate::bugs::Bug;
use crate::server::{Rules, Server};
use crate::types::{Command, Dest, Entry, Msg, Op, OpResult, Role};

/// Server `s` receives a client command. A non-leader answers with a hint of
/// the leader it knows. The leader appends the command to its log (Figure 2,
/// Leaders: "If command received from client: append entry to local log,
/// respond after entry applied to state machine").
pub fn handle_request(s: &Server, rules: &Rules, cmd: &Command) -> Step {
    let mut step = Step::unchanged(s);
    let to = Dest::Client(cmd.client);
    if s.role != Role::Leader {
        let hint = s.leader.filter(|&l| l != s.id);
        step.sends.push((to, Msg::NotLeader { seq: cmd.seq, hint }));
        return step;
    }
    if cmd.op == Op::Read && rules.bug(Bug::StaleRead) {
        // Wrong: answers from local state without confirming leadership.
        step.sends.push((
            to,
            Msg::Reply {
                seq: cmd.seq,
                result: OpResult::Read(s.sm.value),
            },
        ));
        return step;
    }
    step.state.log.entries.push(Entry {
        term: s.term,
        cmd: *cmd,
    });
    // Figure 2, Leaders: the commit rule holds at all times, so a leader
    // whose own log is a quorum (a cluster of one) commits at once. With
    // more servers the new entry is on one server only and nothing changes.
    let replies = super::replication::advance_commit(&mut step.state, rules);
    step.sends.extend(replies);
    step
}
