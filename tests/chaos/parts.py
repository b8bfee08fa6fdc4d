"""The chaos run's parts: the three-node Kafka cluster (tests/kafka/cluster.sh),
the two ytkafka-consumer processes and the load of numbered links."""
import http.client
import json
import os
import subprocess
import threading
import time

from base import ACK_TIMEOUT, DLQ, GROUP, SRC, TOPIC, log, now

CLUSTER = os.path.join(SRC, "tests", "kafka", "cluster.sh")
BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))


def video_id(n):
    """Numbered and distinct: 11 characters of [A-Za-z0-9_-]."""
    return "cz%09d" % n



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
