"""A local fake YouTube for ytkafka-consumer's --youtube-url.

Threaded stdlib HTTP server. Serves ``/watch?v=ID`` (a ~1 MB page from
tests/fixtures/ytfixtures.py), ``/oembed?url=...&format=json`` and the
consent page ``/m``, a home page ``/`` (what the consumer checks YouTube
itself with), and records every request it receives (also any other
path: an "evil" instance just counts).

Per video id (``fake.set(id, mode, ...)``) or for all ids (``default_mode``):
  ok, tricky, cipher, wrong, private, age, unplayable, unavailable, bot,
  consent (302 to /m without a SOCS cookie, the interstitial otherwise),
  consent_page (200 with the interstitial), status:N (always HTTP N),
  429 (``fail`` first requests answer 429 + Retry-After, then ok),
  500 (always 500), flaky (``fail`` first requests answer 500, then ok),
  hang (no answer until the client gives up), stall (the watch page's
  status, headers and first bytes, then nothing for 30 s; oEmbed ok).
``outage = "503"`` answers every path 503, or only those in ``outage_paths``.
``latency`` (seconds) delays every answer.

As a program (for the benchmark): ``python3 fake_youtube.py --port 0
--latency-ms 20 --size 1000000`` prints ``PORT <n>`` and serves until killed;
``GET /__stats`` returns the request counters as JSON (of the process that
answers it, with ``--processes N``).
"""
import argparse
import json
import socket
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fixtures"))

import ytfixtures  # noqa: E402

_PLACEHOLDER = "@@VIDEOID@@"  # 11 characters, like a video id


