//! One server's state (Figure 2's "State"), its log with a compacted prefix,
//! and the parameters every rule shares ([`Rules`]).

use crate::bugs::Bug;
use crate::state_machine::StateMachine;
use crate::types::{Entry, Index, Members, Membership, NodeId, Role, Term};

/// A log whose prefix up to `snapshot_index` is compacted into a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Log {
    /// Index of the last entry the snapshot covers (0: no snapshot).
    pub snapshot_index: Index,
    /// Term of that entry (0: no snapshot).
    pub snapshot_term: Term,
    /// The state machine after applying entries `1..=snapshot_index`.
    pub snapshot_data: StateMachine,
    /// Entries `snapshot_index + 1 ..= last_index()`.
    pub entries: Vec<Entry>,
}

impl Log {
    /// Index of the last entry (compacted or not).
    pub fn last_index(&self) -> Index {
        self.snapshot_index + self.entries.len() as Index
    }

    /// Term of the last entry (0 for an empty log).
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The term of the entry at `index`, when known: 0 for index 0, the
    /// snapshot's term at `snapshot_index`, `None` inside the compacted
    /// prefix and past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            Some(0)
        } else if index == self.snapshot_index {
            Some(self.snapshot_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// The (uncompacted) entry at `index`.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Whether the log holds `index` (in the snapshot or as an entry).
    pub fn holds(&self, index: Index) -> bool {
        index <= self.last_index()
    }

    /// The uncompacted entries from `from` on, at most `max` of them.
    pub fn entries_from(&self, from: Index, max: usize) -> Vec<Entry> {
        let start = from.saturating_sub(self.snapshot_index + 1) as usize;
        self.entries.iter().skip(start).take(max).copied().collect()
    }

    /// Removes the entries from `index` on; returns whether any were removed.
    pub fn truncate_from(&mut self, index: Index) -> bool {
        let keep = index.saturating_sub(self.snapshot_index + 1) as usize;
        let removed = self.entries.len() > keep;
        self.entries.truncate(keep);
        removed
    }

    /// Whether `(last_index, last_term)` is at least as up-to-date as this
    /// log (section 5.4.1: compare last terms, then lengths).
    pub fn is_behind(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }
}

/// Model-only history variables of a server, as bits. They record that
/// something happened on this server since it (re)started so that
/// properties can see transitions; Raft never reads them.
pub mod ghost {
    /// A follower removed a conflicting (uncommitted) suffix of its log.
    pub const TRUNCATED: u32 = 1;
    /// A follower installed a snapshot sent by a leader.
    pub const INSTALLED_SNAPSHOT: u32 = 2;
    /// The state machine recognised a retried command and skipped it.
    pub const DEDUPLICATED: u32 = 4;
    /// A leader stepped down on seeing a higher term.
    pub const STEPPED_DOWN: u32 = 8;
    /// A leader removed or changed an entry of its own log in its term
    /// (violates Leader Append-Only).
    pub const LEADER_OVERWROTE: u32 = 16;
    /// A follower acknowledged a stale AppendEntries at its commit index
    /// ([`super::Rules::stale_append_reply`]).
    pub const STALE_APPEND_ACKED: u32 = 32;
    /// A candidate gave up an election it could no longer win
    /// ([`super::Rules::lost_election`]).
    pub const LOST_ELECTION: u32 = 64;
    /// A pre-candidate reached a pre-vote quorum and campaigned
    /// ([`super::Rules::pre_vote`]).
    pub const PRE_VOTE_WON: u32 = 128;
    /// A pre-candidate lost its pre-vote and returned to follower.
    pub const PRE_VOTE_LOST: u32 = 256;
    /// A leader stepped down by check-quorum ([`super::Rules::check_quorum`]).
    pub const CHECK_QUORUM_STEP_DOWN: u32 = 512;
    /// A follower advanced its commit index on a heartbeat
    /// ([`super::Rules::heartbeat`]).
    pub const HEARTBEAT_COMMIT: u32 = 1024;
    /// A pre-vote request changed the voter's term or vote (violates what
    /// pre-vote promises, thesis 9.6).
    pub const PRE_VOTE_DISTURBED: u32 = 2048;
    /// A leader served a read by ReadIndex ([`super::Rules::read_index`]).
    pub const READ_INDEX_SERVED: u32 = 4096;
    /// A follower committed up to a snapshot it already held the entries of
    /// ([`super::Rules::snapshot_fast_forward`]).
    pub const SNAPSHOT_FAST_FORWARD: u32 = 8192;
    /// A candidate whose election a TimeoutNow started won it
    /// ([`super::Rules::leader_transfer`]).
    pub const TRANSFER_COMPLETED: u32 = 16384;
    /// A server advanced its commit index on the commit a vote message
    /// carried ([`super::Rules::commit_any_message`]).
    pub const COMMIT_LEARNED: u32 = 32768;
    /// A leader served a read by its lease ([`super::Rules::lease_read`]).
    pub const LEASE_READ_SERVED: u32 = 65536;
    /// The server's lease ended by time (its lease timer, or a restart)
    /// since it last heard from a leader ([`super::Rules::lease_read`]).
    pub const LEASE_EXPIRED: u32 = 131072;
    /// A leader appended a command a follower forwarded to it
    /// ([`super::Rules::forward_proposals`]).
    pub const PROPOSAL_FORWARDED: u32 = 262144;
    /// A rule's precondition failed in this server's step (the rule
    /// panicked): the specification reached a state it does not handle.
    pub const RULE_FAILED: u32 = 524288;
    /// A leader saw a higher term in a reply and stepped down in its own
    /// term ([`super::Rules::stale_term_step_down`]).
    pub const STALE_TERM_STEP_DOWN: u32 = 1 << 20;
    /// A follower refused an AppendEntries whose previous entry is in its
    /// snapshot ([`super::Rules::refuse_compacted_prev`]).
    pub const COMPACTED_PREV_REFUSED: u32 = 1 << 21;
    /// A follower advanced its commit index only up to the last entry of a
    /// partial batch, short of the leader's commit index (Figure 2,
    /// AppendEntries rule 5; [`crate::Config::partial_batches`]).
    pub const COMMIT_BOUNDED_BY_BATCH: u32 = 1 << 22;
    /// The server applied a configuration that added a new voter
    /// ([`super::Rules::membership`]).
    pub const VOTER_ADDED: u32 = 1 << 23;
    /// The server applied a configuration that removed a voter.
    pub const VOTER_REMOVED: u32 = 1 << 24;
    /// The server applied a configuration that added a learner.
    pub const LEARNER_ADDED: u32 = 1 << 25;
    /// The server applied a configuration that made a learner a voter.
    pub const LEARNER_PROMOTED: u32 = 1 << 26;
    /// A leader stepped down after committing a configuration without it
    /// (thesis 4.2.2).
    pub const LEADER_REMOVED: u32 = 1 << 27;
    /// The server applied a joint configuration C_old,new (thesis 4.3).
    pub const JOINT_ENTERED: u32 = 1 << 28;
    /// The server applied C_new after C_old,new.
    pub const JOINT_LEFT: u32 = 1 << 29;
}

/// A server's state: Figure 2's persistent and volatile state, and the
/// leader's volatile state. `last_applied` always equals `commit`: the model
/// applies committed entries in the same step that commits them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server {
    /// This server's id (1-based).
    pub id: NodeId,
    // Persistent state on all servers.
    /// currentTerm.
    pub term: Term,
    /// votedFor in `term`.
    pub voted_for: Option<NodeId>,
    /// log[] (with its snapshot).
    pub log: Log,
    // Volatile state on all servers.
    pub role: Role,
    /// commitIndex (= lastApplied).
    pub commit: Index,
    /// The state machine after applying entries `1..=commit`.
    pub sm: StateMachine,
    /// The leader of `term` this server knows of (for redirecting clients).
    pub leader: Option<NodeId>,
    // Volatile state on candidates and leaders (empty otherwise).
    /// Servers that granted their vote in `term` (a candidate's), sorted.
    pub votes: Vec<NodeId>,
    /// Servers that refused their vote in `term` (a candidate's), sorted.
    /// Only counted with [`Rules::lost_election`].
    pub rejections: Vec<NodeId>,
    /// nextIndex[] by server id - 1 (a leader's).
    pub next_index: Vec<Index>,
    /// matchIndex[] by server id - 1 (a leader's).
    pub match_index: Vec<Index>,
    /// The last replication message a leader sent to each server (by id - 1).
    /// Not part of Raft: the model's leader does not resend a message
    /// identical to the last one (the network may duplicate it instead).
    pub last_sent: Vec<Option<crate::types::Msg>>,
    /// Peers the leader heard from in its term since its last check-quorum
    /// (etcd-io/raft `recent_active`), sorted; with [`Rules::check_quorum`].
    pub heard: Vec<NodeId>,
    /// Followers whose successful AppendEntries replies the leader received
    /// in its term since its last check-quorum (with [`Rules::lease_read`]):
    /// its lease, sorted.
    pub lease_acks: Vec<NodeId>,
    /// Reads waiting for their ReadIndex confirmation (a leader's, with
    /// [`Rules::read_index`]).
    pub reads: Vec<crate::types::PendingRead>,
    /// The leader's transfer of leadership in progress, if any (with
    /// [`Rules::leader_transfer`]).
    pub transfer: Option<crate::types::Transfer>,
    /// A candidate's election was started by a TimeoutNow (its RequestVotes
    /// carry `transfer`).
    pub transfer_campaign: bool,
    /// A follower's lease (with [`Rules::lease_read`]): it heard from the
    /// leader of its term and its minimum election timeout has not passed
    /// since (etcd-io/raft `inLease`); with check-quorum it then ignores
    /// vote requests of higher terms.
    pub lease: bool,
    /// A leader sent TimeoutNow in its term (with [`Rules::leader_transfer`]):
    /// the target's election overrides leases, so this leader's lease no
    /// longer protects reads in this term.
    pub sent_timeout_now: bool,
    /// [`ghost`] bits.
    pub ghost: u32,
}

