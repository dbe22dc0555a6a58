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
