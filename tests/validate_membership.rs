//! `raftcheck validate` of membership changes (features membership and
//! config-on-apply): configuration entries that name their voters and
//! learners, and the header's initial configuration.
//!
//! - The hand-written config-on-apply example is valid: its leader commits
//!   with a majority of the configuration it applied last, before it applies
//!   the change. The same commit after applying the change is rejected.
//! - A configuration two servers away from the last, or one proposed while
//!   another is uncommitted, is rejected (MembershipChangeRule).
//! - What the replay cannot follow is inconclusive, never a verdict: a
//!   configuration entry without its voters, a change with no membership
//!   feature declared, entries not logged in full.
//! - Bad initial configurations in the header are bad input (exit 2).
//! - The model's planted membership bugs, as traces, are rejected naming
//!   the rule they break.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

fn raftcheck(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_raftcheck"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn example() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("traces/examples/membership-config-on-apply.ndjson");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Validates `lines` (written to a temporary file); returns the exit code
/// and the output.
fn validate(lines: &[Value]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ndjson");
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, body).unwrap();
    let out = raftcheck(&["validate", path.to_str().unwrap()]);
    (out.status.code(), text(&out))
}

/// Every configuration entry's voters set to `voters`.
fn set_config_voters(v: &mut Value, voters: &Value) {
    match v {
        Value::Object(m) => {
            if m.get("kind") == Some(&json!("config")) {
                m.insert("voters".into(), voters.clone());
            }
            m.values_mut().for_each(|x| set_config_voters(x, voters));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| set_config_voters(x, voters)),
        _ => {}
    }
}

fn strip_config_members(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.get("kind") == Some(&json!("config")) {
                m.remove("voters");
                m.remove("learners");
            }
            m.values_mut().for_each(strip_config_members);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_config_members),
        _ => {}
    }
}

/// Every log entry's `data` removed (entries observed by term only).
fn strip_entry_data(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("term") && m.contains_key("data") {
                m.remove("data");
            }
            m.values_mut().for_each(strip_entry_data);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_entry_data),
        _ => {}
    }
}

/// Renumbers node `node`'s `seq` in file order.
fn renumber(lines: &mut [Value], node: u64) {
    let mut seq = 0;
    for l in lines
        .iter_mut()
        .filter(|l| l["node"] == json!(node) && l["seq"].is_u64())
    {
        seq += 1;
        l["seq"] = json!(seq);
    }
}

fn position(lines: &[Value], f: impl Fn(&Value) -> bool) -> usize {
    lines.iter().position(f).unwrap()
}

#[test]
fn a_leader_counts_the_configuration_it_applied_last() {
    let (code, out) = validate(&example());
    assert_eq!(code, Some(0), "{out}");

    // The leader applies the change (node 4 a voter) before the ack of its
    // next entry arrives: it must then count 3 of {1,2,3,4}, and 1 and 2 do
    // not make that majority.
    let mut lines = example();
    let is = |l: &Value, ty: &str, index: u64| {
        l["type"] == json!(ty) && l["node"] == json!(1) && l["index"] == json!(index)
    };
    let apply = position(&lines, |l| is(l, "apply", 2));
    let commit = position(&lines, |l| is(l, "commit", 2));
    let e = lines.remove(apply);
    lines.insert(commit + 1, e);
    renumber(&mut lines, 1);
    let (code, out) = validate(&lines);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("CommitRule violated"), "{out}");
    assert!(
        out.contains("of the configuration in use, voters {1, 2, 3, 4}"),
        "{out}"
    );
}

