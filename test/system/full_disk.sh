#!/usr/bin/env bash
# System test: the leader's disk fills up (a real file system, a small
# tmpfs per node, filled until ENOSPC).
#   the leader's write fails -> it stops (no leadership, no votes),
#   /healthz says 503 and /cluster/status names the error; the other two
#   elect a leader and keep serving; no acknowledged write is lost; SIGTERM
#   still exits 0; with space freed, the node restarts and catches up.
# Needs root (mount); skips, saying why, where tmpfs cannot be mounted.
# Usage: full_disk.sh PATH/TO/zraftd
set -euo pipefail
ZRAFTD=${1:?usage: full_disk.sh PATH/TO/zraftd}
# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-fulldisk.XXXXXX")
declare -A pids=()
mounts=()
pass=0
fail=0
data_sub=/data
log_tail=8
# shellcheck source=../lib/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

cleanup() {
  kill_nodes
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for id in 1 2 3; do
  mkdir -p "$work/n$id"
  if ! mount -t tmpfs -o size=16m tmpfs "$work/n$id" 2>/dev/null; then
    echo "SKIP full_disk: cannot mount a tmpfs here (needs root): the fault is"
    echo "     covered in-process by test/integration/test_fatal.c"
    exit 0
  fi
  mounts+=("$work/n$id")
done

for id in 1 2 3; do start "$id"; done
check "a leader is elected" wait_for 20 has_leader 1 2 3
L=$(wait_leader 1 2 3)
acked=()
for i in $(seq 1 20); do
  [ "$(put "$L" "k$i" "v$i")" = 204 ] && acked+=("$i")
done
check "20 writes before the disk fills" [ "${#acked[@]}" = 20 ]

# Fill the leader's file system, then write through it until a write fails.
dd if=/dev/zero of="$work/n$L/fill" bs=64k >/dev/null 2>&1 || true
value=$(head -c 4096 /dev/zero | tr '\0' x)
code=204
for i in $(seq 21 400); do
  code=$(put "$L" "k$i" "$value")
  [ "$code" = 204 ] || break
  acked+=("$i")
done
check "a write on the full leader fails ($code)" [ "$code" != 204 ]
healthz() { curl -s -o /dev/null -w '%{http_code}' "http://$(http "$L")/healthz"; }
check "/healthz of the failed node is 503" wait_for 10 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://$(http "$L")/healthz)\" = 503 ]"
check "its status names the error" [ "$(field "$L" fatal_code)" = ENOSPACE ]
check "its status no longer says leader" [ "$(field "$L" role)" = failed ]
rest=()
for id in 1 2 3; do [ "$id" = "$L" ] || rest+=("$id"); done
check "the other two elect a leader" wait_for 20 has_leader "${rest[@]}"
N=$(wait_leader "${rest[@]}")
check "and take writes" wait_for 20 bash -c "[ \"\$(curl -s -L --max-time 5 -o /dev/null -w '%{http_code}' -X PUT --data-binary full http://$(http "$N")/kv/after)\" = 204 ]"
# A read that fails (a leader change on a loaded machine: 503, time-out) is
# asked again until a deadline; only a read that answers another value, or
# never answers, counts the write as lost.
reads_as() { [ "$(get "$N" "$1")" = "$2" ]; }
lost=0
for i in "${acked[@]}"; do
  if [ "$i" -le 20 ]; then want="v$i"; else want=$value; fi
  wait_for 10 reads_as "k$i" "$want" || lost=$((lost + 1))
done
check "no acknowledged write is lost (${#acked[@]} checked)" [ "$lost" = 0 ]
check "the failure is logged once, loudly" \
  [ "$(grep -c 'FATAL: the node stopped' "$work/log$L")" = 1 ]

# SIGTERM on the failed node exits 0; with space freed it restarts and
# catches up.
kill -TERM "${pids[$L]}"
ok=1
wait "${pids[$L]}" || ok=0
unset "pids[$L]"
check "SIGTERM stops the failed node with exit 0" [ "$ok" = 1 ]
rm -f "$work/n$L/fill"
start "$L"
target=$(field "$N" commit_index)
check "restarted with space, it catches up" wait_for 20 applied_at_least "$L" "$target"
check "and is healthy" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$(http "$L")/healthz")" = 200 ]
check "no sanitizer report in any node's log" no_sanitizer_report "$work"
echo "$pass passed, 0 failed"
