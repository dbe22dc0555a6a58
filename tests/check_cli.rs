//! `raftcheck check`, `bugs` and `explore` end to end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn raftcheck() -> Command {
    Command::cargo_bin("raftcheck").unwrap()
}

fn json_of(out: &[u8]) -> Value {
    serde_json::from_slice(out).expect("one JSON object on stdout")
}

/// The paths of the files in `dir`.
fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Runs `raftcheck ARGS --json`: its exit code and the JSON it printed.
fn run_json(args: &[&str]) -> (Option<i32>, Value) {
    let out = raftcheck().args(args).arg("--json").output().unwrap();
    (out.status.code(), json_of(&out.stdout))
}

/// The default suite's configurations, in order.
const SUITE: [&str; 22] = [
    "elections",
    "clients",
    "figure8",
    "snapshots",
    "production",
    "pre-vote",
    "check-quorum",
    "read-index",
    "snapshot-fast-forward",
    "leader-transfer",
    "lease-read",
    "stale-term-step-down",
    "refuse-compacted-prev",
    "late-self-vote",
    "commit-any-message",
    "partial-batches",
    "three-entries",
    "five-servers",
    "membership",
    "membership-on-apply",
    "joint",
    "spare-server",
];

#[test]
fn the_default_suite_holds_and_reaches_every_sometimes_property() {
    let out = raftcheck().args(["check", "--json"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v = json_of(&out.stdout);
    assert_eq!(v["verdict"], "holds");
    // Each configuration's exact unique-state count is pinned in
    // model/tests/suite.rs; here: every one was exhausted.
    for c in v["configs"].as_array().unwrap() {
        assert_eq!(c["exhaustive"], true, "{c}");
        assert!(c["unique_states"].as_u64().unwrap() > 0, "{c}");
    }
    for key in ["states", "unique_states", "max_depth"] {
        assert!(v[key].as_u64().unwrap() > 0, "{key}");
    }
    assert!(v["seconds"].as_f64().is_some());
    let props = v["properties"].as_array().unwrap();
    assert!(props.len() >= 15);
    for p in props {
        let status = p["status"].as_str().unwrap();
        match p["expectation"].as_str().unwrap() {
            "always" => assert_eq!(status, "holds", "{p}"),
            "sometimes" => assert_eq!(status, "reached", "{p}"),
            e => panic!("unexpected expectation {e}"),
        }
    }
    let names: Vec<&str> = props.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for n in [
        "Election Safety",
        "Leader Append-Only",
        "Log Matching",
        "Leader Completeness",
        "State Machine Safety",
        "No Command Applied Twice",
        "Linearizable",
        "a split vote",
        "a snapshot is installed on a follower",
        "a retried command is deduplicated",
        "a leader steps down",
        "an uncommitted suffix is truncated after a leader change",
        "a stale append is acknowledged at the commit index",
        "a candidate gives up a lost election",
        "Pre-Vote Changes No Term",
        "a pre-candidate wins its pre-vote and campaigns",
        "a pre-candidate loses its pre-vote",
        "a leader steps down by check-quorum",
        "a follower commits on a heartbeat",
        "a read is served by ReadIndex",
        "a follower fast-forwards its commit on a snapshot",
        "Leader Lease Holds",
        "a read is served by the leader's lease",
        "a follower's commit stops at the last entry of a partial batch",
        "Progress",
        "a new voter is added",
        "a learner is added",
        "a learner is promoted to voter",
        "a voter is removed",
        "a leader removed from the configuration steps down",
    ] {
        assert!(names.contains(&n), "missing {n}");
    }
    let configs: Vec<&str> = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(configs, SUITE);
    assert_eq!(v["selection"], "suite");
}

fn config_names(v: &Value) -> Vec<&str> {
    v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// Which configurations run is stated in `check --help` and in the output:
/// model flags select one custom configuration instead of the suite, but
/// `--servers 3` with a bug whose configuration has 3 servers, and
/// `--network unordered`, which every suite configuration has, keep it.
#[test]
fn model_flags_select_one_custom_configuration_and_say_so() {
    let help = raftcheck().args(["check", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Which configurations run:"), "{help}");
    assert!(
        help.contains(
            "any other model flag  exactly one configuration, \"custom\", instead of the suite"
        ),
        "{help}"
    );
    assert!(help.contains("--servers N, --network K"), "{help}");

    // --servers 3 keeps the suite (here its configuration for --bug).
    let (code, v) = run_json(&["check", "--bug", "double-vote", "--servers", "3"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["selection"], "bug");
    assert_eq!(config_names(&v), ["elections"]);
    // A bug is checked breadth-first, where --engine does not apply.
    assert_eq!(v["checker"]["strategy"], "bfs", "{}", v["checker"]);
    assert_eq!(v["checker"]["engine"], Value::Null, "{}", v["checker"]);
    let out = raftcheck()
        .args(["check", "--bug", "double-vote", "--servers", "3"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("suite: --servers and --network with the value every configuration"),
        "{text}"
    );

    // --servers 5 keeps the bug's configuration when it has 5 servers.
    let (code, v) = run_json(&["check", "--bug", "commit-max-match", "--servers", "5"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["selection"], "bug");
    assert_eq!(config_names(&v), ["five-servers"]);

    // Any other model flag: one custom configuration, said first.
    let flags = [
        "check",
        "--bug",
        "double-vote",
        "--servers",
        "3",
        "--max-term",
        "1",
    ];
    let out = raftcheck()
        .args(flags)
        .args(["--clients", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "custom: the model flags select one configuration instead of the default suite"
        ),
        "{text}"
    );
    assert!(text.contains("\n[custom] "), "{text}");
    let (code, v) = run_json(&["check", "--lossy", "--clients", "0", "--max-term", "1"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["selection"], "custom");
    assert_eq!(config_names(&v), ["custom"]);
}

/// The README says the suite covers message loss: `elections` loses messages.
#[test]
fn the_suite_loses_messages_in_elections() {
    let out = raftcheck()
        .args(["check", "--bug", "double-vote", "--json"])
        .output()
        .unwrap();
    let v = json_of(&out.stdout);
    assert_eq!(config_names(&v), ["elections"]);
    let flags = v["configs"][0]["flags"].as_str().unwrap();
    assert!(flags.contains(" --lossy"), "{flags}");
}

/// Partial batches are a model flag of their own, in the configuration's
/// flags, and the suite's `partial-batches` configuration has them on.
#[test]
fn partial_batches_are_a_flag_of_the_partial_batches_configuration() {
    let (code, v) = run_json(&["check", "--bug", "commit-past-last-new"]);
    assert_eq!(code, Some(1));
    assert_eq!(config_names(&v), ["partial-batches"]);
    let flags = v["configs"][0]["flags"].as_str().unwrap();
    assert!(flags.contains(" --partial-batches"), "{flags}");
    let violated: Vec<&str> = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "violated")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(violated, ["Every Step Is Defined"]);
    let out = raftcheck()
        .args([
            "check",
            "--partial-batches",
            "--clients",
            "0",
            "--max-term",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    let v = json_of(&out.stdout);
    assert_eq!(v["selection"], "custom");
    let flags = v["configs"][0]["flags"].as_str().unwrap();
    assert!(flags.ends_with(" --partial-batches"), "{flags}");
}

#[test]
fn a_planted_bug_exits_1_with_readable_steps_and_an_explorer_url() {
    let out = raftcheck()
        .args(["check", "--bug", "double-vote"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Counterexample for Election Safety"),
        "{text}"
    );
    assert!(text.contains("receives RequestVote(term 1"), "{text}");
    assert!(
        text.contains("http://127.0.0.1:3000/?config=--servers+3+"),
        "{text}"
    );
    assert!(text.contains("#/steps/0/"), "{text}");
    assert!(text.contains("verdict: violated"));
}

/// The line under the steps says why the last state breaks the property:
/// the two leaders of one term, for Election Safety.
#[test]
fn a_counterexample_says_why_its_last_state_breaks_the_property() {
    let out = raftcheck()
        .args(["check", "--bug", "double-vote"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let why: Vec<&str> = text.lines().filter(|l| l.starts_with("  Why: ")).collect();
    assert_eq!(why.len(), 1, "{text}");
    // "S1 and S3 both lead term 1": two different servers.
    let leaders: Vec<&str> = why[0]
        .trim_start_matches("  Why: ")
        .trim_end_matches(" both lead term 1")
        .split(" and ")
        .collect();
    assert_eq!(leaders.len(), 2, "{}", why[0]);
    assert!(
        leaders.iter().all(|s| s.len() == 2 && s.starts_with('S')) && leaders[0] != leaders[1],
        "{}",
        why[0]
    );
    // Under the steps, before the explorer link.
    let (steps, after) = text.split_once(why[0]).unwrap();
    assert!(steps.contains("Counterexample for Election Safety"));
    assert!(after.trim_start().starts_with("Explore it:"), "{text}");

    // In JSON, beside the steps; another property, another reason.
    let out = raftcheck()
        .args(["check", "--bug", "stale-read", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_of(&out.stdout);
    let lin = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Linearizable")
        .unwrap();
    let why = lin["why"].as_str().unwrap();
    assert!(
        why.starts_with(
            "no sequential order of the clients' operations gives their results: \
             C1 write 1 -> ok (from the start to step "
        ),
        "{why}"
    );
    assert!(why.contains(", C1 read -> 0 (from step "), "{why}");
    let holds = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Log Matching")
        .unwrap();
    assert!(holds.get("why").is_none(), "only violations have a reason");
}

#[test]
fn json_of_a_violation() {
    let (code, v) = run_json(&["check", "--bug", "minority-quorum"]);
    assert_eq!(code, Some(1));
    assert_eq!(v["verdict"], "violated");
    let es = v["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Election Safety")
        .unwrap();
    assert_eq!(es["status"], "violated");
    assert_eq!(es["expectation"], "always");
    let steps = es["counterexample"].as_array().unwrap();
    assert!(!steps.is_empty());
    for s in steps {
        assert!(s["step"].is_u64() && s["actor"].is_string() && s["action"].is_string());
        assert!(s["changes"].is_array());
    }
}

#[test]
fn counterexample_traces_pass_the_format_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = raftcheck()
        .args(["check", "--bug", "stale-read", "--trace-out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Each file is named with what it is: the counterexample, or an
    // example that reaches a sometimes-property (not a violation).
    let err = String::from_utf8_lossy(&out.stderr);
    let wrote: Vec<&str> = err.lines().filter(|l| l.starts_with("wrote ")).collect();
    assert!(
        wrote
            .iter()
            .any(|l| l
                .ends_with("clients-linearizable.ndjson: the counterexample to \"Linearizable\"")),
        "{err}"
    );
    let examples: Vec<&&str> = wrote.iter().filter(|l| l.contains("-example-")).collect();
    assert!(!examples.is_empty(), "{err}");
    for l in examples {
        assert!(l.contains(": an example, not a violation: "), "{l}");
    }
    let files = files_in(dir.path());
    assert!(!files.is_empty());
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("\"type\":\"invoke\"") && text.contains("\"type\":\"return\""));
    assert!(text.contains("\"type\":\"send\"") && text.contains("\"type\":\"receive\""));
    let mut validate = raftcheck();
    validate.args(["validate", "--format-only"]).args(&files);
    let v = validate.output().unwrap();
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
}

#[test]
fn an_unreachable_sometimes_property_fails_as_vacuous() {
    // With logs bounded to 0 entries nothing can be committed.
    let out = raftcheck()
        .args(["check", "--max-log", "0", "--max-term", "1", "--ops", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("vacuous"), "{text}");
    assert!(text.contains("a value is committed"), "{text}");
}

/// A configuration too large to finish in 0.3 s.
const CUT_SHORT: [&str; 11] = [
    "check",
    "--clients",
    "2",
    "--ops",
    "3",
    "--max-term",
    "3",
    "--max-log",
    "3",
    "--timeout",
    "0.3",
];

#[test]
fn a_timeout_is_inconclusive() {
    let out = raftcheck().args(CUT_SHORT).arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v = json_of(&out.stdout);
    assert_eq!(v["verdict"], "inconclusive");
    assert_eq!(v["configs"][0]["stopped"], "timeout");
    assert_eq!(v["configs"][0]["exhaustive"], false);
}

/// The election configuration of the speed benchmarks, breadth first: its
/// frontier alone outgrows any small memory limit within a second.
const BIG_BFS: [&str; 9] = [
    "check",
    "--strategy",
    "bfs",
    "--clients",
    "0",
    "--max-term",
    "3",
    "--max-crashes",
    "1",
];

/// A check whose memory passes --max-memory stops, inconclusive, and says
/// so, instead of being killed by the operating system (a breadth-first
/// search of a deep configuration took 17 GB in 30 s).
#[test]
fn a_memory_limit_stops_a_check() {
    let out = raftcheck()
        .args(BIG_BFS)
        .args(["--max-memory", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("NOT exhaustive (stopped when its memory passed 1 MB (--max-memory))"),
        "{text}"
    );
    assert!(text.contains("verdict: inconclusive"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: the check stopped when its memory passed 1 MB"),
        "{err}"
    );
    let (code, v) = run_json(&[&BIG_BFS[..], &["--max-memory", "1"]].concat());
    assert_eq!(code, Some(3));
    assert_eq!(v["configs"][0]["stopped"], "memory");
    // A limit the run does not reach changes nothing.
    let (code, v) = run_json(&[
        "check",
        "--clients",
        "0",
        "--max-term",
        "1",
        "--max-memory",
        "100000",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(v["configs"][0]["stopped"], Value::Null);
    assert_eq!(v["configs"][0]["exhaustive"], true);
}

/// While a stopped breadth-first search drains its queue, every step is a
/// no-op; the paths it found before are replayed afterwards, through a
/// model that steps again: the examples are written and validate.
#[test]
fn examples_found_before_a_stop_replay() {
    let dir = tempfile::tempdir().unwrap();
    let out = raftcheck()
        .args(BIG_BFS)
        .args(["--timeout", "1", "--trace-out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("wrote ") && l.contains("a leader is elected")),
        "{err}"
    );
    let files = files_in(dir.path());
    let v = raftcheck().arg("validate").args(&files).output().unwrap();
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
}

/// A search cut short proves nothing: its properties read "ok so far",
/// never "holds", and the output says why.
#[test]
fn a_timeout_never_says_holds() {
    let out = raftcheck().args(CUT_SHORT).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text.split("Summary:").nth(1).expect("a summary");
    assert!(
        summary.contains("ok so far always    Election Safety"),
        "{text}"
    );
    assert!(!summary.contains("holds"), "{text}");
    assert!(text.contains("not a proof"), "{text}");
    assert!(text.contains("verdict: inconclusive"), "{text}");
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["check", "--network", "carrier-pigeon"][..],
        &["check", "--bug", "no-such-bug"],
        &["check", "--servers", "0"],
        &["check", "--strategy", "random"],
        &["check", "--symmetry", "--strategy", "bfs"],
        &["check", "--timeout", "-1"],
        &["check", "--max-memory", "0"],
        &["check", "--max-memory", "lots"],
        &["check", "--feature", "prevote"],
        &["check", "--change", "join:4", "--feature", "membership"],
        &["check", "--change", "add:4", "--feature", "membership"],
        &["check", "--servers", "4", "--change", "add:4"],
        &["check", "--servers", "4", "--voters", "5"],
        &[
            "check",
            "--servers",
            "4",
            "--feature",
            "membership",
            "--change",
            "joint:1,2,9",
        ],
        &["check", "--feature", "membership", "--change", "joint:"],
        &[
            "check",
            "--feature",
            "membership",
            "--change",
            "leave-joint:1",
        ],
        &["explore", "--addr", "not an address"],
    ] {
        let out = raftcheck().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn bugs_lists_every_planted_bug() {
    let out = raftcheck().args(["bugs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for b in [
        "commit-old-term",
        "no-election-restriction",
        "volatile-vote",
        "double-vote",
        "accept-stale-term",
        "truncate-on-match",
        "no-dedup",
        "stale-read",
        "minority-quorum",
        "snapshot-regress",
        "stale-append-match",
        "pre-vote-raises-term",
        "read-index-old-commit",
        "commit-past-last-new",
        "prev-check-off-by-one",
        "commit-max-match",
        "overlapping-changes",
        "learner-counts",
        "removed-vote-counts",
        "joint-new-majority-only",
    ] {
        assert!(text.contains(b), "{b}");
    }
}

/// One catalogue, one naming scheme: the same mistake has the same name in
/// the model and in the implementation, and the listing says which command
/// switches each layer's bug on; the old implementation names still work.
#[test]
fn bugs_lists_both_layers_under_one_name() {
    let out = raftcheck().args(["bugs", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bugs = v["bugs"].as_array().unwrap();
    let layers = |name: &str| -> Vec<String> {
        let b = bugs.iter().find(|b| b["name"] == name).unwrap();
        b["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["command"].as_str().unwrap().to_string())
            .collect()
    };
    for shared in [
        "commit-old-term",
        "volatile-vote",
        "truncate-on-match",
        "no-dedup",
        "stale-read",
    ] {
        assert_eq!(
            layers(shared),
            vec![
                format!("raftcheck check --bug {shared}"),
                format!("raftcheck sim --bug {shared}")
            ]
        );
    }
    assert_eq!(
        layers("double-vote"),
        vec!["raftcheck check --bug double-vote"]
    );
    let text =
        String::from_utf8_lossy(&raftcheck().arg("bugs").output().unwrap().stdout).into_owned();
    assert!(text.contains("formerly double-apply"), "{text}");
    for old in [
        "old-term-commit",
        "vote-not-persisted",
        "truncate-matching",
        "double-apply",
    ] {
        let out = raftcheck()
            .args(["sim", "--seeds", "1", "--steps", "50", "--bug", old])
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(2), "alias {old} refused");
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn the_explorer_serves_the_model_status() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    // Run where no ./ui folder exists (stateright would serve it instead).
    let cwd = tempfile::tempdir().unwrap();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("raftcheck"))
        .args([
            "explore",
            "--max-term",
            "1",
            "--clients",
            "0",
            "--addr",
            &addr,
        ])
        .current_dir(cwd.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut status = None;
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(body) = http_get(&addr, "/.status") {
            status = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let body = status.expect("the explorer answered");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("Election Safety"), "{body}");
    assert!(body.contains("a split vote"), "{body}");
}

/// `(config, seed, shard, walks, first walk)` of each configuration in a
/// JSON report of a simulation.
fn simulation_of(v: &Value) -> Vec<(String, u64, String, u64, u64)> {
    v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = &c["simulation"];
            assert!(s.is_object(), "no simulation details: {c}");
            (
                c["name"].as_str().unwrap().to_string(),
                s["seed"].as_u64().unwrap(),
                s["shard"].as_str().unwrap().to_string(),
                s["walks"].as_u64().unwrap(),
                s["first_walk"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn simulation_runs_and_is_not_exhaustive() {
    let out = raftcheck()
        .args(["check", "--strategy", "simulation", "--timeout", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(3), "{text}\n{err}");
    let names = SUITE;
    for name in names {
        assert!(text.contains(&format!("[{name}] ")), "{name}: {text}");
    }
    assert_eq!(
        text.matches("NOT exhaustive").count(),
        names.len(),
        "{text}"
    );
    assert!(text.contains("simulation: seed 0, shard 1/1: "), "{text}");
    assert!(text.contains("verdict: inconclusive"), "{text}");
    // Not reaching a sometimes-property by random walks is no proof that
    // the bounds are too tight.
    assert!(!text.contains("vacuous"), "{text}");
}

#[test]
fn simulation_finds_a_planted_bug_with_a_counterexample() {
    let out = raftcheck()
        .args([
            "check",
            "--strategy",
            "simulation",
            "--bug",
            "minority-quorum",
            "--timeout",
            "30",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Counterexample for Election Safety"),
        "{text}"
    );
    assert!(text.contains("   1. "), "{text}");
    assert!(
        text.contains("http://127.0.0.1:3000/?config=--servers+3+"),
        "{text}"
    );
    assert!(text.contains("#/steps/0/"), "{text}");
    assert!(text.contains("verdict: violated"), "{text}");
}

#[test]
fn shard_and_seed_flags_are_checked() {
    for (args, flag) in [
        (
            &["--strategy", "simulation", "--shard", "0/4"][..],
            "--shard",
        ),
        (&["--strategy", "simulation", "--shard", "5/4"], "--shard"),
        (&["--strategy", "simulation", "--shard", "a/b"], "--shard"),
        (&["--strategy", "simulation", "--shard", "2"], "--shard"),
        (&["--strategy", "simulation", "--seed", "x"], "--seed"),
        (&["--strategy", "simulation", "--seed=-1"], "--seed"),
        (&["--strategy", "bfs", "--shard", "1/2"], "--shard"),
        (&["--strategy", "dfs", "--shard", "1/2"], "--shard"),
        (&["--shard", "1/2"], "--shard"),
        (&["--strategy", "dfs", "--seed", "3"], "--seed"),
    ] {
        let out = raftcheck().arg("check").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn shards_run_different_walks_and_a_seed_repeats_a_run() {
    let sim = |seed: &str, shard: &str| {
        let out = raftcheck()
            .args([
                "check",
                "--strategy",
                "simulation",
                "--bug",
                "volatile-vote",
                "--seed",
                seed,
                "--shard",
                shard,
                "--threads",
                "1",
                "--timeout",
                "30",
                "--json",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        json_of(&out.stdout)
    };
    let counterexample = |v: &Value| {
        let p = v["properties"].as_array().unwrap().iter();
        p.clone()
            .find(|p| p["name"] == "Election Safety")
            .unwrap()
            .clone()
    };
    let a = sim("11", "1/2");
    let b = sim("11", "2/2");
    let again = sim("11", "1/2");
    let other_seed = sim("12", "1/2");
    let (sa, sb) = (simulation_of(&a), simulation_of(&b));
    assert_eq!((sa[0].1, sa[0].2.as_str()), (11, "1/2"));
    assert_eq!((sb[0].1, sb[0].2.as_str()), (11, "2/2"));
    // Walk i of shard K/N is walk (K-1) + N*i of the seed: shard 1 runs
    // the even walks, shard 2 the odd ones.
    assert_eq!((sa[0].4, sb[0].4), (0, 1));
    assert_ne!(counterexample(&a), counterexample(&b));
    // Another seed gives other walks (not the same walks shifted by one).
    assert_ne!(counterexample(&other_seed), counterexample(&a));
    assert_ne!(simulation_of(&other_seed)[0].3, sa[0].3);
    // The same seed and shard on one thread: the same walks, the same
    // counterexample.
    assert_eq!(simulation_of(&again), sa);
    assert_eq!(counterexample(&again), counterexample(&a));
    assert_eq!(counterexample(&again)["status"], "violated");
}

/// `--engine` chooses the depth-first checker: both explore the same
/// states, so a configuration's counts and verdict agree; with another
/// strategy it is refused.
#[test]
fn both_engines_count_the_same_states_and_engine_needs_dfs() {
    let flags = [
        "check",
        "--servers",
        "3",
        "--clients",
        "0",
        "--max-term",
        "1",
        "--max-crashes",
        "1",
        "--threads",
        "2",
    ];
    let mut seen = vec![];
    for engine in ["raftcheck", "stateright"] {
        let args: Vec<&str> = flags.iter().copied().chain(["--engine", engine]).collect();
        let (code, v) = run_json(&args);
        assert_eq!(code, Some(0), "{engine}: {v}");
        let c = &v["configs"][0];
        assert_eq!(c["exhaustive"], Value::Bool(true), "{engine}: {c}");
        let checker = &v["checker"];
        assert_eq!(checker["strategy"], "dfs", "{checker}");
        assert_eq!(checker["engine"], engine, "{checker}");
        assert_eq!(checker["threads"], 2, "{checker}");
        seen.push((c["unique_states"].clone(), c["states"].clone()));
    }
    assert_eq!(
        seen[0], seen[1],
        "raftcheck's search and stateright's checker"
    );
    let out = raftcheck()
        .args(["check", "--strategy", "bfs", "--engine", "stateright"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--engine needs --strategy dfs"));
    let out = raftcheck()
        .args(["check", "--engine", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected raftcheck or stateright"));
}
