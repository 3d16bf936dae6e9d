#!/usr/bin/env bash
# System test: zraftd's Redis-protocol port with Debian's redis-tools.
#   3 nodes with --resp-addr; redis-cli against the leader (strings,
#   counters, MSET/MGET, DEL, EXISTS, INFO); a follower forwards writes
#   (INCR answers the leader's new value) and linearizable reads to the
#   leader; READONLY reads there; a short redis-benchmark -t set,get
#   (pipelined) against the leader and against a follower, with no errors
#   (HTTP with forward_writes forwards too)
#   and the keys there afterwards, on every node; kill -9 the leader: the data survives
#   and the new leader serves RESP; SIGTERM: every node exits 0.
# Every wait polls a condition with a deadline. Exit 77 (skipped) without
# redis-cli and redis-benchmark (scripts/deps.sh installs redis-tools).
# Usage: resp.sh PATH/TO/zraftd
set -euo pipefail
ZRAFTD=${1:?usage: resp.sh PATH/TO/zraftd}
if ! command -v redis-cli >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "skipped: redis-cli / redis-benchmark not installed (apt-get install redis-tools)"
  exit 77
fi
# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-resp.XXXXXX")
declare -A pids=()
pass=0
fail=0
# shellcheck source=../lib/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

rport() { echo "$((base + 200 + $1))"; }
extra_args() { printf '%s\n' --resp-addr "127.0.0.1:$(rport "$1")" --forward-writes true; }

rc() { # node args... : one redis-cli command, raw output
  local n=$1
  shift
  redis-cli -p "$(rport "$n")" --no-raw "$@" 2>&1
}
is() { [ "$1" = "$2" ] || { echo "     got '$1', want '$2'"; false; }; }

for id in 1 2 3; do start "$id"; done
check "a leader is elected" wait_for 20 has_leader 1 2 3
L=$(wait_leader 1 2 3)
F=$((L % 3 + 1))
check "a follower forwards a write to the leader" \
  wait_for 20 bash -c "redis-cli -p $(rport "$F") SET probe 1 | grep -q OK"

check "PING" is "$(rc "$L" PING)" "PONG"
check "SET" is "$(rc "$L" SET greeting hello)" "OK"
check "GET" is "$(rc "$L" GET greeting)" '"hello"'
check "GET of a missing key is nil" is "$(rc "$L" GET nope)" "(nil)"
rc "$L" INCR counter >/dev/null
rc "$L" INCRBY counter 41 >/dev/null
check "INCR, INCRBY are applied in the state machine" \
  is "$(rc "$L" INCR counter)" "(integer) 43"
check "INCR of a non-number is refused" \
  bash -c "redis-cli -p $(rport "$L") INCR greeting | grep -q 'not an integer'"
check "MSET" is "$(rc "$L" MSET a 1 b 2 c 3)" "OK"
check "MGET" is "$(rc "$L" MGET a nope c | tr '\n' ' ')" '1) "1" 2) (nil) 3) "3" '
check "DEL counts the keys that existed" is "$(rc "$L" DEL a b nope)" "(integer) 2"
check "EXISTS" is "$(rc "$L" EXISTS a c greeting)" "(integer) 2"
check "SET options are refused" \
  bash -c "redis-cli -p $(rport "$L") SET k v NX | grep -q 'not supported'"
check "unknown commands are errors" \
  bash -c "redis-cli -p $(rport "$L") FLUSHALL | grep -q 'unknown command'"
check "INFO says master on the leader" \
  bash -c "redis-cli -p $(rport "$L") INFO | grep -q '^role:master'"

check "SET on a follower is forwarded" is "$(rc "$F" SET fromfollower 2)" "OK"
check "INCR on a follower answers the leader's new value" \
  is "$(rc "$F" INCR counter)" "(integer) 44"
check "a write on the leader is read at once on a follower (read-index)" \
  bash -c "[ \"\$(redis-cli -p $(rport "$L") SET lin 7)\" = OK ] &&
           [ \"\$(redis-cli -p $(rport "$F") GET lin)\" = 7 ]"
check "INFO says slave on the follower" \
  bash -c "redis-cli -p $(rport "$F") INFO | grep -q '^role:slave'"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
check "HTTP with forward_writes: a PUT on a follower is forwarded (204)" \
  is "$(code -X PUT --data-binary v1 "http://$(http "$F")/kv/viahttp")" 204
check "and a GET there reads it (linearizable)" \
  is "$(curl -s "http://$(http "$F")/kv/viahttp")" v1
stale() { [ "$(printf 'READONLY\nGET fromfollower\n' | redis-cli -p "$(rport "$F")" | tail -1)" = 2 ]; }
check "READONLY reads the follower's own state" wait_for 10 stale

bench() { # node: a short pipelined redis-benchmark, no errors
  local out
  out=$(redis-benchmark -p "$(rport "$1")" -q -t set,get -n 4000 -c 20 -P 8 2>&1 | tr '\r' '\n')
  echo "$out" | grep -E '^(SET|GET):' | sed 's/^/     /'
  ! grep -qi error <<<"$out" && grep -q '^SET:' <<<"$out" && grep -q '^GET:' <<<"$out"
}
check "redis-benchmark -t set,get against the leader: no errors" bench "$L"
check "its key is there" is "$(rc "$L" EXISTS key:__rand_int__)" "(integer) 1"
rc "$L" DEL key:__rand_int__ >/dev/null
check "redis-benchmark -t set,get against a follower: no errors" bench "$F"
check "its key is there, on the leader" is "$(rc "$L" EXISTS key:__rand_int__)" "(integer) 1"
val=$(redis-cli -p "$(rport "$L")" GET key:__rand_int__)
check "with its 3-byte value" is "${#val}" 3
everywhere() {
  local n
  for n in 1 2 3; do
    [ "$(printf 'READONLY\nGET key:__rand_int__\n' | redis-cli -p "$(rport "$n")" | tail -1)" = "$val" ] || return 1
  done
}
check "on every node" wait_for 20 everywhere

kill -KILL "${pids[$L]}"
wait "${pids[$L]}" 2>/dev/null || true
unset "pids[$L]"
rest=()
for id in 1 2 3; do [ "$id" = "$L" ] || rest+=("$id"); done
check "kill -9 the leader: a new leader" wait_for 20 has_leader "${rest[@]}"
N=$(wait_leader "${rest[@]}")
served() { [ "$(rc "$N" GET counter)" = '"44"' ]; }
check "the new leader serves RESP with the data" wait_for 20 served
check "and takes writes" is "$(rc "$N" INCR counter)" "(integer) 45"

for id in "${!pids[@]}"; do kill -TERM "${pids[$id]}"; done
rc_all=0
for id in "${!pids[@]}"; do wait "${pids[$id]}" || rc_all=1; done
pids=()
check "SIGTERM: every node exits 0" [ "$rc_all" = 0 ]
echo "$pass passed"