/// What survives a crash: currentTerm, votedFor and the log with its
/// snapshot (the stateright `Storage` of a server).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Persistent {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub log: Log,
}

impl Server {
    /// A server booting for the first time.
    pub fn new(id: NodeId) -> Server {
        Server::recover(
            id,
            &Persistent {
                term: 0,
                voted_for: None,
                log: Log::default(),
            },
        )
    }

    /// A server restarting from its persistent state: a follower whose
    /// commit index and state machine are the snapshot's.
    pub fn recover(id: NodeId, p: &Persistent) -> Server {
        Server {
            id,
            term: p.term,
            voted_for: p.voted_for,
            log: p.log.clone(),
            role: Role::Follower,
            commit: p.log.snapshot_index,
            sm: p.log.snapshot_data.clone(),
            leader: None,
            votes: vec![],
            rejections: vec![],
            next_index: vec![],
            match_index: vec![],
            last_sent: vec![],
            heard: vec![],
            lease_acks: vec![],
            reads: vec![],
            transfer: None,
            transfer_campaign: false,
            lease: false,
            sent_timeout_now: false,
            ghost: 0,
        }
    }

    /// The persistent part of this state.
    pub fn persistent(&self) -> Persistent {
        Persistent {
            term: self.term,
            voted_for: self.voted_for,
            log: self.log.clone(),
        }
    }

