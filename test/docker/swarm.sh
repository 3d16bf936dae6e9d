#!/usr/bin/env bash
# test/docker/swarm.sh - deploy/swarm/zraft-stack.yml on a one-machine
# Docker Swarm, end to end. test/docker/run.sh calls it with its engine up
# and the image built; alone it needs an engine that answers (DOCKER_HOST)
# and the image ZRAFT_IMAGE (default zraft:latest).
#
#   `docker swarm init` on the engine, the node labelled for all three
#   members, `docker stack deploy`; checks: every task runs and turns
#   healthy; the published ports (mode: host) answer from the host; a
#   leader; writes and reads through every member (redirects followed);
#   the members reach each other by service name over the overlay network
#   (asked from inside a task's container); a rolling restart with
#   deploy/swarm/rolling-update.sh (`docker service update --force` of each
#   member in turn, the leader last) while a client writes: every member
#   got a new task, no acknowledged write is lost; member 4 added with
#   deploy/swarm/zraft-member4.yml (the others untouched), as a learner,
#   then promoted; then `docker stack rm`,
#   the volumes removed, `docker swarm leave`.
#
# Prints "swarm: skipped: <reason>" and exits 0 where swarm cannot run (the
# engine is already part of a swarm that is not ours, `swarm init` fails).
# Everything it made is removed at exit, also after a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export ZRAFT_IMAGE=${ZRAFT_IMAGE:-zraft:latest}
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER
STACK=zraftswarmtest
# Host ports for the members' HTTP (mode: host); random, as the system tests.
base=$((20000 + RANDOM % 20000))
export ZRAFT_HTTP_PORT_1=$((base + 1)) ZRAFT_HTTP_PORT_2=$((base + 2)) ZRAFT_HTTP_PORT_3=$((base + 3))
pass=0
swarm_ours=0
stack_up=0
writer_pid=""
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-swarm.XXXXXX")
declare -A acked=()

us() { echo "${EPOCHREALTIME/./}"; }
since() { local d=$(($(us) - $1)); printf '%d.%03ds' $((d / 1000000)) $(((d / 1000) % 1000)); }
t_begin=$(us)

skip() {
  echo "swarm: skipped: $*"
  exit 0
}

port() { eval echo "\$ZRAFT_HTTP_PORT_$1"; }
status_url() { echo "http://127.0.0.1:$(port "$1")/cluster/status"; }
# shellcheck source=../lib/cluster.sh
. "$here/../lib/cluster.sh"
CONNECT=()
for n in 1 2 3; do CONNECT+=(--connect-to "zraft$n:8001:127.0.0.1:$(port "$n")"); done

services() { "$DOCKER" stack services -q "$STACK" 2>/dev/null; }

