//! `raftcheck cluster`: start a local raftkv cluster of `raftcheck node`
//! child processes on free loopback ports (or fixed ones from
//! `--base-port`), print the endpoints, and watch
//! the nodes until Ctrl-C: a node that exits is reported on stderr (its exit
//! status or signal and the last lines of its log), and when no node is
//! left the cluster stops with exit 4 (unavailable).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::exit::Outcome;
use crate::output::{self, errln, outln};

#[derive(clap::Args)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Each node keeps its data in DIR/node-N.
    #[arg(long)]
    data_dir: PathBuf,
    /// Write each node's raft-trace/1 events to DIR/traces/node-N.ndjson.
    #[arg(long)]
    trace: bool,
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

/// The `(client, peer)` ports of nodes `1..=n` from `--base-port`, each
/// checked free; an error names the port that is not.
fn fixed_ports(base: u16, n: u64) -> Result<Vec<(u16, u16)>> {
    if n > PEER_PORT_OFFSET {
        anyhow::bail!(
            "--base-port gives each node one of {PEER_PORT_OFFSET} client ports: at most \
             {PEER_PORT_OFFSET} nodes, not {n}"
        );
    }
    let port = |offset: u64| -> Result<u16> {
        u16::try_from(u64::from(base) + offset).map_err(|_| {
            anyhow::anyhow!(
                "--base-port {base}: {n} nodes need ports up to {}, past 65535",
                u64::from(base) + PEER_PORT_OFFSET + n - 1
            )
        })
    };
    let mut ports = Vec::new();
    for i in 0..n {
        let (client, peer) = (port(i)?, port(PEER_PORT_OFFSET + i)?);
        for (p, what) in [(client, "client API"), (peer, "peer port")] {
            std::net::TcpListener::bind(("127.0.0.1", p)).map_err(|e| {
                anyhow::anyhow!(
                    "--base-port {base}: port {p} (node {}'s {what}) is not free: {e}",
                    i + 1
                )
            })?;
        }
        ports.push((client, peer));
    }
    Ok(ports)
}

fn free_port() -> Result<u16> {
    raftkv::transport::ports::listen_port().context("cannot find a free port on 127.0.0.1")
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

pub fn run(args: Args) -> Result<Outcome> {
    if args.lease_read && args.no_check_quorum {
        anyhow::bail!(
            "--lease-read requires check-quorum: without it followers do not honour the \
             leader's lease and lease reads can be stale (drop --no-check-quorum)"
        );
    }
    let n = args.nodes.max(1);
    let node_dir = |id: u64| args.data_dir.join(format!("node-{id}"));
    // Nodes started on a directory another process holds would each fail on
    // its lock: say so before starting anything (or touching its logs).
    let held: Vec<String> = (1..=n)
        .filter_map(|id| raftkv::storage::wal::held_lock(&node_dir(id)))
        .map(|p| p.display().to_string())
        .collect();
    if !held.is_empty() {
        anyhow::bail!(
            "--data-dir {} is in use: {} locked by another process (another cluster or node \
             running on it?); stop it or choose another --data-dir",
            args.data_dir.display(),
            held.join(", ")
        );
    }
    let ports: Vec<(u16, u16)> = match args.base_port {
        Some(base) => fixed_ports(base, n)?,
        None => (1..=n)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<Result<_>>()?,
    };
    let mut peers = Vec::new();
    let mut clients = Vec::new();
    for (id, (client, peer)) in (1..=n).zip(ports) {
        peers.push(format!("{id}=127.0.0.1:{peer}"));
        clients.push(format!("{id}=127.0.0.1:{client}"));
    }
    let exe = std::env::current_exe().context("cannot find the raftcheck executable")?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create {}", args.data_dir.display()))?;
    if args.trace {
        std::fs::create_dir_all(args.data_dir.join("traces"))?;
    }
    let mut nodes: Vec<Node> = Vec::new();
    for id in 1..=n {
        let log = args.data_dir.join(format!("node-{id}.log"));
        let mut c = Command::new(&exe);
        c.arg("node")
            .args(["--id", &id.to_string()])
            .args(["--peers", &peers.join(",")])
            .args([
                "--client-addr",
                clients[id as usize - 1].split_once('=').map_or("", |x| x.1),
            ])
            .args(["--client-peers", &clients.join(",")])
            .arg("--data-dir")
            .arg(node_dir(id))
            .args(["--tick-ms", &args.tick_ms.to_string()]);
        if args.no_pre_vote {
            c.arg("--no-pre-vote");
        }
        if args.no_check_quorum {
            c.arg("--no-check-quorum");
        }
        if args.lease_read {
            c.arg("--lease-read");
        }
        if args.trace {
            c.arg("--trace").arg(
                args.data_dir
                    .join("traces")
                    .join(format!("node-{id}.ndjson")),
            );
        }
        let spawned = std::fs::File::create(&log)
            .with_context(|| format!("create {}", log.display()))
            .and_then(|f| {
                c.stdout(Stdio::null())
                    .stderr(f)
                    .spawn()
                    .context("cannot start a node")
            });
        match spawned {
            Ok(child) => nodes.push(Node {
                id,
                child,
                log,
                running: true,
            }),
            Err(e) => {
                stop(&mut nodes);
                return Err(e);
            }
        }
    }
    let endpoints: Vec<&str> = clients
        .iter()
        .filter_map(|c| c.split_once('=').map(|x| x.1))
        .collect();
    let logs: Vec<String> = nodes.iter().map(|x| x.log.display().to_string()).collect();
    let printed = if args.json {
        output::json(&serde_json::json!({
            "endpoints": endpoints,
            "peers": peers,
            "pids": nodes.iter().map(|x| x.child.id()).collect::<Vec<_>>(),
            "logs": logs,
        }))
    } else {
        print_endpoints(&endpoints, &args.data_dir).map_err(Into::into)
    };
    // Nobody learns the endpoints when stdout is closed: stop the nodes again.
    let watched = printed.and_then(|()| watch(&mut nodes));
    stop(&mut nodes);
    watched
}

/// Waits for Ctrl-C or SIGTERM, reporting every node that exits meanwhile;
/// unavailable once no node is left.
fn watch(nodes: &mut [Node]) -> Result<Outcome> {
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
        for node in nodes.iter_mut().filter(|x| x.running) {
            // try_wait reaps an exited node: it does not stay a zombie.
            if let Some(status) = node.child.try_wait()? {
                node.running = false;
                exited.push((node.id, status, node.log.clone()));
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
        let left = nodes.iter().filter(|x| x.running).count();
        for (id, status, log) in exited {
            errln!(
                "cluster: node {id} {}; {left} of {} left",
                how_it_ended(status),
                raft_conformance::count(nodes.len() as u64, "node")
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

fn print_endpoints(endpoints: &[&str], dir: &Path) -> Result<(), output::OutputError> {
    for (i, e) in endpoints.iter().enumerate() {
        outln!("node {}: http://{e}", i + 1)?;
    }
    outln!("logs: {}", dir.join("node-N.log").display())?;
    outln!("endpoints: {}", endpoints.join(","))?;
    outln!(
        "try: raftcheck client put --endpoints {} hello world",
        endpoints.join(",")
    )?;
    outln!("Ctrl-C stops the cluster; a node that exits is reported on stderr.")
}
