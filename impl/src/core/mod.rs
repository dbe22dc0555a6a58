//! The deterministic, sans-IO Raft core, in the style of etcd-io/raft's
//! `RawNode` and tikv/raft-rs.
//!
//! # Inputs
//! [`RaftNode::tick`], [`RaftNode::step`] (a message), [`RaftNode::propose`],
//! [`RaftNode::read_index`], [`RaftNode::persisted`], [`RaftNode::applied`],
//! [`RaftNode::compact`] (the host took a snapshot). No clocks, threads,
//! sockets or randomness from outside: election timeouts come from a seeded
//! RNG in [`Config::seed`].
//!
//! # The Ready contract
//! After inputs, the host calls [`RaftNode::ready`] while
//! [`RaftNode::has_ready`] and, for each [`Ready`], **in this order**:
//! 1. writes `snapshot`, `hard_state` and `entries` to stable storage and
//!    syncs (entries overwrite the log from `entries[0].index` on);
//! 2. calls [`RaftNode::persisted`], which is the *only* way to obtain the
//!    messages of that Ready, except the leader's appends (below): votes,
//!    term changes and acknowledgements therefore can never leave before
//!    the state they promise is durable;
//! 3. sends those messages;
//! 4. installs `snapshot` (if any) into the state machine, applies
//!    `committed_entries` in order, calling [`RaftNode::applied`] for each,
//!    and serves `read_states` once it has applied up to their index.
//!
//! Optionally, between taking the Ready and step 1, the host may call
//! [`RaftNode::early_messages`] and send what it returns at once: a
//! leader's AppendEntries (its own new entries, or heartbeats), in a term
//! already durable (Raft thesis §10.2.1, the leader writes its log in
//! parallel with replicating it), and a follower's acknowledgements of
//! entries durable by an earlier write (its answers to heartbeats). The leader counts
//! itself towards a commit only for entries [`RaftNode::persisted`]
//! reported durable, so entries it sent early and then lost in a crash were
//! never counted. Which messages may go early is decided by one function,
//! `RaftNode::may_leave_early`; the Ready's messages are private, so a host
//! cannot take any other message before `persisted`. While the write runs,
//! the host may step the messages [`RaftNode::may_step_during_write`]
//! allows and send what [`RaftNode::take_early`] releases.
//!
//! # Reads
//! Linearizable reads use ReadIndex (see [`read`]): no log entry per read,
//! one heartbeat round to confirm leadership.

pub mod election;
pub mod log;
pub mod membership;
pub mod progress;
pub mod read;
pub mod replication;
pub mod snapshot;
pub(crate) mod trace;
pub mod transfer;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bugs::{Bug, Bugs};
use crate::trace::TraceSink;
use log::RaftLog;
pub use membership::{ChangeError, ConfChange};
use progress::Progress;
use read::{Lease, ReadOnly};
use transfer::Transfer;
pub use transfer::TransferError;
pub use types::*;

