"""ytkafka-consumer against a real broker, SQLite and the fake YouTube:
value shapes, unavailable videos, retries, dead letters, SSRF."""
import json
import time
from urllib.parse import parse_qs, urlsplit


from ytc_helpers import (consumer_args, consumer_factory, committed, dlq_records,  # noqa: F401
                         evil, fake_yt, sqlite_rows, wait_for)
from ytfixtures import video_ids as ids


def test_value_shapes_rows_lines_results(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("shapes")
    results = topic + ".results"
    kafka.create_topic(results)
    v = ids("shapes", 8)
    values = [
        json.dumps({"links": "https://www.youtube.com/watch?v=%s" % v[0], "video_id": v[0],
                    "url": "https://youtu.be/%s" % v[0], "request_id": "r-1",
                    "received_at": "2026-11-23T04:12:48.123Z", "source": "mod_ytkafka/0.1.0"}),
        json.dumps({"links": "https://youtu.be/%s" % v[1]}),
        json.dumps({"links": ["https://www.youtube.com/shorts/%s" % v[2],
                              "https://m.youtube.com/watch?v=%s&t=10" % v[3]]}),
        json.dumps({"link": "https://www.youtube-nocookie.com/embed/%s" % v[4]}),
        json.dumps({"url": ["https://music.youtube.com/watch?v=%s" % v[5]]}),
        "https://www.youtube.com/live/%s" % v[6],
        json.dumps("https://YOUTU.BE/%s" % v[7]),
    ]
    kafka.produce(topic, values)
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--results-topic", results]))
    lines = c.wait_results(8)
    assert sorted(x["video_id"] for x in lines) == sorted(v)
    rows = wait_for(lambda: len(sqlite_rows(db)) == 8 and sqlite_rows(db), 20,
                    what="8 rows")
    for row in rows:
        facts = fake_yt.video(row["video_id"])
        assert row["status"] == "ok"
        assert row["title"] == facts["title"]
        assert row["author_name"] == facts["author_name"]
        assert row["channel_id"] == facts["channel_id"]
        assert row["duration_seconds"] == facts["length_seconds"]
        assert row["view_count"] == facts["view_count"]
        assert row["publish_date"] == facts["publish_date"]
        assert row["attempts"] == 1 and row["last_error"] is None
        meta = json.loads(row["metadata_json"])
        assert meta["video_id"] == row["video_id"] and meta["formats"]
    recs = kafka.consume(results, 8)
    assert sorted(r["key"] for r in recs) == sorted(v)
    for r in recs:
        assert json.loads(r["value"])["video_id"] == r["key"]
    # only URLs the consumer built, with the consent cookie on /watch
    for vid in v:
        paths = [r["path"] for r in fake_yt.requests_for(vid)]
        assert "/watch?v=%s" % vid in paths
        oe = [p for p in paths if p.startswith("/oembed")]
        assert len(oe) == 1
        q = parse_qs(urlsplit(oe[0]).query)
        assert q == {"url": ["https://www.youtube.com/watch?v=%s" % vid], "format": ["json"]}
    assert all(r["cookie"] == "SOCS=CAI" for r in fake_yt.requests
               if r["path"].startswith("/watch"))
    # the offsets are committed up to the end
    c.stop()
    assert c.returncode == 0
    assert committed(kafka, "g-" + topic, topic) == {0: len(values)}


def test_unavailable_videos_are_results(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("unavail")
    v = ids("unavail", 5)
    modes = ["private", "age", "unplayable", "unavailable", "consent"]
    for vid, mode in zip(v, modes):
        fake_yt.set(vid, mode)
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v])
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db))
    lines = {x["video_id"]: x for x in c.wait_results(5)}
    want = {v[0]: "Private video", v[1]: "Sign in to confirm your age",
            v[2]: "This live stream recording is not available.",
            v[3]: "Video unavailable"}
    for vid, reason in want.items():
        assert lines[vid]["status"] == "unavailable"
        assert lines[vid]["reason"] == reason
    # the consent redirect is skipped by the SOCS cookie: a normal result
    assert lines[v[4]]["status"] == "ok"
    rows = {r["video_id"]: r for r in wait_for(lambda: len(sqlite_rows(db)) == 5
                                               and sqlite_rows(db), 20)}
    for vid, reason in want.items():
        assert rows[vid]["status"] == "unavailable"
        assert rows[vid]["last_error"] == reason
        assert rows[vid]["attempts"] == 1
    assert rows[v[1]]["title"] == fake_yt.video(v[1])["title"]


