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

# The etcd target of `raftcheck jepsen` is tested against Debian's etcd 3.4,
# and its HTML report is rendered in Debian's headless Chromium.
if ! command -v etcd >/dev/null || [ ! -x /usr/bin/chromium ]; then
    echo "== installing etcd-server and chromium (Debian) for the jepsen tests"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server chromium >/dev/null
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== loom (raftkv concurrency primitives: peer queue; node waiters, apply notifier, trace buffer, shutdown)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
  cargo test -p raftkv --release --locked --test loom_queue --test loom_node
