//! A node's trace never lags its WAL: every event describing state the WAL
//! makes durable (an append, a truncation, a term or vote, a commit index, a
//! snapshot or an install) is handed to the OS before the WAL write that
//! carries it, so a SIGKILL at any instant leaves a trace that explains
//! everything the restarted node recovers.
//!
//! The worst instant for that is right after a WAL write, before its
//! fdatasync: the WAL's fault hook stops every node there, reads the WAL
//! back as a restart would (from a copy of the data directory) and compares
//! it with the node's trace file as it is at that instant.
#![cfg(not(loom))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftkv::core::{Command, NodeId, Op};
use raftkv::node::server::{NodeConfig, Request};
use raftkv::node::Shared;
use raftkv::storage::{Faults, FileOp, Wal};
use tokio::sync::mpsc;

/// What the trace file says the node did, as far as the WAL can keep it.
#[derive(Debug, Default)]
struct Traced {
    /// The highest term any event's post state shows.
    term: u64,
    /// Every (term, vote) a post state shows, and every (term, candidate)
    /// of a `request_vote` received: SCHEMA lets a granted vote first show
    /// in the post of the `persist` that stores it (which follows the
    /// fdatasync); until then the `receive` that the vote answers explains
    /// it (the replay grants it there).
    votes: BTreeSet<(u64, u64)>,
    /// The highest commit index of a `commit` event or a post state (an
    /// `install` moves it without a `commit`).
    commit: u64,
    /// The highest snapshot index of a `snapshot` or `install` event.
    snapshot: u64,
    /// The log after the last snapshot the trace shows: index to term.
    log: BTreeMap<u64, u64>,
}

/// Reads the complete lines of node `id`'s trace file.
fn traced(path: &Path, id: NodeId) -> Traced {
    let text = std::fs::read(path).unwrap_or_default();
    let mut t = Traced::default();
    let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    for line in text[..complete].split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(line).expect("a JSON line");
        if v.get("node").and_then(|n| n.as_u64()) != Some(id) {
            continue;
        }
        if let Some(p) = v.get("post") {
            let term = p["term"].as_u64().unwrap_or(0);
            t.term = t.term.max(term);
            t.commit = t.commit.max(p["commit"].as_u64().unwrap_or(0));
            if let Some(vote) = p["vote"].as_u64() {
                t.votes.insert((term, vote));
            }
        }
        if v["type"] == "receive" && v["msg"]["rpc"] == "request_vote" {
            let m = &v["msg"];
            t.votes
                .insert((m["term"].as_u64().unwrap(), m["from"].as_u64().unwrap()));
        }
        let u = |k: &str| v[k].as_u64().unwrap_or(0);
        match v["type"].as_str().unwrap_or("") {
            "commit" => t.commit = t.commit.max(u("index")),
            "append" => {
                let first = u("index");
                for (k, e) in v["entries"]
                    .as_array()
                    .expect("full entries")
                    .iter()
                    .enumerate()
                {
                    t.log.insert(first + k as u64, e["term"].as_u64().unwrap());
                }
            }
            "truncate" => {
                t.log.split_off(&u("from"));
            }
            "snapshot" | "install" => {
                let i = u("index");
                t.snapshot = t.snapshot.max(i);
                t.log.insert(i, u("term"));
            }
            _ => {}
        }
    }
    t
}

/// What a node restarted from `data` now would recover, read from a copy
/// (the node holds the directory's lock).
fn recovered(data: &Path, scratch: &Path) -> raftkv::storage::Recovered {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    for f in std::fs::read_dir(data).unwrap() {
        let f = f.unwrap();
        let name = f.file_name();
        if name != "LOCK" && f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), scratch.join(name)).unwrap();
        }
    }
    Wal::open(scratch).expect("the WAL recovers").1
}

/// Everything the WAL recovers that the trace does not explain.
fn lags(rec: &raftkv::storage::Recovered, t: &Traced) -> Vec<String> {
    let mut out = Vec::new();
    let hs = rec.hard_state;
    if hs.commit > t.commit {
        out.push(format!(
            "WAL commit {} but the trace's last commit is {}",
            hs.commit, t.commit
        ));
    }
    if hs.term > t.term {
        out.push(format!(
            "WAL term {} but the trace reached term {}",
            hs.term, t.term
        ));
    }
    if let Some(v) = hs.vote {
        if !t.votes.contains(&(hs.term, v)) {
            out.push(format!(
                "WAL vote for {v} in term {} that the trace does not explain",
                hs.term
            ));
        }
    }
    if let Some(s) = rec.snapshot {
        if s.index > t.snapshot {
            out.push(format!(
                "WAL snapshot at {} but the trace's last is at {}",
                s.index, t.snapshot
            ));
        }
    }
    for e in &rec.entries {
        if e.index > t.snapshot && t.log.get(&e.index) != Some(&e.term) {
            out.push(format!(
                "WAL entry {} of term {} but the trace's log has {:?} there",
                e.index,
                e.term,
                t.log.get(&e.index)
            ));
            break;
        }
    }
    out
}

