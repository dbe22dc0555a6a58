//! Leader election (section 5.2 and the election restriction of 5.4.1).

use super::membership::{has_quorum, is_voter};
use super::{become_follower, commit_info, observe_term, Step};
use crate::bugs::Bug;
use crate::server::{ghost, Rules, Server};
use crate::types::{Msg, NodeId, Role, Term, Transfer};

/// An election timeout on server `s`. Figure 2, Followers: "If election
/// timeout elapses without receiving AppendEntries ... convert to candidate";
/// Candidates: "If election timeout elapses: start new election". With
/// [`Rules::pre_vote`] the server first becomes a pre-candidate
/// ([`pre_campaign`]). A leader ignores it, and so does a server that is
/// not a voter of its configuration (feature membership).
pub fn timeout(s: &Server, rules: &Rules) -> Step {
    if s.role == Role::Leader || !is_voter(s, rules) {
        return Step::unchanged(s);
    }
    if rules.pre_vote {
        return pre_campaign(s, rules);
    }
    campaign(s, rules)
}

/// Figure 2, Candidates: "On conversion to candidate, start election:
/// increment currentTerm, vote for self, send RequestVote RPCs to all other
/// servers".
pub fn campaign(s: &Server, rules: &Rules) -> Step {
    start_election(s, rules, false)
}

/// [`campaign`]; with `transfer` the election was started by a TimeoutNow
/// (feature leader-transfer), and the RequestVotes say so.
fn start_election(s: &Server, rules: &Rules, transfer: bool) -> Step {
    let mut next = s.clone();
    become_follower(&mut next);
    next.role = Role::Candidate;
    next.term += 1;
    next.voted_for = Some(s.id);
    next.votes = vec![s.id];
    next.transfer_campaign = transfer;
    let mut step = Step {
        state: next,
        sends: vec![],
    };
    if won(&step.state, rules) {
        // A cluster whose quorum is one: the own vote wins.
        become_leader(&mut step.state, rules);
        return step;
    }
    let term = step.state.term;
    let commit = commit_info(&step.state, rules);
    ask_peers(&mut step, rules, |last_index, last_term| Msg::RequestVote {
        term,
        last_index,
        last_term,
        transfer,
        commit,
    });
    step
}

/// Sends every peer the request `ask` builds from the server's last log
/// index and term (a campaign does not change the log).
fn ask_peers(step: &mut Step, rules: &Rules, ask: impl Fn(u64, Term) -> Msg) {
    let (last_index, last_term) = (step.state.log.last_index(), step.state.log.last_term());
    // The voters of its configuration (feature membership), as etcd-io/raft
    // and hashicorp/raft ask.
    for j in super::membership::asked_for_votes(&step.state, rules) {
        step.send(j, ask(last_index, last_term));
    }
}

/// Thesis 9.6 (etcd-io/raft `becomePreCandidate`): the server asks for
/// pre-votes for `term + 1` with its log's last index and term, but keeps its
/// term and its vote, so a server that cannot win disturbs no one.
pub fn pre_campaign(s: &Server, rules: &Rules) -> Step {
    let mut next = s.clone();
    become_follower(&mut next);
    next.role = Role::PreCandidate;
    next.votes = vec![s.id];
    if won(&next, rules) {
        // A cluster whose quorum is one: the own pre-vote wins.
        return campaign(&next, rules);
    }
    let mut step = Step {
        state: next,
        sends: vec![],
    };
    let term = s.term + 1;
    let commit = commit_info(&step.state, rules);
    ask_peers(&mut step, rules, |last_index, last_term| Msg::PreVote {
        term,
        last_index,
        last_term,
        commit,
    });
    step
}

/// A voter answers a pre-vote for `term` (etcd-io/raft `Step`, MsgPreVote).
/// It grants when the candidate's log is at least as up-to-date as its own
/// (section 5.4.1) and it could vote in `term`: `term` is above its own, or
/// equal with its vote free (or already the candidate's).
/// Granting records nothing: no term change, no vote. The reply carries
/// `term` when granted and the voter's term when refused.
pub fn handle_pre_vote(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    last_index: u64,
    last_term: Term,
) -> Step {
    let mut next = s.clone();
    if rules.bug(Bug::PreVoteRaisesTerm) {
        // Wrong: a pre-vote request raises the voter's term as a vote request would.
        observe_term(&mut next, term, rules);
    }
    // The vote rule of `handle_request_vote` for the same term (etcd-io/raft
    // also refuses when it knows a leader: `Rules::sticky_leader`); any
    // higher term is free, since the voter records nothing.
    let free = next.voted_for == Some(from)
        || (next.voted_for.is_none() && !(rules.sticky_leader && next.leader.is_some()))
        || term > next.term;
    let granted = term >= next.term && free && next.log.is_behind(last_index, last_term);
    let reply = Msg::PreVoteReply {
        term: if granted { term } else { next.term },
        granted,
        commit: commit_info(&next, rules),
    };
    let mut step = Step {
        state: next,
        sends: vec![],
    };
    step.send(from, reply);
    step
}

