//! The rules of Raft as pure functions: each takes one server's state and an
//! input (a message, a timeout, a client request) and returns the new state
//! and the messages to send ([`Step`]). Choices an implementation makes (whom
//! to send to, how many entries to batch, when to snapshot) are parameters.
//!
//! The stateright actor ([`crate::actor`]) only wraps these functions; the
//! trace validator calls the same functions to replay an implementation's
//! trace. Each branch names the rule of the Raft paper's Figure 2 (or Figure
//! 13 for snapshots) it implements.

pub mod clients;
pub mod elections;
pub mod membership;
pub mod replication;
pub mod snapshots;

use crate::bugs::Bug;
use crate::server::{ghost, Rules, Server};
use crate::types::{CommitInfo, Dest, Msg, NodeId, Outgoing, Role, Term};

/// The result of one rule: the server's new state and the messages it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub state: Server,
    pub sends: Vec<Outgoing>,
}

impl Step {
    /// A step that changes nothing and sends nothing.
    pub fn unchanged(s: &Server) -> Step {
        Step {
            state: s.clone(),
            sends: vec![],
        }
    }

    fn send(&mut self, to: NodeId, msg: Msg) {
        self.sends.push((Dest::Server(to), msg));
    }
}

/// Figure 2, Rules for Servers, All Servers: "If RPC request or response
/// contains term T > currentTerm: set currentTerm = T, convert to follower".
pub fn observe_term(s: &mut Server, term: Term, rules: &Rules) {
    if term > s.term {
        if s.role == Role::Leader {
            s.ghost |= ghost::STEPPED_DOWN;
        }
        s.term = term;
        if !rules.bug(Bug::KeepVoteOnNewTerm) {
            s.voted_for = None;
        }
        become_follower(s);
    }
}

/// Drops candidate and leader state.
pub(crate) fn become_follower(s: &mut Server) {
    s.role = Role::Follower;
    s.leader = None;
    s.votes.clear();
    s.rejections.clear();
    s.next_index.clear();
    s.match_index.clear();
    s.last_sent.clear();
    s.heard.clear();
    s.lease_acks.clear();
    s.reads.clear();
    s.transfer = None;
    s.transfer_campaign = false;
    s.lease = false;
    s.sent_timeout_now = false;
}

/// A server hears from `leader`, the leader of its current term (by
/// AppendEntries, a heartbeat or InstallSnapshot): it remembers it, to
/// redirect clients, and with feature lease-read starts or renews its lease
/// (etcd-io/raft resets `electionElapsed` and sets `lead`).
pub(crate) fn follow(s: &mut Server, rules: &Rules, leader: NodeId) {
    s.leader = Some(leader);
    if rules.lease_read {
        s.lease = true;
        s.ghost &= !ghost::LEASE_EXPIRED;
    }
}

/// What a server's vote messages carry of its commit: with feature
/// commit-any-message, its commit index and the term of its entry there
/// (raft-rs `commit_info`), else nothing.
pub fn commit_info(s: &Server, rules: &Rules) -> Option<CommitInfo> {
    if !rules.commit_any_message {
        return None;
    }
    // The commit index is never below the snapshot, so its term is known.
    let term = s.log.term_at(s.commit)?;
    Some(CommitInfo {
        index: s.commit,
        term,
    })
}

