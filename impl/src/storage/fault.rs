//! Fault injection for the WAL's file operations, for tests only.
//!
//! A [`Faults`] hook, installed with [`Wal::set_faults`](super::Wal::set_faults),
//! is asked before each write and each fdatasync of a segment file and may
//! make it fail with an injected I/O error, exactly as a failing disk would:
//! the WAL poisons itself, reports the error naming the file, and refuses
//! every later write and sync. Production code never installs one, except
//! that a node process honours the test-only environment variable
//! [`FAIL_FSYNC_ENV`] (see [`Faults::from_env`]), which the cluster tests use
//! to make one real node's disk fail.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Test-only: when set to a path, a node's WAL fails every fdatasync while a
/// file exists at that path (with an injected `EIO`).
pub const FAIL_FSYNC_ENV: &str = "RAFTKV_TEST_FAIL_FSYNC_IF_EXISTS";

/// A file operation of the WAL that a fault may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// Writing buffered records to a segment file.
    Write,
    /// fdatasync of a segment file.
    Fdatasync,
}

type Hook = dyn Fn(FileOp, &Path) -> Option<io::Error> + Send + Sync;

/// Decides which file operations fail. The default injects nothing.
#[derive(Clone, Default)]
pub struct Faults(Option<Arc<Hook>>);

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Faults(injecting)"
        } else {
            "Faults(none)"
        })
    }
}

/// The error an injected fault returns (what a failing disk reports).
pub fn injected_error() -> io::Error {
    io::Error::other("injected I/O error (EIO)")
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Faults(None)
    }

    /// Asks `hook` before each operation; an `Some(error)` makes it fail.
    pub fn new(hook: impl Fn(FileOp, &Path) -> Option<io::Error> + Send + Sync + 'static) -> Self {
        Faults(Some(Arc::new(hook)))
    }

    /// Lets the first `n` operations of kind `op` succeed and fails every
    /// later one.
    pub fn fail_after(op: FileOp, n: u64) -> Self {
        let seen = AtomicU64::new(0);
        Faults::new(move |o, _| {
            (o == op && seen.fetch_add(1, Ordering::Relaxed) >= n).then(injected_error)
        })
    }

    /// Fails every fdatasync while a file exists at `trigger`.
    pub fn fail_fsync_while_exists(trigger: PathBuf) -> Self {
        Faults::new(move |o, _| (o == FileOp::Fdatasync && trigger.exists()).then(injected_error))
    }

    /// The faults asked for by the test-only [`FAIL_FSYNC_ENV`] variable
    /// (none when it is unset).
    pub fn from_env() -> Self {
        match std::env::var_os(FAIL_FSYNC_ENV) {
            Some(p) if !p.is_empty() => {
                tracing::warn!(
                    trigger = %Path::new(&p).display(),
                    "{FAIL_FSYNC_ENV} is set: fsync fails while the trigger file exists (test only)"
                );
                Faults::fail_fsync_while_exists(PathBuf::from(p))
            }
            _ => Faults::none(),
        }
    }

    /// Whether `op` on `path` must fail.
    pub(crate) fn check(&self, op: FileOp, path: &Path) -> io::Result<()> {
        match self.0.as_ref().and_then(|h| h(op, path)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
