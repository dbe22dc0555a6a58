#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test in the workspace, and
# the loom model checks of the store's concurrency primitives.
# This is the README's test command, and exactly what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Debian packages the tests need: etcd 3.4 (the etcd target of `raftcheck
# jepsen`), headless Chromium (its HTML report is rendered), Go and etcd's raft
# source and hashicorp/raft's (the etcd-raft and hashicorp-raft adapters' Go
# drivers are built offline from them).
need=""
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
[ -x /usr/bin/chromium ] || need="$need chromium"
command -v go >/dev/null 2>&1 || need="$need golang-go"
[ -d /usr/share/gocode/src/go.etcd.io/etcd/raft ] || need="$need golang-etcd-server-dev"
[ -d /usr/share/gocode/src/github.com/hashicorp/raft ] || need="$need golang-github-hashicorp-raft-dev"
if [ -n "$need" ]; then
    echo "== installing from Debian:$need"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
# The adapter's tests build the Go driver and fail (not skip) without Go.
export RAFTCHECK_ETCD_RAFT_REQUIRED=1

echo "== cargo test"
cargo test --workspace --locked

echo "== loom (raftkv concurrency primitives: peer queue; node waiters, apply notifier, trace buffer, shutdown)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
  cargo test -p raftkv --release --locked --test loom_queue --test loom_node
