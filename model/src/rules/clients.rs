//! Client interaction (section 8): redirection, and commands through the log.
//!
//! Reads are linearizable because they go through the log like writes: the
//! leader answers a read only after the read's entry, created in its own
//! term, is committed and applied, which proves it was still leader when the
//! read took effect. (No no-op entry on election is needed for this.)
//! Retries keep (client, seq); the state machine's sessions apply each
//! command at most once.
//!
//! With feature read-index (thesis 6.4) a leader that has committed an
//! entry of its own term serves reads without the log: see
//! [`read_index`]; with feature lease-read it relies on its lease instead
//! of a heartbeat round: see [`in_lease`].

use super::Step;
use crate::bugs::Bug;
use crate::server::{ghost, Rules, Server};
use crate::types::{
    read_context, Command, Dest, Entry, Msg, NodeId, Op, OpResult, PendingRead, Role,
};

/// Server `s` receives a client command, from the client (`from` = 0) or
/// forwarded by server `from`. A non-leader answers the client with a hint
/// of the leader it knows (section 8), or with feature forward-proposals
/// hands the command to that leader. The leader appends the command to its
/// log (Figure 2, Leaders: "If command received from client: append entry
/// to local log, respond after entry applied to state machine").
pub fn handle_request(s: &Server, rules: &Rules, from: NodeId, cmd: &Command) -> Step {
    let mut step = Step::unchanged(s);
    let to = Dest::Client(cmd.client);
    if s.role != Role::Leader {
        let hint = s.leader.filter(|&l| l != s.id);
        match hint {
            // A forwarded command is not forwarded again, nor answered: it
            // is dropped (etcd-io/raft drops a proposal with no leader).
            _ if from != 0 => {}
            Some(leader) if rules.forward_proposals => {
                step.sends.push((Dest::Server(leader), Msg::Request(*cmd)));
            }
            _ => step.sends.push((to, Msg::NotLeader { seq: cmd.seq, hint })),
        }
        return step;
    }

    if s.transfer.is_some() {
        // Feature leader-transfer, thesis 3.10: "the prior leader stops
        // accepting new client requests" (etcd-io/raft drops the proposal,
        // ErrProposalDropped); the client retries elsewhere on its timeout.
        return step;
    }
    let answer_now = Msg::Reply {
        seq: cmd.seq,
        result: OpResult::Read(s.sm.value),
    };
    if cmd.op == Op::Read && rules.bug(Bug::StaleRead) {
        // Wrong: answers from local state without confirming leadership.
        step.sends.push((to, answer_now));
        return step;
    }
    if cmd.op == Op::Read && in_lease(s, rules) {
        // Feature lease-read (thesis 6.4.1): the lease stands in for
        // ReadIndex's heartbeat round; the leader answers at once.
        step.state.ghost |= ghost::LEASE_READ_SERVED;
        step.sends.push((to, answer_now));
        return step;
    }
    if cmd.op == Op::Read && rules.read_index {
        if let Some(step) = read_index(s, rules, cmd) {
            return step;
        }
    }
    if from != 0 {
        step.state.ghost |= ghost::PROPOSAL_FORWARDED;
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

/// Feature lease-read (thesis 6.4.1, etcd-io/raft ReadOnlyLeaseBased):
/// whether leader `s` may answer a read from its state machine at once.
/// - As for ReadIndex, it has committed an entry of its term, so its commit
///   index covers every entry committed before its term (Leader
///   Completeness) and every write it acknowledged.
/// - It holds a lease: a quorum (itself included) accepted its
///   AppendEntries since its last check-quorum. Each of them was in its
///   lease then and, by the
///   timing assumption (`model::leases_hold`), still is; with check-quorum
///   they ignore vote requests of higher terms ([`super::elections::ignores_in_lease`]),
///   so no other leader can have been elected.
/// - It has not sent TimeoutNow in its term: the transfer target's election
///   is exempt from leases.
pub fn in_lease(s: &Server, rules: &Rules) -> bool {
    rules.lease_read
        && s.role == Role::Leader
        && s.log.term_at(s.commit) == Some(s.term)
        && super::membership::has_quorum(s, rules, |j| j == s.id || s.lease_acks.contains(&j))
        && !s.sent_timeout_now
}

/// Thesis 6.4, ReadIndex: "1. If the leader has not yet marked an entry from
/// its current term committed, it waits until it has done so" (here: the
/// read goes through the log instead, `None`). "2. The leader saves its
/// current commit index in a local variable readIndex. 3. The leader needs
/// to make sure it hasn't been superseded": it sends a heartbeat round
/// naming the read; [`confirm_read`] answers it once a quorum has
/// acknowledged. A retried read replaces the pending one.
fn read_index(s: &Server, rules: &Rules, cmd: &Command) -> Option<Step> {
    let committed_in_term = s.log.term_at(s.commit) == Some(s.term);
    if !committed_in_term && !rules.bug(Bug::ReadIndexOldCommit) {
        return None;
    }
    let mut step = Step::unchanged(s);
    let next = &mut step.state;
    next.reads
        .retain(|r| (r.client, r.seq) != (cmd.client, cmd.seq));
    next.reads.push(PendingRead {
        client: cmd.client,
        seq: cmd.seq,
        index: s.commit,
        acks: vec![],
    });
    next.reads.sort();
    let ctx = read_context(cmd.client, cmd.seq);
    let replicates_to = super::membership::replicates_to(s, rules);
    for j in (1..=rules.servers).filter(|&j| replicates_to(j)) {
        step.sends.push((
            Dest::Server(j),
            Msg::Heartbeat {
                term: s.term,
                commit: s.match_index[(j - 1) as usize].min(s.commit),
                ctx: Some(ctx),
            },
        ));
    }
    // A cluster whose quorum is one confirms at once.
    let sends = confirm_read(&mut step.state, rules, s.id, ctx);
    step.sends.extend(sends);
    Some(step)
}

/// Thesis 6.4, ReadIndex: "3. ... Once it receives acknowledgments from a
/// majority of the cluster, the leader knows that it was still the leader
/// at the time it sent the heartbeats. 4. The leader waits for its state
/// machine to advance at least as far as the readIndex" (the model applies
/// what it commits, and a leader's commit index only grows: it is there
/// already) "5. The leader issues the query against its state machine and
/// replies to the client." `from` acknowledged the read named by `ctx`.
pub fn confirm_read(s: &mut Server, rules: &Rules, from: NodeId, ctx: u64) -> Vec<(Dest, Msg)> {
    let Some(k) = s
        .reads
        .iter()
        .position(|r| read_context(r.client, r.seq) == ctx)
    else {
        return vec![];
    };
    if from != s.id {
        let acks = &mut s.reads[k].acks;
        if let Err(i) = acks.binary_search(&from) {
            acks.insert(i, from);
        }
    }
    let acks = &s.reads[k].acks;
    if !super::membership::has_quorum(s, rules, |j| j == s.id || acks.contains(&j)) {
        return vec![];
    }
    let read = s.reads.remove(k);
    debug_assert!(s.commit >= read.index);
    s.ghost |= ghost::READ_INDEX_SERVED;
    vec![(
        Dest::Client(read.client),
        Msg::Reply {
            seq: read.seq,
            result: OpResult::Read(s.sm.value),
        },
    )]
}
