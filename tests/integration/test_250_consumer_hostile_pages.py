"""ytkafka-consumer against hostile watch pages and with --max-rps: a page
built to make the extractor quadratic, a 16 MiB page and a page of millions
of JSON values under the body cap end as `error` rows
while ten normal videos flow; the consumer stays in its group and its memory
stays bounded; --max-rps paces the requests the fake YouTube receives."""
import os
import re

from ytc_helpers import (consumer_args, consumer_factory, fake_yt,  # noqa: F401
                         sqlite_rows, vmhwm_kb, wait_for)
from fake_youtube import max_in_window
from ytfixtures import video_ids as ids

# high-water RSS of the consumer, in kB (an ASan build carries its shadow
# memory and quarantine, hence the larger bound there)
VMHWM_KB = 128 * 1024
VMHWM_ASAN_KB = 640 * 1024


def test_hostile_pages_are_errors_and_others_flow(kafka, fake_yt, consumer_factory,
                                                  tmp_path):
    topic = kafka.new_topic("hostile", partitions=1)
    quad, big, arr = ids("quad", 1)[0], ids("big", 1)[0], ids("arr", 1)[0]
    normal = ids("norm", 10)
    unit = b"ytInitialPlayerResponse={/*"
    fake_yt.set_raw(quad, unit * (800_000 // len(unit)))
    fake_yt.set_raw(big, (b"[" + b"0," * (8 * 1024 * 1024))[:16 * 1024 * 1024])
    # under the 8 MiB body cap, a player response of ~3.9 million values:
    # json-c would spend ~280 MB on it; the value cap refuses it first
    fake_yt.set_raw(arr, b"<script>var ytInitialPlayerResponse = "
                    b'{"playabilityStatus":{"status":"OK"},"x":['
                    + b"0," * 3_900_000 + b"0]};</script>")
    links = [quad, big, arr] + normal
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in links], keys=links)
    db = str(tmp_path / "v.db")
    # a short max.poll.interval.ms: a stall of the loop on one page would
    # make the consumer leave its group and log it
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["-v", "--max-attempts", "2",
                                "-X", "max.poll.interval.ms=10000",
                                "-X", "session.timeout.ms=6000"])
    c = consumer_factory(args)
    c.expect(r"video \S+ .*(none parses|body larger than)")
    rows = wait_for(lambda: (lambda r: r if len(r) == 13 else None)(sqlite_rows(db)),
                    180, what="13 rows")
    by = {r["video_id"]: r for r in rows}
    for v in normal:
        assert by[v]["status"] == "ok", by[v]
    assert by[quad]["status"] == "error"
    assert "player response assignments, none parses" in by[quad]["last_error"]
    assert by[big]["status"] == "error"
    assert "body larger than 8388608 bytes" in by[big]["last_error"]
    assert by[arr]["status"] == "error"
    assert "player response holds more than 262144 values" in by[arr]["last_error"]
    # final answers: one attempt each, not --max-attempts
    assert by[quad]["attempts"] == 1 and by[big]["attempts"] == 1
    assert by[arr]["attempts"] == 1
    hwm = vmhwm_kb(c.proc.pid)
    print("consumer VmHWM %d kB" % hwm)
    asan = bool(os.environ.get("YTK_ASAN_BUILD_DIR"))
    err = c.stderr()
    assert c.stop() == 0
    assert not re.search(r"max\.poll\.interval|MAX_POLL_EXCEEDED|leaving group",
                         err, re.I), err[-2000:]
    assert len(re.findall(r"assigned %s \[0\]" % re.escape(topic), err)) == 1, err[-2000:]
    assert hwm < (VMHWM_ASAN_KB if asan else VMHWM_KB), hwm


def test_max_rps_paces_requests(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("rps", partitions=2)
    v = ids("rps", 20)
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v], keys=v)
    db = str(tmp_path / "v.db")
    cap = 5
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["--max-rps", str(cap), "--concurrency", "16"])
    c = consumer_factory(args)
    wait_for(lambda: len(sqlite_rows(db)) == 20, 120, what="20 rows")
    assert all(r["status"] == "ok" for r in sqlite_rows(db))
    assert c.stop() == 0
    times = fake_yt.request_times("/watch") + fake_yt.request_times("/oembed")
    times.sort()
    assert len(times) == 40
    # Arrival times at the fake. Requests paced at the cap can arrive
    # bunched when the fake is descheduled on a loaded machine, so the
    # property checked is over 2 s windows (without the cap, 37 of the 40
    # arrive within one second), and the whole run: 40 requests at 5 a
    # second cannot arrive within less than (40 - 5) / 5 s.
    assert max_in_window(times, 2.0) <= 2 * cap, max_in_window(times, 2.0)
    assert times[-1] - times[0] >= (len(times) - cap) / cap, times


def test_404_410_are_unavailable_rows(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("gone", partitions=1)
    v404, v410 = ids("nf", 1)[0], ids("gn", 1)[0]
    fake_yt.set(v404, mode="status:404")
    fake_yt.set(v410, mode="status:410")
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in (v404, v410)])
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db))
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(sqlite_rows(db)),
                    60, what="2 rows")
    assert c.stop() == 0
    by = {r["video_id"]: r for r in rows}
    assert by[v404]["status"] == "unavailable", by[v404]
    assert by[v410]["status"] == "unavailable", by[v410]
    assert by[v404]["attempts"] == 1 and by[v410]["attempts"] == 1


def test_retry_after_huge_negative_and_date_are_clamped(kafka, fake_yt,
                                                       consumer_factory, tmp_path):
    topic = kafka.new_topic("ra", partitions=1)
    huge, neg, date = ids("rah", 1)[0], ids("ran", 1)[0], ids("rad", 1)[0]
    fake_yt.set(huge, mode="429", fail=1, retry_after="9223372036854775807")
    fake_yt.set(neg, mode="429", fail=1, retry_after="-5")
    fake_yt.set(date, mode="429", fail=1,
                retry_after="Fri, 31 Dec 9999 23:59:59 GMT")
    # one at a time, each followed by a video that answers: three 429s in a
    # row over different videos would be an outage (held, no retry line)
    fine = ids("raok", 3)
    kafka.produce(topic, ["https://youtu.be/%s" % x
                          for x in (huge, fine[0], neg, fine[1], date, fine[2])])
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--concurrency", "1"]))
    delays = {}

    def seen():
        for m in re.finditer(r"video (\S+): attempt 1/\d+ failed: .*429.*; "
                             r"retry in (-?\d+) ms", c.stderr()):
            delays[m.group(1)] = int(m.group(2))
        return len(delays) == 3
    wait_for(seen, 60, what="three retry lines")
    # garbage is ignored (the usual backoff, well under a second here);
    # huge values and far dates are clamped to the backoff cap (60 s by
    # default), never negative
    assert 0 <= delays[neg] < 5000, delays
    assert 60000 <= delays[huge] <= 60250, delays
    assert 60000 <= delays[date] <= 60250, delays
    # the garbage one retried on its own backoff and is done
    wait_for(lambda: any(r["video_id"] == neg and r["status"] == "ok"
                         for r in sqlite_rows(db)), 60, what="row of %s" % neg)
    c.stop()
