//! Every history shipped with Porcupine gets the verdict its test suite
//! expects (see `tests/data/porcupine/README.md`).

use std::path::{Path, PathBuf};

use raft_conformance::linearizability::{
    check_history, read_history, Format, ModelKind, Request, Verdict,
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
