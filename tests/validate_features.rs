//! `raftcheck validate` with features (behaviours beyond Figure 2): a
//! correct raft-rs run that Figure 2 alone rejects is valid once the trace's
//! header (or `--features`) says the implementation gives up lost
//! elections; unknown feature names are bad input.

use std::path::PathBuf;
use std::process::Output;

fn raftcheck(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_raftcheck"))
        .args(args)
        .output()
        .unwrap()
}

fn raft_rs_trace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/raft-rs/lost-election-ordered-seed10.ndjson")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

#[test]
fn figure_2_alone_rejects_a_lost_election() {
    let out = raftcheck(&["validate", raft_rs_trace().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(":41: node 3: VoteCountingRule violated"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_lost_election_feature_on_the_command_line_accepts_it() {
    let path = raft_rs_trace();
    let out = raftcheck(&[
        "validate",
        "--features",
        "lost-election",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 of 1 runs valid"), "{}", text(&out));
}

/// The same run with the feature declared in its header.
#[test]
fn the_lost_election_feature_in_the_header_accepts_it() {
    let original = std::fs::read_to_string(raft_rs_trace()).unwrap();
    let (header, rest) = original.split_once('\n').unwrap();
    let mut h: serde_json::Value = serde_json::from_str(header).unwrap();
    h["features"] = serde_json::json!(["lost-election"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.ndjson");
    std::fs::write(&file, format!("{h}\n{rest}")).unwrap();
    let out = raftcheck(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A feature the specification does not know: bad input naming the field.
    h["features"] = serde_json::json!(["lost-election", "telepathy"]);
    std::fs::write(&file, format!("{h}\n{rest}")).unwrap();
    let out = raftcheck(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(":1: field \"features\"") && t.contains("telepathy"),
        "{t}"
    );
}

#[test]
fn an_unknown_feature_flag_is_bad_usage() {
    let out = raftcheck(&[
        "validate",
        "--features",
        "pre-vote-maybe",
        raft_rs_trace().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--features"), "{}", text(&out));
}
