"""The chaos run's faults: broker kills and a freeze, consumer kills, httpd
restarts, a PostgreSQL restart and the fake YouTube's outage, each in its
thread at its planned time."""
import os
import threading
import time

# base first: it puts tests/integration (ytc_helpers...) on sys.path
from base import ACK_TIMEOUT, TOPIC, log, now, wait_for
from ytc_helpers import PG_BIN


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
