"""The real Kafka clients of the systems mod_ytkafka replaces, installed the
way their users install them, for tests that read what we write or write
what we read.

- ``kafka_python``: kafka-python from PyPI, no extras (``pip install
  kafka-python``), in a venv of its own.
- ``kafkajs``: kafkajs from npm (``npm install kafkajs``), in a
  node_modules of its own.

Both live under ``$YTK_CACHE/clients`` (default ``<repo>/.cache``), are
created once under a file lock (parallel test runs share the cache) and are
marked complete only after the install worked. Each client runs as its own
process from the scripts in ``client_scripts/``; a consumer prints one JSON
line per record and exits 0 after ``n`` records, non-zero with the client's
own error on stderr when it cannot read a batch.

    from clients import kafka_python, kafkajs   # noqa: F401  (fixtures)

    def test_x(kafka, kafkajs):
        recs = kafkajs.consume(kafka.bootstrap, topic, "g1", n=3).records

Environment: YTK_KAFKA_PYTHON (pip requirement, default kafka-python==3.0.12),
YTK_KAFKAJS (npm spec, default kafkajs@2.2.4).
"""
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from kafka import SRC

CACHE = os.path.join(os.environ.get("YTK_CACHE", os.path.join(SRC, ".cache")), "clients")
SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "client_scripts")
KAFKA_PYTHON = os.environ.get("YTK_KAFKA_PYTHON", "kafka-python==3.0.12")
KAFKAJS = os.environ.get("YTK_KAFKAJS", "kafkajs@2.2.4")


class Run:
    """A finished client run: returncode, records (parsed JSON lines), stderr."""

    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stderr = proc.stderr
        self.records = [json.loads(l) for l in proc.stdout.splitlines()
                        if l.startswith("{")]

    def __repr__(self):
        return "<Run rc=%s records=%d stderr=%r>" % (
            self.returncode, len(self.records), self.stderr[-2000:])


def _slug(s):
    return re.sub(r"[^A-Za-z0-9.]+", "-", s).strip("-")


def _installed(path, install):
    """Create path with install(tmp) once, under a lock, atomically."""
    os.makedirs(CACHE, exist_ok=True)
    marker = os.path.join(path, ".complete")
    if os.path.exists(marker):
        return path
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(marker):
            shutil.rmtree(path, ignore_errors=True)
            install(path)
            open(marker, "w").close()
    return path


def _run(cmd, what, timeout=600, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s\n%s" % (what, r.returncode, " ".join(cmd),
                                                       (r.stdout + r.stderr)[-3000:]))
    return r


class KafkaPython:
    """kafka-python in a venv made by the interpreter running the tests."""

    def __init__(self):
        tag = "py%d.%d" % sys.version_info[:2]
        self.dir = os.path.join(CACHE, "%s-%s" % (_slug(KAFKA_PYTHON), tag))

    def install(self):
        def make(path):
            _run([sys.executable, "-m", "venv", path], "python -m venv "
                 "(Debian: python3-venv, dev/deps test installs it)")
            # From PyPI like its users, not from a local wheel directory.
            env = {k: v for k, v in os.environ.items()
                   if k not in ("PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_INDEX_URL")}
            _run([os.path.join(path, "bin", "python"), "-m", "pip", "install",
                  "--quiet", "--disable-pip-version-check", KAFKA_PYTHON],
                 "pip install " + KAFKA_PYTHON, env=env)
        _installed(self.dir, make)
        self.python = os.path.join(self.dir, "bin", "python")
        return self

    def has(self, module):
        """Whether the venv can import module (e.g. lz4: it must not)."""
        return subprocess.run([self.python, "-c", "import " + module],
                              capture_output=True).returncode == 0

    def consume(self, bootstrap, topic, group, n, timeout=60):
        """A KafkaConsumer group member reading from the beginning."""
        p = subprocess.run([self.python, os.path.join(SCRIPTS, "kp_consume.py"),
                            bootstrap, topic, group, str(n), str(timeout)],
                           capture_output=True, text=True, timeout=timeout + 60)
        return Run(p)


class KafkaJS:
    """kafkajs in its own node_modules, run with Debian's (or the machine's) node."""

    def __init__(self):
        self.dir = os.path.join(CACHE, _slug(KAFKAJS))

    def install(self):
        for tool in ("node", "npm"):
            if not shutil.which(tool):
                raise RuntimeError("%s not found (dev/deps test installs nodejs and npm)"
                                   % tool)

        def make(path):
            os.makedirs(path)
            # A package.json of its own: npm must not walk up to another one.
            with open(os.path.join(path, "package.json"), "w") as f:
                json.dump({"name": "ytk-test-clients", "private": True}, f)
            _run(["npm", "install", "--no-audit", "--no-fund", "--no-save",
                  "--loglevel=error", KAFKAJS], "npm install " + KAFKAJS, cwd=path)
        _installed(self.dir, make)
        self.env = dict(os.environ, NODE_PATH=os.path.join(self.dir, "node_modules"),
                        KAFKAJS_NO_PARTITIONER_WARNING="1")
        return self

    def _node(self, script, args, timeout, input=None):
        return subprocess.run(["node", os.path.join(SCRIPTS, script), *map(str, args)],
                              capture_output=True, text=True, env=self.env,
                              input=input, timeout=timeout + 60)

    def consume(self, bootstrap, topic, group, n, timeout=60):
        """A consumer group member with eachMessage, from the beginning."""
        return Run(self._node("kjs_consume.js", [bootstrap, topic, group, n, timeout],
                              timeout))

    def produce(self, bootstrap, topic, values, timeout=60):
        """Send each value (a JSON-serialisable object) as one record, no key."""
        lines = "".join(json.dumps(v) + "\n" for v in values)
        p = self._node("kjs_produce.js", [bootstrap, topic], timeout, input=lines)
        if p.returncode != 0:
            raise AssertionError("kafkajs producer failed: " + p.stderr[-3000:])
        return Run(p)


@pytest.fixture(scope="session")
def kafka_python():
    return KafkaPython().install()


@pytest.fixture(scope="session")
def kafkajs():
    return KafkaJS().install()
