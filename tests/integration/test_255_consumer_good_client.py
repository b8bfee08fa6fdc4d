"""ytkafka-consumer as a good client of YouTube, against a real broker,
SQLite, PostgreSQL and the fake YouTube, which counts the requests it
receives: messages for a video already in flight share one fetch, a young
stored row is reused instead of a fetch (--refresh-after). The --max-rps
count test is test_250_consumer_hostile_pages.py::test_max_rps_paces_requests.

The fake holds a video's answers (FakeYouTube.hold) until the test has seen
every message consumed (the consumer's own messages_total), so "in flight"
is a fact of the run, not a timing guess."""
import json
import re
import signal
import urllib.request

from kafka import free_port
from ytc_helpers import (consumer_args, consumer_factory, committed,  # noqa: F401
                         fake_yt, pg_rows, postgres, sqlite_rows, wait_for)
import ytfixtures


def vid_of(prefix, i=0):
    return ytfixtures.video_id(i, prefix)


def metric(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode("utf-8")
    m = re.search(r"^ytkafka_consumer_%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def consumed(port, n):
    return lambda: metric(port, "messages_total") == n


def all_committed(kafka, group, topic):
    end = kafka.end_offsets(topic)
    return lambda: committed(kafka, group, topic) == end


def test_50_messages_for_one_video_share_one_fetch(kafka, fake_yt, consumer_factory,
                                                    tmp_path):
    topic = kafka.new_topic("coal", partitions=2)
    results = topic + ".results"
    kafka.create_topic(results)
    vid = vid_of("coal")
    fake_yt.hold(vid)
    kafka.produce(topic, ["https://youtu.be/%s" % vid] * 50,
                  keys=["k%d" % i for i in range(50)])
    port = free_port()
    db = str(tmp_path / "v.db")
    # --refresh-after 0: no stored row may stand in for the fetch here
    c = consumer_factory(consumer_args(
        kafka, topic, fake_yt, "sqlite3:" + db,
        extra=["--results-topic", results, "--metrics", "127.0.0.1:%d" % port,
               "--refresh-after", "0", "--http-timeout", "120000"]))
    wait_for(lambda: fake_yt.count(vid, "/watch") >= 1, 60, what="the first fetch")
    wait_for(consumed(port, 50), 60, what="50 messages consumed")
    fake_yt.release(vid)
    lines = c.wait_results(50, timeout=60)
    assert len(lines) == 50
    assert all(x["video_id"] == vid and x["status"] == "ok" for x in lines), lines[:3]
    # each line is its own message's
    srcs = {(x["source"]["partition"], x["source"]["offset"]) for x in lines}
    assert len(srcs) == 50
    assert {p for p, _ in srcs} == {0, 1}
    # one fetch: one watch page and one oEmbed request for 50 messages
    assert fake_yt.count(vid, "/watch") == 1
    assert fake_yt.count(vid, "/oembed") == 1
    assert metric(port, "coalesced_jobs_total") == 49
    assert all(x["attempts"] == 1 for x in lines)
    rows = sqlite_rows(db)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["attempts"] == 1
    recs = kafka.consume(results, 50)
    assert len(recs) == 50 and all(r["key"] == vid for r in recs)
    rsrc = {(json.loads(r["value"])["source"]["partition"],
             json.loads(r["value"])["source"]["offset"]) for r in recs}
    assert rsrc == srcs
    wait_for(all_committed(kafka, "g-" + topic, topic), 60, what="all offsets committed")
    assert c.stop() == 0
    assert sum(committed(kafka, "g-" + topic, topic).values()) == 50


def test_a_transient_failure_retries_the_group_once(kafka, fake_yt, consumer_factory,
                                                     tmp_path):
    topic = kafka.new_topic("coalretry")
    vid = vid_of("coalretry")
    fake_yt.set(vid, "flaky", fail=1)       # the first watch page answers 503
    fake_yt.hold(vid)
    kafka.produce(topic, ["https://youtu.be/%s" % vid] * 20)
    port = free_port()
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(
        kafka, topic, fake_yt, "sqlite3:" + db,
        extra=["--metrics", "127.0.0.1:%d" % port, "--refresh-after", "0",
               "--http-timeout", "120000"]))
    wait_for(lambda: fake_yt.count(vid, "/watch") >= 1, 60, what="the first fetch")
    wait_for(consumed(port, 20), 60, what="20 messages consumed")
    fake_yt.release(vid)
    lines = c.wait_results(20, timeout=60)
    assert all(x["status"] == "ok" and x["attempts"] == 2 for x in lines), lines[:3]
    # one failed attempt and one retry, for the group
    assert fake_yt.count(vid, "/watch") == 2
    assert fake_yt.count(vid, "/oembed") == 2
    assert metric(port, "retries_total") == 1
    rows = sqlite_rows(db)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["attempts"] == 2
    wait_for(all_committed(kafka, "g-" + topic, topic), 60, what="all offsets committed")
    assert c.stop() == 0


def test_sigterm_with_attached_jobs_commits_nothing_unstored(kafka, fake_yt,
                                                             consumer_factory, tmp_path):
    topic = kafka.new_topic("coalterm")
    vid = vid_of("coalterm")
    fake_yt.hold(vid)
    kafka.produce(topic, ["https://youtu.be/%s" % vid] * 10)
    port = free_port()
    db = str(tmp_path / "v.db")
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["--metrics", "127.0.0.1:%d" % port,
                                "--http-timeout", "120000",
                                "--shutdown-timeout", "1000"])
    c1 = consumer_factory(args, name="first")
    wait_for(lambda: fake_yt.count(vid, "/watch") >= 1, 60, what="the first fetch")
    wait_for(consumed(port, 10), 60, what="10 messages consumed")
    c1.signal(signal.SIGTERM)
    assert c1.wait(60) == 0
    assert c1.results() == [] and sqlite_rows(db) == []
    assert committed(kafka, "g-" + topic, topic) in ({}, {0: 0})
    fake_yt.release(vid)
    # the next consumer of the group gets all ten again: one fetch for them
    c2 = consumer_factory(args, name="second")
    lines = c2.wait_results(10, timeout=60)
    assert sorted(x["source"]["offset"] for x in lines) == list(range(10))
    assert fake_yt.count(vid, "/watch") == 2       # the abandoned one + this one
    assert len(sqlite_rows(db)) == 1
    wait_for(all_committed(kafka, "g-" + topic, topic), 60, what="all offsets committed")
    assert c2.stop() == 0


