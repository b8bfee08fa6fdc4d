"""A kafka-python group consumer as its users write one.

usage: kp_consume.py BOOTSTRAP TOPIC GROUP N TIMEOUT_SECONDS
Prints one JSON line per record ("links" is message.value["links"] when the
value has it, so other JSON events can be read too); exits 0 after N records, 1 if fewer came
before the timeout; an exception (e.g. UnsupportedCodecError) ends it
with its traceback.
"""
import json
import sys
import time

from kafka import KafkaConsumer

bootstrap, topic, group, n, timeout = sys.argv[1:6]
n, timeout = int(n), float(timeout)

consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","),
                         group_id=group, auto_offset_reset="earliest",
                         value_deserializer=json.loads,
                         consumer_timeout_ms=1000)
got = 0
deadline = time.monotonic() + timeout
try:
    while got < n and time.monotonic() < deadline:
        for message in consumer:
            rec = {"partition": message.partition, "offset": message.offset,
                   "key": message.key.decode() if message.key is not None else None,
                   "headers": {k: v.decode() for k, v in message.headers},
                   "value": message.value}
            if isinstance(message.value, dict) and "links" in message.value:
                # What the replaced service read.
                rec["links"] = message.value["links"]
            print(json.dumps(rec), flush=True)
            got += 1
            if got >= n:
                break
finally:
    consumer.close()
sys.exit(0 if got >= n else 1)
