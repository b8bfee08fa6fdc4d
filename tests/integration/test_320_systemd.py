"""conf/ytkafka-consumer.service passes `systemd-analyze verify`, is
hardened, and agrees with conf/ytkafka-consumer.default."""
import os
import re
import shutil
import subprocess

import pytest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(SRC, "conf")
BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(not ANALYZE, reason="systemd-analyze "
                                   "not installed (Debian package systemd)")


def unit_text():
    with open(os.path.join(CONF, "ytkafka-consumer.service")) as f:
        return f.read()


def settings(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z_]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


def unit_for_verify(tmp_path):
    """The unit with ExecStart's binary made absolute: verify checks that it
    is executable. The built consumer if there is one, else a stand-in."""
    binary = os.path.join(BUILD, "consumer", "ytkafka-consumer")
    if not os.access(binary, os.X_OK):
        binary = str(tmp_path / "ytkafka-consumer")
        with open(binary, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(binary, 0o755)
    text = unit_text()
    assert re.search(r"^ExecStart=ytkafka-consumer ", text, re.M)
    text = re.sub(r"^ExecStart=ytkafka-consumer ", "ExecStart=%s " % binary,
                  text, flags=re.M)
    path = tmp_path / "ytkafka-consumer.service"
    path.write_text(text)
    return path


@needs_analyze
def test_systemd_analyze_verify(tmp_path):
    path = unit_for_verify(tmp_path)
    r = subprocess.run([ANALYZE, "verify", str(path)], capture_output=True,
                       text=True, timeout=60)
    # Unknown keys and bad values are only warnings: none is allowed.
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), \
        r.stdout + r.stderr


@needs_analyze
def test_systemd_analyze_verify_catches_a_bad_unit(tmp_path):
    path = unit_for_verify(tmp_path)
    path.write_text(path.read_text().replace("ProtectSystem=strict",
                                             "ProtectSystem=strictest"))
    r = subprocess.run([ANALYZE, "verify", str(path)], capture_output=True,
                       text=True, timeout=60)
    # The warning test_systemd_analyze_verify would fail on.
    assert "strictest" in r.stdout + r.stderr


@needs_analyze
def test_exposure_is_low(tmp_path):
    path = unit_for_verify(tmp_path)
    r = subprocess.run([ANALYZE, "security", "--offline=yes", str(path)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "offline" in r.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd 250+")
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


def test_unit_is_hardened_and_unprivileged():
    s = settings(unit_text())
    assert s["User"] == ["ytkafka"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("PrivateDevices", "yes"), ("CapabilityBoundingSet", ""),
                       ("StateDirectory", "ytkafka"), ("Restart", "on-failure")):
        assert s.get(key) == [value], key
    assert s["EnvironmentFile"] == ["-/etc/default/ytkafka-consumer"]
    assert s["WantedBy"] == ["multi-user.target"]


def test_default_file_defines_what_the_unit_uses():
    with open(os.path.join(CONF, "ytkafka-consumer.default")) as f:
        defaults = settings(f.read())
    used = set(re.findall(r"\$\{?([A-Z_]+)", unit_text()))
    assert used and used <= set(defaults), used - set(defaults)
    assert defaults["KAFKA_BROKERS"] and defaults["YTK_DB"]
    # The -F file it names is the one conf/Makefile.am installs.
    args = defaults["YTK_CONSUMER_ARGS"][0].strip('"')
    assert "-F /etc/ytkafka/ytkafka-consumer.conf" in args
    assert os.path.exists(os.path.join(CONF, "ytkafka-consumer.conf"))
