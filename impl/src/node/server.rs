//! The node loop: one tokio task owns the Raft core and the state machine.
//!
//! Inputs: ticks from an interval, messages from the transport, client
//! requests from the HTTP handlers (through a channel; proposals and reads
//! carry the id of their [`Waiters`](super::waiters::Waiters) ticket, which
//! the loop completes). After each input batch the Ready loop runs: send the
//! leader's appends ([`RaftNode::early_messages`]) and apply the committed
//! entries (durable here and on a quorum already), write the trace events
//! recorded so far, persist (one WAL sync per Ready, on a blocking thread;
//! none when only the commit index changed; meanwhile a leader steps its
//! followers' acknowledgements and applies what they commit, everything
//! else waits for the write), `persisted`, send, apply
//! (then advance the [apply notifier](super::applied)), answer clients,
//! snapshot and compact. A storage error stops the node: nothing that failed
//! to persist is acknowledged, and every waiting client is told the node is
//! stopping (see [`super::shutdown`]).
//!
//! Membership: the node proposes one change at a time for the admin API
//! ([`Request::Change`]), with the members' addresses in the configuration
//! entry's context ([`ChangeContext`]). It sends to a member whose address
//! it learns from a configuration entry as soon as the entry is in a Ready
//! (before that Ready's messages leave: the leader replicates to a new
//! member from the moment it appends the entry), from a snapshot's address
//! book, and at start from the recovered log and snapshot. `--peers` and
//! `--client-peers` win over what it learns for the nodes they name (they
//! may be per-node routes, e.g. relays, and a restarted cluster may have
//! moved its ports), when it sends, redirects, shows the members and
//! writes a change's context. The bootstrap configuration
//! is stored in the data directory at the first start (`bootstrap-voters`):
//! a restart uses it, not the command line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::bugs::Bugs;
use crate::core::{
    ChangeError, Command, ConfChange, Config, ConfigEntry, Entry, Index, Membership, NodeId,
    Payload, RaftNode, ReadState, Ready, Recovered, Role, Term, TransferError,
};
use crate::kv::{ChangeContext, KvStore, MemberAddrs};
use crate::storage::{self, StorageError, Wal};
use crate::transport::{Transport, TransportConfig, TransportError};

use super::shared::Shared;
use super::trace_file::{self, TraceHandle};
use super::wire::{self, decode_payload, encode_payload, WireMessage};

/// How a node is started.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Peer (Raft) addresses of every node, this one included.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Where this node serves the HTTP client API.
    pub client_addr: SocketAddr,
    /// Client API addresses of every node (for redirects to the leader).
    pub client_peers: BTreeMap<NodeId, String>,
    pub data_dir: PathBuf,
    pub trace: Option<PathBuf>,
    /// Length of one core tick.
    pub tick: Duration,
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    /// Snapshot and compact every this many applied entries.
    pub compact_every: u64,
    /// Pre-vote ([`Config::pre_vote`]).
    pub pre_vote: bool,
    /// Check-quorum and the leader lease ([`Config::check_quorum`]).
    pub check_quorum: bool,
    /// Lease reads ([`Config::lease_read`]; requires `check_quorum`).
    pub lease_read: bool,
    /// The feature names the trace's reader knows (`None`: all). The trace
    /// header declares only these: a checker refuses a header naming a
    /// feature it does not know.
    pub known_features: Option<Vec<String>>,
    /// Test hook: the WAL's fault injection ([`storage::Faults`]). `None`:
    /// only what the test-only environment variable asks for
    /// ([`storage::Faults::from_env`]), i.e. nothing in production.
    /// Planted bugs (none in production; `raftcheck node --bug`).
    pub bugs: Bugs,
    pub wal_faults: Option<storage::Faults>,
    /// Join a running cluster: the bootstrap configuration is empty (the
    /// node never campaigns until a configuration naming it as a voter
    /// reaches it) and `peers` only says where the members are. Used at
    /// the first start only (see the module docs).
    pub join: bool,
    /// The trace header's `nodes`: every node id the run will ever have
    /// (`None`: the ids of `peers`; required with `join`). A cluster that
    /// will grow names its future members here, so that every node's trace
    /// has the same header.
    pub trace_nodes: Option<Vec<NodeId>>,
    /// The trace header's `voters`, the run's bootstrap voters, when not
    /// every node of `trace_nodes` votes from the start (`None`: this
    /// node's bootstrap voters; required with `join`).
    pub trace_voters: Option<Vec<NodeId>>,
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Why a request was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReqError {
    /// This node is not the leader; the leader it knows of.
    NotLeader(Option<NodeId>),
    /// Another entry took the proposal's place (leadership changed): retry.
    Lost,
}

/// Why a membership change was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeFailed {
    /// Not the leader, or the change's entry lost its place (see [`ReqError`]).
    Req(ReqError),
    /// The leader refused the change (never [`ChangeError::NotLeader`]).
    Refused(ChangeError),
}

/// A configuration and the members' addresses, as `GET /v1/admin/members`
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Configuration {
    /// The node that answers.
    pub node: NodeId,
    /// The leader that node knows of.
    pub leader: Option<NodeId>,
    /// The index of the configuration's entry (0: the bootstrap
    /// configuration; a snapshot's: the snapshot's index).
    pub index: Index,
    /// Whether that entry is committed (as far as the node knows).
    pub committed: bool,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// Every member, voters first, with its addresses (`null`: unknown to
    /// the answering node).
    pub members: Vec<MemberView>,
}

