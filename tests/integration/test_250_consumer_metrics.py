"""ytkafka-consumer --metrics: the Prometheus endpoint, scraped over HTTP and
parsed strictly, against a real broker, SQLite and the fake YouTube."""
import math
import re
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from kafka import free_port
from ytc_helpers import (consumer_args, consumer_bin, consumer_factory,  # noqa: F401
                         dlq_records, fake_yt, sqlite_rows, wait_for)
from ytfixtures import video_ids as ids

PREFIX = "ytkafka_consumer_"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\Z)')


def parse_exposition(text):
    """Strict reader of the text format 0.0.4: every family has HELP and
    TYPE before its samples, sample names belong to the family, labels and
    values are well formed, no series twice, counters end in _total,
    histogram buckets are cumulative and +Inf equals _count.
    Returns {(name, frozenset(labels.items())): float}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    samples, families, help_seen = {}, {}, set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        assert line, "empty " + where
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            assert _NAME.match(name) and doc, where
            assert name not in help_seen, "HELP twice " + where
            help_seen.add(name)
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            assert name == current and name not in families, where
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), where
            families[name] = typ
            continue
        assert not line.startswith("#"), where
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)\Z", line)
        assert m, "bad sample " + where
        name, labels_text, value = m.group(1), m.group(3), m.group(4)
        fam = current
        assert fam in families, "sample before TYPE " + where
        typ = families[fam]
        if typ == "histogram":
            assert name in (fam + "_bucket", fam + "_sum", fam + "_count"), where
        else:
            assert name == fam, where
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = _LABEL.match(labels_text, pos)
                assert lm, "bad labels " + where
                assert lm.group(1) not in labels, where
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        v = float(value)
        assert not math.isnan(v), where
        key = (name, frozenset(labels.items()))
        assert key not in samples, "series twice " + where
        samples[key] = v
    for fam, typ in families.items():
        assert fam.startswith(PREFIX), fam
        if typ == "counter":
            assert fam.endswith("_total"), fam
        if typ == "histogram":
            buckets = sorted((float(dict(k[1])["le"]), v) for k, v in samples.items()
                             if k[0] == fam + "_bucket")
            assert buckets and buckets[-1][0] == math.inf, fam
            assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), fam
            assert buckets[-1][1] == samples[(fam + "_count", frozenset())], fam
            assert (fam + "_sum", frozenset()) in samples, fam
    return samples


def scrape(port, host="127.0.0.1"):
    with urllib.request.urlopen("http://%s:%d/metrics" % (host, port), timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_exposition(r.read().decode("utf-8"))


def value(samples, name, **labels):
    return samples.get((PREFIX + name, frozenset(labels.items())))


def scrape_until(port, pred, timeout=60, what="metrics"):
    last = {}

    def check():
        last["s"] = scrape(port)
        return pred(last["s"]) and last["s"]
    try:
        return wait_for(check, timeout, interval=0.3, what=what)
    except AssertionError:
        raise AssertionError("%s; last scrape: %s" % (what, sorted(
            (k[0], sorted(k[1]), v) for k, v in last.get("s", {}).items())))


def test_counts_retries_dlq_lag(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("metrics")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    good = ids("metrics", 5)
    bad = ids("metrics-500", 1)[0]
    fake_yt.set(bad, "500")
    port = free_port()
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(
        kafka, topic, fake_yt, "sqlite3:" + db,
        extra=["--metrics", "127.0.0.1:%d" % port, "--max-attempts", "3",
               "-X", "statistics.interval.ms=500",
               # the hanging video below stays in flight for its 30 s
               "--http-timeout", "60000"]))
    c.wait_log(r"YTC00904: metrics on http://127\.0\.0\.1:%d/metrics" % port)
    s = scrape(port)
    assert value(s, "messages_total") == 0
    assert value(s, "results_total", status="ok") == 0

    kafka.produce(topic, ["https://youtu.be/%s" % v for v in good + [bad]])
    c.wait_results(6)
    s = scrape_until(port, lambda s: value(s, "results_total", status="error") == 1
                     and value(s, "results_total", status="ok") == 5
                     and value(s, "jobs") == 0 and value(s, "messages_held") == 0,
                     what="6 results counted")
    assert value(s, "messages_total") == 6
    assert value(s, "results_total", status="unavailable") == 0
    assert value(s, "retries_total") == 2            # attempts 2 and 3 of the 500
    assert value(s, "dlq_records_total") == 1
    # watch + oEmbed per attempt: 5 videos once, the 500 three times
    assert value(s, "fetches_total") == 2 * (5 + 3)
    assert value(s, "fetch_failures_total") == 2 * 3
    assert value(s, "fetch_duration_seconds_count") == 16
    assert value(s, "fetch_duration_seconds_bucket", le="+Inf") == 16
    assert value(s, "fetch_duration_seconds_sum") > 0
    assert value(s, "partitions_assigned") == 1
    assert value(s, "partitions_paused") == 0
    for dep in ("youtube", "database", "kafka_output"):
        assert value(s, "dependency_outage", dependency=dep) == 0
    # the counts match what happened: rows, DLQ record, requests served
    rows = wait_for(lambda: len(sqlite_rows(db)) == 6 and sqlite_rows(db), 20)
    assert sum(r["status"] == "ok" for r in rows) == 5
    assert dlq_records(kafka, dlq, 1)[0]["json"]["video_id"] == bad
    # the 16 fetches, and YouTube checked alongside attempts 2 and 3 of the
    # 500 before they were spent (docs/ARCHITECTURE.md, the failure model):
    # a good video's watch page, or the home page if none was done yet
    assert len(fake_yt.requests_for(bad)) == 6
    checks = [r["path"] for r in fake_yt.requests
              if r["path"] == "/" or (r["path"].startswith("/watch")
                                      and bad not in r["path"])]
    assert len(checks) == 5 + 2, checks
    assert value(s, "outage_checks_total") == 2
    assert len(fake_yt.requests) == 16 + 2
    # every offset finished: lag 0 from librdkafka's statistics
    scrape_until(port, lambda s: value(s, "partition_lag_messages", topic=topic,
                                       partition="0") == 0, what="lag 0")

    # a video that hangs holds its message and the two behind it: lag 3
    slow = ids("metrics-hang", 3)
    fake_yt.set(slow[0], "hang")
    kafka.produce(topic, ["https://youtu.be/%s" % v for v in slow])
    s = scrape_until(port, lambda s: value(s, "partition_lag_messages", topic=topic,
                                           partition="0") == 3
                     and value(s, "jobs_fetching") == 1,
                     what="lag 3 behind a hanging video")
    assert value(s, "jobs") == 1
    assert value(s, "messages_held") == 3
    assert value(s, "messages_total") == 9
    assert value(s, "results_total", status="ok") == 7
    c.expect(r"YTC00431")
    c.stop()


def run(*args, env=None):
    return subprocess.run([consumer_bin(), *args], capture_output=True, text=True,
                          env=env, timeout=30)


@pytest.mark.parametrize("spec", ["", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
                                  "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
                                  "127.0.0.1:80x", "localhost:9464", "::1:9464",
                                  "[::1]", "[::1]9464", "[]:9464", "[127.0.0.1]:9464",
                                  "1.2.3:9464", "256.1.1.1:9464"])
def test_bad_metrics_values_are_usage_errors(spec):
    r = run("-b", "127.0.0.1:1", "--metrics", spec)
    assert r.returncode == 1, (spec, r.stderr)
    assert "--metrics" in r.stderr and "Try 'ytkafka-consumer --help'" in r.stderr
    assert r.stdout == ""


def test_bad_metrics_env_is_a_usage_error():
    r = run("-b", "127.0.0.1:1", env={"YTK_METRICS": "localhost:1"})
    assert r.returncode == 1 and "--metrics" in r.stderr, r.stderr


def _connects(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return True
    except OSError:
        return False


def test_bound_only_on_given_address_paths_methods(kafka, consumer_factory, tmp_path):
    port = free_port()
    c = consumer_factory(["-b", kafka.bootstrap, "-t", kafka.new_topic("mbind"),
                          "--db", "none", "--metrics", "127.0.0.1:%d" % port])
    c.wait_log(r"YTC00904:")
    assert value(scrape(port), "messages_total") == 0
    # 127.0.0.2 is loopback too: it connects only if the port is on any address
    assert not _connects("127.0.0.2", port)
    for path, method, status in (("/", "GET", 404), ("/metrics/x", "GET", 404),
                                 ("/metrics", "POST", 405), ("/metrics", "PUT", 405)):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                     method=method, data=b"x=1" if method != "GET" else None)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == status, (path, method)
        if status == 405:
            assert e.value.headers["Allow"] == "GET, HEAD"
    head = urllib.request.Request("http://127.0.0.1:%d/metrics" % port, method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as r:
        assert r.status == 200 and r.read() == b""

    # the same port again: a clear startup error naming the address, exit 1
    r = run("-b", kafka.bootstrap, "--db", "none", "--metrics", "127.0.0.1:%d" % port)
    assert r.returncode == 1
    assert "YTC00903: --metrics 127.0.0.1:%d: cannot listen" % port in r.stderr
    c.stop()
    assert c.returncode == 0


def test_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    port = free_port()
    p = subprocess.Popen([consumer_bin(), "-b", "127.0.0.1:1", "--db", "none",
                          "--metrics", "[::1]:%d" % port], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _connects("::1", port), 20, what="[::1]:%d" % port)
        assert value(scrape(port, "[::1]"), "messages_total") == 0
        assert not _connects("127.0.0.1", port)
    finally:
        p.terminate()
        p.wait(30)
    assert p.returncode == 0
