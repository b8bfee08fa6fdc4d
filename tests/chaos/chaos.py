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
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

# base first: it puts tests/integration (ytc_helpers...) on sys.path
from base import ACK_TIMEOUT, DLQ, TOPIC, log, now, wait_for
from faults import Faults
from parts import Cluster, Consumers, Load
from readback import (ERROR_ONLY_BOUND, MUST_BE_ZERO, dlq_codes, error_spans,
                      failures, payload_vid, topic_records)
from fake_youtube import FakeYouTube
from httpd import Httpd
from ytc_helpers import Postgres

MODES = {
    # load seconds, connections, requests per second (all connections)
    "short": dict(duration=150, conns=4, rate=12, drain=240),
    "long": dict(duration=600, conns=8, rate=30, drain=600),
}


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
