"""ytkafka-send against a real broker: every status of docs/ARCHITECTURE.md
(3.5), the record as Kafka's own console consumer reads it back, and the
status counters."""
import json
import re
import shutil
import time

import pytest

from httpd import (VIDEO, BROKER_STARTING, Httpd, httpd_factory,  # noqa: F401
                   new_workdir, send_config)

URL = "https://youtu.be/" + VIDEO
ID_RX = re.compile(r"^[A-Za-z0-9@_-]{16,64}$")


@pytest.fixture(scope="module")
def shared_server(kafka):
    """One event-MPM httpd for the module, producing to a topic of its own."""
    topic = kafka.new_topic("send")
    h = Httpd(new_workdir("httpd-send"), mpm="event")
    h.topic = topic
    h.write_config(send_config(kafka.bootstrap, topic, extra="""
<Location /small>
    SetHandler ytkafka-send
    YtKafkaMaxBody 100
    YtKafkaMaxLinks 2
</Location>"""))
    h.start()
    yield h
    h.stop()
    shutil.rmtree(h.dir, ignore_errors=True)


@pytest.fixture
def server(shared_server, kafka):
    """The shared httpd; the error log must stay clean during each test, and
    .produced() tells how many records this test added to the topic."""
    h = shared_server
    h.mark_log()
    h.expected = list(BROKER_STARTING)
    h.start_counts = h.get("/status").json()["messages"]
    h.produced = lambda: (h.get("/status").json()["messages"]["produced"]
                          - h.start_counts["produced"])
    yield h
    bad = h.unexpected_log_lines()
    assert not bad, "unexpected error log lines:\n" + "\n".join(bad)


def assert_error(r, status, code):
    assert r.status == status, r
    body = r.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert body["request_id"] == r.headers["x-request-id"]
    assert r.headers["content-type"].startswith("application/json")
    return body


def test_201_delivered_record_read_back(server, kafka):
    r = server.post_json("/send", {"links": URL})
    assert r.status == 201, r
    body = r.json()
    rid = r.headers["x-request-id"]
    assert ID_RX.match(rid) and body["request_id"] == rid
    assert body["status"] == "delivered" and body["topic"] == server.topic
    [link] = body["links"]
    assert link["status"] == "delivered" and link["video_id"] == VIDEO
    assert link["url"] == URL and link["topic"] == server.topic

    recs = kafka.consume(server.topic, link["offset"] + 1)
    [rec] = [x for x in recs if x["offset"] == link["offset"]]
    assert rec["key"] == VIDEO
    assert rec["partition"] == link["partition"] == 0
    assert rec["headers"] == {"request-id": rid, "content-type": "application/json"}
    value = json.loads(rec["value"])
    assert value["links"] == "https://www.youtube.com/watch?v=" + VIDEO
    assert value["video_id"] == VIDEO
    assert value["url"] == URL
    assert value["request_id"] == rid
    assert value["source"] == "mod_ytkafka/0.1.0"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", value["received_at"])


def test_201_partition_and_offset_per_link(httpd_factory, kafka):
    topic = kafka.new_topic("multi", partitions=3)
    h = httpd_factory()
    h.expect_log(*BROKER_STARTING)
    h.write_config(send_config(kafka.bootstrap, topic))
    h.start()
    ids = ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc", "ddddddddddd",
           "eeeeeeeeeee", "fffffffffff"]
    urls = ["https://www.youtube.com/watch?v=" + i for i in ids]
    r = h.post_json("/send", {"links": urls})
    assert r.status == 201, r
    links = r.json()["links"]
    assert [l["video_id"] for l in links] == ids
    recs = kafka.consume(topic, len(ids))
    got = {(x["partition"], x["offset"]): x["key"] for x in recs}
    for l in links:
        assert got[(l["partition"], l["offset"])] == l["video_id"]


