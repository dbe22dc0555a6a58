//! `raftcheck validate` (semantic): valid runs exit 0; a broken run exits 1
//! naming the file, the line, the node and the rule.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/examples")
}

#[test]
fn the_examples_validate() {
    // Every example in the folder, so a new one is checked as soon as it is added.
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    let mut cmd = Command::cargo_bin("raftcheck").unwrap();
    cmd.arg("validate").args(&files);
    let n = files.len();
    cmd.assert()
        .code(0)
        .stdout(predicate::str::contains(format!("{n} of {n} runs valid")));
}

#[test]
fn the_examples_validate_with_the_smallest_message_window() {
    // The replay keeps the model message of the last send only.
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    let n = files.len();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--message-window", "1"])
        .args(&files)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!("{n} of {n} runs valid")));
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--message-window", "0"])
        .args(&files)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--message-window"));
}

#[test]
fn two_leaders_in_a_term_are_rejected_with_the_line() {
    let text = std::fs::read_to_string(examples().join("election-and-commits.ndjson")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // Node 2 claims leadership of term 1 right after its last event.
    lines.push(
        r#"{"type":"role","node":2,"seq":1000,"role":"leader","term":1,"reason":"won_election"}"#
            .into(),
    );
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("seed-1");
    std::fs::create_dir(&run).unwrap();
    let path = run.join("trace.ndjson");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let expected = format!(
        "{}:{}: node 2: ElectionSafety violated",
        path.display(),
        lines.len()
    );
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains(expected))
        .stdout(predicate::str::contains("node 2's last accepted events"));
    let out = Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--json"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "invalid");
    assert_eq!(v["runs"][0]["rejection"]["rule"], "ElectionSafety");
    assert_eq!(v["runs"][0]["rejection"]["at"]["line"], lines.len() as u64);
}

#[test]
fn a_run_whose_clients_saw_a_stale_value_is_rejected() {
    let text = std::fs::read_to_string(examples().join("client-history.ndjson")).unwrap();
    // Client 3 reads x after the cas to "3" finished, yet sees the old "1".
    let stale = text.replace(
        r#""client":3,"req":2,"status":"ok","value":"3""#,
        r#""client":3,"req":2,"status":"ok","value":"1""#,
    );
    assert_ne!(stale, text, "the example changed; update this test");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("history.ndjson"), &text).unwrap();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("client operations linearizable"));
    std::fs::write(dir.path().join("history.ndjson"), stale).unwrap();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "the client history is not linearizable",
        ));
}

/// A history whose linearizability search is hard (65 client events, from
/// outside testing: 16 concurrent writes and 16 concurrent reads, one of a
/// value no one wrote) once ran past 40 s and 2 GB inside `validate`. No
/// order of the others can make that read possible, and the check now says
/// so at once, naming it.
#[test]
fn a_read_no_write_could_explain_is_refuted_without_a_search_and_the_others_placed() {
    let hard = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/outside-findings/history-hard16.ndjson");
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--timeout", "5"])
        .arg(&hard)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            r#"["x"] read() -> "zz" (client 115, lines 33-65) can take effect in no state"#,
        ))
        .stdout(predicate::str::contains(
            "minimal non-linearizable sub-history (1 operation)",
        ));
    // The same history with that read of a value written (v9, which no
    // other read saw) is linearizable, and found so at once: each read
    // right after its write, where trying the orders of the 16 writes
    // first ran past any budget.
    let text = std::fs::read_to_string(&hard).unwrap();
    assert_eq!(text.matches(r#""value":"zz""#).count(), 1);
    let dir = tempfile::tempdir().unwrap();
    let fine = dir.path().join("history-16.ndjson");
    std::fs::write(&fine, text.replace(r#""value":"zz""#, r#""value":"v9""#)).unwrap();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--timeout", "5"])
        .arg(&fine)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("1 of 1 run valid"));
}

/// `writes` concurrent writes of distinct values, then two concurrent
/// reads, after every write returned, of two different values: not
/// linearizable, but only the order of the writes shows it, and the search
/// tries each of their subsets.
fn concurrent_writes_then_two_values(writes: u64) -> String {
    let mut lines = vec![
        r#"{"type":"header","format":"raft-trace/1","implementation":"x","nodes":[],"observes":{"events":["invoke","return"],"state":[],"entries":"full"}}"#.to_string(),
    ];
    for c in 0..writes {
        lines.push(format!(
            r#"{{"type":"invoke","client":{c},"req":1,"op":{{"f":"write","key":"x","value":"v{c}"}}}}"#
        ));
    }
    for c in 0..writes {
        lines.push(format!(
            r#"{{"type":"return","client":{c},"req":1,"status":"ok"}}"#
        ));
    }
    for c in [100, 101] {
        lines.push(format!(
            r#"{{"type":"invoke","client":{c},"req":1,"op":{{"f":"read","key":"x"}}}}"#
        ));
    }
    for (c, v) in [(100, 3), (101, 5)] {
        lines.push(format!(
            r#"{{"type":"return","client":{c},"req":1,"status":"ok","value":"v{v}"}}"#
        ));
    }
    lines.join("\n") + "\n"
}

/// A history whose search is hard ends with exit 3 within either budget,
/// and says which flag raises it.
#[test]
fn a_hard_history_ends_inconclusive_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let hard = dir.path().join("writes24.ndjson");
    std::fs::write(&hard, concurrent_writes_then_two_values(24)).unwrap();
    // The time budget.
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--timeout", "1"])
        .arg(&hard)
        .assert()
        .code(3)
        .stdout(predicate::str::contains(
            "ran out of its budget (1 s of time",
        ));
    // The memo budget, with time to spare.
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--timeout", "600", "--memo-limit", "2"])
        .arg(&hard)
        .assert()
        .code(3)
        .stdout(predicate::str::contains("2 MiB of memo"));
    // Bad budgets are bad usage.
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--timeout=-1"])
        .arg(&hard)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--timeout"));
    // Small enough, the same shape is decided, and refuted.
    let small = dir.path().join("writes4.ndjson");
    std::fs::write(&small, concurrent_writes_then_two_values(4)).unwrap();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate"])
        .arg(&small)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "the client history is not linearizable",
        ));
}

