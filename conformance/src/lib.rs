//! Conformance: trace validation and linearizability checking.

pub mod validate;
