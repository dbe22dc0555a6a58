//! The data the core exchanges with its host: log entries, messages, hard
//! state and snapshots.

use std::collections::BTreeSet;
use std::sync::Arc;

pub use raft_trace::Op;

/// A server's identity (positive; 0 is never a node).
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A log index; the first entry has index 1, 0 means "before the log".
pub type Index = u64;

/// A client command: the operation plus the session identity that makes a
/// retried command idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Command {
    /// The client's session id.
    pub client: u64,
    /// The client's request number; a retry keeps it.
    pub req: u64,
    /// What to do.
    pub op: Op,
}

/// What a log entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// The empty entry a new leader appends to commit its term.
    Noop,
    /// A client command (shared: entries are cloned into messages, the
    /// persistence batch and the apply batch without copying the command).
    Command(Arc<Command>),
    /// A membership change: the whole new configuration (see
    /// [`membership`](super::membership)).
    Config(Arc<ConfigEntry>),
}

/// The voters and learners of a cluster (thesis chapter 4). Voters elect
/// the leader and make up the majorities that commit; learners receive the
/// log but never vote and are never counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

/// What a configuration entry holds: the configuration it makes, and the
/// host's context for the change (raftkv: the new member's addresses),
/// opaque to the core, like etcd-io/raft's `ConfChange.Context`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConfigEntry {
    pub membership: Membership,
    pub context: Vec<u8>,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub index: Index,
    pub term: Term,
    pub payload: Payload,
}

/// The state that must be durable before the node acts on it:
/// current term, vote in that term, and (as a hint) the commit index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
}

/// Index and term of the last entry a snapshot covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
}

/// A state-machine snapshot: its position in the log, the configuration in
/// use at that position (etcd-io/raft's `ConfState`), and the encoded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub config: Membership,
    pub data: Arc<Vec<u8>>,
}

/// A message between two nodes. `(from, id)` identifies it uniquely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u64,
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: Body,
}

/// The RPCs of Raft, as this core implements them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `transfer`: the campaign was started by a [`Body::TimeoutNow`]
    /// (leader transfer, thesis §3.10), so voters answer it even inside a
    /// leader lease.
    RequestVote {
        last_index: Index,
        last_term: Term,
        transfer: bool,
    },
    RequestVoteReply {
        granted: bool,
    },
    /// Pre-vote (Raft thesis §9.6): "would you vote for me in the message's
    /// term?" The message's term is the term the sender would campaign in
    /// (its own term + 1); neither the sender nor the receiver changes its
    /// term or vote because of it.
    PreVote {
        last_index: Index,
        last_term: Term,
    },
    /// The answer to a [`Body::PreVote`]: when granted it carries the
    /// request's term, when refused the voter's own term.
    PreVoteReply {
        granted: bool,
    },
    /// Replication and heartbeat. `read_ctx` > 0 asks the follower to echo
    /// it, confirming leadership for a ReadIndex round.
    AppendEntries {
        prev_index: Index,
        prev_term: Term,
        commit: Index,
        entries: Vec<Entry>,
        read_ctx: u64,
    },
    /// On success `index` is the last index known to match the leader; on
    /// rejection `index` is the hint where to retry and `hint_term` the term
    /// of the follower's entry there (0 when the follower's log is shorter).
    AppendEntriesReply {
        success: bool,
        index: Index,
        hint_term: Term,
        /// On rejection: the `prev_index` that was rejected (to detect stale
        /// rejections).
        reject_prev: Index,
        read_ctx: u64,
    },
    /// One chunk of a snapshot; every chunk names the configuration the
    /// snapshot holds.
    InstallSnapshot {
        meta: SnapshotMeta,
        config: Membership,
        offset: u64,
        chunk: Vec<u8>,
        done: bool,
    },
    /// The follower now has the snapshot up to `last_index`.
    InstallSnapshotReply {
        last_index: Index,
    },
    /// Leader transfer (thesis §3.10): the leader of the message's term
    /// tells an up-to-date follower to start an election at once.
    TimeoutNow,
}

impl Message {
    /// Whether this message is a response (never answered itself).
    pub fn is_reply(&self) -> bool {
        matches!(
            self.body,
            Body::RequestVoteReply { .. }
                | Body::PreVoteReply { .. }
                | Body::AppendEntriesReply { .. }
                | Body::InstallSnapshotReply { .. }
        )
    }
}

/// Roles of a Raft node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Follower,
    /// Asking for pre-votes before it campaigns (only with
    /// [`Config::pre_vote`](super::Config::pre_vote)); its term is unchanged.
    PreCandidate,
    Candidate,
    Leader,
}
