"""The broker harness itself: records round-trip through Kafka's own tools."""


def test_roundtrip_with_console_tools(kafka):
    topic = kafka.new_topic("harness", partitions=2)
    kafka.produce(topic, ['{"a": 1}', "plain text"], keys=["k1", "k2"])
    recs = kafka.consume(topic, 2, timeout=20)
    assert sorted(r["key"] for r in recs) == ["k1", "k2"]
    assert {r["key"]: r["value"] for r in recs} == {"k1": '{"a": 1}',
                                                   "k2": "plain text"}
    assert kafka.count(topic) == 2


def test_restart_keeps_data(kafka_factory):
    k = kafka_factory()
    topic = k.new_topic("restart")
    k.produce(topic, ["before"])
    k.kill()
    assert not k.running()
    k.start()
    k.produce(topic, ["after"])
    assert [r["value"] for r in k.consume(topic, 2, timeout=20)] == ["before", "after"]
