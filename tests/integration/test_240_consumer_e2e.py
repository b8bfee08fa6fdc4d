"""End to end: a link POSTed to httpd + mod_ytkafka ends as one row, one
stdout line and one results-topic record."""
import json
import os

import pytest

from httpd import httpd_factory, module_path, send_config  # noqa: F401
from ytc_helpers import (consumer_args, consumer_factory, fake_yt,  # noqa: F401
                         sqlite_rows, wait_for)
import ytfixtures


@pytest.mark.skipif(not os.path.exists(module_path()), reason="mod_ytkafka not built")
def test_post_to_row_line_and_result(kafka, httpd_factory, fake_yt, consumer_factory,
                                     tmp_path):
    topic = kafka.new_topic("e2e")
    results = topic + ".results"
    kafka.create_topic(results)
    vid = ytfixtures.video_id(0, "e2e")
    facts = fake_yt.video(vid)
    h = httpd_factory(mpm="event")
    h.write_config(send_config(kafka.bootstrap, topic=topic))
    h.start()
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--results-topic", results]))
    r = h.post_json("/send", {"links": "https://youtu.be/%s?si=share" % vid})
    assert r.status == 201, r
    request_id = r.json()["request_id"]

    line = c.wait_results(1)[0]
    assert line["video_id"] == vid and line["status"] == "ok"
    assert line["title"] == facts["title"]
    row = wait_for(lambda: sqlite_rows(db), 20, what="the row")
    assert len(row) == 1
    row = row[0]
    assert (row["video_id"], row["status"], row["title"], row["author_name"],
            row["channel_id"], row["duration_seconds"], row["view_count"],
            row["publish_date"]) == (vid, "ok", facts["title"], facts["author_name"],
                                     facts["channel_id"], facts["length_seconds"],
                                     facts["view_count"], facts["publish_date"])
    rec = kafka.consume(results, 1)
    assert len(rec) == 1 and rec[0]["key"] == vid
    assert json.loads(rec[0]["value"])["channel_id"] == facts["channel_id"]
    # the consumer never fetched what was submitted, only what it built
    assert {x["path"].split("?")[0] for x in fake_yt.requests} == {"/watch", "/oembed"}
    assert not any("si=share" in x["path"] for x in fake_yt.requests)
    assert request_id
    assert c.stop() == 0
