//! Conformance: trace validation and linearizability checking.
