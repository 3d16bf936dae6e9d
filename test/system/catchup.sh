#!/usr/bin/env bash
# System test: a node restarted after kill -9 catches up from a large batch
# (the fault campaign's crash: kill -9 a follower, move leadership to the
# other follower so the new term's empty entry lands inside the dead node's
# missing range, write 3,000 keys, restart it; its log writer used to
# overrun an iovec array on the first catch-up batch of more than 511
# records and segfault on every restart).
# Usage: catchup.sh PATH/TO/zraftd
set -euo pipefail
ZRAFTD=${1:?usage: catchup.sh PATH/TO/zraftd}
# shellcheck source=../lib/ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/ports.sh"
port_base
work=$(mktemp -d "${TMPDIR:-/tmp}/zraft-catchup.XXXXXX")
declare -A pids=()
pass=0
fail=0
log_tail=8
# shellcheck source=../lib/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

alive() { kill -0 "${pids[$1]}" 2>/dev/null; }

for id in 1 2 3; do start "$id"; done
check "a leader is elected" wait_for 20 has_leader 1 2 3
L=$(wait_leader 1 2 3)
F=$((L % 3 + 1))
O=$((6 - L - F))
kill -KILL "${pids[$F]}"
wait "${pids[$F]}" 2>/dev/null || true
unset "pids[$F]"
code=$(curl -s -L -o /dev/null -w '%{http_code}' -X POST -d "{\"to\":$O}" \
  "http://$(http "$L")/cluster/transfer-leader")
check "leadership moves to the other follower ($code)" wait_for 20 bash -c \
  "[ \"\$(curl -s http://$(http "$O")/cluster/status | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"role\"])')\" = leader ]"
# 3,000 keys through the new leader, 64 at a time. Leadership may move
# again on a loaded machine (two live voters): a 307 is followed and a 503
# (no leader yet) asked again, up to a deadline; any leader will do, what
# matters is the range node F misses.
python3 - "$(http "$O")" <<'EOF'
import sys, time, http.client, concurrent.futures
from urllib.parse import urlsplit
addr = sys.argv[1]
deadline = time.time() + 120
def put(lo):
    where = addr
    c = None
    for i in range(lo, min(lo + 47, 3000)):
        while True:
            if c is None:
                host, port = where.rsplit(":", 1)
                c = http.client.HTTPConnection(host, int(port), timeout=20)
            c.request("PUT", "/kv/k%d" % i, body=("v%d" % i).encode())
            r = c.getresponse()
            r.read()
            if r.status == 204:
                break
            if time.time() > deadline:
                sys.exit("PUT k%d: %d (deadline passed)" % (i, r.status))
            if r.status == 307:
                where = urlsplit(r.getheader("Location")).netloc
                c.close()
                c = None
            elif r.status == 503:
                time.sleep(0.1)
            else:
                sys.exit("PUT k%d: %d" % (i, r.status))
    if c is not None:
        c.close()
with concurrent.futures.ThreadPoolExecutor(64) as ex:
    list(ex.map(put, range(0, 3000, 47)))
EOF
check "3,000 writes while node $F is down" true
start "$F"
target=$(field "$(wait_leader "$L" "$O")" commit_index)
check "the restarted node catches up" wait_for 30 applied_at_least "$F" "$target"
check "and is still running" alive "$F"
check "it serves the last key" \
  [ "$(curl -s "http://$(http "$F")/kv/k2999?consistency=stale")" = v2999 ]
check "no sanitizer report in any node's log" no_sanitizer_report "$work"
echo "$pass passed, 0 failed"
