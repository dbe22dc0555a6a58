#!/usr/bin/env bash
# Side-by-side benchmark: raftkv (3 `raftcheck node` processes) against etcd
# (3 members from Debian's etcd-server), both on loopback with fsync on (their
# defaults), driven by the same load generator (`raftcheck bench`, keep-alive
# HTTP/1.1, one request outstanding per client, 64-byte values over 1,000 keys).
# Both clusters run during the whole script and each (mix, clients) point is
# measured for etcd and then raftkv back to back, ROUNDS times in alternation,
# so background load drifts hit both alike; each figure in the table is the
# median of its rounds.
#
# Usage: impl/bench/etcd-compare.sh
# Environment: DURATION (seconds per point, default 5), WARMUP (default 1),
#   ROUNDS (alternating etcd/raftkv measurements per point, default 3),
#   CLIENTS (default "1 16 64"), MIXES (default "write=100 write=50,read=50"),
#   RAFTCHECK (a prebuilt binary; default: build target/release/raftcheck).
# Prints a Markdown table with both systems' throughput and p50/p99/p99.9 and
# the ratios raftkv/etcd (throughput: higher is better for raftkv; p99: lower),
# then each point's throughput ratio in every round.
set -euo pipefail

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 16 64"}
MIXES=${MIXES:-"write=100 write=50,read=50"}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

log() { echo "etcd-compare: $*" >&2; }

# --- etcd ------------------------------------------------------------------
if ! command -v etcd >/dev/null; then
    log "etcd is missing: installing Debian's etcd-server and etcd-client"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server etcd-client >&2
fi
log "$(etcd --version | head -1)"

# --- raftcheck -------------------------------------------------------------
if [ -z "${RAFTCHECK:-}" ]; then
    log "building raftcheck (release)"
    (cd "$ROOT" && cargo build --release --quiet --bin raftcheck)
    RAFTCHECK="$ROOT/target/release/raftcheck"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/etcd-compare.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    # The cluster's node processes, in case their parent died first.
    if [ -f "$TMP/raftkv.json" ]; then
        for p in $(grep -o '"pids":\[[0-9,]*\]' "$TMP/raftkv.json" | grep -o '[0-9]\+'); do
            kill "$p" 2>/dev/null || true
        done
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_base() {
    # Six consecutive free ports: 3 client, 3 peer.
    local base
    for _ in $(seq 50); do
        base=$((20000 + RANDOM % 30000))
        local ok=1
        for i in 0 1 2 3 4 5; do port_free $((base + i)) || ok=0; done
        if [ $ok = 1 ]; then echo "$base"; return; fi
    done
    log "no free ports"; exit 1
}

BASE=$(free_base)
CLUSTER=""
ETCD_EPS=""
for i in 1 2 3; do
    CLUSTER+="${CLUSTER:+,}e$i=http://127.0.0.1:$((BASE + 2 + i))"
    ETCD_EPS+="${ETCD_EPS:+,}127.0.0.1:$((BASE + i - 1))"
done
for i in 1 2 3; do
    c=$((BASE + i - 1)); p=$((BASE + 2 + i))
    etcd --name "e$i" --data-dir "$TMP/etcd/e$i" \
        --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster "$CLUSTER" --initial-cluster-state new --initial-cluster-token etcd-compare \
        --logger zap --log-level error >"$TMP/etcd-$i.log" 2>&1 &
    PIDS+=($!)
done
log "etcd endpoints $ETCD_EPS"

# --- raftkv ----------------------------------------------------------------
"$RAFTCHECK" cluster --nodes 3 --data-dir "$TMP/raftkv" --json >"$TMP/raftkv.json" 2>"$TMP/raftkv.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/raftkv.json" ] && break; sleep 0.1; done
RAFT_EPS=$(grep -o '"endpoints":\[[^]]*\]' "$TMP/raftkv.json" | sed 's/"endpoints":\[//; s/\]//; s/"//g')
[ -n "$RAFT_EPS" ] || { log "raftcheck cluster printed no endpoints"; cat "$TMP/raftkv.log" >&2; exit 1; }
log "raftkv endpoints $RAFT_EPS"

field() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }

# bench TARGET ENDPOINTS CLIENTS MIX -> "ops p50 p99 p999 errors"
bench() {
    local out
    out=$("$RAFTCHECK" bench --target "$1" --endpoints "$2" --clients "$3" --mix "$4" \
        --duration "$DURATION" --warmup "$WARMUP" --json 2>>"$TMP/bench.log") || {
        log "bench $1 $3 clients $4 failed:"; tail -5 "$TMP/bench.log" >&2; exit 1; }
    echo "$(echo "$out" | field ops_per_sec) $(echo "$out" | field p50_ms) $(echo "$out" | field p99_ms) $(echo "$out" | field p999_ms) $(echo "$out" | field errors)"
}

# median "ops p50 p99 p999 errors" lines (one per round) -> each column's
# median (the lower middle one for an even count), errors summed.
median() {
    local lines mid i out=""
    lines=$(cat)
    mid=$((($(printf '%s\n' "$lines" | wc -l) + 1) / 2))
    for i in 1 2 3 4; do
        out+="$(printf '%s\n' "$lines" | cut -d' ' -f"$i" | sort -g | sed -n "${mid}p") "
    done
    echo "$out$(printf '%s\n' "$lines" | awk '{ s += $5 } END { print s + 0 }')"
}

ROWS=()
SPREAD=()
for mix in $MIXES; do
    for c in $CLIENTS; do
        es=""; rs=""; ratios=""
        for round in $(seq "$ROUNDS"); do
            log "mix $mix, $c clients, round $round of $ROUNDS: etcd"
            e=$(bench etcd "$ETCD_EPS" "$c" "$mix")
            log "mix $mix, $c clients, round $round of $ROUNDS: raftkv"
            r=$(bench raftkv "$RAFT_EPS" "$c" "$mix")
            es+="$e"$'\n'; rs+="$r"$'\n'
            ratios+=" $(echo "${e%% *} ${r%% *}" | awk '{ printf "%.2fx", ($1 > 0 ? $2 / $1 : 0) }')"
        done
        e=$(printf '%s' "$es" | median)
        r=$(printf '%s' "$rs" | median)
        ROWS+=("$mix $c $e $r")
        SPREAD+=("$mix, $c clients:$ratios")
    done
done

echo
echo "raftkv vs etcd $(etcd --version | head -1 | awk '{print $3}'): 3 nodes each on loopback, fsync on, ${DURATION}s per point after ${WARMUP}s warm-up, median of $ROUNDS alternating rounds, $(nproc) cores ($(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
echo
echo "| mix | clients | etcd ops/s | etcd p50 | etcd p99 | etcd p99.9 | raftkv ops/s | raftkv p50 | raftkv p99 | raftkv p99.9 | ops/s raftkv/etcd | p99 raftkv/etcd |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    echo "$row" | awk '{
        printf "| %s | %d | %.0f | %.2f ms | %.2f ms | %.2f ms | %.0f | %.2f ms | %.2f ms | %.2f ms | %.2fx | %.2fx |\n",
            $1, $2, $3, $4, $5, $6, $8, $9, $10, $11, ($3 > 0 ? $8 / $3 : 0), ($5 > 0 ? $10 / $5 : 0)
        if ($7 + $12 > 0) printf "errors at %s/%d clients: etcd %d, raftkv %d\n", $1, $2, $7, $12 > "/dev/stderr"
    }'
done

echo
echo "ops/s raftkv/etcd in each round:"
for line in "${SPREAD[@]}"; do
    echo "- $line"
done
