"""cdp.py - a small Chrome DevTools Protocol client over a pipe, for the
browser tests: starts headless Chromium with --remote-debugging-pipe (the
protocol's JSON messages, NUL-terminated, on file descriptors 3 and 4: no
WebSocket, no port), opens a page, evaluates JavaScript, takes screenshots.
Standard library only.

Browser.find() names the first Chromium binary present; Browser() raises
BrowserUnavailable, with the reason, when it cannot start one."""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser",
              "google-chrome")


class BrowserUnavailable(Exception):
    """No Chromium here, or it cannot start (the reason is the message)."""


class Browser:
    def __init__(self, binary=None, width=1280, height=900):
        self.binary = binary or Browser.find()
        if self.binary is None:
            raise BrowserUnavailable("no Chromium binary (tried %s)" %
                                     ", ".join(CANDIDATES))
        self.profile = tempfile.mkdtemp(prefix="zraft-cdp-")
        self.log = open(os.path.join(self.profile, "stderr"), "w+")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds():  # the browser reads fd 3, writes fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)
        # close_fds would close 3 and 4 after fds() ran; os.pipe()'s
        # descriptors are close-on-exec anyway, so only 3 and 4 (and the
        # standard ones) reach the browser.

        args = [self.binary, "--headless", "--remote-debugging-pipe",
                "--no-first-run", "--no-default-browser-check",
                "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-extensions",
                "--user-data-dir=" + self.profile,
                "--window-size=%d,%d" % (width, height)]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses root otherwise
        args.append("about:blank")
        self.proc = subprocess.Popen(args, preexec_fn=fds, close_fds=False,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next = 0
        self.session = None
        try:
            self.call("Browser.getVersion", timeout=30)
        except Exception as e:
            reason = self._stderr_tail()
            self.close()
            raise BrowserUnavailable("%s does not start: %s %s" %
                                     (self.binary, e, reason))

    @staticmethod
    def find():
        for name in CANDIDATES:
            p = shutil.which(name)
            if p:
                return p
        return None

    def _stderr_tail(self):
        try:
            self.log.flush()
            self.log.seek(0)
            return " | ".join(self.log.read().strip().splitlines()[-5:])
        except (OSError, ValueError):
            return ""

    def _send(self, msg):
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self._to_browser, data)
            data = data[n:]

    def _recv(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the browser")
            r, _, _ = select.select([self._from_browser], [], [], left)
            if r:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise ConnectionError("the browser closed its pipe")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, timeout=20, session=True):
        """Sends one command and returns its result (raises on error)."""
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self._send(msg)
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self._next:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            # events are not needed by these tests: dropped

    def open(self, url):
        """Opens url in a new tab and attaches to it."""
        t = self.call("Target.createTarget", {"url": "about:blank"},
                      session=False)
        a = self.call("Target.attachToTarget",
                      {"targetId": t["targetId"], "flatten": True},
                      session=False)
        self.session = a["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Page.navigate", {"url": url})

    def eval(self, expr):
        """The value of a JavaScript expression in the page (JSON-able)."""
        r = self.call("Runtime.evaluate",
                      {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError("page: %s" % r["exceptionDetails"].get(
                "text", r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expr, timeout):
        """Polls a JavaScript expression until it is truthy; its value, or
        None once the deadline passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                v = self.eval(expr)
            except RuntimeError:
                v = None  # page still loading
            if v:
                return v
            time.sleep(0.2)
        return None

    def screenshot(self, path):
        r = self.call("Page.captureScreenshot", {"format": "png"})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.call("Browser.close", timeout=5, session=False)
                except Exception:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)
