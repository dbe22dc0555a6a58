//! Well-formed but hostile traces get a clear verdict from the global
//! invariant checks, which run before the replay: invalid, naming the rule,
//! when the trace shows a step Raft forbids; inconclusive, with the reason,
//! when its numbers are absurd; and large but possible logs are checked
//! without holding one slot per unlisted entry. (Each of these traces used
//! to crash the checks: an arithmetic overflow or underflow, an allocation
//! of 2^40 slots, or a loop over 2^61 indexes.)

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use raft_conformance::validate::{runs_in, validate_run, RunReport};

const MAX: u64 = u64::MAX;
const TWO_40: u64 = 1 << 40;
const TWO_61: u64 = 1 << 61;

/// A trace of node 1 whose entries are shown as `entries` (`full` or
/// `count`), then `lines`. The header declares no receives, so the replay
/// is off and the invariant checks speak alone (the replay has checks of
/// its own for absurd numbers; here they would stop the run first).
fn trace(entries: &str, lines: &[String]) -> String {
    let mut text = format!(
        r#"{{"type":"header","format":"raft-trace/1","implementation":"test","nodes":[1],"observes":{{"events":["init","role","timeout","send","append","truncate","commit","apply","snapshot","install"],"state":[],"entries":"{entries}"}}}}"#
    );
    text.push('\n');
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    text
}

/// Validates `text` on a thread of its own, so that a check that loops
/// forever fails the test instead of hanging it.
fn validate(text: String) -> RunReport {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("t.ndjson");
        std::fs::write(&path, text).unwrap();
        let runs = runs_in(&path).unwrap();
        let _ = tx.send(validate_run(&runs[0]).unwrap());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the validation finishes within a minute")
}

