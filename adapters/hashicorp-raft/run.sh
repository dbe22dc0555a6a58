#!/usr/bin/env bash
# Runs hashicorp/raft (1.1, Consul's Raft; Go) under faults and validates
# every trace:
#   adapters/hashicorp-raft/run.sh --runs N --out DIR [driver flags]
# Installs Debian's golang-go and golang-github-hashicorp-raft-dev if `go`
# or hashicorp/raft's source is missing (apt-get, non-interactive, sudo
# unless root), builds the Go driver offline (GOPATH mode, Debian's source)
# into target/, builds raftcheck (release), runs the driver once per seed
# 1..N (each run writes DIR/run-SEED.ndjson) and then
#   raftcheck validate DIR
# Driver flags (see `hashicorpraftdriver -h`): --faults, --duration,
# --heartbeat-timeout, --clients, --keys, --snapshot-threshold, ...
# Its exit code is validate's (0 every run valid, 1 a violation, 3
# inconclusive).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
runs=10
out=hashicorp-raft-traces
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    --*) extra+=("-${1#--}" "$2"); shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
src=/usr/share/gocode/src/github.com/hashicorp/raft
if ! command -v go >/dev/null 2>&1 || [ ! -d "$src" ]; then
  sudo=
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "== installing golang-go golang-github-hashicorp-raft-dev" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    golang-go golang-github-hashicorp-raft-dev >&2
fi
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$target" "$out"
echo "== building the hashicorp/raft driver into $target/hashicorpraftdriver" >&2
(cd "$here/go" && GO111MODULE=off GOPATH="$here/go:/usr/share/gocode" GOPROXY=off \
  GOFLAGS= GOCACHE="$target/go-cache" go build -o "$target/hashicorpraftdriver" hashicorpraftdriver)
echo "== building raftcheck (release)" >&2
(cd "$root" && cargo build --release --locked --bin raftcheck >&2)
for seed in $(seq 1 "$runs"); do
  "$target/hashicorpraftdriver" -seed "$seed" -out "$out/run-$seed.ndjson" ${extra[@]+"${extra[@]}"} >&2
done
exec "$target/release/raftcheck" validate "$out"
