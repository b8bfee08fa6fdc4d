"""A fatal librdkafka error (an idempotence failure) does not leave the
child answering 503 until it exits: a new producer replaces the failed one,
and the messages the old one still held get their reports.

librdkafka's mock cluster (YtKafkaProperty test.mock.num.brokers) stands in
for the brokers because a real broker cannot make the idempotent producer
fail on demand; the module provokes the error with
rd_kafka_test_fatal_error() when a request carries X-YtKafka-Test-Fatal,
which it honours only on the mock cluster."""
import threading
import time

from httpd import VIDEO, httpd_factory, send_config  # noqa: F401

URL = "https://youtu.be/" + VIDEO
ONE_CHILD = ("StartServers 1\nServerLimit 1\nMaxRequestWorkers 25\n"
             "MinSpareThreads 1\nMaxSpareThreads 25\n")


def _config(extra=""):
    return ONE_CHILD + send_config(
        "127.0.0.1:9", "mock-links", flush=2,
        extra="YtKafkaProperty test.mock.num.brokers 1\n" + extra,
        send_extra="YtKafkaAckTimeout 15")


def _until_201(h, bound=30):
    deadline = time.monotonic() + bound
    r = None
    while time.monotonic() < deadline:
        r = h.post_json("/send", {"links": URL})
        if r.status == 201:
            return r
        time.sleep(0.3)
    return r


def test_fatal_error_replaces_the_producer(httpd_factory):
    h = httpd_factory()
    h.expect_log(r"YTK00204: Kafka producer failed fatally",
                 r"YTK00206: librdkafka .*(MOCK|FATAL|[Ff]atal|test_fatal)",
                 r"YTK00500: ", r"YTK00205: ")
    # Messages linger in the old producer while it fails.
    h.write_config(_config("YtKafkaProperty linger.ms 2000\n"
                           "YtKafkaProperty message.timeout.ms 8000"))
    h.start()
    first = _until_201(h)
    assert first is not None and first.status == 201, first

    queued = h.post_json("/queued", {"links": URL})
    assert queued.status == 202, queued
    held = {}

    def waiting():
        held["r"] = h.post_json("/send", {"links": URL}, timeout=40)

    t = threading.Thread(target=waiting)
    t.start()
    time.sleep(0.5)
    fatal = h.post_json("/send", {"links": URL},
                        headers={"X-YtKafka-Test-Fatal": "1"}, timeout=40)
    t.join(45)
    assert h.wait_log(r"YTK00204: Kafka producer failed fatally")
    # The request waiting on the old producer got an answer from its
    # report: never a 2xx for a message the failed producer held.
    assert held["r"].status in (503, 504), held["r"]
    # The request that provoked it is served by the replacement (each
    # instance gets a mock cluster of its own) or refused, never lost.
    assert fatal.status in (201, 503, 504), fatal
    # The 202 the old producer held is reported lost, not forgotten.
    assert h.wait_log(r"YTK00500: request %s: message answered 202"
                      % queued.headers["x-request-id"], bound=30)

    # The same child produces again, without a restart.
    children = set(h.children())
    r = _until_201(h)
    assert r is not None and r.status == 201, r
    assert h.wait_log(r"YTK00501: Kafka producer \S+ replaces \S+, which "
                      r"failed fatally")
    assert set(h.children()) == children
    st = h.get("/status").json()
    assert st["brokers"]["state"] == "up"
    assert st["messages"]["lost_after_queued"] >= 1
