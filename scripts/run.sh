#!/usr/bin/env bash
# The main job: builds zraft, starts a local 3-node cluster of zraftd
# processes on 127.0.0.1 (ZeroMQ TCP between them, durable log with
# fdatasync), shows a write and a read with curl, its status with zraftctl
# and that it serves the cluster page, runs a short zraft-bench against it
# over HTTP (with an HTML report, build/run-report.html), then the
# in-process bench, and stops the cluster (SIGTERM; exit codes checked).
# Everything is stopped even on failure.
# The nodes talk CurveZMQ (keys made with zraftd keygen in the scratch
# directory; docs/security.md says why this is the default);
# ZRAFT_SECURITY=none runs them over plain TCP. The HTTP API stays plain
# and open: it binds 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-2}" --target zraftd zraftctl zraft-bench
dir=$(mktemp -d "${TMPDIR:-/tmp}/zraft-run.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
base=${ZRAFT_PORT_BASE:-17100}
security=${ZRAFT_SECURITY:-curve}
ic=""
sec_args=()
for i in 1 2 3; do
  key=""
  if [ "$security" = curve ]; then
    mkdir -p "$dir/n$i"
    key="$(build/server/zraftd keygen --dir "$dir/n$i")@"
  fi
  ic="$ic${ic:+,}$i=${key}127.0.0.1:$((base + i))"
done
[ "$security" = none ] || sec_args=(--security "$security")
echo "== peers: security $security"
for i in 1 2 3; do
  build/server/zraftd --id "$i" --raft-addr "127.0.0.1:$((base + i))" \
    --http-addr "127.0.0.1:$((base + 10 + i))" --data-dir "$dir/n$i" \
    "${sec_args[@]}" --initial-cluster "$ic" 2>"$dir/log$i" &
  pids+=($!)
done
h1=127.0.0.1:$((base + 11))
echo "== waiting for a leader"
for _ in $(seq 1 200); do
  leader=$(curl -s --max-time 2 "http://$h1/cluster/status" |
    python3 -c 'import sys,json; print(json.load(sys.stdin).get("leader") or "")' 2>/dev/null || true)
  [ -n "$leader" ] && break
  sleep 0.05
done
[ -n "$leader" ] || { echo "no leader"; cat "$dir"/log*; exit 1; }
echo "leader: node $leader"
echo "== curl: write through node 2, read through node 3"
(set -x
 curl -s -L --max-time 10 -X PUT --data-binary 'hello zraft' "http://127.0.0.1:$((base + 12))/kv/greeting" -w '%{http_code}\n'
 curl -s -L --max-time 10 "http://127.0.0.1:$((base + 13))/kv/greeting" -w '\n'
 curl -s --max-time 10 "http://$h1/cluster/status" -w '\n')
echo "== zraftctl status"
build/ctl/zraftctl --endpoints "$h1,127.0.0.1:$((base + 12)),127.0.0.1:$((base + 13))" status
echo "== the cluster page: http://$h1/ ($(curl -s --max-time 10 "http://$h1/" | wc -c) bytes)"
echo "== zraft-bench over HTTP + ZeroMQ TCP (disk, fdatasync), 16 clients, 3 s"
build/bench/zraft-bench --http "$h1" --clients 16 --duration 3 --json "$dir/tcp.json" \
  --report build/run-report.html
echo "== zraft-bench in one process (memory), 16 clients, 3 s"
build/bench/zraft-bench --nodes 3 --clients 16 --duration 3 --threads --json "$dir/mem.json"
cat "$dir/tcp.json" "$dir/mem.json"
echo "== stopping the cluster (SIGTERM)"
for p in "${pids[@]}"; do kill -TERM "$p"; done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
pids=()
[ "$rc" = 0 ] && echo "all nodes exited 0" || { echo "a node failed to stop cleanly"; exit 1; }
