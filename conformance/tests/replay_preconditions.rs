//! Traces that break what the model's rules assume of their inputs get a
//! precise verdict from the replay: invalid, naming the rule, when the trace
//! shows a step the specification forbids; inconclusive, with the reason,
//! when the trace lacks what the rule needs. (Each of these traces used to
//! make a rule panic, or, for the AppendEntries past the leader's log, be
//! rejected without naming the replication rule.)

use std::path::PathBuf;

use raft_conformance::validate::{runs_in, validate_run, RunReport};

const MAX: u64 = u64::MAX;

/// A trace of nodes 1 and 2 that observes `events`, then `lines`.
fn trace(events: &str, lines: &[String]) -> String {
    let mut text = format!(
        r#"{{"type":"header","format":"raft-trace/1","implementation":"test","nodes":[1,2],"observes":{{"events":[{events}],"state":[],"entries":"full"}},"network":{{"loss":true,"duplication":false,"reorder":true}}}}"#
    );
    text.push('\n');
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text
}

const ALL: &str =
    r#""init","role","timeout","send","receive","append","truncate","apply","snapshot""#;

fn validate(text: &str) -> RunReport {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("t.ndjson");
    std::fs::write(&path, text).unwrap();
    let runs = runs_in(&path).unwrap();
    validate_run(&runs[0]).unwrap()
}

fn inconclusive(report: &RunReport) -> &str {
    if let Some(r) = &report.rejection {
        panic!("expected an inconclusive run, got a rejection:\n{r}");
    }
    report
        .inconclusive
        .as_deref()
        .expect("expected an inconclusive run, got a valid one")
}

fn boot(node: u64, seq: u64) -> String {
    format!(
        r#"{{"type":"init","node":{node},"seq":{seq},"reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0}}"#
    )
}