def test_201_form_body_and_link_field(server, kafka):
    r = server.request("POST", "/send",
                       body="links=" + "https%3A%2F%2Fm.youtube.com%2Fshorts%2F" + VIDEO
                            + "&other=1&links=youtu.be%2F" + VIDEO,
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 201, r
    assert [l["url"] for l in r.json()["links"]] == [
        "https://m.youtube.com/shorts/" + VIDEO, "youtu.be/" + VIDEO]
    r = server.post_json("/send", {"link": URL},
                         headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert r.status == 201, r
    assert server.produced() == 3


def test_non_utf8_bytes_are_percent_encoded_in_answer_and_record(server, kafka):
    # %FF decodes to a byte that is not UTF-8; the answer must stay JSON.
    r = server.request("POST", "/send",
                       body="links=https%3A%2F%2Fyoutu.be%2F" + VIDEO + "%3Ft%3D%FF"
                            + "&links=https%3A%2F%2Fev%FFil.example%2F",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 207, r
    links = r.json()["links"]
    assert [l["url"] for l in links] == ["https://youtu.be/%s?t=%%FF" % VIDEO,
                                         "https://ev%FFil.example/"]
    assert [l["status"] for l in links] == ["delivered", "rejected"]
    rec = [x for x in kafka.consume(server.topic, kafka.count(server.topic), timeout=20)
           if json.loads(x["value"])["request_id"] == r.json()["request_id"]]
    assert len(rec) == 1
    assert json.loads(rec[0]["value"])["url"] == "https://youtu.be/%s?t=%%FF" % VIDEO


def test_202_queued(server, kafka):
    r = server.post_json("/queued", {"links": [URL, URL]})
    assert r.status == 202, r
    body = r.json()
    assert body["status"] == "queued"
    assert [l["status"] for l in body["links"]] == ["queued", "queued"]
    assert "offset" not in body["links"][0]
    n = kafka.count(server.topic)
    recs = [x for x in kafka.consume(server.topic, n)
            if x["headers"]["request-id"] == body["request_id"]]
    assert [x["key"] for x in recs] == [VIDEO, VIDEO]


def test_207_mixed(server, kafka):
    bad = "https://youtube.com.evil.example/watch?v=" + VIDEO
    r = server.post_json("/send", {"links": [URL, bad]})
    assert r.status == 207, r
    body = r.json()
    assert body["status"] == "partial"
    ok, rejected = body["links"]
    assert ok["status"] == "delivered" and ok["http_status"] == 201
    assert rejected["status"] == "rejected" and rejected["http_status"] == 422
    assert rejected["error"]["code"] == "bad_host" and rejected["url"] == bad
    assert server.produced() == 1


@pytest.mark.parametrize("body,code", [
    ("{not json", "bad_json"),
    ('{"url_list": ["x"]}', "no_field"),
    ('{"links": 42}', "bad_type"),
    ('{"links": []}', "empty"),
    ("", "bad_json"),
])
def test_400_bad_body(server, kafka, body, code):
    r = server.post_json("/send", body)
    assert_error(r, 400, code)
    assert server.produced() == 0


def test_400_empty_form(server):
    r = server.request("POST", "/send", body="",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400, r


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_405_not_post(server, method):
    r = server.request(method, "/send")
    assert r.status == 405, r
    assert r.headers["allow"] == "POST"
    assert r.headers["x-request-id"]
    if method != "HEAD":
        assert_error(r, 405, "method_not_allowed")


def test_413_body_too_large(server, kafka):
    big = json.dumps({"links": URL + " " * 200})
    r = server.post_json("/small", big)
    assert_error(r, 413, "too_large")
    # Without Content-Length, the limit holds while reading the chunks.
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c)
                       for c in (big[:50].encode(), big[50:].encode(), b""))
    r = server.request("POST", "/small", body=chunked,
                       headers={"Content-Type": "application/json",
                                "Transfer-Encoding": "chunked"})
    assert_error(r, 413, "too_large")
    assert server.produced() == 0


def test_413_too_many_links(server, kafka):
    r = server.post_json("/small", {"links": ["youtu.be/" + VIDEO] * 3})
    body = assert_error(r, 413, "too_large")
    assert "YtKafkaMaxLinks" in body["error"]["message"]
    assert server.post_json("/small", {"links": ["youtu.be/" + VIDEO] * 2}).status == 201


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/jsonx",
                                   "multipart/form-data; boundary=x"])
