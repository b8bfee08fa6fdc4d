"""mod_ytkafka's directives: good configs load, bad ones make httpd refuse
to start with a message that names the directive and says why."""
import pytest

from httpd import httpd_factory, send_config  # noqa: F401 (fixture)

BROKERS = "127.0.0.1:9"  # -t never connects


def _vhost_send(port, name="v.test", path="/send", inside=""):
    """A virtual host on @port serving ytkafka-send at @path."""
    return """<VirtualHost 127.0.0.1:%d>
    ServerName %s
    %s
    <Location %s>
        SetHandler ytkafka-send
    </Location>
</VirtualHost>
""" % (port, name, inside, path)


def test_minimal_config_is_valid(httpd_factory):
    h = httpd_factory()
    h.write_config(send_config(BROKERS))
    r = h.check()
    assert r.returncode == 0, r.stderr
    assert "Syntax OK" in r.stderr


def test_every_directive_in_its_places(httpd_factory):
    h = httpd_factory()
    h.write_config("""
YtKafkaBrokers 127.0.0.1:9,127.0.0.1:10
YtKafkaProperty linger.ms 20
YtKafkaProperty queue.buffering.max.messages 5000
YtKafkaFlushTimeout 3
YtKafkaTopic a.b_c-d
YtKafkaAck queued
YtKafkaAckTimeout 1500ms
YtKafkaMaxBody 1024
YtKafkaMaxLinks 3
<Location /send>
    SetHandler ytkafka-send
    YtKafkaTopic other
    YtKafkaAck delivered
    YtKafkaAckTimeout 2
    YtKafkaMaxBody 2048
    YtKafkaMaxLinks 5
</Location>
""" + _vhost_send(h.port, "vhost.test", "/v", "YtKafkaProperty linger.ms 1"))
    r = h.check()
    assert r.returncode == 0, r.stderr


BAD = [
    # (config line(s), what the message must say)
    ("YtKafkaAck sometimes", "YtKafkaAck: must be 'delivered' or 'queued'"),
    ("YtKafkaAckTimeout 0", "YtKafkaAckTimeout: needs a number of seconds > 0"),
    ("YtKafkaAckTimeout soon", "YtKafkaAckTimeout: needs a number of seconds"),
    ("YtKafkaFlushTimeout -1", "YtKafkaFlushTimeout: needs a number of seconds >= 0"),
    ("YtKafkaFlushTimeout 99999", "YtKafkaFlushTimeout: is limited to 3600 seconds"),
    ("YtKafkaMaxBody 0", "YtKafkaMaxBody: needs a number of bytes"),
    ("YtKafkaMaxBody 12k", "YtKafkaMaxBody: needs a number of bytes"),
    ("YtKafkaMaxLinks 0", "YtKafkaMaxLinks: needs a number from 1 to 10000"),
    ("YtKafkaMaxLinks many", "YtKafkaMaxLinks: needs a number from 1 to 10000"),
    ("YtKafkaTopic bad/topic", "YtKafkaTopic: a topic name has only [A-Za-z0-9._-]"),
    ("YtKafkaTopic ..", "YtKafkaTopic: needs a Kafka topic name"),
    ("YtKafkaBrokers \"a:1, b:2\"", "YtKafkaBrokers: a comma separated list"),
    ("YtKafkaProperty no.such.property 1",
     "YtKafkaProperty no.such.property 1: No such configuration property"),
    ("YtKafkaProperty linger.ms soon", "YtKafkaProperty linger.ms soon: Invalid value"),
    ("YtKafkaProperty compression.type zip",
     "YtKafkaProperty compression.type zip: Invalid value"),
    ("YtKafkaProperty bootstrap.servers x:1",
     "YtKafkaProperty: set 'bootstrap.servers' with YtKafkaBrokers"),
    ("YtKafkaProperty linger.ms", "YtKafkaProperty takes two arguments"),
    # Only rd_kafka_new() sees that these two properties contradict each other.
    ("YtKafkaProperty acks 1",
     "YtKafkaProperty: the producer configuration is inconsistent"),
    ("<Location /x>\nYtKafkaBrokers 127.0.0.1:9\n</Location>",
     "YtKafkaBrokers not allowed in <Location> context"),
    ("<Location /x>\nYtKafkaProperty linger.ms 1\n</Location>",
     "YtKafkaProperty not allowed in <Location> context"),
]


@pytest.mark.parametrize("line,message", BAD, ids=[b[0].split("\n")[-2 if "\n" in b[0] else 0]
                                                   .split()[0] + "-%d" % i
                                                   for i, b in enumerate(BAD)])
def test_bad_directive_fails_config_test(httpd_factory, line, message):
    h = httpd_factory()
    h.write_config(send_config(BROKERS, extra=line))
    r = h.check()
    assert r.returncode != 0, "apache2 -t accepted: %s" % line
    assert message in r.stderr, r.stderr
    # httpd itself refuses to start with it, too.
    with pytest.raises(RuntimeError):
        h.start()


def test_missing_brokers_where_send_is_used(httpd_factory):
    h = httpd_factory()
    h.write_config("<Location /send>\n    SetHandler ytkafka-send\n</Location>\n")
    r = h.check()
    assert r.returncode != 0
    assert "YtKafkaBrokers: not set for server" in r.stderr, r.stderr
    assert "ytkafka-send handler (%s:" % h.conf in r.stderr, r.stderr


def test_missing_brokers_in_vhost_using_send(httpd_factory):
    h = httpd_factory()
    h.write_config(_vhost_send(h.port))
    r = h.check()
    assert r.returncode != 0
    assert "YtKafkaBrokers: not set for server v.test" in r.stderr, r.stderr


def test_vhost_inherits_brokers(httpd_factory):
    h = httpd_factory()
    h.write_config("YtKafkaBrokers 127.0.0.1:9\n" + _vhost_send(h.port))
    r = h.check()
    assert r.returncode == 0, r.stderr


def test_status_needs_no_brokers(httpd_factory):
    h = httpd_factory()
    h.write_config("<Location /status>\n    SetHandler ytkafka-status\n</Location>\n")
    assert h.check().returncode == 0
    h.start()
    r = h.get("/status")
    assert r.status == 200
    st = r.json()
    assert st["brokers"]["state"] == "none"
    assert st["brokers"]["producers"] == 0
    assert st["children"] >= 1
    r = h.request("POST", "/status", body="x")
    assert r.status == 405
    assert "GET" in r.headers.get("allow", "")
    assert h.get("/status?format=xml").status == 400


def test_consumer_property_warns_at_config_test(httpd_factory):
    """librdkafka's own configuration warnings surface at apache2 -t."""
    h = httpd_factory()
    h.write_config(send_config(BROKERS, extra="YtKafkaProperty fetch.min.bytes 10"))
    r = h.check()
    assert r.returncode == 0, r.stderr
    assert "YTK00101" in r.stderr and "fetch.min.bytes" in r.stderr, r.stderr
