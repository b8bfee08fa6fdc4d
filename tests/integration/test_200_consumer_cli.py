"""ytkafka-consumer without Kafka: command line, config file, environment,
and the extractor over generated watch pages (--parse-watch)."""
import json
import re
import os
import subprocess
import sys

import pytest

from ytc_helpers import consumer_bin

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "fixtures"))
import ytfixtures  # noqa: E402


def run(*args, env=None, timeout=30):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("YTK_") and k != "KAFKA_BROKERS"}
    e.update(env or {})
    return subprocess.run([consumer_bin(), *args], capture_output=True, text=True,
                          env=e, timeout=timeout)


def test_help_on_stdout_exit_0():
    r = run("-h")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: ytkafka-consumer")
    for flag in ("-b", "-G", "-t", "-X", "-F", "--db", "--results-topic", "--dlq-topic",
                 "--youtube-url", "--concurrency", "--max-attempts", "--version"):
        assert flag in r.stdout
    assert r.stderr == ""


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("ytkafka-consumer 0.1.0")


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "unrecognized option"),
    # --dry-run was an alias of --no-fetch that committed offsets: removed
    (["-b", "x", "--dry-run"], "unrecognized option"),
    (["-b", "x", "--concurrency", "0"], "--concurrency"),
    (["-b", "x", "--max-attempts", "many"], "--max-attempts"),
    (["-b", "x", "--db", "mysql:x"], "--db"),
    (["-b", "x", "--youtube-url", "ftp://example.org"], "--youtube-url"),
    (["-b", "x", "-X", "no.such.property=1"], "No such configuration property"),
    (["-b", "x", "-X", "novalue"], "expected PROP=VALUE"),
    (["-b", "x", "extra-argument"], "unexpected argument"),
    ([], "no brokers"),
])
def test_usage_errors_on_stderr_exit_1(args, message):
    r = run(*args)
    assert r.returncode == 1, r
    assert r.stdout == ""
    assert message in r.stderr


def test_config_file_errors_name_file_and_line(tmp_path):
    f = tmp_path / "c.conf"
    f.write_text("# comment\n\nclient.id=x\n  session.timeout.ms = 45000\n")
    r = run("-b", "x", "-F", str(f))
    assert r.returncode == 1
    assert "%s:4:" % f in r.stderr
    f.write_text("# comment\nclient.id=x\nfetch.wait.max.ms=abc\n")
    r = run("-b", "x", "-F", str(f))
    assert r.returncode == 1
    assert "%s:3:" % f in r.stderr and "fetch.wait.max.ms" in r.stderr
    f.write_text("client.id=x\nnot a property line\n")
    r = run("-b", "x", "-F", str(f))
    assert r.returncode == 1 and "%s:2:" % f in r.stderr
    r = run("-b", "x", "-F", str(tmp_path / "missing.conf"))
    assert r.returncode == 1 and "missing.conf" in r.stderr


def test_project_config_file_is_accepted():
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "conf", "ytkafka-consumer.conf")
    if not os.path.exists(src):
        pytest.skip("conf/ytkafka-consumer.conf not present")
    # -h after -F: the file is parsed and checked, then help exits 0
    r = run("-F", src, "-h")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("var, value, message", [
    ("YTK_DB", "oracle:x", "--db"),
    ("YTK_CONCURRENCY", "lots", "YTK_CONCURRENCY"),
    ("YTK_MAX_ATTEMPTS", "0", "YTK_MAX_ATTEMPTS"),
    ("YTK_YOUTUBE_URL", "gopher://x", "--youtube-url"),
])
def test_environment_fills_unset_flags(var, value, message):
    r = run(env={"KAFKA_BROKERS": "127.0.0.1:1", var: value})
    assert r.returncode == 1
    assert message in r.stderr


def test_flags_win_over_environment():
    # --db wins: its bad value is reported, not the good YTK_DB
    r = run("--db", "oracle:x", env={"KAFKA_BROKERS": "127.0.0.1:1",
                                     "YTK_DB": "sqlite3:/tmp/x.db"})
    assert r.returncode == 1 and "oracle:x" in r.stderr


# ---- the extractor over generated pages ------------------------------------

VID = ytfixtures.video_id(0, "cli")


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    d = tmp_path_factory.mktemp("pages")
    v = ytfixtures.video(VID)
    (d / "oembed.json").write_bytes(ytfixtures.oembed(v))
    for kind in ("ok", "tricky", "cipher", "private", "age", "unplayable",
                 "unavailable", "bot", "consent", "wrong"):
        (d / ("%s.html" % kind)).write_bytes(ytfixtures.watch_page(v, kind))
    return d, v


def outcome(r):
    """--parse-watch prints the live record on stdout, its outcome on stderr"""
    lines = [x for x in r.stderr.splitlines() if x.startswith("outcome: ")]
    assert len(lines) == 1, r.stderr
    return lines[0][len("outcome: "):].split(":")[0]


def parse(pages, kind, oembed=True):
    d, _ = pages
    args = ["--parse-watch", str(d / ("%s.html" % kind)), "--video-id", VID]
    if oembed:
        args += ["--parse-oembed", str(d / "oembed.json")]
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 1
    d = json.loads(r.stdout)
    d["outcome"] = outcome(r)
    return d


