//! Plain data of the specification: ids, terms, indexes, client commands,
//! log entries and the messages servers and clients exchange.
//!
//! Node ids, terms and indexes are `u64`, exactly as in `raft-trace/1`, so the
//! trace validator can feed an implementation's values straight into the
//! rules. Server ids run from 1 to N (0 is never a node); client ids are
//! numbered from 1 in their own space.

/// A server's identity, 1-based as in `raft-trace/1`.
pub type NodeId = u64;
/// A Raft term (0 before any election).
pub type Term = u64;
/// A log index; the first entry is 1, and 0 means "before the log".
pub type Index = u64;
/// A client's identity (Jepsen's process), 1-based.
pub type ClientId = u64;
/// A client's request number; a retry keeps it.
pub type Seq = u64;
/// The value of the single register the state machine holds (0 initially).
pub type Value = u64;

/// An operation on the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Return the current value.
    Read,
    /// Set the value.
    Write(Value),
    /// If the value is `from`, set it to `to`; returns whether it did.
    Cas { from: Value, to: Value },
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpResult {
    Read(Value),
    Write,
    Cas(bool),
}

/// A client command: the operation and its session identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Command {
    pub client: ClientId,
    pub seq: Seq,
    pub op: Op,
}

/// A log entry: the term in which a leader created it, and the client command.
/// (The model needs no no-op entry: reads go through the log, see
/// [`crate::rules::clients`].)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    pub term: Term,
    pub cmd: Command,
}

/// A server's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Role {
    #[default]
    Follower,
    /// Asking for pre-votes before campaigning ([`crate::server::Rules::pre_vote`]).
    PreCandidate,
    Candidate,
    Leader,
}

/// Every message of the model. Server-to-server messages carry the sender's
/// term; the sender and receiver are the network envelope's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Msg {
    /// Figure 2, RequestVote RPC arguments. `transfer` (feature
    /// leader-transfer): the campaign was started by a [`Msg::TimeoutNow`],
    /// so a voter may not ignore it because of a leader lease (thesis 3.10,
    /// etcd-io/raft `campaignTransfer`).
    RequestVote {
        term: Term,
        last_index: Index,
        last_term: Term,
        transfer: bool,
        /// The sender's commit (feature commit-any-message), else `None`.
        commit: Option<CommitInfo>,
    },
    /// Figure 2, RequestVote RPC results.
    RequestVoteReply {
        term: Term,
        granted: bool,
        /// The sender's commit (feature commit-any-message), else `None`.
        commit: Option<CommitInfo>,
    },
    /// Figure 2, AppendEntries RPC arguments (`entries` start at `prev_index + 1`).
    AppendEntries {
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    },
    /// Figure 2, AppendEntries RPC results. On success `index` is the last
    /// index known to match the leader; on failure it is where the leader
    /// should retry (its new `nextIndex` for this follower at most).
    AppendEntriesReply {
        term: Term,
        success: bool,
        index: Index,
    },
    /// Figure 13, InstallSnapshot (one chunk: the whole state machine).
    InstallSnapshot {
        term: Term,
        last_index: Index,
        last_term: Term,
        data: crate::state_machine::StateMachine,
    },
    /// Figure 13, InstallSnapshot results; `last_index` is the snapshot's.
    InstallSnapshotReply { term: Term, last_index: Index },
    /// Thesis 9.6, PreVote: "would you vote for me in `term`?", where `term`
    /// is one above the sender's own (which it does not raise yet).
    PreVote {
        term: Term,
        last_index: Index,
        last_term: Term,
        /// The sender's commit (feature commit-any-message), else `None`.
        commit: Option<CommitInfo>,
    },
    /// The answer to a PreVote: `term` is the request's term when granted,
    /// the voter's own when refused (etcd-io/raft).
    PreVoteReply {
        term: Term,
        granted: bool,
        /// The sender's commit (feature commit-any-message), else `None`.
        commit: Option<CommitInfo>,
    },
    /// A heartbeat without log position (etcd-io/raft MsgHeartbeat):
    /// `commit` is at most the receiver's matchIndex.
    /// With feature read-index, `ctx` names the read the round confirms
    /// leadership for ([`read_context`]).
    Heartbeat {
        term: Term,
        commit: Index,
        ctx: Option<u64>,
    },
    /// The answer to a heartbeat, echoing its `ctx`.
    HeartbeatReply { term: Term, ctx: Option<u64> },
    /// Thesis 3.10, leader transfer: the leader of `term` tells a follower
    /// whose log matches its own to start an election at once.
    TimeoutNow { term: Term },
    /// A client asks a server to execute a command.
    Request(Command),
    /// The leader answers a client after applying its command.
    Reply { seq: Seq, result: OpResult },
    /// A server that is not leader redirects the client.
    NotLeader { seq: Seq, hint: Option<NodeId> },
}

impl Msg {
    /// The term a server-to-server message carries.
    pub fn term(&self) -> Option<Term> {
        match self {
            Msg::RequestVote { term, .. }
            | Msg::RequestVoteReply { term, .. }
            | Msg::AppendEntries { term, .. }
            | Msg::AppendEntriesReply { term, .. }
            | Msg::InstallSnapshot { term, .. }
            | Msg::InstallSnapshotReply { term, .. }
            | Msg::PreVote { term, .. }
            | Msg::PreVoteReply { term, .. }
            | Msg::Heartbeat { term, .. }
            | Msg::HeartbeatReply { term, .. }
            | Msg::TimeoutNow { term } => Some(*term),
            Msg::Request(_) | Msg::Reply { .. } | Msg::NotLeader { .. } => None,
        }
    }

    /// The sender's commit a vote message carries (feature commit-any-message).
    pub fn commit_info(&self) -> Option<CommitInfo> {
        match self {
            Msg::RequestVote { commit, .. }
            | Msg::RequestVoteReply { commit, .. }
            | Msg::PreVote { commit, .. }
            | Msg::PreVoteReply { commit, .. } => *commit,
            _ => None,
        }
    }
}

/// A sender's commit index and the term of its entry there, as raft-rs
/// sends them on vote messages (`commit`, `commit_term`; feature
/// commit-any-message): every entry up to `index` is committed, and the
/// entry at `index` has term `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitInfo {
    pub index: Index,
    pub term: Term,
}

/// The heartbeat context of a client's read (feature read-index): the
/// command's identity, as one number.
pub fn read_context(client: ClientId, seq: Seq) -> u64 {
    (client << 32) | (seq & 0xffff_ffff)
}

/// A read a leader serves by ReadIndex once a quorum confirms it is still
/// leader (thesis 6.4).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingRead {
    pub client: ClientId,
    pub seq: Seq,
    /// The leader's commit index when the read arrived: the read index.
    pub index: Index,
    /// Peers that answered the read's heartbeat round in the leader's term, sorted.
    pub acks: Vec<NodeId>,
}

/// A leader's transfer of leadership in progress (thesis 3.10, feature
/// leader-transfer; etcd-io/raft `leadTransferee`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Transfer {
    /// The follower that is to take over.
    pub to: NodeId,
    /// A history variable, not part of Raft: the leader has sent a
    /// [`Msg::TimeoutNow`] in this transfer (for the property Transfer
    /// Target Up To Date).
    pub sent: bool,
}

/// Where a rule sends a message: to a server or to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dest {
    Server(NodeId),
    Client(ClientId),
}

/// A message a rule wants sent.
pub type Outgoing = (Dest, Msg);
