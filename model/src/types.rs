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
    /// A configuration entry (feature membership): not a client's
    /// operation but the cluster's, with client 0 ([`Command::config`]).
    /// Applying it changes only the configuration the state machine holds.
    Config(Membership),
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

impl Command {
    /// The configuration entry's command for `m`: client 0 (no client;
    /// client ids start at 1), sequence number 0.
    pub fn config(m: Membership) -> Command {
        Command {
            client: 0,
            seq: 0,
            op: Op::Config(m),
        }
    }

    /// The configuration a configuration entry holds.
    pub fn membership(&self) -> Option<Membership> {
        match self.op {
            Op::Config(m) => Some(m),
            _ => None,
        }
    }
}

/// A set of server ids, as bits (id `i` is bit `i - 1`; ids 1 to
/// [`Members::MAX`]). Only feature membership uses it; without it every
/// server `1..=servers` votes, however many there are.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Members(pub u64);

impl Members {
    /// The largest server id a set can hold.
    pub const MAX: NodeId = 64;
    /// The servers `1..=n` (at most [`Members::MAX`]).
    pub fn first(n: u64) -> Members {
        Members(if n >= 64 { u64::MAX } else { (1u64 << n) - 1 })
    }
    pub fn contains(self, id: NodeId) -> bool {
        (1..=Self::MAX).contains(&id) && self.0 & (1 << (id - 1)) != 0
    }
    pub fn with(self, id: NodeId) -> Members {
        Members(self.0 | (1 << (id - 1)))
    }
    pub fn without(self, id: NodeId) -> Members {
        Members(self.0 & !(1 << (id - 1)))
    }
    pub fn union(self, other: Members) -> Members {
        Members(self.0 | other.0)
    }
    /// The ids of `self` that are not in `other`.
    pub fn minus(self, other: Members) -> Members {
        Members(self.0 & !other.0)
    }
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The ids, ascending.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let id = bits.trailing_zeros() as NodeId + 1;
                bits &= bits - 1;
                id
            })
        })
    }
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A cluster configuration (thesis chapter 4): the voters, a majority of
/// whom elects a leader and commits an entry, and the learners (thesis
/// 4.2.1, "non-voting members"), which receive the log but never vote and
/// are never counted. During joint consensus (thesis 4.3, C_old,new),
/// `outgoing` holds C_old's voters and `voters` C_new's, and elections and
/// commitment need a majority of each; otherwise `outgoing` is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Membership {
    pub voters: Members,
    pub learners: Members,
    pub outgoing: Members,
}

impl Membership {
    /// Everyone the leader replicates to: voters (of both configurations
    /// while joint) and learners.
    pub fn members(&self) -> Members {
        self.voters.union(self.learners).union(self.outgoing)
    }

    /// Whether this is a joint configuration C_old,new.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Everyone whose vote counts: the voters of C_new and of C_old.
    pub fn all_voters(&self) -> Members {
        self.voters.union(self.outgoing)
    }
}

/// In words: `voters {1, 2, 3} learners {4}`, and for a joint configuration
/// `voters {2, 3, 4} outgoing voters {1, 2, 3} (joint)`.
impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "voters {:?}", self.voters)?;
        if !self.learners.is_empty() {
            write!(f, " learners {:?}", self.learners)?;
        }
        if self.is_joint() {
            write!(f, " outgoing voters {:?} (joint)", self.outgoing)?;
        }
        Ok(())
    }
}

/// A change of membership a leader may propose: one server at a time
/// (thesis 4.1), so that the majorities of the old and the new
/// configuration always overlap, or any change in two steps through joint
/// consensus (thesis 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Make a server a voter: a new server, or a learner promoted.
    AddVoter(NodeId),
    /// Remove a voter (perhaps the leader itself, thesis 4.2.2).
    RemoveVoter(NodeId),
    /// Add a server as a learner.
    AddLearner(NodeId),
    /// Remove a learner (it was never counted, so no majority changes).
    RemoveLearner(NodeId),
    /// Make a voter a learner (etcd-io/raft `AddLearnerNode` on a voter,
    /// hashicorp/raft `DemoteVoter`): one voter fewer, as a removal.
    Demote(NodeId),
    /// Enter joint consensus C_old,new towards these voters (thesis 4.3;
    /// etcd-io/raft's `ConfChangeV2` of several changes): the current
    /// voters become the outgoing ones. Learners that become voters stop
    /// being learners.
    Joint(Members),
    /// Leave joint consensus: C_new alone (etcd-io/raft's empty
    /// `ConfChangeV2`, proposed by the leader itself with auto-leave).
    LeaveJoint,
}

impl Change {
    /// The servers the change names.
    pub fn servers(self) -> Members {
        match self {
            Change::AddVoter(j)
            | Change::RemoveVoter(j)
            | Change::AddLearner(j)
            | Change::RemoveLearner(j)
            | Change::Demote(j) => Members::default().with(j),
            Change::Joint(voters) => voters,
            Change::LeaveJoint => Members::default(),
        }
    }

