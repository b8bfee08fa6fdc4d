"""--parse-watch prints what the live consumer prints (docs/ARCHITECTURE.md
section 3.4): for every fixture, generated (tests/fixtures/ytfixtures.py)
and captured (tests/fixtures/youtube/), the same answers are parsed offline
and served by the fake YouTube to a consumer on a real broker and SQLite;
the two records are compared field by field, in order.

Only the fields that belong to one message or one run may differ:
PER_MESSAGE below. attempts is compared: the live consumer runs with
--max-attempts 1, so a transient page is final after one attempt, as
offline."""
import json
import os
import re
import subprocess

import pytest

from ytc_helpers import (consumer_args, consumer_bin, consumer_factory,  # noqa: F401
                         fake_yt, sqlite_rows, wait_for)
import ytfixtures

# the message it answers ({topic, partition, offset}; null offline) and
# when it was fetched
PER_MESSAGE = ("source", "fetched_at")

CAPTURED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "youtube")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def captured(name):
    with open(os.path.join(CAPTURED, name), "rb") as f:
        return f.read()


def cases():
    """[(name, video_id, watch page, oembed body or None)], in rounds: ids
    are unique within a round (the fake serves one page per id)"""
    gen = []
    for i, kind in enumerate(("ok", "tricky", "cipher", "private", "age", "unplayable",
                              "unavailable", "bot", "wrong")):
        vid = ytfixtures.video_id(i, "parse-watch")
        v = ytfixtures.video(vid)
        oe = None if kind in ("private", "unavailable") else ytfixtures.oembed(v)
        gen.append(("generated-" + kind, vid, ytfixtures.watch_page(v, kind), oe))
    vid = ytfixtures.video_id(99, "parse-watch")
    gen.append(("generated-consent", vid, ytfixtures.consent_page(vid), None))
    oe = captured("oembed-ok.json")
    cap = [
        ("watch-ok", "QRS8MkLhQmM", captured("watch-ok.html"), oe),
        ("watch-ok-signaturecipher", "WXxV9g7lsFE",
         captured("watch-ok-signaturecipher.html"), oe),
        ("watch-unplayable", "5YceQ8YqYMc", captured("watch-unplayable.html"), None),
        ("watch-private", "m8uHb5jIGN8", captured("watch-private.html"), None),
        ("watch-age-restricted", "irauhITDrsE", captured("watch-age-restricted.html"),
         None),
        ("watch-bot-check", "BaW_jenozKc", captured("watch-bot-check.html"), oe),
        ("watch-unavailable", "N_708QY7Ob0", captured("watch-unavailable.html"), None),
        ("watch-consent", ytfixtures.video_id(98, "parse-watch"),
         captured("watch-consent.html"), None),
    ]
    # the same id as watch-ok, so a round of its own
    tricky = [("watch-ok-tricky", "QRS8MkLhQmM", captured("watch-ok-tricky.html"), oe)]
    return [gen + cap, tricky]


def offline(tmp_path, name, vid, page, oe):
    w = tmp_path / (name + ".html")
    w.write_bytes(page)
    args = [consumer_bin(), "--parse-watch", str(w), "--video-id", vid]
    if oe is not None:
        o = tmp_path / (name + ".oembed.json")
        o.write_bytes(oe)
        args += ["--parse-oembed", str(o)]
    r = subprocess.run(args, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 1, r.stdout
    return json.loads(lines[0])


def test_parse_watch_is_the_live_record(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("parsewatch")
    kafka.create_topic(topic + ".dlq")
    db = str(tmp_path / "v.db")
    # --refresh-after 0: the second round serves a new page for an id the
    # first round stored, and must be fetched, not answered from the row
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--max-attempts", "1",
                                              "--refresh-after", "0"]))
    offset = 0
    compared, statuses = set(), set()
    for rnd in cases():
        first = len(c.results())
        for name, vid, page, oe in rnd:
            fake_yt.set_raw(vid, page, None if oe is None else (200, oe))
            if oe is None:
                fake_yt.raw_oembeds[vid] = (404, b"Not Found")
        kafka.produce(topic, ["https://www.youtube.com/watch?v=%s" % vid
                              for _, vid, _, _ in rnd])
        lines = c.wait_results(first + len(rnd), timeout=120)[first:]
        live = {x["video_id"]: x for x in lines}
        assert len(live) == len(rnd), lines

        def stored():
            rows = {r["video_id"]: r for r in sqlite_rows(db)}
            return all(vid in rows and json.loads(rows[vid]["metadata_json"])
                       == live[vid] for _, vid, _, _ in rnd) and rows
        rows = wait_for(stored, 30, what="the rows of this round")
        for name, vid, page, oe in rnd:
            want = offline(tmp_path, name, vid, page, oe)
            got = live[vid]
            # the same members in the same order, equal but for PER_MESSAGE
            assert list(got) == list(want), name
            for k in want:
                if k not in PER_MESSAGE:
                    assert got[k] == want[k], (name, k)
            assert want["source"] is None
            assert got["source"] == {"topic": topic, "partition": 0,
                                     "offset": got["source"]["offset"]}
            assert offset <= got["source"]["offset"] < offset + len(rnd)
            assert RFC3339.match(got["fetched_at"]) and RFC3339.match(want["fetched_at"])
            # the row: the live record as metadata_json, its columns the
            # extracted values
            row = rows[vid]
            assert json.loads(row["metadata_json"]) == got, name
            assert row["status"] == want["status"]
            for col in ("title", "author_name", "channel_id", "publish_date"):
                assert row[col] == want.get(col), (name, col)
            for col in ("duration_seconds", "view_count"):
                assert row[col] == want.get(col), (name, col)
            compared.add(name)
            statuses.add(want["status"])
        offset += len(rnd)
    assert statuses == {"ok", "unavailable", "error"}
    assert len(compared) == sum(len(r) for r in cases())


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(CAPTURED)
                                        if n.startswith("watch-")))
def test_every_captured_page_is_compared(name):
    """a capture added to tests/fixtures/youtube must join the cases"""
    assert name[:-5] in {n for rnd in cases() for n, _, _, _ in rnd}
