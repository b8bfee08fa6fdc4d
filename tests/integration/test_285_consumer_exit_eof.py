"""ytkafka-consumer -e: a partition is at its end once the consumer's
position reaches the high watermark of its last Fetch response
(docs/ARCHITECTURE.md 7.11).

librdkafka reports a partition's end only in the answer to one more Fetch,
and a broker holds a Fetch of partitions with nothing new for up to
fetch.wait.max.ms. With the prefetch queue capped, that Fetch starts only
when the consumer has taken the last message, so -e used to wait for it
after the backlog was done. Here fetch.wait.max.ms is 50 s and the consumer
must exit well within it (the wait is bounded at 40 s: waiting for the held
Fetch would fail the test); every message is taken once and committed.
No timing is asserted beyond that bound."""
import subprocess

from ytc_helpers import committed, consumer_factory  # noqa: F401

HELD_MS = 50000


def produce_to(kafka, topic, partition, values):
    data = "".join(v + "\n" for v in values).encode()
    subprocess.run(["kcat", "-b", kafka.bootstrap, "-P", "-t", topic,
                    "-p", str(partition)], input=data, check=True, timeout=120)


def test_exit_at_the_last_fetchs_high_watermark(kafka, consumer_factory):
    topic = kafka.new_topic("eofhw", partitions=4)
    # every partition holds messages: a Fetch of an empty one alone would
    # be held too, and the offset lookups of the others queue behind it on
    # the same connection (ytc_kafka.c, fetch.wait.max.ms)
    n = 0
    for p in range(4):
        values = ["https://youtu.be/eofhw%05d" % (p * 1000 + i)
                  for i in range(500 * (p + 1))]
        produce_to(kafka, topic, p, values)
        n += len(values)
    group = "g-" + topic
    c = consumer_factory(["-b", kafka.bootstrap, "-t", topic, "-G", group,
                          "--db", "none", "--no-fetch", "-e", "-vv",
                          "-X", "fetch.wait.max.ms=%d" % HELD_MS])
    assert c.wait(40) == 0
    err = c.stderr()
    assert "all partitions at end, %d message(s) done" % n in err, err[-2000:]
    # at least the partition(s) whose last messages came in the last Fetch
    # ended by their high watermark (the others may have been reported by
    # librdkafka in a later answer)
    ends = [p for p in range(4)
            if "%s [%d] at its end: offset %d" % (topic, p, 500 * (p + 1)) in err]
    assert ends, err[-3000:]
    offs = committed(kafka, group, topic)
    assert offs == {0: 500, 1: 1000, 2: 1500, 3: 2000}, offs


def test_new_messages_after_an_end_are_taken(kafka, consumer_factory):
    """A partition at its end that gets a message again is not at its end:
    a consumer without -e takes what comes after, then -e at the new end."""
    topic = kafka.new_topic("eofmore", partitions=1)
    produce_to(kafka, topic, 0, ["https://youtu.be/eofmore%04d" % i for i in range(300)])
    group = "g-" + topic
    args = ["-b", kafka.bootstrap, "-t", topic, "-G", group, "--db", "none",
            "--no-fetch", "-e", "-vv", "-X", "fetch.wait.max.ms=%d" % HELD_MS]
    c = consumer_factory(args, name="first")
    assert c.wait(40) == 0
    assert "all partitions at end, 300 message(s) done" in c.stderr()
    produce_to(kafka, topic, 0, ["https://youtu.be/eofmorx%04d" % i for i in range(200)])
    c2 = consumer_factory(args, name="second")
    assert c2.wait(40) == 0
    err = c2.stderr()
    assert "all partitions at end, 200 message(s) done" in err, err[-2000:]
    assert "%s [0] at its end: offset 500" % topic in err, err[-2000:]
    assert committed(kafka, group, topic) == {0: 500}
