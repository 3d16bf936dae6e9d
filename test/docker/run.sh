#!/usr/bin/env bash
# test/docker/run.sh - zraft's Docker image and 3-node compose cluster, end
# to end.
#
#   builds the debian:bookworm-slim base image if missing (cached tarball,
#   scripts/docker-base-image.sh), builds the zraft image, starts
#   docker-compose.yml, then checks: every container turns healthy; a leader
#   is elected; writes and reads through every node (redirects followed);
#   `docker kill` of the leader while a client writes -> a new leader, no
#   acknowledged write lost; the killed node restarts and catches up; the
#   leader is cut off with `docker network disconnect` -> the rest elect
#   another and go on; healed with `docker network connect --alias` it
#   catches up, and the write it was sent while cut off is nowhere; node 4
#   joins as a learner and is promoted; `docker stop` exits 0 (SIGTERM
#   handled, not the SIGKILL after the timeout); the cluster restarts from
#   its volumes with every write. Then docker-compose.secure.yml (CURVE,
#   HTTPS, tokens; test/docker/secure.sh), and test/docker/swarm.sh: the
#   Swarm stack of deploy/swarm, rolled one member at a time under writes
#   (ZRAFT_SWARM_TEST=0 leaves it out).
#
# Engine: the one DOCKER_HOST (or the default socket) names if it answers;
# otherwise it installs docker.io, docker-compose and debootstrap (Debian,
# as root) if missing and starts a private engine (test/docker/dockerd.sh),
# stopped again at the end. Where none can be had it prints
# "docker: skipped: <reason>" and exits 0. A failed check exits 1.
# Everything it started is torn down at exit, also after a failure.
#
# Environment: ZRAFT_IMAGE (default zraft:latest), ZRAFT_DOCKER_INSTALL=0 to
# never install packages, and dockerd.sh's and docker-base-image.sh's.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export ZRAFT_IMAGE=${ZRAFT_IMAGE:-zraft:latest}
PROJECT=zraftdockertest
STOP_TIMEOUT=10 # docker stop -t; a clean stop must take well under it
pass=0
own_engine=0
compose_up=0
COMPOSE=()
DOCKER=docker
declare -A acked=() # key -> value of every acknowledged write
writer_pid=""
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-docker.XXXXXX")

us() { echo "${EPOCHREALTIME/./}"; }
t_begin=$(us)
secs() { # microseconds -> "1.234s"
  printf '%d.%03ds' $(($1 / 1000000)) $((($1 / 1000) % 1000))
}
since() { secs $(($(us) - $1)); }

skip() {
  echo "docker: skipped: $*"
  exit 0
}

# ------------------------------------------------------------ teardown

