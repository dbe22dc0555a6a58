//! Leader election (section 5.2 and the election restriction of 5.4.1).

use super::{become_follower, observe_term, Step};
use crate::bugs::Bug;
use crate::server::{ghost, Rules, Server};
use crate::types::{Msg, NodeId, Role, Term};

/// An election timeout on server `s`. Figure 2, Followers: "If election
/// timeout elapses without receiving AppendEntries ... convert to candidate";
/// Candidates: "On conversion to candidate, start election: increment
/// currentTerm, vote for self, send RequestVote RPCs to all other servers"
/// (and "If election timeout elapses: start new election"). A leader ignores it.
pub fn timeout(s: &Server, rules: &Rules) -> Step {
    if s.role == Role::Leader {
        return Step::unchanged(s);
    }
    let mut next = s.clone();
    become_follower(&mut next);
    next.role = Role::Candidate;
    next.term += 1;
    next.voted_for = Some(s.id);
    next.votes = vec![s.id];
    let mut step = Step {
        state: next,
        sends: vec![],
    };
    if step.state.votes.len() >= rules.quorum() {
        // A cluster whose quorum is one: the own vote wins.
        become_leader(&mut step.state, rules);
        return step;
    }
    for j in rules.peers(s.id) {
        step.send(
            j,
            Msg::RequestVote {
                term: step.state.term,
                last_index: s.log.last_index(),
                last_term: s.log.last_term(),
            },
        );
    }
    step
}

/// Figure 2, RequestVote RPC, receiver implementation: "1. Reply false if
/// term < currentTerm. 2. If votedFor is null or candidateId, and candidate's
/// log is at least as up-to-date as receiver's log, grant vote."
pub fn handle_request_vote(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    last_index: u64,
    last_term: Term,
) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term);
    let free = next.voted_for.is_none() && !(rules.sticky_leader && next.leader.is_some())
        || next.voted_for == Some(from);
    let up_to_date = next.log.is_behind(last_index, last_term);
    let granted = term == next.term
        && (free || rules.bug(Bug::DoubleVote))
        && (up_to_date || rules.bug(Bug::NoElectionRestriction));
    if granted {
        next.voted_for = Some(from);
    }
    let reply = Msg::RequestVoteReply {
        term: next.term,
        granted,
    };
    let mut step = Step {
        state: next,
        sends: vec![],
    };
    step.send(from, reply);
    step
}

/// A candidate counts a vote. Figure 2, Candidates: "If votes received from
/// majority of servers: become leader". Replies of an older term are stale
/// and ignored; a newer term makes the server a follower (All Servers rule).
pub fn handle_request_vote_reply(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    granted: bool,
) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term);
    if next.role == Role::Candidate && term == next.term {
        // Refusals are only counted for the lost-election rule (in Figure 2
        // a candidate ignores them).
        let tally = match (granted, rules.lost_election) {
            (true, _) => Some(&mut next.votes),
            (false, true) => Some(&mut next.rejections),
            (false, false) => None,
        };
        if let Some(tally) = tally {
            if let Err(i) = tally.binary_search(&from) {
                tally.insert(i, from);
            }
        }
        if next.votes.len() >= rules.quorum() {
            become_leader(&mut next, rules);
        } else if rules.lost_election && lost(&next, rules) {
            // Not Figure 2 (there a candidate waits for its election timeout):
            // etcd-io/raft and raft-rs `poll` -> `VoteLost` ->
            // `becomeFollower(r.Term, None)`. The server stays in its term
            // and keeps its own vote, so it grants no other vote in the term.
            become_follower(&mut next);
            next.ghost |= ghost::LOST_ELECTION;
        }
    }
    Step {
        state: next,
        sends: vec![],
    }
}

/// Whether candidate `s` can no longer win its election: its votes plus the
/// servers that have not answered yet are fewer than a quorum (etcd-io/raft
/// `quorum.VoteLost`; in a cluster of odd size, a quorum refused).
fn lost(s: &Server, rules: &Rules) -> bool {
    let answered = s.votes.len() + s.rejections.len();
    let unanswered = (rules.servers as usize).saturating_sub(answered);
    s.votes.len() + unanswered < rules.quorum()
}

/// Figure 2, Leaders: on election, "for each server, index of the next log
/// entry to send to that server (initialized to leader last log index + 1)"
/// and matchIndex "initialized to 0" (the leader's own entry is unused: it
/// always holds its whole log). Heartbeats are sent by
/// [`super::replication::append_entries`], which the leader may do any time.
pub fn become_leader(s: &mut Server, rules: &Rules) {
    s.role = Role::Leader;
    s.leader = Some(s.id);
    s.votes.clear();
    s.rejections.clear();
    s.next_index = vec![s.log.last_index() + 1; rules.servers as usize];
    s.match_index = vec![0; rules.servers as usize];
    s.last_sent = vec![None; rules.servers as usize];
}