    /// Whether the persistent part differs from `other`'s.
    pub fn persistent_changed(&self, other: &Server) -> bool {
        self.term != other.term || self.voted_for != other.voted_for || self.log != other.log
    }

    /// Whether a ghost bit is set.
    pub fn has(&self, bit: u32) -> bool {
        self.ghost & bit != 0
    }
}

/// Parameters shared by all rules: the cluster, the planted bug, if any, and
/// which behaviours of production Raft libraries beyond Figure 2 are allowed.
/// Every option is off in [`Rules::new`] (Figure 2 exactly); each is safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rules {
    /// Number of servers; ids are `1..=servers`.
    pub servers: u64,
    /// A planted bug, or `None` for the correct specification.
    pub bug: Option<Bug>,
    /// A server that knows the leader of its current term refuses to vote
    /// in that term, even if it has not voted yet (etcd-io/raft's and
    /// raft-rs's rule; refusing a vote never endangers safety). Off in the
    /// model checker; the trace validator allows either behaviour.
    pub sticky_leader: bool,
    /// Feature `stale-append-reply`: a follower that receives an
    /// AppendEntries whose prevLogIndex is below its commit index ignores it
    /// and replies success with its commit index as the match (etcd-io/raft
    /// `handleAppendEntries`, raft-rs `handle_append_entries`).
    pub stale_append_reply: bool,
    /// Feature `lost-election`: a candidate that can no longer win (too many
    /// refusals in its term) becomes a follower in the same term, leader
    /// unknown (etcd-io/raft and raft-rs `poll` -> `VoteLost` ->
    /// `becomeFollower(r.Term, None)`).
    pub lost_election: bool,
    /// Feature `pre-vote` (thesis 9.6): an election timeout makes a server a
    /// pre-candidate that asks for pre-votes for its term + 1 without raising
    /// its term or voting; only a pre-vote quorum makes it campaign. A pre-vote
    /// changes nothing on the voter.
    pub pre_vote: bool,
    /// Feature `pre-vote-stale-grant`: a pre-candidate also counts a granted
    /// pre-vote whose term is its own current term: a grant for an earlier
    /// round, which asked for that term (etcd-io/raft `stepCandidate` and
    /// raft-rs `step_candidate` poll every pre-vote response of their term).
    /// Pre-votes decide nothing for safety: the election that follows still
    /// needs real votes.
    pub pre_vote_stale_grant: bool,
    /// Feature `heartbeat`: the leader also sends heartbeats without log
    /// position, carrying `min(matchIndex, commitIndex)` (etcd-io/raft
    /// MsgHeartbeat); a follower commits up to it.
    pub heartbeat: bool,
    /// Feature `check-quorum` (thesis 6.2): a leader that has not heard from
    /// a quorum since its last check steps down; a follower that knows a
    /// leader may ignore (pre)vote requests of a higher term (the leader
    /// lease; the model checker uses that freedom only with
    /// [`Rules::lease_read`], which needs it; otherwise it only drops a
    /// message, and the trace validator allows it).
    pub check_quorum: bool,
    /// Feature `read-index` (thesis 6.4, etcd-io/raft ReadOnlySafe): a leader
    /// that has committed an entry of its term answers a read without
    /// appending it: it records its commit index as the read index,
    /// confirms it is still leader with a heartbeat round to a quorum, and
    /// answers once it has applied up to the read index. Without such a
    /// commit the read goes through the log as before.
    pub read_index: bool,
    /// Feature `snapshot-fast-forward`: a follower that receives a snapshot
    /// whose last (index, term) its log already holds commits up to it and
    /// installs nothing (etcd-io/raft and raft-rs `restore`).
    pub snapshot_fast_forward: bool,
    /// Feature `leader-transfer` (thesis 3.10, etcd-io/raft MsgTransferLeader,
    /// raft-rs): a leader may hand leadership to a follower. It stops taking
    /// client requests, brings the follower's log up to its own, and then
    /// sends it TimeoutNow; the follower campaigns at once, its RequestVotes
    /// marked `transfer` so that no voter ignores them for a leader lease.
    pub leader_transfer: bool,
    /// Feature `commit-any-message` (raft-rs `maybe_commit_by_vote`): vote
    /// and pre-vote requests and replies carry the sender's commit index and
    /// the term of its entry there; a receiver whose log holds that term at
    /// that index commits up to it ([`crate::rules::learn_commit`]).
    pub commit_any_message: bool,
    /// Feature `lease-read` (thesis 6.4.1, etcd-io/raft ReadOnlyLeaseBased):
    /// a leader that has committed an entry of its term and heard from a
    /// quorum since its last check-quorum answers a read at once from its
    /// state machine. Safe only with [`Rules::check_quorum`], whose
    /// followers refuse to vote for another server while they are in the
    /// leader's lease (mandatory with this feature), and only under a timing
    /// assumption the model states as its boundary (`model::leases_hold`).
    pub lease_read: bool,
    /// Feature `forward-proposals` (etcd-io/raft and raft-rs MsgProp, on
    /// unless DisableProposalForwarding): a follower that knows the leader
    /// of its term hands a client's command to it instead of redirecting
    /// the client; the leader appends it as its own proposal and answers
    /// the client. A forwarded command that reaches a server that is not
    /// leader is dropped (the client retries).
    pub forward_proposals: bool,
    /// Feature `stale-term-step-down` (hashicorp/raft `handleStaleTerm`,
    /// `heartbeat`): a leader that sees a higher term in a reply to its
    /// AppendEntries or InstallSnapshot need not adopt it: it becomes
    /// follower in its own term (or, as the trace validator also allows,
    /// ignores the reply and steps down later). Stepping down is always
    /// safe; the higher term reaches it with the next message of that term.
    pub stale_term_step_down: bool,
    /// Feature `refuse-compacted-prev` (hashicorp/raft `appendEntries`: the
    /// previous entry is read from the log store and a compacted one is not
    /// there): a follower may refuse an AppendEntries whose prevLogIndex is
    /// at or below its snapshot index, where Figure 13 counts it as
    /// matching. A
    /// refusal only lowers the leader's nextIndex (never below what the
    /// follower is known to match), and the leader falls back to its
    /// snapshot.
    pub refuse_compacted_prev: bool,
    /// Feature `late-self-vote` (hashicorp/raft `electSelf`): a candidate
    /// may send its RequestVotes before its vote for itself is durable; a
    /// crash before it is written forgets that vote (the model: a
    /// candidate's stored state never holds its vote for itself). Safe: the
    /// restarted server is no longer a candidate, so it cannot win the term
    /// it may now vote in for someone else.
    pub late_self_vote: bool,
    /// The initial configuration (feature membership): its voters and
    /// learners; the other servers start outside the cluster (they may be
    /// added). [`Rules::new`]: every server votes.
    pub initial: Membership,
    /// Feature `membership` (thesis chapter 4): configuration entries in the
    /// log change the cluster one server at a time (a voter added or
    /// removed, a learner added or promoted); a server uses the latest
    /// configuration in its log, committed or not (thesis 4.1, hashicorp/raft).
    /// Off: the configuration is always the initial one and the log is
    /// never searched for one.
    pub membership: bool,
    /// Feature `config-on-apply` (with membership; etcd-io/raft and raft-rs):
    /// a server uses the configuration of the last configuration entry it
    /// applied, not the latest in its log.
    pub config_on_apply: bool,
    /// Feature `removed-leader-stays` (with membership; etcd-io/raft without
    /// `StepDownOnRemoval`, its default): a leader whose removal (or
    /// demotion) took effect does not step down (thesis 4.2.2 has it step
    /// down); it goes on leading a cluster it is not part of, never counting
    /// itself, until it loses its leadership some other way.
    pub removed_leader_stays: bool,
}

