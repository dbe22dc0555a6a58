//! What the node loop shares with the client API: the waiters, the apply
//! notifier, the state machine (read by linearizable reads once their read
//! index is applied) and the stop signal.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::applied::AppliedIndex;
use super::latency::Latencies;
use super::server::{ChangeFailed, Configuration, ReqError};
use super::shutdown::StopSignal;
use super::waiters::Waiters;
use crate::bugs::Bugs;
use crate::kv::{KvStore, Reply};

/// The outcome of a proposal.
pub type ProposalOutcome = Result<Reply, ReqError>;
/// The outcome of a read's first step: its confirmed read index.
pub type ReadIndexOutcome = Result<u64, ReqError>;
/// The outcome of a membership change: the configuration it made.
pub type ChangeOutcome = Result<Configuration, ChangeFailed>;

/// The pieces shared by the node loop and the client API. Clones share them.
#[derive(Clone)]
pub struct Shared {
    /// Proposals waiting for their entry to be applied.
    pub proposals: Arc<Waiters<ProposalOutcome>>,
    /// Reads waiting for the leader to confirm their read index.
    pub reads: Arc<Waiters<ReadIndexOutcome>>,
    /// Membership changes waiting for their entry to be applied.
    pub changes: Arc<Waiters<ChangeOutcome>>,
    /// The state machine's applied index.
    pub applied: Arc<AppliedIndex>,
    /// The state machine; the node loop alone writes it.
    kv: Arc<RwLock<KvStore>>,
    /// Stops the node loop and the client API.
    pub stop: StopSignal,
    /// Planted bugs of the node's layers (none in production).
    pub bugs: Bugs,
    /// Client request latencies, per operation (`/metrics`).
    pub latency: Arc<Latencies>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            proposals: Waiters::new(),
            reads: Waiters::new(),
            changes: Waiters::new(),
            applied: AppliedIndex::new(0),
            kv: Arc::new(RwLock::new(KvStore::new(4096, Bugs::NONE))),
            stop: StopSignal::new(),
            bugs: Bugs::NONE,
            latency: Arc::default(),
        }
    }
}

impl Shared {
    /// Fresh pieces (an empty state machine until the node has recovered).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the state machine.
    pub fn kv(&self) -> RwLockReadGuard<'_, KvStore> {
        self.kv.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the state machine (the node loop only).
    pub(crate) fn kv_mut(&self) -> RwLockWriteGuard<'_, KvStore> {
        self.kv.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Shutdown (see [`super::shutdown`]): gives the stop signal and wakes
    /// every waiter with [`super::Stopped`].
    pub fn close(&self) {
        self.stop.stop();
        self.proposals.close();
        self.reads.close();
        self.changes.close();
        self.applied.close();
    }
}