/// A pre-candidate counts a pre-vote reply for `term` (its own term + 1). A
/// quorum of grants (its own included) starts the real election
/// ([`campaign`]); a quorum of refusals makes it a follower again in its
/// term (etcd-io/raft `poll` -> `VoteLost`). A refusal of a higher term than
/// the server's is that term's news (Figure 2, All Servers); a grant never
/// changes the receiver's term.
pub fn handle_pre_vote_reply(
    s: &Server,
    rules: &Rules,
    from: NodeId,
    term: Term,
    granted: bool,
) -> Step {
    let mut next = s.clone();
    if !granted {
        observe_term(&mut next, term, rules);
    }
    // A grant is for the round's term, a refusal carries the voter's term
    // (at most the pre-candidate's); anything else is an older round's.
    // Feature pre-vote-stale-grant: a grant of the current term (an older
    // round's, which asked for that term) counts too, as in etcd-io/raft
    // and raft-rs, which poll every pre-vote response of their term.
    let counts = next.role == Role::PreCandidate
        && if granted {
            term == next.term + 1 || (rules.pre_vote_stale_grant && term == next.term)
        } else {
            term == next.term
        };
    if !counts {
        return Step {
            state: next,
            sends: vec![],
        };
    }
    let tally = if granted {
        &mut next.votes
    } else {
        &mut next.rejections
    };
    if let Err(i) = tally.binary_search(&from) {
        tally.insert(i, from);
    }
    if won(&next, rules) {
        next.ghost |= ghost::PRE_VOTE_WON;
        return campaign(&next, rules);
    }
    if lost(&next, rules) {
        become_follower(&mut next);
        next.ghost |= ghost::PRE_VOTE_LOST;
    }
    Step {
        state: next,
        sends: vec![],
    }
}

/// Feature check-quorum (thesis 6.2, etcd-io/raft MsgCheckQuorum): once per
/// election timeout a leader checks that it heard from a quorum (itself
/// included) since the last check; if not, it steps down in its term.
pub fn check_quorum(s: &Server, rules: &Rules) -> Step {
    if s.role != Role::Leader {
        return Step::unchanged(s);
    }
    let mut next = s.clone();
    let id = next.id;
    if has_quorum(&next, rules, |j| j == id || next.heard.contains(&j)) {
        // A new check period, and with lease-read a new lease.
        next.heard.clear();
        next.lease_acks.clear();
    } else {
        become_follower(&mut next);
        next.ghost |= ghost::CHECK_QUORUM_STEP_DOWN;
    }
    Step {
        state: next,
        sends: vec![],
    }
}

/// A leader steps down in its own term, leader unknown: what check-quorum
/// does when it heard from too few servers. Always safe; the trace
/// validator allows it to a leader with check-quorum whenever the trace
/// shows it (the servers it heard from since its last check are not logged).
pub fn step_down(s: &Server) -> Step {
    let mut step = Step::unchanged(s);
    if s.role == Role::Leader {
        become_follower(&mut step.state);
    }
    step
}

/// Feature check-quorum, the leader lease (thesis 6.2, etcd-io/raft
/// `inLease`): a server that knows a leader in its term may ignore a vote or
/// pre-vote request of a higher term (no term change, no reply) while it last
/// heard from that leader within the minimum election timeout. Whether the
/// lease still holds is a matter of time, which the model does not have:
/// this says whether ignoring the request is allowed at all. A vote request
/// of a transfer (`transfer`, feature leader-transfer) is never ignored:
/// the leader itself asked for that election (thesis 3.10, etcd-io/raft
/// `campaignTransfer`).
pub fn may_ignore_in_lease(s: &Server, rules: &Rules, term: Term, transfer: bool) -> bool {
    rules.check_quorum && s.leader.is_some() && term > s.term && !transfer
}

/// Feature lease-read with check-quorum (thesis 6.4.1, etcd-io/raft
/// `inLease`): a server in its lease of the leader of its term ignores a
/// vote request of a higher term, unless a leader transfer started that
/// election. Lease reads rely on it: while a quorum is in the leader's
/// lease, no other server can be elected. (The model checker's servers
/// always ignore such a request; an implementation whose lease has expired
/// answers it, which [`may_ignore_in_lease`] leaves open to the trace
/// validator.)
pub fn ignores_in_lease(s: &Server, rules: &Rules, term: Term, transfer: bool) -> bool {
    rules.lease_read
        && rules.check_quorum
        && !rules.bug(Bug::LeaseReadWithoutCheckQuorum)
        && s.lease
        && term > s.term
        && !transfer
}

/// Feature leader-transfer (thesis 3.10, etcd-io/raft MsgTransferLeader): the
/// leader starts handing leadership to follower `to`. "The prior leader stops
/// accepting new client requests" ([`super::clients::handle_request`]) and
/// keeps replicating; once `to`'s log matches its own it sends TimeoutNow
/// ([`transfer_ready`]). One transfer at a time; not a leader: nothing.
pub fn start_transfer(s: &Server, rules: &Rules, to: NodeId) -> Step {
    let mut step = Step::unchanged(s);
    if !rules.leader_transfer || s.role != Role::Leader || to == s.id || s.transfer.is_some() {
        return step;
    }
    if !super::membership::config(s, rules).voters.contains(to) {
        // Only a voter can take over (etcd-io/raft ignores a transfer to a learner).
        return step;
    }
    step.state.transfer = Some(Transfer { to, sent: false });
    if rules.bug(Bug::TransferStaleTarget) {
        // Wrong: tells the target to campaign before its log is the leader's.
        send_timeout_now(&mut step);
    } else {
        transfer_ready(&mut step);
    }
    step
}

