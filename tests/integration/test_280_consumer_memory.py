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
from ytc_helpers import BUILD, consumer_factory, sqlite_rows, wait_for  # noqa: F401
import ytfixtures

BOUND_KB = 128 * 1024


def plain_consumer():
    path = os.environ.get("YTK_MEMORY_CONSUMER",
                          os.path.join(BUILD, "consumer", "ytkafka-consumer"))
    if not os.access(path, os.X_OK):
        pytest.skip("no plain build of ytkafka-consumer at %s" % path)
    return path


def vmhwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


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
