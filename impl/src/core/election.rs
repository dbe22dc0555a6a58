//! Leader election: timeouts, candidacy, votes, role changes.

use super::progress::Progress;
use super::{Body, NodeId, Payload, RaftNode, Role, Term};

impl RaftNode {
    /// Becomes follower in `term` (a higher term, or the current one when a
    /// leader is discovered). Volatile leader state is dropped.
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let term_before = self.term;
        let changed = term > self.term || self.role != Role::Follower;
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.votes.clear();
        self.reads.clear();
        self.append_pending = false;
        self.reset_election_timer();
        if changed {
            self.trace().became_follower(term_before);
        }
    }

    /// Follower or candidate: count ticks towards the election timeout.
    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout {
            self.trace().election_timed_out();
            self.campaign();
        }
    }

    /// Starts an election in the next term.
    pub(crate) fn campaign(&mut self) {
        self.term += 1;
        self.vote = Some(self.id());
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id(), true);
        self.reset_election_timer();
        self.trace().became_candidate();
        if self.votes.len() >= self.quorum() {
            self.become_leader();
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let peers: Vec<NodeId> = self.others().collect();
        for p in peers {
            self.send(
                p,
                Body::RequestVote {
                    last_index,
                    last_term,
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

    pub(crate) fn handle_vote_reply(&mut self, from: NodeId, granted: bool) {
        if self.role != Role::Candidate {
            return;
        }
        self.votes.insert(from, granted);
        let yes = self.votes.values().filter(|g| **g).count();
        if yes >= self.quorum() {
            self.become_leader();
        }
    }

    /// Takes office: fresh progress for every follower, and a no-op entry so
    /// that entries of earlier terms commit through an entry of this term.
    pub(crate) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id());
        self.heartbeat_elapsed = 0;
        self.votes.clear();
        let next = self.log.last_index() + 1;
        let peers: Vec<NodeId> = self.others().collect();
        self.progress = peers
            .into_iter()
            .map(|p| (p, Progress::new(next)))
            .collect();
        self.trace().became_leader();
        self.append_local(Payload::Noop);
    }
}
