//! A step the replay rejects only at its end (the next step's first event,
//! or the end of the trace) is reported at the event by which the trace had
//! left every state the model allows, with the node's events of the step in
//! one line each; the raw JSON stays behind `--raw` and in `--json`.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn raftcheck(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

/// Runs the simulator with a planted bug over `seed` and returns the run's
/// trace directory.
fn failing_run(dir: &Path, bug: &str, seed: u32) -> String {
    let d = dir.display().to_string();
    let seed = seed.to_string();
    let out = raftcheck(&[
        "sim",
        "--seeds",
        "1",
        "--start-seed",
        &seed,
        "--bug",
        bug,
        "--trace-dir",
        &d,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    format!("{d}/seed-{seed}")
}

/// The rejection of the one run under `run`, as `validate --json` reports it.
fn rejection(run: &str) -> Value {
    let out = raftcheck(&["validate", "--json", run]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["runs"][0]["rejection"].clone()
}

/// The trace line `line` of `file`, parsed.
fn trace_line(file: &str, line: u64) -> Value {
    let text = std::fs::read_to_string(file).unwrap();
    let l = text.lines().nth(line as usize - 1).unwrap();
    serde_json::from_str(l).unwrap()
}

fn text(run: &str, raw: bool) -> String {
    let mut args = vec!["validate"];
    if raw {
        args.push("--raw");
    }
    args.push(run);
    let out = raftcheck(&args);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn truncate_on_match_is_reported_at_the_truncate_not_at_the_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let run = failing_run(dir.path(), "truncate-on-match", 3);
    let r = rejection(&run);
    assert_eq!(r["rule"], "AppendEntriesRule");
    let at = r["at"]["line"].as_u64().unwrap();
    let culprit = &r["divergence"]["culprit"];
    let line = culprit["at"]["line"].as_u64().unwrap();
    // The truncate comes before the event where the checkpoint failed, and
    // it is the trace's own truncate of the rejected node.
    assert!(line < at, "{r}");
    let file = culprit["at"]["file"].as_str().unwrap();
    let event = trace_line(file, line);
    assert_eq!(event["type"], "truncate", "{event}");
    assert_eq!(event["node"], r["node"]);
    let from = event["from"].as_u64().unwrap();
    assert_eq!(culprit["summary"], format!("truncate from {from}"));
    assert_eq!(culprit["seq"], event["seq"]);
    let why = r["divergence"]["why"].as_str().unwrap();
    assert!(
        why.starts_with(&format!("truncates the entry at index {from}")),
        "{why}"
    );
    assert!(why.contains("the rule keeps it"), "{why}");
    // The step's events, the cause first, the culprit among them.
    let step = r["divergence"]["step"].as_array().unwrap();
    assert!(step[0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("receive append_entries from"));
    assert!(step.iter().any(|e| e["seq"] == event["seq"]));
    // The raw JSON is still there for programs.
    assert!(r["event"].is_object() && r["recent"].is_array());

    let out = text(&run, false);
    assert!(out.contains("AppendEntriesRule violated"), "{out}");
    assert!(
        out.contains(&format!(
            "  diverges: {file}:{line}: truncate from {from}\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "    line {line}  truncate from {from}  <- diverges\n"
        )),
        "{out}"
    );
    // One line per event: no raw JSON in the text report, but with --raw.
    assert!(!out.contains("{\"node\""), "{out}");
    let raw = text(&run, true);
    assert!(raw.contains("{\"node\""), "{raw}");
    assert!(raw.contains(&format!(
        "  diverges: {file}:{line}: truncate from {from}\n"
    )));
}

#[test]
fn a_commit_of_an_earlier_terms_entry_names_the_commit_and_both_terms() {
    let dir = tempfile::tempdir().unwrap();
    let run = failing_run(dir.path(), "commit-old-term", 5);
    let r = rejection(&run);
    assert_eq!(r["rule"], "CommitRule");
    let culprit = &r["divergence"]["culprit"];
    let line = culprit["at"]["line"].as_u64().unwrap();
    assert!(line <= r["at"]["line"].as_u64().unwrap(), "{r}");
    let file = culprit["at"]["file"].as_str().unwrap();
    let event = trace_line(file, line);
    assert_eq!(event["type"], "commit", "{event}");
    let index = event["index"].as_u64().unwrap();
    // The leader's term and the term of the entry it committed, from the
    // trace itself.
    let leader_term = event["post"]["term"].as_u64().unwrap();
    assert_eq!(event["post"]["role"], "leader");
    let entry_term = entry_term(file, event["node"].as_u64().unwrap(), index, line);
    assert!(entry_term < leader_term);
    let terms = format!(
        "the entry at index {index} is from term {entry_term} while the leader is in term \
         {leader_term}"
    );
    let actual = r["actual"].as_str().unwrap();
    assert!(
        actual.starts_with(&format!("commit index {index}")),
        "{actual}"
    );
    assert!(actual.contains(&terms), "{actual}");
    let why = r["divergence"]["why"].as_str().unwrap();
    assert!(why.contains(&terms), "{why}");
    assert!(why.contains("only entries of its own term"), "{why}");
    let out = text(&run, false);
    assert!(out.contains("CommitRule violated"), "{out}");
    assert!(
        out.contains(&format!("  diverges: {file}:{line}: commit {index}\n")),
        "{out}"
    );
}

/// The term of the entry at `index` in `node`'s log before line `before`:
/// the last append or init of the node that wrote it.
fn entry_term(file: &str, node: u64, index: u64, before: u64) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    let mut term = None;
    for l in text.lines().skip(1).take(before as usize - 2) {
        let e: Value = serde_json::from_str(l).unwrap();
        if e["node"].as_u64() != Some(node) {
            continue;
        }
        match e["type"].as_str() {
            Some("append") => {
                let first = e["index"].as_u64().unwrap();
                let es = e["entries"].as_array().unwrap();
                if first <= index && index < first + es.len() as u64 {
                    term = es[(index - first) as usize]["term"].as_u64();
                }
            }
            Some("truncate") if e["from"].as_u64().unwrap() <= index => term = None,
            _ => {}
        }
    }
    term.expect("the entry is in the trace")
}
