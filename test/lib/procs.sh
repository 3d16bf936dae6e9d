# procs.sh - the zraftd process helpers of test/system's scripts: node
# addresses, starting a node, checks, the HTTP key-value calls and the
# cleanup. Sources cluster.sh (status_url is defined here).
# Source it after setting
#   ZRAFTD  the daemon          base  the first port (node N: raft base+N,
#   work    a scratch directory       HTTP base+100+N)
#   declare -A pids=()  pass=0  fail=0
# and optionally
#   data_sub   appended to a node's data directory $work/nN ("" by default)
#   log_tail   log lines each node shows when a check fails (5)
#   extra_args a function: extra zraftd arguments for node N, one a line
# With ZRAFT_TEST_SECURITY=curve in the environment, nodes 1..5 get keys
# (zraftd keygen, in $work/keys/nN), talk CurveZMQ, and `cluster` lists
# each member with its key; every node knows the five public keys
# (peer_keys), so a learner started empty admits the leader.
# Needs curl and python3.
# shellcheck shell=bash disable=SC2154 # base, work: the caller sets them

raft() { echo "127.0.0.1:$((base + $1))"; }
http() { echo "127.0.0.1:$((base + 100 + $1))"; }
cluster="1=$(raft 1),2=$(raft 2),3=$(raft 3)"
curve_args=()
if [ "${ZRAFT_TEST_SECURITY:-none}" = curve ]; then
  peer_keys=""
  for i in 1 2 3 4 5; do
    mkdir -p "$work/keys/n$i"
    "$ZRAFTD" keygen --dir "$work/keys/n$i" >/dev/null
    peer_keys="$peer_keys${peer_keys:+,}$i=$(cat "$work/keys/n$i/node.pub")"
  done
  pub() { cat "$work/keys/n$1/node.pub"; }
  cluster="1=$(pub 1)@$(raft 1),2=$(pub 2)@$(raft 2),3=$(pub 3)@$(raft 3)"
  curve_args=(--security curve --peer-keys "$peer_keys")
fi

# start ID [INITIAL_CLUSTER]: starts node ID in the background (log in
# $work/logID, pid in pids[ID]).
start() {
  local id=$1 ic=${2-$cluster} extra=()
  if declare -F extra_args >/dev/null; then
    mapfile -t extra < <(extra_args "$id")
  fi
  if [ "${#curve_args[@]}" -gt 0 ]; then
    extra+=("${curve_args[@]}" --node-key "$work/keys/n$id/node.key")
  fi
  "$ZRAFTD" --id "$id" --raft-addr "$(raft "$id")" --http-addr "$(http "$id")" \
    "${extra[@]}" --data-dir "$work/n$id${data_sub-}" --initial-cluster "$ic" \
    --election-timeout-min-ms 300 --election-timeout-max-ms 600 \
    >>"$work/log$id" 2>&1 &
  # shellcheck disable=SC2004 # pids is associative: $ needed
  pids[$id]=$!
}

# check NAME COMMAND...: runs the command; counts it, or prints every
# node's log tail and exits 1.
check() {
  local name=$1
  shift
  if "$@"; then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name"
    fail=$((fail + 1))
    for f in "$work"/log*; do echo "--- $f"; tail -"${log_tail-5}" "$f"; done
    echo "$pass passed, $fail failed"
    exit 1
  fi
}

# put N KEY VALUE: prints the HTTP status of a PUT through node N.
put() { curl -s -L --max-time 10 -o /dev/null -w '%{http_code}' -X PUT --data-binary "$3" "http://$(http "$1")/kv/$2"; }
# get N KEY: prints KEY's value read through node N.
get() { curl -s -L --max-time 10 "http://$(http "$1")/kv/$2"; }

# kill_nodes: kill -9 every node still in pids (resumed first, if stopped).
kill_nodes() {
  for id in "${!pids[@]}"; do
    kill -CONT "${pids[$id]}" 2>/dev/null || true
    kill -KILL "${pids[$id]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

# cleanup: the EXIT trap (a script may define its own after sourcing).
cleanup() {
  kill_nodes
  rm -rf "$work"
}
trap cleanup EXIT

status_url() { echo "http://$(http "$1")/cluster/status"; }
# shellcheck source=cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
