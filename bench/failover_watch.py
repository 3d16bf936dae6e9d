#!/usr/bin/env python3
"""failover_watch.py PID PORT PORT - kill -9 a zraftd (the leader), then
poll the /cluster/status of the two others (HTTP ports) over kept-alive
connections until both agree on a new leader. Prints the milliseconds
from the kill to the election (a node reports role "leader") and to
agreement (both name it), as: elected_ms agreed_ms leader_id.
Used by bench/failover.sh."""
import http.client
import json
import os
import signal
import sys
import time


def status(conns, port):
    try:
        conns[port].request("GET", "/cluster/status")
        d = json.loads(conns[port].getresponse().read())
        return d.get("role"), d.get("leader")
    except (OSError, ValueError, http.client.HTTPException):
        conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        return None, None


def main():
    pid, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2:4]]
    conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=2)
             for p in ports}
    for p in ports:
        status(conns, p)  # connected before the kill
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    elected = None
    while time.monotonic() - t0 < 20:
        st = [status(conns, p) for p in ports]
        now = (time.monotonic() - t0) * 1000
        if elected is None and any(r == "leader" for r, _ in st):
            elected = now
        leaders = {ld for _, ld in st}
        if (elected is not None and len(leaders) == 1 and
                None not in leaders and leaders != {0}):
            print("%d %d %s" % (elected, now, leaders.pop()))
            return 0
    print("no agreed leader within 20 s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
