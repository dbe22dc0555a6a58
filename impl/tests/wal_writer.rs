//! The WAL writer thread: ordered, durable, acknowledged only after sync, and fail-stop.
#![cfg(not(loom))]

use std::fs;
use std::sync::Arc;

use raftkv::storage::{Entry, HardState, StorageError, Wal, WalOp, WalOptions, WalWriter};
use tokio::sync::Mutex;

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: index.to_le_bytes().to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_are_all_made_durable_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path()).unwrap();
    let writer = Arc::new(WalWriter::spawn(wal).unwrap());
    // Indexes must be submitted in order; the lock only covers choosing and submitting.
    let next = Arc::new(Mutex::new(1u64));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (writer, next) = (writer.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let ticket = {
                    let mut n = next.lock().await;
                    let t = writer.submit(vec![WalOp::Append(vec![entry(*n)])]).unwrap();
                    *n += 1;
                    t
                };
                writer.wait(ticket).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let t = writer
        .submit(vec![WalOp::HardState(HardState {
            term: 1,
            vote: Some(2),
            commit: 200,
        })])
        .unwrap();
    writer.wait(t).await.unwrap();
    let p = writer.progress().borrow().clone();
    assert_eq!(p.durable, 201);
    assert!(p.error.is_none());
    assert!(p.syncs >= 1 && p.syncs <= 201);
    let wal = Arc::into_inner(writer).unwrap().close();
    assert_eq!(wal.last_index(), 200);
    drop(wal);
    let (_, rec) = Wal::open(dir.path()).unwrap();
    assert_eq!(rec.entries, (1..=200).map(entry).collect::<Vec<_>>());
    assert_eq!(rec.hard_state.commit, 200);
}

#[tokio::test]
async fn after_a_failure_nothing_more_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open_with(
        dir.path(),
        WalOptions {
            segment_size: 300,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let writer = WalWriter::spawn(wal).unwrap();
    let t1 = writer.submit(vec![WalOp::Append(vec![entry(1)])]).unwrap();
    writer.wait(t1).await.unwrap();
    // Make the next segment rotation fail.
    let seg = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .max()
        .unwrap();
    let seq = u64::from_str_radix(&seg[4..20], 16).unwrap();
    fs::create_dir(dir.path().join(format!("wal-{:016x}.log", seq + 1))).unwrap();
    let t2 = writer
        .submit(vec![WalOp::Append((2..=20).map(entry).collect())])
        .unwrap();
    let err = writer.wait(t2).await.unwrap_err();
    assert!(
        matches!(*err, StorageError::Io { op: "create", .. }),
        "{err}"
    );
    // An invalid or later batch is never acknowledged either.
    let t3 = writer.submit(vec![WalOp::Append(vec![entry(21)])]).unwrap();
    assert!(writer.wait(t3).await.is_err());
    assert_eq!(writer.progress().borrow().durable, t1);
    let wal = writer.close();
    assert!(wal.is_poisoned());
}

#[tokio::test]
async fn an_invalid_operation_stops_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path()).unwrap();
    let writer = WalWriter::spawn(wal).unwrap();
    let t = writer.submit(vec![WalOp::Append(vec![entry(5)])]).unwrap();
    let err = writer.wait(t).await.unwrap_err();
    assert!(matches!(*err, StorageError::Invalid(_)), "{err}");
}
