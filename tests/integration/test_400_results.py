"""ytkafka-results: the consumer's rows back over HTTP through mod_dbd and a
real SQLite database in WAL mode (the consumer's mode)."""
import json
import os
import sqlite3
import threading

import pytest

from httpd import SRC, httpd_factory, new_workdir  # noqa: F401

SCHEMA = os.path.join(SRC, "conf", "schema.sql")
VID = "dQw4w9WgXcQ"
META = {"video_id": VID, "title": "Rick <b>", "keywords": ["a", "b"],
        "formats": [{"itag": 18}]}


def make_db(d, rows=()):
    path = os.path.join(d, "ytkafka.db")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    with open(SCHEMA) as f:
        db.executescript(f.read())
    for r in rows:
        db.execute("INSERT INTO videos (video_id, status, title, author_name,"
                   " channel_id, duration_seconds, view_count, publish_date,"
                   " metadata_json, attempts, last_error, first_seen_at,"
                   " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", r)
    db.commit()
    db.close()
    # httpd's children may run as another user: they need the directory
    # writable for the -shm and -wal files of a WAL database.
    os.chmod(d, 0o777)
    for f in os.listdir(d):
        if f.startswith("ytkafka.db"):
            os.chmod(os.path.join(d, f), 0o666)
    return path


class Keeper:
    """Holds the database open and read, as the consumer does in a real
    deployment: httpd's children then open a WAL database whose index is
    built. Without it they all build it at once when they start, and the
    ones that lose get SQLITE_BUSY while preparing (AH00632)."""

    def __init__(self):
        self.db = None

    def hold(self, path):
        self.db = sqlite3.connect(path)
        self.db.execute("SELECT count(*) FROM videos").fetchall()
        return path

    def release(self):
        if self.db:
            self.db.close()
            self.db = None


@pytest.fixture
def keeper():
    k = Keeper()
    yield k
    k.release()


def row(vid, updated, status="ok", title="Title", meta=META):
    return (vid, status, title, "Author", "UCx", 212, 1234567890123,
            "2009-10-24", json.dumps(meta) if meta else None, 1,
            None if status == "ok" else "private video",
            "2026-11-23T04:12:48.000Z", updated)


def results_config(path, extra=""):
    return """DBDriver sqlite3
DBDParams %s
%s
<Location /links>
    SetHandler ytkafka-results
</Location>
""" % (path, extra)


@pytest.fixture
def stack(httpd_factory, keeper):
    d = os.path.join(new_workdir("results"), "db")
    os.mkdir(d)
    rows = [row(VID, "2026-11-23T05:00:00.000Z")]
    rows += [row("vid%08d" % i, "2026-11-23T04:%02d:00.000Z" % i)
             for i in range(30)]
    rows.append(row("private0001", "2026-11-23T03:00:00.000Z",
                    status="unavailable", title=None, meta=None))
    path = keeper.hold(make_db(d, rows))
    h = httpd_factory(modules=["dbd"])
    h.write_config(results_config(path, "YtKafkaResultsMaxLimit 10"))
    h.start()
    return h, path


def test_get_one_row(stack):
    h, _ = stack
    r = h.get("/links/" + VID)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json")
    j = r.json()
    assert j["video_id"] == VID and j["status"] == "ok"
    assert j["title"] == "Title" and j["author_name"] == "Author"
    assert j["view_count"] == 1234567890123 and j["duration_seconds"] == 212
    assert j["metadata"] == META
    assert j["attempts"] == 1 and j["last_error"] is None
    assert j["first_seen_at"] == "2026-11-23T04:12:48.000Z"
    assert j["updated_at"] == "2026-11-23T05:00:00.000Z"
    assert j["request_id"] == r.headers["x-request-id"]
    assert r.headers["etag"]
    assert r.headers["last-modified"] == "Mon, 23 Nov 2026 05:00:00 GMT"


def test_unavailable_row_has_reason(stack):
    h, _ = stack
    j = h.get("/links/private0001").json()
    assert j["status"] == "unavailable" and j["last_error"] == "private video"
    assert j["metadata"] is None


def test_not_found_and_bad_id(stack):
    h, _ = stack
    r = h.get("/links/aaaaaaaaaaa")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    assert r.json()["request_id"]
    r = h.get("/links/not-an-id!")
    assert r.status == 400 and r.json()["error"]["code"] == "bad_id"
    r = h.get("/links/" + VID + "/x")
    assert r.status == 400


def test_by_url(stack):
    h, _ = stack
    r = h.get("/links?url=https%3A%2F%2Fyoutu.be%2F" + VID)
    assert r.status == 200 and r.json()["video_id"] == VID
    r = h.get("/links?url=https%3A%2F%2Fm.youtube.com%2Fwatch%3Fv%3D" + VID)
    assert r.status == 200 and r.json()["video_id"] == VID
    r = h.get("/links?url=https%3A%2F%2Fevil.example%2Fwatch%3Fv%3D" + VID)
    assert r.status == 400 and r.json()["error"]["code"] == "bad_host"


def test_conditional_get_and_head(stack):
    h, _ = stack
    r = h.get("/links/" + VID)
    etag, lm = r.headers["etag"], r.headers["last-modified"]
    r2 = h.get("/links/" + VID, headers={"If-None-Match": etag})
    assert r2.status == 304 and r2.body == b""
    r3 = h.get("/links/" + VID, headers={"If-Modified-Since": lm})
    assert r3.status == 304
    r4 = h.get("/links/" + VID, headers={"If-None-Match": '"other"'})
    assert r4.status == 200
    r5 = h.request("HEAD", "/links/" + VID)
    assert r5.status == 200 and r5.body == b""
    assert r5.headers["etag"] == etag


