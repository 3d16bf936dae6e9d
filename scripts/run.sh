#!/usr/bin/env bash
# The main job: builds zraft, starts a local 3-node cluster (in this process:
# each node is its own set of threads talking over ZeroMQ inproc) and runs a
# short benchmark against it, first on memory storage, then on the durable
# log with fdatasync. Prints the bench tables; the cluster stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-2}" --target zraft-bench
dir=$(mktemp -d "${TMPDIR:-/tmp}/zraft-run.XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo "== 3-node cluster, memory storage, 16 clients, 3 s"
build/bench/zraft-bench --nodes 3 --clients 16 --duration 3 --threads \
  --json "$dir/memory.json"
echo "== 3-node cluster, durable log (fdatasync), 16 clients, 3 s"
build/bench/zraft-bench --nodes 3 --clients 16 --duration 3 \
  --storage disk --dir "$dir" --json "$dir/disk.json"
echo "== JSON"
cat "$dir/memory.json" "$dir/disk.json"
