"""ytkafka-produce: any JSON event to Kafka, with the acknowledgements of
ytkafka-send. Real httpd, real Kafka; records read back with Kafka's console
consumer. The two shapes are the click log of a Django app and the trade
data of a NestJS app (its topic named in the body)."""
import json
import os
import signal

import pytest

from clients import kafkajs  # noqa: F401  (fixture)
from httpd import (BROKER_DOWN, BROKER_STARTING, httpd_factory,  # noqa: F401
                   send_config)


def _config(bootstrap, clicks, trade, extra=""):
    return """YtKafkaBrokers %(b)s
YtKafkaFlushTimeout 1
%(extra)s
<Location /clicks>
    SetHandler ytkafka-produce
    YtKafkaTopic %(clicks)s
    YtKafkaKeyField user_id
    YtKafkaRequireField user_id number
    YtKafkaRequireField page string
    YtKafkaHeaderFromRequest X-Source
    YtKafkaHeaderFromRequest X-Trace-Id trace
    YtKafkaMaxLinks 3
    YtKafkaMaxBody 2048
    YtKafkaAckTimeout 2
</Location>
<Location /clicks-queued>
    SetHandler ytkafka-produce
    YtKafkaTopic %(clicks)s
    YtKafkaAck queued
</Location>
<Location /trade>
    SetHandler ytkafka-produce
    YtKafkaTopic %(trade)s
    YtKafkaTopicField topic
    YtKafkaAllowTopic %(trade)s
    YtKafkaRequireField coinName string
</Location>
<Location /status>
    SetHandler ytkafka-status
</Location>
""" % dict(b=bootstrap, clicks=clicks, trade=trade, extra=extra)


@pytest.fixture
def setup(httpd_factory, kafka):
    clicks = kafka.new_topic("clicks")
    trade = kafka.new_topic("tradeData")
    h = httpd_factory()
    h.expect_log(*BROKER_STARTING)
    h.write_config(_config(kafka.bootstrap, clicks, trade))
    h.start()
    return h, kafka, clicks, trade


def test_click_log_is_one_record_with_key_and_headers(setup):
    h, k, clicks, _ = setup
    event = {"user_id": 7, "page": "/item/42", "ts": 1764630000.25}
    r = h.post_json("/clicks", event,
                    headers={"X-Source": "django", "X-Trace-Id": "t-1"})
    assert r.status == 201, r
    body = r.json()
    assert body["status"] == "delivered"
    rec = body["records"][0]
    assert rec["status"] == "delivered" and rec["topic"] == clicks
    assert rec["partition"] == 0 and rec["offset"] == 0
    assert body["request_id"] == r.headers["x-request-id"]
    got = k.consume(clicks, 2, timeout=10)
    assert len(got) == 1, got
    assert json.loads(got[0]["value"]) == event
    assert got[0]["value"] == '{"user_id":7,"page":"/item/42","ts":1764630000.25}'
    assert got[0]["key"] == "7"
    assert got[0]["headers"] == {"request-id": body["request_id"],
                                 "content-type": "application/json",
                                 "x-source": "django", "trace": "t-1"}


def test_trade_data_goes_to_the_topic_in_the_body(setup):
    h, k, _, trade = setup
    r = h.post_json("/trade", {"topic": trade, "coinName": "BTC",
                               "numOfCoin": 2, "price": 97000})
    assert r.status == 201, r
    assert r.json()["records"][0]["topic"] == trade
    got = k.consume(trade, 2, timeout=10)
    assert [json.loads(x["value"]) for x in got] == [
        {"coinName": "BTC", "numOfCoin": 2, "price": 97000}]
    assert got[0]["key"] is None


def test_trade_data_read_by_a_kafkajs_each_message_consumer(setup, kafkajs):
    """The trade-data system read its topic with kafkajs' eachMessage."""
    h, k, _, trade = setup
    sent = [{"topic": trade, "coinName": c, "numOfCoin": n, "price": p}
            for c, n, p in (("BTC", 2, 97000), ("ETH", 10, 3500.5), ("SOL", 1, 180))]
    for ev in sent:
        assert h.post_json("/trade", ev).status == 201
    run = kafkajs.consume(k.bootstrap, trade, "kjs-" + trade, len(sent))
    assert run.returncode == 0, run
    got = [rec["value"] for rec in run.records]
    assert got == [{kk: v for kk, v in ev.items() if kk != "topic"} for ev in sent], run


def test_topic_outside_the_allow_list_is_refused(setup):
    h, k, _, trade = setup
    r = h.post_json("/trade", {"topic": "orders", "coinName": "BTC"})
    assert r.status == 403, r
    err = r.json()["error"]
    assert err["code"] == "topic_not_allowed" and '"orders"' in err["message"]
    assert "orders" not in k.topics()


