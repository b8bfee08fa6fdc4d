"""The event, worker and prefork MPMs, counters over several children, and
apachectl -k graceful under load without losing an acknowledged message."""
import threading
import time

import pytest

from httpd import VIDEO, httpd_factory, send_config  # noqa: F401

URL = "https://youtu.be/" + VIDEO
MPM_CONF = {
    "event": "StartServers 2\nThreadsPerChild 10\nMinSpareThreads 5\n"
             "MaxSpareThreads 40\nMaxRequestWorkers 40\n",
    "worker": "StartServers 2\nThreadsPerChild 10\nMinSpareThreads 5\n"
              "MaxSpareThreads 40\nMaxRequestWorkers 40\n",
    "prefork": "StartServers 3\nMinSpareServers 2\nMaxSpareServers 6\n"
               "MaxRequestWorkers 20\n",
}


def _post_many(h, path, n, threads=10):
    out = []
    lock = threading.Lock()
    todo = list(range(n))

    def run():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            r = h.post_json(path, {"links": URL}, timeout=30)
            with lock:
                out.append(r)

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_mpm(httpd_factory, kafka, mpm):
    topic = kafka.new_topic(mpm)
    h = httpd_factory(mpm=mpm)
    h.write_config(MPM_CONF[mpm] + send_config(kafka.bootstrap, topic))
    h.start()
    rs = _post_many(h, "/send", 30)
    assert [r.status for r in rs] == [201] * 30
    rs += _post_many(h, "/queued", 10)
    assert [r.status for r in rs[30:]] == [202] * 10
    recs = kafka.consume(topic, 40)
    assert len(recs) == 40
    by_rid = {x["headers"]["request-id"]: x for x in recs}
    for r in rs[:30]:
        link = r.json()["links"][0]
        rec = by_rid[r.json()["request_id"]]
        assert (rec["partition"], rec["offset"]) == (link["partition"], link["offset"])
    # The counters of every child, in one place.
    st = h.get("/status").json()
    assert st["requests"]["by_status"]["201"] == 30
    assert st["requests"]["by_status"]["202"] == 10
    assert st["messages"]["delivered"] == 40
    assert st["children"] >= 2
    assert st["brokers"]["producers"] == st["children"]


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_graceful_under_load_loses_nothing(httpd_factory, kafka, mpm):
    topic = kafka.new_topic("graceful-" + mpm)
    h = httpd_factory(mpm=mpm)
    h.write_config(MPM_CONF[mpm] + send_config(kafka.bootstrap, topic,
                                               extra="YtKafkaProperty linger.ms 50"))
    h.start()
    acked, other = [], []
    lock = threading.Lock()
    stop = threading.Event()

    def load(path):
        while not stop.is_set():
            try:
                r = h.post_json(path, {"links": URL}, timeout=30)
            except Exception as e:  # noqa: BLE001 - counted, never a 2xx
                with lock:
                    other.append(repr(e))
                continue
            with lock:
                (acked if r.status in (201, 202) else other).append(
                    r.headers.get("x-request-id") if r.status in (201, 202) else r.status)

    ts = [threading.Thread(target=load, args=(p,))
          for p in ("/send", "/queued", "/send", "/queued", "/send", "/queued")]
    for t in ts:
        t.start()
    time.sleep(1.5)
    h.graceful()
    time.sleep(1.5)
    h.graceful()
    time.sleep(1.5)
    stop.set()
    for t in ts:
        t.join(60)
    assert h.stop()
    assert len(acked) > 50, (len(acked), other[:5])
    assert not other, other[:10]
    recs = kafka.consume(topic, len(acked), timeout=60)
    got = {x["headers"]["request-id"] for x in recs}
    missing = set(acked) - got
    assert not missing, "%d acknowledged messages missing" % len(missing)
    assert kafka.count(topic) == len(acked)
