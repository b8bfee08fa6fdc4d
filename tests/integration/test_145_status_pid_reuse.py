"""A status slot whose pid was reused by another process is not counted.

Each child's gauges live in a slot of the status segment that names its
owner by pid and start time (docs/ARCHITECTURE.md, 7.x). The parent's
child_status hook frees the slot of every child it reaps, so the start
time is the only defence when no parent reaps the child: this test makes
that happen and then gives the dead child's pid to another process.

httpd (prefork) runs in a pid namespace of its own (`unshare --pid --fork
--mount-proc`), whose init is a small reaper. The parent is SIGKILLed; its
children, orphaned, keep serving and are reparented to that init. One of
them is SIGKILLed and reaped by the init, not by httpd, so its slot keeps
its pid. Then a new process is created with exactly that pid (by writing
the namespace's /proc/sys/kernel/ns_last_pid and forking). The status page,
served by the surviving children, must count them and not the slot of the
dead one, though a live process now answers to its pid.

The segment is anonymous and lives only as long as the processes that map
it: an httpd started again in the same namespace counts in a new segment
(checked at the end).
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

import httpd as H
from httpd import VIDEO, httpd_factory  # noqa: F401

URL = "https://youtu.be/" + VIDEO

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root for a pid namespace")

REAPER = ("import os, time\n"
          "while True:\n"
          "    try:\n"
          "        os.wait()\n"
          "    except ChildProcessError:\n"
          "        time.sleep(0.05)\n")


def _wait(pred, bound=60, what="condition"):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out after %ss waiting for %s" % (bound, what))


def _stat(hostpid):
    with open("/proc/%d/stat" % hostpid) as f:
        return f.read().rsplit(") ", 1)[1].split()


class PidNamespace:
    """A pid namespace (with its own /proc) whose init reaps orphans."""

    def __init__(self):
        self.unshare = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "python3", "-c", REAPER],
            stdin=subprocess.DEVNULL)
        self.init = _wait(self._find_init, 30, "the namespace's init")
        self.ns = os.readlink("/proc/%d/ns/pid" % self.init)

    def _find_init(self):
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    st = _stat(int(d))
                    comm = open("/proc/%s/comm" % d).read().strip()
                except OSError:
                    continue
                if int(st[1]) == self.unshare.pid and comm.startswith("python"):
                    return int(d)
        return None

    def cmd(self, *args):
        """A command run inside the namespace (and its /proc)."""
        return ["nsenter", "-t", str(self.init), "--pid", "--mount", "--"] + list(args)

    def procs(self):
        """{pid in the namespace: (host pid, name, state)} of every process
        (thread group) in it, zombies included."""
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/ns/pid" % d) != self.ns:
                    continue
                with open("/proc/%s/status" % d) as f:
                    st = dict(line.split(":", 1) for line in f.read().splitlines()
                              if ":" in line)
            except OSError:
                continue
            nspid = int(st["NSpid"].split()[-1])
            out[nspid] = (int(d), st["Name"].strip(), st["State"].split()[0])
        return out

    def spawn_with_pid(self, want, attempts=20):
        """A `sleep` whose pid in the namespace is @want: ns_last_pid is set
        to want - 1 just before the fork. A thread created in between takes
        the number instead; then try again. Returns the sleep's host pid."""
        for _ in range(attempts):
            r = subprocess.run(self.cmd(
                "sh", "-c", "echo %d > /proc/sys/kernel/ns_last_pid && "
                "{ sleep 600 </dev/null >/dev/null 2>&1 & echo $!; }" % (want - 1)),
                capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            got = int(r.stdout.split()[-1])
            if got == want:
                return self.procs()[want][0]
            host = self.procs().get(got)
            if host:
                os.kill(host[0], signal.SIGKILL)
            time.sleep(0.2)
        raise AssertionError("no process got pid %d in %d tries" % (want, attempts))

    def close(self):
        # Killing a namespace's init kills every process in it.
        try:
            os.kill(self.init, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.unshare.wait(30)
        except subprocess.TimeoutExpired:
            self.unshare.kill()
            self.unshare.wait(10)


class NsHttpd(H.Httpd):
    """httpd started inside @ns. Its pid file holds the namespace's pid."""

    def __init__(self, ns, workdir, **kw):
        super().__init__(workdir, **kw)
        self.ns = ns

    def _run(self, *args, timeout=60):
        env = H.sanitizer_env(self.asan_dir) if H.ASAN else None
        return subprocess.run(self.ns.cmd(H.APACHE2, "-f", self.conf, *args),
                              capture_output=True, text=True, timeout=timeout, env=env)

    def servers(self):
        """{namespace pid: host pid} of the live apache2 processes."""
        return {n: p[0] for n, p in self.ns.procs().items()
                if p[1] == "apache2" and p[2] != "Z"}

    def stop(self, bound=30):
        # Never signal the pid file's number on the host: it is the
        # namespace's. The namespace's close() kills what is left.
        for hostpid in self.servers().values():
            try:
                os.kill(hostpid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return True


@pytest.fixture
def pidns():
    ns = PidNamespace()
    yield ns
    ns.close()


CONF = """StartServers 3
MinSpareServers 3
MaxSpareServers 3
MaxRequestWorkers 10
YtKafkaBrokers %s
YtKafkaTopic %s
<Location /send>
    SetHandler ytkafka-send
</Location>
<Location /status>
    SetHandler ytkafka-status
</Location>
"""


def _status(h):
    r = h.get("/status")
    assert r.status == 200, r
    return r.json()


def _counts_live(h, n):
    st = _status(h)
    if st["children"] == n and st["brokers"]["producers"] == n \
            and st["brokers"]["state"] == "up":
        return st
    return None


def _children_counted(h, parent):
    """Status counts exactly the live children, each with its producer up."""
    kids = set(h.servers()) - {parent}
    st = _counts_live(h, len(kids)) if kids else None
    return st if st and kids == set(h.servers()) - {parent} else None


def test_reused_pid_of_unreaped_child_is_not_counted(pidns, kafka):
    topic = kafka.new_topic("pidreuse")
    h = NsHttpd(pidns, H.new_workdir("httpd-pidns"), mpm="prefork")
    try:
        h.write_config(CONF % (kafka.bootstrap, topic))
        h.start()
        assert h.post_json("/send", {"links": URL}).status == 201
        parent = _wait(h.pid, what="the pid file")
        # prefork may fork a fourth child while one is busy: count them.
        _wait(lambda: _children_counted(h, parent), what="status to count the children")

        # The parent dies without reaping anyone: no child_status hook runs
        # from here on. The orphans keep serving, reparented to the init.
        os.kill(h.servers()[parent], signal.SIGKILL)
        _wait(lambda: parent not in h.servers(), what="the parent to die")
        kids = sorted(h.servers())
        assert len(kids) >= 2, kids
        assert _counts_live(h, len(kids)), LAST(h)

        # One orphan dies; the namespace's init reaps it, so its pid is
        # free at once while its slot still names it.
        victim = kids[0]
        os.kill(h.servers()[victim], signal.SIGKILL)
        _wait(lambda: victim not in pidns.procs(), what="the victim to be reaped")
        n = len(kids) - 1
        _wait(lambda: _counts_live(h, n),
              what="status to count %d children with the pid gone (%s)" % (n, LAST(h)))

        # Another process now has the dead child's pid: kill(pid, 0)
        # succeeds, only the start time tells it apart.
        impostor = pidns.spawn_with_pid(victim)
        assert pidns.procs()[victim][1] == "sleep"
        for _ in range(10):
            st = _status(h)
            assert st["children"] == n, st
            assert st["brokers"]["producers"] == n, st
            assert st["brokers"]["state"] == "up", st
            time.sleep(0.2)
        # ...and the live children still count: the counters are theirs.
        assert st["requests"]["by_status"]["201"] == 1, st
        assert h.post_json("/send", {"links": URL}).status == 201
        assert _status(h)["requests"]["by_status"]["201"] == 2

        # httpd started again in the namespace while the impostor lives:
        # a new (anonymous) segment, its own children only.
        h.stop()
        _wait(lambda: not h.servers(), what="the orphans to be gone")
        assert victim in pidns.procs() and pidns.procs()[victim][0] == impostor
        os.unlink(h.pid_file)
        h.start()
        parent = _wait(h.pid, what="the pid file")
        st = _wait(lambda: _children_counted(h, parent), what="the new generation counted")
        assert st["requests"]["total"] == 0, st
        assert not h.unexpected_log_lines(), h.unexpected_log_lines()
    finally:
        h.stop()
        shutil.rmtree(h.dir, ignore_errors=True)


def LAST(h):
    """The status page's view, for a failure message."""
    try:
        st = _status(h)
        return "children %s, brokers %s, processes %s" % (
            st["children"], st["brokers"], h.ns.procs())
    except Exception as e:  # noqa: BLE001 - only for a message
        return repr(e)

