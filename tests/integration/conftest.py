"""Session fixtures shared by every integration test.

- ``kafka``: one real broker for the whole session (do not stop it).
- ``kafka_factory``: brokers of a test's own, for tests that kill, stop
  and restart them; each is stopped when the test ends.
"""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kafka import Kafka, SRC  # noqa: E402

BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))
WORK = os.environ.get("YTK_TEST_WORK",
                      os.path.join(tempfile.gettempdir(), "ytk-tests-%d" % os.getpid()))


def _workdir(name):
    path = os.path.join(WORK, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


@pytest.fixture(scope="session")
def workdir():
    os.makedirs(WORK, exist_ok=True)
    return WORK


@pytest.fixture(scope="session")
def kafka():
    k = Kafka(_workdir("kafka-session"))
    k.start()
    yield k
    k.stop()


@pytest.fixture
def kafka_factory(request):
    started = []

    def make():
        k = Kafka(_workdir("kafka-%s-%d" % (request.node.name[:40], len(started))))
        k.start()
        started.append(k)
        return k

    yield make
    for k in started:
        k.stop(bound=10)