#[test]
fn a_change_of_two_servers_or_during_another_is_rejected() {
    // {1,2,3} to {1,2,4}: node 3 removed and node 4 added at once.
    let mut lines = example();
    lines[1..]
        .iter_mut()
        .for_each(|l| set_config_voters(l, &json!([1, 2, 4])));
    let (code, out) = validate(&lines);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MembershipChangeRule violated"), "{out}");
    assert!(out.contains("one server at a time"), "{out}");

    // The same entry from an initial configuration of {1,2}: again two
    // servers (3 and 4) at once.
    let mut lines = example();
    lines[0]["voters"] = json!([1, 2]);
    let (code, out) = validate(&lines);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MembershipChangeRule violated"), "{out}");

    // A second change (node 4 made a learner again) appended while the
    // first is uncommitted.
    let mut lines = example();
    let first = position(&lines, |l| {
        l["type"] == json!("append") && l["node"] == json!(1) && l["index"] == json!(2)
    });
    let mut second = lines[first].clone();
    second["index"] = json!(3);
    second["entries"][0]["data"] = json!({"kind": "config", "voters": [1, 2, 3], "learners": [4]});
    second["post"]["last_index"] = json!(3);
    lines.insert(first + 1, second);
    renumber(&mut lines, 1);
    let (code, out) = validate(&lines);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MembershipChangeRule violated"), "{out}");
    assert!(
        out.contains("while the one at index 2 is uncommitted"),
        "{out}"
    );
}

#[test]
fn what_the_replay_cannot_follow_is_inconclusive() {
    let inconclusive = |lines: &[Value], why: &str| {
        let (code, out) = validate(lines);
        assert_eq!(code, Some(3), "{out}");
        assert!(out.contains("INCONCLUSIVE") && out.contains(why), "{out}");
    };
    // A configuration entry that does not say whom it makes voters.
    let mut lines = example();
    lines[1..].iter_mut().for_each(strip_config_members);
    inconclusive(&lines, "does not name its voters");

    // Initial voters declared, but neither membership feature.
    let mut lines = example();
    lines[0]["features"] = json!([]);
    inconclusive(
        &lines,
        "declares neither feature membership nor config-on-apply",
    );

    // Nodes 1 to 3, every one voting, and no feature that says how a
    // change takes effect: the change (node 4 added) cannot be followed.
    let mut lines = example();
    lines.retain(|l| l["node"] != json!(4));
    let header = lines[0].as_object_mut().unwrap();
    header.remove("voters");
    header.remove("features");
    header.insert("nodes".into(), json!([1, 2, 3]));
    inconclusive(&lines, "changes the membership to voters {1, 2, 3, 4}");

    // Entries logged by term only: configuration entries are unreadable.
    let mut lines = example();
    lines[0]["observes"]["entries"] = json!("terms");
    lines[1..].iter_mut().for_each(strip_entry_data);
    inconclusive(&lines, "needs entries observed in full");
}

#[test]
fn a_bad_initial_configuration_is_bad_input() {
    for (field, value, why) in [
        ("voters", json!([1, 7]), "node 7 is not one of \"nodes\""),
        ("voters", json!([1, 1]), "node 1 is listed twice"),
        ("voters", json!([]), "needs a voter"),
        ("learners", json!([3]), "node 3 is also a voter"),
    ] {
        let mut lines = example();
        lines[0][field] = value;
        let (code, out) = validate(&lines);
        assert_eq!(code, Some(2), "{field}: {out}");
        assert!(out.contains(&format!("field \"{field}\"")), "{out}");
        assert!(out.contains(why), "{out}");
    }
}

