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

use std::collections::{BTreeSet, VecDeque};

use super::{NodeId, NotLeader, RaftNode, ReadState, Role};
use crate::bugs::Bug;

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
}

impl ReadOnly {
    pub fn clear(&mut self) {
        self.pending.clear();
        self.waiting.clear();
    }

    /// The newest round still waiting (0: none).
    pub fn last_ctx(&self) -> u64 {
        self.pending.back().map_or(0, |p| p.round)
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
            return Ok(());
        }
        if self.log.term(self.log.committed) != Some(self.term) {
            self.reads.waiting.push(ctx);
            return Ok(());
        }
        self.start_read(ctx);
        Ok(())
    }

    fn start_read(&mut self, ctx: u64) {
        let index = self.log.committed;
        if self.quorum() == 1 {
            self.read_states.push(ReadState { ctx, index });
            return;
        }
        self.reads.next_round += 1;
        let round = self.reads.next_round;
        let mut acks = BTreeSet::new();
        acks.insert(self.id());
        self.reads.pending.push_back(Pending {
            ctx,
            index,
            round,
            acks,
        });
        self.bcast_heartbeat(round);
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
        let quorum = self.quorum();
        for p in self.reads.pending.iter_mut() {
            if p.round <= round {
                p.acks.insert(from);
            }
        }
        while self
            .reads
            .pending
            .front()
            .is_some_and(|p| p.acks.len() >= quorum)
        {
            let p = self.reads.pending.pop_front().expect("front");
            self.read_states.push(ReadState {
                ctx: p.ctx,
                index: p.index,
            });
        }
    }

    /// Reads queued on this leader (waiting or in a round).
    pub fn pending_reads(&self) -> usize {
        self.reads.len()
    }
}
