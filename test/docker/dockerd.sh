#!/usr/bin/env bash
# dockerd.sh - a private Docker engine for zraft's Docker tests.
#
#   test/docker/dockerd.sh start    starts dockerd under its own roots, waits
#                                   until `docker info` answers
#   test/docker/dockerd.sh stop     stops it by its pid, unmounts what it left
#                                   mounted, undoes its host network changes
#   test/docker/dockerd.sh env      prints `export DOCKER_HOST=...` for eval
#   test/docker/dockerd.sh status   exit 0 iff our engine answers
#
# The engine touches nothing of a system Docker: its own --data-root
# (images, volumes; kept between runs as a cache), --exec-root, socket,
# pidfile and an empty daemon.json. What it must share with the host is the
# network stack: the docker0 bridge, iptables chains and ip_forward (so
# that containers reach the Debian mirror). `start` records how these were
# and `stop` puts them back when they were ours.
#
# Environment:
#   ZRAFT_DOCKER_DIR  persistent root (default /var/lib/zraft-docker)
#   ZRAFT_DOCKER_RUN  runtime root, short path (default /run/zraft-docker)
#   ZRAFT_DOCKER_START_TIMEOUT  seconds to wait for the engine (default 90)
set -euo pipefail

DIR=${ZRAFT_DOCKER_DIR:-/var/lib/zraft-docker}
RUN=${ZRAFT_DOCKER_RUN:-/run/zraft-docker}
SOCK=$RUN/docker.sock
PIDFILE=$RUN/dockerd.pid
STATE=$RUN/host-state
LOG=$DIR/dockerd.log
EXEC_ROOT=$RUN/exec
DATA_ROOT=$DIR/data
START_TIMEOUT=${ZRAFT_DOCKER_START_TIMEOUT:-90}
# The client that ships with the engine (a newer client elsewhere on PATH
# may want plugins that are not installed).
if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi

say() { echo "dockerd: $*" >&2; }

pid_alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

answers() { DOCKER_HOST=unix://$SOCK "$DOCKER" info >/dev/null 2>&1; }

# Every mount point at or below our two roots, deepest first (dockerd
# bind-mounts its data root onto itself, and netns/default under exec-root).
our_mounts() {
  awk -v a="$EXEC_ROOT" -v b="$DATA_ROOT" \
    '{ m = $5; gsub(/\\040/, " ", m)
       if (m == a || m == b || index(m, a "/") == 1 || index(m, b "/") == 1) print length(m), m }' \
    /proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

cmd_start() {
  if pid_alive && answers; then
    say "already running (pid $(cat "$PIDFILE"))"
    return 0
  fi
  command -v dockerd >/dev/null || { say "no dockerd installed"; return 1; }
  local other
  other=$(pgrep -x dockerd || true)
  if [ -n "$other" ]; then
    say "another dockerd runs (pid $other); not starting a second one on the same iptables"
    return 1
  fi
  if [ -S /run/containerd/containerd.sock ]; then
    say "note: a system containerd runs; dockerd will use it"
  fi
  mkdir -p "$DIR" "$DATA_ROOT" "$RUN" "$EXEC_ROOT"
  echo '{}' >"$RUN/daemon.json"
  # What the host looked like before us, so that stop can undo our changes.
  {
    echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
    if ip link show docker0 >/dev/null 2>&1; then echo "had_docker0=1"; else echo "had_docker0=0"; fi
    if iptables -t filter -S DOCKER >/dev/null 2>&1; then echo "had_chains=1"; else echo "had_chains=0"; fi
    echo "forward_policy=$(iptables -t filter -S FORWARD 2>/dev/null | awk '$1 == "-P" { print $3 }')"
  } >"$STATE"
  : >"$LOG"
  # setsid: the engine outlives the shell that started it; stop ends it by pid.
  setsid dockerd \
    --host "unix://$SOCK" \
    --pidfile "$PIDFILE" \
    --data-root "$DATA_ROOT" \
    --exec-root "$EXEC_ROOT" \
    --config-file "$RUN/daemon.json" \
    --log-level warn \
    </dev/null >>"$LOG" 2>&1 &
  local launched=$! deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! kill -0 "$launched" 2>/dev/null; then
      say "dockerd exited during start; last lines of $LOG:"
      tail -20 "$LOG" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "no answer after ${START_TIMEOUT}s; last lines of $LOG:"
      tail -20 "$LOG" >&2
      kill -TERM "$launched" 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
  say "ready (pid $(cat "$PIDFILE")), socket $SOCK"
}

iptables_undo() {
  local t rule chain
  for t in filter nat; do
    iptables -t "$t" -S 2>/dev/null |
      grep -E '^-A (FORWARD|PREROUTING|OUTPUT|POSTROUTING) ' |
      grep -E 'DOCKER|docker0|br-[0-9a-f]{12}' |
      while read -r rule; do
        # shellcheck disable=SC2086 # the rule's words are iptables arguments
        iptables -t "$t" -D ${rule#-A } 2>/dev/null || true
      done
    for chain in DOCKER-USER DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER; do
      iptables -t "$t" -F "$chain" 2>/dev/null || true
    done
    for chain in DOCKER-USER DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER; do
      iptables -t "$t" -X "$chain" 2>/dev/null || true
    done
  done
}

cmd_stop() {
  local pid deadline
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      deadline=$((SECONDS + 30))
      while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid ignored SIGTERM for 30s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$PIDFILE"
  fi
  # netns/default and any overlay or shm mount a killed engine left behind.
  local m
  while read -r m; do
    [ -n "$m" ] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
  done < <(our_mounts)
  if [ -f "$STATE" ]; then
    local ip_forward="" had_docker0=1 had_chains=1 forward_policy=""
    # shellcheck disable=SC1090 # written by cmd_start
    . "$STATE"
    if [ "$had_chains" = 0 ]; then iptables_undo; fi
    if [ -n "$forward_policy" ]; then iptables -t filter -P FORWARD "$forward_policy" 2>/dev/null || true; fi
    if [ "$had_docker0" = 0 ] && ip link show docker0 >/dev/null 2>&1; then
      ip link delete docker0 2>/dev/null || true
    fi
    if [ -n "$ip_forward" ]; then echo "$ip_forward" >/proc/sys/net/ipv4/ip_forward; fi
    rm -f "$STATE"
  fi
  say "stopped"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
env) echo "export DOCKER_HOST=unix://$SOCK" ;;
status) pid_alive && answers ;;
*)
  echo "usage: $0 start|stop|env|status" >&2
  exit 2
  ;;
esac