/// Static configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// The voters of the bootstrap configuration, this node included: the
    /// configuration used until the log (or a snapshot) holds one. Empty
    /// for a node that joins a running cluster: it takes part once the
    /// leader replicates a configuration that names it (see
    /// [`membership`]).
    pub peers: Vec<NodeId>,
    /// The election timeout is drawn uniformly from
    /// `[election_ticks, 2 * election_ticks)` ticks.
    pub election_ticks: u32,
    /// A leader sends heartbeats every `heartbeat_ticks` ticks.
    pub heartbeat_ticks: u32,
    /// Most entries in one AppendEntries (1 disables batching).
    pub max_batch: usize,
    /// Most AppendEntries in flight to one follower (pipelining window).
    pub max_inflight: usize,
    /// Bytes per InstallSnapshot chunk.
    pub snapshot_chunk: usize,
    /// Ticks to wait for a snapshot reply before sending it again.
    pub snapshot_retry_ticks: u32,
    /// Log compaction policy: the host should snapshot its state machine
    /// once this many entries have been applied since the last snapshot
    /// (see [`RaftNode::snapshot_due`]).
    pub compact_every: u64,
    /// Seed of the election-timeout RNG.
    pub seed: u64,
    /// Pre-vote (Raft thesis §9.6): on an election timeout the node first
    /// becomes a pre-candidate and asks for pre-votes in its next term
    /// without raising its own; only a pre-vote quorum starts a real
    /// election. A node partitioned away then cannot raise its term and
    /// disrupt the cluster when it comes back.
    pub pre_vote: bool,
    /// Check-quorum (thesis §6.2): a leader that has not heard from a quorum
    /// (itself included) within `election_ticks` steps down, and a node that
    /// heard from a leader within `election_ticks` ignores vote and pre-vote
    /// requests of a higher term (the leader lease).
    pub check_quorum: bool,
    /// Lost election (etcd-io/raft's `poll` -> `VoteLost`): a candidate that
    /// has counted refusals from a quorum, so that it can no longer win,
    /// becomes follower in its term with the leader unknown instead of
    /// waiting for its election timer. (A pre-candidate always does this.)
    pub lost_election: bool,
    /// Leader transfer (thesis §3.10) through [`RaftNode::transfer_leader`].
    /// A node always obeys a `TimeoutNow` from its leader; this only allows
    /// this node, when leading, to start transfers.
    pub leader_transfer: bool,
    /// Lease reads (thesis §6.4.1, etcd-io/raft's `ReadOnlyLeaseBased`);
    /// requires `check_quorum`. See [`read`] for the lease and the
    /// clock-drift assumption it rests on.
    pub lease_read: bool,
    /// The bound on clock drift that lease reads assume, in ticks: a
    /// leader's lease lasts `election_ticks - lease_drift_ticks` ticks from
    /// the heartbeat round that a quorum acknowledged, while the followers
    /// that acknowledged it refuse to help elect anyone else for
    /// `election_ticks` ticks of their own clocks after receiving it.
    pub lease_drift_ticks: u32,
    /// Membership changes ([`RaftNode::propose_change`], thesis §4.1): a
    /// leader takes them only with this on. Configuration entries from a
    /// leader are followed either way.
    pub membership: bool,
    /// Planted bugs (none in production).
    pub bugs: Bugs,
}

impl Config {
    /// Defaults for a node `id` of a cluster bootstrapped with voters `peers`. Pre-vote and
    /// check-quorum are off (the plain Raft of the paper's Figure 2); the
    /// raftkv node process turns both on.
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Self {
        Config {
            id,
            peers,
            election_ticks: 10,
            heartbeat_ticks: 2,
            max_batch: 256,
            max_inflight: 8,
            snapshot_chunk: 64 * 1024,
            snapshot_retry_ticks: 20,
            compact_every: 10_000,
            seed: 0,
            pre_vote: false,
            check_quorum: false,
            lost_election: false,
            leader_transfer: false,
            lease_read: false,
            lease_drift_ticks: 2,
            membership: false,
            bugs: Bugs::NONE,
        }
    }

    /// Checks the options that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_read && !self.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        if self.lease_read && self.lease_drift_ticks >= self.election_ticks {
            return Err(ConfigError::DriftTooLarge {
                drift: self.lease_drift_ticks,
                election: self.election_ticks,
            });
        }
        Ok(())
    }
}

/// A configuration whose options contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Without check-quorum followers do not honour a leader's lease, so a
    /// lease read could return stale data.
    #[error("lease reads require check-quorum (followers must honour the leader's lease)")]
    LeaseWithoutCheckQuorum,
    #[error(
        "the lease's clock-drift bound ({drift} ticks) must be below the election timeout ({election} ticks)"
    )]
    DriftTooLarge { drift: u32, election: u32 },
}

/// What a node recovers from stable storage at start.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot.
    pub entries: Vec<Entry>,
    /// How many times this node has started before (a restart counter kept
    /// in stable storage); it keeps message ids unique across restarts.
    pub incarnation: u64,
}

