//! Our own store behind the simulator's node trait: the raftkv core, its
//! key-value state machine with client sessions, and the glue a real server
//! has (client requests, ReadIndex reads, the Ready loop, a snapshot every N
//! applied entries). The core emits its own `raft-trace/1` events.

mod disk;

use std::sync::Arc;

use raft_trace as rt;
use raft_trace::sink::TraceSink;
use raftkv::bugs::Bugs;
use raftkv::core::{Body, Command, ConfChange, Config, Message, NodeId, Op, RaftNode, Ready, Role};
use raftkv::kv::KvStore;

pub use disk::{Disk, Write};

use crate::node::{
    self, Addressed, Answer, Change, Envelope, Members, Output, Request, Response, Setup, Status,
};
use crate::service::{digest, KvService, SESSION_CAPACITY};

/// The raftkv core, with planted bugs and the options beyond the Raft
/// paper's Figure 2 switched on as asked (all off in `Default`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RaftKv {
    pub bugs: Bugs,
    /// Pre-vote (`raftkv::core::Config::pre_vote`).
    pub pre_vote: bool,
    /// Check-quorum and the leader lease
    /// (`raftkv::core::Config::check_quorum`).
    pub check_quorum: bool,
    /// A candidate refused by a quorum gives up
    /// (`raftkv::core::Config::lost_election`).
    pub lost_election: bool,
    /// Leaders accept transfer requests
    /// (`raftkv::core::Config::leader_transfer`).
    pub leader_transfer: bool,
    /// Lease reads (`raftkv::core::Config::lease_read`; needs
    /// `check_quorum`).
    pub lease_read: bool,
    /// Leaders take membership changes
    /// (`raftkv::core::Config::membership`).
    pub membership: bool,
}

impl RaftKv {
    /// The options a raftkv node runs with by default (and `raftcheck sim`
    /// without `--no-*` flags): pre-vote, check-quorum, lost-election.
    pub fn production() -> RaftKv {
        RaftKv {
            pre_vote: true,
            check_quorum: true,
            lost_election: true,
            ..RaftKv::default()
        }
    }

    /// The core configuration of node `id` of `peers` with these options.
    fn config(&self, id: NodeId, peers: Vec<NodeId>) -> Config {
        let mut cfg = Config::new(id, peers);
        cfg.bugs = self.bugs;
        cfg.pre_vote = self.pre_vote;
        cfg.check_quorum = self.check_quorum;
        cfg.lost_election = self.lost_election;
        cfg.leader_transfer = self.leader_transfer;
        cfg.lease_read = self.lease_read;
        cfg.membership = self.membership;
        cfg
    }

    /// Whether the options fit together (lease reads need check-quorum).
    pub fn validate(&self) -> Result<(), raftkv::core::ConfigError> {
        self.config(1, vec![1]).validate()
    }

    /// The trace header's `features`: the names of the options switched on
    /// that the specification knows (today all of them). A name it did not
    /// know would make conformance refuse the header, so a core option the
    /// specification lags behind on is left out rather than named.
    pub fn features(&self) -> Vec<String> {
        raftkv::trace::features(&self.config(1, vec![1]))
            .into_iter()
            .filter(|f| raft_model::FEATURES.contains(&f.as_str()))
            .collect()
    }
}

impl node::Implementation for RaftKv {
    type Node = Host;

    fn header(
        &self,
        nodes: Vec<NodeId>,
        network: rt::Network,
        params: serde_json::Value,
    ) -> rt::Header {
        let mut h = raftkv::trace::header(nodes, network, params);
        h.features = Some(self.features());
        h
    }

    fn start(&self, setup: &Setup, disk: &mut Disk, trace: Box<dyn TraceSink>) -> Host {
        let mut cfg = self.config(setup.id, setup.peers.clone());
        cfg.seed = setup.seed;
        cfg.max_batch = setup.max_batch;
        cfg.max_inflight = setup.max_inflight;
        cfg.snapshot_chunk = 48;
        cfg.heartbeat_ticks = setup.heartbeat_ticks;
        cfg.election_ticks = setup.election_ticks;
        cfg.compact_every = setup.snapshot_every;
        let rec = disk.recover();
        let kv = match &rec.snapshot {
            // The disk holds only snapshots this code wrote or a leader sent,
            // both of which it decoded before writing.
            Some(s) => KvStore::restore(&s.data, self.bugs).expect("own snapshot decodes"),
            None => KvStore::new(SESSION_CAPACITY, self.bugs),
        };
        let mut node = RaftNode::new(cfg, rec, Some(trace));
        node.applied_snapshot(kv.applied());
        Host {
            node,
            service: KvService::new(setup.id, kv),
            bugs: self.bugs,
            next_ctx: 0,
            handed: None,
            compactions: Vec::new(),
        }
    }
}

