//! `raftcheck validate --format-only`: the examples pass, and every kind of
//! malformed input exits 2 with the file and line named.

use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

const HEADER: &str = r#"{"type":"header","format":"raft-trace/1","implementation":"test","nodes":[1,2,3],"observes":{"events":["commit"]}}"#;
const COMMIT: &str = r#"{"type":"commit","node":1,"seq":1,"index":1}"#;

fn raftcheck() -> Command {
    Command::cargo_bin("raftcheck").unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_examples_are_valid() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    raftcheck()
        .args(["validate", "--format-only"])
        .args(&files)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("snapshot-install.ndjson: ok"));
}

/// Runs validate on one file and checks exit 2 and `file:line: <message>`.
fn rejects(name: &str, bytes: &[u8], line_and_message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, bytes);
    let expected = format!("{}{}", path.display(), line_and_message);
    raftcheck()
        .args(["validate", "--format-only"])
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(expected))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn truncated_last_line() {
    let input = format!("{HEADER}\n{COMMIT}\n{{\"type\":\"commit\",\"node\":1,\"se");
    rejects("t.ndjson", input.as_bytes(), ":3: truncated last line");
}

#[test]
fn a_line_that_is_not_json() {
    let input = format!("{HEADER}\n{COMMIT}\nthis is not json\n");
    rejects("t.ndjson", input.as_bytes(), ":3: not valid JSON");
}

#[test]
fn wrong_field_type() {
    let input = format!("{HEADER}\n{{\"type\":\"commit\",\"node\":1,\"seq\":1,\"index\":\"x\"}}\n");
    rejects(
        "t.ndjson",
        input.as_bytes(),
        ":2: field \"index\": expected an unsigned integer, found string \"x\"",
    );
}

#[test]
fn wrong_field_type_inside_a_message() {
    let line = r#"{"type":"send","node":1,"seq":1,"msg":{"id":1,"from":1,"to":2,"term":"x","rpc":"request_vote","last_index":0,"last_term":0}}"#;
    let input = format!("{HEADER}\n{line}\n");
    rejects(
        "t.ndjson",
        input.as_bytes(),
        ":2: field \"msg.term\": expected an unsigned integer",
    );
}

#[test]
fn unknown_event() {
    let input = format!("{HEADER}\n{{\"type\":\"vote\",\"node\":1,\"seq\":1}}\n");
    rejects(
        "t.ndjson",
        input.as_bytes(),
        ":2: field \"type\": unknown event type \"vote\"",
    );
}

#[test]
fn missing_required_field() {
    let input = format!("{HEADER}\n{{\"type\":\"commit\",\"node\":1,\"seq\":1}}\n");
    rejects(
        "t.ndjson",
        input.as_bytes(),
        ":2: field \"index\": missing field",
    );
}

#[test]
fn unknown_schema_version() {
    let input = HEADER.replace("raft-trace/1", "raft-trace/9");
    rejects(
        "t.ndjson",
        input.as_bytes(),
        ":1: field \"format\": unsupported format \"raft-trace/9\"",
    );
}

#[test]
fn non_utf8_bytes() {
    let mut input = format!("{HEADER}\n{COMMIT}\n").into_bytes();
    input.extend_from_slice(b"{\"type\":\"commit\",\"node\":1,\"seq\":2,\"index\":\"\xff\xfe\"}\n");
    rejects("t.ndjson", &input, ":3: not valid UTF-8");
}

#[test]
fn empty_file() {
    rejects("t.ndjson", b"", ": empty file");
}

#[test]
fn unknown_node_and_seq_going_backwards() {
    let input = format!("{HEADER}\n{{\"type\":\"commit\",\"node\":7,\"seq\":1,\"index\":1}}\n");
    rejects(
        "t.ndjson",
        input.as_bytes(),
        ":2: field \"node\": node 7 is not one of the header's nodes",
    );
    let input = format!("{HEADER}\n{COMMIT}\n{COMMIT}\n");
    rejects(
        "t.ndjson",
        input.as_bytes(),
        ":3: field \"seq\": 1 does not increase",
    );
}

#[test]
fn a_50_megabyte_line_is_refused_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.ndjson");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "{HEADER}").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    f.write_all(b"{\"type\":\"gap\",\"node\":1,\"seq\":1,\"reason\":\"")
        .unwrap();
    for _ in 0..50 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\"}\n").unwrap();
    drop(f);
    let output = raftcheck()
        .args(["validate", "--format-only"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: line is longer than the limit",
            path.display()
        )),
        "{stderr}"
    );
}

#[test]
fn json_output_names_the_failing_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.ndjson",
        format!("{HEADER}\n{COMMIT}\n").as_bytes(),
    );
    let bad = write(
        dir.path(),
        "bad.ndjson",
        format!("{HEADER}\nnope\n").as_bytes(),
    );
    let output = raftcheck()
        .args(["validate", "--format-only", "--json"])
        .arg(&good)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["verdict"], "invalid-format");
    assert_eq!(v["files"][0]["valid"], true);
    assert_eq!(v["files"][0]["records"], 1);
    assert_eq!(v["files"][1]["valid"], false);
    assert_eq!(v["files"][1]["error"]["line"], 2);
}

#[test]
fn wrong_flags_exit_2() {
    raftcheck().args(["validate", "--bogus"]).assert().code(2);
    raftcheck().arg("no-such-command").assert().code(2);
    raftcheck()
        .args(["validate", "--format-only", "/no/such/file.ndjson"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/no/such/file.ndjson: cannot open",
        ));
}

/// `null` was accepted for typed optional fields (`time`, `post`, ...)
/// although schema.json does not allow it: the reader and the schema agree
/// now, and the error names the field. A null vote or leader stays valid.
#[test]
fn null_where_the_schema_has_none_is_bad_input() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/outside-findings");
    Command::cargo_bin("raftcheck")
        .unwrap()
        .arg("validate")
        .arg(data.join("null-min.ndjson"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("null-min.ndjson:2"))
        .stderr(predicate::str::contains("null is not a value"));
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"type":"header","format":"raft-trace/1","implementation":"x","nodes":[1],"observes":{"events":["init"]}}"#;
    for (line, field) in [
        (
            r#"{"type":"init","node":1,"seq":1,"reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0,"post":null}"#,
            "post",
        ),
        (
            r#"{"type":"init","node":1,"seq":1,"reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0,"post":{"term":null}}"#,
            "post.term",
        ),
    ] {
        let path = dir.path().join("t.ndjson");
        std::fs::write(&path, format!("{header}\n{line}\n")).unwrap();
        Command::cargo_bin("raftcheck")
            .unwrap()
            .args(["validate", "--format-only"])
            .arg(&path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(field));
    }
    let ok = r#"{"type":"init","node":1,"seq":1,"reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0,"post":{"vote":null,"leader":null}}"#;
    let path = dir.path().join("ok.ndjson");
    std::fs::write(&path, format!("{header}\n{ok}\n")).unwrap();
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(["validate", "--format-only"])
        .arg(&path)
        .assert()
        .code(0);
}
