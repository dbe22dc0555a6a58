//! Membership changes on real `raftcheck node` processes: a 3-node cluster
//! grows to 5 under continuous writes (node 4 added as a learner, then
//! promoted; node 5 added as a voter, started knowing only itself and the
//! leader, so it must learn the other members' addresses from the log),
//! then the leader removes itself and the rest elect a new leader; every
//! acknowledged write is then read back (linearizable reads) from the
//! remaining members, the removed node stays harmless, node 5 restarts
//! without `--join` and rejoins from its stored state, and the five traces
//! validate. And the admin API's errors, on a one-node cluster.

mod common;
use common::{assert_traces_valid, free_port, poll, print_tails, stop_gracefully};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raftkv::node::client::{Client, Outcome};
use raftkv::node::http_client::request;

/// Node processes on loopback; node i's addresses are picked up front for
/// every id the run may have.
struct Nodes {
    dir: PathBuf,
    /// id -> (peer address, client address).
    addrs: BTreeMap<u64, (String, String)>,
    children: BTreeMap<u64, Child>,
}

impl Nodes {
    fn new(dir: &Path, ids: u64) -> Nodes {
        std::fs::create_dir_all(dir.join("traces")).unwrap();
        let addrs = (1..=ids)
            .map(|id| {
                let a = (
                    format!("127.0.0.1:{}", free_port()),
                    format!("127.0.0.1:{}", free_port()),
                );
                (id, a)
            })
            .collect();
        Nodes {
            dir: dir.to_path_buf(),
            addrs,
            children: BTreeMap::new(),
        }
    }

    fn peer(&self, id: u64) -> &str {
        &self.addrs[&id].0
    }

    fn client_addr(&self, id: u64) -> &str {
        &self.addrs[&id].1
    }

    /// `1=addr,...` of `ids`, peer or client addresses.
    fn map(&self, ids: &[u64], client: bool) -> String {
        ids.iter()
            .map(|id| {
                let a = if client {
                    self.client_addr(*id)
                } else {
                    self.peer(*id)
                };
                format!("{id}={a}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts node `id` knowing the nodes `known` (itself included), as a
    /// bootstrap voter or joining (`join`). Traces name nodes 1..=5 with
    /// bootstrap voters 1,2,3.
    fn start(&mut self, id: u64, known: &[u64], join: bool, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{id}.log")))
            .unwrap();
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("raftcheck"));
        c.arg("node")
            .args(["--id", &id.to_string()])
            .args(["--peers", &self.map(known, false)])
            .args(["--client-addr", self.client_addr(id)])
            .args(["--client-peers", &self.map(known, true)])
            .arg("--data-dir")
            .arg(self.dir.join(format!("node-{id}")))
            .args(["--tick-ms", "20", "--compact-every", "64"])
            .arg("--trace")
            .arg(self.dir.join("traces").join(format!("node-{id}.ndjson")))
            .args(["--trace-nodes", "5", "--trace-voters", "1,2,3"])
            .args(extra)
            .env("RAFTCHECK_LOG", "info");
        if join {
            c.arg("--join");
        }
        let child = c.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.children.insert(id, child);
    }

    /// A clean stop (SIGTERM): the node flushes its trace.
    fn stop(&mut self, id: u64) {
        stop_gracefully(self.children.remove(&id).unwrap(), id);
    }

    fn running(&mut self, id: u64) -> bool {
        self.children
            .get_mut(&id)
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    fn status(&self, id: u64) -> Option<serde_json::Value> {
        let r = request(
            self.client_addr(id),
            "GET",
            "/v1/status",
            &[],
            b"",
            Duration::from_secs(2),
        )
        .ok()?;
        (r.status == 200).then(|| serde_json::from_slice(&r.body).ok())?
    }

    fn metric(&self, id: u64, name: &str) -> u64 {
        let (code, text) = self.raw(id, "GET", "/metrics", "");
        assert_eq!(code, 200);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no metric {name} in {text}"))
            .parse()
            .unwrap()
    }

    /// Waits until one of `ids` leads; returns its id and term.
    fn leader(&self, ids: &[u64]) -> (u64, u64) {
        poll(Duration::from_secs(20), "a leader", || {
            ids.iter().find_map(|&id| {
                let s = self.status(id)?;
                (s["role"] == "leader").then(|| (id, s["term"].as_u64().unwrap()))
            })
        })
    }

    fn client(&self, ids: &[u64]) -> Client {
        Client::new(
            ids.iter()
                .map(|id| self.client_addr(*id).to_string())
                .collect(),
        )
    }

    /// A raw request to node `id`'s client API: the status and the body
    /// (of a JSON error: its `error` and `code`).
    fn raw(&self, id: u64, method: &str, path: &str, body: &str) -> (u16, String) {
        let r = request(
            self.client_addr(id),
            method,
            path,
            &[],
            body.as_bytes(),
            Duration::from_secs(10),
        )
        .unwrap();
        let text = String::from_utf8_lossy(&r.body).into_owned();
        let error = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| Some(format!("{} ({})", v["error"].as_str()?, v["code"])));
        (r.status, error.unwrap_or(text))
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in self.children.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            print_tails(
                self.addrs
                    .keys()
                    .map(|id| self.dir.join(format!("node-{id}.log"))),
                30,
            );
        }
    }
}

/// The configuration a membership call answered.
fn config(r: Outcome) -> serde_json::Value {
    match r {
        Outcome::Value(body) => serde_json::from_str(&body).unwrap(),
        other => panic!("expected a configuration, got {other:?}"),
    }
}

fn ids(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// Writes distinct keys one after another until `stop`, recording those
/// acknowledged; returns how many were not, and the longest write.
fn writer(
    mut c: Client,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String)>>>,
) -> std::thread::JoinHandle<(u64, Duration)> {
    std::thread::spawn(move || {
        let mut failed = 0;
        let mut longest = Duration::ZERO;
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let (k, v) = (format!("k{i:06}"), format!("v{i}"));
            let start = Instant::now();
            match c.put(&k, &v) {
                Ok(Outcome::Done) => acked.lock().unwrap().push((k, v)),
                _ => failed += 1,
            }
            longest = longest.max(start.elapsed());
        }
        (failed, longest)
    })
}

#[test]
fn a_cluster_grows_to_five_loses_its_leader_by_removal_and_keeps_every_write() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let mut n = Nodes::new(tmp.path(), 5);
    for id in 1..=3 {
        n.start(id, &[1, 2, 3], false, &[]);
    }
    let (first, _) = n.leader(&[1, 2, 3]);
    eprintln!("leader {first} after {:?}", t0.elapsed());

    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let w = writer(n.client(&[1, 2, 3, 4, 5]), stop.clone(), acked.clone());
    let acked_now = || acked.lock().unwrap().len();
    poll(Duration::from_secs(10), "writes", || {
        (acked_now() >= 100).then_some(())
    });