/// One raftkv server in the simulated cluster.
pub struct Host {
    node: RaftNode,
    /// The state machine and the clients waiting for it.
    service: KvService,
    bugs: Bugs,
    next_ctx: u64,
    /// The Ready whose writes the simulator is making durable.
    handed: Option<Ready>,
    /// Snapshots taken, to be written with the next batch.
    compactions: Vec<Write>,
}

impl Addressed for Message {
    fn from(&self) -> NodeId {
        self.from
    }
    fn to(&self) -> NodeId {
        self.to
    }
}

impl node::Node for Host {
    type Message = Message;
    type Disk = Disk;

    fn envelope(m: &Message) -> Envelope {
        Envelope {
            term: m.term,
            grants_vote: matches!(m.body, Body::RequestVoteReply { granted: true }),
            prospective: matches!(
                m.body,
                Body::PreVote { .. } | Body::PreVoteReply { granted: true }
            ),
            acknowledges: match m.body {
                Body::AppendEntriesReply {
                    success: true,
                    index,
                    ..
                } => Some(index),
                _ => None,
            },
        }
    }

    fn tick(&mut self) {
        self.node.tick();
    }

    fn transfer_leader(&mut self, to: NodeId) -> bool {
        self.node.transfer_leader(to).is_ok()
    }

    fn membership(&self) -> Option<Members> {
        let m = self.node.membership();
        Some(Members {
            voters: m.voters.iter().copied().collect(),
            learners: m.learners.iter().copied().collect(),
        })
    }

    fn voters_since(&self, index: u64) -> Option<Vec<Vec<NodeId>>> {
        let log = self.node.log();
        let mut sets: Vec<Vec<NodeId>> = log
            .configs_from(index)
            .into_iter()
            .map(|m| m.voters.iter().copied().collect())
            .collect();
        if log.config_at(index).is_none() && !self.node.config().peers.is_empty() {
            // Before any configuration entry: the bootstrap voters (which a
            // node that joined later does not know).
            sets.insert(0, self.node.config().peers.clone());
        }
        Some(sets)
    }

    fn propose_change(&mut self, change: Change) -> bool {
        let change = match change {
            Change::AddVoter(id) => ConfChange::AddVoter(id),
            Change::AddLearner(id) => ConfChange::AddLearner(id),
            Change::Remove(id) => ConfChange::Remove(id),
        };
        self.node.propose_change(change, Vec::new()).is_ok()
    }

    fn step(&mut self, m: Message) {
        self.node.step(m);
    }

    fn request(&mut self, r: Request, out: &mut Output<Message>) {
        let answer = |answer| Response {
            client: r.client,
            req: r.req,
            from: r.to,
            answer,
        };
        if let Op::Read { key } = &r.op {
            self.next_ctx += 1;
            let ctx = self.next_ctx;
            match self.node.read_index(ctx) {
                Ok(()) => self.service.await_read(ctx, r.client, r.req, key.clone()),
                Err(e) => out.responses.push(answer(Answer::NotLeader(e.leader))),
            }
            return;
        }
        let cmd = Command {
            client: r.client,
            req: r.req,
            op: r.op.clone(),
        };
        match self.node.propose(cmd) {
            Ok(_) => self.service.await_command(r.client, r.req),
            Err(e) => out.responses.push(answer(Answer::NotLeader(e.leader))),
        }
    }

    fn ready(&mut self) -> Option<Vec<Write>> {
        let mut writes = std::mem::take(&mut self.compactions);
        if self.node.has_ready() {
            let rd = self.node.ready();
            writes.push(Write::Persist {
                hard_state: rd.hard_state,
                snapshot: rd.snapshot.clone(),
                entries: rd.entries.clone(),
            });
            self.handed = Some(rd);
        }
        (!writes.is_empty()).then_some(writes)
    }

