"""ytkafka-consumer's memory at its defaults stays bounded
(docs/ARCHITECTURE.md, "What holds memory").

- A backlog of large values already in the topic when the consumer starts:
  before the bounds, librdkafka prefetched up to 64 MiB of values
  (queued.max.messages.kbytes) and the intake copied up to 512 held
  messages; 1 000 values of 128 KiB took the consumer past 128 MB.
- Watch pages near the 8 MiB body cap for every video: 16 transfers at once
  held 16 such bodies (128 MiB) before the body budget.

Each drains the backlog to `ok` rows, then reads the consumer's high-water
RSS (VmHWM) and checks it against the bound. The plain -Werror build is
measured (an ASan build's shadow memory and quarantine would say nothing
about the program's own), so the test skips without it. Long messages and
large pages only: no timing is asserted, waits are bounded."""
import os
import subprocess

import pytest

from fake_youtube import FakeYouTube
from ytc_helpers import (BUILD, consumer_factory, sqlite_rows, vmhwm_kb,  # noqa: F401
                         wait_for)
import ytfixtures

BOUND_KB = 128 * 1024


def plain_consumer():
    path = os.environ.get("YTK_MEMORY_CONSUMER",
                          os.path.join(BUILD, "consumer", "ytkafka-consumer"))
    if not os.access(path, os.X_OK):
        pytest.skip("no plain build of ytkafka-consumer at %s" % path)
    return path


def kcat_produce(kafka, topic, keys, values):
    """Write keyed records fast (no compression, as mod_ytkafka does)."""
    data = b"".join(k.encode() + b"\t" + v.encode() + b"\n"
                    for k, v in zip(keys, values))
    subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", topic, "-K", "\t",
                    "-X", "message.max.bytes=1000000", "-X", "linger.ms=20"],
                   input=data, check=True, timeout=300)


def drain(kafka, consumer_factory, monkeypatch, tmp_path, topic, fake, n):
    monkeypatch.setenv("YTK_CONSUMER", plain_consumer())
    db = str(tmp_path / "m.db")
    # the defaults: nothing about queues, concurrency or batching is set
    c = consumer_factory(["-b", kafka.bootstrap, "-t", topic, "-G", "g-" + topic,
                          "--db", "sqlite3:" + db, "--youtube-url", fake.url])
    wait_for(lambda: len(sqlite_rows(db)) >= n, 300, interval=0.5,
             what="%d rows" % n)
    hwm = vmhwm_kb(c.proc.pid)
    print("consumer VmHWM %d kB after %d videos" % (hwm, n))
    rows = sqlite_rows(db)
    assert c.stop() == 0
    assert len(rows) == n
    assert all(r["status"] == "ok" for r in rows), \
        [r for r in rows if r["status"] != "ok"][:3]
    return hwm


def test_backlog_of_large_values_is_bounded(kafka, consumer_factory, monkeypatch,
                                            tmp_path):
    n = 1000
    topic = kafka.new_topic("membacklog", partitions=4)
    vids = [ytfixtures.video_id(i, "mem") for i in range(n)]
    # a valid value of 128 KiB: the link plus padding nobody reads (a
    # topic can be written by others than mod_ytkafka, e.g. a re-drive)
    pad = "p" * (128 * 1024)
    kcat_produce(kafka, topic, vids,
                 ['{"links":"https://youtu.be/%s","note":"%s"}' % (v, pad)
                  for v in vids])
    fake = FakeYouTube(size=20000).start()
    try:
        hwm = drain(kafka, consumer_factory, monkeypatch, tmp_path, topic, fake, n)
    finally:
        fake.stop()
    assert hwm < BOUND_KB, "VmHWM %d kB >= %d kB" % (hwm, BOUND_KB)


def test_pages_near_the_body_cap_are_bounded(kafka, consumer_factory, monkeypatch,
                                             tmp_path):
    n = 64
    topic = kafka.new_topic("membig", partitions=4)
    vids = [ytfixtures.video_id(i, "big") for i in range(n)]
    kafka.produce(topic, ["https://youtu.be/%s" % v for v in vids], keys=vids)
    # every watch page 8 000 000 bytes, just under the 8 MiB cap
    fake = FakeYouTube(size=8_000_000, template=True).start()
    try:
        hwm = drain(kafka, consumer_factory, monkeypatch, tmp_path, topic, fake, n)
    finally:
        fake.stop()
    assert hwm < BOUND_KB, "VmHWM %d kB >= %d kB" % (hwm, BOUND_KB)


def test_fetcher_wakeup_neither_skips_nor_repeats(kafka, consumer_factory, tmp_path):
    """--no-fetch drains a capped prefetch queue far faster than librdkafka
    2.0 looks at it again; the consumer wakes the fetcher with a seek to its
    position (ARCHITECTURE 7.11). Every message is taken exactly once and
    every offset is committed."""
    from ytc_helpers import committed
    n = 40000
    topic = kafka.new_topic("memwake", partitions=4)
    vids = [ytfixtures.video_id(i % 1000, "wk") for i in range(n)]
    kcat_produce(kafka, topic, vids, ["https://youtu.be/%s" % v for v in vids])
    group = "g-" + topic
    # a small cap and small Fetch answers, so that the queue fills and runs
    # dry many times with messages left behind (one answer of 1 MB per
    # partition would bring the whole topic in at once)
    c = consumer_factory(["-b", kafka.bootstrap, "-t", topic, "-G", group,
                          "--db", "none", "--no-fetch", "-e", "-vv",
                          "-X", "queued.min.messages=2000",
                          "-X", "max.partition.fetch.bytes=16384"])
    assert c.wait(240) == 0
    err = c.stderr()
    assert "YTC01000" in err, err[-2000:]
    # taken exactly once: a repeat would count more, a skip fewer
    assert "all partitions at end, %d message(s) done" % n in err, err[-2000:]
    offs = committed(kafka, group, topic)
    assert sum(offs.values()) == n, offs
