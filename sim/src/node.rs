//! The one seam between the simulator and a Raft implementation.
//!
//! An implementation is a sans-IO node, in the style of etcd-io/raft's
//! `RawNode` and tikv/raft-rs: the simulator gives it ticks, messages and
//! client requests, asks what it wants made durable, makes that durable on a
//! simulated [`Disk`], and only then takes the messages it wants sent, the
//! entries it applied and the answers for clients. A crash drops the node;
//! a restart builds a new one from what its disk holds.
//!
//! The simulator reads a message only through [`Addressed`] and
//! [`Node::envelope`], and a node's state only through [`Node::status`] and
//! [`Node::entry`]; everything it checks, it checks through here and through
//! the `raft-trace/1` events the node emits.

use raft_trace::sink::TraceSink;
use raft_trace::{Header, Network, Role};

pub use crate::client::{Answer, Request, Response};
pub use crate::network::Addressed;
use crate::NodeId;

/// A Raft implementation: builds its nodes and describes its traces.
pub trait Implementation {
    type Node: Node;

    /// The trace header for a run of `nodes` (what the emitter observes),
    /// with the run's network faults and parameters filled in.
    fn header(&self, nodes: Vec<NodeId>, network: Network, params: serde_json::Value) -> Header;

    /// Starts a node, the first time or after a crash, from what its disk
    /// holds. Every event it emits goes to `trace`.
    fn start(
        &self,
        setup: &Setup,
        disk: &mut <Self::Node as Node>::Disk,
        trace: Box<dyn TraceSink>,
    ) -> Self::Node;
}

/// How a run configures each node. Implementations map these to their own
/// options; the simulator varies them per seed.
#[derive(Debug, Clone)]
pub struct Setup {
    pub id: NodeId,
    pub peers: Vec<NodeId>,
    /// Seeds the node's own randomness (election timeouts).
    pub seed: u64,
    /// Most entries in one AppendEntries.
    pub max_batch: usize,
    /// Most AppendEntries in flight to one follower.
    pub max_inflight: usize,
    /// Take a snapshot every this many applied entries.
    pub snapshot_every: u64,
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
}

/// A node's stable storage, kept by the simulator across crashes.
pub trait Disk: Default {
    /// One write a node asks for.
    type Write;
    fn write(&mut self, w: Self::Write);
    /// The durable term and vote.
    fn hard_state(&self) -> (u64, Option<NodeId>);
    /// Whether the entry (`index`, `term`) is durable here (or covered by a
    /// durable snapshot).
    fn holds(&self, index: u64, term: u64) -> bool;
    /// The index of the last durable entry.
    fn last_index(&self) -> u64;
}

/// What a message means to the simulator's checks (besides its
/// [`Addressed`] sender and receiver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    pub term: u64,
    /// The term is not the sender's own but one a candidate would campaign
    /// in (pre-vote requests, and granted pre-vote replies): it need not be
    /// durable when the message leaves.
    pub prospective: bool,
    /// A vote reply granting the vote.
    pub grants_vote: bool,
    /// A successful AppendEntries reply: the follower holds the leader's log
    /// up to this index.
    pub acknowledges: Option<u64>,
}

/// An entry a node applied to its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    pub term: u64,
    /// Identifies the entry's content (equal entries, equal digests).
    pub digest: u64,
    /// The client command (client, request) the state machine executed;
    /// `None` for a no-op, or a retry its session table recognised.
    pub executed: Option<(u64, u64)>,
}

/// What a node hands back once its writes are durable.
#[derive(Debug)]
pub struct Output<M> {
    pub messages: Vec<M>,
    pub responses: Vec<Response>,
    pub applied: Vec<Applied>,
    /// Snapshots taken and installed, for the run's statistics.
    pub snapshots: u64,
    pub installs: u64,
}

impl<M> Default for Output<M> {
    fn default() -> Self {
        Output {
            messages: Vec::new(),
            responses: Vec::new(),
            applied: Vec::new(),
            snapshots: 0,
            installs: 0,
        }
    }
}

/// The members of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Members {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// One membership change, one server at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new voter, or a learner promoted.
    AddVoter(NodeId),
    AddLearner(NodeId),
    Remove(NodeId),
}

/// What the simulator's checks read of a running node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub term: u64,
    pub role: Role,
    pub commit: u64,
    /// The index range of the log the node holds in memory.
    pub first_index: u64,
    pub last_index: u64,
}

/// One running node.
pub trait Node {
    type Message: Addressed + Clone;
    type Disk: Disk;

    fn envelope(m: &Self::Message) -> Envelope;

    /// One clock tick.
    fn tick(&mut self);
    /// The simulator's nemesis asks this node, which leads, to hand its
    /// leadership to `to`. Returns whether a transfer started; an
    /// implementation without leader transfer ignores it.
    fn transfer_leader(&mut self, _to: NodeId) -> bool {
        false
    }
    /// A message from another node arrives.
    fn step(&mut self, m: Self::Message);
    /// A client request arrives; an answer it can give at once (not the
    /// leader) goes to `out.responses`.
    fn request(&mut self, r: Request, out: &mut Output<Self::Message>);
    /// What the node wants made durable before its next messages leave, or
    /// `None` when it has nothing to do.
    fn ready(&mut self) -> Option<Vec<<Self::Disk as Disk>::Write>>;
    /// Right after [`Node::ready`], before its writes are durable: what the
    /// node may hand over already, such as a leader's appends (Raft thesis
    /// §10.2.1: the leader writes its log in parallel with replicating it)
    /// and committed entries it holds durably. The simulator may then defer
    /// the writes, with the node stepping on meanwhile, or crash the node
    /// before they are written. Default: nothing early.
    fn early(&mut self, _out: &mut Output<Self::Message>) {}
    /// Whether the node may keep taking steps (ticks, messages, requests)
    /// while the writes of its last [`Node::ready`] wait, so that the
    /// simulator may defer them to the node's next turn. Default: no — a
    /// library whose contract is to make a Ready durable before it steps
    /// again (raft-rs's `RawNode` panics otherwise) gets its writes at once.
    const STEPS_WHILE_WRITING: bool = false;
    /// While the writes of the last [`Node::ready`] still wait (only when
    /// [`Node::STEPS_WHILE_WRITING`]): what the node may apply and answer
    /// already because of the steps it took meanwhile, such as entries that
    /// acknowledgements committed. Default: nothing.
    fn meanwhile(&mut self, _out: &mut Output<Self::Message>) {}
    /// The writes of the last [`Node::ready`] are durable: the messages it
    /// may now send, what it applied, and the answers it has for clients.
    fn persisted(&mut self, out: &mut Output<Self::Message>);

    /// Membership changes (thesis §4.1), for implementations that support
    /// them: the voters and learners of the configuration the node uses
    /// now. `None` (the default): membership is fixed, every node votes.
    fn membership(&self) -> Option<Members> {
        None
    }
    /// The voters of the configuration in use at `index` and of every later
    /// configuration in the node's log (an entry is committed on a
    /// majority of one of them). `None`: fixed membership.
    fn voters_since(&self, _index: u64) -> Option<Vec<Vec<NodeId>>> {
        None
    }
    /// The nemesis asks this node, which leads, for one membership change.
    /// Returns whether the node appended it; an implementation without
    /// membership changes ignores it.
    fn propose_change(&mut self, _change: Change) -> bool {
        false
    }

    fn status(&self) -> Status;
    /// The term and content digest of the entry at `index` in the node's
    /// log, if it holds it.
    fn entry(&self, index: u64) -> Option<(u64, u64)>;
}