    /// The fast write path, as the raftkv server runs it: the leader's
    /// appends leave before its own write (`RaftNode::early_messages`), and
    /// committed entries, which the core hands out only once they are
    /// durable here, are applied and answered before this Ready's write. A
    /// snapshot from the leader must be written before it is installed, so
    /// with one the entries wait for [`node::Node::persisted`].
    /// The core takes steps between `ready` and `persisted` (nothing it
    /// sends meanwhile depends on the pending write), so the simulator may
    /// defer this Ready's writes and crash the node before they are done.
    const STEPS_WHILE_WRITING: bool = true;

    fn early(&mut self, out: &mut Output<Message>) {
        let Some(rd) = self.handed.as_mut() else {
            return;
        };
        out.messages.extend(self.node.early_messages(rd));
        if rd.snapshot.is_none() {
            let committed = std::mem::take(&mut rd.committed_entries);
            self.apply(&committed, out);
        }
    }

    /// As the raftkv server does while its WAL write runs: the answers the
    /// core lets leave before the write (a follower's acknowledgements of
    /// durable entries) are sent, entries the steps since committed (durable here, the core hands out none above
    /// its durable log) are applied and answered, and confirmed reads
    /// served, unless the Ready being written installs a snapshot.
    fn meanwhile(&mut self, out: &mut Output<Message>) {
        out.messages.extend(self.node.take_early());
        if self.handed.as_ref().is_none_or(|rd| rd.snapshot.is_some()) {
            return;
        }
        let (committed, reads) = self.node.take_applicable();
        self.apply(&committed, out);
        for rs in reads {
            self.service.read_ready(rs.index, rs.ctx);
        }
        self.service.serve_reads(out);
    }

    fn persisted(&mut self, out: &mut Output<Message>) {
        let Some(mut rd) = self.handed.take() else {
            return;
        };
        out.messages.extend(self.node.persisted(&mut rd));
        if let Some(snap) = &rd.snapshot {
            // A snapshot from the leader: the core checked its metadata; the
            // data is the leader's own encoding.
            self.service
                .restore(KvStore::restore(&snap.data, self.bugs).expect("leader snapshot decodes"));
            self.node.applied_snapshot(snap.meta.index);
            out.installs += 1;
        }
        self.apply(&rd.committed_entries, out);
        for rs in rd.read_states {
            self.service.read_ready(rs.index, rs.ctx);
        }
        self.service.serve_reads(out);
        out.snapshots += self.maybe_snapshot();
    }

    fn status(&self) -> Status {
        let log = self.node.log();
        Status {
            term: self.node.term(),
            role: match self.node.role() {
                Role::Follower => rt::Role::Follower,
                Role::PreCandidate => rt::Role::PreCandidate,
                Role::Candidate => rt::Role::Candidate,
                Role::Leader => rt::Role::Leader,
            },
            commit: self.node.commit_index(),
            first_index: log.first_index(),
            last_index: log.last_index(),
        }
    }

    fn entry(&self, index: u64) -> Option<(u64, u64)> {
        self.node
            .log()
            .entry(index)
            .map(|e| (e.term, digest(&e.payload)))
    }
}

impl Host {
    /// Applies committed entries in order, answering their clients.
    fn apply(&mut self, entries: &[raftkv::core::Entry], out: &mut Output<Message>) {
        for e in entries {
            if e.index <= self.service.kv().applied() {
                continue;
            }
            let a = self.service.apply(e, digest(&e.payload), out);
            self.node.applied(e.index, a.duplicate);
        }
    }

    /// Log compaction: a snapshot every `compact_every` applied entries,
    /// written to disk with the next batch. Returns how many it took.
    fn maybe_snapshot(&mut self) -> u64 {
        let applied = self.service.kv().applied();
        if !self.node.snapshot_due(applied) {
            return 0;
        }
        let Some(term) = self.node.log().term(applied) else {
            return 0;
        };
        let data = Arc::new(self.service.kv().snapshot());
        self.node.compact(applied, data.clone());
        if self.node.log().snapshot_meta().index != applied {
            return 0;
        }
        let Some(snap) = self.node.snapshot() else {
            return 0;
        };
        self.compactions.push(Write::Compact {
            index: applied,
            term,
            config: snap.config.clone(),
            data,
        });
        1
    }
}
