#!/usr/bin/env python3
"""check-report.py ZRAFT_BENCH OUT.html - runs a 1.5 s in-process bench with
--report and checks the page: it parses as HTML, loads nothing from
anywhere (no src=, href=, url(), @import), holds the two charts (SVG with a
line and bars), the percentile table, the machine section, and JSON figures
that agree with the table zraft-bench printed. Exit 0 or 1."""
import html.parser
import json
import re
import subprocess
import sys

bench, out = sys.argv[1], sys.argv[2]
r = subprocess.run([bench, "--nodes", "3", "--clients", "8", "--duration", "1.5",
                    "--report", out], capture_output=True, text=True,
                   timeout=120)
fails = []
passed = []


def check(name, ok):
    print(("ok   " if ok else "FAIL ") + name)
    (passed if ok else fails).append(name)


check("zraft-bench --report exits 0", r.returncode == 0)
row = r.stdout.strip().splitlines()[-1].split()
page = open(out, encoding="utf-8").read()


class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = {}
        self.json = ""
        self._in_json = False

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        a = dict(attrs)
        if tag == "script" and a.get("type") == "application/json":
            self._in_json = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_json = False

    def handle_data(self, data):
        if self._in_json:
            self.json += data


p = P()
p.feed(page)
check("two SVG charts", p.tags.get("svg") == 2)
check("a throughput line", p.tags.get("polyline", 0) == 1)
check("histogram bars", p.tags.get("rect", 0) >= 1)
check("nothing loaded from elsewhere",
      not re.search(r"\b(src|href)\s*=|url\(|@import", page))
for word in ("p50 latency", "p99.9 latency", "cores", "fdatasync",
             "zraft 0.1", "--duration 1.5"):
    check("the page shows %r" % word, word in page)
j = json.loads(p.json)
check("JSON: writes = the table's ops (%s)" % row[3],
      str(j["writes"]) == row[3])
check("JSON: p50 = the table's p50 (%s)" % row[5],
      str(j["p50_us"]) == row[5])
check("JSON: clients 8, nodes 3", j["clients"] == 8 and j["nodes"] == 3)
print("%d passed, %d failed" % (len(passed), len(fails)))
sys.exit(1 if fails else 0)
