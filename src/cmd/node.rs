//! `raftcheck node`: run one node of a raftkv cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use raftkv::node::NodeConfig;

use crate::exit::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// This node's id (positive).
    #[arg(long)]
    id: u64,
    /// Peer (Raft) addresses of every node: `1=127.0.0.1:7001,2=...`. This
    /// node's own entry is the address it listens on; the others are where
    /// it connects to send to them. Those need not be the peers' listen
    /// addresses: each node may be given its own map, e.g. with a proxy or
    /// relay in front of a peer (messages carry the sender's id, not its
    /// address).
    #[arg(long)]
    peers: String,
    /// Address of this node's HTTP client API.
    #[arg(long)]
    client_addr: SocketAddr,
    /// Client API addresses of every node, for redirects to the leader:
    /// `1=127.0.0.1:8001,2=...` (default: this node's only, so followers
    /// answer 503 with the leader's id instead of redirecting).
    #[arg(long)]
    client_peers: Option<String>,
    /// Directory of the WAL and snapshots.
    #[arg(long)]
    data_dir: PathBuf,
    /// Write raft-trace/1 events to this file (appended across restarts).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Milliseconds per Raft tick (election timeout 10-20 ticks, heartbeat 2).
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
    /// Snapshot and compact the log every this many applied entries.
    #[arg(long, default_value_t = 10_000)]
    compact_every: u64,
    /// Turn pre-vote off: on an election timeout campaign at once, raising
    /// the term, instead of first asking for pre-votes (Raft thesis 9.6).
    #[arg(long)]
    no_pre_vote: bool,
    /// Turn check-quorum off: a leader that hears from no quorum keeps
    /// leading, and followers vote for higher-term candidates even while
    /// they hear from a leader (no leader lease; Raft thesis 6.2).
    #[arg(long)]
    no_check_quorum: bool,
    /// Serve reads from the leader's lease (Raft thesis 6.4.1) instead of
    /// confirming leadership with a heartbeat round per read. Requires
    /// check-quorum, and assumes clocks drift by less than 2 ticks per
    /// election timeout (see the README).
    #[arg(long)]
    lease_read: bool,
    /// Plant a bug, to see a test catch it (`raftcheck bugs` lists them;
    /// `local-read` is for fault runs of node processes). Never in
    /// production.
    #[arg(long = "bug", value_name = "NAME")]
    bugs: Vec<raftkv::bugs::Bug>,
    /// Runtime worker threads; 0 runs the node on one thread (plus one for
    /// WAL writes), the fastest choice when nodes share a small machine.
    #[arg(long, default_value_t = 0)]
    worker_threads: usize,
    /// Join a running cluster (add the node with `raftcheck client members
    /// add` or `POST /v1/admin/members`): start with no configuration and
    /// take part once the leader's configuration names this node. `--peers`
    /// then gives this node's own address and where the current members
    /// are (at least the leader). Only the first start decides: a restart
    /// uses the configuration stored in --data-dir, with or without --join.
    #[arg(long)]
    join: bool,
    /// With --trace: the trace header names nodes 1..=N, every node the run
    /// will ever have, members added later included (default: the ids of
    /// --peers; required with --join). Give every node of a run the same N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    trace_nodes: Option<u64>,
    /// With --trace: the run's bootstrap voters for the trace header, e.g.
    /// `1,2,3` (default: this node's bootstrap voters, the ids of --peers;
    /// required with --join, whose own bootstrap configuration is empty).
    #[arg(long, value_name = "IDS")]
    trace_voters: Option<String>,
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_map(s: &str, what: &str) -> Result<BTreeMap<u64, String>> {
    let mut m = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("{what}: expected ID=ADDR, got {part:?}"))?;
        let id: u64 = id
            .parse()
            .with_context(|| format!("{what}: bad node id {id:?}"))?;
        if id == 0 {
            bail!("{what}: node ids are positive");
        }
        if m.insert(id, addr.to_string()).is_some() {
            bail!("{what}: node {id} given twice");
        }
    }
    if m.is_empty() {
        bail!("{what}: empty");
    }
    Ok(m)
}

/// Parses `1,2,3` (positive, distinct ids).
fn parse_ids(s: &str, what: &str) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: u64 = part
            .parse()
            .with_context(|| format!("{what}: bad node id {part:?}"))?;
        if id == 0 {
            bail!("{what}: node ids are positive");
        }
        if ids.contains(&id) {
            bail!("{what}: node {id} given twice");
        }
        ids.push(id);
    }
    if ids.is_empty() {
        bail!("{what}: empty");
    }
    ids.sort_unstable();
    Ok(ids)
}

pub fn run(args: Args) -> Result<Outcome> {
    if args.lease_read && args.no_check_quorum {
        bail!(
            "--lease-read requires check-quorum: without it followers do not honour the \
             leader's lease and lease reads can be stale (drop --no-check-quorum)"
        );
    }
    let peers = parse_map(&args.peers, "--peers")?
        .into_iter()
        .map(|(id, a)| {
            a.parse::<SocketAddr>()
                .map(|sa| (id, sa))
                .with_context(|| format!("--peers: bad address {a:?} for node {id}"))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    if !peers.contains_key(&args.id) {
        bail!("--peers has no address for node {}", args.id);
    }
    let trace_voters = match &args.trace_voters {
        Some(s) => Some(parse_ids(s, "--trace-voters")?),
        None => None,
    };
    if args.join && args.trace.is_some() && (trace_voters.is_none() || args.trace_nodes.is_none()) {
        bail!(
            "--trace with --join needs --trace-nodes N (every node the run will have) and \
             --trace-voters (the run's bootstrap voters, e.g. 1,2,3) for the trace header: a \
             joining node's own --peers and bootstrap configuration do not say them"
        );
    }
    if let Some(n) = args.trace_nodes {
        let named = peers.keys().chain(trace_voters.iter().flatten());
        if let Some(bad) = named.filter(|&&id| id > n).min() {
            bail!("--trace-nodes {n}: node {bad} (in --peers or --trace-voters) is above it");
        }
    }
    let mut client_peers = match &args.client_peers {
        Some(s) => parse_map(s, "--client-peers")?,
        None => BTreeMap::new(),
    };
    client_peers
        .entry(args.id)
        .or_insert_with(|| args.client_addr.to_string());
    let cfg = NodeConfig {
        id: args.id,
        peers,
        client_addr: args.client_addr,
        client_peers,
        data_dir: args.data_dir,
        trace: args.trace,
        tick: Duration::from_millis(args.tick_ms.max(1)),
        election_ticks: 10,
        heartbeat_ticks: 2,
        compact_every: args.compact_every.max(1),
        pre_vote: !args.no_pre_vote,
        check_quorum: !args.no_check_quorum,
        lease_read: args.lease_read,
        // The trace header names only features the specification knows, so
        // that `raftcheck validate` of this build accepts it.
        known_features: Some(raft_model::FEATURES.iter().map(|f| f.to_string()).collect()),
        bugs: args
            .bugs
            .iter()
            .fold(raftkv::bugs::Bugs::NONE, |b, &bug| b.with(bug)),
        wal_faults: None,
        join: args.join,
        trace_nodes: args.trace_nodes.map(|n| (1..=n).collect()),
        trace_voters,
    };
    raftkv::node::run_process(cfg, args.worker_threads)
        .with_context(|| format!("node {}", args.id))?;
    Ok(Outcome::Holds)
}
