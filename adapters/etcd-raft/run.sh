#!/usr/bin/env bash
# Runs etcd's raft package (3.4, Go) in raftcheck's simulator:
#   adapters/etcd-raft/run.sh --seeds N --out DIR [more `raftcheck sim` flags]
# Installs Debian's golang-go and golang-etcd-server-dev if `go` or etcd's
# raft source is missing (apt-get, non-interactive, sudo unless root),
# builds the Go driver offline (GOPATH mode, Debian's source) into target/,
# builds raftcheck (release) and runs
#   raftcheck sim --impl etcd-raft --seeds N --trace-dir DIR
# Its exit code is the simulator's (0 every run valid, 1 a violation, 2 bad
# usage, 3 inconclusive).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seeds=100
out=etcd-raft-traces
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
src=/usr/share/gocode/src/go.etcd.io/etcd/raft
if ! command -v go >/dev/null 2>&1 || [ ! -d "$src" ]; then
  sudo=
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "== installing golang-go golang-etcd-server-dev" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    golang-go golang-etcd-server-dev >&2
fi
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$target"
echo "== building the etcd raft driver into $target/etcdraftdriver" >&2
(cd "$here/go" && GO111MODULE=off GOPATH="$here/go:/usr/share/gocode" GOPROXY=off \
  GOFLAGS= GOCACHE="$target/go-cache" go build -o "$target/etcdraftdriver" etcdraftdriver)
echo "== building raftcheck (release)" >&2
(cd "$root" && cargo build --release --locked --bin raftcheck >&2)
exec "$target/release/raftcheck" sim --impl etcd-raft --etcd-raft-driver "$target/etcdraftdriver" \
  --seeds "$seeds" --trace-dir "$out" ${extra[@]+"${extra[@]}"}
