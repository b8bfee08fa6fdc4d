"""The status segment across crashes and restarts, and the default flush
bound on stop.

- A SIGKILLed child's slot is freed (by the parent's child_status hook and
  by the owner's start time), so the counted children are the live ones.
- A restart that loads a module with another segment layout does not reuse
  the old segment: it logs YTK00700 and counts in a new one.
- With the broker down, `-k stop` with the default YtKafkaFlushTimeout logs
  how many messages were left before httpd's own kill (about 9 s).
"""
import os
import shutil
import signal
import subprocess
import time

from httpd import VIDEO, BROKER_DOWN, BUILD, httpd_factory, module_path, send_config  # noqa: F401
from ytc_helpers import wait_for

URL = "https://youtu.be/" + VIDEO
PREFORK = "StartServers 3\nMinSpareServers 3\nMaxSpareServers 3\n" \
          "MaxRequestWorkers 10\n"


def _conf(brokers, topic, extra=""):
    return send_config(brokers, topic, extra=extra, flush=None)


def _wait(pred, bound=60, what="condition"):
    return wait_for(pred, timeout=bound, interval=0.2, what=what)


LAST = {}


def _children_match(h):
    """status 'children' equals the live children, and every one has its
    producer: no slot of a dead process is counted."""
    kids = h.children()
    st = h.get("/status").json()
    LAST["seen"] = (sorted(kids), st["children"], st["brokers"])
    if kids and st["children"] == len(kids) == len(h.children()) \
            and st["brokers"]["producers"] == len(kids):
        return st
    return None


def test_killed_children_are_not_counted(httpd_factory, kafka):
    topic = kafka.new_topic("shm")
    h = httpd_factory(mpm="prefork")
    h.write_config(PREFORK + _conf(kafka.bootstrap, topic))
    h.start()
    assert h.post_json("/send", {"links": URL}).status == 201
    _wait(lambda: _children_match(h), what="the live children counted")
    for _ in range(3):
        victim = h.children()[0]
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: victim not in h.children() and h.children(),
              what="the parent to replace child %d" % victim)
        st = _wait(lambda: _children_match(h),
                   what="status to count the live children (last: %s)" % (LAST,))
        assert st["brokers"]["state"] == "up", st
    # The counters survived the crashes (same segment).
    assert h.get("/status").json()["requests"]["by_status"]["201"] == 1
    h.expect_log(r"AH00052: child pid \d+ exit signal Killed")


def _build_variant(tmp_path, slots):
    """The module compiled with another slot count: a segment of another
    size, as a newer module loaded by `-k restart` would have."""
    src = os.path.join(BUILD, "mod_ytkafka")
    dst = str(tmp_path / "mod_ytkafka-variant")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.lo", "*.o", ".libs",
                                                            "*.la"))
    r = subprocess.run(["make", "-C", dst, "-s", "top_builddir=" + BUILD,
                        "CPPFLAGS=-DYTK_SLOTS=%d" % slots, "mod_ytkafka.la"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    so = os.path.join(dst, ".libs", "mod_ytkafka.so")
    assert os.path.exists(so)
    return so


def test_restart_with_another_layout_gets_a_new_segment(httpd_factory, kafka, tmp_path,
                                                         monkeypatch):
    variant = _build_variant(tmp_path, 64)
    topic = kafka.new_topic("layout")
    h = httpd_factory(mpm="prefork")
    h.loglevel = "notice ytkafka:debug"
    h.write_config(PREFORK + _conf(kafka.bootstrap, topic))
    h.start()
    for _ in range(2):
        assert h.post_json("/send", {"links": URL}).status == 201
    assert h.get("/status").json()["requests"]["by_status"]["201"] == 2

    # Same layout: -k restart keeps the segment and its counters.
    old = set(h.children())
    h._run("-k", "restart")
    _wait(lambda: h._port_open() and set(h.children()) and not (set(h.children()) & old),
          what="a new generation")
    assert h.get("/status").json()["requests"]["by_status"]["201"] == 2
    assert not h.wait_log(r"YTK00700", bound=0.5)

    # Another layout: a new segment, said so in the log, and it works.
    monkeypatch.setenv("YTK_MODULE", variant)
    assert module_path() == variant
    h.write_config(PREFORK + _conf(kafka.bootstrap, topic))
    old = set(h.children())
    h._run("-k", "restart")
    assert h.wait_log(r"YTK00700: status shared memory of another layout", bound=60)
    _wait(lambda: h._port_open() and set(h.children()) and not (set(h.children()) & old),
          what="a new generation")
    assert h.post_json("/send", {"links": URL}).status == 201
    st = _wait(lambda: _children_match(h), what="the live children in the new segment")
    assert st["requests"]["by_status"]["201"] == 1, st
    h.expect_log(r"YTK00700")


def test_default_flush_timeout_logs_left_on_stop(httpd_factory, kafka_factory):
    """No YtKafkaFlushTimeout: the default bound ends before httpd's kill,
    so the count of undelivered messages is logged."""
    k = kafka_factory()
    topic = k.new_topic("deflush")
    h = httpd_factory()
    h.expect_log(*BROKER_DOWN)
    h.write_config(_conf(k.bootstrap, topic, "YtKafkaProperty linger.ms 3000"))
    h.start()
    assert h.post_json("/queued", {"links": URL}).status == 202
    k.kill()
    assert h.stop(bound=30)
    # the purged record was answered 202: it is reported as lost (YTK00500)
    h.expect_log(r"YTK00500: request \S+: message answered 202")
    assert h.wait_log(r"YTK00212: 1 message\(s\) to .* not delivered within "
                      r"YtKafkaFlushTimeout \(5000 ms\), purging them", bound=5)
    assert h.wait_log(r"YTK00500: request \S+: message answered 202 \(queued\) was "
                      r"not delivered", bound=5)
    # httpd nudges the child with SIGTERM (AH00045) while it flushes, but
    # did not have to SIGKILL it (AH00046) before the line was written.
    assert not h.wait_log(r"AH00046", bound=0.1)
    h.expect_log(r"AH00045: child process \d+ still did not exit")