cleanup() {
  local rc=$? v
  trap - EXIT
  set +e
  [ -z "$writer_pid" ] || kill "$writer_pid" 2>/dev/null
  if [ "$stack_up" = 1 ]; then
    echo "--- teardown: docker stack rm $STACK"
    "$DOCKER" stack rm "$STACK" >/dev/null 2>&1
    # The containers go asynchronously; the volumes are free only after.
    wait_for 60 bash -c "[ -z \"\$('$DOCKER' ps -aq --filter label=com.docker.stack.namespace=$STACK)\" ]" ||
      echo "    containers of $STACK still there after 60 s"
    for v in $("$DOCKER" volume ls -q --filter "label=com.docker.stack.namespace=$STACK"); do
      "$DOCKER" volume rm "$v" >/dev/null 2>&1 || echo "    cannot remove volume $v"
    done
  fi
  if [ "$swarm_ours" = 1 ]; then
    echo "--- teardown: docker swarm leave --force"
    "$DOCKER" swarm leave --force >/dev/null 2>&1 || echo "    swarm leave failed"
  fi
  rm -rf "$work"
  echo "swarm: total $(since "$t_begin")"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dump() {
  local s
  "$DOCKER" stack ps --no-trunc "$STACK" 2>&1 | head -20 | sed 's/^/    /'
  for s in 1 2 3 4; do
    echo "--- docker service logs ${STACK}_zraft$s (last 10 lines)"
    "$DOCKER" service logs --tail 10 "${STACK}_zraft$s" 2>&1 | sed 's/^/    /'
  done
}

fail() {
  echo "FAIL $*"
  [ "$stack_up" = 0 ] || dump
  echo "swarm: $pass passed, 1 failed"
  exit 1
}

check() {
  local name=$1 t0
  shift
  t0=$(us)
  if "$@"; then
    pass=$((pass + 1))
    echo "ok   $name ($(since "$t0"))"
  else
    fail "$name ($(since "$t0"))"
  fi
}

step() {
  local name=$1 t0 log
  shift
  t0=$(us)
  log=$work/step.log
  if "$@" >"$log" 2>&1; then
    echo "step $name ($(since "$t0"))"
  else
    echo "--- output of: $*"
    tail -30 "$log" | sed 's/^/    /'
    fail "step $name ($(since "$t0"))"
  fi
}

put() { # member key value -> HTTP status
  curl -s -L "${CONNECT[@]}" --max-time 10 -o /dev/null -w '%{http_code}' \
    -X PUT --data-binary "$3" "http://127.0.0.1:$(port "$1")/kv/$2" || true
}
get() { # member key -> value (linearizable read)
  curl -s -L "${CONNECT[@]}" --max-time 10 "http://127.0.0.1:$(port "$1")/kv/$2" || true
}

writes() { # prefix count : through members 1, 2, 3 in turn
  local i n code
  for ((i = 1; i <= $2; i++)); do
    n=$((i % 3 + 1))
    code=$(put "$n" "$1$i" "v-$1$i")
    [ "$code" = 204 ] || { echo "    PUT $1$i through member $n: HTTP $code"; return 1; }
    acked[$1$i]=v-$1$i
  done
}

reads_a() { # the keys a1..a30, read through each member in turn
  local i n v bad=0
  for ((i = 1; i <= 30; i++)); do
    n=$((i % 3 + 1))
    v=$(get "$n" "a$i")
    [ "$v" = "v-a$i" ] || { echo "    GET a$i through member $n: '$v'"; bad=$((bad + 1)); }
  done
  [ "$bad" = 0 ]
}

reads() { # every acknowledged write through each member in turn
  local k i=0 n v bad=0
  for k in "${!acked[@]}"; do
    n=$((i % 3 + 1))
    i=$((i + 1))
    v=$(get "$n" "$k")
    [ "$v" = "${acked[$k]}" ] || { echo "    GET $k through member $n: '$v'"; bad=$((bad + 1)); }
  done
  [ "$bad" = 0 ]
}

# Writes w1, w2, ... until STOP exists, each through the next member that
# answers (one is always down during the rolling restart); one acknowledged
# key per line in LOG.
writer() { # log stop
  local i=0 n=1 deadline=$((SECONDS + 300))
  : >"$1"
  while [ ! -e "$2" ] && [ "$SECONDS" -lt "$deadline" ]; do
    i=$((i + 1))
    if [ "$(put "$n" "w$i" "v-w$i")" = 204 ]; then
      echo "w$i" >>"$1"
    else
      n=$((n % 3 + 1))
    fi
  done
}

lines_at_least() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

running_healthy() { # every member has one task, running and healthy
  local n c
  for n in 1 2 3; do
    c=$(task_container "$n") && [ -n "$c" ] || return 1
    [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$c" 2>/dev/null)" = healthy ] || return 1
  done
}

task_container() { # member -> id of its running container
  "$DOCKER" ps -q --filter "label=com.docker.swarm.service.name=${STACK}_zraft$1" \
    --filter status=running | head -1
}

# leader: sets L once members 1-3 agree on a leader; fails the test after
# 30 s (one agreement may be followed by another election under load).
leader() {
  local deadline=$((SECONDS + 30))
  until L=$(leader_of 1 2 3); do
    [ "$SECONDS" -lt "$deadline" ] || fail "members 1-3 agree on no leader"
    sleep 0.1
  done
}

answers() { # member : its published port answers /healthz from the host
  curl -sf --max-time 2 "http://127.0.0.1:$(port "$1")/healthz" >/dev/null
}

# ------------------------------------------------------------- engine

"$DOCKER" info >/dev/null 2>&1 || skip "no Docker engine answers"
"$DOCKER" image inspect "$ZRAFT_IMAGE" >/dev/null 2>&1 ||
  skip "image $ZRAFT_IMAGE is not built (test/docker/run.sh builds it)"
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null; then skip "needs curl and python3"; fi
state=$("$DOCKER" info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
[ "$state" = inactive ] ||
  skip "the engine is already in swarm state '$state'; not touching a swarm this test did not make"
# The advertised address must be one other machines could reach: not
# loopback. Here, the address of the default route, else of docker0.
addr=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -1)
[ -n "$addr" ] || addr=$(ip -4 -o addr show docker0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')
[ -n "$addr" ] || skip "no non-loopback IPv4 address to advertise"
t0=$(us)
if ! "$DOCKER" swarm init --advertise-addr "$addr" >"$work/init.log" 2>&1; then
  skip "docker swarm init failed: $(tail -1 "$work/init.log")"
fi
swarm_ours=1
echo "step swarm init (advertise $addr) ($(since "$t0"))"
self=$("$DOCKER" info -f '{{.Swarm.NodeID}}')
step "label the node for members 1-3" "$DOCKER" node update \
  --label-add zraft.member1=true --label-add zraft.member2=true \
  --label-add zraft.member3=true "$self"

# ------------------------------------------------------------- deploy

stack_up=1
step "stack deploy (ports ${ZRAFT_HTTP_PORT_1}-${ZRAFT_HTTP_PORT_3}, mode: host)" \
  "$DOCKER" stack deploy -c "$root/deploy/swarm/zraft-stack.yml" "$STACK"
check "every member's task runs and turns healthy" wait_for 120 running_healthy
all_answer() { answers 1 && answers 2 && answers 3; }
check "the published ports (mode: host) answer from the host" wait_for 30 all_answer
check "a leader is elected" wait_for 30 has_leader 1 2 3
leader
echo "     leader: member $L"
check "30 writes through every member (redirects followed)" writes a 30
check "reads through every member see every write" reads
# Inside the overlay network the members are their service names (dnsrr:
# the task's own address): ask member 1's container for member 2 and 3.
peer_status() { # from member 1's container, GET zraftN:8001/cluster/status
  # shellcheck disable=SC2016 # expanded by the container's bash
  "$DOCKER" exec -i "$(task_container 1)" bash -c '
    exec 3<>"/dev/tcp/$1/8001" || exit 1
    printf "GET /cluster/status HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
    grep -q "\"leader\":" <&3' _ "zraft$1"
}
peers_answer() { peer_status 2 && peer_status 3; }
check "inside the overlay network zraft2 and zraft3 answer by name" peers_answer

# --------------------------------------------------- rolling restart

declare -A before=()
for n in 1 2 3; do before[$n]=$(task_container "$n"); done
writer_log=$work/acked-w
writer "$writer_log" "$work/stop-w" &
writer_pid=$!
check "a client writes meanwhile" wait_for 30 lines_at_least "$writer_log" 5
t0=$(us)
if ! "$root/deploy/swarm/rolling-update.sh" --timeout 120 "$STACK" \
  "1=http://127.0.0.1:$ZRAFT_HTTP_PORT_1" "2=http://127.0.0.1:$ZRAFT_HTTP_PORT_2" \
  "3=http://127.0.0.1:$ZRAFT_HTTP_PORT_3" >"$work/roll.log" 2>&1; then
  sed 's/^/    /' "$work/roll.log"
  fail "rolling-update.sh ($(since "$t0"))"
fi
sed 's/^/     /' "$work/roll.log"
pass=$((pass + 1))
echo "ok   rolling restart, one member at a time ($(since "$t0"))"
n_mid=$(wc -l <"$writer_log")
check "the client's writes go on after it" wait_for 30 lines_at_least "$writer_log" $((n_mid + 5))
touch "$work/stop-w"
wait "$writer_pid"
writer_pid=""
while read -r k; do acked[$k]=v-$k; done <"$writer_log"
echo "     the client had $(wc -l <"$writer_log") writes acknowledged, $n_mid by the end of the restart"
replaced() {
  local n c
  for n in 1 2 3; do
    c=$(task_container "$n")
    if [ -z "$c" ] || [ "$c" = "${before[$n]}" ]; then
      echo "    member $n: container '$c', before '${before[$n]}'"
      return 1
    fi
  done
}
check "every member runs in a new task" replaced
check "every member is healthy again" wait_for 60 running_healthy
check "a leader is agreed on by all three" wait_for 30 has_leader 1 2 3
# Every acknowledged write on every member: once a member has applied the
# leader's commit index, its own copy (a stale read, no redirect) must hold
# every write acknowledged before; one keep-alive connection per member.
for k in "${!acked[@]}"; do echo "$k ${acked[$k]}"; done >"$work/acked"
# The highest commit index any member reports: at least every write
# acknowledged (the writer has stopped).
c=0
for n in 1 2 3; do
  x=$(field "$n" commit_index)
  [ -z "$x" ] || [ "$x" -le "$c" ] || c=$x
done
all_applied() { applied_at_least 1 "$c" && applied_at_least 2 "$c" && applied_at_least 3 "$c"; }
check "every member applies the leader's commit index $c" wait_for 30 all_applied
every_copy() {
  python3 - "$work/acked" "$ZRAFT_HTTP_PORT_1" "$ZRAFT_HTTP_PORT_2" "$ZRAFT_HTTP_PORT_3" <<'PY'
import http.client, sys
want = dict(line.split(" ", 1) for line in open(sys.argv[1]).read().splitlines())
bad = 0
for n, port in enumerate(sys.argv[2:], 1):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    for k, v in want.items():
        c.request("GET", "/kv/%s?consistency=stale" % k)
        r = c.getresponse()
        got = r.read().decode()
        if r.status != 200 or got != v:
            bad += 1
            if bad <= 5:
                print("    member %d: %s -> HTTP %d '%s', want '%s'" % (n, k, r.status, got, v))
print("     %d keys x 3 members read, %d wrong" % (len(want), bad))
sys.exit(bad != 0)
PY
}
check "no acknowledged write lost (${#acked[@]} keys, each member's own copy)" every_copy
check "linearizable reads through every member (30 keys, redirects followed)" reads_a

# ------------------------------------------------------------ scale out

# Member 4 (deploy/swarm/zraft-member4.yml): the same stack deployed again
# with the second file; members 1-3 stay as they are, zraft4 waits, empty,
# until it is added as a learner and promoted.
export ZRAFT_HTTP_PORT_4=$((base + 4))
CONNECT+=(--connect-to "zraft4:8001:127.0.0.1:$ZRAFT_HTTP_PORT_4")
for n in 1 2 3; do before[$n]=$(task_container "$n"); done
step "label the node for member 4" "$DOCKER" node update --label-add zraft.member4=true "$self"
step "stack deploy with zraft-member4.yml" "$DOCKER" stack deploy \
  -c "$root/deploy/swarm/zraft-stack.yml" -c "$root/deploy/swarm/zraft-member4.yml" "$STACK"
check "zraft4 answers" wait_for 120 answers 4
check "zraft4 waits, empty, outside the membership" \
  bash -c "[ \"\$(curl -s http://127.0.0.1:$ZRAFT_HTTP_PORT_4/cluster/status |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print(s[\"last_applied\"], s[\"voters\"])')\" = '0 []' ]"
unchanged() {
  local n
  for n in 1 2 3; do
    [ "$(task_container "$n")" = "${before[$n]}" ] || { echo "    member $n was restarted"; return 1; }
  done
}
check "members 1-3 were left as they were" unchanged
post() { # member path json -> HTTP status
  curl -s -L "${CONNECT[@]}" --max-time 15 -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$(port "$1")$2" || true
}
check "POST /cluster/learners adds zraft4" \
  [ "$(post 1 /cluster/learners '{"id":4,"raft_addr":"zraft4:7001","http_addr":"zraft4:8001"}')" = 200 ]
leader
c=$(field "$L" commit_index)
check "zraft4 catches up to $c" wait_for 60 applied_at_least 4 "$c"
check "POST /cluster/membership makes it a voter" \
  [ "$(post 1 /cluster/membership '{"voters":[1,2,3,4]}')" = 200 ]
check "voters are [1, 2, 3, 4]" wait_for 30 bash -c "[ \"\$(curl -s $(status_url "$L") |
  python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)[\"voters\"]))')\" = '[1, 2, 3, 4]' ]"
check "a write through zraft4" [ "$(put 4 via-member4 yes)" = 204 ]
check "read back through member 1" [ "$(get 1 via-member4)" = yes ]

echo "swarm: $pass passed, 0 failed"
