//! `raftcheck validate` replays traces through the model's rules: every
//! simulator run and every behaviour of the correct model is accepted; the
//! simulator's planted implementation bugs and the model's planted bugs are
//! rejected with the rule they break; traces that log less still validate.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

fn raftcheck(args: &[&str]) -> Output {
    Command::cargo_bin("raftcheck")
        .unwrap()
        .args(args)
        .output()
        .unwrap()
}

fn sim(dir: &Path, seeds: u32, bug: Option<&str>) {
    sim_with(dir, seeds, bug, &[]);
}

/// `sim` with extra options.
fn sim_with(dir: &Path, seeds: u32, bug: Option<&str>, extra: &[&str]) {
    let mut args = vec![
        "sim".to_string(),
        "--seeds".into(),
        seeds.to_string(),
        "--keep-going".into(),
        "--trace-dir".into(),
        dir.display().to_string(),
    ];
    if let Some(b) = bug {
        args.extend(["--bug".into(), b.into()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = raftcheck(&args);
    if bug.is_none() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_simulator_run_over_500_seeds_with_all_faults_validates() {
    let dir = tempfile::tempdir().unwrap();
    sim(dir.path(), 500, None);
    let out = raftcheck(&["validate", dir.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        &text[..text.len().min(4000)]
    );
    assert!(text.contains("500 of 500 runs valid"), "{text}");
    assert!(text.contains("model steps replayed"), "{text}");
}

/// Each planted implementation bug: some runs are rejected, each naming the
/// rule the bug breaks, and no run is rejected for anything else.
#[test]
fn planted_implementation_bugs_are_rejected_with_their_rule() {
    for (bug, rules) in [
        ("commit-old-term", &["CommitRule violated"][..]),
        ("volatile-vote", &["VotePersistedBeforeReply violated"]),
        // A follower that cut a matching entry may then release an
        // acknowledgement of it queued before the cut (the simulator defers
        // writes, so replies can leave after later steps): the ack is
        // rejected at its send, before the replay's check of the cut.
        (
            "truncate-on-match",
            &[
                "AppendEntriesRule violated",
                "EntriesPersistedBeforeAck violated",
            ],
        ),
        ("no-dedup", &["AtMostOnce violated"]),
        ("stale-read", &["ReadIndexRule violated"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        sim(dir.path(), 40, Some(bug));
        let out = raftcheck(&["validate", dir.path().to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{bug}: {text}");
        let rejected = text.matches(": INVALID").count();
        let named = text.matches(rules[0]).count();
        assert!(named > 0, "{bug}: no rejection names {}:\n{text}", rules[0]);
        let named_any: usize = rules.iter().map(|r| text.matches(r).count()).sum();
        assert_eq!(
            rejected, named_any,
            "{bug}: a rejection names another rule than {rules:?}:\n{text}"
        );
    }
}

/// Round trip: every example path of the default suite's reached
/// properties (behaviours of the correct model) becomes a trace the
/// validator accepts.
#[test]
fn the_correct_models_behaviours_validate() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("ok");
    let out = raftcheck(&["check", "--trace-out", ok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let files: Vec<String> = std::fs::read_dir(&ok)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    assert!(files.len() >= 10, "{files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = raftcheck(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

/// The model's counterexamples for its read bugs, as traces, are rejected on the
/// leader's own `read` event (not only when the history shows a stale value): a read
/// index taken before the leader committed an entry of its term, and a read answered
/// with no heartbeat round at all.
#[test]
fn the_models_read_bugs_are_named_by_the_read_rules() {
    for (bug, line) in [
        ("read-index-old-commit", "read-index-linearizable.ndjson"),
        ("stale-read", "clients-linearizable.ndjson"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = raftcheck(&[
            "check",
            "--bug",
            bug,
            "--trace-out",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1), "{bug}: {}", stdout(&out));
        let file = dir.path().join(line);
        let out = raftcheck(&["validate", file.to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{bug}: {text}");
        assert!(text.contains("ReadIndexRule violated"), "{bug}: {text}");
        // The rejected event is the read, in one line, and as logged with
        // --raw.
        let event = text.lines().find(|l| l.starts_with("  event:")).unwrap();
        assert!(event.contains(" read at "), "{bug}: {text}");
        let out = raftcheck(&["validate", "--raw", file.to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{bug}: {text}");
        assert!(text.contains("\"type\":\"read\""), "{bug}: {text}");
    }
}

/// Rewrites every trace file under `dir` with `f` applied to each line.
fn rewrite(dir: &Path, f: &dyn Fn(&mut Value)) {
    for run in std::fs::read_dir(dir).unwrap() {
        let path = run.unwrap().path().join("trace.ndjson");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            f(&mut v);
            out.push_str(&serde_json::to_string(&v).unwrap());
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap();
    }
}

fn strip_entry_data(v: &mut Value) {
    if let Some(es) = v.get_mut("entries").and_then(Value::as_array_mut) {
        for e in es {
            e.as_object_mut().unwrap().remove("data");
        }
    }
}

#[test]
fn partially_observed_traces_still_validate_with_a_small_frontier() {
    type Edit = fn(&mut Value);
    let variants: [(&str, Edit); 3] = [
        ("without votes", |v| {
            if v["type"] == "header" {
                let st = v["observes"]["state"].as_array_mut().unwrap();
                st.retain(|f| f != "vote");
            }
            if let Some(p) = v.get_mut("post").and_then(Value::as_object_mut) {
                p.remove("vote");
            }
        }),
        ("with entry terms only", |v| {
            if v["type"] == "header" {
                v["observes"]["entries"] = "terms".into();
            }
            strip_entry_data(v);
            if let Some(m) = v.get_mut("msg") {
                strip_entry_data(m);
            }
        }),
        ("without commits", |v| {
            if v["type"] == "header" {
                let ev = v["observes"]["events"].as_array_mut().unwrap();
                ev.retain(|f| f != "commit");
                let st = v["observes"]["state"].as_array_mut().unwrap();
                st.retain(|f| f != "commit");
            }
            if v["type"] == "commit" {
                // Rewritten as an event every emitter may leave out.
                *v = Value::Null;
            }
            if let Some(p) = v.get_mut("post").and_then(Value::as_object_mut) {
                p.remove("commit");
            }
        }),
    ];
    for (name, edit) in variants {
        let dir = tempfile::tempdir().unwrap();
        // Figure 2 runs: with pre-vote, check-quorum and lost-election (the
        // simulator's defaults) these partial traces do not all validate
        // within this frontier yet.
        sim_with(
            dir.path(),
            20,
            None,
            &["--no-pre-vote", "--no-check-quorum", "--no-lost-election"],
        );
        rewrite(dir.path(), &|v| edit(v));
        // Drop the lines an edit removed, renumbering each node's seq.
        for run in std::fs::read_dir(dir.path()).unwrap() {
            let path = run.unwrap().path().join("trace.ndjson");
            let text = std::fs::read_to_string(&path).unwrap();
            let kept: Vec<&str> = text.lines().filter(|l| *l != "null").collect();
            std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        }
        let out = raftcheck(&["validate", "--json", dir.path().to_str().unwrap()]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {report}");
        for run in report["runs"].as_array().unwrap() {
            assert_eq!(run["replay"]["enabled"], true, "{name}: {run}");
            let frontier = run["replay"]["max_frontier"].as_u64().unwrap();
            assert!(frontier <= 16, "{name}: frontier {frontier}");
        }
    }
}

/// Renames node ids in one trace line: the event's node, a message's ends,
/// votes and leaders.
fn rename_nodes(v: &mut Value, map: &dyn Fn(u64) -> u64) {
    let Some(obj) = v.as_object_mut() else { return };
    for key in ["node", "from", "to", "vote", "leader"] {
        if let Some(id) = obj.get(key).and_then(Value::as_u64) {
            obj.insert(key.into(), map(id).into());
        }
    }
    if let Some(nodes) = obj.get_mut("nodes").and_then(Value::as_array_mut) {
        for n in nodes {
            *n = map(n.as_u64().unwrap()).into();
        }
    }
    for key in ["msg", "post"] {
        if let Some(inner) = obj.get_mut(key) {
            rename_nodes(inner, map);
        }
    }
}

/// A header that lists its nodes as `[3,2,1]` once switched the replay off
/// and still exited 0: any order of 1..=n is replayed, and ids the model
/// cannot number make the run inconclusive (exit 3), never a silent pass.
#[test]
fn node_ids_in_any_order_are_replayed_and_other_ids_are_inconclusive() {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/examples/election-and-commits.ndjson");
    let text = std::fs::read_to_string(example).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, f: &dyn Fn(&mut Value)| {
        let path = dir.path().join(name);
        let mut out = String::new();
        for line in text.lines() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            f(&mut v);
            out.push_str(&serde_json::to_string(&v).unwrap());
            out.push('\n');
        }
        std::fs::write(&path, out).unwrap();
        path.display().to_string()
    };
    let reversed = write("reversed.ndjson", &|v| {
        if v["type"] == "header" {
            v["nodes"].as_array_mut().unwrap().reverse();
        }
    });
    let out = raftcheck(&["validate", "--json", &reversed]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        json["runs"][0]["replay"]["steps"].as_u64().unwrap() > 0,
        "{json}"
    );
    let renamed = write("renamed.ndjson", &|v| {
        rename_nodes(v, &|id| id * 10);
    });
    let out = raftcheck(&["validate", &renamed]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("cannot be replayed"),
        "{}",
        stdout(&out)
    );
}

/// Where the simulator's own check catches a planted bug, conformance
/// rejects the trace too: the two never disagree. (A leader that restarted
/// kept its whole recovered log as "known committed", so after winning an
/// election it could commit an older term's entry by counting replicas, the
/// Figure 8 bug, unchallenged: 8 of these 40 commit-old-term seeds.)
#[test]
fn conformance_rejects_every_run_the_simulators_check_catches() {
    for bug in ["commit-old-term", "volatile-vote", "truncate-on-match"] {
        let out = raftcheck(&["sim", "--seeds", "40", "--keep-going", "--bug", bug]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{bug}: {text}");
        assert!(
            !text.contains("the checkers disagree"),
            "{bug}: conformance accepted a run the simulator's check caught:\n{text}"
        );
    }
}
