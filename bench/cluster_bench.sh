#!/usr/bin/env bash
# cluster_bench.sh - one measurement of zraftd under zraft-bench: starts 3
# zraftd processes on 127.0.0.1 (durable log, fdatasync on), waits for a
# leader, drives the leader with `zraft-bench --http` (or --resp) for a fixed
# time and prints one line:
#   label clients writes/s p50_us p99_us errors cpu_s_per_million_writes
# where the CPU figure is the sum of utime+stime of the three processes over
# the run (from /proc/PID/stat), divided by the committed writes.
#
# Usage: cluster_bench.sh ZRAFTD ZRAFT_BENCH CLIENTS SECONDS LABEL [BENCH_ARGS...]
# Environment: PERF=FILE records `perf record -g` of the three processes
# during the run into FILE; PERFSTAT=FILE counts context switches instead; PORT_BASE (default random); PAYLOAD (256);
# MODE=http|resp (http).
set -euo pipefail
ZRAFTD=$1 BENCH=$2 CLIENTS=$3 SECS=$4 LABEL=$5
shift 5
payload=${PAYLOAD:-256}
mode=${MODE:-http}
base=${PORT_BASE:-$((20000 + RANDOM % 10000))}
dir=$(mktemp -d "${TMPDIR:-/tmp}/zraft-cb.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ic="1=127.0.0.1:$((base + 1)),2=127.0.0.1:$((base + 2)),3=127.0.0.1:$((base + 3))"
for i in 1 2 3; do
  extra=()
  if [ "$mode" = resp ]; then extra=(--resp-addr "127.0.0.1:$((base + 20 + i))"); fi
  "$ZRAFTD" --id "$i" --raft-addr "127.0.0.1:$((base + i))" \
    --http-addr "127.0.0.1:$((base + 10 + i))" --data-dir "$dir/n$i" \
    --initial-cluster "$ic" --log-level warn "${extra[@]}" 2>"$dir/log$i" &
  pids+=($!)
done
leader=""
for _ in $(seq 1 400); do
  leader=$(curl -s --max-time 1 "http://127.0.0.1:$((base + 11))/cluster/status" |
    python3 -c 'import sys,json; d=json.load(sys.stdin); print(d.get("leader") or "")' 2>/dev/null || true)
  if [ -n "$leader" ]; then
    role=$(curl -s --max-time 1 "http://127.0.0.1:$((base + 10 + leader))/cluster/status" |
      python3 -c 'import sys,json; print(json.load(sys.stdin).get("role"))' 2>/dev/null || true)
    [ "$role" = leader ] && break
  fi
  leader=""
  sleep 0.05
done
[ -n "$leader" ] || { echo "no leader" >&2; cat "$dir"/log* >&2; exit 1; }
# The leader's HTTP address is registered a moment after it is elected.
curl -s -L --max-time 5 -o /dev/null -X PUT --data-binary warm \
  "http://127.0.0.1:$((base + 12))/kv/warmup"
cpu() {
  local t=0 p f
  for p in "${pids[@]}"; do
    read -r -a f <"/proc/$p/stat"
    t=$((t + f[13] + f[14]))
  done
  echo "$t"
}
c0=$(cpu)
perf_pid=""
if [ -n "${PERF:-}" ]; then
  perf record -g -o "$PERF" -p "$(IFS=,; echo "${pids[*]}")" 2>/dev/null &
  perf_pid=$!
elif [ -n "${PERFSTAT:-}" ]; then
  perf stat -e context-switches,task-clock -o "$PERFSTAT" \
    -p "$(IFS=,; echo "${pids[*]}")" 2>/dev/null &
  perf_pid=$!
fi
if [ "$mode" = resp ]; then
  target=(--resp "127.0.0.1:$((base + 20 + leader))")
else
  target=(--http "127.0.0.1:$((base + 10 + leader))")
fi
"$BENCH" "${target[@]}" --clients "$CLIENTS" --duration "$SECS" \
  --payload "$payload" --json "$dir/out.json" "$@" >/dev/null 2>"$dir/bench.err"
if [ -n "$perf_pid" ]; then
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
fi
c1=$(cpu)
hz=$(getconf CLK_TCK)
python3 - "$dir/out.json" "$LABEL" "$CLIENTS" "$((c1 - c0))" "$hz" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ticks, hz = int(sys.argv[4]), int(sys.argv[5])
cpu = ticks / hz
per_m = cpu / d["ops"] * 1e6 if d["ops"] else float("nan")
print(f'{sys.argv[2]} {sys.argv[3]} {d["writes_per_sec"]:.0f} {d["p50_us"]} '
      f'{d["p99_us"]} {d["errors"]} {per_m:.1f}')
EOF
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
