//! Conformance: trace validation and linearizability checking.
//!
//! - [`validate`]: replays `raft-trace/1` runs and rejects the first event that
//!   breaks message identity or a global Raft invariant.
//! - [`linearizability`]: Porcupine's algorithm for client histories, with
//!   models for a compare-and-set register, a key-value store and our own
//!   `raftkv` store, readers for `raft-trace/1`, Jepsen and EDN histories,
//!   and explanations (text and HTML) of a violation.

pub mod linearizability;
pub mod validate;
