#!/usr/bin/env bash
# Mutation testing of the specification's rules (model/src/rules/) with the
# default suite as the test: every mutant cargo-mutants makes of a rule is
# built, then `cargo test -p raft-model --test suite --test bugs` runs the 18
# suite configurations exhaustively and fails on a violated property
# (Progress included), a panic, an unreached sometimes-property or a
# unique-state count that differs from its pin; and runs each planted bug in
# its configuration, which must still be caught (a mutant of a bug's own
# code path changes nothing without the bug). Not part of CI: it takes hours on 2 cores (about one minute per
# mutant). Results: $OUT/mutants.out (caught.txt, missed.txt, timeout.txt,
# unviable.txt); the survivors and why each survives are in model/README.md.
#
# Usage: model/mutants.sh [extra cargo-mutants flags, e.g. --shard 1/4 or
#   --file model/src/rules/elections.rs]
# Environment: OUT (default target/mutants/model).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/mutants/model}
if ! command -v cargo-mutants >/dev/null; then
    cargo install cargo-mutants --locked
fi
cd "$ROOT"
mkdir -p "$OUT"
exec cargo mutants \
    --package raft-model \
    --file 'model/src/rules/*.rs' \
    --test-package raft-model \
    --cargo-test-arg=--test --cargo-test-arg=suite \
    --cargo-test-arg=--test --cargo-test-arg=bugs \
    --output "$OUT" \
    "$@"