def test_refresh_after_reuses_young_rows_refetches_errors(kafka, fake_yt,
                                                          consumer_factory, tmp_path):
    topic = kafka.new_topic("refresh")
    results = topic + ".results"
    kafka.create_topic(results)
    kafka.create_topic(topic + ".dlq")
    vid, bad = vid_of("refresh"), vid_of("refresh-err")
    db = str(tmp_path / "v.db")
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["--results-topic", results, "--max-attempts", "1"])
    port = free_port()
    c = consumer_factory(args + ["--metrics", "127.0.0.1:%d" % port], name="default")
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    c.wait_results(1)
    first = wait_for(lambda: (lambda r: r and r[0]["status"] == "ok" and r[0])(
        sqlite_rows(db)), 30, what="the ok row")
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    lines = c.wait_results(2)
    # the stored row answered: no request, the row untouched, a full result
    assert fake_yt.count(vid, "/watch") == 1 and fake_yt.count(vid, "/oembed") == 1
    again = sqlite_rows(db)[0]
    assert again["updated_at"] == first["updated_at"]
    assert again["attempts"] == 1 and again["metadata_json"] == first["metadata_json"]
    assert lines[1]["status"] == "ok" and lines[1]["title"] == fake_yt.video(vid)["title"]
    assert lines[1]["source"]["offset"] == 1
    assert lines[1]["fetched_at"] == lines[0]["fetched_at"]
    assert metric(port, "cache_hits_total") == 1
    recs = kafka.consume(results, 2)
    assert sorted(json.loads(r["value"])["source"]["offset"] for r in recs) == [0, 1]

    # an error row is always fetched again
    fake_yt.set(bad, "500")
    kafka.produce(topic, ["https://youtu.be/%s" % bad])
    wait_for(lambda: any(r["video_id"] == bad and r["status"] == "error"
                         for r in sqlite_rows(db)), 30, what="the error row")
    fake_yt.set(bad, "ok")
    kafka.produce(topic, ["https://youtu.be/%s" % bad])
    c.wait_results(4)
    assert fake_yt.count(bad, "/watch") == 2
    assert {r["video_id"]: r["status"] for r in sqlite_rows(db)}[bad] == "ok"
    wait_for(all_committed(kafka, "g-" + topic, topic), 60, what="offsets committed")
    assert c.stop() == 0

    # --refresh-after 0: always fetched, the row updated
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    c0 = consumer_factory(args + ["--refresh-after", "0"], name="always")
    c0.wait_results(1)
    # fetches of vid counted by oEmbed: the watch page of vid, the last
    # video answered, also served the outage checks of bad's last attempts
    assert fake_yt.count(vid, "/oembed") == 2
    row = wait_for(lambda: (lambda r: r["attempts"] == 2 and r)(
        {x["video_id"]: x for x in sqlite_rows(db)}[vid]), 30, what="the refetched row")
    assert row["updated_at"] > first["updated_at"]
    assert c0.stop() == 0


