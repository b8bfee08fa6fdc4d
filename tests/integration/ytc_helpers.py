"""Helpers for ytkafka-consumer's integration tests (test_2xx_*.py).

- ``Consumer``: runs the real binary, collects its stdout JSON lines in a
  thread, keeps stderr in a file and fails on sanitizer reports or
  unexpected ``[error]`` lines.
- fixtures ``fake_yt`` (a fake YouTube per test), ``evil`` (a second server
  that only counts requests), ``postgres`` (a real PostgreSQL from Debian's
  binaries in a temp dir, once per session), ``consumer_factory``.
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fake_youtube import FakeYouTube  # noqa: E402
from kafka import SRC, free_port  # noqa: E402

BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))
PG_BIN = os.environ.get("YTK_PG_BIN", "/usr/lib/postgresql/15/bin")

# stderr lines that are errors but expected in some tests are declared by the
# test (Consumer.expect); these are always fine:
ALWAYS_OK = [
    r"rdkafka .*: (FAIL|ERROR|GETPID)",  # brokers starting, stopping, restarting
    r"Coordinator load in progress",
]
_SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:")


def consumer_bin():
    """YTK_CONSUMER, else the ASan build's (YTK_ASAN_BUILD_DIR, as dev/test
    sets it: the consumer suite runs under the sanitizers), else BUILD's."""
    if os.environ.get("YTK_CONSUMER"):
        return os.environ["YTK_CONSUMER"]
    asan = os.environ.get("YTK_ASAN_BUILD_DIR")
    if asan:
        path = os.path.join(asan, "consumer", "ytkafka-consumer")
        if os.access(path, os.X_OK):
            return path
    return os.path.join(BUILD, "consumer", "ytkafka-consumer")


def wait_for(pred, timeout=30, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Consumer:
    def __init__(self, workdir, args, env=None, name="c"):
        self.workdir = workdir
        self.args = list(args)
        self.env = dict(os.environ)
        # ASan builds: keep leak checks on, abort on the first report
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.env.update(env or {})
        self.name = name
        self.stderr_path = os.path.join(workdir, "%s.stderr" % name)
        self.lines = []
        self.raw = []
        self.proc = None
        self.expected = list(ALWAYS_OK)
        self._lock = threading.Lock()
        self._reader = None
        self.returncode = None

    def start(self):
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([consumer_bin()] + self.args, cwd=self.workdir,
                                     env=self.env, stdout=subprocess.PIPE,
                                     stderr=self._err)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            s = line.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.raw.append(s)
                try:
                    self.lines.append(json.loads(s))
                except ValueError:
                    self.lines.append({"_unparsable": s})

    def results(self):
        with self._lock:
            return list(self.lines)

    def wait_results(self, n, timeout=60):
        return wait_for(lambda: len(self.results()) >= n and self.results(),
                        timeout, what="%d result lines from %s (have %d)"
                        % (n, self.name, len(self.results())))

    def wait_log(self, pattern, timeout=30):
        rx = re.compile(pattern)
        return wait_for(lambda: rx.search(self.stderr()), timeout,
                        what="log line /%s/ from %s" % (pattern, self.name))

    def stderr(self):
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def expect(self, *patterns):
        self.expected.extend(patterns)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            self.proc.send_signal(sig)

    def wait(self, timeout=60):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait(10)
            raise AssertionError("%s did not exit within %ss" % (self.name, timeout))
        if self._reader:
            self._reader.join(5)
        self._err.close()
        return self.returncode

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.returncode is not None:
            return self.returncode
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        self.signal(signal.SIGKILL)
        self.proc.wait(10)
        self.returncode = self.proc.returncode
        if self._reader:
            self._reader.join(5)
        self._err.close()

    def problems(self):
        out = []
        text = self.stderr()
        for line in text.splitlines():
            if _SANITIZER.search(line):
                out.append(line)
            elif "[error]" in line and not any(re.search(p, line) for p in self.expected):
                out.append(line)
        if _SANITIZER.search(text):
            out.append("sanitizer report in %s" % self.stderr_path)
        return out


@pytest.fixture
def consumer_factory(request, tmp_path):
    """consumer_factory(args, env=None, name=...) → a started Consumer.
    After the test every consumer is stopped and its stderr checked."""
    made = []

    def make(args, env=None, name=None, start=True):
        c = Consumer(str(tmp_path), args, env=env, name=name or "c%d" % len(made))
        made.append(c)
        return c.start() if start else c

    yield make
    problems = []
    for c in made:
        if c.proc is not None and c.returncode is None:
            try:
                c.stop(30)
            except AssertionError as e:
                problems.append(str(e))
        problems += ["%s: %s" % (c.name, p) for p in c.problems()]
    if problems:
        pytest.fail("consumer stderr:\n  " + "\n  ".join(problems[:30]), pytrace=False)


@pytest.fixture
def fake_yt():
    f = FakeYouTube(size=int(os.environ.get("YTK_FAKE_PAGE_SIZE", "1000000"))).start()
    yield f
    f.stop()


@pytest.fixture
def evil():
    """A server that must never be asked anything."""
    f = FakeYouTube(size=1000).start()
    yield f
    f.stop()


class Postgres:
    def __init__(self, root):
        self.root = root
        self.data = os.path.join(root, "data")
        self.port = free_port()
        self.user = "ytk"
        self.as_user = None
        if os.geteuid() == 0:
            self.as_user = "postgres"
            shutil.chown(root, "postgres")

    def _run(self, *cmd, timeout=60):
        if self.as_user:
            cmd = ("runuser", "-u", self.as_user, "--") + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def start(self):
        r = self._run(os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust",
                      "-U", self.user, "-E", "UTF8", "--no-sync")
        if r.returncode:
            raise RuntimeError("initdb: " + r.stderr[-2000:])
        return self.start_again()

    def start_again(self):
        """Start the server on its data directory and port (after stop())."""
        r = self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w", "-t", "60",
                      "-l", os.path.join(self.root, "postgres.log"), "-o",
                      "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                      "-c full_page_writes=off" % (self.port, self.root), "start")
        if r.returncode:
            raise RuntimeError("pg_ctl start: " + r.stderr[-2000:] + r.stdout[-2000:])
        return self

    def stop(self):
        self._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                  "stop")

    def psql(self, sql, db="postgres"):
        r = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                      "-d", db, "-X", "-q", "-A", "-t", "-F", "\x1f", "-c", sql)
        if r.returncode:
            raise RuntimeError("psql: " + r.stderr)
        return [line.split("\x1f") for line in r.stdout.splitlines() if line]

    def new_db(self, name):
        self.psql("CREATE DATABASE %s" % name)
        return "pgsql:host=127.0.0.1 port=%d user=%s dbname=%s" % (
            self.port, self.user, name)


