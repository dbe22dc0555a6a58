//! The etcd target: etcd 3.4 members (Debian's `etcd-server`), their peer
//! links behind relays, and a client of etcd's v3 JSON gateway.
//!
//! etcd addresses its peers by the URLs in its membership, the same for
//! every member, so a relay cannot be per link as for raftkv: each member's
//! advertised peer URL is a relay in front of it, and the relay tells which
//! member dialled it by finding the process that owns the connecting socket
//! (`/proc/net/tcp` and `/proc/PID/fd`, no root needed). The direction a
//! connection carries follows from its first request: a `GET
//! /raft/stream/...` from A to B's relay is A's stream reader, on which B
//! sends its messages to A (B -> A); everything else (pipeline `POST`s of
//! A's messages, probes, snapshots) carries A -> B.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use raftkv::node::http_client::{Conn, HttpError, Options};

use super::workload::{KvOps, OpError};
use raftkv::node::client::Outcome;

/// The etcd binary, or why there is none.
pub fn binary() -> Result<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("etcd"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Ok(p),
        None => bail!(
            "--target etcd: no `etcd` on PATH; install etcd 3.4 (Debian: apt-get install etcd-server)"
        ),
    }
}

/// Which member owns each process id, for the relays.
pub type Owners = Arc<Mutex<BTreeMap<u32, u64>>>;

/// Message directions that are cut, and the connections carrying each.
#[derive(Default)]
struct CutState {
    cut: BTreeSet<(u64, u64)>,
    open: Vec<((u64, u64), TcpStream)>,
}

/// The relays in front of every member's peer port, and the cuts.
pub struct Relays {
    pub addrs: BTreeMap<u64, SocketAddr>,
    state: Arc<Mutex<CutState>>,
}

impl Relays {
    /// Starts one relay per member: `targets[id]` is member `id`'s peer
    /// port; `owners` maps its process ids to members as they (re)start.
    pub fn start(targets: &BTreeMap<u64, SocketAddr>, owners: Owners) -> io::Result<Relays> {
        let state: Arc<Mutex<CutState>> = Arc::default();
        let mut addrs = BTreeMap::new();
        for (&to, &target) in targets {
            let port = raftkv::transport::ports::listen_port()?;
            let listener = TcpListener::bind(("127.0.0.1", port))?;
            let addr = listener.local_addr()?;
            addrs.insert(to, addr);
            let (st, ow) = (state.clone(), owners.clone());
            std::thread::Builder::new()
                .name(format!("etcd-relay-{to}"))
                .spawn(move || accept_loop(listener, to, target, st, ow))?;
        }
        Ok(Relays { addrs, state })
    }

