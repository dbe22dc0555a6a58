//! Converters from other implementations' trace formats to `raft-trace/1`.
//!
//! Each converter reads the other format line by line and reports bad input
//! as the reader does: a [`crate::TraceError`] naming the file, the line and
//! the field.

pub mod etcd_raft;