cleanup() {
  local rc=$?
  trap - EXIT
  set +e
  [ -z "$writer_pid" ] || kill "$writer_pid" 2>/dev/null
  rm -rf "$work"
  if [ "$compose_up" = 1 ]; then
    echo "--- teardown: compose down -v"
    "${COMPOSE[@]}" down -v --remove-orphans --timeout "$STOP_TIMEOUT" >/dev/null 2>&1 ||
      echo "    compose down failed"
  fi
  if [ "$own_engine" = 1 ]; then
    echo "--- teardown: stopping the private dockerd"
    "$here/dockerd.sh" stop
  fi
  echo "total $(since "$t_begin")"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- checks

dump_logs() {
  local s cid
  for s in zraft1 zraft2 zraft3 zraft4; do
    cid=$("${COMPOSE[@]}" ps -q "$s" 2>/dev/null) || continue
    [ -n "$cid" ] || continue
    echo "--- docker logs $s (last 15 lines)"
    "$DOCKER" logs --tail 15 "$cid" 2>&1 | sed 's/^/    /'
  done
}

fail() {
  echo "FAIL $*"
  [ "$compose_up" = 0 ] || dump_logs
  echo "$pass passed, 1 failed"
  exit 1
}

check() { # name command... : runs the command, prints its duration
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

step() { # name command... : a set-up step; its output goes to a log
  local name=$1 t0 log
  shift
  t0=$(us)
  log=$(mktemp "${TMPDIR:-/tmp}/zraft-docker-step.XXXXXX")
  if "$@" >"$log" 2>&1; then
    echo "step $name ($(since "$t0"))"
    rm -f "$log"
  else
    echo "--- output of: $*"
    tail -30 "$log" | sed 's/^/    /'
    rm -f "$log"
    fail "step $name ($(since "$t0"))"
  fi
}

# -------------------------------------------------------- the cluster

port() { echo $((18000 + $1)); }
# From the host, zraftN:8001 (where followers redirect to) is the published
# port: curl follows redirects through these.
CONNECT=()
for n in 1 2 3 4; do CONNECT+=(--connect-to "zraft$n:8001:127.0.0.1:$(port "$n")"); done

declare -A CIDS=() # node -> container id, taken once it is created
cid() {
  [ -n "${CIDS[$1]:-}" ] || CIDS[$1]=$("${COMPOSE[@]}" ps -q "zraft$1")
  echo "${CIDS[$1]}"
}

status_url() { echo "http://127.0.0.1:$(port "$1")/cluster/status"; }
# shellcheck source=../lib/cluster.sh
. "$here/../lib/cluster.sh"
leader() { # var nodes... : waits for the nodes to agree on a leader, sets var
  local var=$1 l deadline=$((SECONDS + 30))
  shift
  until l=$(leader_of "$@"); do
    [ "$SECONDS" -lt "$deadline" ] || fail "no leader agreed on by nodes $*"
    sleep 0.1
  done
  printf -v "$var" '%s' "$l"
}

put() { # node key value -> HTTP status
  curl -s -L "${CONNECT[@]}" --max-time 10 -o /dev/null -w '%{http_code}' \
    -X PUT --data-binary "$3" "http://127.0.0.1:$(port "$1")/kv/$2" || true
}
get() { # node key -> value (linearizable read, redirects followed)
  curl -s -L "${CONNECT[@]}" --max-time 10 "http://127.0.0.1:$(port "$1")/kv/$2" || true
}
post() { # node path json -> HTTP status
  curl -s -L "${CONNECT[@]}" --max-time 15 -o /dev/null -w '%{http_code}' \
    -X POST -H 'Content-Type: application/json' --data-binary "$3" \
    "http://127.0.0.1:$(port "$1")$2" || true
}

writes() { # prefix count nodes... : writes through the nodes in turn
  local prefix=$1 count=$2 i n code
  shift 2
  local nodes=("$@")
  for ((i = 1; i <= count; i++)); do
    n=${nodes[$((i % ${#nodes[@]}))]}
    code=$(put "$n" "$prefix$i" "v-$prefix$i")
    if [ "$code" != 204 ]; then
      echo "    PUT $prefix$i through node $n: HTTP $code"
      return 1
    fi
    acked[$prefix$i]=v-$prefix$i
  done
}

reads() { # nodes... : every acknowledged write, read through the nodes in turn
  local k i=0 n v bad=0
  local nodes=("$@")
  for k in "${!acked[@]}"; do
    n=${nodes[$((i % ${#nodes[@]}))]}
    i=$((i + 1))
    v=$(get "$n" "$k")
    if [ "$v" != "${acked[$k]}" ]; then
      echo "    GET $k through node $n: '$v', want '${acked[$k]}'"
      bad=$((bad + 1))
    fi
  done
  [ "$bad" = 0 ]
}

# Background client: writes w1, w2, ... through a node until STOP exists
# (or 60 s, 2000 writes), one acknowledged key per line in LOG.
writer() { # node log stop
  local i=0 deadline=$((SECONDS + 60))
  : >"$2"
  while [ ! -e "$3" ] && [ "$i" -lt 2000 ] && [ "$SECONDS" -lt "$deadline" ]; do
    i=$((i + 1))
    if [ "$(put "$1" "w$i" "v-w$i")" = 204 ]; then echo "w$i" >>"$2"; fi
  done
}

lines_at_least() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

caught_up() { # node leader : node's last_applied reaches the leader's commit
  local c deadline=$((SECONDS + 30))
  until c=$(field "$2" commit_index) && [ -n "$c" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
  wait_for 30 applied_at_least "$1" "$c"
}

healthy() { # nodes...
  local n
  for n in "$@"; do
    [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$(cid "$n")" 2>/dev/null)" = healthy ] ||
      return 1
  done
}

clean_stop() { # node : docker stop ends zraftd by SIGTERM, exit code 0
  local c code
  c=$(cid "$1")
  "$DOCKER" stop -t "$STOP_TIMEOUT" "$c" >/dev/null
  # Had zraftd ignored SIGTERM, docker would SIGKILL it after the timeout:
  # exit code 137. 0 is zraftd's own clean exit.
  code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$c")
  [ "$code" = 0 ] || echo "    zraft$1: exit code $code"
  [ "$code" = 0 ]
}

# An HTTP request from inside node's container to its own zraftd, over the
# container's loopback: it works while the container is off every network.
# Prints the status code ("" if no answer within 15 s).
inside() { # node method path [body]
  "$DOCKER" exec -i "$(cid "$1")" bash -c '
    exec 3<>/dev/tcp/127.0.0.1/8001 || exit 0
    printf "%s %s HTTP/1.0\r\nHost: local\r\nContent-Length: %d\r\n\r\n%s" \
      "$1" "$2" "${#3}" "$3" >&3
    read -r -t 15 _ code _ <&3 && echo "$code"' _ "$2" "$3" "${4:-}" || true
}
refused() { # code : a definite refusal (no leader known, or not the leader)
  case $1 in 503 | 307) return 0 ;; *)
    echo "    HTTP '$1', want 503 or 307"
    return 1
    ;;
  esac
}

# ------------------------------------------------------------- engine

engine_answers() { "$DOCKER" info >/dev/null 2>&1; }

install_packages() {
  [ "${ZRAFT_DOCKER_INSTALL:-1}" != 0 ] || return 1
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
  local pkgs=() p policy_added=0 rc=0
  for p in docker.io docker-compose debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      pkgs+=("$p")
  done
  [ "${#pkgs[@]}" -gt 0 ] || return 0
  echo "--- installing ${pkgs[*]}"
  # Do not let the package start a system-wide engine: ours has its own roots.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  {
    apt-get -o DPkg::Lock::Timeout=300 update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${pkgs[@]}"
  } >/dev/null 2>&1 || rc=1
  [ "$policy_added" = 0 ] || rm -f /usr/sbin/policy-rc.d
  return "$rc"
}

pick_client() {
  # The client shipped with Debian's engine first: a newer one elsewhere on
  # PATH may expect plugins (buildx) that are not installed.
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
  export DOCKER
}

t0=$(us)
pick_client
command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
if ! { command -v "$DOCKER" >/dev/null && engine_answers; }; then
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null ||
    ! { command -v docker-compose >/dev/null || "$DOCKER" compose version >/dev/null 2>&1; }; then
    if [ "${ZRAFT_DOCKER_INSTALL:-1}" = 0 ]; then
      skip "dockerd, debootstrap or docker-compose is missing and ZRAFT_DOCKER_INSTALL=0"
    fi
    install_packages || skip "cannot install docker.io, docker-compose and debootstrap (needs root and apt)"
    pick_client
  fi
  if ! engine_answers; then # the package may have started a system engine
    [ "$(id -u)" -eq 0 ] || skip "no Docker engine answers and starting one needs root"
    eval "$("$here/dockerd.sh" env)"
    if ! "$here/dockerd.sh" status; then # else: left running by dockerd.sh start
      "$here/dockerd.sh" start ||
        skip "cannot start dockerd (see ${ZRAFT_DOCKER_DIR:-/var/lib/zraft-docker}/dockerd.log)"
      own_engine=1
    fi
  fi
fi
if "$DOCKER" compose version >/dev/null 2>&1; then
  COMPOSE=("$DOCKER" compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE=(docker-compose)
else
  skip "neither 'docker compose' nor docker-compose is installed"
fi
COMPOSE+=(-p "$PROJECT" -f "$root/docker-compose.yml" -f "$root/docker-compose.learner.yml")
echo "step engine: $("$DOCKER" version -f 'server {{.Server.Version}}' 2>/dev/null)," \
  "$("${COMPOSE[@]}" version --short 2>/dev/null | head -1)" \
  "$(if [ "$own_engine" = 1 ]; then echo "(private dockerd, started)"
  elif [ -n "${DOCKER_HOST:-}" ]; then echo "(at $DOCKER_HOST)"; fi) ($(since "$t0"))"

# ------------------------------------------------------------ images

step "base image debian:bookworm-slim" "$root/scripts/docker-base-image.sh"
step "build $ZRAFT_IMAGE" "$DOCKER" build --build-arg JOBS=2 -t "$ZRAFT_IMAGE" "$root"
echo "     sizes: $("$DOCKER" image inspect -f '{{.Size}}' "$ZRAFT_IMAGE" |
  awk '{ printf "%s %.1f MB", ENVIRON["ZRAFT_IMAGE"], $1 / 1e6 }'), base $("$DOCKER" image inspect \
  -f '{{.Size}}' debian:bookworm-slim | awk '{ printf "%.1f MB", $1 / 1e6 }')"

# A cluster left over by a killed run would hold the ports and the subnet.
"${COMPOSE[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
# ZRAFT_DOCKER_PHASES: "plain secure" (default), or one of them.
phases=" ${ZRAFT_DOCKER_PHASES:-plain secure} "
if [[ "$phases" != *" plain "* ]]; then
  # shellcheck source=secure.sh
  . "$here/secure.sh"
  echo "$pass passed, 0 failed"
  exit 0
fi
compose_up=1
step "compose up (3 nodes)" "${COMPOSE[@]}" up -d --no-build zraft1 zraft2 zraft3

# ------------------------------------------------------------- checks

for n in 1 2 3; do cid "$n" >/dev/null; done
check "a leader is elected" wait_for 30 has_leader 1 2 3
leader L 1 2 3
echo "     leader: zraft$L"
check "every container is healthy (HEALTHCHECK)" wait_for 60 healthy 1 2 3
check "30 writes through every node (redirects followed)" writes a 30 1 2 3
check "reads through every node see every write" reads 1 2 3
code=$(curl -s -L "${CONNECT[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(port 1)/kv/no-such-key")
check "a missing key is 404" [ "$code" = 404 ]

# docker kill the leader: SIGKILL, no clean shutdown.
others=()
for n in 1 2 3; do [ "$n" = "$L" ] || others+=("$n"); done
# A client keeps writing through a follower while the leader dies.
writer_log=$work/acked-w
writer "${others[0]}" "$writer_log" "$work/stop-w" &
writer_pid=$!
check "a client writes through zraft${others[0]} meanwhile" wait_for 30 lines_at_least "$writer_log" 5
"$DOCKER" kill "$(cid "$L")" >/dev/null
check "docker kill leader zraft$L: a new leader among ${others[*]}" wait_for 30 has_leader "${others[@]}"
n_before=$(wc -l <"$writer_log")
check "the client's writes go on" wait_for 30 lines_at_least "$writer_log" $((n_before + 5))
touch "$work/stop-w"
wait "$writer_pid"
writer_pid=""
while read -r k; do acked[$k]=v-$k; done <"$writer_log"
echo "     the client had $(wc -l <"$writer_log") writes acknowledged"
check "no acknowledged write lost" reads "${others[@]}"
check "writes go on without it" writes b 10 "${others[@]}"
"$DOCKER" start "$(cid "$L")" >/dev/null
leader L2 "${others[@]}"
check "restarted zraft$L catches up with leader zraft$L2" caught_up "$L" "$L2"
check "and serves every write itself" reads "$L"

# Partition the leader from the others, then heal.
check "a leader is agreed on by all three" wait_for 30 has_leader 1 2 3
leader L 1 2 3
C=$(cid "$L")
# shellcheck disable=SC2016 # a Go template, not shell
NETNAME=$("$DOCKER" inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$C" | awk '{ print $1 }')
others=()
for n in 1 2 3; do [ "$n" = "$L" ] || others+=("$n"); done
"$DOCKER" network disconnect "$NETNAME" "$C"
check "network disconnect of leader zraft$L: a new leader among ${others[*]}" \
  wait_for 30 has_leader "${others[@]}"
check "the majority takes writes" writes c 10 "${others[@]}"
code=$(inside "$L" PUT /kv/written-while-cut-off lost)
check "cut-off zraft$L does not acknowledge a write (HTTP $code)" refused "$code"
code=$(inside "$L" GET /kv/c1)
check "cut-off zraft$L serves no stale linearizable read (HTTP $code)" refused "$code"
"$DOCKER" network connect --alias "zraft$L" "$NETNAME" "$C"
leader L2 "${others[@]}"
check "healed zraft$L catches up with leader zraft$L2" caught_up "$L" "$L2"
check "and serves every write" reads "$L"
check "all three agree on a leader again" wait_for 30 has_leader 1 2 3
missing() { # key nodes... : a linearizable read through each node is 404
  local n c
  for n in "${@:2}"; do
    c=$(curl -s -L "${CONNECT[@]}" --max-time 10 -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:$(port "$n")/kv/$1")
    [ "$c" = 404 ] || { echo "    GET $1 through node $n: HTTP $c"; return 1; }
  done
}
check "the write sent to the cut-off node is on no node" missing written-while-cut-off 1 2 3

# Scale out: node 4 joins as a learner and becomes a voter.
step "compose up zraft4" "${COMPOSE[@]}" up -d --no-build zraft4
cid 4 >/dev/null
check "zraft4 answers" wait_for 30 bash -c "curl -sf --max-time 1 http://127.0.0.1:$(port 4)/healthz >/dev/null"
posts() { # want node path json
  local code
  code=$(post "$2" "$3" "$4")
  [ "$code" = "$1" ] || echo "    POST $3: HTTP $code, want $1"
  [ "$code" = "$1" ]
}
check "POST /cluster/learners adds zraft4" \
  posts 200 1 /cluster/learners '{"id":4,"raft_addr":"zraft4:7001","http_addr":"zraft4:8001"}'
leader L 1 2 3
check "the learner catches up" wait_for 30 caught_up 4 "$L"
check "POST /cluster/membership makes it a voter" \
  posts 200 1 /cluster/membership '{"voters":[1,2,3,4]}'
leader L 1 2 3 4
check "voters are [1, 2, 3, 4]" wait_for 30 bash -c "[ \"\$(curl -s http://127.0.0.1:$(port "$L")/cluster/status |
  python3 -c 'import json,sys; print(json.load(sys.stdin)[\"voters\"])')\" = '[1, 2, 3, 4]' ]"
check "writes through zraft4" writes d 5 4
check "zraft4 reads every write" reads 4

# docker stop: SIGTERM to zraftd (PID 1), exit 0, well under the timeout.
for n in 4 3 2 1; do
  check "docker stop zraft$n: SIGTERM, exit 0" clean_stop "$n"
done

# The data outlives the containers: start them again from the volumes.
step "compose start (4 nodes, same volumes)" "${COMPOSE[@]}" start
check "a leader is elected again" wait_for 30 has_leader 1 2 3 4
check "every acknowledged write is there (${#acked[@]} keys)" reads 1 2 3 4
if [[ "$phases" == *" secure "* ]]; then
  # shellcheck source=secure.sh
  . "$here/secure.sh"
fi

# Many machines: deploy/swarm's stack on a one-machine swarm, in a script of
# its own (test/docker/swarm.sh); the compose cluster goes first.
step "compose down -v" "${COMPOSE[@]}" down -v --remove-orphans --timeout "$STOP_TIMEOUT"
compose_up=0
if [ "${ZRAFT_SWARM_TEST:-1}" != 0 ]; then
  "$here/swarm.sh" || fail "swarm stack (test/docker/swarm.sh)"
else
  echo "swarm: left out (ZRAFT_SWARM_TEST=0)"
fi

echo "$pass passed, 0 failed"
