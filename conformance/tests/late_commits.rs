//! A node may commit later than the model's rules allow it to (after its own
//! write is durable, say), and then apply and compact what it committed in
//! the same step. The replay keeps its candidate state in step: the late
//! commit stays acceptable through the snapshot, for a cluster of one (whose
//! leader commits what it appends) and for larger ones (whose leader commits
//! on a follower's acknowledgement), while a commit the rules never reached
//! is still rejected.

use std::path::PathBuf;

use raft_conformance::validate::{runs_in, validate_run, RunReport};

/// A trace of `nodes` that observes `events`, then `lines`.
fn trace(nodes: &str, events: &str, lines: &[String]) -> String {
    let mut text = format!(
        r#"{{"type":"header","format":"raft-trace/1","implementation":"test","nodes":[{nodes}],"observes":{{"events":[{events}],"state":[],"entries":"full"}},"network":{{"loss":true,"duplication":false,"reorder":true}}}}"#
    );
    text.push('\n');
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text
}

const ALL: &str =
    r#""init","role","timeout","send","receive","append","truncate","commit","apply","snapshot""#;

fn validate(text: &str) -> RunReport {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("t.ndjson");
    std::fs::write(&path, text).unwrap();
    let runs = runs_in(&path).unwrap();
    validate_run(&runs[0]).unwrap()
}

fn assert_valid(report: &RunReport) {
    if let Some(r) = &report.rejection {
        panic!("expected a valid run, got a rejection:\n{r}");
    }
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
}

fn line(node: u64, seq: u64, rest: &str) -> String {
    format!(r#"{{"node":{node},"seq":{seq},{rest}}}"#)
}

fn boot(node: u64, seq: u64) -> String {
    line(
        node,
        seq,
        r#""type":"init","reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0"#,
    )
}

fn heartbeat(node: u64, seq: u64, commit: u64) -> String {
    line(
        node,
        seq,
        &format!(r#""type":"timeout","timer":"heartbeat","post":{{"commit":{commit}}}"#),
    )
}

const ENTRY: &str = r#"{"term":1,"data":{"kind":"command","client":1,"req":1,"op":{"f":"write","key":"k","value":"v"}}}"#;

/// A message of `rpc_fields` (the `rpc` and its fields, as JSON members).
fn msg(id: u64, from: u64, to: u64, term: u64, rpc_fields: &str) -> String {
    format!(r#"{{"id":{id},"from":{from},"to":{to},"term":{term},{rpc_fields}}}"#)
}

/// Node 1 commits entry 1 (of term 1) in the step of a heartbeat timeout
/// (seq `seq`), after its write, applies and compacts it, and a later
/// heartbeat shows the commit.
fn commit_apply_snapshot(seq: u64) -> Vec<String> {
    vec![
        heartbeat(1, seq, 0),
        line(
            1,
            seq + 1,
            r#""type":"persist","term":1,"vote":1,"last_index":1"#,
        ),
        line(1, seq + 2, r#""type":"commit","index":1"#),
        line(
            1,
            seq + 3,
            r#""type":"apply","index":1,"term":1,"client":1,"req":1"#,
        ),
        line(1, seq + 4, r#""type":"snapshot","index":1,"term":1"#),
        heartbeat(1, seq + 5, 1),
    ]
}

/// A cluster of one: node 1 elects itself and appends a client command,
/// which the model commits at once (its own log is a quorum); the node
/// shows commit 0 until its heartbeat step, where it commits, applies and
/// compacts the entry. (Found by `raftcheck sim --nodes 1`: the replay
/// compacted the entry away below the candidate's commit index, and then
/// could not replay the commit.)
#[test]
fn a_single_leader_commits_applies_and_compacts_its_entry_late() {
    let mut lines = vec![
        boot(1, 1),
        line(1, 2, r#""type":"timeout","timer":"election""#),
        line(
            1,
            3,
            r#""type":"role","role":"candidate","term":1,"reason":"election_timeout""#,
        ),
        line(
            1,
            4,
            r#""type":"role","role":"leader","term":1,"reason":"won_election""#,
        ),
        line(
            1,
            5,
            &format!(r#""type":"append","index":1,"entries":[{ENTRY}],"post":{{"commit":0}}"#),
        ),
    ];
    lines.extend(commit_apply_snapshot(6));
    assert_valid(&validate(&trace("1", ALL, &lines)));
}

/// Node 1 leads nodes 1 and 2 in term 1 and sends its client command to
/// node 2 (node 2 has no init, so only node 1 is replayed). Node 1's next
/// seq is 10, node 2's is 3.
fn two_node_leader_with_entry() -> Vec<String> {
    let rv = msg(
        1,
        1,
        2,
        1,
        r#""rpc":"request_vote","last_index":0,"last_term":0"#,
    );
    let vote = msg(1, 2, 1, 1, r#""rpc":"request_vote_reply","granted":true"#);
    let ae = msg(
        2,
        1,
        2,
        1,
        &format!(
            r#""rpc":"append_entries","prev_index":0,"prev_term":0,"commit":0,"entries":[{ENTRY}]"#
        ),
    );
    vec![
        boot(1, 1),
        line(1, 2, r#""type":"timeout","timer":"election""#),
        line(
            1,
            3,
            r#""type":"role","role":"candidate","term":1,"reason":"election_timeout""#,
        ),
        line(1, 4, &format!(r#""type":"send","msg":{rv}"#)),
        line(2, 1, &format!(r#""type":"send","msg":{vote}"#)),
        line(1, 5, &format!(r#""type":"receive","msg":{vote}"#)),
        line(
            1,
            6,
            r#""type":"role","role":"leader","term":1,"reason":"won_election""#,
        ),
        line(
            1,
            7,
            &format!(r#""type":"append","index":1,"entries":[{ENTRY}],"post":{{"commit":0}}"#),
        ),
        line(1, 8, &format!(r#""type":"send","msg":{ae}"#)),
        line(2, 2, &format!(r#""type":"receive","msg":{ae}"#)),
    ]
}

/// Two nodes: node 2's acknowledgement reaches the leader before its own
/// write is durable; the model commits entry 1 on the acknowledgement, the
/// node only in its next step, where it also applies and compacts it.
#[test]
fn a_leader_of_two_commits_applies_and_compacts_an_acknowledged_entry_late() {
    let mut lines = two_node_leader_with_entry();
    let ack = msg(
        2,
        2,
        1,
        1,
        r#""rpc":"append_entries_reply","success":true,"match_index":1"#,
    );
    lines.push(line(2, 3, &format!(r#""type":"send","msg":{ack}"#)));
    lines.push(line(1, 9, &format!(r#""type":"receive","msg":{ack}"#)));
    lines.extend(commit_apply_snapshot(10));
    assert_valid(&validate(&trace("1,2", ALL, &lines)));
}

/// The same leader without the acknowledgement: entry 1 is on one node of
/// two, so committing (and compacting) it breaks the commit rule.
#[test]
fn a_leader_of_two_may_not_commit_an_unacknowledged_entry_before_a_snapshot() {
    let mut lines = two_node_leader_with_entry();
    lines.extend(commit_apply_snapshot(9));
    let report = validate(&trace("1,2", ALL, &lines));
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
    let r = report.rejection.expect("a rejection");
    assert_eq!(r.rule, "CommitRule", "{r}");
    assert_eq!(r.actual, "commit index 1", "{r}");
    assert_eq!(r.node, 1);
}
