//! Linearizable reads by ReadIndex (Raft thesis §6.4).
//!
//! Why ReadIndex and not reads through the log: a read then costs one
//! heartbeat round and no disk write, and reads batch naturally (one round
//! confirms every read queued before it). The leader:
//! 1. waits until it has committed an entry of its own term (its no-op), so
//!    its commit index is at least that of every earlier leader;
//! 2. records its commit index as the read index;
//! 3. sends a heartbeat carrying a read context and waits until a quorum
//!    (itself included) answers in its term: it was still leader when the
//!    read arrived;
//! 4. hands out the read index; the host serves the read once its state
//!    machine has applied up to it.
//!
//! # Lease reads
//! With [`Config::lease_read`](super::Config::lease_read) (thesis §6.4.1,
//! etcd-io/raft's `ReadOnlyLeaseBased`; it requires check-quorum) the
//! leader skips step 3 while it holds a lease: it hands out its commit index
//! at once. The lease rests on a timing assumption:
//! - every heartbeat round is numbered; when a quorum (the leader included)
//!   has acknowledged round `r`, sent at leader tick `t`, the lease holds
//!   until leader tick `t + election_ticks - lease_drift_ticks`;
//! - each follower that acknowledged `r` received it after `t`, and from then
//!   on, for `election_ticks` ticks of its own clock, it ignores vote
//!   requests (check-quorum's lease; see `discard_for_lease` in the election
//!   module for the two gaps that lease reads close), so no other leader can
//!   be elected before the lease ends;
//! - this holds as long as no clock runs more than `lease_drift_ticks` fast
//!   or slow relative to another over an election timeout. A larger drift
//!   (a paused VM, a clock jump) breaks linearizability of lease reads; use
//!   ReadIndex where that cannot be ruled out.
//!
//! The lease ends when the leader steps down and as soon as it starts a
//! leader transfer (its `TimeoutNow` overrides the followers' leases); it
//! is not used again in that term.

use std::collections::{BTreeSet, VecDeque};

use super::{Membership, NodeId, NotLeader, RaftNode, ReadState, Role};
use crate::bugs::Bug;

/// A heartbeat round that may extend the lease.
#[derive(Debug, Clone)]
struct LeaseRound {
    round: u64,
    sent_at: u64,
    acks: BTreeSet<NodeId>,
}

/// The leader's lease for lease reads (see the module doc).
#[derive(Debug, Default)]
pub struct Lease {
    /// Ticks since the node became leader.
    now: u64,
    /// Rounds sent and not yet acknowledged by a quorum, oldest first.
    rounds: VecDeque<LeaseRound>,
    /// The lease holds while `now < until`.
    until: u64,
    /// A leader transfer started: no lease for the rest of the term.
    revoked: bool,
}

impl Lease {
    pub(crate) fn tick(&mut self) {
        self.now += 1;
    }

    /// Round `round` of heartbeats leaves now; `me` counts as its first ack.
    pub(crate) fn round_sent(&mut self, round: u64, me: NodeId) {
        if self.revoked {
            return;
        }
        self.rounds.push_back(LeaseRound {
            round,
            sent_at: self.now,
            acks: BTreeSet::from([me]),
        });
    }

    /// `from` acknowledged heartbeat round `round` (and so every earlier
    /// round: it answers in order of sending or not at all, and an answer to
    /// a later round proves it followed us after the earlier ones left).
    fn acked(&mut self, from: NodeId, round: u64, voters: &Membership, length: u64) {
        for r in self.rounds.iter_mut().filter(|r| r.round <= round) {
            r.acks.insert(from);
        }
        if let Some(i) = self
            .rounds
            .iter()
            .rposition(|r| voters.has_quorum(r.acks.iter().copied()))
        {
            let r = &self.rounds[i];
            self.until = self.until.max(r.sent_at + length);
            self.rounds.drain(..=i);
        }
    }

    /// Whether the lease holds now.
    pub(crate) fn holds(&self) -> bool {
        !self.revoked && self.now < self.until
    }

    /// A leader transfer started: the lease ends and is not renewed.
    pub(crate) fn revoke(&mut self) {
        self.revoked = true;
        self.rounds.clear();
    }
}

/// A read waiting for leadership confirmation.
#[derive(Debug, Clone)]
struct Pending {
    ctx: u64,
    index: u64,
    round: u64,
    acks: BTreeSet<NodeId>,
}

/// The leader's queue of reads.
#[derive(Debug, Default)]
pub struct ReadOnly {
    pending: VecDeque<Pending>,
    /// Reads that arrived before the leader committed an entry of its term.
    waiting: Vec<u64>,
    next_round: u64,
    /// The round of reads started since the last heartbeat broadcast: its
    /// heartbeat goes out at the next `ready`, so that the reads of one
    /// batch of requests share one round (each still confirmed by a round
    /// sent after it arrived).
    unsent: Option<u64>,
}