/// A read whose index is known: serve it once the state machine has applied
/// up to `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub ctx: u64,
    pub index: Index,
}

/// The answer of a non-leader to a proposal or read: who the leader is, as
/// far as this node knows (leader redirect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not the leader (leader: {leader:?})")]
pub struct NotLeader {
    pub leader: Option<NodeId>,
}

/// A batch of work for the host; see the module doc for the contract.
#[derive(Debug, Default)]
pub struct Ready {
    /// Hard state to persist, when it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it, then install it into
    /// the state machine.
    pub snapshot: Option<Snapshot>,
    /// Entries to persist; they replace the stored log from `entries[0].index`.
    pub entries: Vec<Entry>,
    /// Committed entries to apply, in order.
    pub committed_entries: Vec<Entry>,
    /// Reads ready to be served at an index.
    pub read_states: Vec<ReadState>,
    /// Messages, released by [`RaftNode::persisted`] only.
    messages: Vec<Message>,
    /// The leader's appends that may leave before this Ready is durable,
    /// released by [`RaftNode::early_messages`] (or, when the host does not
    /// ask for them, by [`RaftNode::persisted`] with the others).
    early: Vec<Message>,
    /// The log's last index when this Ready was taken: once it is durable,
    /// so is every entry up to here that is still in the log.
    last_index: Index,
}

impl Ready {
    /// Whether this Ready has anything to persist.
    pub fn must_persist(&self) -> bool {
        self.hard_state.is_some() || self.snapshot.is_some() || !self.entries.is_empty()
    }

    /// How many messages wait for persistence.
    pub fn pending_messages(&self) -> usize {
        self.messages.len()
    }

    /// How many messages [`RaftNode::early_messages`] would release.
    pub fn early_messages(&self) -> usize {
        self.early.len()
    }
}

/// One Raft node.
pub struct RaftNode {
    cfg: Config,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    /// The latest snapshot this node holds (to send to followers).
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) votes: BTreeMap<NodeId, bool>,
    pub(crate) election_elapsed: u32,
    pub(crate) heartbeat_elapsed: u32,
    pub(crate) election_timeout: u32,
    rng: ChaCha8Rng,
    pub(crate) msgs: Vec<Message>,
    /// The hard state last handed out for persisting.
    handed_hs: HardState,
    /// The hard state last reported durable.
    durable_hs: HardState,
    /// The log's last index when the Ready last reported durable was taken;
    /// entries up to `durable_last.min(log.stable)` are on the disk and
    /// still in the log (a truncation since lowers `log.stable`).
    durable_last: Index,
    /// A snapshot installed from the leader, not yet handed to the host.
    pub(crate) pending_snapshot: Option<Snapshot>,
    pub(crate) incoming: Option<snapshot::Incoming>,
    pub(crate) reads: ReadOnly,
    /// The leader's lease for lease reads.
    pub(crate) lease: Lease,
    /// A leader transfer in progress (leader only).
    pub(crate) transfer: Option<Transfer>,
    /// Ticks since this node (re)started, counted up to `election_ticks`.
    pub(crate) since_start: u32,
    pub(crate) read_states: Vec<ReadState>,
    /// New entries appended by the leader but not yet broadcast.
    pub(crate) append_pending: bool,
    next_msg: u64,
    incarnation: u64,
    applied_reported: Index,
    /// A leader's entries conflicted with our committed log (proof of a
    /// safety violation elsewhere); the first such index.
    pub(crate) committed_conflict: Option<Index>,
    sink: Option<Box<dyn TraceSink>>,
    /// The configuration of [`Config::peers`], used until the log holds one.
    pub(crate) bootstrap: Membership,
}