@pytest.mark.parametrize("kind", ["ok", "tricky", "cipher"])
def test_ok_pages(pages, kind):
    _, v = pages
    d = parse(pages, kind)
    assert d["outcome"] == "ok" and d["status"] == "ok"
    assert d["video_id"] == VID
    if kind != "tricky":
        assert d["title"] == v["title"]
    else:
        assert d["title"].startswith("Captions {and} Subtitles }; test")
        assert 'var ytInitialPlayerResponse = {"fake": true};' in d["description"]
    assert d["author_name"] == v["author_name"]
    assert d["author_url"] == v["author_url"]
    assert d["channel_id"] == v["channel_id"]
    assert d["duration_seconds"] == v["length_seconds"]
    assert d["view_count"] == v["view_count"]          # > 2^31: 64-bit
    assert d["keywords"] == v["keywords"]
    assert d["publish_date"] == v["publish_date"]
    assert d["upload_date"] == v["upload_date"]
    assert d["category"] == v["category"]
    assert d["is_live"] is False and d["is_family_safe"] is True
    assert len(d["thumbnails"]) == 4 and d["thumbnails"][0]["width"] == 168
    assert d["playability"] == {"status": "OK", "reason": None}
    fm = {f["itag"]: f for f in d["formats"]}
    assert set(fm) >= {18, 22, 137, 140, 251}
    assert fm[140]["mime_type"] == 'audio/mp4; codecs="mp4a.40.2"'
    assert fm[140]["audio_quality"] == "AUDIO_QUALITY_MEDIUM"
    assert fm[140]["content_length"] == 130000 * v["length_seconds"] // 8
    assert fm[140]["approx_duration_ms"] == v["length_seconds"] * 1000 + 123
    assert fm[18]["adaptive"] is False and fm[137]["adaptive"] is True
    if kind == "cipher":
        assert all(f["has_signature_cipher"] and not f["has_url"] for f in d["formats"])
    else:
        assert all(f["has_url"] and not f["has_signature_cipher"] for f in d["formats"])


@pytest.mark.parametrize("kind, reason", [
    ("private", "Private video"),
    ("age", "Sign in to confirm your age"),
    ("unplayable", "This live stream recording is not available."),
    ("unavailable", "Video unavailable"),
])
def test_unavailable_pages(pages, kind, reason):
    d = parse(pages, kind, oembed=False)
    assert d["outcome"] == "unavailable" and d["status"] == "unavailable"
    assert d["reason"] == reason
    assert d["playability"]["reason"] == reason
    assert d["formats"] == []
    if kind == "age":
        assert d["is_family_safe"] is False
        assert d["duration_seconds"] == pages[1]["length_seconds"]


@pytest.mark.parametrize("kind, reason", [
    ("bot", "bot check"),
    ("consent", "consent interstitial"),
    ("wrong", "answer is for video"),
])
def test_transient_pages(pages, kind, reason):
    d = parse(pages, kind)
    # the record a live consumer prints when the attempts are used up
    assert d["outcome"] == "transient" and d["status"] == "error"
    assert reason in d["error"] and "reason" not in d
    assert d["attempts"] == 1 and d["source"] is None


def test_captured_shapes():
    """Captured answers (tests/fixtures/youtube); the id from the page."""
    ref = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "fixtures", "youtube")
    r = run("--parse-watch", os.path.join(ref, "watch-ok-tricky.html"))
    d = json.loads(r.stdout)
    assert outcome(r) == "ok" and d["video_id"] == "QRS8MkLhQmM"
    assert d["duration_seconds"] == 97 and d["view_count"] == 1739256
    r = run("--parse-watch", os.path.join(ref, "watch-private.html"),
            "--video-id", "m8uHb5jIGN8")
    assert json.loads(r.stdout)["reason"] == "Private video"


# ---- ytc_loop_create's error paths ---------------------------------------

@pytest.mark.parametrize("prop, refused_by, made", [
    # the consumer refuses it (fetch.* never reaches the producer): the
    # database, the fetcher and the producer were made before
    ("fetch.max.bytes=1000", "YTC00424: consumer: `fetch.max.bytes`", ["producer-1"]),
    # the producer refuses it: the database and the fetcher were made
    ("acks=1", "YTC00423: producer: `acks` must be set to `all`", []),
])
def test_create_error_frees_what_was_made(tmp_path, prop, refused_by, made):
    """Under the ASan build (YTK_ASAN_BUILD_DIR) with LeakSanitizer: exit
    1 naming the property, no sanitizer report, every Kafka client made is
    destroyed (librdkafka's own "Terminating instance"; LeakSanitizer
    cannot see a client whose threads still run) and the database closed
    (SQLite removes its -wal and -shm files only when the last connection
    closes)."""
    db = tmp_path / "v.db"
    r = run("-v", "-b", "127.0.0.1:1", "-t", "t", "--db", "sqlite3:%s" % db,
            "-X", prop, "-X", "debug=generic",
            env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"}, timeout=60)
    assert r.returncode == 1, r.stderr[-3000:]
    assert refused_by in r.stderr
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr
    for client in made:
        assert re.search(r"%s: DESTROY: .*Terminating instance" % client, r.stderr), \
            r.stderr[-3000:]
    assert db.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.db"]
