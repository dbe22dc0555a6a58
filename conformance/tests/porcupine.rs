//! Every history shipped with Porcupine gets the verdict its test suite
//! expects (see `tests/data/porcupine/README.md`).

use std::path::{Path, PathBuf};

use raft_conformance::linearizability::{
    check_history, read_history, Call, Format, ModelKind, Request, Verdict,
};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/porcupine")
        .join(rel)
}

/// The etcd files Porcupine's tests expect to be linearizable.
const ETCD_OK: &[u32] = &[
    2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56, 67, 75, 76, 80, 87, 92, 98, 100, 101, 102,
];

fn check(path: &Path, model: ModelKind, partitioned: bool) -> (Verdict, usize) {
    let (history, _) = read_history(path, None).unwrap_or_else(|e| panic!("{e}"));
    let mut req = Request::new(model);
    req.partitioned = partitioned;
    req.explain = false;
    let report = check_history(&history, &req).expect("supported");
    (report.verdict, report.operations)
}

#[test]
fn etcd_histories_get_porcupines_verdicts() {
    let mut checked = 0;
    for i in 0..=102u32 {
        if i == 95 {
            continue;
        }
        let path = data(&format!("jepsen/etcd_{i:03}.log"));
        let expected = if ETCD_OK.contains(&i) {
            Verdict::Linearizable
        } else {
            Verdict::NotLinearizable
        };
        let (verdict, ops) = check(&path, ModelKind::CasRegister, true);
        assert!((70..=90).contains(&ops), "etcd_{i:03}: {ops} operations");
        assert_eq!(verdict, expected, "etcd_{i:03}");
        checked += 1;
    }
    assert_eq!(checked, 102);
}

#[test]
fn the_empty_etcd_file_is_bad_input() {
    let err = read_history(&data("jepsen/etcd_095.log"), None).unwrap_err();
    assert!(err.message.contains("empty"), "{err}");
    let err = read_history(&data("jepsen/etcd_095.log"), Some(Format::Jepsen)).unwrap_err();
    assert!(err.message.contains("empty"), "{err}");
}

const KV: &[(&str, Verdict, usize)] = &[
    ("c01-ok", Verdict::Linearizable, 58),
    ("c01-bad", Verdict::NotLinearizable, 38),
    ("c10-ok", Verdict::Linearizable, 337),
    ("c10-bad", Verdict::NotLinearizable, 405),
    ("c50-ok", Verdict::Linearizable, 1712),
    ("c50-bad", Verdict::NotLinearizable, 2024),
];

#[test]
fn kv_histories_partitioned_by_key() {
    for &(name, expected, n) in KV {
        let (verdict, ops) = check(&data(&format!("kv/{name}.txt")), ModelKind::Kv, true);
        assert_eq!((verdict, ops), (expected, n), "{name}");
    }
}

#[test]
fn kv_histories_unpartitioned() {
    // One map state for all keys. The c50 files are left out: with 50
    // clients and no partitioning the search space is too large (Porcupine
    // does not run them either; see the README).
    for &(name, expected, n) in &KV[..4] {
        let (verdict, ops) = check(&data(&format!("kv/{name}.txt")), ModelKind::Kv, false);
        assert_eq!((verdict, ops), (expected, n), "{name} unpartitioned");
    }
}

#[test]
fn every_failing_file_is_explained_and_drawn() {
    use raft_conformance::linearizability::html;
    let mut files: Vec<String> = (0..=102u32)
        .filter(|i| *i != 95 && !ETCD_OK.contains(i))
        .map(|i| format!("jepsen/etcd_{i:03}.log"))
        .collect();
    files.extend(["kv/c01-bad.txt", "kv/c10-bad.txt", "kv/c50-bad.txt"].map(String::from));
    let mut with_cycle = 0;
    for f in &files {
        let (history, format) = read_history(&data(f), None).unwrap();
        let model = if format == Format::Jepsen {
            ModelKind::CasRegister
        } else {
            ModelKind::Kv
        };
        let mut req = Request::new(model);
        req.timelines = true;
        req.explain_budget = std::time::Duration::from_secs(10);
        let report = check_history(&history, &req).unwrap();
        assert_eq!(report.verdict, Verdict::NotLinearizable, "{f}");
        let e = report
            .failing
            .as_ref()
            .unwrap_or_else(|| panic!("{f}: no explanation"));
        assert!(!e.unplaceable.is_empty(), "{f}: no unplaceable operation");
        assert!(e.prefix.len() < e.operations, "{f}");
        let minimal = e
            .minimal
            .as_ref()
            .unwrap_or_else(|| panic!("{f}: not shrunk"));
        assert!(!minimal.is_empty() && minimal.len() <= e.operations, "{f}");
        if e.cycle.is_some() {
            with_cycle += 1;
            // A cycle is a proof only where each value of the key is
            // written once in the whole history, not just in the shrunk one.
            let mut written = std::collections::HashSet::new();
            for o in history.ops.iter().filter(|o| o.key == e.key) {
                let v = match &o.call {
                    Call::Write(v) | Call::Cas { to: v, .. } => v,
                    _ => continue,
                };
                assert!(written.insert(v.clone()), "{f}: {v} written twice");
            }
        }
        let text = e.render();
        assert!(text.contains("cannot be placed next"), "{f}");
        let page = html::page(&[(f.clone(), &report)]);
        assert!(
            page.contains("<svg") && page.contains("NOT linearizable"),
            "{f}"
        );
    }
    // Jepsen's etcd histories write each value many times and Porcupine's
    // kv histories append, so no cycle of constraints is a sound proof for
    // them (the shrunk history keeps every write of the values it reads).
    // Shrinking without that closure once "proved" 40 of them with cycles
    // through writes it had dropped.
    eprintln!("{with_cycle} explanations with a cycle of constraints");
}