    /// The configuration after this change, or `None` when it changes
    /// nothing or would leave no voter. Only leaving changes a joint
    /// configuration (etcd-io/raft refuses a simple change in one), and
    /// a joint configuration is never entered from another.
    pub fn apply(self, m: Membership) -> Option<Membership> {
        match self {
            Change::Joint(voters) if !m.is_joint() && !voters.is_empty() && voters != m.voters => {
                return Some(Membership {
                    voters,
                    learners: m.learners.minus(voters),
                    outgoing: m.voters,
                })
            }
            Change::LeaveJoint if m.is_joint() => {
                return Some(Membership {
                    outgoing: Members::default(),
                    ..m
                })
            }
            _ if m.is_joint() => return None,
            _ => {}
        }
        let next = match self {
            Change::AddVoter(j) if !m.voters.contains(j) => Membership {
                voters: m.voters.with(j),
                learners: m.learners.without(j),
                outgoing: Members::default(),
            },
            Change::RemoveVoter(j) if m.voters.contains(j) && m.voters.len() > 1 => Membership {
                voters: m.voters.without(j),
                learners: m.learners,
                outgoing: Members::default(),
            },
            Change::AddLearner(j) if !m.members().contains(j) => Membership {
                voters: m.voters,
                learners: m.learners.with(j),
                outgoing: Members::default(),
            },
            Change::RemoveLearner(j) if m.learners.contains(j) => Membership {
                voters: m.voters,
                learners: m.learners.without(j),
                outgoing: Members::default(),
            },
            Change::Demote(j) if m.voters.contains(j) && m.voters.len() > 1 => Membership {
                voters: m.voters.without(j),
                learners: m.learners.with(j),
                outgoing: Members::default(),
            },
            _ => return None,
        };
        Some(next)
    }

    /// The one change that turns `from` into `to`, if there is one (thesis
    /// 4.1: anything else changes more than one server at a time; thesis
    /// 4.3: or enters or leaves joint consensus).
    pub fn between(from: Membership, to: Membership) -> Option<Change> {
        let joint = [Change::Joint(to.voters), Change::LeaveJoint];
        let changed = Members((from.voters.0 ^ to.voters.0) | (from.learners.0 ^ to.learners.0));
        let mut ids = changed.iter();
        let single = match (ids.next(), ids.next()) {
            (Some(j), None) => vec![
                Change::AddVoter(j),
                Change::RemoveVoter(j),
                Change::AddLearner(j),
                Change::RemoveLearner(j),
                Change::Demote(j),
            ],
            _ => vec![],
        };
        single
            .into_iter()
            .chain(joint)
            .find(|c| c.apply(from) == Some(to))
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::AddVoter(j) => write!(f, "add:{j}"),
            Change::RemoveVoter(j) => write!(f, "remove:{j}"),
            Change::AddLearner(j) => write!(f, "learner:{j}"),
            Change::RemoveLearner(j) => write!(f, "remove-learner:{j}"),
            Change::Demote(j) => write!(f, "demote:{j}"),
            Change::Joint(voters) => {
                let ids: Vec<String> = voters.iter().map(|j| j.to_string()).collect();
                write!(f, "joint:{}", ids.join(","))
            }
            Change::LeaveJoint => write!(f, "leave-joint"),
        }
    }
}

impl std::str::FromStr for Change {
    type Err = String;
    /// `add:ID`, `remove:ID`, `learner:ID`, `remove-learner:ID`, `demote:ID`,
    /// `joint:ID,ID,...` or `leave-joint`.
    fn from_str(s: &str) -> Result<Change, String> {
        let bad = || {
            format!(
                "bad membership change {s:?}; expected add:ID, remove:ID, learner:ID, \
                 remove-learner:ID, demote:ID, joint:ID,ID,... or leave-joint"
            )
        };
        if s == "leave-joint" {
            return Ok(Change::LeaveJoint);
        }
        let (kind, ids) = s.split_once(':').ok_or_else(bad)?;
        let id = |text: &str| -> Result<NodeId, String> {
            let id: NodeId = text.parse().map_err(|_| bad())?;
            if !(1..=Members::MAX).contains(&id) {
                return Err(format!(
                    "bad membership change {s:?}: server ids run from 1 to {}",
                    Members::MAX
                ));
            }
            Ok(id)
        };
        if kind == "joint" {
            let mut voters = Members::default();
            for text in ids.split(',') {
                voters = voters.with(id(text)?);
            }
            return Ok(Change::Joint(voters));
        }
        let id = id(ids)?;
        match kind {
            "add" => Ok(Change::AddVoter(id)),
            "remove" => Ok(Change::RemoveVoter(id)),
            "learner" => Ok(Change::AddLearner(id)),
            "remove-learner" => Ok(Change::RemoveLearner(id)),
            "demote" => Ok(Change::Demote(id)),
            _ => Err(bad()),
        }
    }
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
