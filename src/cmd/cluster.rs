//! `raftcheck cluster`: start a local raftkv cluster of `raftcheck node`
//! child processes on free loopback ports (or fixed ones from
//! `--base-port`), print the endpoints, and watch
//! the nodes until Ctrl-C: a node that exits is reported on stderr (its exit
//! status or signal and the last lines of its log), and when no node is
//! left the cluster stops with exit 4 (unavailable).
//!
//! Membership: `raftcheck cluster add --data-dir DIR` and `raftcheck cluster
//! remove ID --data-dir DIR` ask the cluster running on DIR (through the
//! Unix socket `DIR/control.sock`) to start a new node and add it (`raftcheck
//! node --join`, then the admin API), or to remove a node from the
//! configuration and stop its process. The cluster records its members in
//! `DIR/cluster.json`, so that a restart on the same directory starts the
//! current members (ids are never reused).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use raftkv::node::client::{Client, Outcome as KvOutcome};

use crate::exit::Outcome;
use crate::output::{self, errln, outln};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Start a new node and add it to the cluster running on --data-dir
    /// (the next unused id; `--learner`: a non-voting member, to promote
    /// later with `raftcheck client members promote ID`). Prints the new
    /// node's endpoint and the members.
    Add {
        /// The running cluster's --data-dir.
        #[arg(long)]
        data_dir: PathBuf,
        /// Add the node as a learner.
        #[arg(long)]
        learner: bool,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Remove node ID from the configuration of the cluster running on
    /// --data-dir, then stop its process (its data stays in DIR/node-ID).
    Remove {
        #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
        /// The running cluster's --data-dir.
        #[arg(long)]
        data_dir: PathBuf,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct StartArgs {
    /// Number of nodes (of a new cluster: a --data-dir whose cluster.json
    /// records members starts those).
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Each node keeps its data in DIR/node-N (required).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Write each node's raft-trace/1 events to DIR/traces/node-N.ndjson.
    #[arg(long)]
    trace: bool,
    /// The largest node id `cluster add` may give while tracing: the traces'
    /// headers name nodes 1..=N, every node the run may have (default:
    /// --nodes, so that a traced cluster does not grow).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    max_nodes: Option<u64>,
    /// Milliseconds per Raft tick.
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
    /// Print the endpoints as one JSON object.
    #[arg(long)]
    json: bool,
    /// Start the nodes with pre-vote off (see `raftcheck node --help`).
    #[arg(long)]
    no_pre_vote: bool,
    /// Start the nodes with check-quorum off (see `raftcheck node --help`).
    #[arg(long)]
    no_check_quorum: bool,
    /// Start the nodes with lease reads (see `raftcheck node --help`;
    /// requires check-quorum).
    #[arg(long)]
    lease_read: bool,
    /// Fixed ports, the same on every start: node i serves clients on
    /// N+i-1 and its peers on N+100+i-1 (so `--base-port 8001` gives the
    /// endpoints 127.0.0.1:8001,127.0.0.1:8002,...). Without it, free
    /// ports are picked anew on every start.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    base_port: Option<u16>,
}

/// How far above `--base-port` the peer ports start.
const PEER_PORT_OFFSET: u64 = 100;

/// The `(client, peer)` ports of node `id` from `--base-port`, each checked
/// free; an error names the port that is not.
fn fixed_ports(base: u16, id: u64) -> Result<(u16, u16)> {
    if id > PEER_PORT_OFFSET {
        anyhow::bail!(
            "--base-port gives each node one of {PEER_PORT_OFFSET} client ports: node ids up \
             to {PEER_PORT_OFFSET}, not {id}"
        );
    }
    let port = |offset: u64| -> Result<u16> {
        u16::try_from(u64::from(base) + offset).map_err(|_| {
            anyhow::anyhow!(
                "--base-port {base}: node {id} needs ports up to {}, past 65535",
                u64::from(base) + PEER_PORT_OFFSET + id - 1
            )
        })
    };
    let (client, peer) = (port(id - 1)?, port(PEER_PORT_OFFSET + id - 1)?);
    for (p, what) in [(client, "client API"), (peer, "peer port")] {
        std::net::TcpListener::bind(("127.0.0.1", p)).map_err(|e| {
            anyhow::anyhow!("--base-port {base}: port {p} (node {id}'s {what}) is not free: {e}")
        })?;
    }
    Ok((client, peer))
}

fn free_port() -> Result<u16> {
    raftkv::transport::ports::listen_port().context("cannot find a free port on 127.0.0.1")
}

/// `DIR/cluster.json`: the cluster's members across restarts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Record {
    /// The voters of the first start.
    bootstrap: Vec<u64>,
    /// Every node ever started (ids are never reused).
    nodes: Vec<u64>,
    /// Nodes removed from the configuration (not started again).
    #[serde(default)]
    removed: Vec<u64>,
}

impl Record {
    fn path(dir: &Path) -> PathBuf {
        dir.join("cluster.json")
    }

    fn load(dir: &Path) -> Result<Option<Record>> {
        let path = Record::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{}: not a cluster record", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let path = Record::path(dir);
        let tmp = dir.join("cluster.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))
    }

    fn members(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .copied()
            .filter(|n| !self.removed.contains(n))
            .collect()
    }
}

/// One node process of the cluster.
struct Node {
    id: u64,
    child: Child,
    /// Its stderr.
    log: PathBuf,
    /// Not yet seen to exit.
    running: bool,
}

/// What every node is started with.
struct Setup {
    exe: PathBuf,
    dir: PathBuf,
    tick_ms: u64,
    no_pre_vote: bool,
    no_check_quorum: bool,
    lease_read: bool,
    trace: bool,
    /// The traces' `nodes` are 1..=max_nodes.
    max_nodes: u64,
    base_port: Option<u16>,
}

/// The running cluster, shared by the watch loop and the control socket.
struct State {
    setup: Setup,
    record: Record,
    /// Each member's `(client, peer)` address.
    addrs: BTreeMap<u64, (String, String)>,
    nodes: Vec<Node>,
}

impl State {
    fn node_dir(&self, id: u64) -> PathBuf {
        self.setup.dir.join(format!("node-{id}"))
    }

    fn pick_addrs(&self, id: u64) -> Result<(String, String)> {
        let (client, peer) = match self.setup.base_port {
            Some(base) => fixed_ports(base, id)?,
            None => (free_port()?, free_port()?),
        };
        Ok((format!("127.0.0.1:{client}"), format!("127.0.0.1:{peer}")))
    }

    fn map(&self, pick: impl Fn(&(String, String)) -> &String) -> String {
        self.addrs
            .iter()
            .map(|(id, a)| format!("{id}={}", pick(a)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The endpoints of the members, in id order.
    fn endpoints(&self) -> Vec<String> {
        self.addrs.values().map(|(c, _)| c.clone()).collect()
    }

    /// Starts member `id` (whose address is in `addrs`).
    fn spawn(&mut self, id: u64) -> Result<()> {
        let s = &self.setup;
        let log = s.dir.join(format!("node-{id}.log"));
        let (client, _) = &self.addrs[&id];
        let mut c = Command::new(&s.exe);
        c.arg("node")
            .args(["--id", &id.to_string()])
            .args(["--peers", &self.map(|a| &a.1)])
            .args(["--client-addr", client])
            .args(["--client-peers", &self.map(|a| &a.0)])
            .arg("--data-dir")
            .arg(self.node_dir(id))
            .args(["--tick-ms", &s.tick_ms.to_string()]);
        if !self.record.bootstrap.contains(&id) {
            c.arg("--join");
        }
        if s.no_pre_vote {
            c.arg("--no-pre-vote");
        }
        if s.no_check_quorum {
            c.arg("--no-check-quorum");
        }
        if s.lease_read {
            c.arg("--lease-read");
        }
        if s.trace {
            let voters: Vec<String> = self.record.bootstrap.iter().map(u64::to_string).collect();
            c.arg("--trace")
                .arg(s.dir.join("traces").join(format!("node-{id}.ndjson")))
                .args(["--trace-nodes", &s.max_nodes.to_string()])
                .args(["--trace-voters", &voters.join(",")]);
        }
        // Appended to: a restarted cluster keeps each node's earlier log.
        let child = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("create {}", log.display()))
            .and_then(|f| {
                c.stdout(Stdio::null())
                    .stderr(f)
                    .spawn()
                    .context("cannot start a node")
            })?;
        self.nodes.push(Node {
            id,
            child,
            log,
            running: true,
        });
        Ok(())
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn run(args: Args) -> Result<Outcome> {
    match args.action {
        Some(Action::Add {
            data_dir,
            learner,
            json,
        }) => control(
            &data_dir,
            &serde_json::json!({"op": "add", "learner": learner}),
            json,
        ),
        Some(Action::Remove { id, data_dir, json }) => control(
            &data_dir,
            &serde_json::json!({"op": "remove", "id": id}),
            json,
        ),
        None => start(args.start),
    }
}

fn start(args: StartArgs) -> Result<Outcome> {
    let Some(data_dir) = args.data_dir.clone() else {
        anyhow::bail!("--data-dir is required");
    };
    if args.lease_read && args.no_check_quorum {
        anyhow::bail!(
            "--lease-read requires check-quorum: without it followers do not honour the \
             leader's lease and lease reads can be stale (drop --no-check-quorum)"
        );
    }
    let n = args.nodes.max(1);
    let record = match Record::load(&data_dir)? {
        Some(r) => {
            let members = r.members();
            if members != (1..=n).collect::<Vec<_>>() {
                errln!(
                    "cluster: {} records the members {}: starting those (not --nodes {n})",
                    Record::path(&data_dir).display(),
                    members
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
            r
        }
        None => Record {
            bootstrap: (1..=n).collect(),
            nodes: (1..=n).collect(),
            removed: Vec::new(),
        },
    };
    let members = record.members();
    let max_nodes = args
        .max_nodes
        .unwrap_or(n)
        .max(record.nodes.iter().copied().max().unwrap_or(n));
    let node_dir = |id: u64| data_dir.join(format!("node-{id}"));
    // Nodes started on a directory another process holds would each fail on
    // its lock: say so before starting anything (or touching its logs).
    let held: Vec<String> = members
        .iter()
        .filter_map(|&id| raftkv::storage::wal::held_lock(&node_dir(id)))
        .map(|p| p.display().to_string())
        .collect();
    if !held.is_empty() {
        anyhow::bail!(
            "--data-dir {} is in use: {} locked by another process (another cluster or node \
             running on it?); stop it or choose another --data-dir",
            data_dir.display(),
            held.join(", ")
        );
    }
    let exe = std::env::current_exe().context("cannot find the raftcheck executable")?;
    let mut state = State {
        setup: Setup {
            exe,
            dir: data_dir.clone(),
            tick_ms: args.tick_ms,
            no_pre_vote: args.no_pre_vote,
            no_check_quorum: args.no_check_quorum,
            lease_read: args.lease_read,
            trace: args.trace,
            max_nodes,
            base_port: args.base_port,
        },
        record,
        addrs: BTreeMap::new(),
        nodes: Vec::new(),
    };
    for &id in &members {
        let a = state.pick_addrs(id)?;
        state.addrs.insert(id, a);
    }
    std::fs::create_dir_all(&data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    state.record.save(&data_dir)?;
    if args.trace {
        std::fs::create_dir_all(data_dir.join("traces"))?;
    }
    for &id in &members {
        if let Err(e) = state.spawn(id) {
            stop(&mut state.nodes);
            return Err(e);
        }
    }
    let endpoints = state.endpoints();
    let ids: Vec<u64> = state.addrs.keys().copied().collect();
    let peers: Vec<String> = state
        .addrs
        .iter()
        .map(|(id, (_, p))| format!("{id}={p}"))
        .collect();
    let pids: Vec<u32> = state.nodes.iter().map(|x| x.child.id()).collect();
    let logs: Vec<String> = state
        .nodes
        .iter()
        .map(|x| x.log.display().to_string())
        .collect();
    let state = Arc::new(Mutex::new(state));
    // The control socket is up before the endpoints are printed: whoever
    // reads them can `cluster add` at once.
    let socket = match serve_control(&data_dir, state.clone()) {
        Ok(s) => s,
        Err(e) => {
            stop(&mut lock(&state).nodes);
            return Err(e);
        }
    };
    let printed = if args.json {
        output::json(&serde_json::json!({
            "endpoints": endpoints,
            "peers": peers,
            "pids": pids,
            "logs": logs,
        }))
    } else {
        print_endpoints(&ids, &endpoints, &data_dir).map_err(Into::into)
    };
    // Nobody learns the endpoints when stdout is closed: stop the nodes again.
    let watched = printed.and_then(|()| watch(&state));
    let _ = std::fs::remove_file(socket);
    stop(&mut lock(&state).nodes);
    watched
}

/// Waits for Ctrl-C or SIGTERM, reporting every node that exits meanwhile;
/// unavailable once no node is left.
fn watch(state: &Mutex<State>) -> Result<Outcome> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(raftkv::node::wait_for_stop_signal());
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(stopped) => return stopped.map(|()| Outcome::Holds).map_err(Into::into),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("lost the signal handler"),
        }
        let mut exited = vec![];
        {
            let mut st = lock(state);
            for node in st.nodes.iter_mut().filter(|x| x.running) {
                // try_wait reaps an exited node: it does not stay a zombie.
                if let Some(status) = node.child.try_wait()? {
                    node.running = false;
                    exited.push((node.id, status, node.log.clone()));
                }
            }
        }
        if exited.is_empty() {
            continue;
        }
        // A Ctrl-C in the terminal reaches the nodes too: that is a stop,
        // not a failure.
        if let Ok(stopped) = rx.recv_timeout(Duration::from_millis(200)) {
            return stopped.map(|()| Outcome::Holds).map_err(Into::into);
        }
        let (left, total) = {
            let st = lock(state);
            let left = st.nodes.iter().filter(|x| x.running).count();
            (left, st.record.members().len())
        };
        for (id, status, log) in exited {
            errln!(
                "cluster: node {id} {}; {left} of {} left",
                how_it_ended(status),
                raft_conformance::count(total as u64, "node")
            );
            let tail = last_lines(&log, 5);
            if !tail.is_empty() {
                errln!("cluster: last lines of {}:", log.display());
                for line in tail {
                    errln!("  {line}");
                }
            }
        }
        if left == 0 {
            errln!("cluster: no node is left running; stopping (exit 4, unavailable)");
            return Ok(Outcome::Unavailable);
        }
    }
}

/// `exited with status 2`, `was killed by signal 9 (SIGKILL)`.
fn how_it_ended(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = match sig {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            format!("was killed by signal {sig}{name}")
        }
        (None, None) => format!("ended ({status})"),
    }
}

/// The last `n` non-empty lines of a file (none if it cannot be read).
fn last_lines(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Stops the nodes still running (SIGTERM: they shut down cleanly) and
/// waits for every one of them.
fn stop(nodes: &mut [Node]) {
    for x in nodes.iter_mut().filter(|x| x.running) {
        let _ = Command::new("kill").arg(x.child.id().to_string()).status();
    }
    for x in nodes.iter_mut() {
        let _ = x.child.wait();
        x.running = false;
    }
}

fn print_endpoints(
    ids: &[u64],
    endpoints: &[String],
    dir: &Path,
) -> Result<(), output::OutputError> {
    for (id, e) in ids.iter().zip(endpoints) {
        outln!("node {id}: http://{e}")?;
    }
    outln!("logs: {}", dir.join("node-N.log").display())?;
    outln!("endpoints: {}", endpoints.join(","))?;
    outln!(
        "try: raftcheck client put --endpoints {} hello world",
        endpoints.join(",")
    )?;
    outln!(
        "membership: raftcheck cluster add --data-dir {0}; raftcheck cluster remove ID --data-dir {0}",
        dir.display()
    )?;
    outln!("Ctrl-C stops the cluster; a node that exits is reported on stderr.")
}

/// The control socket of a cluster on `dir`.
fn socket_path(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

/// Serves `cluster add` and `cluster remove` on `DIR/control.sock` (one
/// request at a time, on a thread). Returns the socket's path.
fn serve_control(dir: &Path, state: Arc<Mutex<State>>) -> Result<PathBuf> {
    let path = socket_path(dir);
    // A socket left by a cluster that was killed: the node locks showed
    // that no cluster runs on this directory now.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            if let Err(e) = serve_one(conn, &state) {
                errln!("cluster: control request failed: {e:#}");
            }
        }
    });
    Ok(path)
}

fn serve_one(conn: UnixStream, state: &Mutex<State>) -> Result<()> {
    let mut line = String::new();
    BufReader::new(conn.try_clone()?).read_line(&mut line)?;
    let req: serde_json::Value = serde_json::from_str(&line).context("a JSON request")?;
    let answer = match (req["op"].as_str(), req["id"].as_u64()) {
        (Some("add"), _) => add(state, req["learner"] == true),
        (Some("remove"), Some(id)) => remove(state, id),
        _ => Err(Failure::Bad(format!("unknown request {line:?}"))),
    };
    let out = match answer {
        Ok(v) => v,
        Err(Failure::Refused(e)) => serde_json::json!({"error": e, "refused": true}),
        Err(Failure::Bad(e)) => serde_json::json!({"error": e}),
    };
    let mut w = conn;
    w.write_all(format!("{out}\n").as_bytes())?;
    Ok(())
}

/// Why a control request failed: refused by the cluster (exit 1), or
/// anything else.
enum Failure {
    Refused(String),
    Bad(String),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Bad(format!("{e:#}"))
    }
}

/// A client of the cluster's current members.
fn admin_client(state: &Mutex<State>) -> Client {
    let mut c = Client::new(lock(state).endpoints());
    c.deadline = Duration::from_secs(20);
    c
}

/// The configuration a membership call answered, or why it did not.
fn configuration(
    r: Result<KvOutcome, raftkv::node::client::ClientError>,
) -> Result<serde_json::Value, Failure> {
    match r {
        Ok(KvOutcome::Value(body)) => serde_json::from_str(&body)
            .map_err(|e| Failure::Bad(format!("the configuration is not JSON ({e}): {body}"))),
        Ok(KvOutcome::Refused(e)) => Err(Failure::Refused(e)),
        Ok(other) => Err(Failure::Bad(format!("unexpected answer {other:?}"))),
        Err(e) => Err(Failure::Bad(e.to_string())),
    }
}

/// Starts the next node with `--join` and adds it.
fn add(state: &Mutex<State>, learner: bool) -> Result<serde_json::Value, Failure> {
    let id = {
        let mut st = lock(state);
        let id = st.record.nodes.iter().copied().max().unwrap_or(0) + 1;
        if st.setup.trace && id > st.setup.max_nodes {
            return Err(Failure::Bad(format!(
                "node {id} would be outside the traced run: the traces' headers name nodes \
                 1..={} (start the cluster with --max-nodes to let it grow)",
                st.setup.max_nodes
            )));
        }
        let a = st.pick_addrs(id)?;
        st.addrs.insert(id, a);
        st.record.nodes.push(id);
        let dir = st.setup.dir.clone();
        st.record.save(&dir)?;
        st.spawn(id)?;
        id
    };
    let (client, peer) = lock(state).addrs[&id].clone();
    let r = admin_client(state).add_member(id, &peer, &client, learner);
    match configuration(r) {
        Ok(config) => {
            let role = if learner { "learner" } else { "voter" };
            errln!("cluster: node {id} added as a {role}: http://{client}");
            Ok(serde_json::json!({
                "added": id,
                "endpoint": client,
                "endpoints": lock(state).endpoints(),
                "config": config,
            }))
        }
        Err(Failure::Refused(e)) => {
            // Not a member: stop the new node and forget it.
            let mut st = lock(state);
            st.record.removed.push(id);
            st.addrs.remove(&id);
            let dir = st.setup.dir.clone();
            let _ = st.record.save(&dir);
            if let Some(n) = st.nodes.iter_mut().find(|n| n.id == id) {
                n.running = false;
                let _ = Command::new("kill").arg(n.child.id().to_string()).status();
                let _ = n.child.wait();
            }
            Err(Failure::Refused(e))
        }
        Err(Failure::Bad(e)) => {
            // The change may still be in the leader's log and commit: the
            // node keeps running (as a joiner it waits harmlessly).
            Err(Failure::Bad(format!(
                "node {id} was started (http://{client}) but its addition is of unknown \
                 outcome: {e}; see raftcheck client members list"
            )))
        }
    }
}

/// Removes node `id` from the configuration and stops it.
fn remove(state: &Mutex<State>, id: u64) -> Result<serde_json::Value, Failure> {
    let r = admin_client(state).remove_member(id);
    let config = configuration(r)?;
    let mut st = lock(state);
    if !st.record.removed.contains(&id) {
        st.record.removed.push(id);
    }
    st.addrs.remove(&id);
    let dir = st.setup.dir.clone();
    st.record.save(&dir)?;
    let mut stopped = false;
    if let Some(n) = st.nodes.iter_mut().find(|n| n.id == id && n.running) {
        n.running = false;
        let _ = Command::new("kill").arg(n.child.id().to_string()).status();
        let _ = n.child.wait();
        stopped = true;
    }
    errln!(
        "cluster: node {id} removed{}",
        if stopped { " and stopped" } else { "" }
    );
    Ok(serde_json::json!({
        "removed": id,
        "stopped": stopped,
        "endpoints": st.endpoints(),
        "config": config,
    }))
}

/// `cluster add` / `cluster remove`: one request to the cluster on `dir`.
fn control(dir: &Path, req: &serde_json::Value, json: bool) -> Result<Outcome> {
    let path = socket_path(dir);
    let mut conn = match UnixStream::connect(&path) {
        Ok(c) => c,
        Err(e) => {
            errln!(
                "cluster: no cluster is running on --data-dir {} ({}: {e}); start one with \
                 raftcheck cluster --data-dir {}",
                dir.display(),
                path.display(),
                dir.display()
            );
            return Ok(Outcome::Unavailable);
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    conn.write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&conn)
        .read_line(&mut line)
        .context("no answer from the cluster")?;
    let v: serde_json::Value = serde_json::from_str(&line)
        .with_context(|| format!("the cluster's answer is not JSON: {line:?}"))?;
    if let Some(e) = v["error"].as_str() {
        if v["refused"] == true {
            errln!("refused: {e}");
            return Ok(Outcome::Violated);
        }
        anyhow::bail!("{e}");
    }
    if json {
        output::json(&v)?;
        return Ok(Outcome::Holds);
    }
    let endpoints: Vec<&str> = v["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str())
        .collect();
    if let Some(id) = v["added"].as_u64() {
        let learner = v["config"]["learners"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x.as_u64() == Some(id)));
        outln!(
            "added node {id} as a {}: http://{}",
            if learner { "learner" } else { "voter" },
            v["endpoint"].as_str().unwrap_or("?")
        )?;
    }
    if let Some(id) = v["removed"].as_u64() {
        let how = if v["stopped"] == true {
            "; its process stopped"
        } else {
            ""
        };
        outln!("removed node {id}{how}")?;
    }
    super::client::print_members(&v["config"])?;
    outln!("endpoints: {}", endpoints.join(","))?;
    Ok(Outcome::Holds)
}
