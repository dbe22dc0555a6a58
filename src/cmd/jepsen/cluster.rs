//! The cluster under test: raftkv node processes or etcd members, started,
//! killed, paused and restarted by the nemesis, with every peer link behind
//! a relay.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use raftkv::node::client::{Client, ClientError, Outcome};
use raftkv::node::http_client::{Conn, Options};

use raftkv::transport::relay::Relay;

use super::etcd;
use super::Target;

/// How to start the nodes.
pub struct Spec {
    pub target: Target,
    pub nodes: u64,
    pub dir: PathBuf,
    pub tick_ms: u64,
    pub trace: bool,
    pub compact_every: u64,
    pub node_bug: Option<String>,
}

/// One node process and how to start it again.
pub struct NodeProc {
    pub id: u64,
    pub client_addr: String,
    /// Where the node listens for its peers (behind the relays).
    pub peer_addr: String,
    args: Vec<OsString>,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// Exits the node took on its own (not by the nemesis): crashes.
    pub unexpected_exits: Vec<String>,
}

/// A node's view of the cluster, from `GET /v1/status`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Status {
    pub id: u64,
    pub role: String,
    pub term: u64,
}

/// The relays in front of the peer links.
enum Links {
    /// raftkv: one relay per directed link; `(from, to)` carries from's
    /// messages to `to`.
    PerLink(BTreeMap<(u64, u64), Relay>),
    /// etcd: one relay per member that tells the connecting member apart.
    Etcd(etcd::Relays, etcd::Owners),
}

pub struct Cluster {
    pub target: Target,
    pub nodes: Vec<NodeProc>,
    links: Links,
    exe: PathBuf,
    /// raftkv nodes the nemesis removed from the configuration (their
    /// processes keep running, with their state), to add back on healing.
    pub removed: Vec<u64>,
}

fn port() -> Result<u16> {
    raftkv::transport::ports::listen_port().context("cannot find a free port on 127.0.0.1")
}

