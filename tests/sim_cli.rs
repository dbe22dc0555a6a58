//! `raftcheck sim` end to end: exit codes, failure reports with a
//! reproduction command, and traces that pass `raftcheck validate`.

use assert_cmd::Command;
use predicates::prelude::*;

fn raftcheck() -> Command {
    Command::cargo_bin("raftcheck").expect("binary")
}

#[test]
fn passing_seeds_exit_zero_and_traces_validate() {
    let dir = tempfile::tempdir().unwrap();
    raftcheck()
        .args(["sim", "--seeds", "3", "--steps", "600", "--trace-dir"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("all 3 seeds passed"));
    let mut files = Vec::new();
    for seed in 0..3 {
        for name in ["trace.ndjson", "history.ndjson"] {
            let f = dir.path().join(format!("seed-{seed}")).join(name);
            assert!(f.exists(), "{} missing", f.display());
            files.push(f);
        }
    }
    raftcheck()
        .args(["validate", "--format-only"])
        .args(&files)
        .assert()
        .code(0);
}

#[test]
fn a_planted_bug_exits_one_with_seed_invariant_and_reproduction() {
    let out = raftcheck()
        .args(["sim", "--seeds", "200", "--bug", "no-dedup"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("seed "))
        .stdout(predicate::str::contains(
            "AtMostOnce violated (conformance)",
        ))
        .stdout(predicate::str::contains(
            "reproduce: raftcheck sim --seeds 1 --start-seed",
        ))
        .get_output()
        .stdout
        .clone();
    // The reproduction command reproduces the failure.
    let text = String::from_utf8(out).unwrap();
    let line = text.lines().find(|l| l.starts_with("reproduce: ")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = line["reproduce: raftcheck ".len()..]
        .split_whitespace()
        .map(|a| {
            if a == "sim-traces" {
                dir.path().display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    raftcheck()
        .args(&args)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("AtMostOnce violated"));
}

#[test]
fn json_and_list_bugs() {
    raftcheck()
        .args(["sim", "--list-bugs"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("commit-old-term"))
        .stdout(predicate::str::contains("volatile-vote"))
        .stdout(predicate::str::contains("truncate-on-match"))
        .stdout(predicate::str::contains("stale-read"))
        .stdout(predicate::str::contains("no-dedup"));
    // A run with membership changes: the catch of overlapping changes is
    // reported with the command that reproduces it.
    raftcheck()
        .args([
            "sim",
            "--seeds",
            "20",
            "--membership",
            "--bug",
            "overlapping-changes",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("MembershipChangeRule"))
        .stdout(predicate::str::contains("--membership --trace-dir"));
    let out = raftcheck()
        .args(["sim", "--seeds", "2", "--steps", "300", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["verdict"], "holds");
    assert_eq!(v["seeds_passed"], 2);
}

/// Pre-vote, check-quorum and lost-election are on by default: the traces'
/// headers list the features, the traces validate (semantically, against
/// the model with those features), and the JSON report and a failure's
/// reproduction name the options turned off; `--lease-read` is refused
/// without check-quorum.
#[test]
fn default_options_and_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = raftcheck()
        .args([
            "sim",
            "--seeds",
            "2",
            "--steps",
            "600",
            "--json",
            "--trace-dir",
        ])
        .arg(dir.path())
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["verdict"], "holds");
    let all = serde_json::json!(["lost-election", "pre-vote", "check-quorum"]);
    assert_eq!(v["features"], all);
    let trace = dir.path().join("seed-0").join("trace.ndjson");
    let text = std::fs::read_to_string(&trace).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["features"], all);
    assert!(
        text.contains("\"pre_vote\""),
        "no pre-vote message in the trace"
    );
    raftcheck().arg("validate").arg(&trace).assert().code(0);
    // The old flags are still accepted.
    raftcheck()
        .args([
            "sim",
            "--seeds",
            "1",
            "--steps",
            "300",
            "--pre-vote",
            "--check-quorum",
        ])
        .assert()
        .code(0);
    let out = raftcheck()
        .args(["sim", "--seeds", "1", "--steps", "300", "--json"])
        .args(["--no-pre-vote", "--no-check-quorum", "--no-lost-election"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["features"], serde_json::json!([]));
    raftcheck()
        .args([
            "sim",
            "--seeds",
            "200",
            "--bug",
            "no-dedup",
            "--no-pre-vote",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "--bug no-dedup --no-pre-vote --trace-dir",
        ));
    raftcheck()
        .args(["sim", "--seeds", "1", "--lease-read", "--no-check-quorum"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("lease reads require check-quorum"));
}

#[test]
fn bad_arguments_exit_two() {
    raftcheck()
        .args(["sim", "--faults", "bogus"])
        .assert()
        .code(2);
    raftcheck()
        .args(["sim", "--bug", "no-such-bug"])
        .assert()
        .code(2);
    raftcheck()
        .args(["sim", "--seeds", "1", "--bug", "overlapping-changes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "raftcheck sim --membership --bug overlapping-changes",
        ));
    raftcheck()
        .args(["sim", "--seeds", "1", "--impl", "raft-rs", "--membership"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--membership is not supported"));
}

fn failing_seeds(args: &[&str]) -> (Vec<u64>, u64) {
    let out = raftcheck().args(args).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seeds = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seed"].as_u64().unwrap())
        .collect();
    (seeds, v["seeds_run"].as_u64().unwrap())
}

/// The shards of a seed range run exactly the unsharded command's seeds,
/// with the same verdict for each.
#[test]
fn shards_together_are_the_unsharded_run() {
    let base = [
        "sim",
        "--seeds",
        "12",
        "--steps",
        "400",
        "--bug",
        "no-dedup",
        "--keep-going",
        "--json",
    ];
    let (all, ran) = failing_seeds(&base);
    assert_eq!(ran, 12);
    assert!(!all.is_empty(), "the planted bug shows in some seed");
    let mut union = Vec::new();
    let mut total = 0;
    for shard in ["1/3", "2/3", "3/3"] {
        let mut args = base.to_vec();
        args.extend(["--shard", shard]);
        let (seeds, ran) = failing_seeds(&args);
        total += ran;
        union.extend(seeds);
    }
    union.sort();
    assert_eq!(total, 12);
    assert_eq!(union, all);
    for bad in ["0/3", "4/3", "a/b", "3"] {
        raftcheck()
            .args(["sim", "--seeds", "3", "--shard", bad])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--shard"));
    }
}

#[test]
fn raft_rs_runs_and_its_written_traces_validate_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    raftcheck()
        .args([
            "sim",
            "--impl",
            "raft-rs",
            "--no-compaction",
            "--seeds",
            "2",
            "--steps",
            "600",
            "--trace-dir",
        ])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("all 2 seeds passed"))
        .stdout(predicate::str::contains("stale-append-reply"));
    for seed in 0..2 {
        let d = dir.path().join(format!("seed-{seed}"));
        raftcheck()
            .args(["validate", "--frontier-budget", "8192"])
            .arg(d.join("trace.ndjson"))
            .assert()
            .code(0);
    }
}

#[test]
fn raft_rs_harness_bug_is_named_by_conformance() {
    raftcheck()
        .args([
            "sim",
            "--impl",
            "raft-rs",
            "--seeds",
            "5",
            "--harness-bug",
            "late-hard-state",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "VotePersistedBeforeReply violated",
        ))
        .stdout(predicate::str::contains(
            "--impl raft-rs --harness-bug late-hard-state",
        ));
    raftcheck()
        .args(["sim", "--impl", "raft-rs", "--lease-read", "--seeds", "1"])
        .assert()
        .code(2);
}

#[test]
fn etcd_raft_without_its_driver_is_bad_usage_naming_the_build() {
    raftcheck()
        .env_remove("RAFTCHECK_ETCD_RAFT_DRIVER")
        .args(["sim", "--impl", "etcd-raft", "--seeds", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--etcd-raft-driver"))
        .stderr(predicate::str::contains("adapters/etcd-raft/run.sh"));
    raftcheck()
        .args(["sim", "--impl", "etcd-raft", "--seeds", "1"])
        .args(["--etcd-raft-driver", "/nonexistent/etcdraftdriver"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/etcdraftdriver"));
    raftcheck()
        .args(["sim", "--impl", "raft-rs", "--seeds", "1"])
        .args(["--harness-bug", "apply-before-commit"])
        .assert()
        .code(2);
}

/// No "1 seeds", "1 entries": a count of one is in the singular.
fn no_plural_after_one(text: &str) {
    for word in text.split(|c: char| !c.is_alphanumeric() && c != ' ') {
        let words: Vec<&str> = word.split(' ').collect();
        for pair in words.windows(2) {
            if pair[0] == "1" {
                let w = pair[1];
                assert!(
                    !(w.ends_with('s') && w.len() > 3 && !w.ends_with("ss")) || w == "has",
                    "\"1 {w}\" in: {text}"
                );
            }
        }
    }
}

#[test]
fn a_count_of_one_is_singular() {
    let out = raftcheck()
        .args(["sim", "--seeds", "1", "--steps", "50"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 seed passed"), "{text}");
    no_plural_after_one(&text);
    no_plural_after_one(&String::from_utf8_lossy(&out.stderr));
}

/// With `--trace-dir DIR` a failure names the trace where it was written
/// and the reproduce line uses DIR; `--keep-going` ends with a summary of
/// every seed; `--help` says that a report may name a step past `--steps`.
#[test]
fn failures_name_the_users_trace_dir_and_keep_going_sums_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = raftcheck()
        .args([
            "sim",
            "--seeds",
            "3",
            "--bug",
            "volatile-vote",
            "--keep-going",
            "--trace-dir",
            &d,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let reproduce: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("reproduce: "))
        .collect();
    assert_eq!(reproduce.len(), 3, "{text}");
    for line in &reproduce {
        assert!(line.ends_with(&format!("--trace-dir {d}")), "{line}");
        assert!(!line.contains("sim-traces"), "{line}");
    }
    assert!(
        text.contains(&format!("{d}/seed-0/trace.ndjson:")),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("3 of 3 seeds failed, 0 passed, 0 inconclusive ("),
        "{text}"
    );
    let help = raftcheck().args(["sim", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("quiet phase of up to 400 more steps"),
        "{help}"
    );
}

/// A leader that names the next index as its previous entry replicates
/// nothing: the runs are safe, and the simulator fails them with "no
/// progress" (text and JSON), naming the operations still pending after the
/// heal; the correct core passes the same seeds.
#[test]
fn a_planted_liveness_bug_fails_with_no_progress() {
    raftcheck()
        .args(["sim", "--seeds", "2", "--bug", "prev-index-is-next"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("seed 0: no progress: "))
        .stdout(predicate::str::contains(
            "still pending 400 ticks (40 election timeouts) after healing: client 1 request ",
        ))
        .stdout(predicate::str::contains(
            "reproduce: raftcheck sim --seeds 1 --start-seed 0 ",
        ));
    let out = raftcheck()
        .args([
            "sim",
            "--seeds",
            "2",
            "--keep-going",
            "--json",
            "--bug",
            "prev-index-is-next",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["verdict"], "violated");
    assert_eq!(v["ops_ok"], 0);
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{v}");
    for f in failures {
        assert_eq!(f["verdict"], "no-progress", "{f}");
        assert!(
            f["detail"].as_str().unwrap().contains("after healing"),
            "{f}"
        );
    }
    raftcheck()
        .args(["sim", "--seeds", "2"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("all 2 seeds passed"));
}