/// The model's planted membership bugs: each counterexample, as a trace,
/// is rejected with the rule it breaks.
#[test]
fn the_models_membership_bugs_are_rejected_with_their_rule() {
    for (bug, rule) in [
        ("overlapping-changes", "MembershipChangeRule"),
        ("learner-counts", "CommitRule"),
        ("removed-vote-counts", "ElectionSafety"),
        ("joint-new-majority-only", "CommitRule"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = raftcheck(&[
            "check",
            "--bug",
            bug,
            "--trace-out",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{bug}: {}", text(&out));
        let counterexamples: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !name(p).contains("-example-"))
            .collect();
        assert_eq!(counterexamples.len(), 1, "{bug}: {counterexamples:?}");
        let out = raftcheck(&["validate", counterexamples[0].to_str().unwrap()]);
        let out = text(&out);
        assert!(out.contains(&format!("{rule} violated")), "{bug}: {out}");
    }
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Joint consensus: the model's path through C_old,new and out of it is
/// valid as a trace; the same trace with the joint entry's outgoing voters
/// dropped (a two-server change at once) or with the wrong ones is
/// rejected, as is a single-server change appended while joint.
#[test]
fn joint_consensus_is_replayed_and_a_bad_joint_entry_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = raftcheck(&[
        "check",
        "--servers",
        "4",
        "--voters",
        "3",
        "--clients",
        "1",
        "--ops",
        "1",
        "--max-term",
        "2",
        "--max-log",
        "3",
        "--max-in-flight",
        "4",
        "--feature",
        "config-on-apply",
        "--change",
        "joint:2,3,4",
        "--change",
        "leave-joint",
        "--trace-out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let path = dir
        .path()
        .join("custom-example-joint-consensus-is-left.ndjson");
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (code, out) = validate(&lines);
    assert_eq!(code, Some(0), "{out}");
    let joint_entries = |l: &Value| l.to_string().contains("outgoing_voters");
    assert!(lines.iter().any(joint_entries), "no joint entry");

    // Dropped or wrong outgoing voters: every copy of the entry changes.
    for outgoing in [Value::Null, json!([1, 2])] {
        let mut bad = lines.clone();
        for l in bad.iter_mut() {
            walk_configs(l, &mut |c| {
                if c.get("outgoing_voters").is_some() {
                    match &outgoing {
                        Value::Null => {
                            c.as_object_mut().unwrap().remove("outgoing_voters");
                        }
                        v => c["outgoing_voters"] = v.clone(),
                    }
                }
            });
        }
        let (code, out) = validate(&bad);
        assert_eq!(code, Some(1), "{outgoing}: {out}");
        assert!(out.contains("MembershipChangeRule violated"), "{out}");
        assert!(out.contains("joint consensus (thesis 4.3)"), "{out}");
    }

    // Leaving replaced by a single-server change (server 2 removed from
    // C_old,new): no simple change is made in a joint configuration.
    let mut bad = lines.clone();
    for l in bad.iter_mut() {
        walk_configs(l, &mut |c| {
            if c.get("outgoing_voters").is_none() && c["voters"] == json!([2, 3, 4]) {
                c["voters"] = json!([3, 4]);
                c["outgoing_voters"] = json!([1, 2, 3]);
            }
        });
    }
    let (code, out) = validate(&bad);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("MembershipChangeRule violated"), "{out}");
}

/// Calls `f` on every configuration entry's data in `v`.
fn walk_configs(v: &mut Value, f: &mut impl FnMut(&mut Value)) {
    match v {
        Value::Object(m) => {
            if m.get("kind") == Some(&json!("config")) {
                f(v);
                return;
            }
            for x in m.values_mut() {
                walk_configs(x, f);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| walk_configs(x, f)),
        _ => {}
    }
}

/// A trace that starts from snapshots (etcd's Bootstrap, or a trace cut
/// after compaction): nodes 1, 2 and 4 restart from a snapshot at index 2
/// whose configuration, stated as `snapshot.config`, is {1,2,4}; node 1
/// then wins an election with node 4's vote.
fn from_snapshots(config: Option<Value>) -> Vec<Value> {
    let post = |term: u64, vote: Value, role: &str| {
        json!({"term": term, "vote": vote, "role": role, "commit": 2,
               "last_index": 2, "last_term": 1})
    };
    let mut snapshot = json!({"index": 2, "term": 1});
    if let Some(c) = config {
        snapshot["config"] = c;
    }
    let mut lines = vec![json!({
        "type": "header", "format": "raft-trace/1", "implementation": "test",
        "nodes": [1, 2, 3, 4], "voters": [1, 2, 3], "features": ["config-on-apply"],
        "observes": {"events": ["init", "crash", "role", "timeout", "send", "receive",
                                "append", "truncate", "persist", "commit", "apply",
                                "snapshot", "install"],
                     "state": ["term", "vote", "role", "commit", "last_index", "last_term"],
                     "entries": "full"},
        "network": {"loss": true, "duplication": false, "reorder": true}
    })];
    for n in [1, 2, 4] {
        lines.push(
            json!({"type": "init", "node": n, "seq": 1, "reason": "restart",
            "term": 1, "vote": null, "snapshot": snapshot, "commit": 2, "last_index": 2,
            "last_term": 1, "entries": [], "post": post(1, Value::Null, "follower")}),
        );
    }
    let vote = |id: u64, to: u64| {
        json!({"id": id, "from": 1, "to": to, "term": 2, "rpc": "request_vote",
               "last_index": 2, "last_term": 1})
    };
    let grant = json!({"id": 1, "from": 4, "to": 1, "term": 2,
                       "rpc": "request_vote_reply", "granted": true});
    lines.extend([
        json!({"type": "timeout", "node": 1, "seq": 2, "timer": "election"}),
        json!({"type": "role", "node": 1, "seq": 3, "role": "candidate", "term": 2,
               "reason": "election_timeout", "post": post(2, json!(1), "candidate")}),
        json!({"type": "persist", "node": 1, "seq": 4, "term": 2, "vote": 1, "last_index": 2}),
        json!({"type": "send", "node": 1, "seq": 5, "msg": vote(1, 2)}),
        json!({"type": "send", "node": 1, "seq": 6, "msg": vote(2, 4)}),
        json!({"type": "receive", "node": 4, "seq": 2, "msg": vote(2, 4)}),
        json!({"type": "persist", "node": 4, "seq": 3, "term": 2, "vote": 1, "last_index": 2,
               "post": post(2, json!(1), "follower")}),
        json!({"type": "send", "node": 4, "seq": 4, "msg": grant}),
        json!({"type": "receive", "node": 1, "seq": 7, "msg": grant}),
        json!({"type": "role", "node": 1, "seq": 8, "role": "leader", "term": 2,
               "reason": "won_election", "post": post(2, json!(1), "leader")}),
    ]);
    lines
}

#[test]
fn a_snapshot_that_states_its_configuration_is_followed() {
    let (code, out) = validate(&from_snapshots(Some(json!({"voters": [1, 2, 4]}))));
    assert_eq!(code, Some(0), "{out}");

    // Without it the configuration in use is unknown: no verdict.
    let (code, out) = validate(&from_snapshots(None));
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("a snapshot"), "{out}");

    // With {1,2,3}, node 4's vote does not count.
    let (code, out) = validate(&from_snapshots(Some(json!({"voters": [1, 2, 3]}))));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("VoteCountingRule violated"), "{out}");

    // A restart from the same snapshot that states another configuration
    // than the replay knows it holds.
    let mut lines = from_snapshots(Some(json!({"voters": [1, 2, 4]})));
    lines.push(json!({"type": "crash", "node": 1, "seq": 9}));
    lines.push(
        json!({"type": "init", "node": 1, "seq": 10, "reason": "restart", "term": 2,
        "vote": 1, "snapshot": {"index": 2, "term": 1, "config": {"voters": [1, 2, 3]}},
        "commit": 2, "last_index": 2, "last_term": 1, "entries": []}),
    );
    let (code, out) = validate(&lines);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("RestartRule violated"), "{out}");
    assert!(out.contains("voters {1, 2, 4}"), "{out}");
    lines.last_mut().unwrap()["snapshot"]["config"] = json!({"voters": [1, 2, 4]});
    let (code, out) = validate(&lines);
    assert_eq!(code, Some(0), "{out}");
}
