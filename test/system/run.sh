#!/usr/bin/env bash
# System test: real zraftd processes on 127.0.0.1 over ZeroMQ TCP.
#   bootstrap 3 nodes; writes through any node (redirects) and reads;
#   kill -9 the leader -> a new leader, every acknowledged write readable;
#   restart it -> it catches up; SIGSTOP a follower and resume it;
#   an old leader that was paused never serves a stale linearizable read;
#   add node 4 as a learner, promote it, remove node 1; SIGTERM exits 0.
# Every wait polls a condition with a deadline. Processes are always
# stopped at the end, also when a check fails.
# Usage: run.sh PATH/TO/zraftd
set -euo pipefail
ZRAFTD=${1:?usage: run.sh PATH/TO/zraftd}
# Below the ephemeral range (32768+), so client sockets never take ours.
# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-system.XXXXXX")
declare -A pids=()
pass=0
fail=0
# shellcheck source=../lib/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

for id in 1 2 3; do start "$id"; done
check "a leader is elected" wait_for 20 has_leader 1 2 3
L=$(wait_leader 1 2 3)

for i in $(seq 1 30); do
  via=$((i % 3 + 1))
  code=$(put "$via" "k$i" "v$i")
  [ "$code" = 204 ] || { echo "PUT k$i via $via: $code"; false; }
done
check "30 writes through every node (redirects followed)" true
check "reads through every node see them" \
  bash -c "[ \"\$(curl -s -L http://$(http 1)/kv/k7)\" = v7 ] && [ \"\$(curl -s -L http://$(http 2)/kv/k30)\" = v30 ] && [ \"\$(curl -s -L http://$(http 3)/kv/k1)\" = v1 ]"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$(http 1)/kv/missing" -L)
check "a missing key is 404" [ "$code" = 404 ]

# kill -9 the leader
kill -KILL "${pids[$L]}"
wait "${pids[$L]}" 2>/dev/null || true
unset "pids[$L]"
others=()
for id in 1 2 3; do [ "$id" = "$L" ] || others+=("$id"); done
t0=$(date +%s%N)
check "kill -9 leader $L: a new leader" wait_for 20 has_leader "${others[@]}"
echo "     (new leader after $((($(date +%s%N) - t0) / 1000000)) ms)"
lost=0
for i in $(seq 1 30); do
  [ "$(get "${others[0]}" "k$i")" = "v$i" ] || lost=$((lost + 1))
done
check "every acknowledged write survives the leader's death" [ "$lost" = 0 ]
code=$(put "${others[1]}" after-kill yes)
check "writes continue" [ "$code" = 204 ]

# restart it: it catches up
start "$L"
target=$(field "${others[0]}" commit_index)
check "the restarted node catches up" wait_for 20 applied_at_least "$L" "$target"
check "and serves the data (stale read)" \
  bash -c "[ \"\$(curl -s 'http://$(http "$L")/kv/after-kill?consistency=stale')\" = yes ]"

# SIGSTOP a follower, write, resume: it catches up
L=$(wait_leader 1 2 3)
F=${others[0]}
[ "$F" != "$L" ] || F=${others[1]}
kill -STOP "${pids[$F]}"
for i in $(seq 31 40); do put "$L" "k$i" "v$i" >/dev/null; done
code=$(put "$L" paused-write 1)
check "writes commit while a follower is paused" [ "$code" = 204 ]
kill -CONT "${pids[$F]}"
target=$(field "$L" commit_index)
check "the resumed follower catches up" wait_for 20 applied_at_least "$F" "$target"

# A paused old leader must not serve a stale linearizable read.
L=$(wait_leader 1 2 3)
put "$L" fresh old >/dev/null
kill -STOP "${pids[$L]}"
rest=()
for id in 1 2 3; do [ "$id" = "$L" ] || rest+=("$id"); done
check "while leader $L is paused, another is elected" wait_for 20 has_leader "${rest[@]}"
code=$(put "${rest[0]}" fresh new)
check "and takes writes" [ "$code" = 204 ]
kill -CONT "${pids[$L]}"
# Without following redirects: the old leader answers new, 307 or 503.
out=$(curl -s --max-time 10 -w ' %{http_code}' "http://$(http "$L")/kv/fresh")
check "the old leader never returns the stale value ($out)" \
  bash -c "[ '$out' = 'new 200' ] || [[ '$out' == *' 307' ]] || [[ '$out' == *' 503' ]]"

# Membership: add node 4 as a learner, promote it, remove node 1.
L=$(wait_leader 1 2 3)
start 4 ""
code=$(curl -s -L -o /dev/null -w '%{http_code}' -X POST \
  -d "{\"id\":4,\"raft_addr\":\"$(raft 4)\",\"http_addr\":\"$(http 4)\"}" \
  "http://$(http "$L")/cluster/learners")
check "add node 4 as a learner" [ "$code" = 200 ]
target=$(field "$L" commit_index)
check "the learner catches up" wait_for 20 applied_at_least 4 "$target"
code=$(curl -s -L -o /dev/null -w '%{http_code}' -X POST -d '{"voters":[1,2,3,4]}' \
  "http://$(http "$L")/cluster/membership")
check "promote it to voter" [ "$code" = 200 ]
L=$(wait_leader 1 2 3 4)
code=$(curl -s -L -o /dev/null -w '%{http_code}' -X POST -d '{"voters":[2,3,4]}' \
  "http://$(http "$L")/cluster/membership")
check "remove node 1" [ "$code" = 200 ]
check "a leader among 2 3 4" wait_for 20 has_leader 2 3 4
L=$(wait_leader 2 3 4)
voters=$(field "$L" voters)
check "voters are now [2, 3, 4] ($voters)" [ "$voters" = "[2, 3, 4]" ]
code=$(put 4 on-four yes)
check "writes through the new member" [ "$code" = 204 ]

# SIGTERM: clean exit 0
ok=1
for id in "${!pids[@]}"; do
  kill -TERM "${pids[$id]}"
  if ! wait "${pids[$id]}"; then ok=0; fi
  unset "pids[$id]"
done
check "SIGTERM stops every node with exit 0" [ "$ok" = 1 ]

check "no sanitizer report in any node's log" no_sanitizer_report "$work"
echo "$pass passed, $fail failed"
