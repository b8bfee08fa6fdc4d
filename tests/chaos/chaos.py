"""Fault injection across the whole pipeline, proved by counting.

A bounded, steady load of numbered, distinct video links goes through a real
httpd + mod_ytkafka (delivered mode, several keep-alive connections) into a
three-node Kafka cluster (tests/kafka/cluster.sh, replication factor 3,
min.insync.replicas 2); two ytkafka-consumer instances in one group fetch
each video from the fake YouTube and write PostgreSQL. Meanwhile, overlapping:

- the leader of the links topic's partition 0 is SIGKILLed 5 times, each
  time restarted (and back in the ISR before the next kill);
- a partition leader is SIGSTOPped for longer than YtKafkaAckTimeout, then
  resumed;
- a consumer instance is SIGKILLed 3 times, each time restarted;
- httpd: `-k graceful` twice and `-k restart` once;
- PostgreSQL is restarted (pg_ctl restart -m fast);
- the fake YouTube answers 503 to everything for 30 s.

When the load has stopped and the pipeline drained (a bounded wait), every
count is printed; the run checks them itself and exits non-zero if an
acknowledged link is missing from the topic or has no `ok` row, if a record
is in the topic twice, a row is duplicated or not `ok`, if anything was
dead-lettered, if a planned fault was not injected (or its thread failed),
if one fault left the endpoint answering only errors longer than
ERROR_ONLY_BOUND, or if no request got a 201 after the last fault. Every
process is stopped by pid at the end, also on failure.

    python3 tests/chaos/chaos.py --mode short|long [--workdir DIR] [--json FILE]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

from fake_youtube import FakeYouTube  # noqa: E402
from httpd import Httpd  # noqa: E402
from ytc_helpers import PG_BIN, Postgres, wait_for as wait_or_fail  # noqa: E402

CLUSTER = os.path.join(SRC, "tests", "kafka", "cluster.sh")
BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))
TOPIC = "links"
DLQ = "links.dlq"
GROUP = "chaos-extractor"
ACK_TIMEOUT = 3          # YtKafkaAckTimeout of the endpoint, seconds

MODES = {
    # load seconds, connections, requests per second (all connections)
    "short": dict(duration=150, conns=4, rate=12, drain=240),
    "long": dict(duration=600, conns=8, rate=30, drain=600),
}

T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def log(msg):
    print("[chaos %7.1fs] %s" % (now(), msg), flush=True)


def wait_for(pred, bound, what):
    """The tests' wait, but a run that waited in vain goes on: its counts
    say whether anything was lost."""
    try:
        return wait_or_fail(pred, timeout=bound, interval=0.5, what=what)
    except AssertionError as e:
        log("gave up: %s" % e)
        return None


def video_id(n):
    """Numbered and distinct: 11 characters of [A-Za-z0-9_-]."""
    return "cz%09d" % n


# ---- the fake YouTube's outage ------------------------------------------------

def youtube_outage(fake, seconds, status=503):
    """Every answer of @fake is HTTP @status for @seconds, then all is ok
    again. (Minimal, for this run: every video here is an 'ok' one.)"""
    with fake.lock:
        fake.default_mode = "status:%d" % status
        for m in fake.modes.values():
            m["mode"] = fake.default_mode
    time.sleep(seconds)
    with fake.lock:
        fake.default_mode = "ok"
        for m in fake.modes.values():
            m["mode"] = "ok"


# ---- the parts -------------------------------------------------------------------

class Cluster:
    def __init__(self, root):
        self.dir = os.path.join(root, "kafka")

    def sh(self, *args, bound=300, check=True):
        r = subprocess.run([CLUSTER, args[0], self.dir] + [str(a) for a in args[1:]],
                           capture_output=True, text=True, timeout=bound)
        if check and r.returncode:
            raise RuntimeError("cluster.sh %s: %s" % (" ".join(map(str, args)),
                                                       r.stderr[-2000:]))
        return r.stdout.strip()

    def start(self):
        self.sh("start", 3)
        self.bootstrap = self.sh("bootstrap")

    def leader(self, part):
        r = self.sh("leader", TOPIC, part, check=False, bound=60)
        return int(r) if r.isdigit() else None

    def isr_full(self):
        for p in range(3):
            isr = self.sh("isr", TOPIC, p, check=False, bound=60)
            if len([x for x in isr.split(",") if x]) != 3:
                return False
        return True

    def stop(self):
        self.sh("stop", check=False, bound=120)


class Consumers:
    """Two ytkafka-consumer processes in one group; one that exits on its
    own is counted and started again."""

    def __init__(self, root, bootstrap, dsn, youtube):
        self.root = root
        self.args = [os.environ.get("YTK_CONSUMER",
                                    os.path.join(BUILD, "consumer", "ytkafka-consumer")),
                     "-b", bootstrap, "-G", GROUP, "-t", TOPIC, "--dlq-topic", DLQ,
                     "--db", dsn, "--youtube-url", youtube, "--concurrency", "8",
                     "--http-timeout", "5000", "-X", "session.timeout.ms=10000"]
        self.procs = [None, None]
        self.unplanned = 0
        self.lock = threading.Lock()
        self.stopping = False

    def start(self, i):
        out = open(os.path.join(self.root, "consumer%d.out" % i), "ab")
        err = open(os.path.join(self.root, "consumer%d.err" % i), "ab")
        self.procs[i] = subprocess.Popen(self.args, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=self.root)
        out.close()
        err.close()

    def kill(self, i):
        with self.lock:
            p = self.procs[i]
            if p and p.poll() is None:
                p.kill()
                p.wait(30)
            self.start(i)

    def supervise(self):
        with self.lock:
            for i, p in enumerate(self.procs):
                if not self.stopping and p and p.poll() is not None:
                    self.unplanned += 1
                    log("consumer %d exited by itself (%s): restarted" % (i, p.returncode))
                    self.start(i)

    def stop(self):
        with self.lock:
            self.stopping = True
            for p in self.procs:
                if p and p.poll() is None:
                    p.terminate()
            for p in self.procs:
                if p:
                    try:
                        p.wait(30)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(10)


class Load:
    """conns threads, each on its own keep-alive connection, paced to rate
    requests/s in all; every request's link, status, request id and times
    are recorded."""

    def __init__(self, port, conns, rate):
        self.port = port
        self.conns = conns
        self.interval = conns / float(rate)
        self.records = []
        self.lock = threading.Lock()
        self.next_n = 0
        self.stop_flag = threading.Event()
        self.threads = []

    def _take(self):
        with self.lock:
            n = self.next_n
            self.next_n += 1
            return n

    def _run(self):
        conn = None
        nxt = time.monotonic()
        while not self.stop_flag.is_set():
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            nxt = max(nxt + self.interval, time.monotonic())
            n = self._take()
            vid = video_id(n)
            body = json.dumps({"links": "https://youtu.be/" + vid})
            t0 = now()
            status, rid = None, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=ACK_TIMEOUT + 20)
                conn.request("POST", "/links/send-message", body=body,
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                rid = resp.getheader("X-Request-ID")
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
                if status == 201:
                    # The acknowledgement names the record: check it.
                    j = json.loads(data)
                    assert j.get("request_id") == rid, data[:200]
            except (OSError, http.client.HTTPException) as e:
                status = "conn:%s" % type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.records.append({"n": n, "vid": vid, "status": status, "rid": rid,
                                     "t0": t0, "t1": now()})
        if conn is not None:
            conn.close()

    def start(self):
        for _ in range(self.conns):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(ACK_TIMEOUT + 30)


# ---- faults --------------------------------------------------------------------

class Faults:
    # What go() plans: 5 leader kills and the freeze, 3 consumer kills,
    # 3 httpd restarts, PostgreSQL, YouTube. Each must have run.
    PLANNED = ["kill leader #%d" % i for i in range(1, 6)] + ["freeze broker"] \
        + ["kill consumer #%d" % i for i in range(1, 4)] \
        + ["httpd -k graceful #1", "httpd -k restart #1", "httpd -k graceful #2",
           "postgres restart", "youtube outage 30s"]

    def __init__(self, run):
        self.run = run
        self.windows = []   # (name, start, end)
        self.errors = []
        self.lock = threading.Lock()

    def guarded(self, fn):
        """@fn as a thread's target: an exception is a fault error (the run
        fails), never a fault silently not injected."""
        def target(*args):
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - reported, fails the run
                with self.lock:
                    self.errors.append("%s: %s: %s" % (fn.__name__, type(e).__name__, e))
                log("fault thread %s failed: %s" % (fn.__name__, e))
        return target

    def record(self, name, t0):
        with self.lock:
            self.windows.append((name, t0, now()))
        log("fault done: %s (%.1fs)" % (name, now() - t0))

    def at(self, t):
        d = t - now()
        if d > 0:
            time.sleep(d)

    def brokers(self, start):
        r = self.run
        self.at(start)
        for i in range(5):
            t0 = now()
            lead = r.cluster.leader(0)
            if lead is None:
                self.errors.append("no leader for %s/0 before kill %d" % (TOPIC, i + 1))
                continue
            log("SIGKILL broker %d (leader of %s/0), #%d" % (lead, TOPIC, i + 1))
            r.cluster.sh("kill", lead)
            wait_for(lambda: r.cluster.leader(0) not in (None, lead), 60,
                     "a new leader of %s/0" % TOPIC)
            r.cluster.sh("start-node", lead)
            if not wait_for(r.cluster.isr_full, 180, "ISR of 3 on every partition"):
                self.errors.append("ISR not whole again after kill %d" % (i + 1))
            self.record("kill leader #%d" % (i + 1), t0)
            time.sleep(3)
        t0 = now()
        lead = r.cluster.leader(1)
        freeze = ACK_TIMEOUT + 5
        log("SIGSTOP broker %d (leader of %s/1) for %ds" % (lead, TOPIC, freeze))
        r.cluster.sh("freeze", lead)
        time.sleep(freeze)
        r.cluster.sh("thaw", lead)
        log("SIGCONT broker %d" % lead)
        if not wait_for(r.cluster.isr_full, 180, "ISR of 3 after the freeze"):
            self.errors.append("ISR not whole again after the freeze")
        self.record("freeze broker", t0)

    def consumers(self, times):
        for i, t in enumerate(times):
            self.at(t)
            t0 = now()
            log("SIGKILL consumer %d, #%d" % (i % 2, i + 1))
            self.run.consumers.kill(i % 2)
            self.record("kill consumer #%d" % (i + 1), t0)

    def httpd(self, times):
        h = self.run.httpd
        seen = {}
        for t, how in times:
            seen[how] = i = seen.get(how, 0) + 1
            self.at(t)
            t0 = now()
            log("apachectl -k %s" % how)
            old = set(h.children())
            r = h._run("-k", how)
            if r.returncode:
                self.errors.append("-k %s failed: %s" % (how, r.stderr))
            wait_for(lambda: h._port_open() and set(h.children()) - old, 60,
                     "a new httpd generation")
            self.record("httpd -k %s #%d" % (how, i), t0)

    def postgres(self, t):
        self.at(t)
        t0 = now()
        log("PostgreSQL restart")
        r = self.run.pg._run(os.path.join(PG_BIN, "pg_ctl"), "-D", self.run.pg.data,
                             "-m", "fast", "-w", "-t", "60", "-l",
                             os.path.join(self.run.pg.root, "postgres.log"),
                             "restart", timeout=120)
        if r.returncode:
            self.errors.append("pg_ctl restart: %s" % r.stderr[-500:])
        self.record("postgres restart", t0)

    def youtube(self, t, seconds=30):
        self.at(t)
        t0 = now()
        log("YouTube answers 503 for %ds" % seconds)
        youtube_outage(self.run.fake, seconds)
        self.record("youtube outage %ds" % seconds, t0)


# ---- reading back --------------------------------------------------------------------

def topic_records(bootstrap, topic):
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning",
                        "-e", "-q", "-J"], capture_output=True, text=True, timeout=300)
    out = []
    for line in r.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def payload_vid(rec):
    try:
        return json.loads(rec["payload"])["video_id"]
    except (ValueError, KeyError, TypeError):
        return None


def dlq_codes(dlq):
    """{ytk-dlq-code header: count}"""
    out = {}
    for d in dlq:
        h = d.get("headers") or []
        code = "?"
        for i in range(0, len(h) - 1, 2):
            if h[i] == "ytk-dlq-code":
                code = h[i + 1]
        out[code] = out.get(code, 0) + 1
    return out


def error_spans(records):
    """Spans (start, end) in which every answer was an error: from the
    first error after a 201 to the next 201, by completion time."""
    spans = []
    start = None
    for rec in sorted(records, key=lambda r: r["t1"]):
        if rec["status"] == 201:
            if start is not None:
                spans.append((start, rec["t1"]))
                start = None
        elif start is None:
            start = rec["t1"]
    if start is not None:
        spans.append((start, max(r["t1"] for r in records)))
    return spans


class Run:
    def __init__(self, mode, root):
        self.cfg = MODES[mode]
        self.mode = mode
        self.root = root
        self.cluster = self.pg = self.fake = self.httpd = self.consumers = None
        self.load = None

    def setup(self):
        log("starting a 3-node Kafka cluster")
        self.cluster = Cluster(self.root)
        self.cluster.start()
        self.cluster.sh("create-topic", TOPIC, 3)
        self.cluster.sh("create-topic", DLQ, 1)
        wait_for(self.cluster.isr_full, 120, "ISR of 3")
        log("starting PostgreSQL")
        pgroot = os.path.join(self.root, "pg")
        os.makedirs(pgroot)
        os.chmod(pgroot, 0o755)
        self.pg = Postgres(pgroot).start()
        dsn = self.pg.new_db("chaos")
        self.fake = FakeYouTube(size=20000).start()
        log("starting httpd")
        hdir = os.path.join(self.root, "httpd")
        os.makedirs(hdir)
        os.chmod(hdir, 0o755)
        self.httpd = Httpd(hdir, mpm="event", loglevel="warn")
        self.httpd.write_config("""StartServers 2
