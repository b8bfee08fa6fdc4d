"""The shipped httpd configuration (conf/ytkafka.load, ytkafka.conf,
ytkafka-reference.conf, ytkafka-container.conf) against the built module:
`apache2 -t` accepts it, and refuses it, naming the cause, when
KAFKA_BROKERS is unset or a directive is wrong. `a2enmod ytkafka` works in a
copy of Debian's /etc/apache2, set up the way the Dockerfile sets it up.

The module comes from YTK_BUILD_DIR (default <repo>/build):
mod_ytkafka/.libs/mod_ytkafka.so.
"""
import os
import re
import shutil
import subprocess

import pytest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(SRC, "conf")
BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))
MODULE = os.path.join(BUILD, "mod_ytkafka", ".libs", "mod_ytkafka.so")
SYSTEM_MODULE = "/usr/lib/apache2/modules/mod_ytkafka.so"
# The directives README.md and docs/ARCHITECTURE.md document.
DOCUMENTED_DIRECTIVES = ("YtKafkaBrokers", "YtKafkaProperty", "YtKafkaFlushTimeout",
                         "YtKafkaTopic", "YtKafkaAck", "YtKafkaAckTimeout",
                         "YtKafkaMaxBody", "YtKafkaMaxLinks")


def _which(name):
    return shutil.which(name) or shutil.which(
        name, path="/usr/sbin:/usr/bin:/sbin:/bin")


HTTPD = _which("apache2") or _which("httpd")
MODULES_DIR = "/usr/lib/apache2/modules"

needs_httpd = pytest.mark.skipif(not HTTPD, reason="no apache2 binary "
                                 "(dev/deps runtime installs it)")
needs_module = pytest.mark.skipif(
    not os.path.isfile(MODULE),
    reason="module not built yet: %s (run dev/build build)" % MODULE)


def read(name):
    with open(os.path.join(CONF, name)) as f:
        return f.read()


def load_line():
    """ytkafka.load with the module path pointed at the built module."""
    text = read("ytkafka.load")
    assert SYSTEM_MODULE in text
    return text.replace(SYSTEM_MODULE, MODULE)


def httpd_t(tmp_path, body, env_extra=None, drop_brokers=False):
    """Runs `apache2 -t` on a small standalone configuration that loads the
    MPM and authz modules, then `body`. Returns (returncode, output)."""
    for d in ("logs", "run"):
        (tmp_path / d).mkdir(exist_ok=True)
    conf = tmp_path / "httpd.conf"
    conf.write_text("""\
ServerRoot "{root}"
DefaultRuntimeDir "{root}/run"
PidFile "{root}/run/httpd.pid"
ErrorLog "{root}/logs/error.log"
ServerName localhost
Listen 127.0.0.1:8080
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule authz_host_module {mods}/mod_authz_host.so
{body}
""".format(root=tmp_path, mods=MODULES_DIR, body=body))
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BROKERS"}
    if not drop_brokers:
        env["KAFKA_BROKERS"] = "127.0.0.1:9092"
    env.update(env_extra or {})
    r = subprocess.run([HTTPD, "-f", str(conf), "-t"], capture_output=True,
                       text=True, env=env, timeout=60)
    return r.returncode, r.stdout + r.stderr


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def shipped(tmp_path, conf_text=None):
    load = write(tmp_path, "ytkafka.load", load_line())
    conf = write(tmp_path, "ytkafka.conf",
                 read("ytkafka.conf") if conf_text is None else conf_text)
    return "Include %s\nInclude %s\n" % (load, conf)


def assert_clean_ok(rc, out):
    assert rc == 0, out
    assert "Syntax OK" in out, out
    # Nothing else: no AH00111 (undefined variable) or other warning.
    rest = [line for line in out.splitlines() if line.strip() != "Syntax OK"]
    assert not rest, out


