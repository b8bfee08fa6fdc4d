"""The DLQ topic does not exist and the broker will not create it: the bad
message is not committed (nor anything after it); once the topic exists its
DLQ record appears and the offset moves."""
import json

import pytest

from ytc_helpers import (consumer_args, consumer_factory, committed, fake_yt,  # noqa: F401
                         wait_for)
import ytfixtures


@pytest.fixture
def noauto_kafka(monkeypatch, kafka_factory):
    """A broker of the test's own that never creates a topic by itself."""
    monkeypatch.setenv("YTK_KAFKA_AUTO_CREATE", "false")
    return kafka_factory()


def test_dlq_topic_missing_holds_the_offset(noauto_kafka, fake_yt, consumer_factory,
                                            tmp_path):
    k = noauto_kafka
    topic = k.create_topic("noauto-links")
    dlq = topic + ".dlq"
    good = ytfixtures.video_id(0, "noauto")
    k.produce(topic, ["{not json", "https://youtu.be/%s" % good])
    c = consumer_factory(consumer_args(
        k, topic, fake_yt, "sqlite3:" + str(tmp_path / "v.db"),
        extra=["-X", "topic.metadata.propagation.max.ms=1000"]))
    c.expect(r"rdkafka")
    c.wait_results(1)
    c.wait_log(r"YTC00503: outage: records to %s not stored" % dlq, timeout=90)
    # the good video after it is done, but nothing is committed past the
    # message whose dead letter is not stored
    assert committed(k, "g-" + topic, topic).get(0, 0) == 0
    k.create_topic(dlq)
    c.wait_log(r"YTC00505: outage over", timeout=120)
    recs = k.consume(dlq, 1, timeout=60)
    assert len(recs) == 1
    assert json.loads(recs[0]["value"])["original"]["value"] == "{not json"
    wait_for(lambda: committed(k, "g-" + topic, topic) == {0: 2}, 60,
             what="offsets committed once the DLQ record is stored")
    assert c.stop() == 0
    assert k.count(dlq) == 1


def test_sigterm_with_dead_letters_queued_commits_nothing_unstored(
        noauto_kafka, fake_yt, consumer_factory, tmp_path):
    k = noauto_kafka
    topic = k.create_topic("noauto-term")
    dlq = topic + ".dlq"
    good = ytfixtures.video_ids("noterm", 3)
    k.produce(topic, ["https://youtu.be/%s" % good[0], "{not json"]
              + ["https://youtu.be/%s" % g for g in good[1:]])
    args = consumer_args(k, topic, fake_yt, "sqlite3:" + str(tmp_path / "v.db"),
                         extra=["-X", "topic.metadata.propagation.max.ms=1000"])
    c1 = consumer_factory(args, name="first")
    c1.expect(r"rdkafka")
    c1.wait_results(3)
    c1.wait_log(r"YTC00503: outage: records to %s not stored" % dlq, timeout=90)
    assert c1.stop() == 0
    # the message before the dead letter is stored; nothing from it on
    assert committed(k, "g-" + topic, topic) == {0: 1}

    k.create_topic(dlq)
    c2 = consumer_factory(args, name="second")
    c2.expect(r"rdkafka")
    wait_for(lambda: committed(k, "g-" + topic, topic) == {0: 4}, 90,
             what="offsets committed once the DLQ record is stored")
    recs = k.consume(dlq, 1, timeout=60)
    assert [json.loads(r["value"])["original"]["value"] for r in recs] == ["{not json"]
    # the videos after the bad message were done again by the second
    # consumer (at-least-once), not lost
    assert sorted(x["video_id"] for x in c2.wait_results(2)) == sorted(good[1:])
    assert c2.stop() == 0
    assert k.count(dlq) == 1
