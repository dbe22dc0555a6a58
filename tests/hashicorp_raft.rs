//! hashicorp/raft (1.1, Go) driven by `adapters/hashicorp-raft`: a run
//! without faults validates (trace and client history), and the planted
//! harness bugs are rejected with their rule.
//!
//! The tests build the Go driver (Debian's `go` and hashicorp/raft source).
//! Where `go` is missing they are skipped with a note, unless
//! `RAFTCHECK_ETCD_RAFT_REQUIRED` is set (CI sets it after installing Go):
//! then a missing `go` fails them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn build(out: &Path) -> Option<PathBuf> {
    let go_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/hashicorp-raft/go");
    let exe = out.join("hashicorpraftdriver");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg("hashicorpraftdriver")
        .current_dir(&go_dir)
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", go_dir.display()))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", out.join("go-cache"))
        .status();
    match status {
        Ok(s) if s.success() => Some(exe),
        Ok(s) => panic!("building the hashicorp/raft driver failed ({s})"),
        Err(e) if std::env::var_os("RAFTCHECK_ETCD_RAFT_REQUIRED").is_some() => {
            panic!("go is required (RAFTCHECK_ETCD_RAFT_REQUIRED): {e}")
        }
        Err(e) => {
            eprintln!("skipped: no go to build the hashicorp/raft driver ({e})");
            None
        }
    }
}

fn driver() -> Option<PathBuf> {
    static DRIVER: OnceLock<Option<PathBuf>> = OnceLock::new();
    DRIVER
        .get_or_init(|| build(Path::new(env!("CARGO_TARGET_TMPDIR"))))
        .clone()
}

/// Runs the driver with `args` into a fresh trace file and validates it.
fn run_and_validate(name: &str, args: &[&str]) -> Option<Output> {
    let exe = driver()?;
    let trace = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hashicorp-{name}.ndjson"));
    let status = Command::new(exe)
        .arg("-out")
        .arg(&trace)
        .args(args)
        .status()
        .expect("runs the driver");
    assert!(status.success(), "the driver failed: {status}");
    Some(
        Command::new(env!("CARGO_BIN_EXE_raftcheck"))
            .arg("validate")
            .arg(&trace)
            .output()
            .expect("runs raftcheck"),
    )
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn a_run_without_faults_is_valid_and_linearizable() {
    // Long timeouts: a loaded test machine must not cause elections.
    let Some(out) = run_and_validate(
        "valid",
        &[
            "-faults",
            "none",
            "-duration",
            "3s",
            "-heartbeat-timeout",
            "500ms",
        ],
    ) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("client operations linearizable"), "{t}");
}

/// A run of 1 s without faults with harness bug `bug` planted is rejected
/// by `rule`.
fn planted(bug: &str, rule: &str) {
    let Some(out) = run_and_validate(
        bug,
        &["-faults", "none", "-duration", "1s", "-harness-bug", bug],
    ) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains(&format!("{rule} violated")), "{t}");
}

#[test]
fn a_vote_sent_before_it_is_persisted_is_rejected() {
    planted("vote-before-persist", "VotePersistedBeforeReply");
}

#[test]
fn a_follower_that_acknowledges_entries_it_dropped_is_rejected() {
    planted("ack-dropped-entries", "EntriesPersistedBeforeAck");
}

#[test]
fn bad_driver_flags_exit_2() {
    let Some(exe) = driver() else {
        return;
    };
    let out = Command::new(exe)
        .args(["-out", "/dev/null", "-faults", "meteor"])
        .output()
        .expect("runs the driver");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("unknown fault \"meteor\""),
        "{}",
        text(&out)
    );
}