def test_load_file_is_debian_style():
    lines = [line for line in read("ytkafka.load").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines == ["LoadModule ytkafka_module " + SYSTEM_MODULE]
    apxs = _which("apxs") or _which("apxs2")
    if apxs:
        r = subprocess.run([apxs, "-q", "LIBEXECDIR"], capture_output=True,
                           text=True)
        if r.returncode == 0 and r.stdout.strip().startswith("/usr/lib/apache2"):
            # `make install` (apxs -i) puts the module where the .load says.
            assert os.path.join(r.stdout.strip(), "mod_ytkafka.so") == SYSTEM_MODULE


def test_conf_takes_brokers_from_the_environment():
    text = read("ytkafka.conf")
    assert re.search(r"^\s*YtKafkaBrokers\s+\$\{KAFKA_BROKERS\}\s*$", text, re.M)
    for handler in ("ytkafka-send", "ytkafka-status"):
        assert re.search(r"^\s*SetHandler\s+%s\s*$" % handler, text, re.M)


@needs_httpd
@needs_module
def test_shipped_conf_passes(tmp_path):
    assert_clean_ok(*httpd_t(tmp_path, shipped(tmp_path)))


@needs_httpd
@needs_module
def test_unset_kafka_brokers_is_refused_by_name(tmp_path):
    rc, out = httpd_t(tmp_path, shipped(tmp_path), drop_brokers=True)
    assert rc != 0, "httpd accepted a configuration without KAFKA_BROKERS:\n" + out
    assert "KAFKA_BROKERS" in out, out


@needs_httpd
@needs_module
def test_define_sets_brokers_too(tmp_path):
    body = "Define KAFKA_BROKERS 127.0.0.1:9092\n" + shipped(tmp_path)
    assert_clean_ok(*httpd_t(tmp_path, body, drop_brokers=True))


@needs_httpd
@needs_module
@pytest.mark.parametrize("bad, named", [
    ("YtKafkaAck sometimes", "YtKafkaAck"),
    ("YtKafkaBroker 127.0.0.1:9092", "YtKafkaBroker"),
    ("YtKafkaMaxLinks -3", "YtKafkaMaxLinks"),
    ("YtKafkaProperty no.such.property 1", "no.such.property"),
])
def test_wrong_directive_is_refused_by_name(tmp_path, bad, named):
    text = read("ytkafka.conf").replace(
        "YtKafkaBrokers ${KAFKA_BROKERS}",
        "YtKafkaBrokers ${KAFKA_BROKERS}\n    %s" % bad, 1)
    assert bad in text
    rc, out = httpd_t(tmp_path, shipped(tmp_path, text))
    assert rc != 0, "httpd accepted %r:\n%s" % (bad, out)
    assert named in out, out


def uncommented_reference():
    """ytkafka-reference.conf with its commented-out configuration lines
    enabled: '#' followed directly by text, or by exactly four spaces
    (the body of a commented <Location>). Prose has '# ' or '#   '."""
    out = []
    for line in read("ytkafka-reference.conf").splitlines():
        m = re.match(r"^#(?=[^\s#])(.*)$", line) or \
            re.match(r"^#(    \S.*)$", line)
        out.append(m.group(1) if m else line)
    return "\n".join(out) + "\n"


def test_reference_names_every_directive():
    text = uncommented_reference()
    named = set(re.findall(r"^\s*(YtKafka\w+)\s", text, re.M))
    assert set(DOCUMENTED_DIRECTIVES) <= named
    # ...and every directive the module registers.
    src = os.path.join(SRC, "mod_ytkafka", "ytk_config.c")
    if os.path.exists(src):
        with open(src) as f:
            registered = set(re.findall(r'AP_INIT_\w+\(\s*"(YtKafka\w+)"',
                                        f.read()))
        assert registered <= named, registered - named


@needs_httpd
@needs_module
def test_reference_conf_uncommented_passes(tmp_path):
    load = write(tmp_path, "ytkafka.load", load_line())
    ref = write(tmp_path, "reference.conf", uncommented_reference())
    assert_clean_ok(*httpd_t(tmp_path, "Include %s\nInclude %s\n" % (load, ref)))


def dockerfile_httpd_steps():
    """The a2enmod/a2enconf/a2dissite/a2disconf commands of the Dockerfile's
    httpd stage, so that this test sets up what the image sets up."""
    with open(os.path.join(SRC, "Dockerfile")) as f:
        text = f.read()
    stage = re.search(r"^FROM\s+\S+\s+AS\s+httpd\s*$(.*?)(?=^FROM\s|\Z)",
                      text, re.M | re.S | re.I).group(1)
    return re.findall(r"\b(a2(?:en|dis)(?:mod|conf|site))\s+(?:-q\s+)?([\w.-]+)",
                      stage)


@pytest.mark.skipif(not os.path.isdir("/etc/apache2") or not _which("a2enmod"),
                    reason="no Debian apache2 layout (/etc/apache2, a2enmod)")
@needs_httpd
@needs_module
def test_a2enmod_in_debian_layout_as_the_image_does(tmp_path):
    confdir = tmp_path / "apache2"
    shutil.copytree("/etc/apache2", confdir, symlinks=True)
    (confdir / "mods-available" / "ytkafka.load").write_text(load_line())
    shutil.copy(os.path.join(CONF, "ytkafka.conf"), confdir / "mods-available")
    shutil.copy(os.path.join(CONF, "ytkafka-container.conf"),
                confdir / "conf-available")
    (confdir / "ports.conf").write_text("# Listen: see ytkafka-container.conf\n")
    env = dict(os.environ, APACHE_CONFDIR=str(confdir),
               APACHE_STATE_DIRECTORY=str(tmp_path / "state"))
    steps = dockerfile_httpd_steps()
    assert ("a2enmod", "ytkafka") in steps, steps
    for tool, name in steps:
        r = subprocess.run([_which(tool), "-q", name], env=env,
                           capture_output=True, text=True)
        assert r.returncode == 0, (tool, name, r.stdout + r.stderr)
    enabled = confdir / "mods-enabled"
    for f in ("ytkafka.load", "ytkafka.conf"):
        assert (enabled / f).is_symlink()
        assert os.readlink(enabled / f) == "../mods-available/" + f

    run = tmp_path / "run"
    for d in ("run", "lock", "log"):
        (tmp_path / d).mkdir(exist_ok=True)
    env.update(APACHE_RUN_USER="www-data", APACHE_RUN_GROUP="www-data",
               APACHE_RUN_DIR=str(run), APACHE_PID_FILE=str(run / "apache2.pid"),
               APACHE_LOCK_DIR=str(tmp_path / "lock"),
               APACHE_LOG_DIR=str(tmp_path / "log"), LANG="C",
               KAFKA_BROKERS="kafka:19092")
    r = subprocess.run([HTTPD, "-d", str(confdir), "-f",
                        str(confdir / "apache2.conf"), "-t", "-D", "DUMP_MODULES"],
                       env=env, capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "ytkafka_module (shared)" in out, out
    assert "AH00111" not in out and "AH00558" not in out, out
    r = subprocess.run([HTTPD, "-d", str(confdir), "-f",
                        str(confdir / "apache2.conf"), "-S"],
                       env=env, capture_output=True, text=True, timeout=60)
    # The image listens on 8080 only and has no default site left.
    assert r.returncode == 0, r.stdout + r.stderr
    assert "000-default" not in r.stdout + r.stderr
