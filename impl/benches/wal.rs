//! WAL micro-benchmark: group commit versus one fdatasync per entry.
//!
//! For batches of 1, 16 and 256 entries of 100 bytes it measures entries appended per second
//! and fdatasyncs per second when each batch is made durable with one `sync` (group commit),
//! and, as the baseline measured in the same run, when every entry is synced on its own.
//!
//! `cargo bench -p raftkv --bench wal [-- --seconds S]`. The log lives in the target directory
//! (a real disk, not tmpfs); set `RAFTKV_BENCH_DIR` to measure another file system.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use raftkv::storage::{Entry, Wal, WalOp, WalOptions, WalWriter};

const ENTRY_SIZE: usize = 100;

struct Measure {
    entries_per_sec: f64,
    fsyncs_per_sec: f64,
}

/// Appends batches of `batch` entries for about `secs`, syncing after every `sync_every`
/// entries.
fn run(dir: &PathBuf, batch: usize, sync_every: usize, secs: f64) -> Measure {
    let d = tempfile::tempdir_in(dir).expect("temp dir");
    let (mut wal, _) = Wal::open_with(d.path(), WalOptions::default()).expect("open");
    let data = vec![0xabu8; ENTRY_SIZE];
    let fsyncs_before = wal.stats().fsyncs;
    let start = Instant::now();
    let budget = Duration::from_secs_f64(secs);
    let mut index = 0u64;
    while start.elapsed() < budget {
        for i in 0..batch {
            index += 1;
            wal.append_entry(index, 1, &data).expect("append");
            if (i + 1) % sync_every == 0 {
                wal.sync().expect("sync");
            }
        }
        wal.sync().expect("sync");
    }
    let el = start.elapsed().as_secs_f64();
    Measure {
        entries_per_sec: index as f64 / el,
        fsyncs_per_sec: (wal.stats().fsyncs - fsyncs_before) as f64 / el,
    }
}

/// `clients` tasks each submit one entry at a time to a [`WalWriter`] and wait for it to be
/// durable, for about `secs`: group commit across concurrent submitters.
fn run_writer(dir: &PathBuf, clients: usize, secs: f64) -> Measure {
    let d = tempfile::tempdir_in(dir).expect("temp dir");
    let (wal, _) = Wal::open_with(d.path(), WalOptions::default()).expect("open");
    let writer = Arc::new(WalWriter::spawn(wal).expect("spawn"));
    let next = Arc::new(tokio::sync::Mutex::new(1u64));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (writer, next) = (writer.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                while start.elapsed() < budget {
                    let ticket = {
                        let mut n = next.lock().await;
                        let e = Entry {
                            index: *n,
                            term: 1,
                            data: vec![0xab; ENTRY_SIZE],
                        };
                        *n += 1;
                        writer.submit(vec![WalOp::Append(vec![e])]).expect("submit")
                    };
                    writer.wait(ticket).await.expect("durable");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    let el = start.elapsed().as_secs_f64();
    let p = writer.progress().borrow().clone();
    Measure {
        entries_per_sec: p.durable as f64 / el,
        fsyncs_per_sec: p.syncs as f64 / el,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(1.5);
    let dir = std::env::var_os("RAFTKV_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).expect("bench dir");
    eprintln!(
        "WAL benchmark in {} ({secs} s per configuration, {ENTRY_SIZE}-byte entries)",
        dir.display()
    );

    println!(
        "| batch | group commit entries/s | group commit fsyncs/s | sync-per-entry entries/s | sync-per-entry fsyncs/s | speed-up |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for batch in [1usize, 16, 256] {
        eprintln!("batch {batch}: group commit");
        let g = run(&dir, batch, usize::MAX, secs);
        eprintln!("batch {batch}: sync per entry (baseline)");
        let b = run(&dir, batch, 1, secs);
        println!(
            "| {batch} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1}x |",
            g.entries_per_sec,
            g.fsyncs_per_sec,
            b.entries_per_sec,
            b.fsyncs_per_sec,
            g.entries_per_sec / b.entries_per_sec
        );
    }

    eprintln!("WalWriter: concurrent submitters, one entry each, waiting for durability");
    let base = run(&dir, 1, 1, secs);
    println!();
    println!("| concurrent submitters (WalWriter) | durable entries/s | fsyncs/s | vs sync-per-entry ({:.0}/s) |", base.entries_per_sec);
    println!("|---:|---:|---:|---:|");
    for clients in [1usize, 16, 64] {
        eprintln!("{clients} submitters");
        let m = run_writer(&dir, clients, secs);
        println!(
            "| {clients} | {:.0} | {:.0} | {:.1}x |",
            m.entries_per_sec,
            m.fsyncs_per_sec,
            m.entries_per_sec / base.entries_per_sec
        );
    }
}