    /// Cuts the messages `from` sends to `to`.
    pub fn cut(&self, from: u64, to: u64) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.cut.insert((from, to));
        g.open.retain(|(dir, s)| {
            if *dir == (from, to) {
                let _ = s.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    pub fn heal(&self) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cut
            .clear();
    }
}

fn accept_loop(
    listener: TcpListener,
    to: u64,
    target: SocketAddr,
    state: Arc<Mutex<CutState>>,
    owners: Owners,
) {
    let relay_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    for incoming in listener.incoming() {
        let Ok(inbound) = incoming else { continue };
        let state = state.clone();
        let owners = owners.clone();
        let _ = std::thread::Builder::new()
            .name("etcd-relay-conn".into())
            .spawn(move || {
                let _ = serve(inbound, to, target, relay_port, &state, &owners);
            });
    }
}

fn serve(
    mut inbound: TcpStream,
    to: u64,
    target: SocketAddr,
    relay_port: u16,
    state: &Mutex<CutState>,
    owners: &Owners,
) -> io::Result<()> {
    let peer = inbound.peer_addr()?;
    let from = owner_of(peer.port(), relay_port, owners);
    // The first request line says which way the connection's messages go.
    inbound.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while first.len() < 512 && !first.ends_with(b"\r\n") {
        if inbound.read(&mut byte)? == 0 {
            return Ok(());
        }
        first.push(byte[0]);
    }
    inbound.set_read_timeout(None)?;
    let stream = first.starts_with(b"GET /raft/stream/");
    let dir = match from {
        Some(f) if stream => Some((to, f)),
        Some(f) => Some((f, to)),
        None => None,
    };
    let mut outbound = TcpStream::connect_timeout(&target, Duration::from_secs(1))?;
    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
    {
        let mut g = state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = dir {
            if g.cut.contains(&d) {
                let _ = inbound.shutdown(Shutdown::Both);
                return Ok(());
            }
            g.open.push((d, inbound.try_clone()?));
            g.open.push((d, outbound.try_clone()?));
        }
    }
    outbound.write_all(&first)?;
    let (mut a, mut b) = (inbound.try_clone()?, outbound.try_clone()?);
    std::thread::spawn(move || {
        let _ = io::copy(&mut a, &mut b);
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    });
    let _ = io::copy(&mut outbound, &mut inbound);
    let _ = outbound.shutdown(Shutdown::Both);
    let _ = inbound.shutdown(Shutdown::Both);
    Ok(())
}

/// The member whose process owns the socket `127.0.0.1:port` connected to
/// the relay on `relay_port`.
fn owner_of(port: u16, relay_port: u16, owners: &Owners) -> Option<u64> {
    for _ in 0..20 {
        if let Some(inode) = socket_inode(port, relay_port) {
            let owners = owners.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for (pid, member) in owners {
                let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                    continue;
                };
                for fd in fds.flatten() {
                    if let Ok(link) = std::fs::read_link(fd.path()) {
                        if link.to_string_lossy() == format!("socket:[{inode}]") {
                            return Some(member);
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // A member that is exiting (killed, or stopped at the end) has no
    // sockets left to find; the connection then goes through uncut.
    tracing::debug!(port, "cannot tell which member opened a peer connection");
    None
}

/// The inode of the TCP socket whose local port is `port` and remote port
/// `remote`, from `/proc/net/tcp`.
fn socket_inode(port: u16, remote: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!(":{port:04X}");
    let rem = format!(":{remote:04X}");
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.len() > 9 && cols[1].ends_with(&local) && cols[2].ends_with(&rem))
            .then(|| cols[9].parse().ok())
            .flatten()
    })
}

/// The arguments of member `id`.
pub fn member_args(
    id: u64,
    peer_listen: SocketAddr,
    client: &str,
    relays: &BTreeMap<u64, SocketAddr>,
    data: &std::path::Path,
) -> Vec<std::ffi::OsString> {
    let cluster: Vec<String> = relays
        .iter()
        .map(|(m, a)| format!("n{m}=http://{a}"))
        .collect();
    let args = [
        "--name".to_string(),
        format!("n{id}"),
        "--data-dir".into(),
        data.display().to_string(),
        "--listen-peer-urls".into(),
        format!("http://{peer_listen}"),
        "--initial-advertise-peer-urls".into(),
        format!("http://{}", relays[&id]),
        "--listen-client-urls".into(),
        format!("http://{client}"),
        "--advertise-client-urls".into(),
        format!("http://{client}"),
        "--initial-cluster".into(),
        cluster.join(","),
        "--initial-cluster-state".into(),
        "new".into(),
        "--initial-cluster-token".into(),
        "raftcheck-jepsen".into(),
        "--logger".into(),
        "zap".into(),
        "--log-outputs".into(),
        "stderr".into(),
    ];
    args.into_iter().map(Into::into).collect()
}

/// A member's role and term from `POST /v3/maintenance/status`.
pub fn status(addr: &str) -> Option<(bool, u64)> {
    let mut c = Conn::open_with(addr, Options::with_timeout(Duration::from_millis(500))).ok()?;
    let r = c
        .request(
            "POST",
            "/v3/maintenance/status",
            &[("Content-Type", "application/json".into())],
            b"{}",
        )
        .ok()?;
    if r.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    let me = v["header"]["member_id"].as_str()?;
    let leader = v["leader"].as_str().unwrap_or("0");
    let term = v["raftTerm"]
        .as_str()
        .or(v["raft_term"].as_str())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    Some((me == leader, term))
}

/// A client of etcd's JSON gateway. etcd has no client sessions, so a write
/// is never retried once sent: an error after sending is `info`.
pub struct EtcdClient {
    endpoints: Vec<String>,
    current: usize,
    timeout: Duration,
    conn: Option<Conn>,
}

impl EtcdClient {
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Self {
        EtcdClient {
            endpoints,
            current: 0,
            timeout,
            conn: None,
        }
    }

    /// One request; connection failures (nothing sent) move to the next
    /// member and try again, up to once per member.
    fn call(&mut self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, OpError> {
        let body = body.to_string();
        let mut last = String::new();
        for _ in 0..self.endpoints.len() {
            let addr = self.endpoints[self.current].clone();
            let conn = match self.conn.take() {
                Some(c) if c.addr() == addr => c,
                _ => match Conn::open_with(&addr, Options::with_timeout(self.timeout)) {
                    Ok(c) => c,
                    Err(e) => {
                        last = e.to_string();
                        self.current = (self.current + 1) % self.endpoints.len();
                        continue;
                    }
                },
            };
            let conn = self.conn.insert(conn);
            let r = conn.request(
                "POST",
                path,
                &[("Content-Type", "application/json".into())],
                body.as_bytes(),
            );
            return match r {
                Ok(r) if r.status == 200 => serde_json::from_slice(&r.body)
                    .map_err(|e| OpError::Unknown(format!("{addr}{path}: not JSON: {e}"))),
                Ok(r) => {
                    self.conn = None;
                    self.current = (self.current + 1) % self.endpoints.len();
                    Err(OpError::Unknown(format!(
                        "{addr}{path}: HTTP {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body).trim()
                    )))
                }
                Err(HttpError::Connect { .. }) => {
                    self.conn = None;
                    self.current = (self.current + 1) % self.endpoints.len();
                    continue;
                }
                Err(e) => {
                    self.conn = None;
                    self.current = (self.current + 1) % self.endpoints.len();
                    Err(OpError::Unknown(format!("{addr}{path}: {e}")))
                }
            };
        }
        Err(OpError::NotSent(format!("no member answered: {last}")))
    }
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

impl KvOps for EtcdClient {
    fn ready(&mut self) -> bool {
        if self.conn.as_ref().is_some_and(Conn::is_open) {
            return true;
        }
        for _ in 0..self.endpoints.len() {
            let addr = &self.endpoints[self.current];
            if let Ok(c) = Conn::open_with(addr, Options::with_timeout(self.timeout)) {
                self.conn = Some(c);
                return true;
            }
            self.current = (self.current + 1) % self.endpoints.len();
        }
        false
    }

    fn get(&mut self, key: &str) -> Result<Outcome, OpError> {
        let v = self.call("/v3/kv/range", serde_json::json!({ "key": b64(key) }))?;
        match v["kvs"].get(0) {
            None => Ok(Outcome::NotFound),
            Some(kv) => {
                let raw = kv["value"].as_str().unwrap_or("");
                let bytes = B64
                    .decode(raw)
                    .map_err(|e| OpError::Unknown(format!("range: bad base64 value: {e}")))?;
                Ok(Outcome::Value(String::from_utf8_lossy(&bytes).into_owned()))
            }
        }
    }

    fn put(&mut self, key: &str, value: &str) -> Result<Outcome, OpError> {
        self.call(
            "/v3/kv/put",
            serde_json::json!({ "key": b64(key), "value": b64(value) }),
        )?;
        Ok(Outcome::Done)
    }

    fn cas(&mut self, key: &str, from: Option<&str>, to: &str) -> Result<Outcome, OpError> {
        let compare = match from {
            Some(f) => serde_json::json!({
                "key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(f)
            }),
            // Absent: the key has no version.
            None => serde_json::json!({
                "key": b64(key), "target": "VERSION", "result": "EQUAL", "version": "0"
            }),
        };
        let v = self.call(
            "/v3/kv/txn",
            serde_json::json!({
                "compare": [compare],
                "success": [{ "request_put": { "key": b64(key), "value": b64(to) } }],
                "failure": [{ "request_range": { "key": b64(key) } }],
            }),
        )?;
        if v["succeeded"].as_bool() == Some(true) {
            return Ok(Outcome::Done);
        }
        // The failure branch read the current value.
        let current = v["responses"][0]["response_range"]["kvs"][0]["value"]
            .as_str()
            .and_then(|raw| B64.decode(raw).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Ok(Outcome::CasFailed(current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_table_names_a_live_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay_port = l.local_addr().unwrap().port();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer.port(), c.local_addr().unwrap().port());
        let inode = socket_inode(peer.port(), relay_port).expect("in /proc/net/tcp");
        // This process owns it.
        let owners: Owners = Arc::new(Mutex::new(BTreeMap::from([(std::process::id(), 7)])));
        assert!(inode > 0);
        assert_eq!(owner_of(peer.port(), relay_port, &owners), Some(7));
        let strangers: Owners = Arc::new(Mutex::new(BTreeMap::from([(1, 1)])));
        assert_eq!(owner_of(peer.port(), relay_port, &strangers), None);
    }
}
