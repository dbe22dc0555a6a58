//! `raftcheck cluster` as a supervisor: a data directory in use is refused
//! before anything starts, every node that exits is reported on stderr (its
//! status or signal, the end of its log) and reaped, and the cluster exits 4
//! (unavailable) once no node is left; `cluster add` and `cluster remove`
//! change its members.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("raftcheck")
}

/// The cluster's stderr, line by line, read on a thread.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads stderr lines into `seen` until one contains `what`.
fn wait_for(rx: &Receiver<String>, seen: &mut Vec<String>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l| l.contains(what)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {what:?} on stderr; got:\n{}", seen.join("\n")),
        }
    }
}

fn poll(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill9(pid: u64) {
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
}

/// A zombie shows as state `Z` in /proc; a reaped process is gone.
fn zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The cluster process, stopped (with its nodes) if a test fails half-way.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }
}

fn held(dir: &Path, id: u64) -> bool {
    dir.join(format!("node-{id}")).join("LOCK").exists()
}

#[test]
fn a_cluster_reports_its_nodes_exits_and_stops_when_none_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Node 2 cannot start: its data directory is a file.
    std::fs::write(dir.join("node-2"), "not a directory").unwrap();
    let mut cluster = Running(
        Command::new(bin())
            .args(["cluster", "--nodes", "3", "--json", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(cluster.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    let pids: Vec<u64> = v["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    let endpoints: Vec<String> = v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        v["logs"][1].as_str().unwrap(),
        dir.join("node-2.log").display().to_string()
    );
    let rx = lines_of(&mut cluster.0);
    let mut seen = vec![];

    // The node that failed by itself: its status and the end of its log.
    wait_for(
        &rx,
        &mut seen,
        "node 2 exited with status 2; 2 of 3 nodes left",
    );
    wait_for(&rx, &mut seen, "last lines of");
    wait_for(&rx, &mut seen, "raftcheck: node 2: ");
    poll("node 2 to be reaped", || !zombie(pids[1]));

    // Nodes 1 and 3 run and hold their directories: a second cluster on
    // the same --data-dir is refused before it starts anything.
    for ep in [&endpoints[0], &endpoints[2]] {
        poll("the nodes to listen", || TcpStream::connect(ep).is_ok());
    }
    poll("the locks", || held(dir, 1) && held(dir, 3));
    std::thread::sleep(Duration::from_millis(300));
    let second = Command::new(bin())
        .args(["cluster", "--nodes", "3", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("is in use"), "{err}");
    assert!(err.contains("node-1") && err.contains("node-3"), "{err}");
    assert!(
        second.stdout.is_empty(),
        "no endpoints for a cluster that did not start"
    );

    // A node killed with SIGKILL is reported and reaped, not left a zombie.
    kill9(pids[0]);
    wait_for(
        &rx,
        &mut seen,
        "node 1 was killed by signal 9 (SIGKILL); 1 of 3 nodes left",
    );
    poll("node 1 to be reaped", || !zombie(pids[0]));

    // The last one: nothing is left, so the cluster stops, unavailable.
    kill9(pids[2]);
    wait_for(&rx, &mut seen, "node 3 was killed by signal 9");
    wait_for(&rx, &mut seen, "no node is left");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = cluster.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the cluster keeps running with no node"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(4), "{seen:?}");
}

/// A base port whose range (`N..N+3` and `N+100..N+103`) is free now.
fn free_base_port() -> u16 {
    let start = 20_000 + (std::process::id() % 2_000) as u16 * 10;
    (start..60_000)
        .step_by(7)
        .find(|&b| {
            (0..3)
                .flat_map(|i| [b + i, b + 100 + i])
                .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        })
        .expect("a free port range")
}

/// Starts `cluster --base-port` and returns it with the endpoints it printed.
fn start_on(dir: &Path, base: u16) -> (Running, String) {
    start(&["--nodes", "3", "--base-port", &base.to_string()], dir)
}

/// Starts `cluster ARGS --data-dir DIR` and returns it with the endpoints it
/// printed.
fn start(args: &[&str], dir: &Path) -> (Running, String) {
    let mut cluster = Running(
        Command::new(bin())
            .arg("cluster")
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Read on a thread to the end: a cluster whose stdout closes stops.
    let out = BufReader::new(cluster.0.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Some(e) = line.strip_prefix("endpoints: ") {
                let _ = tx.send(e.to_string());
            }
        }
    });
    let endpoints = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("an endpoints line");
    (cluster, endpoints)
}

fn client(endpoints: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["client", "--endpoints", endpoints])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn base_port_keeps_the_endpoints_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let expected: Vec<String> = (0..3).map(|i| format!("127.0.0.1:{}", base + i)).collect();
    let (mut cluster, endpoints) = start_on(tmp.path(), base);
    assert_eq!(endpoints, expected.join(","));
    let put = client(&endpoints, &["put", "hello", "world"]);
    assert_eq!(put.status.code(), Some(0), "{put:?}");
    // Stopped (SIGTERM) and started again: the same endpoints, the same data.
    Command::new("kill")
        .arg(cluster.0.id().to_string())
        .status()
        .unwrap();
    cluster.0.wait().unwrap();
    let (_cluster, again) = start_on(tmp.path(), base);
    assert_eq!(again, endpoints);
    let get = client(&again, &["get", "hello"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "world\n", "{get:?}");
}

#[test]
fn base_port_with_a_port_taken_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", base + 1)).unwrap();
    let out = Command::new(bin())
        .args(["cluster", "--nodes", "3", "--base-port"])
        .arg(base.to_string())
        .arg("--data-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "port {} (node 2's client API) is not free",
            base + 1
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

fn run(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The voters and learners `client members list --json` shows.
fn members(endpoints: &str) -> (Vec<u64>, Vec<u64>) {
    let out = client(endpoints, &["members", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = |x: &serde_json::Value| -> Vec<u64> {
        x.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    (ids(&v["voters"]), ids(&v["learners"]))
}

/// The README's membership quick start: `cluster add` (a learner, then
/// promoted with `client members promote`), `cluster remove` of a bootstrap
/// node, a growth past `--max-nodes` refused while tracing, a restart that
/// starts the recorded members, and the traces valid.
#[test]
fn cluster_add_and_remove_change_the_members() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut cluster, endpoints) = start(&["--nodes", "3", "--trace", "--max-nodes", "4"], dir);
    assert_eq!(
        client(&endpoints, &["put", "a", "1"]).status.code(),
        Some(0)
    );

    let (code, out, err) = run(&["cluster", "add", "--learner"], dir);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("added node 4 as a learner: http://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("\n4    learner  127.0.0.1:"), "{out}");
    let endpoints: String = out
        .lines()
        .find_map(|l| l.strip_prefix("endpoints: "))
        .unwrap()
        .to_string();
    assert_eq!(endpoints.split(',').count(), 4);
    assert_eq!(members(&endpoints), (vec![1, 2, 3], vec![4]));
    let promote = client(&endpoints, &["members", "promote", "4"]);
    assert_eq!(promote.status.code(), Some(0), "{promote:?}");
    assert!(String::from_utf8_lossy(&promote.stdout).starts_with("promoted node 4 to voter\n"));
    assert_eq!(members(&endpoints), (vec![1, 2, 3, 4], vec![]));
    // Again: refused, exit 1, the reason on stderr.
    let again = client(&endpoints, &["members", "promote", "4"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "refused: node 4 is already a voter\n"
    );
    // Node 5 would be outside the traced run (--max-nodes 4).
    let (code, _, err) = run(&["cluster", "add"], dir);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--max-nodes"), "{err}");

    let (code, out, err) = run(&["cluster", "remove", "1"], dir);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("removed node 1; its process stopped\n"),
        "{out}"
    );
    let endpoints: String = out
        .lines()
        .find_map(|l| l.strip_prefix("endpoints: "))
        .unwrap()
        .to_string();
    assert_eq!(members(&endpoints), (vec![2, 3, 4], vec![]));
    let get = client(&endpoints, &["get", "a"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "1\n", "{get:?}");

    // A restart on the directory starts the members it records.
    Command::new("kill")
        .arg(cluster.0.id().to_string())
        .status()
        .unwrap();
    cluster.0.wait().unwrap();
    let (code, _, err) = run(&["cluster", "add"], dir);
    assert_eq!(code, Some(4), "no cluster runs: {err}");
    assert!(err.contains("no cluster is running"), "{err}");
    let (mut again, endpoints) = start(&["--nodes", "3", "--trace", "--max-nodes", "4"], dir);
    assert_eq!(endpoints.split(',').count(), 3);
    assert_eq!(members(&endpoints), (vec![2, 3, 4], vec![]));
    let get = client(&endpoints, &["get", "a"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "1\n", "{get:?}");
    Command::new("kill")
        .arg(again.0.id().to_string())
        .status()
        .unwrap();
    again.0.wait().unwrap();
    let v = Command::new(bin())
        .arg("validate")
        .arg(dir.join("traces"))
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{v:?}");
}