ThreadsPerChild 16
MinSpareThreads 8
MaxSpareThreads 64
MaxRequestWorkers 64
KeepAliveTimeout 30
MaxKeepAliveRequests 0
YtKafkaBrokers %s
YtKafkaTopic %s
YtKafkaAckTimeout %d
<Location /links/send-message>
    SetHandler ytkafka-send
</Location>
<Location /ytkafka-status>
    SetHandler ytkafka-status
</Location>
""" % (self.cluster.bootstrap, TOPIC, ACK_TIMEOUT))
        self.httpd.start()
        log("starting 2 consumers")
        self.consumers = Consumers(self.root, self.cluster.bootstrap, dsn, self.fake.url)
        self.consumers.start(0)
        self.consumers.start(1)
        self.dsn = dsn

    def rows(self):
        try:
            return self.pg.psql("SELECT video_id, status FROM videos", db="chaos")
        except RuntimeError:
            return None

    def go(self):
        c = self.cfg
        d = c["duration"]
        self.load = Load(self.httpd.port, c["conns"], c["rate"])
        faults = Faults(self)
        base = now()
        plan = [
            threading.Thread(target=faults.guarded(faults.brokers), args=(base + 0.05 * d,)),
            threading.Thread(target=faults.guarded(faults.consumers),
                             args=([base + f * d for f in (0.12, 0.4, 0.68)],)),
            threading.Thread(target=faults.guarded(faults.httpd),
                             args=([(base + 0.18 * d, "graceful"),
                                    (base + 0.48 * d, "restart"),
                                    (base + 0.78 * d, "graceful")],)),
            threading.Thread(target=faults.guarded(faults.postgres), args=(base + 0.3 * d,)),
            threading.Thread(target=faults.guarded(faults.youtube), args=(base + 0.55 * d,)),
        ]
        log("load: %d connections, %d requests/s, %ds" % (c["conns"], c["rate"], d))
        self.load.start()
        for t in plan:
            t.daemon = True
            t.start()
        end = base + d
        while now() < end or any(t.is_alive() for t in plan):
            self.consumers.supervise()
            time.sleep(1)
            if now() > end + 600:
                faults.errors.append("fault threads still running 600 s after the load")
                break
        # A little quiet load at the end: the endpoint answers again.
        self.quiet_from = now()
        time.sleep(5)
        self.load.stop()
        load_end = now()
        log("load stopped: %d requests" % len(self.load.records))

        acked = {r["vid"] for r in self.load.records if r["status"] == 201}

        progress = {"n": -1, "t": now()}

        def drained():
            self.consumers.supervise()
            rows = self.rows()
            if rows is None:
                return False
            ok = {v for v, s in rows if s == "ok"}
            if acked <= ok:
                return True
            # Rows that will never come (dead-lettered work) end the wait
            # once nothing has changed for 90 s.
            key = (len(rows), len(ok))
            if key != progress["n"]:
                progress["n"], progress["t"] = key, now()
            elif now() - progress["t"] > 90:
                log("no new rows for 90 s: stop waiting")
                return True
            return False
        wait_for(drained, c["drain"], "every acknowledged link to have an ok row")
        # The consumers finish what they have in flight; a bounded pause for
        # records past the acknowledged ones (504s) to land too.
        time.sleep(5)
        return self.report(faults, load_end - base, acked)

    def report(self, faults, load_seconds, acked):
        recs = self.load.records
        by_status = {}
        for r in recs:
            by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
        topic = topic_records(self.cluster.bootstrap, TOPIC)
        topic_vids = []
        for t in topic:
            topic_vids.append(payload_vid(t))
        tset = set(topic_vids)
        rows = self.rows() or []
        ok = {v for v, s in rows if s == "ok"}
        dup_rows = self.pg.psql("SELECT count(*) FROM (SELECT video_id FROM videos "
                                "GROUP BY video_id HAVING count(*) > 1) d", db="chaos")
        dlq = topic_records(self.cluster.bootstrap, DLQ)
        spans = error_spans(recs)
        longest = max([e - s for s, e in spans] or [0.0])
        per_fault = []
        for name, s, e in sorted(faults.windows, key=lambda w: w[1]):
            # error-only time overlapping the fault (and 10 s after it)
            err = sum(max(0.0, min(e2, e + 10) - max(s2, s)) for s2, e2 in spans)
            per_fault.append({"fault": name, "start": round(s, 1),
                              "seconds": round(e - s, 1), "error_only_seconds": round(err, 1)})
        res = {
            "mode": self.mode,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_seconds": round(load_seconds, 1),
            "requests": len(recs),
            "request_rate": round(len(recs) / load_seconds, 1) if load_seconds else 0,
            "by_status": by_status,
            "201": by_status.get("201", 0),
            "503_504": by_status.get("503", 0) + by_status.get("504", 0),
            "other_answers": len(recs) - by_status.get("201", 0) - by_status.get("503", 0)
            - by_status.get("504", 0),
            "topic_records": len(topic),
            "topic_duplicates": len(topic_vids) - len(tset),
            "acked_missing_from_topic": len(acked - tset),
            "acked_without_ok_row": len(acked - ok),
            "duplicate_rows": int(dup_rows[0][0]) if dup_rows else -1,
            "rows": len(rows),
            "rows_not_ok": len([1 for v, s in rows if s != "ok"]),
            "in_topic_never_acked": len(tset - acked - {None}),
            "dlq_records": len(dlq),
            "dlq_by_code": dlq_codes(dlq),
            "dlq_distinct_videos": len({payload_vid(d) for d in dlq}),
            "longest_error_only_seconds": round(longest, 1),
            "consumer_unplanned_exits": self.consumers.unplanned,
            "fault_errors": faults.errors,
            "faults_not_run": [n for n in Faults.PLANNED
                               if n not in {w[0] for w in faults.windows}],
            "201_after_faults": len([1 for r in recs if r["t0"] >= self.quiet_from
                                     and r["status"] == 201]),
            "faults": per_fault,
        }
        res["failures"] = failures(res)
        return res

    def teardown(self):
        for what, f in (("load", lambda: self.load and self.load.stop()),
                        ("consumers", lambda: self.consumers and self.consumers.stop()),
                        ("httpd", lambda: self.httpd and self.httpd.stop()),
                        ("fake youtube", lambda: self.fake and self.fake.stop()),
                        ("postgres", lambda: self.pg and self.pg.stop()),
                        ("kafka", lambda: self.cluster and self.cluster.stop())):
            try:
                f()
            except Exception as e:  # noqa: BLE001 - keep stopping the rest
                log("stopping %s: %s" % (what, e))


MUST_BE_ZERO = ("acked_missing_from_topic", "acked_without_ok_row", "duplicate_rows",
                "dlq_records", "topic_duplicates", "rows_not_ok")
# No single fault may leave the endpoint answering only errors longer than
# this: a liveness bound (about ten times a leader kill's span on a loaded
# machine), not a speed figure.
ERROR_ONLY_BOUND = 120.0


def failures(res):
    """Why the run failed: [] when every count and every fault is right."""
    bad = ["%s = %s (must be 0)" % (k, res[k]) for k in MUST_BE_ZERO if res[k] != 0]
    if res["fault_errors"]:
        bad.append("fault errors: %s" % "; ".join(res["fault_errors"]))
    if res["faults_not_run"]:
        bad.append("faults not injected: %s" % ", ".join(res["faults_not_run"]))
    for f in res["faults"]:
        if f["error_only_seconds"] > ERROR_ONLY_BOUND:
            bad.append("%s: %.1f s of errors only (bound %.0f s)" % (
                f["fault"], f["error_only_seconds"], ERROR_ONLY_BOUND))
    if res["longest_error_only_seconds"] > ERROR_ONLY_BOUND:
        bad.append("longest error-only span %.1f s (bound %.0f s)" % (
            res["longest_error_only_seconds"], ERROR_ONLY_BOUND))
    if res["201"] == 0:
        bad.append("no request acknowledged")
    if res["201_after_faults"] == 0:
        bad.append("no 201 after the last fault: the endpoint did not recover")
    return bad


def print_report(res):
    print("\n==== chaos run (%s mode, %s)" % (res["mode"], res["date"]))
    for k in ("load_seconds", "requests", "request_rate", "201", "503_504",
              "other_answers", "by_status", "topic_records", "topic_duplicates",
              "acked_missing_from_topic", "acked_without_ok_row", "duplicate_rows",
              "in_topic_never_acked", "rows", "rows_not_ok", "dlq_records",
              "dlq_by_code", "dlq_distinct_videos", "longest_error_only_seconds",
              "consumer_unplanned_exits", "fault_errors", "faults_not_run",
              "201_after_faults"):
        mark = ""
        if k in MUST_BE_ZERO:
            mark = "   (must be 0)" + ("" if res[k] == 0 else "   <-- FAIL")
        print("%-28s %s%s" % (k, res[k], mark))
    print("%-28s %8s %8s %10s" % ("fault", "start s", "took s", "errors s"))
    for f in res["faults"]:
        print("%-28s %8.1f %8.1f %10.1f%s" % (
            f["fault"], f["start"], f["seconds"], f["error_only_seconds"],
            "   <-- FAIL" if f["error_only_seconds"] > ERROR_ONLY_BOUND else ""))
    for b in res["failures"]:
        print("FAIL: %s" % b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=sorted(MODES), default="short")
    ap.add_argument("--workdir", help="keep everything here (default: a temp dir, "
                    "removed after a passing run)")
    ap.add_argument("--json", help="write the counts to this file too")
    a = ap.parse_args()
    root = a.workdir or tempfile.mkdtemp(prefix="ytk-chaos-")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    for sub in ("kafka", "pg", "httpd"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    for i in range(2):
        for ext in ("out", "err"):
            try:
                os.unlink(os.path.join(root, "consumer%d.%s" % (i, ext)))
            except FileNotFoundError:
                pass

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    run = Run(a.mode, root)
    rc = 1
    try:
        run.setup()
        res = run.go()
        print_report(res)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
        bad = failures(res)
        if bad:
            print("FAILED: %d check(s) (logs under %s)" % (len(bad), root))
        else:
            print("chaos run passed")
            rc = 0
    finally:
        run.teardown()
        if rc == 0 and not a.workdir:
            shutil.rmtree(root, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