def test_batch_with_partial_rejection(setup):
    h, k, clicks, _ = setup
    batch = [{"user_id": 1, "page": "/a"}, {"page": "/b"},
             {"user_id": "3", "page": "/c"}]
    r = h.post_json("/clicks", batch)
    assert r.status == 207, r
    recs = r.json()["records"]
    assert [x["status"] for x in recs] == ["delivered", "rejected", "rejected"]
    assert recs[1]["http_status"] == 422
    assert recs[1]["error"]["code"] == "missing_field"
    assert '"user_id"' in recs[1]["error"]["message"]
    assert recs[2]["error"]["code"] == "wrong_type"
    got = k.consume(clicks, 3, timeout=10)
    assert [json.loads(x["value"]) for x in got] == [batch[0]]
    # All rejected: 422 naming the field, nothing produced.
    r = h.post_json("/clicks", [{"page": "/x"}])
    assert r.status == 422 and r.json()["error"]["code"] == "missing_field"
    # A batch all good, queued.
    r = h.post_json("/clicks-queued", [{"user_id": 9, "page": "/q"}] * 2)
    assert r.status == 202, r
    assert [x["status"] for x in r.json()["records"]] == ["queued"] * 2
    assert len(k.consume(clicks, 4, timeout=10)) == 3


@pytest.mark.parametrize("body,pos,why", [
    ('{"user_id": 7, "page": "/a",}', None, None),
    ('{"user_id": 7', 13, "unexpected end of the body"),
    ("{'user_id': 7}", None, None),
    ('{"user_id": 7} {"x": 1}', 15, "data after the JSON value"),
    ('{"page": "\xff"}', None, None),
    ("null", None, "not_an_object"),
    ('{"a": NaN}', None, None),
])
def test_400_for_what_is_not_strict_json(setup, body, pos, why):
    h, k, clicks, _ = setup
    r = h.post_json("/clicks", body.encode("latin-1"))
    assert r.status == 400, r
    err = r.json()["error"]
    if why == "not_an_object":
        assert err["code"] == why
        return
    assert err["code"] == "invalid_json"
    assert "at byte " in err["message"]
    if pos is not None:
        assert "at byte %d" % pos in err["message"]
    if why:
        assert why in err["message"]


def test_every_other_error_status(setup):
    h, k, clicks, _ = setup
    assert h.post_json("/clicks", "[1, 2]").status == 422
    r = h.post_json("/clicks", '"just a string"')
    assert r.status == 400 and r.json()["error"]["code"] == "not_an_object"
    r = h.post_json("/clicks", "[]")
    assert r.status == 400 and r.json()["error"]["code"] == "empty_batch"
    r = h.request("POST", "/clicks", body="user_id=7",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415, r
    r = h.get("/clicks")
    assert r.status == 405 and r.headers["allow"] == "POST"
    r = h.post_json("/clicks", [{"user_id": 1, "page": "/a"}] * 4)
    assert r.status == 413 and "YtKafkaMaxLinks" in r.json()["error"]["message"]
    r = h.post_json("/clicks", {"user_id": 1, "page": "x" * 3000})
    assert r.status == 413 and "YtKafkaMaxBody" in r.json()["error"]["message"]
    r = h.post_json("/clicks", {"user_id": [1], "page": "/a"})
    assert r.status == 422
    assert k.consume(clicks, 1, timeout=5) == []


def test_broker_down_503_and_frozen_504(httpd_factory, kafka_factory):
    k = kafka_factory()
    clicks = k.new_topic("clicks")
    h = httpd_factory()
    h.expect_log(*BROKER_DOWN)
    h.write_config(_config(k.bootstrap, clicks, clicks))
    h.start()
    event = {"user_id": 7, "page": "/item/42"}
    assert h.post_json("/clicks", event).status == 201
    with open(os.path.join(k.dir, "kafka.pid")) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGSTOP)
    try:
        r = h.post_json("/clicks", event, timeout=30)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.status == 504, r
    assert r.json()["records"][0]["status"] == "unknown"
    assert r.json()["error"]["code"] == "timed_out"
    k.stop()
    assert h.wait_log(r"YTK00203: all Kafka brokers are down", bound=30)
    r = h.post_json("/clicks", event)
    assert r.status == 503, r
    assert r.json()["error"]["code"] == "brokers_down"
    assert r.headers["retry-after"].isdigit()


@pytest.mark.parametrize("conf,needle", [
    ("YtKafkaTopicField topic", "YtKafkaTopicField: needs YtKafkaAllowTopic"),
    ("YtKafkaRequireField a text", "YtKafkaRequireField: the type must be"),
    ("YtKafkaAllowTopic bad/topic", "YtKafkaAllowTopic: needs Kafka topic"),
    ("YtKafkaHeaderFromRequest X-A request-id", "YtKafkaHeaderFromRequest:"),
    ("YtKafkaKeyField", "YtKafkaKeyField takes one argument"),
])
def test_bad_directives_fail_at_config_test(httpd_factory, conf, needle):
    h = httpd_factory()
    h.write_config("""YtKafkaBrokers 127.0.0.1:9
<Location /p>
    SetHandler ytkafka-produce
    %s
</Location>
""" % conf)
    r = h.check()
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
