"""A real Apache Kafka broker for the integration tests.

Drives tests/kafka/kafka.sh (KRaft, single node, Maven Central's jars) and
reads and writes records with Kafka's own console tools, so what our code
produced is checked by a client nobody here wrote.
"""
import os
import socket
import subprocess
import time
import uuid

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KAFKA_SH = os.path.join(SRC, "tests", "kafka", "kafka.sh")

# Separators no JSON value or test key contains.
_FIELD = "\x1f"
_RECORD = "\x1e"
_HDR = "\x1d"
_HDR_KV = "\x1c"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kafka:
    """One broker in its own data directory on its own port."""

    def __init__(self, workdir, port=None):
        self.dir = workdir
        self.port = port or free_port()
        self.bootstrap = "127.0.0.1:%d" % self.port

    def _sh(self, *args, timeout=180, check=True, input=None):
        return subprocess.run([KAFKA_SH, *args], input=input, timeout=timeout,
                              check=check, capture_output=True, text=True)

    def start(self):
        r = self._sh("start", self.dir, str(self.port), check=False)
        if r.returncode != 0:
            raise RuntimeError("kafka did not start: " + r.stderr[-3000:])

    def stop(self, bound=20):
        self._sh("stop", self.dir, str(bound))

    def kill(self):
        self._sh("kill", self.dir)

    def running(self):
        return self._sh("status", self.dir, check=False).returncode == 0

    def create_topic(self, name, partitions=1):
        self._sh("topics", "--bootstrap-server", self.bootstrap, "--create",
                 "--if-not-exists", "--topic", name,
                 "--partitions", str(partitions), "--replication-factor", "1")
        return name

    def topics(self):
        """The names of the broker's topics."""
        r = self._sh("topics", "--bootstrap-server", self.bootstrap, "--list")
        return set(r.stdout.split())

    def new_topic(self, prefix="t", partitions=1):
        """Create a topic with a unique name and return the name."""
        return self.create_topic("%s-%s" % (prefix, uuid.uuid4().hex[:10]),
                                 partitions)

    def end_offsets(self, topic):
        """{partition: end offset} from Kafka's GetOffsetShell."""
        r = self._sh("class", "org.apache.kafka.tools.GetOffsetShell",
                     "--bootstrap-server", self.bootstrap, "--topic", topic)
        out = {}
        for line in r.stdout.split():
            _, p, o = line.rsplit(":", 2)
            out[int(p)] = int(o)
        return out

    def count(self, topic):
        return sum(self.end_offsets(topic).values())

    def consume(self, topic, n, timeout=30, group=None):
        """Read up to n records from the beginning with kafka-console-consumer.

        Returns dicts with key, value (str or None), headers (dict),
        partition and offset, in the order the consumer printed them.
        """
        args = ["console-consumer", "--bootstrap-server", self.bootstrap,
                "--topic", topic, "--from-beginning",
                "--max-messages", str(n), "--timeout-ms", str(int(timeout * 1000)),
                "--group", group or "pytest-" + uuid.uuid4().hex[:12],
                "--property", "print.key=true",
                "--property", "print.headers=true",
                "--property", "print.partition=true",
                "--property", "print.offset=true",
                "--property", "null.literal=\x07NULL",
                "--property", "key.separator=" + _FIELD,
                "--property", "line.separator=" + _RECORD,
                "--property", "headers.separator=" + _HDR,
                "--property", "headers.key.separator=" + _HDR_KV]
        r = self._sh(*args, timeout=timeout + 60, check=False)
        records = []
        for raw in r.stdout.split(_RECORD):
            if not raw.strip("\n"):
                continue
            part, off, hdrs, key, value = raw.split(_FIELD, 4)
            headers = {}
            if hdrs != "NO_HEADERS":
                for h in hdrs.split(_HDR):
                    # Kafka 4.1's formatter prints "key:value" whatever
                    # headers.key.separator says; keys hold no ':' here.
                    sep = _HDR_KV if _HDR_KV in h else ":"
                    k, _, v = h.partition(sep)
                    headers[k] = v
            records.append({
                "partition": int(part.split(":", 1)[1]),
                "offset": int(off.split(":", 1)[1]),
                "headers": headers,
                "key": None if key == "\x07NULL" else key,
                "value": None if value == "\x07NULL" else value,
            })
        return records

    def produce(self, topic, values, keys=None):
        """Write one record per value (single-line strings) with the console producer."""
        args = ["console-producer", "--bootstrap-server", self.bootstrap,
                "--topic", topic, "--producer-property", "acks=all"]
        lines = []
        if keys is not None:
            args += ["--property", "parse.key=true",
                     "--property", "key.separator=" + _FIELD]
            lines = [k + _FIELD + v for k, v in zip(keys, values)]
        else:
            lines = list(values)
        for line in lines:
            if "\n" in line:
                raise ValueError("console producer values are single lines")
        self._sh(*args, input="\n".join(lines) + "\n", timeout=120)

    def batch_codecs(self, topic, partition=0):
        """The compression codec of every record batch stored for a
        partition, read from the broker's own log segments with Kafka's
        DumpLogSegments: e.g. ["none", "none"] or ["lz4"]."""
        pdir = os.path.join(self.dir, "data", "%s-%d" % (topic, partition))
        logs = sorted(os.path.join(pdir, f) for f in os.listdir(pdir)
                      if f.endswith(".log"))
        r = self._sh("class", "kafka.tools.DumpLogSegments", "--files", ",".join(logs))
        codecs = []
        for line in r.stdout.splitlines():
            if line.startswith("baseOffset:"):
                codecs.append(line.split(" compresscodec: ", 1)[1].split()[0])
        return codecs

    def wait_ready(self, bound=60):
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if self.running():
                return True
            time.sleep(0.5)
        return False