/// Feature commit-any-message (raft-rs `maybe_commit_by_vote`): a server
/// that receives a message carrying the sender's commit `info` commits up
/// to `info.index` when its own log holds an entry of term `info.term`
/// there. Not in Figure 2, and safe:
/// - the sender's commitIndex is `info.index`, so the sender's entries up
///   to it are committed (State Machine Safety: an entry committed on one
///   server is the entry every server ever commits at that index, and
///   Leader Completeness keeps it in every later leader's log);
/// - Log Matching: "if two logs contain an entry with the same index and
///   term, then the logs are identical in all entries up through the given
///   index"; the receiver's entry at `info.index` has the sender's term, so
///   its entries 1..=`info.index` are the sender's committed ones.
///
/// So the receiver commits (and applies) exactly the committed prefix, as
/// if the leader had told it with AppendEntries' leaderCommit. The term
/// check is what makes it safe: the same index with another term is another
/// entry, possibly one that will be overwritten (planted bug
/// `learn-commit-any-term`). Without the entry (a shorter log, or the index
/// compacted away, which is below the receiver's own commit) it learns
/// nothing. Returns the replies to clients a leader owes for what it applies.
pub fn learn_commit(s: &mut Server, rules: &Rules, info: CommitInfo) -> Vec<Outgoing> {
    let holds = if rules.bug(Bug::LearnCommitAnyTerm) {
        // Wrong: any entry at that index will do.
        s.log.entry(info.index).is_some()
    } else {
        s.log.entry(info.index).map(|e| e.term) == Some(info.term)
    };
    if !rules.commit_any_message || info.index <= s.commit || !holds {
        return vec![];
    }
    s.ghost |= ghost::COMMIT_LEARNED;
    replication::commit_to(s, rules, info.index)
}

/// Handles any message a server can receive from server `from`, or a client
/// request, by dispatching to the rule for it; with feature
/// commit-any-message the server then learns the commit the message
/// carries ([`learn_commit`]).
pub fn handle_message(s: &Server, rules: &Rules, from: NodeId, msg: &Msg) -> Step {
    let mut step = dispatch(s, rules, from, msg);
    if let (true, Some(info)) = (rules.commit_any_message, msg.commit_info()) {
        let replies = learn_commit(&mut step.state, rules, info);
        step.sends.extend(replies);
    }
    step
}

/// The rule for a message.
fn dispatch(s: &Server, rules: &Rules, from: NodeId, msg: &Msg) -> Step {
    match msg {
        Msg::RequestVote {
            term,
            last_index,
            last_term,
            ..
        } => elections::handle_request_vote(s, rules, from, *term, *last_index, *last_term),
        Msg::RequestVoteReply { term, granted, .. } => {
            elections::handle_request_vote_reply(s, rules, from, *term, *granted)
        }
        Msg::AppendEntries {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
        } => replication::handle_append_entries(
            s,
            rules,
            from,
            *term,
            *prev_index,
            *prev_term,
            entries,
            *commit,
        ),
        Msg::AppendEntriesReply {
            term,
            success,
            index,
        } => replication::handle_append_entries_reply(s, rules, from, *term, *success, *index),
        Msg::InstallSnapshot {
            term,
            last_index,
            last_term,
            data,
        } => {
            snapshots::handle_install_snapshot(s, rules, from, *term, *last_index, *last_term, data)
        }
        Msg::InstallSnapshotReply { term, last_index } => {
            snapshots::handle_install_snapshot_reply(s, rules, from, *term, *last_index)
        }
        Msg::PreVote {
            term,
            last_index,
            last_term,
            ..
        } => elections::handle_pre_vote(s, rules, from, *term, *last_index, *last_term),
        Msg::PreVoteReply { term, granted, .. } => {
            elections::handle_pre_vote_reply(s, rules, from, *term, *granted)
        }
        Msg::Heartbeat { term, commit, ctx } => {
            replication::handle_heartbeat(s, rules, from, *term, *commit, *ctx)
        }
        Msg::HeartbeatReply { term, ctx } => {
            replication::handle_heartbeat_reply(s, rules, from, *term, *ctx)
        }
        Msg::TimeoutNow { term } => elections::handle_timeout_now(s, rules, from, *term),
        Msg::Request(cmd) => clients::handle_request(s, rules, from, cmd),
        // Replies to clients are never sent to servers.
        Msg::Reply { .. } | Msg::NotLeader { .. } => Step::unchanged(s),
    }
}