fn line(seq: u64, rest: &str) -> String {
    format!(r#"{{"node":1,"seq":{seq},{rest}}}"#)
}

fn assert_valid(report: &RunReport) {
    if let Some(r) = &report.rejection {
        panic!("expected a valid run, got a rejection:\n{r}");
    }
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
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

fn rejection(report: &RunReport) -> &raft_conformance::validate::Rejection {
    assert!(report.inconclusive.is_none(), "{:?}", report.inconclusive);
    report.rejection.as_ref().expect("a rejection")
}

/// The first event of node 1 is an append at index 0: the trace starts in
/// the middle of the run, so the node's log is unknown, but no log has an
/// entry at index 0. (`a.index - 1` underflowed.)
#[test]
fn an_append_at_index_0_is_invalid() {
    let lines = vec![line(
        1,
        r#""type":"append","index":0,"entries":[{"term":1}]"#,
    )];
    let report = validate(trace("full", &lines));
    let r = rejection(&report);
    assert_eq!(r.rule, "AppendAtLogEnd", "{r}");
    assert_eq!(
        r.expected,
        "entries appended at index 1 or above (log indexes start at 1)"
    );
    assert_eq!(r.actual, "append at index 0");
}

/// 2^40 entries announced without their data. (One slot per entry was
/// allocated: the process aborted.)
#[test]
fn an_append_of_2_40_entries_without_data_is_inconclusive() {
    let lines = vec![
        line(
            1,
            r#""type":"init","reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0"#,
        ),
        line(
            2,
            &format!(r#""type":"append","index":1,"entry_count":{TWO_40}"#),
        ),
    ];
    let report = validate(trace("count", &lines));
    let why = inconclusive(&report);
    assert_eq!(
        why,
        format!(
            "node 1: an append of {TWO_40} entries without their data is more than the checks \
             hold in one event (at most 65536) at seq 2"
        )
    );
}

/// A node restarts with a log of 2^40 entries it does not list: possible
/// (the entries are optional), and checked on without one slot per entry.
/// (One slot per entry was allocated: the process aborted.)
#[test]
fn a_restart_with_2_40_unlisted_entries_is_checked_on() {
    let restart = line(
        1,
        &format!(
            r#""type":"init","reason":"restart","term":1,"vote":null,"last_index":{TWO_40},"last_term":1"#
        ),
    );
    let next = TWO_40 + 1;
    let good = vec![
        restart.clone(),
        line(
            2,
            &format!(r#""type":"append","index":{next},"entries":[{{"term":1}}]"#),
        ),
        line(3, &format!(r#""type":"commit","index":{next}"#)),
    ];
    assert_valid(&validate(trace("full", &good)));
    // The checks still know where the log ends.
    let bad = vec![
        restart,
        line(2, r#""type":"append","index":5,"entries":[{"term":1}]"#),
    ];
    let report = validate(trace("full", &bad));
    let r = rejection(&report);
    assert_eq!(r.rule, "AppendAtLogEnd", "{r}");
    assert_eq!(r.actual, "append at index 5");
}

/// A trace that starts in the middle of a run (node 1 has no init) shows
/// node 1 appending at index 1 and then, after a stretch the trace does not
/// show, at index 2^40. (The stretch was filled with one slot per entry:
/// the process aborted.)
#[test]
fn an_append_far_past_an_unknown_log_is_checked_on() {
    let lines = vec![
        line(1, r#""type":"append","index":1,"entries":[{"term":1}]"#),
        line(
            2,
            &format!(r#""type":"append","index":{TWO_40},"entries":[{{"term":2}}]"#),
        ),
        line(3, &format!(r#""type":"commit","index":{TWO_40}"#)),
        line(4, &format!(r#""type":"apply","index":{TWO_40},"term":2"#)),
    ];
    assert_valid(&validate(trace("full", &lines)));
    // What the checks still know: the entry at 2^40 is of term 2.
    let mut wrong = lines[..3].to_vec();
    wrong.push(line(
        4,
        &format!(r#""type":"apply","index":{TWO_40},"term":3"#),
    ));
    let report = validate(trace("full", &wrong));
    let r = rejection(&report);
    assert_eq!(r.rule, "ApplyWhatIsLogged", "{r}");
}

/// A commit index of 2^61 on a node whose log the trace does not show.
/// (Every index up to it was visited: the check ran for years.)
#[test]
fn a_commit_far_past_an_unknown_log_is_checked_at_once() {
    let lines = vec![
        line(1, &format!(r#""type":"commit","index":{TWO_61}"#)),
        line(
            2,
            &format!(r#""type":"commit","index":{TWO_61},"post":{{"commit":{TWO_61}}}"#),
        ),
    ];
    assert_valid(&validate(trace("full", &lines)));
}

/// A restart whose log ends at index 2^64 - 1 under a snapshot of that
/// index, then an election: the next index overflows. Terms and indexes
/// are bounded as in the replay.
#[test]
fn a_snapshot_at_the_last_index_is_inconclusive() {
    let lines = vec![
        line(
            1,
            &format!(
                r#""type":"init","reason":"restart","term":1,"vote":null,"snapshot":{{"index":{MAX},"term":1}},"last_index":{MAX},"last_term":1"#
            ),
        ),
        line(
            2,
            r#""type":"role","role":"leader","term":1,"reason":"other""#,
        ),
    ];
    let report = validate(trace("full", &lines));
    let why = inconclusive(&report);
    assert_eq!(
        why,
        format!(
            "node 1: init.last_index {MAX} is beyond the terms and indexes the checks compute \
             with (at most 2^62) at seq 1"
        )
    );
}

/// An install of a snapshot at index 2^64 - 1, then the next apply: the
/// index after the applied one overflows.
#[test]
fn an_install_at_the_last_index_is_inconclusive() {
    let lines = vec![
        line(
            1,
            r#""type":"init","reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0"#,
        ),
        line(2, &format!(r#""type":"install","index":{MAX},"term":1"#)),
        line(3, r#""type":"apply","index":1,"term":1"#),
    ];
    let report = validate(trace("full", &lines));
    let why = inconclusive(&report);
    assert!(
        why.starts_with(&format!("node 1: install.index {MAX} is beyond")),
        "{why}"
    );
}

/// A commit index of 2^64 - 1 in a post state, then another commit: the
/// index after the commit index overflows.
#[test]
fn a_commit_at_the_last_index_in_a_post_state_is_inconclusive() {
    let lines = vec![
        line(
            1,
            &format!(r#""type":"timeout","timer":"election","post":{{"commit":{MAX}}}"#),
        ),
        line(2, r#""type":"commit","index":1"#),
    ];
    let report = validate(trace("full", &lines));
    let why = inconclusive(&report);
    assert!(
        why.starts_with(&format!("node 1: post.commit {MAX} is beyond")),
        "{why}"
    );
}

/// The same snapshot installed again keeps the entries after it (Figure 13:
/// "If existing log entry has same index and term as snapshot's last
/// included entry, retain log entries following it"; hashicorp/raft installs
/// a duplicated InstallSnapshot again). The log was taken as discarded: the
/// next append at its real end was rejected by AppendAtLogEnd. An append
/// over the kept entries without a truncate is still rejected.
#[test]
fn the_same_snapshot_installed_again_keeps_the_log_after_it() {
    let start = |next: &str| {
        vec![
            line(
                1,
                r#""type":"init","reason":"boot","term":0,"vote":null,"last_index":0,"last_term":0"#,
            ),
            line(2, r#""type":"install","index":3,"term":1"#),
            line(
                3,
                r#""type":"append","index":4,"entries":[{"term":1},{"term":1}]"#,
            ),
            line(4, r#""type":"install","index":3,"term":1"#),
            line(5, next),
        ]
    };
    let report = validate(trace(
        "full",
        &start(r#""type":"append","index":6,"entries":[{"term":1}]"#),
    ));
    assert_valid(&report);
    let report = validate(trace(
        "full",
        &start(r#""type":"append","index":4,"entries":[{"term":1}]"#),
    ));
    let r = rejection(&report);
    assert_eq!(r.rule, "AppendAtLogEnd", "{r}");
    assert_eq!(
        r.expected,
        "entries appended at index 6 (after the last entry)"
    );
}