/// The names of the optional behaviours [`Rules::with_feature`] accepts.
pub const FEATURES: [&str; 18] = [
    "stale-append-reply",
    "lost-election",
    "pre-vote",
    "pre-vote-stale-grant",
    "heartbeat",
    "check-quorum",
    "read-index",
    "snapshot-fast-forward",
    "leader-transfer",
    "commit-any-message",
    "lease-read",
    "forward-proposals",
    "stale-term-step-down",
    "refuse-compacted-prev",
    "late-self-vote",
    "membership",
    "config-on-apply",
    "removed-leader-stays",
];

/// A feature name that is not in [`FEATURES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFeature(pub String);

impl std::fmt::Display for UnknownFeature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown feature {:?}; known features: {}",
            self.0,
            FEATURES.join(", ")
        )
    }
}

impl std::error::Error for UnknownFeature {}

impl Rules {
    /// The correct rules for a cluster of `servers`: Figure 2, every
    /// optional behaviour off.
    pub fn new(servers: u64) -> Rules {
        Rules {
            servers,
            bug: None,
            sticky_leader: false,
            stale_append_reply: false,
            lost_election: false,
            pre_vote: false,
            pre_vote_stale_grant: false,
            heartbeat: false,
            check_quorum: false,
            read_index: false,
            snapshot_fast_forward: false,
            leader_transfer: false,
            commit_any_message: false,
            lease_read: false,
            forward_proposals: false,
            stale_term_step_down: false,
            refuse_compacted_prev: false,
            late_self_vote: false,
            initial: Membership {
                voters: Members::first(servers),
                learners: Members::default(),
                outgoing: Members::default(),
            },
            membership: false,
            config_on_apply: false,
            removed_leader_stays: false,
        }
    }

