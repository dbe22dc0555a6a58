//! etcd raft in the simulator: every run is valid by conformance's check, a
//! seed replays byte for byte, and planted harness bugs are caught.
//!
//! The tests build the Go driver (Debian's `go` and etcd raft source). Where
//! `go` is missing they are skipped with a note, unless
//! `RAFTCHECK_ETCD_RAFT_REQUIRED` is set (CI sets it after installing Go):
//! then a missing `go` fails them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use etcd_raft_adapter::{EtcdRaft, HarnessBugs};
use raft_sim::{Outcome, RunResult, SimConfig};

/// Seeds per test (`ETCD_RAFT_SEEDS` to run more).
fn seeds() -> u64 {
    std::env::var("ETCD_RAFT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn build(out: &Path) -> Option<PathBuf> {
    let go_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("go");
    let exe = out.join("etcdraftdriver");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg("etcdraftdriver")
        .current_dir(&go_dir)
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:/usr/share/gocode", go_dir.display()))
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", out.join("go-cache"))
        .status();
    match status {
        Ok(s) if s.success() => Some(exe),
        Ok(s) => panic!("building the etcd raft driver failed ({s})"),
        Err(e) if std::env::var_os("RAFTCHECK_ETCD_RAFT_REQUIRED").is_some() => {
            panic!("go is required (RAFTCHECK_ETCD_RAFT_REQUIRED): {e}")
        }
        Err(e) => {
            eprintln!("skipped: no go to build the etcd raft driver ({e})");
            None
        }
    }
}

/// The driver, built once per test binary.
fn driver() -> Option<PathBuf> {
    static DRIVER: OnceLock<Option<PathBuf>> = OnceLock::new();
    DRIVER
        .get_or_init(|| build(Path::new(env!("CARGO_TARGET_TMPDIR"))))
        .clone()
}

fn cfg() -> SimConfig {
    SimConfig {
        frontier_budget: etcd_raft_adapter::FRONTIER_BUDGET,
        ..SimConfig::default()
    }
}

#[test]
fn every_seed_is_valid_with_snapshots() {
    let Some(d) = driver() else { return };
    let imp = EtcdRaft::new(d);
    let (mut installs, mut events) = (0, 0);
    for seed in 1..=seeds() {
        let r = raft_sim::run(seed, &cfg(), &imp);
        installs += r.stats.installs;
        events += r.records.len();
        assert_eq!(r.outcome(), Outcome::Valid, "seed {seed}");
        assert!(r.stats.ops_ok > 50, "seed {seed}: {:?}", r.stats);
    }
    eprintln!(
        "{} seeds valid, {events} records, {installs} snapshot installs",
        seeds()
    );
    assert!(installs > 0, "no snapshot was installed");
}

#[test]
fn a_seed_replays_byte_for_byte() {
    let Some(d) = driver() else { return };
    let imp = EtcdRaft::new(d);
    let a = raft_sim::run(3, &cfg(), &imp);
    let b = raft_sim::run(3, &cfg(), &imp);
    let text = |r: &RunResult| serde_json::to_string(&r.records).expect("serializable");
    assert!(a.records.len() > 1000);
    assert_eq!(text(&a), text(&b));
}

/// Runs seeds 1 to 20 with a planted harness bug until one is rejected,
/// and checks the rule that rejected it.
fn caught_by(bugs: HarnessBugs, expected: &str) {
    let Some(d) = driver() else { return };
    let imp = EtcdRaft {
        bugs,
        ..EtcdRaft::new(d)
    };
    let caught = (1..=20).find_map(|seed| match raft_sim::run(seed, &cfg(), &imp).outcome() {
        Outcome::Invalid { rule, .. } => Some((seed, rule)),
        _ => None,
    });
    let (seed, rule) = caught.expect("the planted bug is caught within 20 seeds");
    assert_eq!(rule, expected, "seed {seed}");
}

#[test]
fn late_hard_state_is_caught_as_an_unpersisted_vote() {
    caught_by(
        HarnessBugs {
            late_hard_state: true,
            ..HarnessBugs::default()
        },
        "VotePersistedBeforeReply",
    );
}

#[test]
fn apply_before_commit_is_caught() {
    caught_by(
        HarnessBugs {
            apply_before_commit: true,
            ..HarnessBugs::default()
        },
        "ApplyOnlyCommitted",
    );
}