    // Node 4 joins as a learner (it knows every member).
    n.start(4, &[1, 2, 3, 4], true, &[]);
    let mut admin = n.client(&[1, 2, 3]);
    let c = config(
        admin
            .add_member(4, n.peer(4), n.client_addr(4), true)
            .unwrap(),
    );
    assert_eq!(
        (ids(&c["voters"]), ids(&c["learners"])),
        (vec![1, 2, 3], vec![4])
    );
    assert_eq!(c["committed"], true);
    let m4 = c["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == 4);
    assert_eq!(m4.unwrap()["peer_addr"], n.peer(4));
    assert_eq!(m4.unwrap()["client_addr"], n.client_addr(4));
    // It catches up (by snapshot: the leader has compacted past 64
    // entries) before it is promoted.
    let target = n.status(first).unwrap()["commit"].as_u64().unwrap();
    poll(Duration::from_secs(20), "node 4 to catch up", || {
        n.status(4)
            .filter(|s| s["applied"].as_u64().unwrap() >= target)
    });
    assert!(n.metric(4, "raftkv_snapshots_installed_total") >= 1);
    let s4 = n.status(4).unwrap();
    assert_eq!(s4["role"], "follower", "a learner never campaigns");
    let c = config(admin.promote_member(4).unwrap());
    assert_eq!(ids(&c["voters"]), vec![1, 2, 3, 4]);
    assert!(ids(&c["learners"]).is_empty());
    eprintln!("node 4 a voter after {:?}", t0.elapsed());

    // Node 5 joins as a voter knowing only itself and the leader: every
    // other member's address comes from the log (the configuration
    // entries' context) or the snapshot's address book.
    n.start(5, &[first, 5], true, &[]);
    let c = config(
        admin
            .add_member(5, n.peer(5), n.client_addr(5), false)
            .unwrap(),
    );
    assert_eq!(ids(&c["voters"]), vec![1, 2, 3, 4, 5]);
    let listed = config(n.client(&[5]).members().unwrap());
    assert_eq!(ids(&listed["voters"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(listed["node"], first, "a follower redirects to the leader");
    eprintln!(
        "five voters after {:?}, {} writes acknowledged",
        t0.elapsed(),
        acked_now()
    );

    // Refusals while the cluster runs: an existing member, a non-member.
    match admin.add_member(4, n.peer(4), n.client_addr(4), false) {
        Ok(Outcome::Refused(e)) => assert!(e.contains("node 4 is already a voter"), "{e}"),
        other => panic!("adding a voter again: {other:?}"),
    }
    match admin.remove_member(9) {
        Ok(Outcome::Refused(e)) => assert!(e.contains("node 9 is not a member"), "{e}"),
        other => panic!("removing a non-member: {other:?}"),
    }

    // The leader removes itself: it leads until its removal is committed,
    // then steps down, and the four others elect a new leader.
    let (leader, _) = n.leader(&[1, 2, 3, 4, 5]);
    let before = acked_now();
    let c = config(admin.remove_member(leader).unwrap());
    assert!(!ids(&c["voters"]).contains(&leader));
    assert_eq!(ids(&c["voters"]).len(), 4);
    let rest: Vec<u64> = (1..=5).filter(|&i| i != leader).collect();
    let (new_leader, term) = n.leader(&rest);
    eprintln!(
        "node {leader} removed; node {new_leader} leads term {term} after {:?}",
        t0.elapsed()
    );
    let s = n.status(new_leader).unwrap();
    assert_eq!(ids(&s["config"]["voters"]), rest);
    poll(Duration::from_secs(20), "writes after the removal", || {
        (acked_now() >= before + 100).then_some(())
    });
    // The removed node keeps running and takes no part: it does not lead,
    // and it does not disturb the new leader's term.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(n.running(leader), "the removed node keeps running");
    let removed = n.status(leader).unwrap();
    assert_ne!(removed["role"], "leader");
    assert!(!ids(&removed["config"]["voters"]).contains(&leader));
    assert_eq!(n.leader(&rest), (new_leader, term));

    stop.store(true, Ordering::Relaxed);
    let (failed, longest) = w.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{} writes acknowledged, {failed} not, the longest in {longest:?}, after {:?}",
        acked.len(),
        t0.elapsed()
    );
    // A write the removed leader took as it stepped down is told to retry
    // elsewhere at once, instead of waiting out the node's 5 s timeout.
    assert!(
        longest < Duration::from_millis(4500),
        "a write took {longest:?}"
    );

    // Every acknowledged write is read back from the remaining members
    // (ReadIndex reads at the leader), and every remaining member applies
    // the same log.
    let mut r = n.client(&rest);
    for (k, v) in &acked {
        assert_eq!(r.get(k).unwrap(), Outcome::Value(v.clone()), "key {k}");
    }
    let commit = n.status(new_leader).unwrap()["commit"].as_u64().unwrap();
    for &id in &rest {
        poll(Duration::from_secs(10), "every member to apply", || {
            n.status(id)
                .filter(|s| s["applied"].as_u64().unwrap() >= commit)
        });
        // Each answers its own view of the members with every address.
        let (code, body) = n.raw(id, "GET", "/v1/admin/members?local", "");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(ids(&v["voters"]), rest);
        for m in v["members"].as_array().unwrap() {
            let id = m["id"].as_u64().unwrap();
            assert_eq!(m["peer_addr"], n.peer(id), "{body}");
            assert_eq!(m["client_addr"], n.client_addr(id), "{body}");
        }
    }
    eprintln!("final reads done after {:?}", t0.elapsed());

    // Node 5 restarts with its first command line but without --join: its
    // data directory keeps its (empty) bootstrap configuration, its log and
    // snapshot the configuration and the other members' addresses.
    n.stop(5);
    eprintln!("node 5 stopped after {:?}", t0.elapsed());
    n.start(5, &[first, 5], false, &[]);
    let mut c = n.client(&rest);
    for i in 0..20 {
        assert_eq!(c.put(&format!("after-{i}"), "x").unwrap(), Outcome::Done);
    }
    let commit = n.status(new_leader).unwrap()["commit"].as_u64().unwrap();
    let s5 = poll(Duration::from_secs(10), "node 5 to catch up again", || {
        n.status(5)
            .filter(|s| s["applied"].as_u64().unwrap() >= commit)
    });
    assert_eq!(ids(&s5["config"]["voters"]), rest);
    eprintln!("node 5 restarted and caught up after {:?}", t0.elapsed());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("node-5").join("bootstrap-voters")).unwrap(),
        "\n"
    );

    for id in 1..=5 {
        n.stop(id);
    }
    assert_traces_valid(&tmp.path().join("traces"));
    eprintln!("traces valid; total {:?}", t0.elapsed());
}

#[test]
fn the_admin_api_refuses_bad_changes_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut n = Nodes::new(tmp.path(), 3);
    // Without check-quorum, so that the leader keeps leading while a
    // change it cannot commit is pending (below).
    n.start(1, &[1], false, &["--no-check-quorum"]);
    n.leader(&[1]);
    let add = |id: u64, learner: bool| {
        format!(
            r#"{{"id":{id},"peer_addr":"127.0.0.1:1","client_addr":"127.0.0.1:2","learner":{learner}}}"#
        )
    };
    let members = "/v1/admin/members";
    let expect = |(code, body): (u16, String), want: u16, has: &[&str]| {
        assert_eq!(code, want, "{body}");
        for h in has {
            assert!(body.contains(h), "{h:?} not in {body}");
        }
    };
    // Malformed bodies: 400 naming the field.
    expect(n.raw(1, "POST", members, "{"), 400, &["invalid body"]);
    let cases = [
        (
            r#"{"id":"x","peer_addr":"127.0.0.1:1","client_addr":"h:2"}"#,
            "\"id\"",
        ),
        (r#"{"id":4,"client_addr":"h:2"}"#, "peer_addr"),
        (
            r#"{"id":4,"peer_addr":"nowhere","client_addr":"h:2"}"#,
            "\"peer_addr\"",
        ),
        (
            r#"{"id":4,"peer_addr":"127.0.0.1:1","client_addr":"h"}"#,
            "\"client_addr\"",
        ),
        (
            r#"{"id":0,"peer_addr":"127.0.0.1:1","client_addr":"h:2"}"#,
            "\"id\"",
        ),
        (
            r#"{"id":4,"peer_addr":"127.0.0.1:1","client_addr":"h:2","learner":1}"#,
            "\"learner\"",
        ),
        (
            r#"{"id":4,"peer_addr":"127.0.0.1:1","client_addr":"h:2","voter":true}"#,
            "voter",
        ),
    ];
    for (body, field) in cases {
        let (code, text) = n.raw(1, "POST", members, body);
        assert_eq!(code, 400, "{body}: {text}");
        assert!(text.contains(field), "{body}: {field} not in {text}");
    }
    expect(
        n.raw(1, "DELETE", "/v1/admin/members/abc", ""),
        400,
        &["abc"],
    );
    // Refusals: 409 (or 404 for a non-member) with the reason and a code.
    expect(
        n.raw(1, "POST", members, &add(1, false)),
        409,
        &["node 1 is already a voter", "already_voter"],
    );
    expect(
        n.raw(1, "DELETE", "/v1/admin/members/7", ""),
        404,
        &["node 7 is not a member", "not_member"],
    );
    expect(
        n.raw(1, "POST", "/v1/admin/members/7/promote", ""),
        404,
        &["not_member"],
    );
    expect(
        n.raw(1, "DELETE", "/v1/admin/members/1", ""),
        409,
        &["only voter", "last_voter"],
    );
    // A learner commits at once (it does not count); adding it again is
    // refused.
    let (code, body) = n.raw(1, "POST", members, &add(2, true));
    assert_eq!(code, 200, "{body}");
    expect(
        n.raw(1, "POST", members, &add(2, true)),
        409,
        &["already_member"],
    );
    // Promoting learner 2, which never runs, makes a configuration whose
    // majority (both voters) cannot be reached: the request times out
    // (503) and the next change is refused while it is pending.
    let addr = n.client_addr(1).to_string();
    let promote = std::thread::spawn(move || {
        request(
            &addr,
            "POST",
            "/v1/admin/members/2/promote",
            &[],
            b"",
            Duration::from_secs(10),
        )
        .unwrap()
        .status
    });
    poll(Duration::from_secs(4), "the promotion in the log", || {
        let s = n.status(1)?;
        (ids(&s["config"]["voters"]) == [1, 2]).then_some(())
    });
    expect(
        n.raw(1, "POST", members, &add(3, true)),
        409,
        &["a membership change is in progress", "pending"],
    );
    assert_eq!(promote.join().unwrap(), 503);
    let s = n.status(1).unwrap();
    assert_eq!(ids(&s["config"]["voters"]), vec![1, 2]);
    assert_eq!(s["config"]["committed"], false);
    assert_eq!(s["role"], "leader");
}
