#!/usr/bin/env bash
# Mutation testing with cargo-mutants (installed from crates.io if missing).
# Not part of CI: each target takes hours on 2 cores (one build and test run
# per mutant, about 30-60 s each).
#
#   ci/mutants.sh model [cargo-mutants flags]
#       The specification's rules (model/src/rules/, 361 mutants). The test
#       is `cargo test -p raft-model --test suite`: the 18 default-suite
#       configurations exhaustively, smallest first, failing on a violated
#       property (Progress included), a panic, an unreached
#       sometimes-property or a unique-state count that differs from its
#       pin. A mutant of a planted bug's own code path changes nothing
#       without the bug: run the survivors again with `--test bugs` added
#       (each planted bug must still be caught), e.g.
#       `ci/mutants.sh model --cargo-test-arg=--test --cargo-test-arg=bugs
#       --re 'clients.rs:55:15'`.
#   ci/mutants.sh core [cargo-mutants flags]
#       The raftkv core's election, replication and commit code and its
#       flow control (impl/src/core/election.rs, replication.rs with
#       maybe_commit, progress.rs; 206 mutants). The test is raftkv's unit
#       tests (the core's among them) and the simulator's tests
#       (`cargo test -p raftkv -p raft-sim --lib --test seeds --test progress
#       --test fast_path --test trace`): seeds with every fault, each run
#       checked by the simulator's invariants, its progress checks and
#       conformance's replay of its trace, and each planted bug caught.
#       raftkv's WAL, transport and loom tests are left out: they do not
#       reach this code and would double the time per mutant. cargo-mutants
#       runs its unmutated baseline on the mutated package alone, where
#       `--test seeds` does not exist, so the baseline is skipped (the same
#       command passes on main) and each mutant's tests get 300 s.
#       Add --in-place to run in a scratch checkout without copying it.
#
# Extra flags go to cargo-mutants, e.g. --shard 0/4 (shards are numbered
# from 0: 0/4 to 3/4), or --file FILE for one file. Results:
# $OUT/mutants.out (caught.txt, missed.txt, timeout.txt, unviable.txt;
# default OUT: target/mutants/TARGET). The survivors and why each survives
# are listed in model/README.md and impl/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:-}
case "$TARGET" in
model)
    ARGS=(--package raft-model --file 'model/src/rules/*.rs'
        --test-package raft-model
        --cargo-test-arg=--test --cargo-test-arg=suite)
    ;;
core)
    ARGS=(--workspace
        --file impl/src/core/election.rs --file impl/src/core/replication.rs
        --file impl/src/core/progress.rs
        --test-package raftkv,raft-sim
        --cargo-test-arg=--lib
        --cargo-test-arg=--test --cargo-test-arg=seeds
        --cargo-test-arg=--test --cargo-test-arg=progress
        --cargo-test-arg=--test --cargo-test-arg=fast_path
        --cargo-test-arg=--test --cargo-test-arg=trace
        --baseline=skip --timeout=300)
    ;;
*)
    echo "usage: ci/mutants.sh model|core [cargo-mutants flags]" >&2
    exit 2
    ;;
esac
shift
OUT=${OUT:-$ROOT/target/mutants/$TARGET}
if ! command -v cargo-mutants >/dev/null; then
    cargo install cargo-mutants --locked
fi
cd "$ROOT"
mkdir -p "$OUT"
exec cargo mutants "${ARGS[@]}" --output "$OUT" "$@"