impl RaftNode {
    /// Starts a node from what it recovered (`Recovered::default()` for a
    /// first boot). The trace gets an `init` event.
    pub fn new(cfg: Config, rec: Recovered, sink: Option<Box<dyn TraceSink>>) -> Self {
        assert!(cfg.id != 0, "0 is not a node id");
        if let Err(e) = cfg.validate() {
            panic!("invalid core configuration: {e}");
        }
        let snap_meta = rec.snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        let log = RaftLog::restore(
            snap_meta,
            rec.snapshot.as_ref().map(|s| s.config.clone()),
            rec.entries.clone(),
            rec.hard_state.commit,
        );
        let mut rng = ChaCha8Rng::seed_from_u64(
            cfg.seed ^ cfg.id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ rec.incarnation << 48,
        );
        let election_timeout = rng.random_range(cfg.election_ticks..2 * cfg.election_ticks);
        let hs = rec.hard_state;
        let mut node = RaftNode {
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            log,
            snapshot: rec.snapshot.clone(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            election_timeout,
            rng,
            msgs: Vec::new(),
            handed_hs: hs,
            durable_hs: hs,
            durable_last: 0,
            pending_snapshot: None,
            incoming: None,
            reads: ReadOnly::default(),
            lease: Lease::default(),
            transfer: None,
            since_start: 0,
            read_states: Vec::new(),
            append_pending: false,
            next_msg: rec.incarnation << 40,
            incarnation: rec.incarnation,
            applied_reported: snap_meta.index,
            committed_conflict: None,
            sink,
            bootstrap: Membership::of_voters(cfg.peers.iter().copied()),
            cfg,
        };
        node.durable_last = node.log.stable;
        node.trace().started(&rec);
        node
    }

    // ----- observers -------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    pub fn role(&self) -> Role {
        self.role
    }
    /// The leader this node knows of (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// The latest snapshot this node holds (taken or installed).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    pub fn commit_index(&self) -> Index {
        self.log.committed
    }
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    /// The first committed index a leader tried to overwrite, if any: such
    /// a node has seen proof that the cluster lost a committed entry.
    pub fn committed_conflict(&self) -> Option<Index> {
        self.committed_conflict
    }
    pub(crate) fn bug(&self, b: Bug) -> bool {
        self.cfg.bugs.has(b)
    }

    // ----- messages --------------------------------------------------------

    /// Queues a message of our term (released after the next persist).
    pub(crate) fn send(&mut self, to: NodeId, body: Body) {
        self.send_in(to, self.term, body);
    }

    /// Queues a message carrying `term`: our own, or for pre-vote messages
    /// the term of the (prospective) election.
    pub(crate) fn send_in(&mut self, to: NodeId, term: Term, body: Body) {
        self.next_msg += 1;
        self.msgs.push(Message {
            id: self.next_msg,
            from: self.cfg.id,
            to,
            term,
            body,
        });
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.election_timeout = self
            .rng
            .random_range(self.cfg.election_ticks..2 * self.cfg.election_ticks);
    }

    // ----- inputs ----------------------------------------------------------

    /// One unit of logical time.
    pub fn tick(&mut self) {
        self.since_start = (self.since_start + 1).min(self.cfg.election_ticks);
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::PreCandidate | Role::Candidate => self.tick_election(),
        }
    }

    /// Handles a message from a peer.
    pub fn step(&mut self, m: Message) {
        // Messages from any node are heard, members or not: a node that
        // joins hears its leader before its log names either of them.
        if m.to != self.cfg.id || m.from == self.cfg.id || m.from == 0 {
            return;
        }
        if self.discard_for_lease(&m) {
            return;
        }
        self.trace().received(&m);
        if m.term > self.term {
            match m.body {
                // Leader lease (check-quorum): a node that heard from a live
                // leader recently ignores campaigns entirely, except one
                // that the leader itself started by a TimeoutNow (thesis
                // §3.10: a transfer overrides the lease).
                Body::RequestVote {
                    transfer: false, ..
                }
                | Body::PreVote { .. }
                    if self.in_lease() =>
                {
                    return
                }
                // A pre-vote request's term is the sender's next term, and a
                // granted pre-vote carries the term we would campaign in:
                // neither is a term anyone holds yet.
                Body::PreVote { .. } | Body::PreVoteReply { granted: true } => {}
                Body::AppendEntriesReply { .. }
                    if self.role == Role::Leader
                        && self.bug(crate::bugs::Bug::IgnoreHigherTermReply) =>
                {
                    // BUG (planted): the higher term goes unheeded.
                    return;
                }
                _ => {
                    let leader = match m.body {
                        Body::AppendEntries { .. } | Body::InstallSnapshot { .. } => Some(m.from),
                        _ => None,
                    };
                    self.become_follower(m.term, leader);
                }
            }
        } else if m.term < self.term {
            // A stale leader learns the new term from our answer (so that a
            // node cut off while it led can rejoin); a stale (pre-)candidate
            // learns it from our refusal. Other stale messages are dropped.
            match m.body {
                Body::AppendEntries { .. } => self.send(
                    m.from,
                    Body::AppendEntriesReply {
                        success: false,
                        index: self.log.last_index() + 1,
                        hint_term: 0,
                        reject_prev: 0,
                        read_ctx: 0,
                    },
                ),
                Body::InstallSnapshot { .. } => self.send(
                    m.from,
                    Body::InstallSnapshotReply {
                        last_index: self.log.committed,
                    },
                ),
                Body::RequestVote { .. } => {
                    self.send(m.from, Body::RequestVoteReply { granted: false })
                }
                Body::PreVote { .. } => self.send(m.from, Body::PreVoteReply { granted: false }),
                _ => {}
            }
            return;
        }
        if self.role == Role::Leader
            && matches!(
                m.body,
                Body::AppendEntriesReply { .. } | Body::InstallSnapshotReply { .. }
            )
        {
            if let Some(pr) = self.progress.get_mut(&m.from) {
                pr.recent_active = true;
            }
        }
        match m.body {
            Body::RequestVote {
                last_index,
                last_term,
                ..
            } => self.handle_request_vote(m.from, last_index, last_term),
            Body::RequestVoteReply { granted } => self.handle_vote_reply(m.from, granted),
            Body::PreVote {
                last_index,
                last_term,
            } => self.handle_pre_vote(m.from, m.term, last_index, last_term),
            Body::PreVoteReply { granted } => self.handle_pre_vote_reply(m.from, m.term, granted),
            Body::AppendEntries {
                prev_index,
                prev_term,
                commit,
                entries,
                read_ctx,
            } => self.handle_append(m.from, prev_index, prev_term, commit, entries, read_ctx),
            Body::AppendEntriesReply {
                success,
                index,
                hint_term,
                reject_prev,
                read_ctx,
            } => self.handle_append_reply(m.from, success, index, hint_term, reject_prev, read_ctx),
            Body::InstallSnapshot {
                meta,
                config,
                offset,
                chunk,
                done,
            } => self.handle_snapshot_chunk(m.from, meta, config, offset, chunk, done),
            Body::InstallSnapshotReply { last_index } => {
                self.handle_snapshot_reply(m.from, last_index)
            }
            Body::TimeoutNow => self.handle_timeout_now(m.from),
        }
    }

    /// A client proposal. On the leader the command is appended and its
    /// index returned; elsewhere the known leader is returned. A leader
    /// transferring its leadership takes no proposals (thesis §3.10: they
    /// would keep the target behind) and answers with the leader unknown.
    pub fn propose(&mut self, cmd: Command) -> Result<Index, NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(NotLeader { leader: None });
        }
        Ok(self.append_local(Payload::Command(Arc::new(cmd))))
    }

    /// Whether `m`, queued by this node, may leave before the Ready that
    /// carries it is durable. Only messages that promise nothing the write
    /// is still making true, in a term already durable (so a crash cannot
    /// take this node back to an earlier term after the message left):
    /// - the leader's AppendEntries, with its own log appends (Raft thesis
    ///   §10.2.1) or none (heartbeats, probes). They promise nothing about
    ///   the leader's disk: it counts itself towards a commit only once
    ///   [`RaftNode::persisted`] says its entries are durable, the commit
    ///   index they carry counts only durable copies, and each follower
    ///   acknowledges only what it made durable itself;
    /// - a follower's acknowledgement of entries that are durable already,
    ///   such as its answer to a heartbeat (Figure 2's "reply after storing"
    ///   holds: they were stored by an earlier write). So a ReadIndex round
    ///   (thesis §6.4) does not wait for the follower's write of newer
    ///   entries.
    ///
    /// Everything else — votes and pre-votes, their replies, term changes,
    /// acknowledgements of entries not yet durable, rejections, snapshots,
    /// TimeoutNow — waits for the write.
    fn may_leave_early(&self, m: &Message) -> bool {
        if self.bug(Bug::EarlyVote)
            && matches!(
                m.body,
                Body::RequestVote { .. } | Body::RequestVoteReply { .. }
            )
        {
            // BUG (planted): votes leave before the write that makes them
            // durable, as if the thesis's rule for appends covered them.
            return true;
        }
        let term_durable = m.term <= self.durable_hs.term
            // BUG (planted): a term not yet durable does not hold back an
            // answer that acknowledges only durable entries.
            || (self.bug(Bug::EarlyTerm)
                && matches!(m.body, Body::AppendEntriesReply { success: true, .. }));
        if m.from != self.cfg.id || !term_durable {
            return false;
        }
        match &m.body {
            Body::AppendEntries { .. } => self.role == Role::Leader && m.term == self.term,
            Body::AppendEntriesReply {
                success: true,
                index,
                ..
            } => {
                // BUG (planted): acknowledgements of entries still being
                // written leave too, as if they were answers to heartbeats.
                self.bug(Bug::EarlyAck) || *index <= self.durable_last.min(self.log.stable)
            }
            _ => false,
        }
    }

    /// Whether the host may step `m` while a Ready's write is still in
    /// flight (between [`RaftNode::ready`] and [`RaftNode::persisted`]).
    /// Only messages that change no term, vote, role or log entry, so the
    /// messages of the Ready being written stay true when they leave after
    /// it:
    /// - a leader's acknowledgements of its own term. They can only advance
    ///   the commit index (the leader still counts itself only for what
    ///   `persisted` reported durable) and confirm reads;
    /// - a follower's heartbeat from its leader of its term (an
    ///   AppendEntries without entries). It can only advance the commit
    ///   index, and its answer leaves at once through
    ///   [`RaftNode::take_early`] when it acknowledges durable entries only.
    ///
    /// A host holds every other message until `persisted`, then steps it.
    pub fn may_step_during_write(&self, m: &Message) -> bool {
        if m.to != self.cfg.id || m.term != self.term {
            return false;
        }
        match &m.body {
            Body::AppendEntriesReply { .. } => self.role == Role::Leader,
            Body::AppendEntries { entries, .. } => {
                self.role == Role::Follower
                    && self.leader == Some(m.from)
                    && entries.is_empty()
                    && self.pending_snapshot.is_none()
            }
            _ => false,
        }
    }

    /// The messages queued since the last [`RaftNode::ready`] that may leave
    /// before the write in flight is durable (the rule of
    /// `may_leave_early`), for sending at once: a follower's answers to
    /// heartbeats it stepped during its write, and a leader's heartbeats
    /// for the ReadIndex rounds asked for meanwhile
    /// ([`RaftNode::read_index`]). The rest wait for the next Ready.
    /// Optional, like [`RaftNode::early_messages`].
    pub fn take_early(&mut self) -> Vec<Message> {
        if let Some(round) = self.reads.take_unsent() {
            self.bcast_heartbeat(round);
        }
        if self.msgs.is_empty() {
            return Vec::new();
        }
        let (early, rest): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.msgs)
            .into_iter()
            .partition(|m| self.may_leave_early(m));
        self.msgs = rest;
        self.trace().sent(&early);
        early
    }

    /// What may be applied and answered while a Ready's write is in flight:
    /// committed entries not yet handed out (durable here and on a quorum,
    /// as in [`Ready::committed_entries`]) and confirmed reads. The host
    /// applies them as step 4 of the Ready contract says, and must not call
    /// this while the Ready being written carries a snapshot (it is
    /// installed first). Any host may call it after any input between
    /// `ready` and `persisted`; the simulator's host does.
    pub fn take_applicable(&mut self) -> (Vec<Entry>, Vec<ReadState>) {
        if self.pending_snapshot.is_some() {
            // A snapshot from the leader is installed first, by the next
            // Ready; the entries after it wait for that Ready too.
            return (Vec::new(), std::mem::take(&mut self.read_states));
        }
        (
            self.hand_out_committed(),
            std::mem::take(&mut self.read_states),
        )
    }

    /// The committed entries not yet handed out for applying (durable here),
    /// marked as handed out.
    fn hand_out_committed(&mut self) -> Vec<Entry> {
        let committed = self.log.next_committed(usize::MAX);
        if let Some(last) = committed.last() {
            self.log.applied = last.index;
        }
        committed
    }

    /// Takes the messages of `rd` that may leave *before* `rd` is durable
    /// (see `may_leave_early`): the leader's appends, so that its own write
    /// runs in parallel with the followers' and a commit costs one disk
    /// write on the critical path instead of two. Optional: a host that
    /// never calls it gets them from [`RaftNode::persisted`]. Call it right
    /// after [`RaftNode::ready`], before writing `rd`.
    pub fn early_messages(&mut self, rd: &mut Ready) -> Vec<Message> {
        let early = std::mem::take(&mut rd.early);
        self.trace().sent(&early);
        early
    }

    /// The host has made everything of `rd` durable. Returns `rd`'s messages
    /// for sending.
    pub fn persisted(&mut self, rd: &mut Ready) -> Vec<Message> {
        // The entries of `rd` still in the log are durable now: steps taken
        // while it was written may have truncated its last ones.
        if let Some(last) = rd
            .entries
            .iter()
            .rev()
            .find(|e| self.log.matches(e.index, e.term))
        {
            self.log.stable = self.log.stable.max(last.index);
        }
        if let Some(hs) = rd.hard_state {
            self.durable_hs = hs;
        }
        self.durable_last = rd.last_index;
        if rd.must_persist() {
            self.trace().persisted();
        }
        if self.role == Role::Leader && !rd.entries.is_empty() {
            // The leader counts itself only for durable entries.
            self.maybe_commit();
        }
        let mut msgs = std::mem::take(&mut rd.early);
        msgs.append(&mut rd.messages);
        // A TimeoutNow is only sent while its target's log still matches
        // ours (thesis §3.10): one queued earlier may have waited here while
        // the transfer was abandoned and a proposal appended. An
        // acknowledgement of entries that a step taken during the write
        // truncated before they were durable would tell its leader we hold
        // what we never held: it is dropped (the leader asks again).
        let stable = self.log.stable;
        msgs.retain(|m| match m.body {
            Body::TimeoutNow => self.timeout_now_due(m.to, m.term),
            Body::AppendEntriesReply {
                success: true,
                index,
                ..
            } => index <= stable,
            _ => true,
        });
        self.trace().sent(&msgs);
        msgs
    }

    /// The host applied the committed entry at `index`; `duplicate` when the
    /// state machine recognised a retried command and did not execute it.
    pub fn applied(&mut self, index: Index, duplicate: bool) {
        self.applied_reported = self.applied_reported.max(index);
        self.trace().applied(index, duplicate);
    }

    /// The host's state machine was restored from a snapshot at `index`.
    pub fn applied_snapshot(&mut self, index: Index) {
        self.applied_reported = self.applied_reported.max(index);
    }

    /// Whether [`RaftNode::ready`] has anything.
    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || self.append_pending
            || self.reads.has_unsent()
            || self.hard_state() != self.handed_hs
            || self.pending_snapshot.is_some()
            || self.log.unpersisted_from <= self.log.last_index()
            || !self.read_states.is_empty()
            || self
                .log
                .committed
                .min(self.log.stable.max(self.log.applied))
                > self.log.applied
    }

    /// The hard state as it must be persisted.
    fn hard_state(&self) -> HardState {
        let vote = if self.bug(Bug::VolatileVote) && self.vote != Some(self.cfg.id) {
            // BUG (planted): a vote for another node never reaches the disk.
            None
        } else {
            self.vote
        };
        HardState {
            term: self.term,
            vote,
            commit: self.log.committed,
        }
    }

    /// Takes the next batch of work; see the module doc for what the host
    /// must do with it.
    pub fn ready(&mut self) -> Ready {
        if self.append_pending {
            self.append_pending = false;
            self.bcast_append();
        }
        if let Some(round) = self.reads.take_unsent() {
            self.bcast_heartbeat(round);
        }
        let hs = self.hard_state();
        let hard_state = (hs != self.handed_hs).then_some(hs);
        self.handed_hs = hs;
        let entries = self.log.unpersisted();
        self.log.unpersisted_from = self.log.last_index() + 1;
        let committed_entries = self.hand_out_committed();
        let (early, messages): (Vec<Message>, Vec<Message>) = std::mem::take(&mut self.msgs)
            .into_iter()
            .partition(|m| self.may_leave_early(m));
        Ready {
            hard_state,
            snapshot: self.pending_snapshot.take(),
            entries,
            committed_entries,
            read_states: std::mem::take(&mut self.read_states),
            messages,
            early,
            last_index: self.log.last_index(),
        }
    }

    /// Whether the host should snapshot its state machine now that it has
    /// applied up to `applied` (every [`Config::compact_every`] entries).
    pub fn snapshot_due(&self, applied: Index) -> bool {
        applied >= self.log.snapshot_meta().index + self.cfg.compact_every.max(1)
            && applied <= self.log.applied
            && self.known_config_at(applied).is_some()
    }

    /// The configuration in use at `index`, which a snapshot taken there
    /// holds, if this node knows it: from its log or its snapshot, else its
    /// bootstrap configuration. A node that joined a running cluster (no
    /// bootstrap configuration) and received the log from its start does not
    /// know the configuration before the first configuration entry it holds
    /// (the cluster's bootstrap one is in no entry), so it takes no snapshot
    /// there.
    fn known_config_at(&self, index: Index) -> Option<&Membership> {
        self.log
            .config_at(index)
            .or((!self.bootstrap.voters.is_empty()).then_some(&self.bootstrap))
    }

    /// The host took a snapshot of its state machine at `index` (applied):
    /// the log prefix up to `index` is discarded.
    pub fn compact(&mut self, index: Index, data: Arc<Vec<u8>>) {
        let Some(term) = self.log.term(index) else {
            return;
        };
        if index <= self.log.snapshot_meta().index || index > self.log.applied {
            return;
        }
        let Some(config) = self.known_config_at(index).cloned() else {
            return;
        };
        let meta = SnapshotMeta { index, term };
        self.log.compact(meta);
        self.snapshot = Some(Snapshot { meta, config, data });
        self.trace().snapshot_taken(meta);
    }

    /// Appends one entry as leader; it is broadcast at the next `ready`.
    pub(crate) fn append_local(&mut self, payload: Payload) -> Index {
        let index = self.log.last_index() + 1;
        let config = matches!(payload, Payload::Config(_));
        let e = Entry {
            index,
            term: self.term,
            payload,
        };
        self.log.append(vec![e]);
        self.trace().appended(index);
        self.append_pending = true;
        if config {
            self.membership_changed();
        }
        index
    }
}