def test_415_media_type(server, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = server.request("POST", "/send", body=json.dumps({"links": URL}), headers=headers)
    assert_error(r, 415, "unsupported_media_type")


def test_422_no_valid_link(server, kafka):
    bad = ["https://youtube.com.evil.example/watch?v=" + VIDEO,
           "https://evil.example/youtube.com/watch?v=" + VIDEO,
           "https://youtube.com@evil.example/watch?v=" + VIDEO,
           "https://www.youtube.com:8443/watch?v=" + VIDEO,
           "javascript:alert(1)",
           "https://www.youtube.com/watch?v=short",
           "https://www.youtube.com/playlist?list=PL123",
           "   ",
           "x" * 5000]
    r = server.post_json("/send", {"links": bad})
    body = assert_error(r, 422, "no_valid_links")
    codes = [l["error"]["code"] for l in body["links"]]
    assert codes[:4] == ["bad_host", "bad_host", "userinfo", "bad_port"]
    assert all(l["status"] == "rejected" for l in body["links"])
    assert server.produced() == 0


def test_503_queue_full(httpd_factory, kafka):
    """A queue of one message that lingers: the second request finds it full."""
    topic = kafka.new_topic("full")
    h = httpd_factory()
    h.expect_log(*BROKER_STARTING)
    h.write_config("StartServers 1\nServerLimit 1\nMaxRequestWorkers 25\n"
                   "MinSpareThreads 1\nMaxSpareThreads 25\n"
                   + send_config(kafka.bootstrap, topic,
                                 extra="YtKafkaProperty queue.buffering.max.messages 1\n"
                                       "YtKafkaProperty linger.ms 3000"))
    h.start()
    r1 = h.post_json("/queued", {"links": URL})
    assert r1.status == 202, r1
    r2 = h.post_json("/queued", {"links": URL})
    assert_error(r2, 503, "queue_full")
    assert r2.headers["retry-after"] == "1"
    assert r2.json()["links"][0]["status"] == "failed"
    # The first one still arrives; the refused one never does.
    assert len(kafka.consume(topic, 1, timeout=10)) == 1
    assert kafka.count(topic) == 1


def test_request_id_from_mod_unique_id(httpd_factory, kafka):
    topic = kafka.new_topic("uid")
    h = httpd_factory(modules=["unique_id"])
    h.expect_log(*BROKER_STARTING)
    h.write_config(send_config(kafka.bootstrap, topic))
    h.start()
    r1 = h.post_json("/send", {"links": URL})
    r2 = h.post_json("/send", {"links": URL})
    assert r1.status == r2.status == 201
    ids = [r1.headers["x-request-id"], r2.headers["x-request-id"]]
    assert ids[0] != ids[1]
    # mod_unique_id's ids are 27 characters of its own alphabet.
    assert all(re.match(r"^[A-Za-z0-9@_-]{27}$", i) for i in ids), ids
    recs = kafka.consume(topic, 2)
    assert sorted(x["headers"]["request-id"] for x in recs) == sorted(ids)


def test_status_counters(server):
    def st():
        r = server.get("/status")
        assert r.status == 200 and r.headers["content-type"] == "application/json"
        return r.json()

    before = st()
    server.post_json("/send", {"links": URL})
    server.post_json("/queued", {"links": URL})
    server.post_json("/send", {"links": [URL, "https://evil.example/"]})
    server.post_json("/send", "{")
    server.get("/send")
    server.post_json("/send", {"links": "https://youtube.com@evil.example/watch?v=" + VIDEO})
    time.sleep(0.5)
    after = st()

    def d(*path):
        a, b = after, before
        for p in path:
            a, b = a[p], b[p]
        return a - b

    for code, n in (("201", 1), ("202", 1), ("207", 1), ("400", 1), ("405", 1), ("422", 1)):
        assert d("requests", "by_status", code) == n, code
    assert d("requests", "total") == 6
    assert d("links", "accepted") == 3
    assert d("links", "rejected_by_reason", "bad_host") == 1
    assert d("links", "rejected_by_reason", "userinfo") == 1
    assert d("messages", "produced") == 3
    assert d("messages", "delivered") == 3
    assert after["brokers"]["state"] == "up"
    assert after["brokers"]["producers"] == after["children"] >= 1
    assert after["queue_depth"] == 0

    r = server.get("/status?format=prometheus")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.body.decode()
    assert re.search(r'^ytkafka_requests_total\{status="201"\} %d$'
                     % after["requests"]["by_status"]["201"], text, re.M)
    assert re.search(r"^ytkafka_messages_delivered_total %d$"
                     % after["messages"]["delivered"], text, re.M)
    assert re.search(r"^ytkafka_brokers_up 1$", text, re.M)
    assert "# TYPE ytkafka_queue_depth gauge" in text