/// `text`, one run's trace file, split into a file per node and one for
/// the clients' events: the header line, and each file's other lines.
fn by_node(text: &str) -> (&str, std::collections::BTreeMap<String, Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut files: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let name = match (v["type"].as_str().unwrap(), v["node"].as_u64()) {
            ("invoke" | "return", _) => "clients.ndjson".to_string(),
            (_, Some(n)) => format!("node-{n}.ndjson"),
            (ty, None) => panic!("a {ty} event without a node"),
        };
        files.entry(name).or_default().push(line.to_string());
    }
    (header, files)
}

/// Writes `files` into the new folder `dir`, each with `header` first.
fn write_files(dir: &Path, header: &str, files: &std::collections::BTreeMap<String, Vec<String>>) {
    std::fs::create_dir(dir).unwrap();
    for (name, body) in files {
        std::fs::write(dir.join(name), format!("{header}\n{}\n", body.join("\n"))).unwrap();
    }
}

/// `raftcheck validate --json PATH`: its exit code and how many runs it
/// reports.
fn validate_runs(path: &Path) -> (Option<i32>, usize) {
    let out = Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--json"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let runs = json["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("{json}"))
        .len();
    (out.status.code(), runs)
}

/// A folder of one file per seed (each with its own header, `seq`
/// restarting) was merged into one run and rejected with a bogus
/// OneVotePerTerm. Files that share a node are runs of their own; files
/// that split one run by node are still merged.
#[test]
fn a_folder_of_seed_files_is_many_runs_and_per_node_files_are_one() {
    let dir = tempfile::tempdir().unwrap();
    let sims = dir.path().join("sims");
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["sim", "--seeds", "3", "--trace-dir"])
        .arg(&sims)
        .assert()
        .code(0);
    let flat = dir.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    for seed in 0..3 {
        let src = std::fs::read_dir(&sims)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy() == format!("seed-{seed}"))
            .unwrap_or_else(|| panic!("no seed-{seed} under {}", sims.display()));
        std::fs::copy(
            src.join("trace.ndjson"),
            flat.join(format!("seed-{seed}.ndjson")),
        )
        .unwrap();
    }
    assert_eq!(validate_runs(&flat), (Some(0), 3));

    // One run split into a file per node plus the clients' file: one run.
    let text = std::fs::read_to_string(flat.join("seed-0.ndjson")).unwrap();
    let (header, files) = by_node(&text);
    assert!(files.len() >= 3, "{:?}", files.keys());
    let split = dir.path().join("split");
    write_files(&split, header, &files);
    assert_eq!(validate_runs(&split), (Some(0), 1));
}

