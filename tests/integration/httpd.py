"""A real Apache httpd with mod_ytkafka for the integration tests.

In the style of httpd's own pytest suite (test/pyhttpd): a test writes a
small standalone config, starts httpd on a free loopback port, talks HTTP to
it and stops it. After the test the error log is scanned: an error or a
warning the test did not declare as expected fails it.

    from httpd import Httpd, httpd_factory   # the fixture, for pytest

    def test_x(httpd_factory, kafka):
        h = httpd_factory(mpm="event")
        h.write_config("YtKafkaBrokers %s\\n<Location /send>\\n"
                       "SetHandler ytkafka-send\\n</Location>" % kafka.bootstrap)
        h.start()
        r = h.post_json("/send", {"links": "https://youtu.be/dQw4w9WgXcQ"})
        h.expect_log(r"YTK00203")     # an [error] this test provokes

Environment: APACHE2 (default /usr/sbin/apache2), APACHE_MODULES (default
/usr/lib/apache2/modules), YTK_BUILD_DIR (default <repo>/build).

YTK_HTTPD_ASAN=1 loads the AddressSanitizer build's module
(YTK_ASAN_BUILD_DIR, default <repo>/build-asan) instead: httpd runs with the
sanitizer runtimes the module links preloaded, ASAN_OPTIONS/UBSAN_OPTIONS
write reports under the test's httpd directory (asan/), and the fixture
fails a test after which any report is there. Leak detection is off (httpd
leaves its pools to the kernel at exit by design); memory errors and
undefined behaviour are reported.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))
APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
MODULES = os.environ.get("APACHE_MODULES", "/usr/lib/apache2/modules")
MPMS = ("event", "worker", "prefork")

# An error log line: "[date] [module:level] [pid N:tid M] message".
_LOG_LEVEL = re.compile(r"^\[[^\]]*\] \[(?:[\w.-]*:)?(emerg|alert|crit|error|warn)\]")
# Lines that may appear at these levels in any healthy run: librdkafka
# warns, and retries, while a broker that just started loads its
# transaction coordinator (the tests start brokers all the time).
ALWAYS_OK = [r"GETPID.*Coordinator load in progress"]


ASAN = os.environ.get("YTK_HTTPD_ASAN", "") not in ("", "0", "no")
ASAN_BUILD = os.environ.get("YTK_ASAN_BUILD_DIR", os.path.join(SRC, "build-asan"))


def module_path():
    build = ASAN_BUILD if ASAN else BUILD
    return os.environ.get("YTK_MODULE",
                          os.path.join(build, "mod_ytkafka", ".libs", "mod_ytkafka.so"))


def sanitizer_runtimes(module):
    """The sanitizer runtimes @module links (libasan first): httpd itself is
    not instrumented, so they must be preloaded."""
    r = subprocess.run(["ldd", module], capture_output=True, text=True)
    libs = []
    for line in r.stdout.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and re.search(r"lib(asan|ubsan)\.so", parts[0]):
            libs.append(parts[1].split("(")[0].strip())
    libs.sort(key=lambda x: "libasan" not in x)
    return libs


def sanitizer_env(logdir):
    """Environment for an httpd that loads the ASan build of the module."""
    os.makedirs(logdir, exist_ok=True)
    os.chmod(logdir, 0o777)   # children run as User nobody
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(sanitizer_runtimes(module_path()))
    env["ASAN_OPTIONS"] = ("log_path=%s/asan:detect_leaks=0:halt_on_error=1:"
                           "abort_on_error=0:verify_asan_link_order=0" % logdir)
    env["UBSAN_OPTIONS"] = "log_path=%s/ubsan:print_stacktrace=1:halt_on_error=1" % logdir
    return env


def sanitizer_reports(logdir):
    """(path, text) of every report written under @logdir."""
    out = []
    try:
        names = sorted(os.listdir(logdir))
    except OSError:
        return out
    for n in names:
        path = os.path.join(logdir, n)
        with open(path, errors="replace") as f:
            out.append((path, f.read()))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    """status, headers (lower-case keys), body (bytes), json(), elapsed."""

    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


class Httpd:
    """One httpd instance in its own directory on its own port."""

    def __init__(self, workdir, mpm="event", port=None, loglevel="warn ytkafka:debug",
                 modules=()):
        if mpm not in MPMS:
            raise ValueError("mpm must be one of %s" % (MPMS,))
        self.dir = workdir
        os.makedirs(self.dir, exist_ok=True)
        self.mpm = mpm
        self.port = port or free_port()
        self.loglevel = loglevel
        self.modules = list(modules)
        self.conf = os.path.join(self.dir, "httpd.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.pid_file = os.path.join(self.dir, "httpd.pid")
        self.expected = list(ALWAYS_OK)
        self._log_mark = 0
        self.body = ""
        self.asan_dir = os.path.join(self.dir, "asan")

    # ---- configuration ---------------------------------------------------

    def base_config(self):
        mods = ["mpm_" + self.mpm, "authz_core"] + self.modules
        lines = ["ServerRoot %s" % self.dir,
                 "ServerName 127.0.0.1",
                 "Listen 127.0.0.1:%d" % self.port,
                 "PidFile %s" % self.pid_file,
                 "ErrorLog %s" % self.error_log,
                 "LogLevel %s" % self.loglevel,
                 "DefaultRuntimeDir %s" % self.dir,
                 "DocumentRoot %s" % self.dir,
                 "Timeout 20",
                 "GracefulShutdownTimeout 30"]
        if os.geteuid() == 0:
            lines += ["User nobody", "Group nogroup"]
        for m in mods:
            lines.append("LoadModule %s_module %s/mod_%s.so" % (m, MODULES, m))
        lines.append("LoadModule ytkafka_module %s" % module_path())
        # The work dirs are private to root: never look for .htaccess files.
        lines += ["<Directory />", "    AllowOverride None",
                  "    Require all granted", "</Directory>"]
        return "\n".join(lines) + "\n"

    def write_config(self, body=""):
        """Write the config: the base plus @body (any httpd config text)."""
        self.body = body
        with open(self.conf, "w") as f:
            f.write(self.base_config())
            f.write(body)
            f.write("\n")
        return self.conf

    def _run(self, *args, timeout=60):
        env = sanitizer_env(self.asan_dir) if ASAN else None
        return subprocess.run([APACHE2, "-f", self.conf, *args], capture_output=True,
                              text=True, timeout=timeout, env=env)

    def sanitizer_reports(self):
        return sanitizer_reports(self.asan_dir)

    def check(self):
        """apache2 -t: CompletedProcess (returncode, stdout, stderr)."""
        return self._run("-t")

    # ---- lifecycle ---------------------------------------------------------

    def pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _alive(self, pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie is not alive for us.
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().split(") ", 1)[1][0] != "Z"
        except OSError:
            return False

    def children(self):
        """Pids of the parent's children (the server processes)."""
        ppid = self.pid()
        out = []
        if not ppid:
            return out
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read().split(") ", 1)[1].split()
            except OSError:
                continue
            if int(st[1]) == ppid and st[0] != "Z":
                out.append(int(d))
        return out

    def _port_open(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self, bound=30):
        if not os.path.exists(self.conf):
            self.write_config(self.body)
        r = self._run("-k", "start")
        if r.returncode != 0:
            raise RuntimeError("httpd did not start (%d): %s%s" % (
                r.returncode, r.stdout, r.stderr))
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if self._port_open():
                return self
            time.sleep(0.05)
        raise RuntimeError("httpd not listening on %d within %ss:\n%s" % (
            self.port, bound, self.log_text()[-3000:]))

    def stop(self, bound=30):
        """-k stop and wait (bounded) for the parent to exit; SIGKILL after."""
        pid = self.pid()
        if not pid or not self._alive(pid):
            return True
        self._run("-k", "stop")
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return True
            time.sleep(0.05)
        for c in self.children():
            os.kill(c, signal.SIGKILL)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return False

    def graceful(self, wait=True, bound=30):
        """apachectl -k graceful; with wait, until a new generation answers."""
        old = set(self.children())
        r = self._run("-k", "graceful")
        if r.returncode != 0:
            raise RuntimeError("graceful failed: %s%s" % (r.stdout, r.stderr))
        if not wait:
            return
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if set(self.children()) - old and self._port_open():
                return
            time.sleep(0.05)
        raise RuntimeError("no new generation after graceful")

    # ---- HTTP ------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return Response(resp.status, hdrs, data, time.monotonic() - t0)
        finally:
            conn.close()

    def post_json(self, path, obj, headers=None, **kw):
        body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, body=body, headers=h, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    # ---- the error log ---------------------------------------------------------

    def log_text(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_lines(self, since_mark=True):
        text = self.log_text()
        if since_mark:
            text = text[self._log_mark:]
        return text.splitlines()

    def mark_log(self):
        """Only lines after this point count for the checks."""
        self._log_mark = len(self.log_text())

    def expect_log(self, *patterns):
        """Declare error/warning lines (regexes) this test provokes."""
        self.expected.extend(patterns)

    def wait_log(self, pattern, bound=10):
        deadline = time.monotonic() + bound
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in self.log_lines():
                if rx.search(line):
                    return line
            time.sleep(0.1)
        return None

    def unexpected_log_lines(self):
        bad = []
        for line in self.log_lines():
            if _LOG_LEVEL.match(line) and not any(re.search(p, line)
                                                   for p in self.expected):
                bad.append(line)
        return bad


def new_workdir(tag="httpd"):
    """A fresh directory httpd's children (User nobody) can search: the
    DocumentRoot's path must be reachable for requests to map."""
    d = tempfile.mkdtemp(prefix="ytk-%s-" % tag)
    os.chmod(d, 0o755)
    return d


@pytest.fixture
def httpd_factory(request):
    """httpd_factory(mpm="event", **kw) → a new Httpd; each is stopped after
    the test and its error log checked for unexpected errors and warnings."""
    made = []

    def make(**kw):
        h = Httpd(new_workdir("httpd-" + kw.get("mpm", "event")), **kw)
        made.append(h)
        return h

    yield make
    problems = []
    for h in made:
        if not h.stop():
            problems.append("httpd %s did not stop within its bound" % h.dir)
        bad = h.unexpected_log_lines()
        if bad:
            problems.append("unexpected lines in %s:\n  %s" % (
                h.error_log, "\n  ".join(bad[:20])))
        for path, text in h.sanitizer_reports():
            problems.append("sanitizer report %s:\n%s" % (path, text[:4000]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    for h in made:
        shutil.rmtree(h.dir, ignore_errors=True)


# ---- helpers the module's tests share ------------------------------------------

VIDEO = "dQw4w9WgXcQ"


def send_config(brokers, topic="youtube-links", extra="", send_extra="",
                queued_extra="", flush=5):
    """The usual test layout: /send (delivered), /queued, /status.
    @flush is YtKafkaFlushTimeout in seconds, None for the module's
    default."""
    return """YtKafkaBrokers %(brokers)s
YtKafkaTopic %(topic)s
%(flush)s
%(extra)s
<Location /send>
    SetHandler ytkafka-send
    %(send_extra)s
</Location>
<Location /queued>
    SetHandler ytkafka-send
    YtKafkaAck queued
    %(queued_extra)s
</Location>
<Location /status>
    SetHandler ytkafka-status
</Location>
""" % dict(brokers=brokers, topic=topic, extra=extra, send_extra=send_extra,
           queued_extra=queued_extra,
           flush="" if flush is None else "YtKafkaFlushTimeout %s" % flush)


# librdkafka's notes while a broker it talks to has just (re)started.
BROKER_STARTING = [r"GETPID.*Coordinator load in progress",
                   r"Failed to acquire idempotence PID"]
# What the module and librdkafka say while no broker is reachable.
BROKER_DOWN = [r"YTK00203: all Kafka brokers are down",
               r"YTK00206: librdkafka .*(FAIL|Connect to|Disconnected|"
               r"Connection refused|brokers are down|timed out)",
               r"YTK00212: \d+ message\(s\) .* purging"] + BROKER_STARTING