/// The leader gives up its transfer (etcd-io/raft `abortLeaderTransfer`,
/// after an election timeout without the target taking over) and takes
/// client requests again.
pub fn abort_transfer(s: &Server) -> Step {
    let mut step = Step::unchanged(s);
    step.state.transfer = None;
    step
}

/// Thesis 3.10: "the prior leader sends a TimeoutNow request to the target
/// server" once "the target server's log [is] up to date with the leader's":
/// a leader may send TimeoutNow to a follower whose matchIndex is its last
/// log index. Otherwise, or not a leader: nothing. (The trace validator
/// checks an implementation's TimeoutNow with this rule.)
pub fn timeout_now(s: &Server, to: NodeId) -> Step {
    let mut step = Step::unchanged(s);
    if s.role == Role::Leader
        && to != s.id
        && s.match_index[(to - 1) as usize] == s.log.last_index()
    {
        step.state.sent_timeout_now = true;
        step.send(to, Msg::TimeoutNow { term: s.term });
    }
    step
}

/// Sends the transfer's TimeoutNow, once, when its target is up to date
/// (etcd-io/raft sends it on the append response that brings the target's
/// match to the leader's last index).
pub(crate) fn transfer_ready(step: &mut Step) {
    let Some(t) = step.state.transfer else {
        return;
    };
    if !t.sent && !timeout_now(&step.state, t.to).sends.is_empty() {
        send_timeout_now(step);
    }
}

fn send_timeout_now(step: &mut Step) {
    if let Some(t) = &mut step.state.transfer {
        t.sent = true;
        step.state.sent_timeout_now = true;
        let (to, term) = (t.to, step.state.term);
        step.send(to, Msg::TimeoutNow { term });
    }
}

/// The target of a transfer receives TimeoutNow (thesis 3.10: "upon
/// receiving this request, the target server immediately starts an
/// election", skipping pre-vote; etcd-io/raft `campaignTransfer`). Only a
/// follower in the sender's term does; a newer term is news (Figure 2, All
/// Servers), an older one is stale.
pub fn handle_timeout_now(s: &Server, rules: &Rules, _from: NodeId, term: Term) -> Step {
    let mut next = s.clone();
    observe_term(&mut next, term, rules);
    if rules.leader_transfer
        && term == next.term
        && next.role == Role::Follower
        && is_voter(&next, rules)
    {
        return start_election(&next, rules, true);
    }
    Step {
        state: next,
        sends: vec![],
    }
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
    observe_term(&mut next, term, rules);
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
        commit: commit_info(&next, rules),
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
    observe_term(&mut next, term, rules);
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
        if won(&next, rules) {
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
    !has_quorum(s, rules, |j| !s.rejections.contains(&j))
}

/// Figure 2, Candidates: "votes received from majority of servers" (of the
/// voters of the candidate's configuration, feature membership), for votes
/// and pre-votes alike.
fn won(s: &Server, rules: &Rules) -> bool {
    if rules.bug(Bug::RemovedVoteCounts) {
        // Wrong: every vote counts, a server's outside the configuration too.
        let counted = super::membership::counted(s, rules);
        let voters = super::membership::voter_count(counted.as_ref(), rules);
        return s.votes.len() >= super::membership::majority_of(voters, rules);
    }
    has_quorum(s, rules, |j| s.votes.contains(&j))
}

/// A leader of the current term: the peer `from` was heard from (for
/// check-quorum).
pub(crate) fn heard_from(s: &mut Server, rules: &Rules, from: NodeId) {
    if rules.check_quorum && s.role == Role::Leader && from != s.id {
        if let Err(i) = s.heard.binary_search(&from) {
            s.heard.insert(i, from);
        }
    }
}

/// Figure 2, Leaders: on election, "for each server, index of the next log
/// entry to send to that server (initialized to leader last log index + 1)"
/// and matchIndex "initialized to 0" (the leader's own entry is unused: it
/// always holds its whole log). Heartbeats are sent by
/// [`super::replication::append_entries`], which the leader may do any time.
pub fn become_leader(s: &mut Server, rules: &Rules) {
    if s.transfer_campaign {
        s.ghost |= ghost::TRANSFER_COMPLETED;
        s.transfer_campaign = false;
    }
    s.role = Role::Leader;
    s.leader = Some(s.id);
    s.votes.clear();
    s.rejections.clear();
    s.next_index = vec![s.log.last_index() + 1; rules.servers as usize];
    s.match_index = vec![0; rules.servers as usize];
    s.last_sent = vec![None; rules.servers as usize];
    s.heard.clear();
    s.lease_acks.clear();
}