/// One member of a [`Configuration`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemberView {
    pub id: NodeId,
    /// `"voter"` or `"learner"`.
    pub role: &'static str,
    pub peer_addr: Option<String>,
    pub client_addr: Option<String>,
}

/// The configuration part of `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusConfig {
    pub index: Index,
    pub committed: bool,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// A request from the client API to the node loop.
pub enum Request {
    /// Propose `cmd`; complete [`Shared::proposals`] ticket `id` with the reply.
    Propose {
        cmd: Command,
        id: u64,
    },
    /// Get a read index; complete [`Shared::reads`] ticket `id` with it.
    Read {
        id: u64,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
    /// Hand leadership to node `to` ([`RaftNode::transfer_leader`]).
    Transfer {
        to: NodeId,
        reply: oneshot::Sender<Result<(), TransferError>>,
    },
    /// Propose a membership change ([`RaftNode::propose_change`]); `addrs`
    /// are the added member's (`None` with `AddVoter`: promote a learner,
    /// refused for a node that is not a member). Complete
    /// [`Shared::changes`] ticket `id` with the configuration once the
    /// change is applied here.
    Change {
        change: ConfChange,
        addrs: Option<MemberAddrs>,
        id: u64,
    },
    /// The configuration this node uses and the members' addresses.
    Members {
        reply: oneshot::Sender<Configuration>,
    },
}

/// `GET /v1/status` plus counters for `/metrics`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub id: NodeId,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    /// The configuration this node uses.
    pub config: StatusConfig,
    #[serde(skip)]
    pub metrics: Metrics,
}

/// Counters exported on `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Metrics {
    pub proposals: u64,
    pub reads: u64,
    pub readies: u64,
    pub wal_syncs: u64,
    pub entries_applied: u64,
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
}

/// A proposal in the log: its session and its [`Shared::proposals`] ticket.
struct Waiter {
    client: u64,
    req: u64,
    id: u64,
}

/// A membership change in the log: its entry and its [`Shared::changes`]
/// ticket.
struct ChangeWaiter {
    entry: Arc<ConfigEntry>,
    id: u64,
}

struct Loop {
    id: NodeId,
    node: RaftNode,
    shared: Shared,
    wal: Option<Wal>,
    transport: Transport<WireMessage>,
    trace: Option<TraceHandle>,
    waiting: BTreeMap<Index, Waiter>,
    changes: BTreeMap<Index, ChangeWaiter>,
    /// `--peers` and `--client-peers`: they win over the address book.
    cli_peers: BTreeMap<NodeId, SocketAddr>,
    cli_clients: BTreeMap<NodeId, String>,
    /// This node's place in the configuration it uses (voter, learner or
    /// none), as last logged (`None`: not yet logged).
    place: Option<Option<&'static str>>,
    metrics: Metrics,
    /// Messages that arrived during a WAL write and may not be stepped
    /// before it ends (see [`RaftNode::may_step_during_write`]).
    held: Vec<crate::core::Message>,
    /// Requests that arrived during a WAL write, other than reads: they
    /// are taken when it ends (see [`Loop::request_during_write`]).
    held_requests: Vec<Request>,
    /// The reads handed to the core's ReadIndex and not answered yet, with
    /// the term they were started in: a leader that steps down drops them
    /// (`RaftNode::read_index`'s rounds end with its leadership), and
    /// [`Loop::fail_dropped_reads`] answers them at once.
    reads: BTreeMap<u64, Term>,
}

/// Hands `f` up to `max` more items that are already waiting in `rx`, so that
/// one wake-up of the loop takes a batch of inputs.
fn drain<T>(rx: &mut mpsc::Receiver<T>, max: usize, mut f: impl FnMut(T)) {
    for _ in 0..max {
        match rx.try_recv() {
            Ok(x) => f(x),
            Err(_) => break,
        }
    }
}

