//! Header and per-node events of `raft-trace/1`.

use serde::{Deserialize, Serialize};

use crate::history::{ClientEvent, Op};

/// A server's identity. Ids are positive; `0` is never a node.
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A log index; the first entry has index 1, and 0 means "before the log".
pub type Index = u64;

/// The first line of every trace or history file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `"header"` on the wire.
    #[serde(rename = "type")]
    pub kind: HeaderTag,
    /// The format and version: `raft-trace/1`.
    pub format: String,
    /// Free text naming the emitter, e.g. `"raftkv 0.1.0"`.
    pub implementation: String,
    /// Every node of the run. Without `voters`, all of them vote and
    /// membership is static. Empty for a history that stands alone.
    pub nodes: Vec<NodeId>,
    /// The voters of the initial configuration, when not every node votes
    /// from the start (membership changes: the others join later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voters: Option<Vec<NodeId>>,
    /// The learners (non-voting members) of the initial configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learners: Option<Vec<NodeId>>,
    /// What the emitter observes. Whatever is not declared here is unknown to
    /// the checker, never assumed false or absent.
    pub observes: Observes,
    /// What the network between the nodes may do to messages.
    #[serde(default)]
    pub network: Network,
    /// Implementation parameters worth knowing (timeouts, batch sizes, seed);
    /// informative only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// The behaviours beyond the Raft paper's Figure 2 that the
    /// implementation uses (for example `lost-election`): the validator
    /// checks the trace against the specification with exactly these
    /// switched on. Absent (`None`): unknown, so the validator allows every
    /// behaviour the specification knows; `Some(vec![])` says "Figure 2 only".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

/// The wire tag of a header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderTag {
    Header,
}

impl Header {
    /// A header for `raft-trace/1` with the given emitter, nodes and observations.
    pub fn new(implementation: impl Into<String>, nodes: Vec<NodeId>, observes: Observes) -> Self {
        Header {
            kind: HeaderTag::Header,
            format: crate::FORMAT.to_string(),
            implementation: implementation.into(),
            nodes,
            voters: None,
            learners: None,
            observes,
            network: Network::default(),
            params: None,
            features: None,
        }
    }
}

/// What an emitter declares it observes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Observes {
    /// The event types the emitter writes whenever they happen. An event type
    /// not listed may still appear, but its absence proves nothing.
    pub events: Vec<EventType>,
    /// The `post` state fields present on every event that carries `post`.
    #[serde(default)]
    pub state: Vec<StateField>,
    /// How much of each log entry is written in `append`, `init` and
    /// AppendEntries messages.
    #[serde(default)]
    pub entries: EntryDetail,
}

/// What the network may do, declared by the emitter (or the test harness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Messages may be lost (this includes partitions).
    #[serde(default)]
    pub loss: bool,
    /// A message may be delivered more than once.
    #[serde(default)]
    pub duplication: bool,
    /// Messages between one pair of nodes may be delivered out of order.
    #[serde(default)]
    pub reorder: bool,
}

/// How much of a log entry an emitter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EntryDetail {
    /// Term and data of every entry.
    #[default]
    Full,
    /// The term of every entry, not its data.
    Terms,
    /// Only how many entries there are (`entry_count`).
    Count,
}

/// The names of the per-node and client event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Init,
    Crash,
    Role,
    Timeout,
    Send,
    Receive,
    Append,
    Truncate,
    Persist,
    Commit,
    Apply,
    Snapshot,
    Install,
    Read,
    Gap,
    Invoke,
    Return,
}

impl EventType {
    /// Every event type, in documentation order.
    pub const ALL: [EventType; 17] = [
        EventType::Init,
        EventType::Crash,
        EventType::Role,
        EventType::Timeout,
        EventType::Send,
        EventType::Receive,
        EventType::Append,
        EventType::Truncate,
        EventType::Persist,
        EventType::Commit,
        EventType::Apply,
        EventType::Snapshot,
        EventType::Install,
        EventType::Read,
        EventType::Gap,
        EventType::Invoke,
        EventType::Return,
    ];

