"""ytkafka-consumer while PostgreSQL is stopped under load: results wait,
intake pauses, nothing is dead-lettered, every video gets its row once the
database is back, each exactly once."""
import re
import time

from ytc_helpers import (consumer_args, consumer_factory, committed,  # noqa: F401
                         fake_yt, hold_outage, pg_rows, postgres,
                         produce_steadily, wait_for)
from ytfixtures import video_ids

DOWN_S = 30


def test_postgresql_stopped_under_load(kafka, fake_yt, postgres, consumer_factory):
    topic = kafka.new_topic("pgdown")
    dlq = topic + ".dlq"
    kafka.create_topic(dlq)
    v = video_ids("pgdown", 40)
    dsn = postgres.new_db("pgdown_" + topic[-10:].replace("-", "_"))
    name = dsn.rsplit("=", 1)[1]
    c = consumer_factory(consumer_args(kafka, topic, fake_yt, dsn))
    # the database's own errors while it is down are expected
    c.expect(r"YTC003\d\d")
    kafka.produce(topic, ["https://youtu.be/%s" % x for x in v[:10]])
    c.wait_results(10)
    postgres.stop()
    try:
        stopped = time.monotonic()
        produce_steadily(kafka, topic, v[10:], 10)
        c.wait_log(r"YTC00507: outage: database", timeout=30)
        # nothing finished and nothing dead-lettered while it is down
        hold_outage(c, kafka, dlq, stopped, DOWN_S, 10)
    finally:
        postgres.start_again()
    lines = c.wait_results(40, timeout=120)
    rows = wait_for(lambda: len(pg_rows(postgres, name)) == 40 and pg_rows(postgres, name),
                    60, what="40 rows")
    assert sorted(r["video_id"] for r in rows) == sorted(v)
    assert all(r["status"] == "ok" for r in rows)
    # each video once on stdout: nothing processed twice
    assert sorted(x["video_id"] for x in lines) == sorted(v)
    c.wait_log(r"YTC00508: outage over: database", timeout=30)
    assert len(re.findall(r"YTC00507:", c.stderr())) == 1
    assert c.stop() == 0
    assert committed(kafka, "g-" + topic, topic) == {0: 40}
    assert kafka.count(dlq) == 0
