"""Broker faults: a stopped broker gives 503 fast, a frozen one 504 at
YtKafkaAckTimeout, nothing hangs, and service comes back by itself."""
import os
import signal
import threading
import time

from httpd import (VIDEO, BROKER_DOWN, httpd_factory,  # noqa: F401
                   send_config)

URL = "https://youtu.be/" + VIDEO
ACK = 2  # YtKafkaAckTimeout in these tests


def _start(httpd_factory, k, topic, mpm="event", extra=""):
    h = httpd_factory(mpm=mpm)
    h.expect_log(*BROKER_DOWN)
    h.write_config(send_config(k.bootstrap, topic, extra="YtKafkaFlushTimeout 1\n" + extra,
                               send_extra="YtKafkaAckTimeout %d" % ACK))
    h.start()
    return h


def _parallel(h, path, n):
    out = [None] * n

    def one(i):
        try:
            out[i] = h.post_json(path, {"links": URL}, timeout=ACK + 20)
        except Exception as e:  # noqa: BLE001 - reported below
            out[i] = e

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(ACK + 30)
    return out


def test_broker_stopped_then_back(httpd_factory, kafka_factory):
    k = kafka_factory()
    topic = k.new_topic("down")
    h = _start(httpd_factory, k, topic)
    assert h.post_json("/send", {"links": URL}).status == 201

    k.stop()
    # Every request ends within the ack timeout + 1 s, with 503 or 504.
    for path in ("/send", "/queued"):
        for r in _parallel(h, path, 10):
            assert not isinstance(r, Exception), r
            assert r.status in (503, 504), r
            assert r.elapsed <= ACK + 1, r
            if r.status == 503:
                assert r.headers["retry-after"].isdigit()
                assert r.json()["error"]["code"] in ("brokers_down", "queue_full")
    assert h.wait_log(r"YTK00203: all Kafka brokers are down")
    r = h.post_json("/send", {"links": URL})
    assert r.status == 503 and r.elapsed < 1, r
    st = h.get("/status").json()
    assert st["brokers"]["state"] in ("down", "degraded")
    assert st["messages"]["failed_by_reason"]["brokers_down"] >= 1

    # Back, without touching httpd.
    k.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = h.post_json("/send", {"links": URL})
        if r.status == 201:
            break
        time.sleep(0.3)
    assert r.status == 201, r
    assert h.wait_log(r"YTK0020[17]: Kafka brokers .* reachable again")
    # Every child recovers, not only the one that answered.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and h.get("/status").json()["brokers"]["state"] != "up":
        time.sleep(0.3)
    assert h.get("/status").json()["brokers"]["state"] == "up"
    for r in _parallel(h, "/send", 10):
        assert r.status == 201, r


def test_broker_frozen_504_and_late_reports(httpd_factory, kafka_factory):
    """SIGSTOP keeps the connection open but answers nothing: the outcome is
    unknown at the deadline (504); the late delivery reports that arrive after
    SIGCONT must not touch the finished requests."""
    k = kafka_factory()
    topic = k.new_topic("frozen")
    h = _start(httpd_factory, k, topic)
    assert h.post_json("/send", {"links": URL}).status == 201
    with open(os.path.join(k.dir, "kafka.pid")) as f:
        pid = int(f.read())
    children = set(h.children())
    os.kill(pid, signal.SIGSTOP)
    try:
        rs = _parallel(h, "/send", 12)
    finally:
        os.kill(pid, signal.SIGCONT)
    rids = []
    for r in rs:
        assert not isinstance(r, Exception), r
        assert r.status == 504, r
        assert ACK - 0.2 <= r.elapsed <= ACK + 1, r
        body = r.json()
        assert body["error"]["code"] == "timed_out"
        assert body["links"][0]["status"] == "unknown"
        rids.append(body["request_id"])
    # The broker wakes up: the "unknown" messages are delivered late.
    recs = k.consume(topic, 13, timeout=30)
    got = {x["headers"]["request-id"] for x in recs}
    assert set(rids) <= got
    time.sleep(1)
    # No child died of a late report; the server still answers at once.
    assert children <= set(h.children())
    r = h.post_json("/send", {"links": URL})
    assert r.status == 201 and r.elapsed < 2, r
    st = h.get("/status").json()
    assert st["requests"]["by_status"]["504"] == 12
    assert st["messages"]["delivered"] == 14


def test_stop_flushes_queued_messages(httpd_factory, kafka):
    """A 202 is a promise: messages still lingering in librdkafka when httpd
    stops are flushed by the children's cleanup."""
    topic = kafka.new_topic("flush")
    h = httpd_factory()
    h.write_config(send_config(kafka.bootstrap, topic,
                               extra="YtKafkaProperty linger.ms 2000"))
    h.start()
    rids = []
    for _ in range(5):
        r = h.post_json("/queued", {"links": URL})
        assert r.status == 202, r
        rids.append(r.headers["x-request-id"])
    assert h.stop()
    assert not h.wait_log(r"YTK00212", bound=0.1)
    recs = kafka.consume(topic, 5, timeout=20)
    assert sorted(x["headers"]["request-id"] for x in recs) == sorted(rids)


def test_stop_with_broker_down_is_bounded(httpd_factory, kafka_factory):
    """Undeliverable messages hold a child at most YtKafkaFlushTimeout, then
    the count left is logged and they are purged."""
    k = kafka_factory()
    topic = k.new_topic("purge")
    h = _start(httpd_factory, k, topic, extra="YtKafkaProperty linger.ms 3000")
    r = h.post_json("/queued", {"links": URL})
    assert r.status == 202, r
    rid = r.headers["x-request-id"]
    h.expect_log(r"YTK00500: request %s: .*\(purged\)" % rid)
    k.kill()
    t0 = time.monotonic()
    assert h.stop(bound=15)
    assert time.monotonic() - t0 < 8
    assert h.wait_log(r"YTK00212: 1 message\(s\) to .* not delivered within "
                      r"YtKafkaFlushTimeout \(1000 ms\), purging them", bound=1)
    # The purged 202 is told as such, with its request id.
    assert h.wait_log(r"YTK00500: request %s: message answered 202 \(queued\) "
                      r"was not delivered to %s: .*\(purged\)" % (rid, topic),
                      bound=1)


def test_queued_then_lost_is_a_warning_and_counted(httpd_factory, kafka_factory):
    """A 202 that librdkafka later fails to deliver is told to the operator:
    a warning with the request id and the reason, and a status counter."""
    k = kafka_factory()
    topic = k.new_topic("lost")
    h = _start(httpd_factory, k, topic,
               extra="YtKafkaProperty linger.ms 1500\n"
                     "YtKafkaProperty message.timeout.ms 4000")
    r = h.post_json("/queued", {"links": URL})
    assert r.status == 202, r
    rid = r.headers["x-request-id"]
    h.expect_log(r"YTK00500: ")
    k.kill()
    assert h.wait_log(r"YTK00500: request %s: message answered 202 \(queued\) "
                      r"was not delivered to %s: .*\((timed_out|brokers_down)\)"
                      % (rid, topic), bound=30)
    st = h.get("/status").json()
    assert st["messages"]["lost_after_queued"] == 1
    prom = h.get("/status?format=prometheus").body.decode()
    assert "\nytkafka_messages_lost_after_queued_total 1\n" in prom
