"""ytkafka-consumer under faults: SIGKILL and restart, SIGTERM, no broker at
start, two consumers in one group."""
import signal
import time

from kafka import Kafka
from ytc_helpers import (consumer_args, consumer_factory, committed, fake_yt,  # noqa: F401
                         sqlite_rows, wait_for)
from ytfixtures import video_ids as ids


def test_sigkill_midstream_restart_each_video_once(kafka, fake_yt, consumer_factory,
                                                   tmp_path):
    topic = kafka.new_topic("kill", partitions=2)
    v = ids("kill", 40)
    fake_yt.latency = 0.15
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v], keys=v)
    db = str(tmp_path / "v.db")
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["--concurrency", "4"])
    c1 = consumer_factory(args, name="first")
    c1.wait_results(10, timeout=60)
    c1.kill()
    before = {x["video_id"] for x in c1.results()}
    assert 10 <= len(before) < 40
    c2 = consumer_factory(args, name="second")
    wait_for(lambda: {r["video_id"] for r in sqlite_rows(db)} == set(v), 90,
             what="all 40 videos in the database")
    rows = sqlite_rows(db)
    assert len(rows) == 40 and len({r["video_id"] for r in rows}) == 40
    assert all(r["status"] == "ok" for r in rows)
    # together the two runs reported every video (some twice: at-least-once)
    after = {x["video_id"] for x in c2.results()}
    assert before | after == set(v)
    wait_for(lambda: sum(committed(kafka, "g-" + topic, topic).values()) == 40, 30,
             what="all offsets committed")
    assert c2.stop() == 0


def test_sigterm_commits_and_nothing_is_processed_again(kafka, fake_yt, consumer_factory,
                                                        tmp_path):
    topic = kafka.new_topic("term")
    v = ids("term", 10)
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v])
    db = str(tmp_path / "v.db")
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db)
    c1 = consumer_factory(args, name="first")
    c1.wait_results(10)
    c1.signal(signal.SIGTERM)
    assert c1.wait(30) == 0
    assert "leaving the group" in c1.stderr()
    assert committed(kafka, "g-" + topic, topic) == {0: 10}

    seen = len(fake_yt.requests)
    extra = ids("term-late", 1)[0]
    c2 = consumer_factory(args, name="second")
    kafka.produce(topic, ["https://youtu.be/%s" % extra])
    c2.wait_results(1)
    time.sleep(2)
    assert [x["video_id"] for x in c2.results()] == [extra]
    assert all(extra in r["path"] for r in fake_yt.requests[seen:])
    assert c2.stop() == 0
    assert committed(kafka, "g-" + topic, topic) == {0: 11}


def test_sigterm_with_slow_fetches_in_flight(kafka, fake_yt, consumer_factory, tmp_path):
    """In-flight work is finished within the deadline; what was not started
    is not committed and comes back."""
    topic = kafka.new_topic("termslow")
    v = ids("termslow", 6)
    fake_yt.latency = 1.5
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v])
    db = str(tmp_path / "v.db")
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db,
                         extra=["--concurrency", "2", "--shutdown-timeout", "8000"])
    c1 = consumer_factory(args, name="first")
    wait_for(lambda: len(fake_yt.requests) >= 2, 30, what="first fetches")
    c1.signal(signal.SIGTERM)
    assert c1.wait(30) == 0
    done = [x["video_id"] for x in c1.results()]
    assert 1 <= len(done) < 6      # the two in flight were finished
    n = committed(kafka, "g-" + topic, topic).get(0, 0)
    assert n == len(done)          # in order, so these are the first ones
    assert done == v[:n] or sorted(done) == sorted(v[:n])
    fake_yt.latency = 0
    c2 = consumer_factory(args, name="second")
    rest = c2.wait_results(6 - n)
    assert sorted(x["video_id"] for x in rest) == sorted(v[n:])


def test_started_before_kafka_waits_then_processes(fake_yt, consumer_factory, tmp_path):
    k = Kafka(str(tmp_path / "late-kafka"))
    topic = "late-topic"
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(k, topic, fake_yt, "sqlite3:" + db,
                                       extra=["-X", "topic.metadata.refresh.interval.ms=1000",
                                              "-X", "reconnect.backoff.max.ms=1000"]))
    try:
        time.sleep(4)
        assert c.running(), c.stderr()[-2000:]
        k.start()
        k.create_topic(topic)
        vid = ids("late", 1)[0]
        k.produce(topic, ["https://youtu.be/%s" % vid])
        line = c.wait_results(1, timeout=90)[0]
        assert line["video_id"] == vid and line["status"] == "ok"
        assert c.stop() == 0
    finally:
        if c.running():
            c.kill()
        k.stop(bound=10)


def test_two_consumers_one_group_share_the_work(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("share", partitions=4)
    group = "g-" + topic
    db = str(tmp_path / "v.db")
    args = consumer_args(kafka, topic, fake_yt, "sqlite3:" + db, group=group)
    a = consumer_factory(args, name="a")
    b = consumer_factory(args, name="b")
    for c in (a, b):
        c.wait_log(r"YTC00407: assigned", timeout=60)
    # both in the group with two partitions each before anything is produced
    wait_for(lambda: a.stderr().count("YTC00407") + b.stderr().count("YTC00407") >= 4
             and "YTC00407" in b.stderr() and "YTC00407" in a.stderr(), 60,
             what="both consumers assigned")
    time.sleep(1)
    v = ids("share", 40)
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v], keys=v)
    wait_for(lambda: {x["video_id"] for x in a.results() + b.results()} == set(v), 90,
             what="all 40 videos processed")
    ra = {x["video_id"] for x in a.results()}
    rb = {x["video_id"] for x in b.results()}
    assert ra and rb, "one consumer did all the work"
    parts_a = {x["source"]["partition"] for x in a.results()}
    parts_b = {x["source"]["partition"] for x in b.results()}
    assert not (parts_a & parts_b)
    assert len(sqlite_rows(db)) == 40
    wait_for(lambda: sum(committed(kafka, group, topic).values()) == 40, 30)
    assert a.stop() == 0 and b.stop() == 0


def test_sigint_is_a_clean_stop_too(kafka, fake_yt, consumer_factory, tmp_path):
    topic = kafka.new_topic("int")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "none"))
    c.wait_log(r"YTC00407: assigned", timeout=60)
    c.signal(signal.SIGINT)
    assert c.wait(30) == 0
    err = c.stderr()
    assert "YTC00430: stopping" in err and "YTC00428: leaving the group" in err
