#!/usr/bin/env bash
# System test: CurveZMQ between real zraftd processes (docs/security.md).
# Three nodes with keys (zraftd keygen) elect a leader; a fourth process
# holding a key of its own cannot join (its handshakes are refused, logged
# with its key, counted in /metrics) nor inject an AppendEntries, and a
# member cannot speak for another one; a learner added with its key (POST
# /cluster/learners {"key"}) catches up and is promoted; a member removed
# from the configuration is refused once the change has committed.
# Injections use zraft-inject; a control injection with a member's own key
# shows that the same frame is taken from a member.
# Usage: security.sh PATH/TO/zraftd PATH/TO/zraft-inject
set -euo pipefail
ZRAFTD=${1:?usage: security.sh PATH/TO/zraftd PATH/TO/zraft-inject}
INJECT=${2:?usage: security.sh PATH/TO/zraftd PATH/TO/zraft-inject}
# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-sec.XXXXXX")
declare -A pids=()
pass=0
fail=0
log_tail=8
# shellcheck source=../lib/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

# Keys: nodes 1..4 and a stranger (s).
for n in 1 2 3 4 s; do
  mkdir -p "$work/keys/$n"
  "$ZRAFTD" keygen --dir "$work/keys/$n" >/dev/null
done
pub() { cat "$work/keys/$1/node.pub"; }
cluster="1=$(pub 1)@$(raft 1),2=$(pub 2)@$(raft 2),3=$(pub 3)@$(raft 3)"
# Node N uses keys/N; node 4 (started empty) knows the members' keys.
key_dir() { if [ "$1" = 9 ]; then echo s; else echo "$1"; fi; }
extra_args() {
  printf '%s\n' --security curve --node-key "$work/keys/$(key_dir "$1")/node.key"
  if [ "$1" = 4 ] || [ "$1" = 9 ]; then
    printf '%s\n' --peer-keys "1=$(pub 1),2=$(pub 2),3=$(pub 3)"
  fi
}
# inject NODE FROM TERM [KEYDIR]: one AppendEntries to NODE claiming FROM
# at TERM, as a CURVE client with KEYDIR's key (default: a fresh one).
inject() {
  local kf=()
  [ -z "${4-}" ] || kf=(--key-file "$work/keys/$4/node.key")
  "$INJECT" --endpoint "tcp://$(raft "$1")" --to "$1" --from "$2" \
    --term "$3" --server-key "$(pub "$1")" "${kf[@]}" --wait-ms 3000
}
refused() { field "$1" peers_refused; }
term_below() { local t; t=$(field "$1" term); [ -n "$t" ] && [ "$t" -lt "$2" ]; }
logged_key() { grep -qF "public key $2 is not in the configuration" "$work/log$1"; }
metric_refused_at_least() {
  local v
  v=$(curl -s --max-time 2 "http://$(http "$1")/metrics" |
    awk '$1 == "zraft_peers_refused_total" { print $2 }')
  [ -n "$v" ] && [ "$v" -ge "$2" ]
}

# leader NODES...: the leader they agree on, polled until a deadline (a
# leader seen a moment ago may be changing).
leader() {
  local l deadline=$((SECONDS + 30))
  until l=$(leader_of "$@"); do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
  echo "$l"
}

for id in 1 2 3; do start "$id"; done
check "a leader is elected over CURVE" wait_for 30 has_leader 1 2 3
L=$(leader 1 2 3)
check "writes commit" [ "$(put "$L" k1 v1)" = 204 ]
F=$((L % 3 + 1))
O=$((F % 3 + 1))
[ "$O" != "$L" ] || O=$((O % 3 + 1))

# Control: the frame zraft-inject sends is taken from a member (its own
# key, its own id): the follower answers and takes the term.
check "control: a member's AppendEntries is answered" \
  bash -c "'$INJECT' --endpoint tcp://$(raft "$F") --to $F --from $O \
     --term 500 --server-key '$(pub "$F")' \
     --key-file '$work/keys/$O/node.key' --wait-ms 5000 >/dev/null"
check "control: ... and its term is taken" wait_for 10 bash -c \
  "[ \"\$(curl -s --max-time 2 http://$(http "$F")/cluster/status |
     python3 -c 'import json,sys; print(json.load(sys.stdin)[\"term\"])')\" -ge 500 ]"
check "a leader after the control" wait_for 30 has_leader 1 2 3
L=$(leader 1 2 3)