def _sendv(sock, parts):
    """sendall for a list of buffers, without joining them"""
    views = [memoryview(p) for p in parts if p]
    while views:
        n = sock.sendmsg(views[:512])
        while n and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if n:
            views[0] = views[0][n:]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        # a client that stops reading mid-answer (a check wants only the
        # status) resets the connection: not the fake's error
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class FakeYouTube:
    def __init__(self, latency=0.0, size=1_000_000, default_mode="ok",
                 template=False, port=0, host="127.0.0.1"):
        self.latency = latency
        self.size = size
        self.default_mode = default_mode
        self.modes = {}
        self.videos = {}
        self.requests = []
        self.lock = threading.Lock()
        self.counts = {}
        self._cache = {}
        self.gates = {}   # vid -> threading.Event: answers wait for it
        self._template = None
        if template:
            # one page for every id: the benchmark must not measure Python
            v = ytfixtures.video(_PLACEHOLDER, title="Bench video " + _PLACEHOLDER)
            ph = _PLACEHOLDER.encode()
            self._template = (ytfixtures.watch_page(v, "ok", size).split(ph),
                              ytfixtures.oembed(v).split(ph))
        self.outage = None  # "503": every video answers 503 (see refuse())
        # the paths an outage = "503" fails ("/watch", "/oembed", "/"):
        # None, every path; a set, only those (one endpoint out)
        self.outage_paths = None
        # host: 127.0.0.1, unless a test's own network namespace (the
        # container test) needs it on the namespace's bridge.
        self.httpd = _Server((host, port), self._handler())
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = None

    # -- control ------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def refuse(self):
        """Close the listening socket: connections are refused until
        restore() listens again on the same port; kept-alive connections are
        dropped without an answer at their next request."""
        self.outage = "refuse"
        self.httpd.shutdown()
        self.httpd.server_close()

    def restore(self):
        self.outage = None
        self.httpd = _Server(("127.0.0.1", self.port), self._handler())
        return self.start()

    def set(self, vid, mode="ok", fail=0, retry_after=1, latency=None, **facts):
        """Decide what `vid` answers; facts override the generated video."""
        with self.lock:
            self.modes[vid] = {"mode": mode, "fail": fail, "retry_after": retry_after,
                               "latency": latency, "served": 0}
            if facts:
                self.videos[vid] = ytfixtures.video(vid, **facts)
                self._cache = {k: v for k, v in self._cache.items() if k[0] != vid}

    def video(self, vid):
        """The facts the fake serves for vid (what the consumer must report)."""
        with self.lock:
            if vid not in self.videos:
                self.videos[vid] = ytfixtures.video(vid)
            return self.videos[vid]

    def requests_for(self, vid, path=None):
        with self.lock:
            return [r for r in self.requests if vid in r["path"]
                    and (path is None or r["path"].startswith(path))]

    def reset(self):
        with self.lock:
            self.requests = []
            self.counts = {}

    # -- raw pages and request timing (extractor and --max-rps tests) -------
    def set_raw(self, vid, body, oembed=None):
        """Serve `body` (bytes) as vid's watch page, whatever it holds;
        `oembed`, if given, is the (status, body) of its /oembed answer
        (otherwise the generated oEmbed of the video)."""
        with self.lock:
            self.raw_pages = getattr(self, "raw_pages", {})
            self.raw_pages[vid] = body
            self.raw_oembeds = getattr(self, "raw_oembeds", {})
            if oembed is None:
                self.raw_oembeds.pop(vid, None)
            else:
                self.raw_oembeds[vid] = oembed
        self.set(vid, mode="raw")

    def hold(self, vid):
        """Requests for vid are counted at once but answered only after
        release(vid) (or 120 s): a fetch stays in flight as long as a test
        needs, without a timing guess."""
        with self.lock:
            self.gates[vid] = threading.Event()

    def release(self, vid):
        with self.lock:
            gate = self.gates.pop(vid, None)
        if gate is not None:
            gate.set()

    def count(self, vid, path):
        """How many requests for vid this path (/watch, /oembed) got."""
        return len(self.requests_for(vid, path))

    def raw_page(self, vid):
        with self.lock:
            return self.raw_pages[vid]

    def request_times(self, path=None):
        """Arrival times (time.time()) of the requests, optionally of one
        path prefix such as "/watch", sorted."""
        with self.lock:
            return sorted(r["time"] for r in self.requests
                          if path is None or r["path"].startswith(path))

    # -- serving ------------------------------------------------------------
    def _page(self, vid, kind):
        if self._template:
            # the parts around each id, not their 1 MB join: _send hands them
            # to sendmsg, so Python copies nothing per request
            page, oe = self._template
            parts = oe if kind == "oembed" else page
            v = vid.encode()
            out = [parts[0]]
            for p in parts[1:]:
                out.append(v)
                out.append(p)
            return out
        key = (vid, kind)
        with self.lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        v = self.video(vid)
        if kind == "oembed":
            body = ytfixtures.oembed(v)
        else:
            body = ytfixtures.watch_page(v, kind, self.size)
        with self.lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = body
        return body

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "FakeYouTube/1.0"
            # headers and body are two writes: without this, Nagle plus the
            # client's delayed ACK add 40 ms to every small answer
            disable_nagle_algorithm = True

            def log_message(self, fmt, *args):
                pass

            def _send(self, status, body=b"", ctype="text/html; charset=utf-8",
                      headers=(), stall=0):
                """body: bytes, or a list of bytes sent as one (sendmsg);
                @stall: seconds to wait after the headers and a first part
                of the body before the rest"""
                parts = body if isinstance(body, list) else [body]
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(sum(map(len, parts))))
                for k, v in headers:
                    self.send_header(k, v)
                # headers and body in one sendmsg: one syscall and one GIL
                # release per answer, not a write per header and per part
                self._headers_buffer.append(b"\r\n")
                head = b"".join(self._headers_buffer)
                self._headers_buffer = []
                if self.command == "HEAD":
                    parts = []
                if stall:
                    rest = b"".join(parts)
                    _sendv(self.connection, [head, rest[:4096]])
                    time.sleep(stall)
                    parts, head = [rest[4096:]], b""
                _sendv(self.connection, [head] + parts)

            def do_POST(self):
                self.do_GET()

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                if fake.outage == "refuse":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                url = urlsplit(self.path)
                q = parse_qs(url.query)
                rec = {"method": self.command, "path": self.path,
                       "cookie": self.headers.get("Cookie"),
                       "host": self.headers.get("Host"), "time": time.time()}
                with fake.lock:
                    fake.requests.append(rec)
                    fake.counts[url.path] = fake.counts.get(url.path, 0) + 1
                if url.path == "/__stats":
                    with fake.lock:
                        body = json.dumps({"requests": len(fake.requests),
                                           "paths": fake.counts}).encode()
                    return self._send(200, body, "application/json")
                if fake.outage == "503" and (fake.outage_paths is None
                                             or url.path in fake.outage_paths):
                    # YouTube down: everything it serves (or the endpoints
                    # in outage_paths) answers 503
                    return self._send(503, b"Service Unavailable", "text/plain")
                vid = None
                if url.path == "/":
                    # the home page: what the consumer checks YouTube with
                    return self._send(200, b"<html><title>YouTube</title></html>")
                if url.path == "/watch":
                    vid = (q.get("v") or [""])[0]
                    kind = "watch"
                elif url.path == "/oembed":
                    target = (q.get("url") or [""])[0]
                    tq = parse_qs(urlsplit(target).query)
                    vid = (tq.get("v") or [""])[0]
                    kind = "oembed"
                elif url.path == "/m":
                    return self._send(200, ytfixtures.consent_page("x"))
                else:
                    return self._send(404, b"Not Found", "text/plain")
                if len(vid) != 11:
                    return self._send(400, b"Bad Request", "text/plain")
                with fake.lock:
                    m = fake.modes.get(vid)
                    if m is None:
                        m = {"mode": fake.default_mode, "fail": 0, "retry_after": 1,
                             "latency": None, "served": 0}
                        fake.modes[vid] = m
                    if kind == "watch":
                        m["served"] += 1
                    served = m["served"]
                    mode = m["mode"]
                    gate = fake.gates.get(vid)
                if gate is not None:
                    gate.wait(120)
                delay = m["latency"] if m["latency"] is not None else fake.latency
                if delay:
                    time.sleep(delay)
                self._answer(vid, kind, mode, m, served)

            def _answer(self, vid, kind, mode, m, served):
                if mode == "raw" and kind == "watch":
                    return self._send(200, fake.raw_page(vid))
                if mode == "raw" and vid in getattr(fake, "raw_oembeds", {}):
                    status, body = fake.raw_oembeds[vid]
                    return self._send(status, body, "application/json"
                                      if status == 200 else "text/plain")
                if mode == "stall" and kind == "watch":
                    return self._send(200, fake._page(vid, "ok"), stall=30)
                if mode == "hang":
                    time.sleep(30)
                    return self._send(504, b"", "text/plain")
                if mode == "500":
                    return self._send(500, b"<html>Internal Server Error</html>")
                if mode.startswith("status:"):
                    return self._send(int(mode[7:]), b"Error", "text/plain")
                if mode in ("429", "flaky") and kind == "watch" and served <= m["fail"]:
                    if mode == "429":
                        return self._send(429, b"", headers=[("Retry-After",
                                                              str(m["retry_after"]))])
                    return self._send(503, b"Service Unavailable", "text/plain")
                if mode in ("429", "flaky"):
                    mode = "ok"
                if kind == "oembed":
                    if mode == "private":
                        return self._send(403, b"Forbidden", "text/plain")
                    if mode == "unavailable":
                        return self._send(404, b"Not Found", "text/plain")
                    if mode in ("bot", "consent", "consent_page"):
                        return self._send(200, fake._page(vid, "oembed"),
                                          "application/json")
                    return self._send(200, fake._page(vid, "oembed"), "application/json")
                if mode == "consent":
                    cookie = self.headers.get("Cookie") or ""
                    if "SOCS=" not in cookie and "CONSENT=" not in cookie:
                        loc = ("%s/m?continue=https%%3A%%2F%%2Fwww.youtube.com%%2Fwatch"
                               "%%3Fv%%3D%s%%26cbrd%%3D1&gl=DE&m=0&pc=yt&uxe=23983172"
                               "&hl=en&src=1" % (fake.url, vid))
                        return self._send(302, b"", headers=[("Location", loc)])
                    mode = "ok"
                if mode == "consent_page":
                    return self._send(200, ytfixtures.consent_page(vid))
                kind_page = mode if mode in ("ok", "tricky", "cipher", "wrong", "private",
                                             "age", "unplayable", "unavailable",
                                             "bot") else "ok"
                return self._send(200, fake._page(vid, kind_page))

        return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--template", action="store_true",
                    help="one pre-built page for every id (fast)")
    ap.add_argument("--processes", type=int, default=1,
                    help="serve from N processes (counters per process)")
    a = ap.parse_args()
    # 64 handler threads waking from their latency sleep contend for the GIL;
    # the default 5 ms switch interval would add that to every answer
    sys.setswitchinterval(0.0005)
    fake = FakeYouTube(latency=a.latency_ms / 1000.0, size=a.size,
                       default_mode=a.mode, template=a.template, port=a.port,
                       host=a.host)
    children = []
    if a.processes > 1:
        # one listening socket, several processes accepting on it: each has
        # its own GIL and fewer threads to hand it around
        fake.httpd.socket.setblocking(False)
        for _ in range(a.processes - 1):
            pid = os.fork()
            if pid == 0:
                _die_with_parent()
                children = None
                break
            children.append(pid)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if children is not None:
        print("PORT %d" % fake.port, flush=True)
    try:
        fake.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for pid in children or ():
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)


def _die_with_parent():
    """PR_SET_PDEATHSIG: a child must not outlive a killed parent"""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:
        os._exit(0)


if __name__ == "__main__":
    main()


def max_in_window(times, window=1.0):
    """The most requests in any half-open window [t, t + window) of
    `times` (sorted)."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
