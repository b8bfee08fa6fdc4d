"""What every part of the chaos run shares: the repository's paths (and the
integration tests' helpers on sys.path), the pipeline's names, and the run's
clock, log and bounded wait."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))

from ytc_helpers import wait_for as wait_or_fail  # noqa: E402

TOPIC = "links"
DLQ = "links.dlq"
GROUP = "chaos-extractor"
ACK_TIMEOUT = 3          # YtKafkaAckTimeout of the endpoint, seconds

T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def log(msg):
    print("[chaos %7.1fs] %s" % (now(), msg), flush=True)


def wait_for(pred, bound, what):
    """The tests' wait, but a run that waited in vain goes on: its counts
    say whether anything was lost."""
    try:
        return wait_or_fail(pred, timeout=bound, interval=0.5, what=what)
    except AssertionError as e:
        log("gave up: %s" % e)
        return None
