//! `raftcheck validate` with features (behaviours beyond Figure 2): correct
//! raft-rs runs whose headers say nothing of features are valid (every
//! feature is allowed when none is declared); a header that declares
//! Figure 2 only (`"features": []`) gets a step only a feature allows
//! rejected, and declaring the feature (in the header or with `--features`)
//! accepts it again; unknown feature names are bad input. The
//! production-Raft example (pre-vote, heartbeat, check-quorum) is valid, and
//! mutations of it that break pre-vote's promises are rejected.

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

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("traces/examples/pre-vote-check-quorum.ndjson")
}

/// `file` with its header's `features` set to `features` (removed when
/// `None`) and `change` applied to the lines after the header; written to
/// a temporary directory.
fn rewritten(
    file: &PathBuf,
    features: Option<serde_json::Value>,
    change: impl Fn(&str) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let original = std::fs::read_to_string(file).unwrap();
    let (header, rest) = original.split_once('\n').unwrap();
    let mut h: serde_json::Value = serde_json::from_str(header).unwrap();
    match features {
        Some(f) => h["features"] = f,
        None => {
            h.as_object_mut().unwrap().remove("features");
        }
    }
    let body: String = rest.lines().map(|l| change(l) + "\n").collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ndjson");
    std::fs::write(&path, format!("{h}\n{body}")).unwrap();
    (dir, path)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// raft-rs's runs as its harness wrote them, with no `features` field:
/// every feature is allowed, and both are valid.
#[test]
fn raft_rs_runs_without_declared_features_are_valid() {
    for name in [
        "lost-election-ordered-seed10.ndjson",
        "stale-append-reply-chaos-seed1.ndjson",
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/raft-rs")
            .join(name);
        let out = raftcheck(&["validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        assert!(text(&out).contains("1 of 1 run valid"), "{}", text(&out));
    }
}

#[test]
fn figure_2_alone_rejects_a_lost_election() {
    let (_dir, path) = rewritten(
        &raft_rs_trace(),
        Some(serde_json::json!([])),
        str::to_string,
    );
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(":41: node 3: VoteCountingRule violated"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_lost_election_feature_on_the_command_line_accepts_it() {
    let (_dir, path) = rewritten(
        &raft_rs_trace(),
        Some(serde_json::json!([])),
        str::to_string,
    );
    let out = raftcheck(&[
        "validate",
        "--features",
        "lost-election",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 of 1 run valid"), "{}", text(&out));
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

#[test]
fn the_production_raft_example_is_valid() {
    let out = raftcheck(&["validate", example().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Without a features field every feature is allowed: still valid.
    let (_dir, path) = rewritten(&example(), None, str::to_string);
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// Declared Figure 2 only, the pre-vote is a step the election timeout
/// rule does not take.
#[test]
fn a_pre_vote_without_the_feature_is_rejected() {
    let (_dir, path) = rewritten(&example(), Some(serde_json::json!([])), str::to_string);
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("ElectionTimeoutRule violated"),
        "{}",
        text(&out)
    );
}

/// A voter that raises its term on a pre-vote request (the planted model
/// bug `pre-vote-raises-term`, as an implementation would show it).
#[test]
fn a_pre_vote_that_raises_the_voters_term_is_rejected() {
    let (_dir, path) = rewritten(
        &example(),
        Some(serde_json::json!(["pre-vote", "heartbeat", "check-quorum"])),
        |l| {
            if l.contains(r#""node":2,"seq":3,"type":"send""#)
                || l.contains(r#""type":"send","node":2,"seq":3"#)
            {
                l.replace(r#""post":{"term":0,"#, r#""post":{"term":1,"#)
            } else {
                l.to_string()
            }
        },
    );
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("PreVoteRule violated"),
        "{}",
        text(&out)
    );
}

/// A leader may step down by check-quorum only with the feature.
#[test]
fn a_check_quorum_step_down_needs_the_feature() {
    let (_dir, path) = rewritten(
        &example(),
        Some(serde_json::json!(["pre-vote", "heartbeat"])),
        str::to_string,
    );
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("role Leader"), "{}", text(&out));
}

/// A heartbeat round may name a read (feature read-index): the reply must
/// echo its context.
#[test]
fn a_heartbeat_reply_echoes_the_read_context() {
    let features = Some(serde_json::json!([
        "pre-vote",
        "heartbeat",
        "check-quorum",
        "read-index"
    ]));
    let with_context = |reply: &'static str| {
        move |l: &str| {
            if l.contains(r#""id":5,"from":1,"to":2,"term":1,"rpc":"heartbeat","commit":0"#) {
                l.replace(r#""commit":0}"#, r#""commit":0,"context":77}"#)
            } else if l.contains(r#""id":3,"from":2,"to":1,"term":1,"rpc":"heartbeat_reply""#) {
                l.replace(r#""rpc":"heartbeat_reply""#, reply)
            } else {
                l.to_string()
            }
        }
    };
    let (_dir, path) = rewritten(
        &example(),
        features.clone(),
        with_context(r#""rpc":"heartbeat_reply","context":77"#),
    );
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_dir, path) = rewritten(
        &example(),
        features,
        with_context(r#""rpc":"heartbeat_reply","context":78"#),
    );
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("HeartbeatRule violated") && text(&out).contains("context"),
        "{}",
        text(&out)
    );
}

fn transfer_example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("traces/examples/leader-transfer.ndjson")
}

/// Leader transfer (thesis 3.10): timeout_now to an up-to-date follower,
/// which campaigns at once with vote requests marked `transfer` that a
/// voter in check-quorum's lease does not ignore.
#[test]
fn the_leader_transfer_example_is_valid() {
    let out = raftcheck(&["validate", transfer_example().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A transfer is a step of the feature: a header without it rejects the
/// leader's timeout_now, naming the rule.
#[test]
fn a_transfer_without_the_feature_is_rejected() {
    let (_dir, path) = rewritten(
        &transfer_example(),
        Some(serde_json::json!(["check-quorum"])),
        str::to_string,
    );
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("LeaderTransferRule violated")
            && text(&out).contains("do not include leader-transfer"),
        "{}",
        text(&out)
    );
}

/// timeout_now to a follower the leader has not brought up to date (the
/// planted model bug `transfer-stale-target`, as an implementation would
/// show it): the leader sends it before it hears node 2 took its entry.
#[test]
fn a_timeout_now_to_a_lagging_target_is_rejected() {
    let original = std::fs::read_to_string(transfer_example()).unwrap();
    // Up to node 2's reply to the leader's append; the leader has not
    // received it when it sends timeout_now.
    let mut lines: Vec<&str> = original
        .lines()
        .take_while(|l| !(l.contains(r#""type":"receive","node":1,"seq":13"#)))
        .collect();
    assert!(lines.last().unwrap().contains("append_entries_reply"));
    lines.push(
        r#"{"type":"send","node":1,"seq":13,"msg":{"id":5,"from":1,"to":2,"term":1,"rpc":"timeout_now"}}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ndjson");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("LeaderTransferRule violated")
            && text(&out).contains("node 2's match index 0"),
        "{}",
        text(&out)
    );
}

/// The vote requests of a campaign a timeout_now started say so: without
/// the flag they are not the rule's.
#[test]
fn a_transfer_campaign_marks_its_vote_requests() {
    let (_dir, path) = rewritten(&transfer_example(), None, |l| {
        l.replace(r#","transfer":true"#, "")
    });
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("TimeoutNowRule violated")
            && text(&out).contains("transfer true differs"),
        "{}",
        text(&out)
    );
}

fn lease_refusal() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/lease-refusal.ndjson")
}

/// Node 2 follows the leader of term 1 and answers a vote request of term 2
/// with a refusal in its own term 1 (hashicorp/raft's `requestVote` while it
/// knows a leader): under check-quorum's lease that is ignoring the request;
/// Figure 2 alone must adopt term 2 first.
#[test]
fn a_lease_refusal_in_the_voters_own_term_needs_check_quorum() {
    needs_feature(
        "lease-refusal.ndjson",
        serde_json::json!([]),
        "RequestVoteRule",
    );
}

/// A success may acknowledge less than the follower could (hashicorp/raft
/// answers a heartbeat with no position: match 0), never more. (Persists
/// are left out, so that the replay, not the durability check, rejects it.)
#[test]
fn a_success_may_acknowledge_less_never_more() {
    let original = std::fs::read_to_string(lease_refusal()).unwrap();
    let trace: String = original
        .lines()
        .filter(|l| !l.contains(r#""type": "persist""#))
        .map(|l| {
            l.replace(r#", "persist"]"#, "]").replace(
                r#""success": true, "match_index": 0"#,
                r#""success": true, "match_index": 1"#,
            ) + "\n"
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("more.ndjson");
    std::fs::write(&path, trace).unwrap();
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("AppendEntriesRule violated")
            && text(&out).contains("match_index at most 0"),
        "{}",
        text(&out)
    );
}

/// Leader 1 of term 1 gets a reply of term 2, keeps leading (it sends
/// another append of term 1), then steps down in term 1 (hashicorp/raft's
/// `handleStaleTerm`): valid with the feature, and Figure 2 (adopt the term
/// at once) rejects it.
#[test]
fn a_leader_that_steps_down_in_its_own_term_needs_stale_term_step_down() {
    needs_feature(
        "stale-term-step-down.ndjson",
        serde_json::json!(["check-quorum"]),
        "AppendEntriesReplyRule",
    );
}

/// Candidate 1 asks for a vote before its vote for itself is durable
/// (hashicorp/raft's `electSelf`): valid with feature late-self-vote, and
/// Figure 2's order (persist, then send) rejects it.
#[test]
fn a_vote_request_before_the_self_vote_is_durable_needs_late_self_vote() {
    needs_feature(
        "late-self-vote.ndjson",
        serde_json::json!(["check-quorum"]),
        "VotePersistedBeforeReply",
    );
}

/// `file` (under tests/data) is valid as written, and rejected by `rule`
/// once its header declares only `without` (the feature it needs removed).
fn needs_feature(file: &str, without: serde_json::Value, rule: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file);
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_dir, stripped) = rewritten(&path, Some(without), |l| l.to_string());
    let out = raftcheck(&["validate", stripped.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let want = format!("{rule} violated");
    assert!(text(&out).contains(&want), "{}", text(&out));
}

/// Node 1 leads terms 1, 3 and 5; the heartbeat goroutine of its leadership
/// of term 1 sends one more heartbeat while it leads term 5 (hashicorp/raft,
/// whose replication goroutines finish the call in progress after the
/// leadership ends): a message delayed from term 1, valid. The same late
/// message carrying an entry its leadership of term 1 never had is rejected
/// by the replication rule, naming the ended leadership.
#[test]
fn a_late_message_of_an_older_ended_leadership_is_checked_against_that_leadership() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ended-leaderships.ndjson");
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_dir, bad) = rewritten(&path, None, |l| {
        if l.contains(r#""id": 7, "from": 1"#) {
            l.replace(
                r#""entries": []"#,
                r#""entries": [{"term": 1, "data": {"kind": "noop"}}]"#,
            )
        } else {
            l.to_string()
        }
    });
    let out = raftcheck(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("ReplicationRule violated")
            && text(&out).contains("its ended leadership of term 1"),
        "{}",
        text(&out)
    );
}

/// Node 3 replaces its entry 1 (term 1) by the new leader's (term 2) and
/// crashes before writing it: on restart its disk still holds the entry of
/// term 1 (raft-rs and etcd raft persist a truncation with the Ready that
/// carries the new entries). Valid, with node 3 no longer replayed, since
/// its recovered entries are not listed. With a `persist` after the
/// replacement, the same restart is rejected.
#[test]
fn a_restart_may_recover_entries_a_truncation_replaced_before_it_was_durable() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let out = raftcheck(&[
        "validate",
        dir.join("restart-after-unsaved-truncate.ndjson")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("after truncating its log from 1 without a persist since"),
        "{}",
        text(&out)
    );
    let out = raftcheck(&[
        "validate",
        dir.join("restart-after-saved-truncate.ndjson")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("RestartRule violated"),
        "{}",
        text(&out)
    );
}