struct Checks {
    /// WAL writes checked.
    count: usize,
    lags: Vec<String>,
}

fn free_port() -> u16 {
    raftkv::transport::ports::listen_port().unwrap()
}

/// The config of node `id`, whose WAL checks its trace before each fdatasync.
fn config(
    dir: &Path,
    id: NodeId,
    peers: &BTreeMap<NodeId, std::net::SocketAddr>,
    checks: &Arc<Mutex<Checks>>,
) -> NodeConfig {
    let data = dir.join(format!("data-{id}"));
    let trace: PathBuf = dir.join(format!("trace-{id}.ndjson"));
    let scratch = dir.join(format!("scratch-{id}"));
    let checks = checks.clone();
    let (d, t) = (data.clone(), trace.clone());
    let faults = Faults::new(move |op, _| {
        if op == FileOp::Fdatasync {
            // The WAL write is in the OS, the fdatasync not done: a SIGKILL
            // now keeps both files as they are.
            let rec = recovered(&d, &scratch);
            let lag = lags(&rec, &traced(&t, id));
            let mut c = checks.lock().unwrap();
            c.count += 1;
            c.lags
                .extend(lag.into_iter().map(|l| format!("node {id}: {l}")));
        }
        None
    });
    NodeConfig {
        id,
        peers: peers.clone(),
        client_addr: "127.0.0.1:0".parse().unwrap(),
        client_peers: BTreeMap::new(),
        data_dir: data,
        trace: Some(trace),
        tick: Duration::from_millis(5),
        // Elections rare: the checks make every fdatasync slow.
        election_ticks: 40,
        heartbeat_ticks: 4,
        // Snapshots (and installs on a lagging follower) every few entries.
        compact_every: 16,
        pre_vote: true,
        check_quorum: true,
        lease_read: false,
        known_features: None,
        bugs: raftkv::bugs::Bugs::NONE,
        wal_faults: Some(faults),
        join: false,
        trace_nodes: None,
        trace_voters: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_wal_write_is_ahead_of_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<NodeId> = vec![1, 2, 3];
    let peers: BTreeMap<NodeId, std::net::SocketAddr> = ids
        .iter()
        .map(|&i| (i, format!("127.0.0.1:{}", free_port()).parse().unwrap()))
        .collect();
    let checks = Arc::new(Mutex::new(Checks {
        count: 0,
        lags: Vec::new(),
    }));
    let mut nodes = Vec::new();
    for &id in &ids {
        let (tx, rx) = mpsc::channel(1024);
        let shared = Shared::new();
        let cfg = config(dir.path(), id, &peers, &checks);
        let h = tokio::spawn(raftkv::node::run(cfg, rx, shared.clone()));
        nodes.push((tx, shared, h));
    }

    // Writes in concurrent batches to every node (only the leader takes
    // them), until enough are committed.
    let mut ok = 0;
    let mut req = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let mut tickets = Vec::new();
        for (tx, shared, _) in &nodes {
            for _ in 0..8 {
                req += 1;
                let ticket = shared.proposals.register().unwrap();
                let cmd = Command {
                    client: 1,
                    req,
                    op: Op::Write {
                        key: format!("k{}", req % 5),
                        value: req.to_string(),
                    },
                };
                tx.send(Request::Propose {
                    cmd,
                    id: ticket.id(),
                })
                .await
                .unwrap();
                tickets.push(ticket);
            }
        }
        for t in tickets {
            if let Ok(Ok(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), t).await {
                ok += 1;
            }
        }
        if ok >= 300 {
            break;
        }
        if ok == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for (_, shared, h) in nodes {
        shared.stop.stop();
        let r = tokio::time::timeout(Duration::from_secs(10), h)
            .await
            .expect("the node stops")
            .unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
    assert!(ok >= 300, "only {ok} writes committed");
    let c = checks.lock().unwrap();
    assert!(c.count >= 100, "only {} WAL writes checked", c.count);
    assert!(
        c.lags.is_empty(),
        "{} of {} WAL writes ahead of the trace, first: {:?}",
        c.lags.len(),
        c.count,
        &c.lags[..c.lags.len().min(5)]
    );
}