impl ReadOnly {
    pub fn clear(&mut self) {
        self.pending.clear();
        self.waiting.clear();
        self.unsent = None;
    }

    /// A heartbeat carrying `round` is being sent: if it is the unsent
    /// round, that round is sent.
    pub(crate) fn round_broadcast(&mut self, round: u64) {
        if self.unsent == Some(round) {
            self.unsent = None;
        }
    }

    /// Takes the round whose heartbeat is still to be sent.
    pub(crate) fn take_unsent(&mut self) -> Option<u64> {
        self.unsent.take()
    }

    /// Whether a round waits for its heartbeat.
    pub(crate) fn has_unsent(&self) -> bool {
        self.unsent.is_some()
    }

    /// The newest round still waiting (0: none).
    pub fn last_ctx(&self) -> u64 {
        self.pending.back().map_or(0, |p| p.round)
    }

    /// Numbers a new heartbeat round (later than every pending read's).
    pub(crate) fn new_round(&mut self) -> u64 {
        self.next_round += 1;
        self.next_round
    }

    pub fn len(&self) -> usize {
        self.pending.len() + self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RaftNode {
    /// Asks for a linearizable read identified by `ctx`; the answer comes as
    /// a [`ReadState`] in a later `Ready`. A non-leader answers with the
    /// leader it knows.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.bug(Bug::StaleRead) {
            // BUG (planted): no leadership confirmation.
            let index = self.log.committed;
            self.read_states.push(ReadState { ctx, index });
            self.trace().read_served(index, None, false);
            return Ok(());
        }
        if self.log.term(self.log.committed) != Some(self.term) {
            self.reads.waiting.push(ctx);
            return Ok(());
        }
        if self.config().lease_read && self.lease.holds() {
            // Lease read (thesis §6.4.1): no other leader can exist yet.
            let index = self.log.committed;
            self.read_states.push(ReadState { ctx, index });
            self.trace().read_served(index, None, true);
            return Ok(());
        }
        self.start_read(ctx);
        Ok(())
    }

    /// Whether this leader would serve a read from its lease now.
    pub fn lease_holds(&self) -> bool {
        self.role == Role::Leader && self.config().lease_read && self.lease.holds()
    }

    fn start_read(&mut self, ctx: u64) {
        let index = self.log.committed;
        if self.membership().has_quorum([self.id()]) {
            self.read_states.push(ReadState { ctx, index });
            self.trace().read_served(index, None, false);
            return;
        }
        // The round's heartbeat leaves at the next `ready` (one round for
        // every read started until then): after this read arrived, which is
        // what confirms that this node still led when it did.
        let round = match self.reads.unsent {
            Some(r) => r,
            None => {
                let r = self.reads.new_round();
                self.reads.unsent = Some(r);
                r
            }
        };
        let mut acks = BTreeSet::new();
        acks.insert(self.id());
        self.reads.pending.push_back(Pending {
            ctx,
            index,
            round,
            acks,
        });
    }

    /// Called when the leader commits: reads that waited for the first
    /// commit of this term can start.
    pub(crate) fn serve_waiting_reads(&mut self) {
        if self.reads.waiting.is_empty() || self.log.term(self.log.committed) != Some(self.term) {
            return;
        }
        let waiting = std::mem::take(&mut self.reads.waiting);
        for ctx in waiting {
            self.start_read(ctx);
        }
    }

    /// `from` answered a heartbeat of `round` in our term.
    pub(crate) fn read_acked(&mut self, from: NodeId, round: u64) {
        if self.config().lease_read {
            let e = u64::from(self.config().election_ticks);
            let length = if self.bug(Bug::LeaseOverrun) {
                // BUG (planted): the lease outlasts the followers' promise.
                10 * e
            } else {
                e - u64::from(self.config().lease_drift_ticks)
            };
            let voters = self.log.config().unwrap_or(&self.bootstrap);
            self.lease.acked(from, round, voters, length);
        }
        for p in self.reads.pending.iter_mut() {
            if p.round <= round {
                p.acks.insert(from);
            }
        }
        while {
            let voters = self.log.config().unwrap_or(&self.bootstrap);
            self.reads
                .pending
                .front()
                .is_some_and(|p| voters.has_quorum(p.acks.iter().copied()))
        } {
            let p = self.reads.pending.pop_front().expect("front");
            self.read_states.push(ReadState {
                ctx: p.ctx,
                index: p.index,
            });
            self.trace().read_served(p.index, Some(p.round), false);
        }
    }

    /// Reads queued on this leader (waiting or in a round).
    pub fn pending_reads(&self) -> usize {
        self.reads.len()
    }
}
