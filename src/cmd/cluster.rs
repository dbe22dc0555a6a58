//! `raftcheck cluster`: start a local raftkv cluster of `raftcheck node`
//! child processes on free loopback ports, print the endpoints, run until
//! Ctrl-C.

use std::path::PathBuf;
use std::process::{Child, Command};

use anyhow::{Context, Result};

use crate::exit::Outcome;
use crate::output::{self, outln};

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
}

fn free_port() -> Result<u16> {
    raftkv::transport::ports::listen_port().context("cannot find a free port on 127.0.0.1")
}

pub fn run(args: Args) -> Result<Outcome> {
    if args.lease_read && args.no_check_quorum {
        anyhow::bail!(
            "--lease-read requires check-quorum: without it followers do not honour the \
             leader's lease and lease reads can be stale (drop --no-check-quorum)"
        );
    }
    let n = args.nodes.max(1);
    let mut peers = Vec::new();
    let mut clients = Vec::new();
    for id in 1..=n {
        peers.push(format!("{id}=127.0.0.1:{}", free_port()?));
        clients.push(format!("{id}=127.0.0.1:{}", free_port()?));
    }
    let exe = std::env::current_exe().context("cannot find the raftcheck executable")?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create {}", args.data_dir.display()))?;
    if args.trace {
        std::fs::create_dir_all(args.data_dir.join("traces"))?;
    }
    let mut children: Vec<Child> = Vec::new();
    for id in 1..=n {
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
            .arg(args.data_dir.join(format!("node-{id}")))
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
        match c.spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                for mut ch in children {
                    let _ = ch.kill();
                }
                return Err(e).context("cannot start a node");
            }
        }
    }
    let endpoints: Vec<&str> = clients
        .iter()
        .filter_map(|c| c.split_once('=').map(|x| x.1))
        .collect();
    let printed = if args.json {
        output::json(
            &serde_json::json!({ "endpoints": endpoints, "peers": peers, "pids": children.iter().map(Child::id).collect::<Vec<_>>() }),
        )
    } else {
        print_endpoints(&endpoints).map_err(Into::into)
    };
    // Nobody learns the endpoints when stdout is closed: stop the nodes again.
    let stopped = printed.and_then(|()| Ok(raftkv::node::wait_for_stop_signal()?));
    for c in &mut children {
        // SIGTERM-like stop: the nodes also got the terminal's Ctrl-C.
        let _ = Command::new("kill").arg(c.id().to_string()).status();
    }
    for mut c in children {
        let _ = c.wait();
    }
    stopped.map(|()| Outcome::Holds)
}

fn print_endpoints(endpoints: &[&str]) -> Result<(), output::OutputError> {
    for (i, e) in endpoints.iter().enumerate() {
        outln!("node {}: http://{e}", i + 1)?;
    }
    outln!("endpoints: {}", endpoints.join(","))?;
    outln!(
        "try: raftcheck client put --endpoints {} hello world",
        endpoints.join(",")
    )?;
    outln!("Ctrl-C stops the cluster.")
}
