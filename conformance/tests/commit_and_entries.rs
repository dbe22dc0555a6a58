//! Feature commit-any-message and entries of every kind: the example trace
//! `commit-any-message-entry-kinds.ndjson` is valid, and each mutation of it
//! that breaks a rule is rejected naming the rule; the two outside findings
//! of applies that do not match the committed entry are rejected.

use std::path::{Path, PathBuf};

use raft_conformance::validate::{runs_in, validate_run, RunReport};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example() -> String {
    std::fs::read_to_string(root().join("traces/examples/commit-any-message-entry-kinds.ndjson"))
        .unwrap()
}

fn validate_file(path: &Path) -> RunReport {
    let runs = runs_in(path).unwrap();
    validate_run(&runs[0]).unwrap()
}

fn validate(text: &str) -> RunReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ndjson");
    std::fs::write(&path, text).unwrap();
    validate_file(&path)
}

/// The rule that rejected the run, with its explanation.
fn rejected(report: &RunReport) -> (&'static str, String) {
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
    let r = report.rejection.as_ref().expect("a rejection");
    (r.rule, format!("{} / {}", r.expected, r.actual))
}

/// `text` with `from` replaced by `to`, which must occur.
fn mutate(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from} not in the example");
    text.replace(from, to)
}

#[test]
fn the_example_is_valid() {
    let report = validate(&example());
    assert!(report.rejection.is_none(), "{}", report.rejection.unwrap());
    assert!(report.inconclusive.is_none());
}

#[test]
fn a_commit_learned_without_the_feature_is_rejected() {
    let text = mutate(
        &example(),
        r#""features":["commit-any-message"]"#,
        r#""features":[]"#,
    );
    let (rule, why) = rejected(&validate(&text));
    assert_eq!(rule, "CommitRule", "{why}");
    assert!(why.contains("commit-any-message"), "{why}");
}

#[test]
fn a_carried_commit_of_the_wrong_term_is_rejected() {
    // Node 1's grant in term 2 claims its entry at 2 has term 2.
    let text = mutate(
        &example(),
        r#""granted":true,"commit":2,"commit_term":1"#,
        r#""granted":true,"commit":2,"commit_term":2"#,
    );
    let (rule, why) = rejected(&validate(&text));
    assert_eq!(rule, "CommitRule", "{why}");
    assert!(why.contains("commit_term 2"), "{why}");
}

#[test]
fn a_carried_commit_beyond_the_senders_is_rejected() {
    // Node 3's campaign claims a commit it does not have.
    let text = mutate(
        &example(),
        r#""rpc":"request_vote","last_index":0,"last_term":0,"commit":0,"commit_term":0}}"#,
        r#""rpc":"request_vote","last_index":0,"last_term":0,"commit":2,"commit_term":1}}"#,
    );
    let (rule, why) = rejected(&validate(&text));
    assert_eq!(rule, "CommitRule", "{why}");
}

#[test]
fn an_apply_of_a_config_entry_as_a_command_is_rejected() {
    let text = mutate(
        &example(),
        r#""index":1,"term":1,"post":{"term":2,"#,
        r#""index":1,"term":1,"client":1,"req":1,"post":{"term":2,"#,
    );
    let (rule, why) = rejected(&validate(&text));
    assert_eq!(rule, "ApplyRule", "{why}");
    assert!(
        why.contains("index 1") && why.contains("configuration"),
        "{why}"
    );
}

#[test]
fn a_follower_appending_other_data_is_rejected() {
    // Node 2 logs its copy of the configuration entry with other data.
    let mut lines: Vec<String> = example().lines().map(String::from).collect();
    let i = lines
        .iter()
        .position(|l| l.contains(r#""node":2,"#) && l.contains(r#""type":"append""#))
        .unwrap();
    lines[i] = mutate(&lines[i], r#""voters":[1,2,3]"#, r#""voters":[1,2]"#);
    let (rule, why) = rejected(&validate(&(lines.join("\n") + "\n")));
    assert_eq!(rule, "AppendEntriesRule", "{why}");
    assert!(why.contains("entry at index 1"), "{why}");
}

#[test]
fn the_outside_findings_of_mismatched_applies_are_rejected() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/outside-findings");
    for (file, index) in [
        ("apply-noop-as-command.ndjson", "index 1"),
        ("apply-command-as-noop.ndjson", "index 2"),
    ] {
        let (rule, why) = rejected(&validate_file(&dir.join(file)));
        assert_eq!(rule, "ApplyRule", "{file}: {why}");
        assert!(why.contains(index), "{file}: {why}");
    }
}
