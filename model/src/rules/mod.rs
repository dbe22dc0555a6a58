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
pub mod replication;
pub mod snapshots;

use crate::server::{ghost, Rules, Server};
use crate::types::{Dest, Msg, NodeId, Outgoing, Role, Term};

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
pub fn observe_term(s: &mut Server, term: Term) {
    if term > s.term {
        if s.role == Role::Leader {
            s.ghost |= ghost::STEPPED_DOWN;
        }
        s.term = term;
        s.voted_for = None;
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
    s.reads.clear();
    s.transfer = None;
    s.transfer_campaign = false;
}

/// Handles any message a server can receive from server `from`, or a client
/// request, by dispatching to the rule for it.
pub fn handle_message(s: &Server, rules: &Rules, from: NodeId, msg: &Msg) -> Step {
    match msg {
        Msg::RequestVote {
            term,
            last_index,
            last_term,
            ..
        } => elections::handle_request_vote(s, rules, from, *term, *last_index, *last_term),
        Msg::RequestVoteReply { term, granted } => {
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
        } => elections::handle_pre_vote(s, rules, from, *term, *last_index, *last_term),
        Msg::PreVoteReply { term, granted } => {
            elections::handle_pre_vote_reply(s, rules, from, *term, *granted)
        }
        Msg::Heartbeat { term, commit, ctx } => {
            replication::handle_heartbeat(s, rules, from, *term, *commit, *ctx)
        }
        Msg::HeartbeatReply { term, ctx } => {
            replication::handle_heartbeat_reply(s, rules, from, *term, *ctx)
        }
        Msg::TimeoutNow { term } => elections::handle_timeout_now(s, rules, from, *term),
        Msg::Request(cmd) => clients::handle_request(s, rules, cmd),
        // Replies to clients are never sent to servers.
        Msg::Reply { .. } | Msg::NotLeader { .. } => Step::unchanged(s),
    }
}
