# cluster.sh - shell helpers the process-level tests share (test/system,
# test/docker). Source it after defining
#   status_url N   -> the URL of node N's GET /cluster/status
# Needs curl and python3.

# field N KEY: KEY's value in node N's /cluster/status ("" if unreachable;
# lists as JSON).
field() {
  curl -s --max-time 2 "$(status_url "$1")" 2>/dev/null |
    python3 -c 'import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else json.dumps(v) if isinstance(v, list) else v)' "$2" \
      2>/dev/null || true
}

# wait_for SECONDS COMMAND...: polls the command until it succeeds; 1 when
# the deadline passes first.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# leader_of N...: prints the leader every given node names, if they agree
# and that node says it leads.
leader_of() {
  local l="" x n
  for n in "$@"; do
    x=$(field "$n" leader)
    [ -n "$x" ] || return 1
    [ -z "$l" ] || [ "$l" = "$x" ] || return 1
    l=$x
  done
  [ "$(field "$l" role)" = leader ] || return 1
  echo "$l"
}

has_leader() { leader_of "$@" >/dev/null; }

# wait_leader N...: waits (20 s) until the given nodes agree on a leader and
# prints it. Polls leader_of itself rather than trusting an earlier wait:
# leadership may move between a wait and a look (seen on a loaded machine).
wait_leader() {
  local deadline=$((SECONDS + 20)) l
  until l=$(leader_of "$@"); do
    [ "$SECONDS" -lt "$deadline" ] || { echo "no leader among $*" >&2; return 1; }
    sleep 0.05
  done
  echo "$l"
}

# applied_at_least N INDEX: node N has applied INDEX.
applied_at_least() {
  local a
  a=$(field "$1" last_applied)
  [ -n "$a" ] && [ "$a" -ge "$2" ]
}

# no_sanitizer_report DIR: true unless a node's log (DIR/log*) holds a report
# of a sanitizer build (ASan+UBSan, TSan), which it then prints. Checked at
# the end, so that a node killed by a report, or one the test killed or
# restarted after its report, cannot go unnoticed.
no_sanitizer_report() {
  local pat='WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:'
  if grep -qE "$pat" "$1"/log*; then
    grep -hE -A30 "$pat" "$1"/log* | head -100
    return 1
  fi
}
