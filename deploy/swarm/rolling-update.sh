#!/usr/bin/env bash
# rolling-update.sh - restarts (or upgrades) the members of a zraft stack on
# Docker Swarm one at a time, so that a majority always runs.
#
#   deploy/swarm/rolling-update.sh [--image IMAGE] [--timeout SECONDS] \
#       STACK 1=http://machineA:18001 2=http://machineB:18002 3=...
#
# Each ID=URL names a member (service STACK_zraftID) and the URL of its HTTP
# API as this machine reaches it. Without --image every member is restarted
# with `docker service update --force` (same image); with it, moved to
# IMAGE. Needs the docker client talking to a swarm manager, curl, python3.
#
# Why not `docker stack deploy` with the new image: it updates every
# service at once, and update_config orders only the tasks of one service;
# all three members would restart together. Here:
#   1. every member must answer and agree on a leader, or nothing is done
#      (a member already down plus the one restarted is a lost majority);
#   2. followers first, the leader last, after handing its leadership to an
#      updated follower (POST /cluster/transfer-leader): one election, and
#      a planned one;
#   3. per member: `docker service update --detach=false` (stop-first:
#      SIGTERM, zraftd exits 0; the new task on the same machine and volume
#      counts only once healthy), then wait until the member has applied
#      what the leader had committed before the next one is touched.
# Exit 0 when every member is updated and caught up; 1 on the first
# failure, leaving the members not yet reached untouched.
set -euo pipefail

image="" timeout=120
while [ $# -gt 0 ]; do
  case $1 in
  --image) image=$2; shift 2 ;;
  --image=*) image=${1#*=}; shift ;;
  --timeout) timeout=$2; shift 2 ;;
  --timeout=*) timeout=${1#*=}; shift ;;
  -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  -*) echo "rolling-update: unknown option $1" >&2; exit 2 ;;
  *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [--image IMAGE] STACK ID=URL..." >&2; exit 2; }
stack=$1
shift
DOCKER=${DOCKER:-docker}
declare -A url=()
ids=()
for m in "$@"; do
  [[ $m =~ ^([0-9]+)=(https?://.+)$ ]] || { echo "rolling-update: '$m' is not ID=URL" >&2; exit 2; }
  url[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]%/}
  ids+=("${BASH_REMATCH[1]}")
done

say() { echo "rolling-update: $*"; }
die() { say "$*" >&2; exit 1; }

# status ID KEY: KEY of member ID's /cluster/status ("" if it does not answer).
status() {
  curl -s --max-time 2 "${url[$1]}/cluster/status" 2>/dev/null |
    python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else v)' "$2" 2>/dev/null || true
}

# leader: the leader every member names, when all answer and agree.
leader() {
  local l="" x id
  for id in "${ids[@]}"; do
    x=$(status "$id" leader)
    [ -n "$x" ] && { [ -z "$l" ] || [ "$l" = "$x" ]; } || return 1
    l=$x
  done
  [ -n "${url[$l]:-}" ] && [ "$(status "$l" role)" = leader ] || return 1
  echo "$l"
}

# poll SECONDS COMMAND...: until the command succeeds or the deadline.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# caught_up ID COMMIT: member ID answers, knows a leader, has applied COMMIT.
caught_up() {
  local a
  a=$(status "$1" last_applied)
  [ -n "$a" ] && [ "$a" -ge "$2" ] && [ -n "$(status "$1" leader)" ]
}

# leader_wait SECONDS: prints the agreed leader once there is one.
leader_wait() {
  local deadline=$((SECONDS + $1)) l
  until l=$(leader); do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  echo "$l"
}

not_leading() { [ "$(status "$1" role)" != leader ]; }

L=$(leader_wait 30) || die "the members do not all answer and agree on a leader: nothing done"
order=()
for id in "${ids[@]}"; do [ "$id" = "$L" ] || order+=("$id"); done
order+=("$L")
say "leader is $L; order: ${order[*]}"

for id in "${order[@]}"; do
  svc=${stack}_zraft$id
  L=$(leader_wait "$timeout") || die "no agreed leader before updating member $id"
  if [ "$id" = "$L" ] && [ "${#ids[@]}" -gt 1 ]; then
    to=${order[0]}
    # 200 means the transfer started: it is abandoned when $to does not
    # catch up within an election timeout (a slow disk under load), so
    # look, and ask again. Not fatal either way: the stop's SIGTERM leads
    # to an election.
    for attempt in 1 2 3; do
      r=$(curl -s --max-time 10 -w ' (HTTP %{http_code})' -X POST -H 'Content-Type: application/json' \
        --data-binary "{\"to\":$to}" "${url[$id]}/cluster/transfer-leader" || true)
      say "member $id leads: handing leadership to $to (attempt $attempt): $r"
      if poll 3 not_leading "$id"; then break; fi
    done
    not_leading "$id" || say "member $id still leads; going on"
  fi
  t0=$SECONDS
  say "updating $svc"
  if [ -n "$image" ]; then
    "$DOCKER" service update --quiet --detach=false --image "$image" "$svc" >/dev/null ||
      die "docker service update $svc failed"
  else
    "$DOCKER" service update --quiet --detach=false --force "$svc" >/dev/null ||
      die "docker service update $svc failed"
  fi
  # What a majority had committed once the member was back: it must have
  # applied that before the next member goes down.
  L=$(leader_wait "$timeout") || die "no leader agreed on after updating member $id"
  c=$(status "$L" commit_index)
  [ -n "$c" ] || die "leader $L does not answer"
  poll "$timeout" caught_up "$id" "$c" || die "member $id did not catch up to $c"
  say "member $id updated and caught up to $c ($((SECONDS - t0)) s)"
done
say "done: ${#ids[@]} members, leader $(leader || echo '?')"