/// The validator groups a folder's files into one run before reading them
/// and splits it when a node turns out to have events in two files. When
/// the merged run fails before that shows (here: the files' headers list
/// different nodes), it reads the files in full to decide: files that
/// share a node are still checked as runs of their own, and files that
/// split one run by node still fail as one run.
#[test]
fn a_failed_merge_is_split_only_when_files_share_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let sim = |nodes: &str, seed: &str, to: &Path| {
        Command::cargo_bin("raftcheck")
            .unwrap()
            .args(["sim", "--seeds", "1", "--steps", "300", "--nodes", nodes])
            .args(["--start-seed", seed, "--trace-dir"])
            .arg(to)
            .assert()
            .code(0);
        to.join(format!("seed-{seed}")).join("trace.ndjson")
    };
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    let three = sim("3", "1", &dir.path().join("three"));
    let five = sim("5", "2", &dir.path().join("five"));
    std::fs::copy(&three, mixed.join("a.ndjson")).unwrap();
    std::fs::copy(&five, mixed.join("b.ndjson")).unwrap();
    assert_eq!(validate_runs(&mixed), (Some(0), 2));

    // One run split by node, with two of a node's events swapped (their
    // `seq` kept in place): one run, rejected.
    let text = std::fs::read_to_string(&three).unwrap();
    let (header, mut files) = by_node(&text);
    let node2 = files.get_mut("node-2.ndjson").unwrap();
    let mut events: Vec<serde_json::Value> = node2[1..3]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (a, b) = (events[0]["seq"].clone(), events[1]["seq"].clone());
    events.swap(0, 1);
    events[0]["seq"] = a;
    events[1]["seq"] = b;
    node2[1] = events[0].to_string();
    node2[2] = events[1].to_string();
    let split = dir.path().join("split");
    write_files(&split, header, &files);
    assert_eq!(validate_runs(&split), (Some(1), 1));
}

/// The same run merged in two legal orders: in the second, node 3's term-1
/// election comes after another node's commit in term 2 of an entry node 3
/// never had. Leader Completeness asks only leaders of later terms for it.
#[test]
fn a_legal_reordering_of_a_merged_run_stays_valid() {
    let data = outside_findings();
    for name in ["lc-order-a.ndjson", "lc-order-b.ndjson"] {
        exits_with(data.join(name), 0);
    }
}

/// Dropping a receive's optional `post` left the term bump's post (vote not
/// yet cast) as the last word on the step, and a correct vote was rejected
/// with RequestVoteRule. A vote the node really did not cast is still caught.
#[test]
fn a_dropped_post_is_no_violation_but_a_wrong_vote_is() {
    let data = outside_findings();
    for name in ["vote-post-kept.ndjson", "vote-post-dropped.ndjson"] {
        exits_with(data.join(name), 0);
    }
    // The node persists and shows no vote, yet grants it.
    let dir = tempfile::tempdir().unwrap();
    let path = mutated(
        dir.path(),
        &data.join("vote-post-dropped.ndjson"),
        r#""type":"persist","node":2,"seq":5"#,
        r#""vote":1"#,
        r#""vote":null"#,
    );
    exits_with(&path, 1);
}