/// A message of `rpc_fields` (the `rpc` and its fields, as JSON members).
fn msg(id: u64, from: u64, to: u64, term: u64, rpc_fields: &str) -> String {
    format!(r#"{{"id":{id},"from":{from},"to":{to},"term":{term},{rpc_fields}}}"#)
}

fn send(node: u64, seq: u64, m: &str) -> String {
    format!(r#"{{"type":"send","node":{node},"seq":{seq},"msg":{m}}}"#)
}

fn receive(node: u64, seq: u64, m: &str) -> String {
    format!(r#"{{"type":"receive","node":{node},"seq":{seq},"msg":{m}}}"#)
}

/// Node 1 boots and wins the election of term 1 with node 2's vote. Node 2
/// has no init, so its events are not replayed: what it sends reaches node
/// 1 as the trace shows it. Node 1's next seq is 8, node 2's is 2.
fn node_1_leader() -> Vec<String> {
    let rv = msg(
        1,
        1,
        2,
        1,
        r#""rpc":"request_vote","last_index":0,"last_term":0"#,
    );
    let vote = msg(1, 2, 1, 1, r#""rpc":"request_vote_reply","granted":true"#);
    vec![
        boot(1, 1),
        r#"{"type":"timeout","node":1,"seq":2,"timer":"election"}"#.into(),
        r#"{"type":"role","node":1,"seq":3,"role":"candidate","term":1,"reason":"election_timeout"}"#.into(),
        send(1, 4, &rv),
        send(2, 1, &vote),
        receive(1, 5, &vote),
        r#"{"type":"role","node":1,"seq":6,"role":"leader","term":1,"reason":"won_election"}"#.into(),
    ]
}

#[test]
fn the_leader_prefix_is_valid() {
    let report = validate(&trace(ALL, &node_1_leader()));
    assert!(report.rejection.is_none(), "{}", report.rejection.unwrap());
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
    assert!(report.replay.steps >= 3, "{:?}", report.replay);
}

/// `elections::timeout` starts term + 1: a node in term 2^64 - 1 has none.
#[test]
fn a_term_without_successor_is_inconclusive() {
    let lines = vec![
        format!(
            r#"{{"type":"init","node":1,"seq":1,"reason":"restart","term":{MAX},"vote":null,"last_index":0,"last_term":0}}"#
        ),
        r#"{"type":"timeout","node":1,"seq":2,"timer":"election"}"#.into(),
    ];
    let report = validate(&trace(ALL, &lines));
    let why = inconclusive(&report);
    assert!(
        why.starts_with(&format!(
            "node 1: init.term {MAX} is beyond the terms and indexes the model's rules compute with"
        )),
        "{why}"
    );
    assert!(why.ends_with("at seq 1"), "{why}");
}

/// `replication::handle_append_entries_reply` raises nextIndex to
/// match_index + 1.
#[test]
fn a_match_index_without_successor_is_inconclusive() {
    let mut lines = node_1_leader();
    let ack = msg(
        2,
        2,
        1,
        1,
        &format!(r#""rpc":"append_entries_reply","success":true,"match_index":{MAX}"#),
    );
    lines.push(send(2, 2, &ack));
    lines.push(receive(1, 8, &ack));
    let report = validate(&trace(ALL, &lines));
    let why = inconclusive(&report);
    assert_eq!(
        why,
        format!(
            "node 1: msg.match_index {MAX} is beyond the terms and indexes the model's rules \
             compute with (at most 2^62) at seq 8"
        )
    );
}

/// `replication::append_entries` rebuilds an AppendEntries from nextIndex =
/// prev_index + 1, which must be in the leader's log: a leader with an
/// empty log sending prev_index 5 breaks the replication rule.
#[test]
fn an_append_entries_past_the_leaders_log_is_invalid() {
    let mut lines = node_1_leader();
    let ae = msg(
        3,
        1,
        2,
        1,
        r#""rpc":"append_entries","prev_index":5,"prev_term":1,"commit":0,"entries":[]"#,
    );
    lines.push(send(1, 8, &ae));
    let report = validate(&trace(ALL, &lines));
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
    let r = report.rejection.expect("a rejection");
    assert_eq!(r.rule, "ReplicationRule", "{r}");
    assert!(
        r.expected.starts_with(
            "an AppendEntries whose prev_index is at most 0, the leader's last log index"
        ),
        "{r}"
    );
    assert_eq!(r.actual, "prev_index 5");
    assert_eq!(r.node, 1);
}

/// The same message in the leader's term but with prev_index at the end of
/// its log is a heartbeat the replication rule allows.
#[test]
fn an_append_entries_at_the_end_of_the_leaders_log_is_valid() {
    let mut lines = node_1_leader();
    let ae = msg(
        3,
        1,
        2,
        1,
        r#""rpc":"append_entries","prev_index":0,"prev_term":0,"commit":0,"entries":[]"#,
    );
    lines.push(send(1, 8, &ae));
    let report = validate(&trace(ALL, &lines));
    assert!(report.rejection.is_none(), "{}", report.rejection.unwrap());
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
}

/// The replay's view of the log after a truncation ends at from - 1; no
/// rule truncates from index 0. (The invariant checks let it through: node
/// 1's state is uncertain after the gap.)
#[test]
fn a_truncation_from_index_0_is_invalid() {
    let ae = msg(
        1,
        2,
        1,
        1,
        r#""rpc":"append_entries","prev_index":0,"prev_term":0,"commit":0,"entries":[]"#,
    );
    let lines = vec![
        r#"{"type":"gap","node":1,"seq":1}"#.into(),
        boot(1, 2),
        send(2, 1, &ae),
        receive(1, 3, &ae),
        r#"{"type":"truncate","node":1,"seq":4,"from":0}"#.into(),
    ];
    let report = validate(&trace(ALL, &lines));
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
    let r = report.rejection.expect("a rejection");
    assert_eq!(r.rule, "AppendEntriesRule", "{r}");
    assert_eq!(
        r.expected,
        "a truncation from index 1 or above (log indexes start at 1)"
    );
    assert_eq!(r.actual, "truncate from index 0");
    assert_eq!(r.node, 1);
}

/// Node 1 appends entry 1 from node 2's AppendEntries, applies it and
/// compacts it into a snapshot, but the trace (which does not observe
/// commits) never shows it committed: the model's commit index stays 0,
/// below the snapshot, so `replication::commit_to` cannot commit entry 1
/// (it is compacted) when the next AppendEntries carries commit 1.
fn snapshot_above_commit() -> Vec<String> {
    let entry = r#"{"term":1,"data":{"kind":"noop"}}"#;
    let ae1 = msg(
        1,
        2,
        1,
        1,
        &format!(
            r#""rpc":"append_entries","prev_index":0,"prev_term":0,"commit":0,"entries":[{entry}]"#
        ),
    );
    vec![
        boot(1, 1),
        send(2, 1, &ae1),
        receive(1, 2, &ae1),
        format!(r#"{{"type":"append","node":1,"seq":3,"index":1,"entries":[{entry}]}}"#),
        r#"{"type":"apply","node":1,"seq":4,"index":1,"term":1}"#.into(),
        r#"{"type":"snapshot","node":1,"seq":5,"index":1,"term":1}"#.into(),
    ]
}

#[test]
fn a_commit_below_the_snapshot_is_inconclusive() {
    let mut lines = snapshot_above_commit();
    let ae2 = msg(
        2,
        2,
        1,
        1,
        r#""rpc":"append_entries","prev_index":1,"prev_term":1,"commit":1,"entries":[]"#,
    );
    lines.push(send(2, 2, &ae2));
    lines.push(receive(1, 6, &ae2));
    let report = validate(&trace(ALL, &lines));
    let why = inconclusive(&report);
    assert!(
        why.starts_with(
            "node 1: AppendEntriesRule cannot be applied at seq 6: the node's snapshot ends at \
             index 1, above the commit index 0 the trace shows"
        ),
        "{why}"
    );
}

/// An AppendEntries that cannot commit anything needs no commit below the
/// snapshot: the replay goes on.
#[test]
fn a_commit_below_the_snapshot_is_harmless_without_a_commit() {
    let mut lines = snapshot_above_commit();
    let ae2 = msg(
        2,
        2,
        1,
        1,
        r#""rpc":"append_entries","prev_index":1,"prev_term":1,"commit":0,"entries":[]"#,
    );
    lines.push(send(2, 2, &ae2));
    lines.push(receive(1, 6, &ae2));
    let report = validate(&trace(ALL, &lines));
    assert!(report.rejection.is_none(), "{}", report.rejection.unwrap());
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
}