impl Cluster {
    pub fn start(spec: &Spec) -> Result<Cluster> {
        let exe = match spec.target {
            Target::Raftkv => {
                std::env::current_exe().context("cannot find the raftcheck executable")?
            }
            Target::Etcd => etcd::binary()?,
        };
        let n = spec.nodes;
        let mut peer_addr = BTreeMap::new();
        let mut client_addr = BTreeMap::new();
        for id in 1..=n {
            peer_addr.insert(id, SocketAddr::from(([127, 0, 0, 1], port()?)));
            client_addr.insert(id, format!("127.0.0.1:{}", port()?));
        }
        std::fs::create_dir_all(spec.dir.join("data"))
            .with_context(|| format!("cannot create {}", spec.dir.join("data").display()))?;
        if spec.trace {
            std::fs::create_dir_all(spec.dir.join("traces"))?;
        }
        let data = |id: u64| spec.dir.join("data").join(format!("node-{id}"));
        let (links, all_args) = match spec.target {
            Target::Raftkv => {
                let mut relays = BTreeMap::new();
                for from in 1..=n {
                    for to in (1..=n).filter(|&t| t != from) {
                        let relay = Relay::start(peer_addr[&to])
                            .with_context(|| format!("cannot start the relay {from} -> {to}"))?;
                        relays.insert((from, to), relay);
                    }
                }
                let args = (1..=n)
                    .map(|id| raftkv_args(spec, id, &peer_addr, &client_addr, &relays, &data(id)))
                    .collect::<Vec<_>>();
                (Links::PerLink(relays), args)
            }
            Target::Etcd => {
                let owners: etcd::Owners = Default::default();
                let relays = etcd::Relays::start(&peer_addr, owners.clone())
                    .context("cannot start the relays")?;
                let args = (1..=n)
                    .map(|id| {
                        etcd::member_args(
                            id,
                            peer_addr[&id],
                            &client_addr[&id],
                            &relays.addrs,
                            &data(id),
                        )
                    })
                    .collect::<Vec<_>>();
                (Links::Etcd(relays, owners), args)
            }
        };
        let nodes = all_args
            .into_iter()
            .zip(1..=n)
            .map(|(args, id)| NodeProc {
                id,
                client_addr: client_addr[&id].clone(),
                peer_addr: peer_addr[&id].to_string(),
                args,
                log: spec.dir.join(format!("node-{id}.log")),
                child: None,
                paused: false,
                unexpected_exits: Vec::new(),
            })
            .collect();
        let mut cluster = Cluster {
            target: spec.target,
            nodes,
            links,
            exe,
            removed: Vec::new(),
        };
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.client_addr.clone()).collect()
    }

    fn start_node(&mut self, i: usize) -> Result<()> {
        let exe = self.exe.clone();
        let node = &mut self.nodes[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .with_context(|| format!("cannot open {}", node.log.display()))?;
        let child = Command::new(exe)
            .args(&node.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start node {}", node.id))?;
        if let Links::Etcd(_, owners) = &self.links {
            owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(child.id(), node.id);
        }
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    fn index(&self, id: u64) -> usize {
        (id - 1) as usize
    }

    /// SIGKILL: nothing is flushed, only what the node made durable stays.
    pub fn kill(&mut self, id: u64) {
        let i = self.index(id);
        self.resume(id);
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, id: u64) -> Result<()> {
        let i = self.index(id);
        if self.nodes[i].child.is_none() {
            self.start_node(i)?;
        }
        Ok(())
    }

    fn signal(&self, id: u64, sig: &str) {
        if let Some(c) = &self.nodes[self.index(id)].child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    /// SIGSTOP: the process keeps its sockets but does nothing.
    pub fn pause(&mut self, id: u64) {
        self.signal(id, "-STOP");
        let i = self.index(id);
        self.nodes[i].paused = self.nodes[i].child.is_some();
    }

    pub fn resume(&mut self, id: u64) {
        let i = self.index(id);
        if self.nodes[i].paused {
            self.signal(id, "-CONT");
            self.nodes[i].paused = false;
        }
    }

    /// Cuts the messages `from` sends to `to`.
    pub fn cut(&self, from: u64, to: u64) {
        match &self.links {
            Links::PerLink(relays) => {
                if let Some(r) = relays.get(&(from, to)) {
                    r.cut();
                }
            }
            Links::Etcd(relays, _) => relays.cut(from, to),
        }
    }

    /// Every link open, every node running and resumed, and every node
    /// removed from the configuration added back (one not added back now,
    /// for want of a leader, is tried again at the next healing).
    pub fn heal_all(&mut self) -> Result<()> {
        match &self.links {
            Links::PerLink(relays) => relays.values().for_each(Relay::heal),
            Links::Etcd(relays, _) => relays.heal(),
        }
        for id in 1..=self.nodes.len() as u64 {
            self.resume(id);
            self.restart(id)?;
        }
        for id in std::mem::take(&mut self.removed) {
            let node = &self.nodes[self.index(id)];
            let (peer, client) = (node.peer_addr.clone(), node.client_addr.clone());
            let added = self
                .admin(|c| c.add_member(id, &peer, &client, false))
                .is_some();
            if !added {
                tracing::warn!(id, "could not add the node back yet");
                self.removed.push(id);
            }
        }
        Ok(())
    }

    /// Asks the cluster's leader to remove raftkv node `id` from the
    /// configuration (its process keeps running); whether it did.
    pub fn remove_member(&mut self, id: u64) -> bool {
        let done = self.admin(|c| c.remove_member(id)).is_some();
        if done {
            self.removed.push(id);
        }
        done
    }

    /// A membership change through any node (a follower redirects to the
    /// leader), retried for a few seconds: `Some` once the leader applied
    /// it, `None` when it refused or could not be reached.
    fn admin(
        &self,
        change: impl FnOnce(&mut Client) -> Result<Outcome, ClientError>,
    ) -> Option<()> {
        let mut client = Client::new(self.endpoints());
        client.deadline = Duration::from_secs(5);
        client.request_timeout = Duration::from_secs(2);
        match change(&mut client) {
            Ok(Outcome::Value(_)) => Some(()),
            Ok(other) => {
                tracing::info!(?other, "membership change not made");
                None
            }
            Err(e) => {
                tracing::info!(error = %e, "membership change not made");
                None
            }
        }
    }

    /// Notes nodes that exited without the nemesis killing them; they are
    /// started again so the run goes on, and reported as crashes.
    pub fn reap(&mut self, at: Duration) -> Result<()> {
        for i in 0..self.nodes.len() {
            let exited = match self.nodes[i].child.as_mut() {
                Some(c) => c.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                let node = &mut self.nodes[i];
                node.child = None;
                node.unexpected_exits
                    .push(format!("at {:.1} s: {status}", at.as_secs_f64()));
                self.start_node(i)?;
            }
        }
        Ok(())
    }

    pub fn status(&self, id: u64) -> Option<Status> {
        let node = &self.nodes[self.index(id)];
        if node.child.is_none() || node.paused {
            return None;
        }
        match self.target {
            Target::Raftkv => status_of(&node.client_addr),
            Target::Etcd => etcd::status(&node.client_addr).map(|(leads, term)| Status {
                id,
                role: if leads { "leader" } else { "follower" }.to_string(),
                term,
            }),
        }
    }

    /// The node that says it leads in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        (1..=self.nodes.len() as u64)
            .filter_map(|id| self.status(id))
            .filter(|s| s.role == "leader")
            .max_by_key(|s| s.term)
            .map(|s| s.id)
    }

    /// Waits up to `limit` for a leader.
    pub fn wait_for_leader(&self, limit: Duration) -> Option<u64> {
        let start = Instant::now();
        loop {
            if let Some(l) = self.leader() {
                return Some(l);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops every node (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.resume(id);
            self.signal(id, "-TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for node in &mut self.nodes {
            if let Some(mut c) = node.child.take() {
                loop {
                    match c.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() > deadline => {
                            let _ = c.kill();
                            let _ = c.wait();
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut c) = node.child.take() {
                let _ = Command::new("kill")
                    .args(["-CONT", &c.id().to_string()])
                    .status();
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub fn status_of(addr: &str) -> Option<Status> {
    let mut conn = Conn::open_with(addr, Options::with_timeout(Duration::from_millis(300))).ok()?;
    let r = conn.request("GET", "/v1/status", &[], b"").ok()?;
    if r.status != 200 {
        return None;
    }
    serde_json::from_slice(&r.body).ok()
}

/// Lines of a node log that show a panic or an error: raftkv's `ERROR`
/// lines and Rust panics; etcd's (zap) `panic` and `fatal` levels and Go
/// panics (etcd logs network trouble during faults as warnings and errors
/// of its own peers, which are expected here).
pub fn log_alarms(log: &Path, target: Target) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    let alarm = |l: &str| match target {
        Target::Raftkv => l.contains("panicked at") || l.contains("ERROR"),
        Target::Etcd => {
            l.contains("\"level\":\"panic\"")
                || l.contains("\"level\":\"fatal\"")
                || l.starts_with("panic:")
                || l.starts_with("fatal error:")
        }
    };
    text.lines()
        .filter(|l| alarm(l))
        .map(|l| l.chars().take(300).collect())
        .collect()
}

/// The arguments of raftkv node `id`: it listens on its own peer address
/// and reaches every other node through the relay of that link.
fn raftkv_args(
    spec: &Spec,
    id: u64,
    peer_addr: &BTreeMap<u64, SocketAddr>,
    client_addr: &BTreeMap<u64, String>,
    relays: &BTreeMap<(u64, u64), Relay>,
    data: &Path,
) -> Vec<OsString> {
    let n = spec.nodes;
    let peers: Vec<String> = (1..=n)
        .map(|p| {
            let a = if p == id {
                peer_addr[&p]
            } else {
                relays[&(id, p)].addr
            };
            format!("{p}={a}")
        })
        .collect();
    let client_peers: Vec<String> = client_addr
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect();
    let mut args: Vec<OsString> = vec![
        "node".into(),
        "--id".into(),
        id.to_string().into(),
        "--peers".into(),
        peers.join(",").into(),
        "--client-addr".into(),
        client_addr[&id].clone().into(),
        "--client-peers".into(),
        client_peers.join(",").into(),
        "--data-dir".into(),
        data.into(),
        "--tick-ms".into(),
        spec.tick_ms.to_string().into(),
        "--compact-every".into(),
        spec.compact_every.to_string().into(),
        "--log".into(),
        "info".into(),
    ];
    if spec.trace {
        args.push("--trace".into());
        args.push(
            spec.dir
                .join("traces")
                .join(format!("node-{id}.ndjson"))
                .into(),
        );
    }
    if let Some(bug) = &spec.node_bug {
        args.push("--bug".into());
        args.push(bug.into());
    }
    args
}
