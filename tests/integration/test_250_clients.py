"""The clients this topic already has read what mod_ytkafka writes, and
write what ytkafka-consumer reads: kafka-python and kafkajs as their users
install them (no codec extras), against a real broker and a real httpd.

The producer's default leaves batches uncompressed, which is what lets these
clients read them (docs/ARCHITECTURE.md, "No compression by default"); a
YtKafkaProperty compression.type changes the stored batches, and lz4 is
what those clients then cannot read.
"""
import pytest

from clients import kafka_python, kafkajs  # noqa: F401
from httpd import BROKER_STARTING, httpd_factory, send_config  # noqa: F401
from ytc_helpers import (consumer_args, consumer_factory, fake_yt,  # noqa: F401
                         sqlite_rows, wait_for)
from ytfixtures import video_ids as ids

# Submitted forms and the canonical link each must become.
FORMS = [
    ("https://youtu.be/%s?si=share", "https://www.youtube.com/watch?v=%s"),
    ("https://www.youtube.com/shorts/%s", "https://www.youtube.com/watch?v=%s"),
    ("  https://m.youtube.com/watch?v=%s&t=42  ", "https://www.youtube.com/watch?v=%s"),
    ("youtube.com/embed/%s", "https://www.youtube.com/watch?v=%s"),
]


def module_server(httpd_factory, kafka, topic, extra=""):
    h = httpd_factory(mpm="event")
    h.expected = list(BROKER_STARTING)
    h.write_config(send_config(kafka.bootstrap, topic=topic, extra=extra))
    h.start()
    return h


def post_forms(h, vids):
    """POST every video in every form (single and array bodies); returns the
    {video_id: (canonical link, request_id)} of every delivered record."""
    want = {}
    for i, vid in enumerate(vids):
        form, canon = FORMS[i % len(FORMS)]
        body = {"links": form % vid} if i % 2 else {"links": [form % vid]}
        r = h.post_json("/send", body)
        assert r.status == 201, r
        want[vid] = (canon % vid, r.json()["request_id"])
    return want


def assert_read_all(run, want):
    assert run.returncode == 0, run
    got = {rec["key"]: rec for rec in run.records}
    assert len(run.records) == len(want) and set(got) == set(want), run
    for vid, (canon, rid) in want.items():
        rec = got[vid]
        assert rec["links"] == canon, rec
        assert rec["value"]["video_id"] == vid
        assert rec["headers"]["request-id"] == rid
        assert rec["headers"]["content-type"] == "application/json"


def test_clients_have_no_codec_extras(kafka_python):
    # The premise of the default: a plain `pip install kafka-python`.
    assert kafka_python.has("kafka")
    assert not kafka_python.has("lz4") and not kafka_python.has("zstandard")


def test_default_batches_are_uncompressed(kafka, httpd_factory):
    topic = kafka.new_topic("codec-default")
    h = module_server(httpd_factory, kafka, topic)
    for vid in ids("codec-default", 3):
        assert h.post_json("/send", {"links": "https://youtu.be/" + vid}).status == 201
    codecs = kafka.batch_codecs(topic)
    assert codecs and set(codecs) == {"none"}, codecs


@pytest.mark.parametrize("client,tag", [("kafka_python", "kp"), ("kafkajs", "kjs")],
                         ids=["kafka-python-group-consumer",
                              "kafkajs-eachMessage-consumer"])
def test_client_reads_every_record(kafka, httpd_factory, request, client, tag):
    consumer = request.getfixturevalue(client)
    topic = kafka.new_topic(tag + "-read", partitions=3)
    h = module_server(httpd_factory, kafka, topic)
    want = post_forms(h, ids(tag + "-read", 8))
    run = consumer.consume(kafka.bootstrap, topic, tag + "-" + topic, len(want))
    assert_read_all(run, want)


def test_gzip_is_read_by_both_clients(kafka, httpd_factory, kafka_python, kafkajs):
    topic = kafka.new_topic("codec-gzip")
    h = module_server(httpd_factory, kafka, topic,
                      extra="YtKafkaProperty compression.type gzip")
    want = post_forms(h, ids("codec-gzip", 3))
    assert set(kafka.batch_codecs(topic)) == {"gzip"}
    assert_read_all(kafka_python.consume(kafka.bootstrap, topic, "kp-" + topic, 3), want)
    assert_read_all(kafkajs.consume(kafka.bootstrap, topic, "kjs-" + topic, 3), want)


def test_lz4_property_compresses_and_breaks_these_clients(kafka, httpd_factory,
                                                          kafka_python, kafkajs):
    """What an operator who turns lz4 on must know about such consumers."""
    topic = kafka.new_topic("codec-lz4")
    h = module_server(httpd_factory, kafka, topic,
                      extra="YtKafkaProperty compression.type lz4")
    post_forms(h, ids("codec-lz4", 2))
    assert set(kafka.batch_codecs(topic)) == {"lz4"}
    kp = kafka_python.consume(kafka.bootstrap, topic, "kp-" + topic, 2, timeout=30)
    assert kp.returncode != 0 and not kp.records, kp
    assert "UnsupportedCodecError" in kp.stderr and "lz4" in kp.stderr, kp
    kjs = kafkajs.consume(kafka.bootstrap, topic, "kjs-" + topic, 2, timeout=30)
    assert kjs.returncode == 3 and not kjs.records, kjs
    assert "KafkaJSNotImplemented" in kjs.stderr and "LZ4" in kjs.stderr, kjs


def test_kafkajs_producer_feeds_the_consumer_to_ok_rows(kafka, kafkajs, fake_yt,
                                                        consumer_factory, tmp_path):
    """The replaced NestJS producer's {"links": url} records, as they are."""
    topic = kafka.new_topic("kjs-produce")
    vids = ids("kjs-produce", 3)
    facts = {vid: fake_yt.video(vid) for vid in vids}
    sent = kafkajs.produce(kafka.bootstrap, topic,
                           [{"links": "https://youtu.be/" + vid} for vid in vids])
    assert len(sent.records) == 3
    db = str(tmp_path / "v.db")
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, "sqlite3:" + db))
    lines = c.wait_results(3)
    assert {x["video_id"]: x["status"] for x in lines} == {v: "ok" for v in vids}
    rows = wait_for(lambda: len(sqlite_rows(db)) == 3 and sqlite_rows(db), 30,
                    what="three rows")
    for row in rows:
        f = facts[row["video_id"]]
        assert (row["status"], row["title"], row["author_name"]) == \
            ("ok", f["title"], f["author_name"])
    assert c.stop() == 0
