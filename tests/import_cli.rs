//! `raftcheck import etcd-raft`: etcd-io/raft's published traces convert and
//! validate up to their first membership change, a planted fault is caught,
//! and malformed input exits 2 naming the file, line and field.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn raftcheck() -> Command {
    Command::cargo_bin("raftcheck").unwrap()
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/etcd-raft-traces")
        .join(name)
}

fn import(input: &Path, out: &Path) -> assert_cmd::assert::Assert {
    raftcheck()
        .args(["import", "etcd-raft"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .assert()
}

#[test]
fn the_three_node_trace_converts_and_validates_up_to_its_membership_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pr226.ndjson");
    import(&data("example-pr226.ndjson"), &out)
        .code(0)
        .stdout(predicate::str::contains("converted lines 1-251 of 386"))
        .stdout(predicate::str::contains(
            ":252: stopped: node 3 applies a configuration change from [1, 2, 3] to [1, 2]",
        ));
    let text = std::fs::read_to_string(&out).unwrap();
    let header = text.lines().next().unwrap();
    // The file logs Advance: durability is shown, and declared.
    assert!(header.contains("\"persist\""), "{header}");
    assert!(header.contains("\"entries\":\"terms\""), "{header}");
    assert_eq!(text.matches("\"type\":\"gap\"").count(), 3);
    raftcheck()
        .arg("validate")
        .arg(&out)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("valid ("))
        .stdout(predicate::str::contains(
            "node 3 not replayed at the end: a gap was declared: etcd line 252",
        ));
}

#[test]
fn the_ten_node_trace_converts_up_to_its_first_membership_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("example.ndjson");
    import(&data("example.ndjson"), &out)
        .code(0)
        .stdout(predicate::str::contains("converted lines 1-1247 of 4888"))
        .stdout(predicate::str::contains(":1248: stopped: node 2 applies"))
        .stderr(predicate::str::contains("persist is not declared"));
    let text = std::fs::read_to_string(&out).unwrap();
    let header = text.lines().next().unwrap();
    assert!(!header.contains("\"persist\""), "{header}");
    assert!(header.contains("\"nodes\":[1,2,3,4,5]"), "{header}");
    raftcheck()
        .arg("validate")
        .arg(&out)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "node 1 not replayed at the end: a gap was declared: etcd line 1248",
        ));
}

/// The 3-node trace with `lines` replaced (1-based line, new text).
fn edited(lines: &[(usize, String)]) -> String {
    let text = std::fs::read_to_string(data("example-pr226.ndjson")).unwrap();
    let mut out: Vec<String> = text.lines().map(str::to_string).collect();
    for (k, new) in lines {
        out[k - 1] = new.clone();
    }
    out.join("\n") + "\n"
}

fn line(k: usize) -> String {
    let text = std::fs::read_to_string(data("example-pr226.ndjson")).unwrap();
    text.lines().nth(k - 1).unwrap().to_string()
}

#[test]
fn a_planted_early_commit_is_rejected() {
    // Line 83: leader 3 commits index 4 once node 2 acknowledged it. Planted:
    // it commits index 5 there (and shows 5 until line 112, where node 2's
    // acknowledgement of 5 arrives), while only its own log holds entry 5.
    let mut lines = Vec::new();
    for k in 83..112 {
        let l = line(k);
        if l.contains("\"nid\":\"3\"") {
            let planted = l.replace(
                "\"state\":{\"term\":2,\"vote\":\"3\",\"commit\":4}",
                "\"state\":{\"term\":2,\"vote\":\"3\",\"commit\":5}",
            );
            assert_ne!(planted, l, "line {k}");
            lines.push((k, planted));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("early-commit.etcd.ndjson");
    std::fs::write(&bad, edited(&lines)).unwrap();
    let out = dir.path().join("early-commit.ndjson");
    import(&bad, &out).code(0);
    raftcheck()
        .arg("validate")
        .arg(&out)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("INVALID"))
        .stdout(predicate::str::contains("CommitRule"));
}

/// Converts `text` and expects exit 2 with `FILE:LINE: field "F": ...`.
fn rejects(text: &str, line_and_field: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.etcd.ndjson");
    std::fs::write(&path, text).unwrap();
    import(&path, &dir.path().join("out.ndjson"))
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{}{line_and_field}",
            path.display()
        )))
        .stderr(predicate::str::contains(message))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn a_truncated_line_is_bad_input() {
    let text = edited(&[]);
    let cut: String = text
        .lines()
        .take(5)
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &line(6)[..60];
    rejects(&cut, ":6: ", "cut short");
}

#[test]
fn a_missing_field_is_bad_input() {
    let l = line(16);
    assert!(l.contains("\"log\":3,"), "{l}");
    rejects(
        &edited(&[(16, l.replace("\"log\":3,", ""))]),
        ":16: field \"event.log\": ",
        "missing field",
    );
}

#[test]
fn an_unknown_event_is_bad_input() {
    let l = line(16);
    rejects(
        &edited(&[(16, l.replace("\"name\":\"Ready\"", "\"name\":\"Readyy\""))]),
        ":16: field \"event.name\": ",
        "unknown etcd trace event \"Readyy\"",
    );
}

#[test]
fn a_receive_without_a_send_is_bad_input() {
    // Line 36: node 1 receives node 3's vote request (index 3); planted: a
    // request for index 2 that nobody sent.
    let l = line(36);
    assert!(l.contains("\"index\":3,"), "{l}");
    rejects(
        &edited(&[(36, l.replace("\"index\":3,", "\"index\":2,"))]),
        ":36: field \"event.msg\": ",
        "no earlier send of this message",
    );
}