def test_429_then_success_honours_retry_after(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("r429")
    vid = ids("r429", 1)[0]
    fake_yt.set(vid, "429", fail=2, retry_after=1)
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--max-attempts", "5"]))
    line = c.wait_results(1)[0]
    assert line["status"] == "ok" and line["attempts"] == 3
    watch = [r["time"] for r in fake_yt.requests_for(vid, "/watch")]
    assert len(watch) == 3
    # Retry-After: 1 was honoured between the tries (backoff alone is ~100 ms)
    assert watch[1] - watch[0] >= 0.95 and watch[2] - watch[1] >= 0.95
    row = wait_for(lambda: sqlite_rows(db), 10)[0]
    assert row["status"] == "ok" and row["attempts"] == 3


def test_repeated_500_goes_to_dlq_after_max_attempts(kafka, fake_yt, consumer_factory,
                                                     tmp_path):
    topic = kafka.new_topic("r500")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    bad, good = ids("r500", 2)
    fake_yt.set(bad, "500")
    kafka.produce(topic, ["https://youtu.be/%s" % bad, "https://youtu.be/%s" % good],
                  keys=[bad, good])
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--max-attempts", "3"]))
    lines = {x["video_id"]: x for x in c.wait_results(2)}
    assert lines[good]["status"] == "ok"
    assert lines[bad]["status"] == "error" and lines[bad]["attempts"] == 3
    assert "HTTP 500" in lines[bad]["error"]
    assert len(fake_yt.requests_for(bad, "/watch")) == 3
    rec = dlq_records(kafka, dlq, 1)[0]
    assert rec["key"] == bad
    assert rec["json"]["error"]["code"] == "retries_exhausted"
    assert "HTTP 500" in rec["json"]["error"]["message"]
    assert rec["json"]["attempts"] == 3
    assert rec["json"]["original"] == {"topic": topic, "partition": 0, "offset": 0,
                                       "key": bad, "value": "https://youtu.be/%s" % bad}
    assert "ytk-dlq-reason" in json.dumps(rec["headers"])
    rows = {r["video_id"]: r for r in wait_for(lambda: len(sqlite_rows(db)) == 2
                                               and sqlite_rows(db), 10)}
    assert rows[bad]["status"] == "error" and rows[bad]["attempts"] == 3
    assert "HTTP 500" in rows[bad]["last_error"]
    c.stop()
    assert committed(kafka, "g-" + topic, topic) == {0: 2}


def test_garbage_to_dlq_partition_moves_on(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("garbage")
    dlq = "garbage-dlq-" + topic[-6:]
    kafka.create_topic(dlq)
    good = ids("garbage", 2)
    garbage = ['{"links": 5}', '{"other": "https://youtu.be/%s"}' % good[0], "{not json",
               "[1,2,3]", '{"links": []}', "just some words"]
    kafka.produce(topic, garbage[:3] + ["https://youtu.be/%s" % good[0]] + garbage[3:]
                  + ["https://youtu.be/%s" % good[1]])
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--dlq-topic", dlq]))
    lines = c.wait_results(2)
    assert sorted(x["video_id"] for x in lines) == sorted(good)
    recs = dlq_records(kafka, dlq, len(garbage))
    assert sorted(r["json"]["original"]["value"] for r in recs) == sorted(garbage)
    assert all(r["json"]["error"]["code"] and r["json"]["error"]["message"] for r in recs)
    wait_for(lambda: committed(kafka, "g-" + topic, topic) == {0: 8}, 30,
             what="offsets committed past the garbage")


SSRF_URLS = [
    "http://127.0.0.1:{evil}/watch?v=dQw4w9WgXcQ",
    "http://localhost:{evil}/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com@127.0.0.1:{evil}/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com:{evil}/watch?v=dQw4w9WgXcQ",
    "https://youtube.com.127.0.0.1.nip.io:{evil}/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
    "https://wwwyoutube.com/watch?v=dQw4w9WgXcQ",
    "https://youtu.be.evil.example/dQw4w9WgXcQ",
    "https://evil.example/redirect?to=https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{evil}/_GET%20/",
    "//127.0.0.1:{evil}/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com/watch?v=../../../a",
    "https://www.youtube.com/redirect?q=http://127.0.0.1:{evil}/",
]


def test_ssrf_no_request_for_foreign_urls(kafka, fake_yt, evil, consumer_factory, tmp_path):
    topic = kafka.new_topic("ssrf")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    urls = [u.format(evil=evil.port) for u in SSRF_URLS]
    good = ids("ssrf", 1)[0]
    kafka.produce(topic, [json.dumps({"links": u}) for u in urls]
                  + [json.dumps({"links": [urls[0], "https://youtu.be/%s" % good]})])
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "none"))
    lines = c.wait_results(1)
    assert [x["video_id"] for x in lines] == [good]
    dlq_records(kafka, dlq, len(urls) + 1)
    wait_for(lambda: committed(kafka, "g-" + topic, topic) == {0: len(urls) + 1}, 30)
    time.sleep(0.5)
    assert evil.requests == []
    # the fake YouTube saw only what the consumer built for the good id
    assert sorted(r["path"].split("?")[0] for r in fake_yt.requests) == ["/oembed", "/watch"]
    assert all(good in r["path"] for r in fake_yt.requests)
