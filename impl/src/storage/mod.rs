//! Durable storage for a Raft node: a write-ahead log in checksummed segment files and
//! atomically written snapshot files.
//!
//! The storage layer knows nothing of the Raft core's types: entries carry opaque bytes.
//!
//! Files in the data directory:
//! - `wal-<16 hex digits>.log`: log segments, numbered contiguously (see [`record`] for the
//!   format). Each segment starts with the hard state and snapshot position current at its
//!   creation, so a prefix of segments can be removed once a snapshot covers their entries.
//! - `snap-<index>-<term>.snap`: the newest snapshot (see [`snapshot`]).
//! - `LOCK`: an advisory lock held while a [`Wal`] is open.
//!
//! [`Wal`] is a synchronous API (it blocks in fdatasync); [`WalWriter`] runs it on its own thread
//! with group commit across concurrent submitters for use from async code.

pub mod error;
pub mod fault;
pub mod record;
mod recovery;
pub mod snapshot;
pub mod wal;
#[cfg(not(loom))]
pub mod writer;

pub use error::{Result, StorageError};
pub use fault::{Faults, FileOp};
pub use record::{HardState, MAX_RECORD_LEN};
pub use snapshot::{load_latest_snapshot, SnapshotMeta};
pub use wal::{Entry, Recovered, Wal, WalOptions, WalStats};
#[cfg(not(loom))]
pub use writer::{Progress, WalOp, WalWriter};
