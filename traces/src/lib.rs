//! `raft-trace`: the `raft-trace/1` format, the public contract between Raft
//! implementations that emit traces and the checkers that read them.
//!
//! A trace is newline-delimited JSON. The first line is a [`Header`]; every
//! other line is a [`Record`]: an event of one Raft node ([`NodeEvent`]) or an
//! event of a client ([`ClientEvent`]). A *history* is the client events alone,
//! and may stand as a file of its own. `traces/SCHEMA.md` documents the format
//! for implementers; `traces/schema.json` is the same as a JSON Schema.
//!
//! Reading is streaming and memory-bounded ([`TraceReader`]); every error names
//! the file, the line and the field. Writing is buffered ([`TraceWriter`]).
//! [`import`] converts other implementations' traces (etcd-io/raft's) to this
//! format.

mod error;
mod event;
mod fast;
mod history;
pub mod import;
mod read;
pub mod sink;
mod write;

pub use error::{ErrorKind, TraceError};
pub use event::*;
pub use history::*;
pub use read::{read_all, read_file, TraceReader, DEFAULT_MAX_LINE_BYTES};
pub use write::TraceWriter;

/// The format identifier every header must carry.
pub const FORMAT: &str = "raft-trace/1";

/// For tests of this crate only: the reader's fast path on its own.
#[doc(hidden)]
pub fn __fast_decode(line: &[u8]) -> Option<Record> {
    fast::decode(line)
}

/// For tests of this crate only: the reader's fast path as the reader runs
/// it, remembering what it read of earlier lines.
#[doc(hidden)]
#[derive(Default)]
pub struct __FastDecoder(fast::PostCache);

impl __FastDecoder {
    pub fn decode(&mut self, line: &[u8]) -> Option<Record> {
        fast::decode_with(line, &mut self.0)
    }
}

/// For tests of this crate only: the reader's slow path on its own (the
/// line's record as the reader decodes it without the fast path, before
/// the checks against the header and earlier lines).
#[doc(hidden)]
pub fn __slow_decode(line: &[u8]) -> Result<Record, TraceError> {
    read::slow_decode(line)
}
