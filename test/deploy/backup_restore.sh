#!/usr/bin/env bash
# test/deploy/backup_restore.sh - the backup and restore of docs/deploy.md,
# with zraftd processes on 127.0.0.1.
#
#   test/deploy/backup_restore.sh PATH/TO/zraftd
#
# A 3-node cluster takes 50 writes; POST /cluster/snapshot to a follower;
# its data directory's `snapshot`, then `meta`, are copied (the backup); one
# more write follows. Every node is killed, and three empty data
# directories get the two files. The nodes start again with the same ids
# and addresses: they elect a leader, serve all 50 keys (linearizable reads
# through every node), not the write made after the backup, and take new
# writes. The same with `snapshot` alone is what docs/deploy.md warns
# against; not checked here.
set -euo pipefail
# ZRAFTD, base and pids are used by procs.sh.
# shellcheck disable=SC2034
ZRAFTD=${1:?usage: backup_restore.sh PATH/TO/zraftd}
# shellcheck disable=SC2034
# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-restore.XXXXXX")
# shellcheck disable=SC2034
declare -A pids=()
pass=0
fail=0
# shellcheck source=../lib/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

# leader: sets L once all three agree on a leader (an early election may
# still be settling right after the first agreement).
leader() {
  local deadline=$((SECONDS + 30))
  until L=$(leader_of 1 2 3); do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
for id in 1 2 3; do start "$id"; done
check "a leader is elected" leader
writes() {
  local k
  for k in $(seq 1 50); do
    [ "$(put "$L" "k$k" "v$k")" = 204 ] || { echo "    PUT k$k: failed"; return 1; }
  done
}
check "50 writes" writes
F=$((L % 3 + 1))
c=$(field "$L" commit_index)
check "follower $F has applied them" wait_for 30 applied_at_least "$F" "$c"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$(http "$F")/cluster/snapshot")
check "POST /cluster/snapshot to node $F (HTTP $code)" [ "$code" = 200 ]
snapped() { [ "$(field "$F" snapshot_index)" -ge "$c" ]; }
check "its snapshot covers index $c" wait_for 30 snapped
mkdir "$work/backup"
cp "$work/n$F/snapshot" "$work/backup/snapshot"
cp "$work/n$F/meta" "$work/backup/meta"
check "a write after the backup" [ "$(put "$L" after-backup x)" = 204 ]
kill_nodes
for id in 1 2 3; do
  rm -rf "$work/n$id"
  mkdir "$work/n$id"
  cp "$work/backup/snapshot" "$work/backup/meta" "$work/n$id/"
done
for id in 1 2 3; do start "$id"; done
check "restored: a leader is elected" leader
reads() {
  local k n bad=0
  for k in $(seq 1 50); do
    n=$((k % 3 + 1))
    [ "$(get "$n" "k$k")" = "v$k" ] || { echo "    GET k$k through node $n: wrong"; bad=$((bad + 1)); }
  done
  [ "$bad" = 0 ]
}
check "restored: all 50 keys, read through every node" reads
code=$(curl -s -L -o /dev/null -w '%{http_code}' "http://$(http 1)/kv/after-backup")
check "restored: the write after the backup is not there (HTTP $code)" [ "$code" = 404 ]
check "restored: new writes are taken" [ "$(put 2 new y)" = 204 ]
check "and read back" [ "$(get 3 new)" = y ]
kill_nodes
check "no sanitizer report in the nodes' logs" no_sanitizer_report "$work"
echo "$pass passed, $fail failed"
