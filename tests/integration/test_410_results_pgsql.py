"""ytkafka-results on PostgreSQL through mod_dbd's pgsql driver, and what a
stopped PostgreSQL does to it (503 with Retry-After, then recovery)."""
import json
import os

import pytest

from httpd import SRC, httpd_factory  # noqa: F401
from ytc_helpers import own_postgres

VID = "dQw4w9WgXcQ"


@pytest.fixture
def own_pg():
    """A PostgreSQL of this test alone: the test stops it."""
    yield from own_postgres("ytk-pgr-")


def test_pgsql_rows_and_outage(own_pg, httpd_factory):
    pg = own_pg
    pg.new_db("res")
    with open(os.path.join(SRC, "conf", "schema.sql")) as f:
        pg.psql(f.read(), db="res")
    meta = json.dumps({"video_id": VID, "keywords": ["x"]}).replace("'", "''")
    for i in range(5):
        vid = VID if i == 0 else "pgvideo%04d" % i
        pg.psql("INSERT INTO videos (video_id, status, title, view_count,"
                " metadata_json, attempts, first_seen_at, updated_at) VALUES"
                " ('%s', 'ok', 'T%d', 9000000000, '%s', 1,"
                " '2026-11-23T04:00:00.000Z', '2026-11-23T04:0%d:00.000Z')"
                % (vid, i, meta, i), db="res")
    h = httpd_factory(modules=["dbd"])
    h.write_config("""DBDriver pgsql
DBDParams "host=127.0.0.1 port=%d user=%s dbname=res connect_timeout=3"
DBDExptime 1
<Location /links>
    SetHandler ytkafka-results
</Location>
""" % (pg.port, pg.user))
    h.start()
    r = h.get("/links/" + VID)
    assert r.status == 200, r
    j = r.json()
    assert j["view_count"] == 9000000000 and j["metadata"]["keywords"] == ["x"]
    assert h.get("/links/" + VID,
                 headers={"If-None-Match": r.headers["etag"]}).status == 304
    assert h.get("/links/aaaaaaaaaaa").status == 404
    j = h.get("/links?limit=2").json()
    assert [v["video_id"] for v in j["videos"]] == ["pgvideo0004", "pgvideo0003"]
    j2 = h.get("/links?limit=2&before=" + j["next"]).json()
    assert [v["video_id"] for v in j2["videos"]] == ["pgvideo0002", "pgvideo0001"]

    pg.stop()
    r = h.get("/links/" + VID, timeout=60)
    assert r.status == 503, r
    assert r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "database_unavailable"
    assert h.get("/links?limit=2", timeout=60).status == 503
    h.expect_log(r"YTK00802", r"AH0\d+", r"dbd", r"terminat", r"connection")

    pg.start_again()
    deadline_ok = False
    for _ in range(60):
        r = h.get("/links/" + VID, timeout=60)
        if r.status == 200:
            deadline_ok = True
            break
        assert r.status == 503, r
        import time
        time.sleep(0.5)
    assert deadline_ok, "results did not come back after PostgreSQL restarted"
