"""The container path, built and run with a real engine: the Dockerfile's
images and the compose stack, under Debian's podman (its Docker API
service) driven by docker-compose 1.29, inside a network namespace of the
run (tests/containers/run). kafka-ui is left out: it cannot be built
offline. Each check the script passes prints `CHECK <name> ok`.

After the run nothing it started may be left: no process it recorded
(YTK_CONTAINERS_RECORD: the podman service, the fake YouTube, the
healthcheck loop), no process inside its network namespace (conmon, a
container), and not the namespace itself.
"""
import os
import shutil
import subprocess
import time

import pytest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(SRC, "tests", "containers", "run")

CHECKS = ["healthy", "post-201", "ok-row", "group-writable", "results-topic",
          "status-not-outside-loopback", "clean-stop", "down-leaves-nothing"]


def _start_time(pid):
    """Field 22 of /proc/PID/stat, None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid) as f:
            return f.read().replace("\0", " ").strip()
    except OSError:
        return "(gone)"


def _in_netns(inode):
    """Pids of the processes whose network namespace has @inode."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat("/proc/%s/ns/net" % d).st_ino == inode:
                    found.append(int(d))
            except OSError:
                pass
    return found


def left_behind(record):
    """What the run recorded in @record and is still there."""
    pids, netns = [], []
    with open(record) as f:
        for line in f:
            kind, key, val = line.split()
            if kind == "pid":
                pids.append((int(key), val))
            elif kind == "netns":
                netns.append((key, int(val)))
    assert len(pids) >= 3 and len(netns) == 1, "record incomplete: %s" % (pids, netns)
    left = ["pid %d %s" % (p, _cmdline(p)) for p, st in pids
            if _start_time(p) == st]
    names = subprocess.run(["ip", "netns", "list"], capture_output=True,
                           text=True).stdout.split()
    for name, inode in netns:
        if name in names or os.path.exists("/run/netns/" + name):
            left.append("network namespace " + name)
        left += ["pid %d in namespace %s" % (p, name) for p in _in_netns(inode)]
    return left


def wait_nothing_left(record, bound=30):
    deadline = time.monotonic() + bound
    left = left_behind(record)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = left_behind(record)
    return left


@pytest.mark.skipif(os.geteuid() != 0,
                    reason="network namespaces and rootful podman need root")
def test_compose_stack_runs_in_podman(tmp_path):
    for tool in ("podman", "docker-compose", "mmdebstrap", "nsenter", "ip",
                 "sqlite3", "curl"):
        assert shutil.which(tool), tool + " missing: run dev/deps test"
    record = str(tmp_path / "started")
    r = subprocess.run([RUN], capture_output=True, text=True, timeout=3600,
                       cwd=SRC, env=dict(os.environ, YTK_CONTAINERS_RECORD=record))
    passed = [l.split()[1] for l in r.stdout.splitlines()
              if l.startswith("CHECK ") and l.endswith(" ok")]
    left = wait_nothing_left(record)
    assert r.returncode == 0 and passed == CHECKS, \
        "passed %s\n%s\n%s" % (passed, r.stdout[-3000:], r.stderr[-6000:])
    assert not left, "left after the run: %s" % left
