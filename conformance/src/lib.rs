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

/// `n` and `noun`, plural unless `n` is 1: "1 operation", "2 operations".
pub fn count(n: u64, noun: &str) -> String {
    count_as(n, noun, &format!("{noun}s"))
}

/// `n` and `one` or `many`, for a noun whose plural is not its singular
/// and an `s` ("1 entry", "2 entries").
pub fn count_as(n: u64, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(super::count(1, "operation"), "1 operation");
        assert_eq!(super::count(0, "run"), "0 runs");
        assert_eq!(super::count_as(1, "entry", "entries"), "1 entry");
        assert_eq!(super::count_as(3, "entry", "entries"), "3 entries");
        assert_eq!(super::count(2, "message"), "2 messages");
    }
}
