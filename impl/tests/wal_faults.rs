//! Injected disk failures (`storage::fault`): a failed fdatasync or write
//! poisons the WAL, the error names the segment file, and nothing after it is
//! accepted or acknowledged, neither by the WAL nor by the group-commit
//! writer thread.
#![cfg(not(loom))]

use raftkv::storage::{
    Entry, Faults, FileOp, HardState, SnapshotMeta, StorageError, Wal, WalOp, WalWriter,
};

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: format!("entry {index}").into_bytes(),
    }
}

/// Asserts `e` is the injected failure of `op` on a segment file of `dir`
/// and that its message names that file.
fn assert_names_segment(e: &StorageError, op: &str, dir: &std::path::Path) {
    match e {
        StorageError::Io { op: o, path, .. } => {
            assert_eq!(*o, op, "{e}");
            assert!(path.starts_with(dir), "{e}");
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("wal-") && name.ends_with(".log"), "{e}");
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("injected"), "{msg}");
        }
        other => panic!("expected an I/O error of {op}, got {other}"),
    }
}

#[test]
fn failed_fdatasync_poisons_the_wal_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.append(&[entry(1), entry(2)]).unwrap();
    wal.sync().unwrap();
    // The disk fails from the next fdatasync on.
    wal.set_faults(Faults::fail_after(FileOp::Fdatasync, 0));
    wal.append(&[entry(3)]).unwrap();
    let e = wal.sync().expect_err("the sync must report the failure");
    assert_names_segment(&e, "fdatasync", dir.path());
    assert!(wal.is_poisoned());
    // Nothing more is accepted: no write, no sync that could acknowledge.
    assert!(matches!(
        wal.append(&[entry(4)]),
        Err(StorageError::Poisoned)
    ));
    assert!(matches!(
        wal.set_hard_state(HardState {
            term: 2,
            vote: Some(1),
            commit: 2
        }),
        Err(StorageError::Poisoned)
    ));
    assert!(matches!(wal.truncate_from(2), Err(StorageError::Poisoned)));
    let snap = SnapshotMeta { index: 2, term: 1 };
    assert!(matches!(
        wal.save_snapshot(snap, b"state"),
        Err(StorageError::Poisoned)
    ));
    // Even with a healthy disk again, the poisoned WAL never acknowledges.
    wal.set_faults(Faults::none());
    assert!(matches!(wal.sync(), Err(StorageError::Poisoned)));
    drop(wal);
    // Restarting recovers what was durable before the failure.
    let (wal, rec) = Wal::open(dir.path()).unwrap();
    assert!(rec.entries.len() >= 2, "{:?}", rec.entries);
    assert_eq!(&rec.entries[..2], &[entry(1), entry(2)]);
    assert!(!wal.is_poisoned());
}

#[test]
fn failed_write_poisons_the_wal_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.set_faults(Faults::fail_after(FileOp::Write, 0));
    wal.append(&[entry(1)]).unwrap();
    let e = wal.sync().expect_err("the write must fail");
    assert_names_segment(&e, "write", dir.path());
    assert!(matches!(wal.sync(), Err(StorageError::Poisoned)));
    assert!(matches!(
        wal.append(&[entry(2)]),
        Err(StorageError::Poisoned)
    ));
}

#[test]
fn faults_hit_only_the_chosen_operation_after_n() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.set_faults(Faults::fail_after(FileOp::Fdatasync, 2));
    for i in 1..=2 {
        wal.append(&[entry(i)]).unwrap();
        wal.sync().unwrap();
    }
    wal.append(&[entry(3)]).unwrap();
    assert_names_segment(&wal.sync().unwrap_err(), "fdatasync", dir.path());
}

#[test]
fn fsync_fails_while_the_trigger_file_exists() {
    let dir = tempfile::tempdir().unwrap();
    let trigger = dir.path().join("fail-now");
    let (mut wal, _) = Wal::open(dir.path().join("wal")).unwrap();
    wal.set_faults(Faults::fail_fsync_while_exists(trigger.clone()));
    wal.append(&[entry(1)]).unwrap();
    wal.sync().unwrap();
    std::fs::write(&trigger, b"").unwrap();
    wal.append(&[entry(2)]).unwrap();
    assert_names_segment(
        &wal.sync().unwrap_err(),
        "fdatasync",
        &dir.path().join("wal"),
    );
}

/// The group-commit writer: the batch whose fdatasync failed and every later
/// one are never reported durable; the error names the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_thread_never_acknowledges_after_a_failed_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path()).unwrap();
    wal.set_faults(Faults::fail_after(FileOp::Fdatasync, 1));
    let writer = WalWriter::spawn(wal).unwrap();
    let t1 = writer.submit(vec![WalOp::Append(vec![entry(1)])]).unwrap();
    writer.wait(t1).await.expect("the first sync succeeds");
    let t2 = writer.submit(vec![WalOp::Append(vec![entry(2)])]).unwrap();
    let e = writer
        .wait(t2)
        .await
        .expect_err("a failed sync must not be acknowledged");
    assert_names_segment(&e, "fdatasync", dir.path());
    let p = writer.progress().borrow().clone();
    assert_eq!(p.durable, t1, "nothing after the failure is durable");
    match writer.submit(vec![WalOp::Append(vec![entry(3)])]) {
        Err(_) => {}
        Ok(t3) => assert!(writer.wait(t3).await.is_err()),
    }
}
