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

pub mod error;
pub mod record;
mod recovery;
pub mod snapshot;
pub mod wal;

pub use error::{Result, StorageError};
pub use record::{HardState, MAX_RECORD_LEN};
pub use snapshot::{load_latest_snapshot, SnapshotMeta};
pub use wal::{Entry, Recovered, Wal, WalOptions, WalStats};