    /// Every optional behaviour on, except membership changes: `membership`
    /// and `config-on-apply` are two semantics of configuration entries, one
    /// or the other, not a permission (without them a configuration entry is
    /// replicated and applied like any other), and `removed-leader-stays`
    /// changes what a removed leader must do.
    pub fn all_features(servers: u64) -> Rules {
        let mut rules = Rules::new(servers);
        for name in FEATURES {
            if !matches!(
                name,
                "membership" | "config-on-apply" | "removed-leader-stays"
            ) {
                rules.with_feature(name).expect("a known feature");
            }
        }
        rules
    }

    /// Turns on the optional behaviour called `name` (one of [`FEATURES`]).
    pub fn with_feature(&mut self, name: &str) -> Result<(), UnknownFeature> {
        match name {
            "stale-append-reply" => self.stale_append_reply = true,
            "lost-election" => self.lost_election = true,
            "pre-vote" => self.pre_vote = true,
            "pre-vote-stale-grant" => self.pre_vote_stale_grant = true,
            "heartbeat" => self.heartbeat = true,
            "check-quorum" => self.check_quorum = true,
            "read-index" => self.read_index = true,
            "snapshot-fast-forward" => self.snapshot_fast_forward = true,
            "leader-transfer" => self.leader_transfer = true,
            "commit-any-message" => self.commit_any_message = true,
            "lease-read" => self.lease_read = true,
            "forward-proposals" => self.forward_proposals = true,
            "stale-term-step-down" => self.stale_term_step_down = true,
            "refuse-compacted-prev" => self.refuse_compacted_prev = true,
            "late-self-vote" => self.late_self_vote = true,
            "membership" => self.membership = true,
            "config-on-apply" => {
                self.membership = true;
                self.config_on_apply = true;
            }
            "removed-leader-stays" => self.removed_leader_stays = true,
            _ => return Err(UnknownFeature(name.to_string())),
        }
        Ok(())
    }