def test_other_methods_405(stack):
    h, _ = stack
    for m in ("POST", "PUT", "DELETE"):
        r = h.request(m, "/links/" + VID, body=b"{}")
        assert r.status == 405, r
        assert "GET" in r.headers["allow"]
        assert r.json()["error"]["code"] == "method_not_allowed"


def test_list_paginates_newest_first(stack):
    h, _ = stack
    seen, cursor, pages = [], None, 0
    while True:
        r = h.get("/links?limit=7" + ("&before=" + cursor if cursor else ""))
        assert r.status == 200, r
        j = r.json()
        assert len(j["videos"]) <= 7 and j["limit"] == 7
        seen += [(v["updated_at"], v["video_id"]) for v in j["videos"]]
        assert "metadata" not in j["videos"][0]
        pages += 1
        cursor = j["next"]
        if not cursor:
            break
    assert len(seen) == 32 and seen == sorted(seen, reverse=True)
    assert seen[0][1] == VID and pages == 5
    r = h.get("/links?limit=5000")
    assert r.json()["limit"] == 10 and len(r.json()["videos"]) == 10
    assert h.get("/links?limit=x").status == 400
    assert h.get("/links?limit=0").status == 400
    r = h.get("/links?before=%21%21")
    assert r.status == 400 and r.json()["error"]["code"] == "bad_cursor"


def test_locked_database_503(stack, keeper):
    h, path = stack
    # In WAL mode only EXCLUSIVE locking mode and a write keep readers out,
    # and the lock is only granted while no other connection has read the
    # database: mod_dbd's children open theirs at start, so take it with
    # httpd stopped (waiting for it otherwise races them).
    assert h.stop()
    keeper.release()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("BEGIN EXCLUSIVE")
    db.execute("UPDATE videos SET attempts = attempts WHERE video_id = ?",
               (VID,))
    try:
        h.start()
        r = h.get("/links/" + VID, timeout=60)
        assert r.status == 503, r
        assert r.headers["retry-after"] == "2"
        assert r.json()["error"]["code"] == "database_unavailable"
    finally:
        db.execute("ROLLBACK")
        db.close()
    h.expect_log(r"YTK00802", r"AH0063\d")
    # Once the lock is gone the same children answer again.
    assert h.get("/links/" + VID).status == 200


def test_missing_database_503(httpd_factory, tmp_path):
    h = httpd_factory(modules=["dbd"])
    h.write_config(results_config(str(tmp_path / "nodir" / "x.db")))
    h.start()
    r = h.get("/links/" + VID)
    assert r.status == 503 and r.headers["retry-after"] == "2"
    h.expect_log(r"YTK00802", r"AH0\d+", r"DBD", r"dbd")


def test_config_errors(httpd_factory, tmp_path):
    h = httpd_factory()
    h.write_config("<Location /links>\nSetHandler ytkafka-results\n"
                   "</Location>\n")
    p = h.check()
    assert p.returncode != 0 and "YTK00800" in p.stderr + p.stdout
    h = httpd_factory(modules=["dbd"])
    h.write_config("<Location /links>\nSetHandler ytkafka-results\n"
                   "</Location>\n")
    p = h.check()
    assert p.returncode != 0 and "no DBDriver" in p.stderr + p.stdout
    for bad in ("YtKafkaResultsTable 'x;drop'", "YtKafkaResultsMaxLimit 0",
                "YtKafkaResultsMaxLimit lots"):
        h = httpd_factory(modules=["dbd"])
        h.write_config(results_config(str(tmp_path / "x.db"), bad))
        p = h.check()
        assert p.returncode != 0, bad
        assert bad.split()[0] in p.stderr + p.stdout


def test_shipped_conf_serves_results_and_page(httpd_factory, keeper):
    """conf/ytkafka-results.conf as shipped: the LocationMatch leaves the
    send endpoint alone, the Alias serves web/."""
    d = os.path.join(new_workdir("results"), "db")
    os.mkdir(d)
    path = keeper.hold(make_db(d, [row(VID, "2026-11-23T05:00:00.000Z")]))
    h = httpd_factory(modules=["dbd", "alias", "dir", "mime"])
    h.write_config("TypesConfig /etc/mime.types\n"
                   "Define YTK_DB_PATH %s\nDefine YTK_WEB_DIR %s\n"
                   "Include %s\n" % (path, os.path.join(SRC, "web"),
                                     os.path.join(SRC, "conf",
                                                  "ytkafka-results.conf")))
    h.start()
    assert h.get("/links/" + VID).json()["video_id"] == VID
    assert h.get("/links?limit=1").json()["videos"][0]["video_id"] == VID
    # Not the results handler (no ytkafka-send here, so the core's 404).
    r = h.get("/links/send-message")
    assert r.status == 404 and b"not_found" not in r.body
    r = h.get("/ytkafka/")
    assert r.status == 200 and b"send-form" in r.body
    r = h.get("/ytkafka/ytkafka.js")
    assert r.status == 200 and b"textContent" in r.body
    assert b"innerHTML" not in r.body
    assert "javascript" in r.headers["content-type"]
