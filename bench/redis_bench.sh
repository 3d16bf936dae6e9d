#!/usr/bin/env bash
# redis_bench.sh - redis-benchmark against the leader and against a follower
# of a 3-node zraftd cluster (127.0.0.1, durable log with fdatasync, RESP
# port on every node; a follower forwards writes and linearizable reads to
# the leader). Each round starts a fresh cluster and runs both targets, in
# alternating order; prints one line per run:
#   round target SET_rps GET_rps errors
# then the medians per target. Load figures, never test assertions.
#
# Usage: redis_bench.sh ZRAFTD [ROUNDS] [-- REDIS_BENCHMARK_ARGS...]
#   default arguments: -q -t set,get -c 50 -n 200000 -P 16
set -euo pipefail
ZRAFTD=${1:?usage: redis_bench.sh ZRAFTD [ROUNDS] [-- ARGS...]}
shift
rounds=3
if [ $# -gt 0 ] && [ "$1" != -- ]; then rounds=$1; shift; fi
[ "${1:-}" = -- ] && shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-q -t set,get -c 50 -n 200000 -P 16)
dir=$(mktemp -d "${TMPDIR:-/tmp}/zraft-rb.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

start() { # base: 3 nodes; sets L to the leader's id
  local base=$1 i leader=""
  mkdir -p "$dir/r$base"
  local ic="1=127.0.0.1:$((base + 1)),2=127.0.0.1:$((base + 2)),3=127.0.0.1:$((base + 3))"
  for i in 1 2 3; do
    "$ZRAFTD" --id "$i" --raft-addr "127.0.0.1:$((base + i))" \
      --http-addr "127.0.0.1:$((base + 10 + i))" --resp-addr "127.0.0.1:$((base + 20 + i))" \
      --data-dir "$dir/r$base/n$i" --initial-cluster "$ic" --log-level warn \
      >"$dir/log$base-$i" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 400); do
    leader=$(curl -s --max-time 1 "http://127.0.0.1:$((base + 11))/cluster/status" |
      python3 -c 'import sys,json; print(json.load(sys.stdin).get("leader") or "")' 2>/dev/null || true)
    if [ -n "$leader" ] && redis-cli -p $((base + 20 + leader)) INFO 2>/dev/null | grep -q '^role:master'; then
      L=$leader
      return
    fi
    sleep 0.05
  done
  echo "no leader" >&2
  exit 1
}

run() { # round target port: prints "round target SET GET errors"
  local out set get err
  out=$(redis-benchmark -p "$3" "${args[@]}" 2>&1 | tr '\r' '\n')
  set=$(grep -E '^SET: [0-9]' <<<"$out" | awk '{print $2}')
  get=$(grep -E '^GET: [0-9]' <<<"$out" | awk '{print $2}')
  err=$(grep -ci error <<<"$out" || true)
  echo "$1 $2 ${set:-0} ${get:-0} $err"
}

results=()
for r in $(seq 1 "$rounds"); do
  base=$((20000 + RANDOM % 10000))
  start "$base"
  F=$((L % 3 + 1))
  # Let the leader register its addresses (a forwarded write goes through).
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p $((base + 20 + F)) SET warm 1 2>/dev/null)" = OK ] && break
    sleep 0.05
  done
  if [ $((r % 2)) = 1 ]; then order=(leader follower); else order=(follower leader); fi
  for t in "${order[@]}"; do
    if [ "$t" = leader ]; then port=$((base + 20 + L)); else port=$((base + 20 + F)); fi
    line=$(run "$r" "$t" "$port")
    echo "$line"
    results+=("$line")
  done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
for t in leader follower; do
  printf '%s\n' "${results[@]}" | awk -v t="$t" '$2 == t' | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
s = statistics.median(float(r[2]) for r in rows)
g = statistics.median(float(r[3]) for r in rows)
e = sum(int(r[4]) for r in rows)
print(f"median {rows[0][1]}: SET {s:.0f}/s GET {g:.0f}/s errors {e} ({len(rows)} runs)")'
done
