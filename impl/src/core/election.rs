//! Leader election: timeouts, pre-vote, candidacy, votes, check-quorum and
//! the leader lease, role changes.
//!
//! With [`Config::pre_vote`](super::Config::pre_vote) an election timeout
//! makes the node a *pre-candidate* (Raft thesis §9.6, as etcd-io/raft and
//! raft-rs do it): it asks every peer "would you vote for me in my next
//! term?" without raising its term or voting. A voter grants when the term
//! asked for is above its own (or equal, and its vote is free), the
//! candidate's log is at least as up to date as its own and it is not inside
//! a leader lease; granting changes nothing on the voter. Only a pre-vote
//! quorum starts the real election; enough refusals that it can no longer
//! win (a quorum of them, in a cluster of odd size) send the
//! pre-candidate back to follower in its term.
//!
//! With [`Config::check_quorum`](super::Config::check_quorum) (thesis §6.2)
//! a leader that heard from no quorum within `election_ticks` steps down,
//! and a node that heard from a leader within `election_ticks` ignores vote
//! and pre-vote requests of a higher term: the leader lease.

use super::progress::Progress;
use super::read::Lease;
use super::{Body, Message, NodeId, Payload, RaftNode, Role, Term};

/// What starts an election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Campaign {
    /// The election timer fired (without pre-vote).
    Timeout,
    /// A pre-vote quorum.
    PreVoteWon,
    /// A `TimeoutNow` from the leader (leader transfer, thesis §3.10).
    Transfer,
}

/// Why a node becomes follower, where the term alone does not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepDown {
    /// A higher term, or the leader of the current term discovered.
    Discovered,
    /// A (pre-)candidate counted so many refusals that it can no longer win.
    LostElection,
    /// A leader heard from no quorum within an election timeout.
    CheckQuorum,
    /// A leader's own removal was committed (thesis §4.2.2).
    Removed,
}