    /// The names of the optional behaviours that are on, in [`FEATURES`] order.
    pub fn features(&self) -> Vec<&'static str> {
        FEATURES
            .into_iter()
            .zip([
                self.stale_append_reply,
                self.lost_election,
                self.pre_vote,
                self.pre_vote_stale_grant,
                self.heartbeat,
                self.check_quorum,
                self.read_index,
                self.snapshot_fast_forward,
                self.leader_transfer,
                self.commit_any_message,
                self.lease_read,
                self.forward_proposals,
                self.stale_term_step_down,
                self.refuse_compacted_prev,
                self.late_self_vote,
                self.membership,
                self.config_on_apply,
                self.removed_leader_stays,
            ])
            .filter_map(|(name, on)| on.then_some(name))
            .collect()
    }

    /// The number of servers that make a majority (N/2+1).
    pub fn quorum(&self) -> usize {
        if self.bug(Bug::MinorityQuorum) {
            (self.servers / 2).max(1) as usize
        } else {
            (self.servers / 2 + 1) as usize
        }
    }

    /// Whether `bug` is planted.
    pub fn bug(&self, bug: Bug) -> bool {
        self.bug == Some(bug)
    }

    /// Every server id other than `me`.
    pub fn peers(&self, me: NodeId) -> impl Iterator<Item = NodeId> {
        (1..=self.servers).filter(move |&j| j != me)
    }
}
