"""ytkafka-consumer when something every message needs is out: no attempt
spent, no DLQ record, no error row, intake paused, resumes by itself.
(The failure model: docs/ARCHITECTURE.md, the consumer section.)"""
import json
import re
import time

import pytest

from ytc_helpers import (consumer_args, consumer_factory, committed,  # noqa: F401
                         fake_yt, hold_outage, produce_steadily, sqlite_rows,
                         wait_for)
from ytfixtures import video_ids as ids

# the old retry window: 5 attempts at --backoff-ms 100 took under 2 s, and
# at the default 500 ms about 5 s; the outage lasts well past both
OUTAGE_S = 14


# one endpoint out, the other answering: a 503 from that path only
ONE_PATH = {"oembed": "/oembed", "watch": "/watch"}


def youtube_down(fake_yt, kind):
    """Every answer a 503 (kind "503"), only the oEmbed answers or only the
    watch pages a 503 (kind "oembed", "watch"), or connections refused."""
    if kind in ONE_PATH:
        fake_yt.outage_paths = {ONE_PATH[kind]}
        fake_yt.outage = "503"
    elif kind == "503":
        fake_yt.outage = "503"
    else:
        fake_yt.refuse()


def youtube_up(fake_yt, kind):
    if kind == "503" or kind in ONE_PATH:
        fake_yt.outage = None
        fake_yt.outage_paths = None
    else:
        fake_yt.restore()


def outage_ended_clean(c, kafka, topic, dlq, finished):
    """One outage entered and left, no attempts exhausted, no DLQ record,
    and all @finished offsets committed."""
    c.wait_log(r"YTC00501: outage over: youtube", timeout=30)
    err = c.stderr()
    assert len(re.findall(r"YTC00500:", err)) == 1
    assert len(re.findall(r"YTC00501:", err)) == 1
    assert "retries_exhausted" not in err
    assert kafka.count(dlq) == 0
    assert c.stop() == 0
    assert committed(kafka, "g-" + topic, topic) == {0: finished}
    assert kafka.count(dlq) == 0


def _outage(kafka, fake_yt, consumer_factory, tmp_path, kind):
    topic = kafka.new_topic("out" + kind)
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    db = str(tmp_path / "v.db")
    before = ids("pre" + kind, 3)
    during = ids("out" + kind, 20)
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db))
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in before])
    c.wait_results(3)

    youtube_down(fake_yt, kind)
    start = time.monotonic()
    produce_steadily(kafka, topic, during, 5)
    c.wait_log(r"YTC00500: outage: youtube unreachable", timeout=30)
    # while out: nothing new is finished, nothing dead-lettered
    hold_outage(c, kafka, dlq, start, OUTAGE_S, 3)
    youtube_up(fake_yt, kind)

    lines = c.wait_results(23, timeout=90)
    got = {x["video_id"]: x for x in lines}
    assert sorted(got) == sorted(before + during)
    assert all(got[v]["status"] == "ok" for v in during), \
        [got[v] for v in during if got[v]["status"] != "ok"]
    rows = {r["video_id"]: r for r in wait_for(
        lambda: len(sqlite_rows(db)) == 23 and sqlite_rows(db), 30)}
    assert all(rows[v]["status"] == "ok" for v in during)
    # no attempt spent on the outage: each video's one attempt is the one
    # that succeeded
    assert [rows[v]["attempts"] for v in during] == [1] * len(during)
    assert [got[v]["attempts"] for v in during] == [1] * len(during)
    outage_ended_clean(c, kafka, topic, dlq, 23)


def test_youtube_503_for_everyone_is_an_outage(kafka, fake_yt, consumer_factory,
                                               tmp_path):
    _outage(kafka, fake_yt, consumer_factory, tmp_path, "503")


def test_youtube_refusing_connections_is_an_outage(kafka, fake_yt, consumer_factory,
                                                   tmp_path):
    _outage(kafka, fake_yt, consumer_factory, tmp_path, "refused")


@pytest.mark.parametrize("kind", ["oembed", "watch"])
def test_one_endpoint_503_for_everyone_is_an_outage(kafka, fake_yt, consumer_factory,
                                                    tmp_path, kind):
    """Only one of the two endpoints every video needs is out: the YouTube
    check asks for the same kind of resource that failed, so the other one
    answering it does not make the failures the videos' own."""
    _outage(kafka, fake_yt, consumer_factory, tmp_path, kind)