def test_refresh_after_on_postgresql_and_its_outage(kafka, fake_yt, postgres,
                                                    consumer_factory):
    topic = kafka.new_topic("refreshpg")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    vid = vid_of("refreshpg")
    dsn = postgres.new_db("refresh_" + topic[-10:].replace("-", "_"))
    name = dsn.rsplit("=", 1)[1]
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, dsn))
    # the database's own errors while it is down are expected
    c.expect(r"YTC003\d\d")
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    c.wait_results(1)
    first = wait_for(lambda: (lambda r: r and r[0])(pg_rows(postgres, name)), 30,
                     what="the row")
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    c.wait_results(2)
    assert fake_yt.count(vid, "/watch") == 1
    assert pg_rows(postgres, name)[0]["updated_at"] == first["updated_at"]

    # the lookup meets a stopped database: an outage, not a fetch
    postgres.stop()
    try:
        kafka.produce(topic, ["https://youtu.be/%s" % vid])
        c.wait_log(r"YTC00507: outage: database", timeout=60)
        assert len(c.results()) == 2
        assert fake_yt.count(vid, "/watch") == 1
    finally:
        postgres.start_again()
    lines = c.wait_results(3, timeout=120)
    assert lines[2]["status"] == "ok" and lines[2]["source"]["offset"] == 2
    c.wait_log(r"YTC00508: outage over: database", timeout=60)
    assert fake_yt.count(vid, "/watch") == 1       # still the stored row
    assert pg_rows(postgres, name)[0]["updated_at"] == first["updated_at"]
    assert c.stop() == 0
    assert committed(kafka, "g-" + topic, topic) == {0: 3}
    assert kafka.count(dlq) == 0


def test_rebalance_revoking_attached_jobs(kafka, fake_yt, consumer_factory, tmp_path):
    """A second consumer joins while 40 messages of one video wait on the
    first consumer's held fetch: the revoked partition's jobs still finish
    (their offsets are not the first consumer's to store), the new owner
    processes that partition again, every message gets its result and every
    offset is committed; one fetch per consumer."""
    topic = kafka.new_topic("coalrebal", partitions=2)
    vid = vid_of("coalrebal")
    fake_yt.hold(vid)
    kafka.produce(topic, ["https://youtu.be/%s" % vid] * 40,
                  keys=["k%d" % i for i in range(40)])
    end = kafka.end_offsets(topic)
    assert sorted(end) == [0, 1] and all(end.values())
    db = str(tmp_path / "v.db")
    pa, pb = free_port(), free_port()
    base = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["--http-timeout", "120000"])
    a = consumer_factory(base + ["--metrics", "127.0.0.1:%d" % pa], name="a")
    wait_for(lambda: fake_yt.count(vid, "/watch") >= 1, 60, what="a's fetch")
    wait_for(consumed(pa, 40), 60, what="40 messages consumed by a")
    b = consumer_factory(base + ["--metrics", "127.0.0.1:%d" % pb], name="b")
    m = b.wait_log(r"YTC00407: assigned %s \[(\d)\]" % re.escape(topic), timeout=90)
    mine = int(m.group(1))
    a.wait_log(r"YTC00408: \d partition\(s\) revoked", timeout=60)
    wait_for(consumed(pb, end[mine]), 60, what="b's partition consumed")
    wait_for(lambda: fake_yt.count(vid, "/watch") >= 2, 60, what="b's fetch")
    fake_yt.release(vid)
    want = {(p, o) for p, n in end.items() for o in range(n)}

    def seen():
        return {(x["source"]["partition"], x["source"]["offset"])
                for c in (a, b) for x in c.results()}
    wait_for(lambda: seen() == want, 90, what="a result for every message")
    # b's partition: b answered each of its messages (a may have too)
    assert {o for p, o in ((x["source"]["partition"], x["source"]["offset"])
                           for x in b.results()) if p == mine} == set(range(end[mine]))
    assert all(x["status"] == "ok" for c in (a, b) for x in c.results())
    wait_for(all_committed(kafka, "g-" + topic, topic), 90, what="all offsets committed")
    # one fetch per consumer, for all of its messages
    assert fake_yt.count(vid, "/watch") == 2
    assert fake_yt.count(vid, "/oembed") == 2
    assert len(sqlite_rows(db)) == 1
    assert a.stop() == 0 and b.stop() == 0
