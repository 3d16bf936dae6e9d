#!/usr/bin/env python3
"""ui_browser.py - system test of the live cluster page in a real browser
(headless Chromium over the DevTools protocol, cdp.py).

Starts three zraftd nodes on 127.0.0.1, checks the page's HTTP side with
plain requests (GET / and /ui, CORS on /cluster/status and /metrics), then
opens the page on a follower, with no ?nodes= hint, and checks:
  - the leader's card is highlighted and names the node every status names;
  - after kill -9 of the leader, the page shows a new leader (the one the
    live nodes name) and the old leader's card as unreachable;
  - the old leader restarts and its card is reachable again;
  - after kill -9 of the node that served the page, the page goes on:
    it keeps redrawing and shows the leader the live nodes name.
Every wait polls for its condition with a deadline. Screenshots go to
--shots DIR (cluster-page.png, cluster-page-failover.png).

Usage: ui_browser.py ZRAFTD [--shots DIR]
Exit: 0 pass, 1 fail, 77 skipped (no Chromium can run here: says why)."""
import argparse
import json
import fcntl
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

DEADLINE = 30  # s: generous, the machine is shared and small


_port_lock = None


def port_base():
    """The first port of a 500-port block that no other zraft test holds
    (the lock files of test/lib/ports.sh, held until this process exits)."""
    global _port_lock
    start = random.randrange(40)
    for i in range(40):
        slot = (start + i) % 40
        f = open("/tmp/zraft-test-ports-%d.lock" % slot, "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        _port_lock = f
        return 10000 + slot * 500
    raise SystemExit("port_base: all 40 port blocks are held by other tests")


class Cluster:
    def __init__(self, zraftd, work):
        self.zraftd = zraftd
        self.work = work
        self.base = port_base()
        self.procs = {}

    def raft(self, i):
        return "127.0.0.1:%d" % (self.base + i)

    def http(self, i):
        return "127.0.0.1:%d" % (self.base + 100 + i)

    def start(self, i):
        ic = ",".join("%d=%s" % (j, self.raft(j)) for j in (1, 2, 3))
        log = open(os.path.join(self.work, "log%d" % i), "a")
        self.procs[i] = subprocess.Popen(
            [self.zraftd, "--id", str(i), "--raft-addr", self.raft(i),
             "--http-addr", self.http(i),
             "--data-dir", os.path.join(self.work, "n%d" % i),
             "--initial-cluster", ic,
             "--election-timeout-min-ms", "300",
             "--election-timeout-max-ms", "600"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

    def kill(self, i):
        p = self.procs.pop(i)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop_all(self):
        for i in list(self.procs):
            self.kill(i)

    def status(self, i):
        try:
            with urllib.request.urlopen("http://%s/cluster/status" %
                                        self.http(i), timeout=2) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def leader(self, among):
        """The id that every live node in `among` names as leader, if they
        agree and it is one of them; else None."""
        seen = set()
        for i in among:
            s = self.status(i)
            if s is None or not s.get("leader"):
                return None
            seen.add(s["leader"])
        if len(seen) == 1 and next(iter(seen)) in among:
            return next(iter(seen))
        return None

    def logs(self):
        out = []
        for i in (1, 2, 3):
            p = os.path.join(self.work, "log%d" % i)
            if os.path.exists(p):
                with open(p) as f:
                    out.append("--- log%d\n%s" % (i, "".join(
                        f.readlines()[-8:])))
        return "\n".join(out)


def wait_for(cond, timeout=DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    return None


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, dict(r.headers), r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("zraftd")
    ap.add_argument("--shots", default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="zraft-ui.")
    c = Cluster(a.zraftd, work)
    results = {"pass": 0}
    browser = None

    def check(name, ok):
        if ok:
            print("ok   " + name, flush=True)
            results["pass"] += 1
            return
        print("FAIL " + name)
        print(c.logs())
        print("%d passed, 1 failed" % results["pass"])
        raise SystemExit(1)

    try:
        for i in (1, 2, 3):
            c.start(i)
        L = wait_for(lambda: c.leader((1, 2, 3)))
        check("a leader is elected (node %s)" % L, L)

        # The HTTP side, without a browser.
        st, hdr, body = get("http://%s/" % c.http(1))
        check("GET / is the page",
              st == 200 and hdr.get("Content-Type", "").startswith(
                  "text/html") and b"zraft cluster" in body)
        st, hdr, body2 = get("http://%s/ui" % c.http(2))
        check("GET /ui is the same page", st == 200 and body2 == body)
        for path in ("/cluster/status", "/metrics"):
            st, hdr, _ = get("http://%s%s" % (c.http(3), path))
            check("%s answers any origin" % path,
                  st == 200 and hdr.get("Access-Control-Allow-Origin") == "*")
        # The leader records its address just after it wins: wait for it.
        check("the leader's status records its HTTP address in members",
              wait_for(lambda: ((c.status(L) or {}).get("members") or {})
                       .get(str(L)) == c.http(L)))

        # Some writes, so that the chart has a line.
        for k in range(50):
            req = urllib.request.Request(
                "http://%s/kv/k%d" % (c.http(L), k), data=b"v", method="PUT")
            urllib.request.urlopen(req, timeout=5).close()

        try:
            browser = cdp.Browser()
        except cdp.BrowserUnavailable as e:
            print("SKIP: the browser part: %s" % e)
            print("%d passed, 0 failed, 1 skipped" % results["pass"])
            return 77

        F = next(i for i in (1, 2, 3) if i != L)  # the page's server
        browser.open("http://%s/ui" % c.http(F))
        leader_js = 'document.getElementById("leader").dataset.leader'
        card_js = ('(() => { const e = document.querySelector(".card.leader");'
                   ' return e ? e.dataset.id : ""; })()')

        def page_agrees(live, extra="true"):
            """The leader the live nodes agree on, once the page shows the
            same one (compared in one go: leadership may move meanwhile)."""
            def both():
                n = c.leader(live)
                if n is None:
                    return None
                js = "(%s) === '%d' && (%s) === '%d' && (%s)" % (
                    leader_js, n, card_js, n, extra)
                try:
                    return n if browser.eval(js) else None
                except RuntimeError:
                    return None
            return wait_for(both)

        L = page_agrees((1, 2, 3))
        check("the page (served by node %d) highlights the leader, node %s"
              % (F, L), L)
        n_cards = browser.eval('document.querySelectorAll(".card").length')
        check("one card per member (%s)" % n_cards, n_cards == 3)
        if a.shots:
            os.makedirs(a.shots, exist_ok=True)
            browser.wait_for('document.getElementById("rate").textContent',
                             5)
            browser.screenshot(os.path.join(a.shots, "cluster-page.png"))

        # Kill the leader: the page shows the new one.
        c.kill(L)
        live = tuple(i for i in (1, 2, 3) if i != L)
        N = page_agrees(live)
        check("the page shows the new leader (node %s, elected among %s)" %
              (N, live), N)
        down = browser.wait_for(
            'document.querySelector(\'.card[data-id="%d"]\').dataset'
            '.reachable === "false"' % L, DEADLINE)
        check("the old leader's card shows it unreachable", down)
        log = browser.eval('document.getElementById("changes-body")'
                           '.textContent')
        check("the leader change is logged",
              "node %d" % N in log and "node %d" % L in log)

        # The old leader comes back.
        c.start(L)
        up = browser.wait_for(
            'document.querySelector(\'.card[data-id="%d"]\').dataset'
            '.reachable === "true"' % L, DEADLINE)
        check("node %d restarts and its card is reachable again" % L, up)
        if a.shots:
            browser.screenshot(os.path.join(a.shots,
                                            "cluster-page-failover.png"))

        # The node that served the page dies: the page goes on polling the
        # others.
        t0 = browser.eval("Number(document.body.dataset.updated)")
        c.kill(F)
        live = tuple(i for i in (1, 2, 3) if i != F)
        M = page_agrees(live, "Number(document.body.dataset.updated) > %d"
                        " && document.querySelector('.card[data-id=\"%d\"]')"
                        ".dataset.reachable === 'false'" % (t0, F))
        check("the page outlives its server (node %d): it shows leader %s "
              "and node %d unreachable" % (F, M, F), M)
        print("%d passed, 0 failed" % results["pass"])
        return 0
    finally:
        if browser is not None:
            browser.close()
        c.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
