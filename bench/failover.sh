#!/usr/bin/env bash
# failover.sh ZRAFTD ROUNDS [restart]: 3 zraftd on 127.0.0.1 (election
# timeout 300-600 ms, heartbeat 75 ms, durable log). Each round kills -9
# the leader and prints how long the two others took to elect a new one and
# to agree on it (bench/failover_watch.py), then restarts the old leader
# and lets it catch up. With "restart", each round first restarts a
# follower (its connections are new) and lets it catch up. Ends with the
# medians. Figures, not a test: docs/failure-handling.md.
set -euo pipefail
ZRAFTD=${1:?usage: failover.sh ZRAFTD ROUNDS [restart]}
ROUNDS=${2:-10}
MODE=${3:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../test/lib/ports.sh
. "$here/../test/lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-failover.XXXXXX")
declare -A pids=()
pass=0
fail=0
# shellcheck source=../test/lib/procs.sh
. "$here/../test/lib/procs.sh"
for id in 1 2 3; do start "$id"; done
wait_for 20 has_leader 1 2 3 || { echo "no leader" >&2; exit 1; }
elected=()
agreed=()
for r in $(seq 1 "$ROUNDS"); do
  L=$(wait_leader 1 2 3)
  if [ "$MODE" = restart ]; then
    F=$((L % 3 + 1))
    kill -KILL "${pids[$F]}"
    wait "${pids[$F]}" 2>/dev/null || true
    start "$F"
  fi
  put "$L" "k$r" "v$r" >/dev/null
  target=$(field "$L" commit_index)
  for id in 1 2 3; do wait_for 20 applied_at_least "$id" "$target"; done
  others=()
  for id in 1 2 3; do [ "$id" = "$L" ] || others+=("$id"); done
  if ! read -r e a n < <(python3 "$here/failover_watch.py" "${pids[$L]}" \
    $((base + 100 + others[0])) $((base + 100 + others[1]))); then
    echo "round $r: no agreed leader within 20 s" >&2
    exit 1
  fi
  wait "${pids[$L]}" 2>/dev/null || true
  unset "pids[$L]"
  echo "round $r: leader $L killed; node $n elected after $e ms, agreed after $a ms"
  elected+=("$e")
  agreed+=("$a")
  start "$L"
  target=$(field "$n" commit_index)
  wait_for 20 applied_at_least "$L" "$target"
done
python3 - "${elected[*]}" "${agreed[*]}" <<'PY'
import statistics, sys
e = [int(x) for x in sys.argv[1].split()]
a = [int(x) for x in sys.argv[2].split()]
print("elected: median %d ms, max %d ms; agreed: median %d ms, max %d ms"
      % (statistics.median(e), max(e), statistics.median(a), max(a)))
PY