impl RaftNode {
    /// Becomes follower in `term` (a higher term, or the current one when a
    /// leader is discovered). Volatile leader state is dropped.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        self.step_down(term, leader, StepDown::Discovered);
    }

    fn step_down(&mut self, term: Term, leader: Option<NodeId>, why: StepDown) {
        let term_before = self.term;
        let changed = term > self.term || self.role != Role::Follower;
        if term > self.term {
            self.term = term;
            if !self.bug(crate::bugs::Bug::KeepVoteOnNewTerm) {
                self.vote = None;
            }
            // BUG (planted) otherwise: the old term's vote is kept.
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.votes.clear();
        self.reads.clear();
        self.lease = Lease::default();
        self.transfer = None;
        self.append_pending = false;
        self.reset_election_timer();
        if changed {
            match why {
                StepDown::Discovered => self.trace().became_follower(term_before),
                StepDown::LostElection => self.trace().lost_election(),
                StepDown::CheckQuorum => self.trace().lost_quorum(),
                StepDown::Removed => self.trace().removed(),
            }
        }
    }

    /// A leader whose removal is committed becomes follower in its term,
    /// leader unknown.
    pub(crate) fn step_down_removed(&mut self) {
        self.step_down(self.term, None, StepDown::Removed);
    }

    /// Follower or (pre-)candidate: count ticks towards the election
    /// timeout. A node that is not a voter never campaigns (thesis §4.2.2:
    /// a removed server, or a learner or a joining server, waits to hear
    /// from a leader).
    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout && !self.is_voter() {
            self.reset_election_timer();
            return;
        }
        if self.election_elapsed >= self.election_timeout {
            self.trace().election_timed_out();
            self.hup();
        }
    }

    /// What an election timeout does: a pre-vote round with
    /// [`Config::pre_vote`](super::Config::pre_vote), otherwise an election.
    pub(crate) fn hup(&mut self) {
        if self.config().pre_vote {
            self.pre_campaign();
        } else {
            self.campaign();
        }
    }

    /// Whether a leader lease holds: with check-quorum, the node heard from
    /// a leader (or, leading, from a quorum) less than `election_ticks` ago.
    pub(crate) fn in_lease(&self) -> bool {
        self.config().check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.config().election_ticks
    }

    /// With lease reads a leader serves reads alone while its lease holds,
    /// counting on the followers that acknowledged its heartbeat round not
    /// to help elect another leader for an election timeout (thesis
    /// §6.4.1). Check-quorum's lease (`in_lease`) does that for vote
    /// requests; two more ways out of it are closed here by discarding the
    /// message unread, as if the network had lost it:
    /// - a follower inside the lease does not let a stale reply of a higher
    ///   term (an answer to an old campaign of its own) raise its term and
    ///   forget its leader;
    /// - a node in its first `election_ticks` after a (re)start, which does
    ///   not remember whose lease it may be in, answers no campaign (except
    ///   a transfer's: a leader that sends `TimeoutNow` has given up its
    ///   lease).
    pub(crate) fn discard_for_lease(&self, m: &Message) -> bool {
        if !self.config().lease_read {
            return false;
        }
        let campaign = matches!(
            m.body,
            Body::RequestVote {
                transfer: false,
                ..
            } | Body::PreVote { .. }
        );
        if campaign && self.since_start < self.config().election_ticks {
            return true;
        }
        m.term > self.term && self.role == Role::Follower && self.in_lease() && m.is_reply()
    }

    /// Becomes pre-candidate: asks for pre-votes in the next term, keeping
    /// its term and vote.
    pub(crate) fn pre_campaign(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id(), true);
        self.reset_election_timer();
        self.trace().became_pre_candidate();
        if self.won_votes() {
            self.start_election(Campaign::PreVoteWon);
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let term = self.term + 1;
        let peers = self.other_voters();
        for p in peers {
            self.send_in(
                p,
                term,
                Body::PreVote {
                    last_index,
                    last_term,
                },
            );
        }
    }

    /// Starts an election in the next term (its election timer fired).
    pub(crate) fn campaign(&mut self) {
        self.start_election(Campaign::Timeout);
    }

    /// A `TimeoutNow` of our term (thesis §3.10): from the leader we follow,
    /// it means the leader brought our log up to date and hands over;
    /// campaign at once, without pre-vote, and mark the vote requests so
    /// that the voters' leader lease does not make them ignore it.
    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.role != Role::Follower || self.leader != Some(from) || !self.is_voter() {
            return;
        }
        self.start_election(Campaign::Transfer);
    }

    /// Starts an election in the next term.
    fn start_election(&mut self, why: Campaign) {
        self.term += 1;
        self.vote = Some(self.id());
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id(), true);
        self.reset_election_timer();
        match why {
            Campaign::Timeout => self.trace().became_candidate(),
            Campaign::PreVoteWon => self.trace().won_pre_vote(),
            Campaign::Transfer => self.trace().transfer_campaign(),
        }
        if self.won_votes() {
            self.become_leader();
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let peers = self.other_voters();
        for p in peers {
            self.send(
                p,
                Body::RequestVote {
                    last_index,
                    last_term,
                    transfer: why == Campaign::Transfer,
                },
            );
        }
    }

    pub(crate) fn handle_request_vote(&mut self, from: NodeId, last_index: u64, last_term: Term) {
        // A node that heard from a live leader of this term keeps following it.
        let can_vote = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let granted = can_vote && self.log.is_up_to_date(last_index, last_term);
        if granted {
            self.vote = Some(from);
            self.reset_election_timer();
        }
        self.send(from, Body::RequestVoteReply { granted });
    }

    /// A pre-vote request for `term` (at least ours: stale ones were refused
    /// in `step`, and a lease already made us ignore a higher one). Granting
    /// changes nothing here: no term, no vote, no timer.
    pub(crate) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: u64,
        last_term: Term,
    ) {
        let can_vote = term > self.term
            || self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none());
        if can_vote && self.log.is_up_to_date(last_index, last_term) {
            self.send_in(from, term, Body::PreVoteReply { granted: true });
        } else {
            self.send(from, Body::PreVoteReply { granted: false });
        }
    }

    pub(crate) fn handle_vote_reply(&mut self, from: NodeId, granted: bool) {
        if self.role != Role::Candidate {
            return;
        }
        // A voter's first answer counts (etcd-io/raft's `RecordVote`): a
        // later one may answer an earlier request.
        self.votes.entry(from).or_insert(granted);
        if self.won_votes() {
            self.become_leader();
        } else if self.config().lost_election && !self.can_still_win() {
            // It can no longer win (etcd-io/raft's `poll` -> `VoteLost`):
            // follower in this term, leader unknown.
            self.step_down(self.term, None, StepDown::LostElection);
        }
    }

    /// A pre-vote answer of `term`: a grant carries the term we ask for
    /// (ours + 1; anything else answers an older round), a refusal our own
    /// (a higher one already made us follower in `step`).
    pub(crate) fn handle_pre_vote_reply(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::PreCandidate {
            return;
        }
        let expected = if granted { self.term + 1 } else { self.term };
        if term != expected {
            return;
        }
        // The first answer counts: a refusal carries the voter's own term,
        // so one that answers an older round of ours may look current, and
        // must not take back a grant of this round.
        self.votes.entry(from).or_insert(granted);
        if self.won_votes() {
            self.start_election(Campaign::PreVoteWon);
        } else if !self.can_still_win() {
            // It can no longer win (etcd-io/raft's `VoteLost`): in a cluster
            // of odd size, a quorum refused.
            self.step_down(self.term, None, StepDown::LostElection);
        }
    }

    /// Leader, every `election_ticks` ticks with check-quorum: steps down
    /// unless a quorum (itself included) answered since the last check.
    /// Returns whether it stepped down.
    pub(crate) fn check_quorum(&mut self) -> bool {
        let me = self.id();
        let active: Vec<NodeId> = std::iter::once(me)
            .chain(
                self.progress
                    .iter()
                    .filter(|(_, p)| p.recent_active)
                    .map(|(id, _)| *id),
            )
            .collect();
        for pr in self.progress.values_mut() {
            pr.recent_active = false;
        }
        if self.membership().has_quorum(active.iter().copied()) {
            return false;
        }
        if self.bug(crate::bugs::Bug::LeaseOverrun) && self.lease.holds() {
            // BUG (planted): the (overlong) lease is taken as proof of
            // leadership.
            return false;
        }
        tracing::debug!(
            id = self.id(),
            term = self.term,
            active = active.len(),
            "check-quorum: no quorum heard within an election timeout; stepping down"
        );
        self.step_down(self.term, None, StepDown::CheckQuorum);
        true
    }

    /// Whether the granted votes (or pre-votes) counted so far are a
    /// majority of the voters.
    fn won_votes(&self) -> bool {
        let yes = self.votes.iter().filter(|(_, g)| **g).map(|(id, _)| *id);
        self.membership().has_quorum(yes)
    }

    /// Whether the votes not yet answered could still make a majority.
    fn can_still_win(&self) -> bool {
        let m = self.membership();
        let yes = self
            .votes
            .iter()
            .filter(|(id, g)| **g && m.is_voter(**id))
            .count();
        m.can_still_win(yes, self.votes.keys().copied())
    }

    /// Takes office: fresh progress for every follower, and a no-op entry so
    /// that entries of earlier terms commit through an entry of this term.
    pub(crate) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id());
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.votes.clear();
        self.lease = Lease::default();
        self.transfer = None;
        let next = self.log.last_index() + 1;
        let peers = self.others();
        self.progress = peers
            .into_iter()
            .map(|p| (p, Progress::new(next)))
            .collect();
        self.trace().became_leader();
        self.append_local(Payload::Noop);
    }
}