def own_postgres(prefix="ytk-pg-"):
    """A generator for fixtures: a PostgreSQL in a temp dir, removed after."""
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        pytest.skip("PostgreSQL server binaries not in %s" % PG_BIN)
    root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)
    pg = Postgres(root).start()
    yield pg
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres():
    yield from own_postgres()


# ---- database reading --------------------------------------------------------

COLUMNS = ("video_id", "status", "title", "author_name", "channel_id",
           "duration_seconds", "view_count", "publish_date", "metadata_json",
           "attempts", "last_error", "first_seen_at", "updated_at")


def sqlite_rows(path):
    if not os.path.exists(path):
        return []
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        cur = con.execute("SELECT %s FROM videos ORDER BY video_id" % ", ".join(COLUMNS))
        return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def pg_rows(pg, db):
    out = []
    for r in pg.psql("SELECT %s FROM videos ORDER BY video_id" % ", ".join(COLUMNS), db=db):
        d = dict(zip(COLUMNS, r))
        for k in ("duration_seconds", "view_count", "attempts"):
            d[k] = int(d[k]) if d[k] not in ("", None) else None
        for k in COLUMNS:
            if d[k] == "":
                d[k] = None
        out.append(d)
    return out


def produce_steadily(kafka, topic, vids, batch):
    """Links to @vids into @topic, @batch at a time, a second apart: traffic
    that goes on arriving while something is out."""
    for i in range(0, len(vids), batch):
        kafka.produce(topic, ["https://youtu.be/%s" % x for x in vids[i:i + batch]])
        time.sleep(1)


def hold_outage(c, kafka, dlq, since, seconds, finished):
    """Let an outage last @seconds from @since (time.monotonic()), then
    check that consumer @c finished nothing more than the @finished results
    it had and dead-lettered nothing."""
    while time.monotonic() - since < seconds:
        time.sleep(0.5)
    assert len(c.results()) == finished
    assert kafka.count(dlq) == 0


def consumer_args(kafka, topic, fake, db, group=None, extra=()):
    return ["-b", kafka.bootstrap, "-t", topic, "-G", group or "g-" + topic,
            "--db", db, "--youtube-url", fake.url, "--backoff-ms", "100",
            "--http-timeout", "10000"] + list(extra)


def vmhwm_kb(pid):
    """The peak resident set of process @pid, in kB (VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


def committed(kafka, group, topic):
    """{partition: committed offset} of group on topic (Kafka's own tool)."""
    r = kafka._sh("consumer-groups", "--bootstrap-server", kafka.bootstrap,
                  "--describe", "--group", group, check=False, timeout=60)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] == group and f[1] == topic and f[3].isdigit():
            out[int(f[2])] = int(f[3])
    return out


def dlq_records(kafka, topic, n, timeout=30):
    recs = kafka.consume(topic, n, timeout=timeout)
    for r in recs:
        r["json"] = json.loads(r["value"])
    return recs