/// After a declared `gap` the node's earlier commits are unknown, so a
/// restart that recovers its persisted commit index was rejected with
/// CommitRule. A recovered commit beyond the recovered log is still wrong.
#[test]
fn a_restart_after_a_gap_may_keep_its_commit_index() {
    let data = outside_findings();
    for name in ["gap-base.ndjson", "gap-restart.ndjson"] {
        exits_with(data.join(name), 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = mutated(
        dir.path(),
        &data.join("gap-restart.ndjson"),
        r#""type":"init","node":2,"seq":21"#,
        r#""commit":2"#,
        r#""commit":3"#,
    );
    exits_with(&path, 1);
}

/// Rewrites the lines of `file` that contain `marker` with `from` -> `to`
/// into a temporary file, which must differ from the original.
fn mutated(dir: &Path, file: &Path, marker: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    let out: String = text
        .lines()
        .map(|l| {
            if l.contains(marker) {
                l.replacen(from, to, 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(out.trim(), text.trim(), "{marker}: nothing mutated");
    let path = dir.join(file.file_name().unwrap());
    std::fs::write(&path, out + "\n").unwrap();
    path
}

/// Each event type that SCHEMA's "emit less" table lets an emitter leave
/// out (neither declared nor written) was a false alarm: no `send` gave
/// MessageNeverSent, no `init` EventWhileCrashed, no `truncate` or `install`
/// AppendAtLogEnd, no `snapshot` AppendEntriesReplyRule, no `append`
/// ReplicationRule, no `commit` ApplyOnlyCommitted. The checks now infer
/// what the missing events would have said; what is still visible is still
/// checked.
#[test]
fn event_types_left_out_are_allowed_for_and_still_checked_around() {
    let data = outside_findings();
    for name in [
        "send-undeclared.ndjson",
        "init-undeclared.ndjson",
        "truncate-undeclared.ndjson",
        "install-undeclared.ndjson",
        "snapshot-undeclared.ndjson",
        "append-undeclared.ndjson",
        "commit-events-undeclared.ndjson",
        "timeout-undeclared-kept.ndjson",
    ] {
        let out = Command::cargo_bin("raftcheck")
            .unwrap()
            .arg("validate")
            .arg(data.join(name))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    // Without append events, a leader's entry of an older term shows in its
    // AppendEntries and is still a violation.
    let bad = mutated(
        dir.path(),
        &data.join("append-undeclared.ndjson"),
        r#""type":"send","node":1,"seq":18"#,
        r#""entries":[{"term":1"#,
        r#""entries":[{"term":0"#,
    );
    exits_with(&bad, 1);
    // Without commit events, an apply whose own post shows a lower commit
    // index is still an apply of an uncommitted entry.
    let bad = mutated(
        dir.path(),
        &data.join("commit-events-undeclared.ndjson"),
        r#""type":"apply","node":1,"seq":22"#,
        r#""commit":2"#,
        r#""commit":1"#,
    );
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(&bad)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ApplyOnlyCommitted"));
}

/// A node killed between its disk write and its trace write recovers a
/// commit index (or log) its trace never showed: the trace was cut before
/// the crash, which is not a violation. (A SIGKILLed raftkv node recovered
/// commit 2357 while its trace ended at 2356.)
#[test]
fn state_recovered_ahead_of_a_cut_trace_is_not_a_violation() {
    let data = outside_findings();
    let text = std::fs::read_to_string(data.join("gap-base.ndjson")).unwrap();
    // Node 2's last steps before its crash (the append that brought commit
    // 2, the commit, the apply, the reply; the leader never got the reply)
    // never reached the trace, yet it restarts with commit 2.
    let cut: String = text
        .lines()
        .filter(|l| {
            !(15..=18).any(|seq| l.contains(&format!(r#""node":2,"seq":{seq},"#)))
                && !l.contains(r#""type":"receive","node":1,"seq":26,"#)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(cut.lines().count() + 5, text.lines().count());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.ndjson");
    std::fs::write(&path, cut).unwrap();
    exits_with(&path, 0);
}

/// The copied inputs from outside testing.
fn outside_findings() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/outside-findings")
}

/// `raftcheck validate PATH` exits with `code`.
fn exits_with(path: impl AsRef<std::ffi::OsStr>, code: i32) {
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(path)
        .assert()
        .code(code);
}

/// `-` reads one trace from standard input: the same checks, the file
/// named `stdin` with the lines of the input (a blank line included).
#[test]
fn a_trace_on_standard_input_is_checked_and_named_stdin() {
    let text = std::fs::read_to_string(examples().join("election-and-commits.ndjson")).unwrap();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "-"])
        .write_stdin(text.clone())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("stdin: valid ("))
        .stdout(predicate::str::contains("2 client operations linearizable"));
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--format-only", "-"])
        .write_stdin(text.clone())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("stdin: ok, "));
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.insert(2, String::new());
    lines.push(
        r#"{"type":"role","node":2,"seq":1000,"role":"leader","term":1,"reason":"won_election"}"#
            .into(),
    );
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "-"])
        .write_stdin(lines.join("\n") + "\n")
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "stdin:{}: node 2: ElectionSafety violated",
            lines.len()
        )));
}

/// Node traces without client events (a cluster's `--trace`) are valid
/// with a note that linearizability was not checked, not silently.
#[test]
fn a_run_without_client_events_says_linearizability_was_not_checked() {
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(examples().join("leader-transfer.ndjson"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "no client events, so linearizability was not checked",
        ));
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(examples().join("election-and-commits.ndjson"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("2 client operations linearizable"))
        .stdout(predicate::str::contains("not checked").not());
}

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn validate_file(path: &Path) -> (Option<i32>, String) {
    let out = Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A write whose client lost the answer (`info`) but that the leader
/// applied took effect by that apply: a read invoked after it must see it.
/// (Its interval used to run to the end of the history, so the stale read
/// below passed.)
#[test]
fn an_unknown_write_the_trace_shows_applied_ends_at_its_apply() {
    let (code, text) = validate_file(&data("info-applied.ndjson"));
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = validate_file(&data("info-applied-stale-read.ndjson"));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("not linearizable")
            && text.contains("write(\"1\") ? (client 1, line 6 to its apply at line 10"),
        "{text}"
    );
}

/// An unknown write whose only apply is a `duplicate` (the client had moved
/// on to a later request, so the session table refused it as stale) never
/// took effect: a later read that does not see it is linearizable. (The
/// duplicate apply used to end its interval, a false alarm a simulator run
/// with lease reads hit: seed 2017.)
#[test]
fn an_unknown_write_applied_only_as_a_duplicate_never_took_effect() {
    let (code, text) = validate_file(&data("info-applied-duplicate.ndjson"));
    assert_eq!(code, Some(0), "{text}");
    // Executed by that apply instead, it must be seen.
    let executed: String = std::fs::read_to_string(data("info-applied-duplicate.ndjson"))
        .unwrap()
        .replace(r#", "duplicate": true}"#, "}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("executed.ndjson");
    std::fs::write(&p, executed).unwrap();
    let (code, text) = validate_file(&p);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("not linearizable"), "{text}");
}

/// An unknown write no node applied, in a trace that shows every event,
/// constrains nothing and is left out of the search; where events may be
/// missing (a jump in a node's `seq`) it stays in.
#[test]
fn an_unknown_write_never_applied_is_left_out_only_when_the_trace_is_complete() {
    let path = data("info-never-applied.ndjson");
    let (code, text) = validate_file(&path);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("1 client operation linearizable"), "{text}");
    let gapped: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| l.replace(r#""seq": 8,"#, r#""seq": 9,"#) + "\n")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gap.ndjson");
    std::fs::write(&p, gapped).unwrap();
    let (code, text) = validate_file(&p);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("2 client operations linearizable"), "{text}");
}

/// A follower that never applied a command installs a leader's snapshot
/// taken after it, then applies the command's retry: the snapshot's session
/// table makes the retry a duplicate. The leader had restarted from that
/// snapshot with a log longer than the trace showed (a cut trace, replayed
/// afresh), so its state machine was known only from the states it held
/// before; the snapshot it sent used to carry an empty stand-in, which the
/// follower installed as if known and then expected a first execution (a
/// false alarm on simulator seed 7003 without pre-vote and check-quorum).
#[test]
fn a_retry_applied_after_installing_a_snapshot_that_executed_it_is_a_duplicate() {
    let path = data("install-from-restarted-leader.ndjson");
    let (code, text) = validate_file(&path);
    assert_eq!(code, Some(0), "{text}");
    let trace = std::fs::read_to_string(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Claimed as a first execution, by the follower after the install or by
    // the leader after its restart, it is executed twice.
    for (node, seq) in [(1, 1288), (3, 876)] {
        let apply = format!(
            r#"{{"node":{node},"seq":{seq},"type":"apply","index":26,"term":6,"client":1,"req":9,"duplicate":true}}"#
        );
        assert!(trace.contains(&apply), "{apply}");
        let p = dir.path().join(format!("first-execution-{node}.ndjson"));
        std::fs::write(&p, trace.replace(&apply, &apply.replace("true", "false"))).unwrap();
        let (code, text) = validate_file(&p);
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains(&format!("node {node}: AtMostOnce violated"))
                && text.contains("expected: a duplicate"),
            "{text}"
        );
    }
}

#[test]
fn the_scaling_benchmark_script_runs() {
    // A smoke test of conformance/benches/scale.py on two tiny runs: it
    // prints the figures, it asserts nothing of them.
    let out = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/benches/scale.py"))
        .args([
            "--bin",
            env!("CARGO_BIN_EXE_raftcheck"),
            "--sizes",
            "200,400",
        ])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("cost per event").count(), 2, "{stdout}");
}
