"""A YouTube outage while the consumer has one video in hand.

Counting failures over different videos cannot open the outage breaker for
a video that is alone (a quiet topic, a partition just assigned, the
endpoint itself answering errors): before checks it spent its attempts in a
few seconds and was dead-lettered, an acknowledged link lost to an outage
(the chaos run's short mode caught one). Now its retries also check YouTube
itself (the watch page or oEmbed answer, whichever failed, of the last
video answered, else the home page): a failed check opens the breaker and
the video is held; an answered check makes the failure the video's own.
(docs/ARCHITECTURE.md, 4.2.)"""
import re

from ytc_helpers import (consumer_args, consumer_factory, committed,  # noqa: F401
                         fake_yt, sqlite_rows, wait_for)
import ytfixtures

MAX_ATTEMPTS = 3


def test_lone_video_in_an_outage_is_held_not_dead_lettered(kafka, fake_yt,
                                                            consumer_factory, tmp_path):
    topic = kafka.new_topic("lone")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    db = str(tmp_path / "v.db")
    before = [ytfixtures.video_id(i, "lonepre") for i in range(2)]
    lone = ytfixtures.video_id(0, "lone")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--max-attempts", str(MAX_ATTEMPTS)]))
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in before])
    c.wait_results(2)

    fake_yt.outage = "503"
    kafka.produce(topic, ["https://youtu.be/%s" % lone])
    # Far more tries than --max-attempts (the old rule dead-lettered it at
    # the third, 0.3 s in at --backoff-ms 100), and still held.
    wait_for(lambda: len(fake_yt.requests_for(lone, "/watch")) >= MAX_ATTEMPTS + 2, 60,
             what="the lone video tried past --max-attempts")
    c.wait_log(r"YTC00500: outage: youtube unreachable")
    assert kafka.count(dlq) == 0
    assert len(c.results()) == 2
    assert "retries_exhausted" not in c.stderr()

    fake_yt.outage = None
    lines = c.wait_results(3, timeout=90)
    got = {x["video_id"]: x for x in lines}
    assert got[lone]["status"] == "ok", got[lone]
    # no attempt was spent on the outage
    assert got[lone]["attempts"] == 1, got[lone]
    rows = {r["video_id"]: r for r in wait_for(
        lambda: len(sqlite_rows(db)) == 3 and sqlite_rows(db), 30)}
    assert rows[lone]["status"] == "ok"
    assert kafka.count(dlq) == 0
    assert c.stop() == 0
    assert committed(kafka, "g-" + topic, topic) == {0: 3}


def test_lone_video_failing_while_others_are_answered_is_dead_lettered(
        kafka, fake_yt, consumer_factory, tmp_path):
    """YouTube answers the check (its home page: no video answered yet),
    so the failures are this video's own: it is dead-lettered after its
    attempts, no outage is declared, and the next video is answered."""
    topic = kafka.new_topic("lonebad")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    db = str(tmp_path / "v.db")
    bad = ytfixtures.video_id(0, "lonebad")
    good = ytfixtures.video_id(1, "lonebad")
    fake_yt.set(bad, "status:503")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--max-attempts", str(MAX_ATTEMPTS)]))
    kafka.produce(topic, ["https://youtu.be/%s" % bad])
    first = c.wait_results(1, timeout=120)
    assert first[0]["video_id"] == bad
    kafka.produce(topic, ["https://youtu.be/%s" % good])
    lines = {x["video_id"]: x for x in c.wait_results(2, timeout=120)}
    assert lines[good]["status"] == "ok"
    assert lines[bad]["status"] == "error", lines[bad]
    assert lines[bad]["attempts"] == MAX_ATTEMPTS, lines[bad]
    assert "HTTP 503" in lines[bad]["error"]
    assert re.search(r"YTC00415: dead letter .* video %s .*retries_exhausted" % bad,
                     c.stderr())
    wait_for(lambda: kafka.count(dlq) == 1, 30, what="one DLQ record")
    assert "YTC00500" not in c.stderr()
    assert c.stop() == 0


def test_check_reads_only_the_status(kafka, fake_yt, consumer_factory, tmp_path):
    """A check asks only whether YouTube answers: it ends at the status and
    headers instead of downloading a ~1 MB watch page. The reference
    video's page here stalls after its first bytes for longer than
    --http-timeout; a check that waited for the whole body would time out,
    take YouTube for out and hold the failing video instead of
    dead-lettering it."""
    topic = kafka.new_topic("checkstatus")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    db = str(tmp_path / "v.db")
    ref = ytfixtures.video_id(0, "checkref")
    bad = ytfixtures.video_id(0, "checkbad")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                                       extra=["--max-attempts", str(MAX_ATTEMPTS),
                                              "--http-timeout", "3000"]))
    kafka.produce(topic, ["https://youtu.be/%s" % ref])
    assert c.wait_results(1)[0]["status"] == "ok"
    # what the checks of bad's retries ask for: ref's watch page (bad's
    # watch page fails too), which now stalls after its headers
    fake_yt.set(ref, "stall")
    fake_yt.set(bad, "status:503")
    kafka.produce(topic, ["https://youtu.be/%s" % bad])
    lines = {x["video_id"]: x for x in c.wait_results(2, timeout=60)}
    assert lines[bad]["status"] == "error", lines[bad]
    assert lines[bad]["attempts"] == MAX_ATTEMPTS, lines[bad]
    wait_for(lambda: kafka.count(dlq) == 1, 30, what="one DLQ record")
    # the checks went to ref's stalling page (its first fetch + the checks
    # of bad's last two attempts), and none of them timed out
    assert fake_yt.count(ref, "/watch") == 1 + MAX_ATTEMPTS - 1
    assert "YTC00500" not in c.stderr()
    assert c.stop() == 0
