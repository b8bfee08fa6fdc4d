"""The same messages give the same rows on SQLite and PostgreSQL, and a
redelivered message never adds a row."""
import json

from ytc_helpers import (consumer_args, consumer_factory, fake_yt, pg_rows,  # noqa: F401
                         postgres, sqlite_rows)
import ytfixtures

VOLATILE = ("first_seen_at", "updated_at", "metadata_json")


def comparable(rows):
    out = []
    for r in rows:
        d = {k: v for k, v in r.items() if k not in VOLATILE}
        meta = json.loads(r["metadata_json"])
        for k in ("fetched_at", "source"):
            meta.pop(k, None)
        d["meta"] = meta
        out.append(d)
    return sorted(out, key=lambda d: d["video_id"])


def test_same_rows_on_sqlite_and_postgresql(kafka, fake_yt, postgres, consumer_factory,
                                            tmp_path):
    topic = kafka.new_topic("dbs")
    v = [ytfixtures.video_id(i, "dbs") for i in range(6)]

    def set_modes():
        fake_yt.set(v[1], "private")
        fake_yt.set(v[2], "unplayable")
        fake_yt.set(v[3], "500")
        fake_yt.set(v[4], "429", fail=1, retry_after=1)
        fake_yt.set(v[5], "ok", title="It's a \"quoted\" title; DROP TABLE videos; --",
                    view_count=2 ** 62)

    set_modes()
    # v[0] twice: one row; the second message shares the first one's fetch
    # (coalesced) or reuses its young row (--refresh-after), never fetches
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v + [v[0]]])
    sqlite_db = str(tmp_path / "v.db")
    pg_dsn = postgres.new_db("dbs_" + topic[-10:].replace("-", "_"))
    pg_name = pg_dsn.rsplit("=", 1)[1]
    extra = ["--max-attempts", "2", "-e"]
    c1 = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + sqlite_db,
                                        group="g1-" + topic, extra=extra), name="sqlite")
    assert c1.wait(90) == 0
    set_modes()         # the 429 counts again for the second run
    c2 = consumer_factory(consumer_args(kafka, topic, fake_yt, pg_dsn,
                                        group="g2-" + topic, extra=extra), name="pgsql")
    assert c2.wait(90) == 0
    # two videos failing among good ones is not an outage, whatever the
    # order of the answers: their attempts are spent (docs/ARCHITECTURE.md)
    assert "YTC00500" not in c1.stderr() and "YTC00500" not in c2.stderr()
    assert len(c1.results()) == 7 and len(c2.results()) == 7
    a = sqlite_rows(sqlite_db)
    b = pg_rows(postgres, pg_name)
    assert len(a) == 6 and len(b) == 6
    for x, y in zip(comparable(a), comparable(b)):
        for k in set(x) | set(y):
            if k == "meta":
                for mk in set(x[k]) | set(y[k]):
                    assert x[k].get(mk) == y[k].get(mk), (x["video_id"], mk)
            else:
                assert x.get(k) == y.get(k), (x["video_id"], k)
    by = {r["video_id"]: r for r in a}
    assert by[v[0]]["attempts"] == 1            # two deliveries, one fetch, one row
    # one fetch per run (SQLite, then PostgreSQL), not per message; counted
    # by oEmbed: v[0]'s watch page may also answer the YouTube checks of
    # v[3]'s and v[4]'s retries (the last video answered), checks fetch no
    # oEmbed
    assert len(fake_yt.requests_for(v[0], "/oembed")) == 2
    assert by[v[0]]["first_seen_at"] <= by[v[0]]["updated_at"]
    assert by[v[1]]["status"] == "unavailable"
    assert by[v[2]]["status"] == "unavailable"
    assert by[v[3]]["status"] == "error" and by[v[3]]["attempts"] == 2
    assert by[v[4]]["status"] == "ok" and by[v[4]]["attempts"] == 2
    assert by[v[5]]["title"] == "It's a \"quoted\" title; DROP TABLE videos; --"
    assert by[v[5]]["view_count"] == 2 ** 62
    pb = {r["video_id"]: r for r in b}
    assert pb[v[5]]["view_count"] == 2 ** 62


def test_error_does_not_overwrite_a_stored_result(kafka, fake_yt, consumer_factory,
                                                  tmp_path):
    topic = kafka.new_topic("keep")
    vid = ytfixtures.video_id(0, "keep")
    db = str(tmp_path / "v.db")
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    # --refresh-after 0: the second message fetches again (and fails)
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["--max-attempts", "2", "-e", "--refresh-after", "0"])
    assert consumer_factory(args, name="one").wait(60) == 0
    fake_yt.set(vid, "500")
    kafka.produce(topic, ["https://youtu.be/%s" % vid])
    assert consumer_factory(args, name="two").wait(60) == 0
    row = sqlite_rows(db)[0]
    assert row["status"] == "ok"                       # the good result stays
    assert row["title"] == fake_yt.video(vid)["title"]
    assert "HTTP 500" in row["last_error"] and row["attempts"] == 3