/// Reads and bumps the restart counter kept in `dir/incarnation`.
fn bump_incarnation(dir: &Path) -> Result<u64, NodeError> {
    let path = dir.join("incarnation");
    let old = match std::fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|e| NodeError::Corrupt(format!("{}: not a number: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e.into()),
    };
    let tmp = dir.join("incarnation.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, format!("{}\n", old + 1).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(old)
}

/// The bootstrap voters: those stored in `dir/bootstrap-voters` by the
/// first start, or else `fresh` (the command line's), which are stored
/// then. A restart thus keeps its bootstrap configuration whatever its
/// command line says (a node that joined stays a joiner).
fn bootstrap_voters(dir: &Path, fresh: Vec<NodeId>) -> Result<Vec<NodeId>, NodeError> {
    let path = dir.join("bootstrap-voters");
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let stored = s
                .split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| x.parse::<NodeId>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    NodeError::Corrupt(format!("{}: not a list of node ids: {e}", path.display()))
                })?;
            if stored != fresh {
                tracing::info!(
                    stored = ?stored,
                    command_line = ?fresh,
                    "using the bootstrap configuration stored at the first start, not the command line's"
                );
            }
            Ok(stored)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = fresh
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let tmp = dir.join("bootstrap-voters.tmp");
            {
                let mut f = std::fs::File::create(&tmp)?;
                std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes())?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(fresh)
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens the WAL and rebuilds the core's recovered state and the state machine.
fn recover(cfg: &NodeConfig) -> Result<(Wal, Recovered, KvStore), NodeError> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let (mut wal, rec) = Wal::open(&cfg.data_dir)?;
    // Test-only disk failures (unset in production; see `storage::fault`).
    wal.set_faults(
        cfg.wal_faults
            .clone()
            .unwrap_or_else(storage::Faults::from_env),
    );
    let incarnation = bump_incarnation(&cfg.data_dir)?;
    let mut kv = KvStore::new(4096, cfg.bugs);
    let mut snapshot = None;
    if let Some(meta) = rec.snapshot {
        let (m, stored) = wal.load_latest_snapshot()?.ok_or_else(|| {
            NodeError::Corrupt(format!("snapshot {meta:?} recorded but no snapshot file"))
        })?;
        let (stated, data) = wire::decode_snapshot(&stored).map_err(|e| {
            NodeError::Corrupt(format!(
                "snapshot {} in {}: {e}",
                m.index,
                cfg.data_dir.display()
            ))
        })?;
        // A snapshot of a release before membership changes states no
        // configuration: the cluster then had the fixed membership of the
        // command line's peers.
        let config = stated.unwrap_or_else(|| Membership::of_voters(cfg.peers.keys().copied()));
        kv = KvStore::restore(&data, cfg.bugs).map_err(|e| {
            NodeError::Corrupt(format!(
                "snapshot {} in {}: {e}",
                m.index,
                cfg.data_dir.display()
            ))
        })?;
        snapshot = Some(crate::core::Snapshot {
            meta: crate::core::SnapshotMeta {
                index: m.index,
                term: m.term,
            },
            config,
            data: Arc::new(data),
        });
    }
    let mut entries = Vec::with_capacity(rec.entries.len());
    for e in rec.entries {
        let payload = decode_payload(&e.data).map_err(|err| {
            NodeError::Corrupt(format!(
                "WAL entry {} in {}: {err}",
                e.index,
                cfg.data_dir.display()
            ))
        })?;
        entries.push(Entry {
            index: e.index,
            term: e.term,
            payload,
        });
    }
    let hs = rec.hard_state;
    let recovered = Recovered {
        hard_state: crate::core::HardState {
            term: hs.term,
            vote: hs.vote,
            commit: hs.commit,
        },
        snapshot,
        entries,
        incarnation,
    };
    Ok((wal, recovered, kv))
}

/// Resolves once every trace event recorded so far is written to the trace
/// file (handed to the OS: a SIGKILL cannot lose it). Immediate when nothing
/// is pending or the node is not traced.
async fn trace_written(trace: &Option<TraceHandle>) {
    if let Some(t) = trace {
        t.barrier().await;
    }
}

/// Runs a node until `shared.stop` is given or a fatal error, in a tokio
/// runtime (current-thread or multi-threaded). Requests arrive on `requests`. On
/// return every waiter of `shared` has been woken (see [`super::shutdown`]).
pub async fn run(
    cfg: NodeConfig,
    requests: mpsc::Receiver<Request>,
    shared: Shared,
) -> Result<(), NodeError> {
    let r = run_loop(cfg, requests, &shared).await;
    shared.close();
    r
}

