//! A dedicated WAL thread with group commit across submitters.
//!
//! [`WalWriter`] owns a [`Wal`] on its own OS thread (fdatasync blocks, so it must not run on
//! an async executor). Any task may [`WalWriter::submit`] a batch of operations and get a
//! ticket; the thread applies every batch that is waiting, makes them durable with ONE
//! `sync`, and then publishes "durable up to ticket N". Tasks wait for their ticket with
//! [`WalWriter::wait`] (or watch [`WalWriter::progress`]). While one fdatasync runs, new
//! submissions queue up and share the next one.
//!
//! After the first failure (I/O error, poisoned WAL, invalid operation) the error is published
//! and no later ticket ever becomes durable: nothing that may not be on disk is acknowledged.

use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::error::{Result, StorageError};
use super::record::HardState;
use super::snapshot::SnapshotMeta;
use super::wal::{Entry, Wal};

/// One operation on the log, as submitted to a [`WalWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalOp {
    /// [`Wal::append`].
    Append(Vec<Entry>),
    /// [`Wal::truncate_from`].
    TruncateFrom(u64),
    /// [`Wal::set_hard_state`].
    HardState(HardState),
    /// [`Wal::save_snapshot`].
    Snapshot(SnapshotMeta, Vec<u8>),
    /// [`Wal::compact`].
    Compact(u64),
}

/// What the writer thread has made durable.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Every ticket up to and including this one is durable.
    pub durable: u64,
    /// Set after the first failure; later tickets never become durable.
    pub error: Option<Arc<StorageError>>,
    /// fdatasync batches completed (for metrics and benchmarks).
    pub syncs: u64,
}

struct Submit {
    next_ticket: u64,
    tx: Option<mpsc::Sender<(u64, Vec<WalOp>)>>,
}

/// Runs a [`Wal`] on a dedicated thread with group commit. See the module docs.
pub struct WalWriter {
    submit: Mutex<Submit>,
    progress: watch::Receiver<Progress>,
    thread: Option<JoinHandle<Wal>>,
}

fn apply(wal: &mut Wal, ops: Vec<WalOp>) -> Result<()> {
    for op in ops {
        match op {
            WalOp::Append(entries) => wal.append(&entries)?,
            WalOp::TruncateFrom(i) => wal.truncate_from(i)?,
            WalOp::HardState(hs) => wal.set_hard_state(hs)?,
            WalOp::Snapshot(meta, data) => wal.save_snapshot(meta, &data)?,
            WalOp::Compact(upto) => {
                wal.compact(upto)?;
            }
        }
    }
    Ok(())
}

/// Largest number of submissions folded into one sync.
const MAX_GROUP: usize = 4096;

fn run(
    mut wal: Wal,
    rx: mpsc::Receiver<(u64, Vec<WalOp>)>,
    progress: watch::Sender<Progress>,
) -> Wal {
    let mut failed = false;
    while let Ok((mut last, ops)) = rx.recv() {
        if failed {
            continue; // drain: nothing more is written or acknowledged
        }
        let mut res = apply(&mut wal, ops);
        let mut n = 1;
        while res.is_ok() && n < MAX_GROUP {
            let Ok((ticket, ops)) = rx.try_recv() else {
                break;
            };
            last = ticket;
            n += 1;
            res = apply(&mut wal, ops);
        }
        let res = res.and_then(|()| wal.sync());
        match res {
            Ok(()) => progress.send_modify(|p| {
                p.durable = last;
                p.syncs += 1;
            }),
            Err(e) => {
                tracing::error!(error = %e, "WAL writer failed; no further writes are acknowledged");
                failed = true;
                progress.send_modify(|p| p.error = Some(Arc::new(e)));
            }
        }
    }
    wal
}

impl WalWriter {
    /// Moves `wal` to a new thread.
    pub fn spawn(wal: Wal) -> std::io::Result<WalWriter> {
        let (tx, rx) = mpsc::channel();
        let (ptx, prx) = watch::channel(Progress::default());
        let thread = std::thread::Builder::new()
            .name("raftkv-wal".into())
            .spawn(move || run(wal, rx, ptx))?;
        Ok(WalWriter {
            submit: Mutex::new(Submit {
                next_ticket: 1,
                tx: Some(tx),
            }),
            progress: prx,
            thread: Some(thread),
        })
    }

    /// Queues a batch of operations; returns its ticket. Operations are applied in ticket
    /// order. Fails only after [`WalWriter::close`] or if the writer thread is gone.
    pub fn submit(&self, ops: Vec<WalOp>) -> Result<u64> {
        let mut s = self.submit.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = s.next_ticket;
        let tx = s.tx.as_ref().ok_or(StorageError::Poisoned)?;
        tx.send((ticket, ops)).map_err(|_| StorageError::Poisoned)?;
        s.next_ticket += 1;
        Ok(ticket)
    }

    /// Waits until `ticket` is durable, or returns the writer's error.
    pub async fn wait(&self, ticket: u64) -> std::result::Result<(), Arc<StorageError>> {
        let mut rx = self.progress.clone();
        let p = rx
            .wait_for(|p| p.durable >= ticket || p.error.is_some())
            .await
            .map_err(|_| Arc::new(StorageError::Poisoned))?;
        if p.durable >= ticket {
            Ok(())
        } else {
            Err(p.error.clone().expect("error set"))
        }
    }

    /// A receiver of progress updates (durable ticket, error, sync count).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stops accepting work, lets the thread finish what was submitted, and returns the WAL.
    pub fn close(mut self) -> Wal {
        self.submit.lock().unwrap_or_else(|p| p.into_inner()).tx = None;
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(wal) => wal,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.submit.lock().unwrap_or_else(|p| p.into_inner()).tx = None;
            let _ = t.join();
        }
    }
}
