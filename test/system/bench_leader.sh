#!/usr/bin/env bash
# System test: zraft-bench keeps writing through leader changes.
#   An in-process 3-node cluster, 4 clients, leadership handed to the next
#   node every 250 ms (--transfer-every). A write in flight when the leader
#   changes fails (an error), and its client goes on with the new leader:
#   so there are writes, every transfer costs each client a few errors at
#   most, and the run ends on time. Before the fix, a client whose write
#   failed sent again at once to the old leader, in a loop of errors, and
#   wrote nothing more for the rest of the run.
# Usage: bench_leader.sh PATH/TO/zraft-bench
set -euo pipefail
BENCH=${1:?usage: bench_leader.sh PATH/TO/zraft-bench}
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-bench-leader.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$BENCH" --nodes 3 --clients 4 --payload 8 --duration 2 --transfer-every 250 \
  --json "$work/run.json" >"$work/out" 2>&1 || {
  cat "$work/out"
  exit 1
}
cat "$work/out"
python3 - "$work/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
clients, transfers, ops, errors = r["clients"], r["transfers"], r["ops"], r["errors"]
print(f"transfers {transfers}, writes {ops}, errors {errors}")
bad = []
if transfers < 3:
    bad.append(f"only {transfers} transfers were asked for")
if ops < 100:
    bad.append(f"only {ops} writes")
# Each transfer fails each client's write in flight, and a client may ask
# the old leader once more before the new one is known (one more error per
# 10 ms turn of the bench's main thread): a few per client per transfer.
limit = 10 * clients * (transfers + 1)
if errors > limit:
    bad.append(f"{errors} errors, more than {limit}: clients retried a node "
               "that no longer leads")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