# A stranger's AppendEntries (a key of its own, claiming to be the leader
# at a far higher term) is refused at the handshake.
r0=$(refused "$L")
skey=$(inject "$L" "$L" 1000000 | awk '/^key/ { print $2 }' || true)
check "a stranger's AppendEntries gets no answer" \
  bash -c "! '$INJECT' --endpoint tcp://$(raft "$L") --to $L --from $L \
     --term 1000000 --server-key '$(pub "$L")' --wait-ms 2000 >/dev/null"
check "the stranger's term was not taken" term_below "$L" 1000000
check "its handshakes are counted" wait_for 10 bash -c \
  "[ \"\$(curl -s --max-time 2 http://$(http "$L")/cluster/status |
     python3 -c 'import json,sys; print(json.load(sys.stdin)[\"peers_refused\"])')\" -gt $r0 ]"
check "and logged with its key" logged_key "$L" "$skey"
check "/metrics counts them" metric_refused_at_least "$L" 2

# A member's key does not let it speak for another member.
check "a member cannot claim another member's id" \
  bash -c "! '$INJECT' --endpoint tcp://$(raft "$F") --to $F --from $L \
     --term 2000000 --server-key '$(pub "$F")' \
     --key-file '$work/keys/$O/node.key' --wait-ms 2000 >/dev/null"
check "... and its term was not taken" term_below "$F" 2000000

# A fourth zraftd with a key of its own, configured as a member (node 9 in
# a 4-node initial cluster), cannot join: every node refuses it.
start 9 "$cluster,9=$(pub s)@$(raft 9)"
for n in 1 2 3; do
  check "node $n refuses node 9's key" wait_for 30 logged_key "$n" "$(pub s)"
done
check "node 9 learns nothing (no leader, nothing applied)" \
  bash -c "[ \"$(field 9 last_applied)\" = 0 ] && [ -z \"$(field 9 leader)\" ]"
voters=$(field "$L" voters)
check "the voters are still [1, 2, 3] ($voters)" [ "$voters" = "[1, 2, 3]" ]
{ kill -KILL "${pids[9]}" && wait "${pids[9]}"; } 2>/dev/null || true
unset "pids[9]"

# A learner added with its key joins and can be promoted.
L=$(leader 1 2 3)
start 4 ""
code=$(curl -s -L -o /dev/null -w '%{http_code}' -X POST -d \
  "{\"id\":4,\"raft_addr\":\"$(raft 4)\",\"http_addr\":\"$(http 4)\",\"key\":\"$(pub 4 | sed 's/[\\"]/\\&/g')\"}" \
  "http://$(http "$L")/cluster/learners")
check "add node 4 as a learner with its key ($code)" [ "$code" = 200 ]
target=$(field "$L" commit_index)
check "the learner catches up" wait_for 30 applied_at_least 4 "$target"
check "and serves the data (stale read)" \
  [ "$(curl -s "http://$(http 4)/kv/k1?consistency=stale")" = v1 ]
code=$(curl -s -L -o /dev/null -w '%{http_code}' -X POST \
  -d '{"voters":[1,2,3,4]}' "http://$(http "$L")/cluster/membership")
check "promote it to voter ($code)" [ "$code" = 200 ]

# Remove a follower; once the change has committed, its key is refused.
check "a leader among 1 2 3 4" wait_for 30 has_leader 1 2 3 4
L=$(leader 1 2 3 4)
R=$((L % 3 + 1))
keep=$(for n in 1 2 3 4; do [ "$n" = "$R" ] || printf '%s,' "$n"; done)
code=$(curl -s -L -o /dev/null -w '%{http_code}' -X POST \
  -d "{\"voters\":[${keep%,}]}" "http://$(http "$L")/cluster/membership")
check "remove node $R ($code)" [ "$code" = 200 ]
check "a leader among the rest" wait_for 30 has_leader ${keep//,/ }
L=$(leader ${keep//,/ })
check "the removed member's AppendEntries gets no answer" \
  bash -c "! '$INJECT' --endpoint tcp://$(raft "$L") --to $L --from $R \
     --term 3000000 --server-key '$(pub "$L")' \
     --key-file '$work/keys/$R/node.key' --wait-ms 2000 >/dev/null"
check "... its term was not taken" term_below "$L" 3000000
check "... and its key is logged as refused" wait_for 10 logged_key "$L" "$(pub "$R")"
check "writes still commit" [ "$(put "$L" k2 v2)" = 204 ]

ok=1
for id in "${!pids[@]}"; do
  kill -TERM "${pids[$id]}"
  if ! wait "${pids[$id]}"; then ok=0; fi
  unset "pids[$id]"
done
check "SIGTERM stops every node with exit 0" [ "$ok" = 1 ]
check "no sanitizer report in any node's log" no_sanitizer_report "$work"
echo "$pass passed, $fail failed"