async fn run_loop(
    cfg: NodeConfig,
    requests: mpsc::Receiver<Request>,
    shared: &Shared,
) -> Result<(), NodeError> {
    let listen = *cfg
        .peers
        .get(&cfg.id)
        .ok_or_else(|| NodeError::Config(format!("--peers has no address for node {}", cfg.id)))?;
    let (wal, rec, kv) = recover(&cfg)?;
    let ids: Vec<NodeId> = if cfg.join {
        Vec::new()
    } else {
        cfg.peers.keys().copied().collect()
    };
    let ids = bootstrap_voters(&cfg.data_dir, ids)?;
    if cfg.join && cfg.trace.is_some() && (cfg.trace_voters.is_none() || cfg.trace_nodes.is_none())
    {
        return Err(NodeError::Config(
            "a node that joins and writes a trace needs the run's nodes and bootstrap voters \
             for the trace header (--trace-nodes, --trace-voters)"
                .into(),
        ));
    }
    let mut core_cfg = Config::new(cfg.id, ids.clone());
    core_cfg.election_ticks = cfg.election_ticks;
    core_cfg.heartbeat_ticks = cfg.heartbeat_ticks;
    core_cfg.compact_every = cfg.compact_every;
    core_cfg.pre_vote = cfg.pre_vote;
    core_cfg.check_quorum = cfg.check_quorum;
    core_cfg.lease_read = cfg.lease_read;
    core_cfg.bugs = cfg.bugs;
    core_cfg.lost_election = true;
    core_cfg.leader_transfer = true;
    // The admin API changes the membership (`core::membership`).
    core_cfg.membership = true;
    core_cfg.seed = rand::random();
    core_cfg
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let (sink, trace) = match &cfg.trace {
        Some(path) => {
            let features = crate::trace::features(&core_cfg)
                .into_iter()
                .filter(|f| cfg.known_features.as_ref().is_none_or(|k| k.contains(f)))
                .collect();
            let nodes = cfg
                .trace_nodes
                .clone()
                .unwrap_or_else(|| cfg.peers.keys().copied().collect());
            let voters = cfg.trace_voters.clone().unwrap_or_else(|| ids.clone());
            if let Some(n) = voters.iter().chain([&cfg.id]).find(|v| !nodes.contains(v)) {
                return Err(NodeError::Config(format!(
                    "node {n} is not one of the trace's nodes {nodes:?} (--trace-nodes)"
                )));
            }
            // Without `voters` every node of the header votes from the start.
            let voters = (voters != nodes).then_some(voters);
            let (s, h) = trace_file::open(path, cfg.id, nodes, voters, features)?;
            (
                Some(Box::new(s) as Box<dyn crate::trace::TraceSink>),
                Some(h),
            )
        }
        None => (None, None),
    };
    // Where the members are, as the recovered log's configuration entries
    // say (registered with the transport below, after the snapshot's book).
    let logged: Vec<Arc<ConfigEntry>> = rec
        .entries
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Config(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    let mut node = RaftNode::new(core_cfg, rec, sink);
    node.applied_snapshot(kv.applied());
    let applied = kv.applied();
    let book = kv.members().clone();
    *shared.kv_mut() = kv;
    shared.applied.advance(applied);
    let (transport, inbound) = Transport::<WireMessage>::start(
        cfg.id,
        listen,
        cfg.peers.clone(),
        TransportConfig {
            accept_unknown_senders: true,
            ..TransportConfig::default()
        },
    )
    .await?;
    tracing::info!(
        id = cfg.id,
        %listen,
        pre_vote = cfg.pre_vote,
        check_quorum = cfg.check_quorum,
        lease_read = cfg.lease_read,
        "node started"
    );
    let mut lp = Loop {
        id: cfg.id,
        node,
        shared: shared.clone(),
        wal: Some(wal),
        transport,
        trace,
        waiting: BTreeMap::new(),
        changes: BTreeMap::new(),
        cli_peers: cfg.peers.clone(),
        cli_clients: cfg.client_peers.clone(),
        place: None,
        metrics: Metrics::default(),
        held: Vec::new(),
        held_requests: Vec::new(),
        reads: BTreeMap::new(),
    };
    for (id, a) in &book {
        lp.learn_peer(*id, &a.peer_addr);
    }
    for c in &logged {
        lp.learn_addresses(c);
    }
    lp.note_place();
    let r = lp.run(cfg.tick, inbound, requests).await;
    // Wake the waiting clients first, then let the writer drain the trace.
    shared.close();
    if let Some(t) = lp.trace.take() {
        t.finish().await;
    }
    r
}

impl Loop {
    async fn run(
        &mut self,
        tick: Duration,
        mut inbound: mpsc::Receiver<(NodeId, WireMessage)>,
        mut requests: mpsc::Receiver<Request>,
    ) -> Result<(), NodeError> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = self.shared.stop.wait();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = ticker.tick() => self.node.tick(),
                Some((_, m)) = inbound.recv() => {
                    self.step(m);
                    drain(&mut inbound, 256, |(_, m)| self.step(m));
                }
                Some(r) = requests.recv() => {
                    self.request(r);
                    drain(&mut requests, 1024, |r| self.request(r));
                }
            }
            while self.node.has_ready() {
                let rd = self.node.ready();
                self.handle_ready(rd, &mut inbound, &mut requests).await?;
                for m in std::mem::take(&mut self.held) {
                    self.metrics.messages_received += 1;
                    self.node.step(m);
                }
                for r in std::mem::take(&mut self.held_requests) {
                    self.request(r);
                }
            }
            self.note_place();
            self.release_if_removed();
            self.fail_dropped_reads();
        }
    }

    /// Answers the reads the core dropped: every read started in an
    /// earlier term, and all of them once this node no longer leads. They
    /// get the leader this node knows of (307, or 503 when it knows none),
    /// at once instead of the request timeout: a read changed nothing, so
    /// the client may retry it anywhere.
    fn fail_dropped_reads(&mut self) {
        if self.reads.is_empty() {
            return;
        }
        let (leads, term, leader) = (self.node.is_leader(), self.node.term(), self.node.leader());
        let dropped: Vec<u64> = self
            .reads
            .iter()
            .filter(|&(_, &t)| !leads || t < term)
            .map(|(&id, _)| id)
            .collect();
        for id in dropped {
            self.reads.remove(&id);
            self.shared
                .reads
                .complete(id, Err(ReqError::NotLeader(leader)));
        }
    }

    /// A read the core confirmed at `rs.index`: the client's ticket
    /// completes (it is answered once the state machine reaches the index).
    fn read_ready(&mut self, rs: ReadState) {
        self.reads.remove(&rs.ctx);
        self.shared.reads.complete(rs.ctx, Ok(rs.index));
    }

    /// A node out of the configuration that does not lead (a removed
    /// leader once it stepped down) receives no more entries: the proposals
    /// and changes still waiting here would only time out. They are told to
    /// retry (503), at another node: a retried write keeps its client id and
    /// seq, so it is applied at most once.
    fn release_if_removed(&mut self) {
        if self.place != Some(None)
            || self.node.is_leader()
            || (self.waiting.is_empty() && self.changes.is_empty())
        {
            return;
        }
        tracing::info!(
            id = self.id,
            proposals = self.waiting.len(),
            changes = self.changes.len(),
            "removed: the requests waiting here are told to retry elsewhere"
        );
        for (_, w) in std::mem::take(&mut self.waiting) {
            self.shared.proposals.complete(w.id, Err(ReqError::Lost));
        }
        for (_, w) in std::mem::take(&mut self.changes) {
            let r = Err(ChangeFailed::Req(ReqError::Lost));
            self.shared.changes.complete(w.id, r);
        }
    }

    /// Logs this node's place in the configuration it uses when it changes
    /// (at start, on joining, on promotion, on removal).
    fn note_place(&mut self) {
        let m = self.node.membership();
        let place = if m.is_voter(self.id) {
            Some("voter")
        } else if m.learners.contains(&self.id) {
            Some("learner")
        } else {
            None
        };
        if Some(place) == self.place {
            return;
        }
        match place {
            Some(p) => tracing::info!(id = self.id, config = %m, "this node is a {p}"),
            None if self.place.flatten().is_some() => tracing::info!(
                id = self.id,
                config = %m,
                "this node is no longer a member: it keeps running but takes no part (it never campaigns)"
            ),
            None => tracing::info!(
                id = self.id,
                "not a member yet: waiting for a configuration that names this node"
            ),
        }
        self.place = Some(place);
    }

    /// Sends to node `id` at `addr` from now on, unless `--peers` names it.
    fn learn_peer(&mut self, id: NodeId, addr: &str) {
        if self.cli_peers.contains_key(&id) {
            return;
        }
        match addr.parse::<SocketAddr>() {
            Ok(a) => {
                if self.transport.add_peer(id, a) {
                    tracing::info!(id = self.id, peer = id, addr = %a, "peer address learned");
                }
            }
            Err(e) => tracing::warn!(
                id = self.id,
                peer = id,
                addr,
                error = %e,
                "unusable peer address in a configuration entry"
            ),
        }
    }

    /// The addresses of the members a configuration entry names.
    fn learn_addresses(&mut self, c: &ConfigEntry) {
        let Ok(ctx) = ChangeContext::decode(&c.context) else {
            return;
        };
        for (id, a) in ctx.addrs {
            if c.membership.is_member(id) {
                self.learn_peer(id, &a.peer_addr);
            }
        }
    }

    /// Where member `id` is reached, each address from the command line
    /// if it names it, or else from the address book (`None` unless both
    /// are known).
    fn addrs_of(&self, kv: &KvStore, id: NodeId) -> Option<MemberAddrs> {
        let book = kv.members().get(&id);
        let peer = match self.cli_peers.get(&id) {
            Some(p) => p.to_string(),
            None => book?.peer_addr.clone(),
        };
        let client = match self.cli_clients.get(&id) {
            Some(c) => c.clone(),
            None => book?.client_addr.clone(),
        };
        Some(MemberAddrs {
            peer_addr: peer,
            client_addr: client,
        })
    }

    /// `m`, the configuration of the entry at `index`, with the members'
    /// addresses.
    fn configuration(&self, kv: &KvStore, m: &Membership, index: Index) -> Configuration {
        let member = |id: NodeId, role| {
            let book = kv.members().get(&id);
            MemberView {
                id,
                role,
                peer_addr: self
                    .cli_peers
                    .get(&id)
                    .map(|p| p.to_string())
                    .or_else(|| book.map(|a| a.peer_addr.clone())),
                client_addr: self
                    .cli_clients
                    .get(&id)
                    .cloned()
                    .or_else(|| book.map(|a| a.client_addr.clone())),
            }
        };
        Configuration {
            node: self.id,
            leader: self.node.leader(),
            index,
            committed: index <= self.node.commit_index(),
            voters: m.voters.iter().copied().collect(),
            learners: m.learners.iter().copied().collect(),
            members: m
                .voters
                .iter()
                .map(|&v| member(v, "voter"))
                .chain(m.learners.iter().map(|&l| member(l, "learner")))
                .collect(),
        }
    }

    /// The index of the configuration this node uses: its entry's, or its
    /// snapshot's; 0 for the bootstrap configuration.
    fn config_index(&self) -> Index {
        let log = self.node.log();
        match log.config_index() {
            0 if log.config().is_some() => log.snapshot_meta().index,
            i => i,
        }
    }

    /// Proposes a membership change for the admin API.
    fn propose_change(&mut self, change: ConfChange, addrs: Option<MemberAddrs>, id: u64) {
        let target = change.node();
        // The context: every member's addresses this node knows, the
        // added member's from the request.
        let mut ctx = ChangeContext::default();
        {
            let kv = self.shared.kv();
            for m in self.node.membership().members() {
                if let Some(a) = self.addrs_of(&kv, m) {
                    ctx.addrs.insert(m, a);
                }
            }
        }
        let promotion = addrs.is_none();
        if let Some(a) = addrs {
            ctx.addrs.insert(target, a);
        }
        // A voter added without addresses is a promotion: of a learner only
        // (a member the leader knows no address of would be unreachable).
        if promotion
            && matches!(change, ConfChange::AddVoter(_))
            && self.node.is_leader()
            && !self.node.membership().is_member(target)
        {
            let r = Err(ChangeFailed::Refused(ChangeError::NotMember(target)));
            self.shared.changes.complete(id, r);
            return;
        }
        match self.node.propose_change(change, ctx.encode()) {
            Ok(index) => {
                tracing::info!(id = self.id, ?change, index, "membership change proposed");
                let entry = match self.node.log().entry(index).map(|e| &e.payload) {
                    Some(Payload::Config(c)) => c.clone(),
                    _ => {
                        // Not what propose_change appended: answer at once.
                        let r = Err(ChangeFailed::Req(ReqError::Lost));
                        self.shared.changes.complete(id, r);
                        return;
                    }
                };
                self.changes.insert(index, ChangeWaiter { entry, id });
            }
            Err(ChangeError::NotLeader(nl)) => {
                let r = Err(ChangeFailed::Req(ReqError::NotLeader(nl.leader)));
                self.shared.changes.complete(id, r);
            }
            Err(e) => {
                tracing::info!(id = self.id, ?change, error = %e, "membership change refused");
                self.shared
                    .changes
                    .complete(id, Err(ChangeFailed::Refused(e)));
            }
        }
    }

    fn step(&mut self, m: WireMessage) {
        self.metrics.messages_received += 1;
        self.node.step(m.into());
    }

    fn status(&self) -> Status {
        Status {
            id: self.id,
            role: match self.node.role() {
                Role::Leader => "leader",
                Role::Follower => "follower",
                Role::PreCandidate => "pre_candidate",
                Role::Candidate => "candidate",
            },
            term: self.node.term(),
            leader: self.node.leader(),
            commit: self.node.commit_index(),
            applied: self.shared.applied.get(),
            last_index: self.node.last_index(),
            config: {
                let m = self.node.membership();
                StatusConfig {
                    index: self.config_index(),
                    committed: self.config_index() <= self.node.commit_index(),
                    voters: m.voters.iter().copied().collect(),
                    learners: m.learners.iter().copied().collect(),
                }
            },
            metrics: self.metrics,
        }
    }

    fn request(&mut self, r: Request) {
        match r {
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Request::Transfer { to, reply } => {
                let r = self.node.transfer_leader(to);
                tracing::info!(id = self.id, to, result = ?r, "leader transfer requested");
                let _ = reply.send(r);
            }
            Request::Propose { cmd, id } => {
                self.metrics.proposals += 1;
                let (client, req) = (cmd.client, cmd.req);
                match self.node.propose(cmd) {
                    Ok(index) => {
                        self.waiting.insert(index, Waiter { client, req, id });
                    }
                    Err(e) => {
                        let r = Err(ReqError::NotLeader(e.leader));
                        self.shared.proposals.complete(id, r);
                    }
                }
            }
            Request::Change { change, addrs, id } => self.propose_change(change, addrs, id),
            Request::Members { reply } => {
                let c = {
                    let kv = self.shared.kv();
                    self.configuration(&kv, self.node.membership(), self.config_index())
                };
                let _ = reply.send(c);
            }
            Request::Read { id } => {
                self.metrics.reads += 1;
                // The ticket id is the read's context: unique in this process.
                match self.node.read_index(id) {
                    Ok(()) => {
                        self.reads.insert(id, self.node.term());
                    }
                    Err(e) => {
                        let r = Err(ReqError::NotLeader(e.leader));
                        self.shared.reads.complete(id, r);
                    }
                }
            }
        }
    }

    /// Runs `f` on the WAL on a blocking thread.
    async fn with_wal<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Wal) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let mut wal = self.wal.take().ok_or(StorageError::Poisoned)?;
        let (wal, r) = tokio::task::spawn_blocking(move || {
            let r = f(&mut wal);
            (wal, r)
        })
        .await
        .map_err(|e| NodeError::Io(std::io::Error::other(e)))?;
        self.wal = Some(wal);
        Ok(r?)
    }

    /// A leader runs `f` on the WAL on a blocking thread like
    /// [`Loop::with_wal`], and meanwhile steps the messages the core allows
    /// during a write (its acknowledgements, see
    /// [`RaftNode::may_step_during_write`]) and starts the reads that
    /// arrive, applying what the messages commit, answering the reads they
    /// confirm and sending what may leave early ([`RaftNode::take_early`]:
    /// its heartbeats for the reads) at once instead of one write later.
    /// Other messages wait in `held`, other requests in `held_requests`.
    ///
    /// Only a leader's write runs beside the loop: the acknowledgements that
    /// arrive meanwhile commit entries and answer clients. Any other node
    /// writes in place ([`Loop::write_in_place`]): during its write it could
    /// step only its leader's heartbeats, and the two thread wake-ups of
    /// handing a write to another thread and back cost more CPU than those
    /// heartbeats' wait saves (at 16 and 64 writing clients on 2 cores,
    /// about 13% and 12-29% more writes per second).
    async fn with_wal_stepping<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Wal) -> Result<T, StorageError> + Send + 'static,
        inbound: &mut mpsc::Receiver<(NodeId, WireMessage)>,
        requests: &mut mpsc::Receiver<Request>,
    ) -> Result<T, NodeError> {
        if !self.node.is_leader() {
            return self.write_in_place(f);
        }
        let mut wal = self.wal.take().ok_or(StorageError::Poisoned)?;
        let job = tokio::task::spawn_blocking(move || {
            let r = f(&mut wal);
            (wal, r)
        });
        tokio::pin!(job);
        let joined = loop {
            tokio::select! {
                biased;
                j = &mut job => break j,
                Some((_, m)) = inbound.recv() => {
                    self.step_during_write(m);
                    drain(inbound, 256, |(_, m)| self.step_during_write(m));
                    self.release_during_write().await;
                }
                Some(r) = requests.recv() => {
                    self.request_during_write(r);
                    drain(requests, 1024, |r| self.request_during_write(r));
                    self.release_during_write().await;
                }
            }
        };
        let (wal, r) = joined.map_err(|e| NodeError::Io(std::io::Error::other(e)))?;
        self.wal = Some(wal);
        Ok(r?)
    }

    /// Runs `f` on the WAL on this thread, as etcd's raft loop saves a
    /// follower's Ready before it goes on: nothing is stepped meanwhile (on
    /// a multi-threaded runtime the other tasks move to another worker).
    fn write_in_place<T>(
        &mut self,
        f: impl FnOnce(&mut Wal) -> Result<T, StorageError>,
    ) -> Result<T, NodeError> {
        let wal = self.wal.as_mut().ok_or(StorageError::Poisoned)?;
        let r = match tokio::runtime::Handle::current().runtime_flavor() {
            tokio::runtime::RuntimeFlavor::CurrentThread => f(wal),
            _ => tokio::task::block_in_place(|| f(wal)),
        };
        Ok(r?)
    }

    /// After inputs taken during a write: sends what may leave before it
    /// ends, applies what they committed and answers the reads they
    /// confirmed.
    async fn release_during_write(&mut self) {
        let early = self.node.take_early();
        self.send_all(&early).await;
        let (committed, reads) = self.node.take_applicable();
        self.apply_committed(&committed);
        for rs in reads {
            self.read_ready(rs);
        }
    }

    /// A read starts during a write (its ReadIndex round needs nothing the
    /// write makes durable), as do the requests that only look; proposals,
    /// membership changes and transfers wait for the write to end, in
    /// order.
    fn request_during_write(&mut self, r: Request) {
        match r {
            Request::Read { .. } | Request::Status { .. } | Request::Members { .. } => {
                self.request(r)
            }
            _ => self.held_requests.push(r),
        }
    }

    fn step_during_write(&mut self, m: WireMessage) {
        let m: crate::core::Message = m.into();
        if self.node.may_step_during_write(&m) {
            self.metrics.messages_received += 1;
            self.node.step(m);
        } else {
            self.held.push(m);
        }
    }

    /// Sends messages the core released (their `send` events reach the
    /// trace file first, so a receive in another node's trace never lacks
    /// its send here).
    async fn send_all(&mut self, msgs: &[crate::core::Message]) {
        if !msgs.is_empty() {
            trace_written(&self.trace).await;
        }
        for m in msgs {
            self.metrics.messages_sent += 1;
            if let Err(e) = self.transport.send(m.to, &WireMessage::from(m)) {
                tracing::debug!(to = m.to, error = %e, "message not sent");
            }
        }
    }

    /// Applies committed entries in order and answers the proposals waiting
    /// for them; then lets the reads waiting for the applied index go on.
    fn apply_committed(&mut self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let applied = {
            let mut kv = shared.kv_mut();
            for e in entries {
                if e.index <= kv.applied() {
                    continue;
                }
                let a = kv.apply(e);
                self.node.applied(e.index, a.duplicate);
                self.metrics.entries_applied += 1;
                if let Some(w) = self.waiting.remove(&e.index) {
                    let r = match (a.command, a.reply) {
                        (Some(c), Some(reply)) if c == (w.client, w.req) => Ok(reply),
                        _ => Err(ReqError::Lost),
                    };
                    self.shared.proposals.complete(w.id, r);
                }
                if let Some(w) = self.changes.remove(&e.index) {
                    let r = match &e.payload {
                        Payload::Config(c) if **c == *w.entry => {
                            tracing::info!(id = self.id, index = e.index, config = %c.membership, "membership change applied");
                            Ok(self.configuration(&kv, &c.membership, e.index))
                        }
                        _ => Err(ChangeFailed::Req(ReqError::Lost)),
                    };
                    self.shared.changes.complete(w.id, r);
                }
            }
            kv.applied()
        };
        self.shared.applied.advance(applied);
    }

    /// Whether `rd` needs an fdatasync: new entries, a snapshot, or a term
    /// or vote the WAL does not hold yet. A hard state whose only change is
    /// the commit index is written without one (as etcd does): the commit
    /// index need not be durable, since a restarted node learns it again
    /// from the leader and recovers none above its durable log (the WAL's
    /// term and vote are always synced, so `Wal::hard_state`'s are durable).
    fn must_sync(&self, rd: &Ready) -> bool {
        if rd.snapshot.is_some() || !rd.entries.is_empty() {
            return true;
        }
        match (rd.hard_state, &self.wal) {
            (None, _) => false,
            (Some(hs), Some(wal)) => {
                let d = wal.hard_state();
                (d.term, d.vote) != (hs.term, hs.vote)
            }
            (Some(_), None) => true,
        }
    }

    async fn handle_ready(
        &mut self,
        mut rd: Ready,
        inbound: &mut mpsc::Receiver<(NodeId, WireMessage)>,
        requests: &mut mpsc::Receiver<Request>,
    ) -> Result<(), NodeError> {
        self.metrics.readies += 1;
        // Members named by new configuration entries, or by the leader's
        // snapshot, are reachable before this Ready's messages leave.
        for e in &rd.entries {
            if let Payload::Config(c) = &e.payload {
                self.learn_addresses(c);
            }
        }
        let installing = match &rd.snapshot {
            Some(s) => {
                let kv = KvStore::restore(&s.data, self.shared.bugs)
                    .map_err(|e| NodeError::Corrupt(format!("leader's snapshot: {e}")))?;
                for (id, a) in kv.members() {
                    self.learn_peer(*id, &a.peer_addr);
                }
                Some(kv)
            }
            None => None,
        };
        // The fast write path. A leader's appends leave before its own
        // write, which then runs in parallel with the followers' (Raft
        // thesis §10.2.1; the core releases nothing else early and counts
        // the leader towards a commit only once `persisted` says its entries
        // are durable).
        let early = self.node.early_messages(&mut rd);
        self.send_all(&early).await;
        // Committed entries are durable here already (the core hands out
        // none above its durable log) and on a quorum: apply them and answer
        // their clients without waiting for this Ready's write. A snapshot
        // from the leader must be written and installed first.
        if rd.snapshot.is_none() {
            let committed = std::mem::take(&mut rd.committed_entries);
            self.apply_committed(&committed);
        }
        if rd.must_persist() && !self.must_sync(&rd) {
            // Only the commit index changed: buffered, no fdatasync (the
            // next synced write carries it to the disk).
            trace_written(&self.trace).await;
            let wal = self.wal.as_mut().ok_or(StorageError::Poisoned)?;
            if let Some(hs) = rd.hard_state {
                wal.set_hard_state(storage::HardState {
                    term: hs.term,
                    vote: hs.vote,
                    commit: hs.commit,
                })?;
            }
        } else if rd.must_persist() {
            // The trace first: the events describing what this write makes
            // durable (appends, truncations, term and vote, commit index,
            // installs), all pending lines in one write, so that a restart
            // never recovers state its trace does not show.
            trace_written(&self.trace).await;
            let snap = rd.snapshot.clone();
            let hs = rd.hard_state;
            let apply_meanwhile = snap.is_none();
            let entries: Vec<storage::Entry> = rd
                .entries
                .iter()
                .map(|e| storage::Entry {
                    index: e.index,
                    term: e.term,
                    data: encode_payload(&e.payload),
                })
                .collect();
            let write = move |wal: &mut Wal| {
                if let Some(s) = snap {
                    let meta = storage::SnapshotMeta {
                        index: s.meta.index,
                        term: s.meta.term,
                    };
                    wal.save_snapshot(meta, &wire::encode_snapshot(&s.config, &s.data))?;
                    wal.compact(meta.index)?;
                }
                let snap_index = wal.snapshot().map_or(0, |m| m.index);
                let fresh: Vec<_> = entries
                    .into_iter()
                    .filter(|e| e.index > snap_index)
                    .collect();
                if let Some(first) = fresh.first() {
                    if first.index <= wal.last_index() {
                        wal.truncate_from(first.index)?;
                    }
                    wal.append(&fresh)?;
                }
                if let Some(hs) = hs {
                    wal.set_hard_state(storage::HardState {
                        term: hs.term,
                        vote: hs.vote,
                        commit: hs.commit,
                    })?;
                }
                wal.sync()
            };
            if apply_meanwhile {
                self.with_wal_stepping(write, inbound, requests).await?;
            } else {
                self.with_wal(write).await?;
            }
            self.metrics.wal_syncs += 1;
        }
        let msgs = self.node.persisted(&mut rd);
        self.send_all(&msgs).await;
        if let (Some(s), Some(kv)) = (&rd.snapshot, installing) {
            *self.shared.kv_mut() = kv;
            self.node.applied_snapshot(s.meta.index);
            self.metrics.snapshots_installed += 1;
            // Proposals whose index the snapshot covers cannot be matched.
            let rest = self.waiting.split_off(&(s.meta.index + 1));
            for (_, w) in std::mem::replace(&mut self.waiting, rest) {
                self.shared.proposals.complete(w.id, Err(ReqError::Lost));
            }
            let rest = self.changes.split_off(&(s.meta.index + 1));
            for (_, w) in std::mem::replace(&mut self.changes, rest) {
                let r = Err(ChangeFailed::Req(ReqError::Lost));
                self.shared.changes.complete(w.id, r);
            }
        }
        let committed = std::mem::take(&mut rd.committed_entries);
        self.apply_committed(&committed);
        for rs in rd.read_states {
            self.read_ready(rs);
        }
        self.maybe_snapshot().await
    }

    async fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let applied = self.shared.applied.get();
        if !self.node.snapshot_due(applied) {
            return Ok(());
        }
        let Some(term) = self.node.log().term(applied) else {
            return Ok(());
        };
        let data = Arc::new(self.shared.kv().snapshot());
        let meta = storage::SnapshotMeta {
            index: applied,
            term,
        };
        // The core compacts first, recording the `snapshot` event, which
        // reaches the trace file before the WAL records the snapshot. Nothing
        // is sent in between: a failed write stops the node.
        self.node.compact(applied, data.clone());
        let taken = crate::core::SnapshotMeta {
            index: applied,
            term,
        };
        if self.node.log().snapshot_meta() != taken {
            return Ok(());
        }
        let Some(snap) = self.node.snapshot() else {
            return Ok(());
        };
        let stored = wire::encode_snapshot(&snap.config, &data);
        trace_written(&self.trace).await;
        self.with_wal(move |wal| {
            wal.save_snapshot(meta, &stored)?;
            wal.compact(meta.index)?;
            Ok(())
        })
        .await?;
        self.metrics.snapshots_taken += 1;
        tracing::info!(
            id = self.id,
            index = applied,
            "snapshot taken, log compacted"
        );
        Ok(())
    }
}
