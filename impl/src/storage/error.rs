//! Errors of the durable storage layer.

use std::path::PathBuf;

/// An error from the write-ahead log or the snapshot store.
///
/// Every corruption error names the file and the byte offset of the first bad byte, so that
/// an operator can inspect it; the storage layer never drops data silently.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A system call failed. After a failed write or sync the WAL is poisoned.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        /// What was being done ("write", "fdatasync", "open", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record, a segment header or a snapshot file failed its checks.
    #[error("corrupt data in {} at byte offset {offset}: {reason}", .path.display())]
    Corrupt {
        /// The file that holds the bad data.
        path: PathBuf,
        /// Byte offset of the start of the bad record (or header) in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The log holds no term and vote although a snapshot file shows the node took part in
    /// the cluster: the WAL was deleted or emptied, and the node's durable term and vote are
    /// lost. Starting anyway could let it vote twice in one term.
    #[error(
        "{}: the write-ahead log holds no term and vote, but snapshot {} (index {index}, term {term}) shows this node took part in the cluster: its durable term and vote are lost and it could vote twice in a term; refusing to start (see \"A node that lost its WAL\" in impl/README.md)",
        .dir.display(),
        .snapshot.display()
    )]
    StateLost {
        /// The data directory.
        dir: PathBuf,
        /// The newest snapshot file.
        snapshot: PathBuf,
        /// Its last index and term.
        index: u64,
        term: u64,
    },
    /// A segment in the middle of the log is missing (segment numbers must be contiguous).
    #[error("missing WAL segment {} (found {} after it)", .missing.display(), .found.display())]
    MissingSegment {
        /// The path the missing segment would have.
        missing: PathBuf,
        /// The next segment that does exist.
        found: PathBuf,
    },
    /// The newest segment is missing: the segment before it is sealed, which it only is once
    /// the next one exists durably.
    #[error(
        "missing WAL segment {}: {} is sealed, so it existed (deleted?)",
        .missing.display(),
        .sealed.display()
    )]
    MissingLastSegment {
        /// The path the missing segment would have.
        missing: PathBuf,
        /// The sealed segment before it.
        sealed: PathBuf,
    },
    /// Another process (or another `Wal` in this process) has the directory open.
    #[error("the WAL directory is in use: {} is locked by another process", .path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An earlier write or sync failed: nothing more is accepted, the node must restart
    /// and recover from what is on disk.
    #[error(
        "the write-ahead log is poisoned by an earlier write or sync failure; restart and recover"
    )]
    Poisoned,
    /// The caller broke an invariant of the log (non-contiguous append, truncation below the
    /// snapshot, ...). Nothing was written.
    #[error("invalid WAL operation: {0}")]
    Invalid(String),
}

/// Result alias for the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.into();
    move |source| StorageError::Io { op, path, source }
}