def test_one_dlq_record_per_message_lists_every_rejected_link(kafka, fake_yt,
                                                              consumer_factory, tmp_path):
    topic = kafka.new_topic("multi")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    good = ids("multi", 1)[0]
    bad = ["https://evil.example/watch?v=dQw4w9WgXcQ",
           "https://youtu.be.evil.example/dQw4w9WgXcQ",
           "https://www.youtube.com/watch?v=short",
           "https://wwwyoutube.com/watch?v=dQw4w9WgXcQ",
           "https://www.youtube.com:1/watch?v=dQw4w9WgXcQ"]
    value = '{"links": %s}' % json.dumps(bad[:2] + ["https://youtu.be/" + good] + bad[2:])
    kafka.produce(topic, [value])
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db))
    lines = c.wait_results(1)
    assert [x["video_id"] for x in lines] == [good] and lines[0]["status"] == "ok"
    wait_for(lambda: committed(kafka, "g-" + topic, topic) == {0: 1}, 30,
             what="offset committed")
    assert kafka.count(dlq) == 1
    rec = json.loads(kafka.consume(dlq, 1)[0]["value"])
    assert [r["link"] for r in rec["rejected"]] == bad
    assert all(r["code"] and r["message"] for r in rec["rejected"])
    assert rec["original"]["value"] == value
    assert rec["error"]["message"].startswith("5 link(s) rejected")
    assert c.stop() == 0


def test_redrive_from_the_dlq_topic(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("redrive")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    kafka.create_topic(dlq + ".dlq")
    bad = ids("redrive", 1)[0]
    fake_yt.set(bad, "500")
    value = "https://youtu.be/%s" % bad
    kafka.produce(topic, [value], keys=[bad])
    db = str(tmp_path / "v.db")
    c1 = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                        extra=["--max-attempts", "2"]), name="first")
    lines = c1.wait_results(1)
    assert lines[0]["status"] == "error"
    wait_for(lambda: kafka.count(dlq) == 1, 30, what="the DLQ record")
    assert c1.stop() == 0
    assert sqlite_rows(db)[0]["status"] == "error"

    # YouTube serves it again: a consumer pointed at the DLQ topic re-drives
    fake_yt.set(bad, "ok")
    c2 = consumer_factory(["-b", kafka.bootstrap, "-t", dlq, "-G", "redrive-" + topic,
                           "--db", "sqlite3:" + db, "--youtube-url", fake_yt.url,
                           "--backoff-ms", "100"], name="redrive")
    lines = c2.wait_results(1)
    assert [x["video_id"] for x in lines] == [bad]
    assert lines[0]["status"] == "ok"
    rows = wait_for(lambda: sqlite_rows(db)[0]["status"] == "ok" and sqlite_rows(db), 30)
    assert rows[0]["video_id"] == bad
    assert c2.stop() == 0
    assert committed(kafka, "redrive-" + topic, dlq) == {0: 1}
    assert kafka.count(dlq + ".dlq") == 0


def _lone_link_outage(kafka, fake_yt, consumer_factory, tmp_path, kind):
    """One video in flight cannot open the breaker by counting videos: its
    failures are checked against YouTube itself (docs/ARCHITECTURE.md, the
    failure model), so a lone link posted during an outage waits, unspent."""
    topic = kafka.new_topic("lone" + kind)
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    db = str(tmp_path / "v.db")
    before, lone = ids("lonepre" + kind, 1)[0], ids("lone" + kind, 1)[0]
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db))
    kafka.produce(topic, ["https://youtu.be/%s" % before])
    c.wait_results(1)

    youtube_down(fake_yt, kind)
    start = time.monotonic()
    kafka.produce(topic, ["https://youtu.be/%s" % lone])
    c.wait_log(r"YTC00500: outage: youtube unreachable", timeout=30)
    while time.monotonic() - start < OUTAGE_S:
        time.sleep(0.5)
    # the whole old retry window passed: nothing finished, nothing in the DLQ
    assert len(c.results()) == 1
    assert kafka.count(dlq) == 0
    youtube_up(fake_yt, kind)

    lines = c.wait_results(2, timeout=90)
    got = {x["video_id"]: x for x in lines}
    assert got[lone]["status"] == "ok", got[lone]
    rows = {r["video_id"]: r for r in wait_for(
        lambda: len(sqlite_rows(db)) == 2 and sqlite_rows(db), 30)}
    assert rows[lone]["status"] == "ok"
    # the attempts lost to the outage were given back
    assert rows[lone]["attempts"] == 1 and got[lone]["attempts"] == 1
    outage_ended_clean(c, kafka, topic, dlq, 2)


def test_lone_link_during_youtube_503_is_held(kafka, fake_yt, consumer_factory,
                                              tmp_path):
    _lone_link_outage(kafka, fake_yt, consumer_factory, tmp_path, "503")


def test_lone_link_during_refused_connections_is_held(kafka, fake_yt,
                                                      consumer_factory, tmp_path):
    _lone_link_outage(kafka, fake_yt, consumer_factory, tmp_path, "refused")


@pytest.mark.parametrize("kind", ["oembed", "watch"])
def test_lone_link_during_one_endpoint_503_is_held(kafka, fake_yt, consumer_factory,
                                                   tmp_path, kind):
    _lone_link_outage(kafka, fake_yt, consumer_factory, tmp_path, kind)