    /// The name on the wire (`"send"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Init => "init",
            EventType::Crash => "crash",
            EventType::Role => "role",
            EventType::Timeout => "timeout",
            EventType::Send => "send",
            EventType::Receive => "receive",
            EventType::Append => "append",
            EventType::Truncate => "truncate",
            EventType::Persist => "persist",
            EventType::Commit => "commit",
            EventType::Apply => "apply",
            EventType::Snapshot => "snapshot",
            EventType::Install => "install",
            EventType::Read => "read",
            EventType::Gap => "gap",
            EventType::Invoke => "invoke",
            EventType::Return => "return",
        }
    }

    /// The event type with this wire name.
    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The fields of a [`PostState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateField {
    Term,
    Vote,
    Role,
    Leader,
    Commit,
    Applied,
    LastIndex,
    LastTerm,
    SnapshotIndex,
    SnapshotTerm,
}

impl StateField {
    /// Every post-state field, in documentation order.
    pub const ALL: [StateField; 10] = [
        StateField::Term,
        StateField::Vote,
        StateField::Role,
        StateField::Leader,
        StateField::Commit,
        StateField::Applied,
        StateField::LastIndex,
        StateField::LastTerm,
        StateField::SnapshotIndex,
        StateField::SnapshotTerm,
    ];
}

/// A server's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    /// Asking for pre-votes (feature `pre-vote`): its term is not raised yet.
    PreCandidate,
    Candidate,
    Leader,
}

/// The state of a node after an event. Every field is optional: an absent
/// field is unknown. `vote` distinguishes "absent" (unknown) from `null`
/// (the node has not voted in its current term).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PostState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<Term>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub vote: Option<Option<NodeId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "double_option"
    )]
    pub leader: Option<Option<NodeId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<Index>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<Index>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_index: Option<Index>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_term: Option<Term>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_index: Option<Index>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_term: Option<Term>,
}

/// One line of a trace after the header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Record {
    /// Boxed: a node event is a few hundred bytes (a message with its
    /// optional fields, the post-state), and a record is moved several
    /// times between a reader and its consumer (a validation's stages hand
    /// it from thread to thread); a box moves as one pointer.
    Node(Box<NodeEvent>),
    /// Boxed as a node event is (a client event is about a hundred bytes).
    Client(Box<ClientEvent>),
}

impl Record {
    /// The wire name of this record's event type.
    pub fn event_type(&self) -> EventType {
        match self {
            Record::Node(e) => e.event.event_type(),
            Record::Client(c) => c.event_type(),
        }
    }
}

/// An event of one node. `seq` increases strictly for each node (across
/// restarts too); a jump in `seq` means events were lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeEvent {
    pub node: NodeId,
    pub seq: u64,
    /// Nanoseconds since an arbitrary origin shared by the whole trace;
    /// informative only (never needed for ordering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    #[serde(flatten)]
    pub event: Event,
    /// The node's state after the event, as far as the emitter observes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post: Option<PostState>,
}

/// What happened on a node. The `type` field on the wire names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The node started (boot) or started again after a crash (restart),
    /// with the persistent state it recovered.
    Init(Init),
    /// The node stopped; its volatile state is gone.
    Crash(Crash),
    /// The node changed role.
    Role(RoleChange),
    /// A timer fired.
    Timeout(Timeout),
    /// The node sent a message.
    Send(MessageEvent),
    /// The node received (and handled) a message.
    Receive(MessageEvent),
    /// Entries were appended to the node's log, starting at `index`.
    Append(Append),
    /// Entries from `from` on were removed from the node's log.
    Truncate(Truncate),
    /// State reached stable storage.
    Persist(Persist),
    /// The node's commit index advanced.
    Commit(Commit),
    /// The node applied an entry to its state machine.
    Apply(Apply),
    /// The node compacted its log into a snapshot of its own.
    Snapshot(SnapshotEvent),
    /// The node installed a snapshot received from a leader.
    Install(SnapshotEvent),
    /// The node, leading, served a read without the log (ReadIndex or its
    /// lease).
    Read(Read),
    /// Events of this node were lost from the trace here.
    Gap(Gap),
}

impl Event {
    /// The wire name of this event's type.
    pub fn event_type(&self) -> EventType {
        match self {
            Event::Init(_) => EventType::Init,
            Event::Crash(_) => EventType::Crash,
            Event::Role(_) => EventType::Role,
            Event::Timeout(_) => EventType::Timeout,
            Event::Send(_) => EventType::Send,
            Event::Receive(_) => EventType::Receive,
            Event::Append(_) => EventType::Append,
            Event::Truncate(_) => EventType::Truncate,
            Event::Persist(_) => EventType::Persist,
            Event::Commit(_) => EventType::Commit,
            Event::Apply(_) => EventType::Apply,
            Event::Snapshot(_) => EventType::Snapshot,
            Event::Install(_) => EventType::Install,
            Event::Read(_) => EventType::Read,
            Event::Gap(_) => EventType::Gap,
        }
    }
}

/// Why a node started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitReason {
    Boot,
    Restart,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Init {
    pub reason: InitReason,
    /// Recovered current term.
    pub term: Term,
    /// Recovered vote in `term` (`null`: none).
    #[serde(deserialize_with = "required_nullable")]
    pub vote: Option<NodeId>,
    /// Recovered snapshot, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotMeta>,
    /// Recovered commit index, for implementations that keep it on disk
    /// (etcd-io/raft's `HardState.commit`); absent: the snapshot's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<Index>,
    /// Index of the last recovered log entry.
    pub last_index: Index,
    /// Term of the last recovered log entry (0 for an empty log).
    pub last_term: Term,
    /// The recovered entries after the snapshot, when the emitter logs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<Entry>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Crash {}

/// Why a node changed role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleReason {
    /// Election timeout: follower or candidate becomes candidate.
    ElectionTimeout,
    /// Votes from a quorum: candidate becomes leader.
    WonElection,
    /// A message with a higher term: any role becomes follower.
    HigherTerm,
    /// AppendEntries (or a heartbeat) from the current term's leader:
    /// candidate or pre-candidate becomes follower.
    LeaderDiscovered,
    /// Feature `lost-election`: a candidate or pre-candidate that can no
    /// longer win becomes follower in the same term.
    LostElection,
    /// Feature `pre-vote`: a pre-candidate with pre-votes from a quorum
    /// becomes candidate (in a new term).
    PreVoteWon,
    /// Feature `check-quorum`: a leader that has not heard from a quorum
    /// within an election timeout becomes follower in the same term.
    CheckQuorum,
    /// Feature `transfer`: a `timeout_now` makes a follower candidate at once.
    Transfer,
    /// Another reason the emitter cannot map to the above.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: Role,
    /// The node's term in the new role.
    pub term: Term,
    pub reason: RoleReason,
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    Election,
    Heartbeat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeout {
    pub timer: TimerKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageEvent {
    pub msg: Message,
}

/// A message between two nodes. `(from, id)` identifies it: a receive names
/// the send it delivers by carrying the same `from` and `id` (and identical
/// fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: u64,
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    #[serde(flatten)]
    pub rpc: Rpc,
    /// Feature `commit-any-message`: the sender's commit index, on an RPC
    /// that has no `commit` of its own (`append_entries` and `heartbeat`
    /// carry theirs in [`Rpc`]). Present exactly when `commit_term` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<Index>,
    /// Feature `commit-any-message`: the term of the sender's entry at its
    /// commit index (raft-rs `commit_term`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_term: Option<Term>,
}

impl Message {
    /// A message without commit information.
    pub fn new(id: u64, from: NodeId, to: NodeId, term: Term, rpc: Rpc) -> Self {
        Message {
            id,
            from,
            to,
            term,
            rpc,
            commit: None,
            commit_term: None,
        }
    }

    /// The sender's commit index and the term of its entry there, when the
    /// message carries both (feature `commit-any-message`).
    pub fn commit_info(&self) -> Option<(Index, Term)> {
        let commit = self.rpc.own_commit().or(self.commit)?;
        Some((commit, self.commit_term?))
    }

    /// What is wrong with the message's `commit` and `commit_term`, if
    /// anything: they go together, and an RPC with a `commit` of its own
    /// takes only `commit_term`.
    pub fn commit_fields_error(&self) -> Option<(&'static str, &'static str)> {
        let own = self.rpc.own_commit().is_some();
        match (own, self.commit.is_some(), self.commit_term.is_some()) {
            (true, true, _) => Some(("commit", "given twice")),
            (false, true, false) => Some((
                "commit_term",
                "missing field (commit and commit_term go together)",
            )),
            (false, false, true) => Some((
                "commit",
                "missing field (commit and commit_term go together)",
            )),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        fn take<T: serde::de::DeserializeOwned, E: Error>(
            map: &mut serde_json::Map<String, serde_json::Value>,
            key: &'static str,
        ) -> Result<Option<T>, E> {
            match map.remove(key) {
                None => Ok(None),
                Some(v) => serde_json::from_value(v).map(Some).map_err(E::custom),
            }
        }
        let required = |v: Option<u64>, key: &'static str| v.ok_or(D::Error::missing_field(key));
        let id = required(take(&mut map, "id")?, "id")?;
        let from = required(take(&mut map, "from")?, "from")?;
        let to = required(take(&mut map, "to")?, "to")?;
        let term = required(take(&mut map, "term")?, "term")?;
        let own = Rpc::has_own_commit(map.get("rpc").and_then(|v| v.as_str()));
        let commit = if own { None } else { take(&mut map, "commit")? };
        let commit_term = take(&mut map, "commit_term")?;
        let rpc: Rpc =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        let m = Message {
            id,
            from,
            to,
            term,
            rpc,
            commit,
            commit_term,
        };
        if let Some((field, what)) = m.commit_fields_error() {
            return Err(D::Error::custom(format!("{field}: {what}")));
        }
        Ok(m)
    }
}

/// The body of a message; `rpc` on the wire names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rpc", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rpc {
    RequestVote {
        last_index: Index,
        last_term: Term,
        /// Feature `leader-transfer`: the campaign was started by a
        /// `timeout_now`, so voters may not ignore it because of a leader
        /// lease (etcd-io/raft's `campaignTransfer` context).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        transfer: bool,
    },
    RequestVoteReply {
        granted: bool,
    },
    AppendEntries {
        prev_index: Index,
        prev_term: Term,
        /// The leader's commit index.
        commit: Index,
        /// The entries, from `prev_index + 1` on (absent when the emitter
        /// only observes counts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entries: Option<Vec<Entry>>,
        /// How many entries (for emitters that observe only counts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry_count: Option<u64>,
        /// Feature `read-index`, for an implementation whose ReadIndex
        /// rounds are AppendEntries rather than `heartbeat`s: the round this
        /// message belongs to (as a heartbeat's `context`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<u64>,
    },
    AppendEntriesReply {
        success: bool,
        /// On success: the index of the last entry known to match the leader.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        match_index: Option<Index>,
        /// On rejection: where the leader should retry from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint_index: Option<Index>,
        /// On rejection: the term of the follower's conflicting entry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint_term: Option<Term>,
        /// The `context` of the AppendEntries it answers, echoed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<u64>,
    },
    InstallSnapshot {
        last_index: Index,
        last_term: Term,
        /// Byte offset of this chunk in the snapshot.
        #[serde(default)]
        offset: u64,
        /// Whether this is the last chunk.
        done: bool,
        /// The snapshot's state-machine contents, when the emitter logs them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<serde_json::Value>,
    },
    InstallSnapshotReply {
        /// The snapshot index the follower now has (its match index).
        last_index: Index,
    },
    /// Feature `pre-vote`: would you vote for me in `term`? (`term` is the
    /// term the sender would campaign in, one above its own.)
    PreVote {
        last_index: Index,
        last_term: Term,
    },
    /// Feature `pre-vote`: the answer; `term` is the request's term when
    /// granted, the voter's own term when refused.
    PreVoteReply {
        granted: bool,
    },
    /// Feature `heartbeat`: a leader's heartbeat without log position;
    /// `commit` is at most what the receiver is known to hold (etcd-io/raft
    /// sends `min(match, committed)`).
    Heartbeat {
        commit: Index,
        /// Feature `read-index`: the read this heartbeat round confirms
        /// leadership for (any number the leader chooses; etcd-io/raft's
        /// `Context`), echoed by the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<u64>,
    },
    /// Feature `heartbeat`: the answer to a heartbeat, with its `context`.
    HeartbeatReply {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<u64>,
    },
    /// Feature `transfer`: the leader tells an up-to-date follower to start
    /// an election at once.
    TimeoutNow {},
    /// Feature `forward-proposals`: a node hands client proposals to the
    /// leader it knows (etcd-io/raft MsgProp). Not a Raft RPC: it changes no
    /// term and nothing on either node; the leader's `append` events that
    /// follow are its proposals as always. `term` is informative (etcd-io/raft
    /// sends 0).
    Propose {
        /// The proposed entries' contents (no term: the leader gives them
        /// its own), when the emitter logs them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entries: Option<Vec<EntryData>>,
    },
}

impl Rpc {
    /// The RPC's name as the `rpc` field spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Rpc::RequestVote { .. } => "request_vote",
            Rpc::RequestVoteReply { .. } => "request_vote_reply",
            Rpc::AppendEntries { .. } => "append_entries",
            Rpc::AppendEntriesReply { .. } => "append_entries_reply",
            Rpc::InstallSnapshot { .. } => "install_snapshot",
            Rpc::InstallSnapshotReply { .. } => "install_snapshot_reply",
            Rpc::PreVote { .. } => "pre_vote",
            Rpc::PreVoteReply { .. } => "pre_vote_reply",
            Rpc::Heartbeat { .. } => "heartbeat",
            Rpc::HeartbeatReply { .. } => "heartbeat_reply",
            Rpc::TimeoutNow {} => "timeout_now",
            Rpc::Propose { .. } => "propose",
        }
    }

    /// The `commit` of an RPC that carries one of its own (`append_entries`,
    /// `heartbeat`).
    pub fn own_commit(&self) -> Option<Index> {
        match self {
            Rpc::AppendEntries { commit, .. } | Rpc::Heartbeat { commit, .. } => Some(*commit),
            _ => None,
        }
    }

    /// Whether the RPC named `rpc` has a `commit` of its own.
    pub fn has_own_commit(rpc: Option<&str>) -> bool {
        matches!(rpc, Some("append_entries" | "heartbeat"))
    }

    /// How many entries an AppendEntries carries, as far as it is known.
    pub fn entry_count(&self) -> Option<u64> {
        match self {
            Rpc::AppendEntries {
                entries,
                entry_count,
                ..
            } => entries.as_ref().map(|e| e.len() as u64).or(*entry_count),
            _ => None,
        }
    }
}

/// A log entry. `term` is present unless the emitter observes only counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub term: Term,
    /// The entry's contents, when the emitter observes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<EntryData>,
}

/// What a log entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EntryData {
    /// The empty entry a leader appends when it takes office.
    Noop,
    /// A client command, identified by (client, req) for exactly-once application.
    Command { client: u64, req: u64, op: Op },
    /// A membership change (a configuration entry). With `voters` it holds
    /// the whole new configuration (its voters and `learners`, and in a
    /// joint configuration C_old,new the old voters as `outgoing_voters`),
    /// which the checker interprets when the trace declares feature
    /// `membership` or `config-on-apply`; `data`, any JSON, optional, is
    /// compared between copies of the entry, never interpreted.
    Config {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voters: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        learners: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outgoing_voters: Option<Vec<NodeId>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<serde_json::Value>,
    },
    /// An application command the checker does not interpret (no client
    /// session it can see): `data`, any JSON, optional, is compared between
    /// copies of the entry.
    Opaque {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<serde_json::Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Append {
    /// Index of the first appended entry.
    pub index: Index,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<Entry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Truncate {
    /// The first removed index; entries `from..` are gone.
    pub from: Index,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persist {
    /// Durable current term.
    pub term: Term,
    /// Durable vote in `term` (`null`: none).
    #[serde(deserialize_with = "required_nullable")]
    pub vote: Option<NodeId>,
    /// Index of the last durable log entry.
    pub last_index: Index,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The new commit index.
    pub index: Index,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Apply {
    pub index: Index,
    pub term: Term,
    /// The client and request the entry carries, for commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<u64>,
    /// True when the session table recognised a retried command and did not
    /// execute it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// How a leader confirmed it could serve a read without the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadVia {
    /// A heartbeat round that a quorum echoed (thesis 6.4, feature
    /// `read-index`).
    ReadIndex,
    /// The leader's lease (thesis 6.4.1, feature `lease-read`).
    Lease,
}

/// A read served without the log: the node answers it from its state machine
/// once it has applied up to `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Read {
    /// The read index.
    pub index: Index,
    pub via: ReadVia,
    /// With `read_index`: the `context` of the heartbeat round the leader
    /// sent for this read. Absent when the leader alone is a quorum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<u64>,
    /// The client and request of the read, when the node knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<u64>,
}

/// Index and term of the last entry a snapshot covers, and optionally the
/// cluster configuration it holds (etcd-io/raft's `ConfState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Configuration>,
}

/// A cluster configuration as a snapshot holds it: the fields of a
/// `config` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Configuration {
    pub voters: Vec<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learners: Option<Vec<NodeId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing_voters: Option<Vec<NodeId>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotEvent {
    pub index: Index,
    pub term: Term,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    /// How many events were lost, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Deserializes a field that must be present but may be `null` (serde
/// otherwise lets an `Option` field be missing).
pub(crate) fn required_nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// Serde helper for `Option<Option<T>>`: absent = `None`, `null` = `Some(None)`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
