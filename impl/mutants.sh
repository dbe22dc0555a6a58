#!/usr/bin/env bash
# Mutation testing of the raftkv core's election, replication and commit
# code (impl/src/core/election.rs, replication.rs with maybe_commit, and
# progress.rs) with the simulator as the test: every mutant cargo-mutants
# makes there is built, then the core's unit tests and the simulator's tests
# run (`cargo test -p raftkv --lib` and `cargo test -p raft-sim`: seeds with
# every fault, each run checked by the simulator's invariants, its progress
# checks and conformance's replay of its trace; the planted bugs each caught).
# Not part of CI: hours on 2 cores. Results: $OUT/mutants.out (caught.txt,
# missed.txt, timeout.txt, unviable.txt); the survivors and why each
# survives belong in impl/README.md.
#
# Usage: impl/mutants.sh [extra cargo-mutants flags, e.g. --shard 1/4 or
#   --file impl/src/core/progress.rs]
# Environment: OUT (default target/mutants/core).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/mutants/core}
if ! command -v cargo-mutants >/dev/null; then
    cargo install cargo-mutants --locked
fi
cd "$ROOT"
mkdir -p "$OUT"
exec cargo mutants \
    --package raftkv \
    --file impl/src/core/election.rs \
    --file impl/src/core/replication.rs \
    --file impl/src/core/progress.rs \
    --test-package raftkv --test-package raft-sim \
    --output "$OUT" \
    "$@"
