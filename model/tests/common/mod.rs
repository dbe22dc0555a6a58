//! Helpers shared by the model's rule tests.

use raft_model::types::{Command, Entry, Op};

/// Client 1's write of `seq` (request `seq`), appended in `term`.
pub fn entry(term: u64, seq: u64) -> Entry {
    Entry {
        term,
        cmd: Command {
            client: 1,
            seq,
            op: Op::Write(seq),
        },
    }
}
