"""The Dockerfile builds the way dev/test builds: both install with dev/deps
and build with dev/build, and nothing else compiles. Without a Docker engine
the image cannot be built here, so the build stage is replayed instead: the
context as .dockerignore leaves it, the same dev/build and make install
commands, and the files the later stages COPY must come out of it.
"""
import fnmatch
import os
import re
import shlex
import shutil
import subprocess

import pytest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("YTK_BUILD_DIR", os.path.join(SRC, "build"))


def read(*path):
    with open(os.path.join(SRC, *path)) as f:
        return f.read()


def stages():
    """{stage name: [instruction lines]} of the Dockerfile, continuation
    lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    out, name = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)$", line, re.I)
        if m:
            name = m.group(2)
            out[name] = [line]
        elif name:
            out[name].append(line)
    return out


def runs(stage):
    return [line[4:] for line in stages()[stage] if line.startswith("RUN ")]


def commands(shell_text):
    """The simple commands of a RUN line or a script (split on && ; |)."""
    out = []
    for part in re.split(r"&&|\|\||;|\|", shell_text):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            continue
        if words:
            out.append(words)
    return out


def script_commands(path):
    out = []
    for line in read(path).splitlines():
        out.extend(commands(line))
    return out


def test_stages_and_base_image():
    s = stages()
    assert {"build", "runtime", "httpd", "consumer"} <= set(s)
    assert re.search(r"^ARG DEBIAN_IMAGE=debian:bookworm-slim$",
                     read("Dockerfile"), re.M)
    for name, lines in s.items():
        base = lines[0].split()[1]
        assert base in ("${DEBIAN_IMAGE}", "runtime"), (name, base)


def test_build_stage_and_dev_test_run_the_same_commands():
    build = [c for r in runs("build") for c in commands(r)]
    dev_test = script_commands(os.path.join("dev", "test"))

    def script_calls(cmds, script):
        """Each call of script, from its name on: `run "x" ./dev/build ...`
        (dev/test's step wrapper) counts as well."""
        out = []
        for c in cmds:
            for i, word in enumerate(c):
                if word in (script, "./" + script):
                    out.append(c[i:])
                    break
        return out

    # Both install with dev/deps...
    assert ["dev/deps", "build"] in script_calls(build, "dev/deps")
    assert any(c[1:2] in (["test"], ["all"]) for c in script_calls(dev_test, "dev/deps"))
    # ...and build with dev/build.
    assert script_calls(build, "dev/build"), build
    assert script_calls(dev_test, "dev/build"), "dev/test does not call dev/build"
    # Nothing else compiles: no configure, autoreconf, compiler or bare make
    # outside dev/build (make install is the only make in the Dockerfile).
    forbidden = {"autoreconf", "./configure", "configure", "gcc", "cc",
                 "clang", "apxs", "libtool"}
    for cmds, where in ((build, "Dockerfile"), (dev_test, "dev/test")):
        for c in cmds:
            assert c[0] not in forbidden, (where, c)
    makes = [c for c in build if c[0] == "make"]
    assert makes and all("install" in c for c in makes), makes


def test_dev_test_deps_cover_the_image_deps():
    deps = read("dev", "deps")

    def array(name):
        m = re.search(r"^%s=\((.*?)\)" % name, deps, re.M | re.S)
        assert m, name
        return set(m.group(1).split())

    def case(word):
        # "word)" or "word|other)" / "other|word)", then pkgs=(...) maybe
        # over several lines.
        m = re.search(r"^\s*(?:[\w-]+\|)*%s(?:\|[\w-]+)*\)\s*pkgs=\((.*?)\)\s*;;"
                      % word, deps, re.M | re.S)
        assert m, word
        return set(re.findall(r"\$\{(\w+)\[@\]\}", m.group(1)))

    assert case("test") >= {"build_pkgs", "runtime_pkgs", "up_pkgs", "test_pkgs"}
    assert case("all") == case("test")
    assert case("build") == {"build_pkgs"} and case("runtime") == {"runtime_pkgs"}
    # ./dev/up installs what running needs: no database server, fuzzing
    # toolchain, benchmark or lint tools.
    assert "test_pkgs" not in case("up")
    up = set().union(*(array(a) for a in case("up")))
    assert not up & {"postgresql", "clang", "clang-14", "libclang-rt-14-dev",
                     "wrk", "shellcheck", "libcmocka-dev"}, up
    for pkg in ("libclang-rt-14-dev", "postgresql", "wrk", "nodejs", "npm",
                "python3-venv", "systemd", "shellcheck"):
        assert pkg in array("test_pkgs"), pkg
    runtime = array("runtime_pkgs")
    for pkg in ("apache2", "librdkafka1", "libjson-c5", "libcurl4", "libmicrohttpd12",
                "libaprutil1-dbd-sqlite3", "libaprutil1-dbd-pgsql",
                "ca-certificates"):
        assert pkg in runtime, pkg
    assert not any(p.endswith("-dev") or p in ("build-essential", "gcc")
                   for p in runtime), runtime
    for stage in ("runtime",):
        assert any("deps runtime" in r for r in runs(stage))


def test_runtime_stages_run_unprivileged():
    s = stages()
    users = {name: [l.split()[1] for l in lines if l.startswith("USER ")]
             for name, lines in s.items()}
    assert users["httpd"][-1:] == ["www-data"]
    assert users["consumer"][-1:] == ["ytkafka"]
    httpd = "\n".join(s["httpd"])
    assert re.search(r'^CMD \["/usr/sbin/apache2", "-D", "FOREGROUND"\]$', httpd, re.M)
    assert "EXPOSE 8080" in httpd and "STOPSIGNAL SIGWINCH" in httpd
    assert re.search(r"^Listen 8080$", read("conf", "ytkafka-container.conf"), re.M)
    assert re.search(r"^ErrorLog /dev/stderr$", read("conf", "ytkafka-container.conf"), re.M)


def test_copied_files_exist_and_are_installed():
    text = read("Dockerfile")
    for src in re.findall(r"^COPY (?!--from)(\S+) ", text, re.M):
        if src != ".":
            assert os.path.exists(os.path.join(SRC, src)), src
    makefile = read("conf", "Makefile.am")
    installed = re.search(r"dist_ytkconf_DATA\s*=((?:.*\\\n)*.*)", makefile).group(1)
    installed = set(installed.replace("\\", " ").split())
    for name in installed | set(re.findall(r"^EXTRA_DIST\s*=\s*(.*)$", makefile, re.M)[0].split()):
        assert os.path.exists(os.path.join(SRC, "conf", name)), name
    for name in ("ytkafka.load", "ytkafka.conf", "ytkafka-consumer.conf"):
        assert name in installed, name


# ------------------------------------------------------------------ replay --

def dockerignore_patterns():
    out = []
    for line in read(".dockerignore").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert not line.startswith("!"), "exceptions are not replayed"
            out.append(line.strip("/"))
    return out


def _pattern_re(pattern):
    rx = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            rx += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            rx += ".*"
            i += 2
        elif pattern[i] == "*":
            rx += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            rx += "[^/]"
            i += 1
        else:
            rx += re.escape(pattern[i])
            i += 1
    return re.compile(rx + r"\Z")


def ignored(rel, patterns):
    """Docker's rule: a pattern matches the path from the context root; a
    matched directory takes everything under it."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(p.match(x) for p in patterns for x in prefixes)


def test_dockerignore_keeps_sources_and_drops_products():
    pats = [_pattern_re(p) for p in dockerignore_patterns()]
    for rel in ("build/Makefile", "build-asan/lib/x.o", ".git/HEAD",
                "configure", "lib/Makefile.in", "mod_ytkafka/.libs/mod_ytkafka.so",
                ".cache/kafka-4.1.1/libs/x.jar", "config.status"):
        assert ignored(rel, pats), rel
    for rel in ("configure.ac", "Makefile.am", "lib/Makefile.am", "dev/deps",
                "dev/build", "conf/ytkafka.conf", "conf/ytkafka-container.conf",
                "mod_ytkafka/ytk_config.c", "consumer/ytc_config.c"):
        assert not ignored(rel, pats), rel


@pytest.mark.skipif(os.environ.get("YTK_SKIP_DOCKER_REPLAY") == "1",
                    reason="YTK_SKIP_DOCKER_REPLAY=1")
def test_replay_build_stage(tmp_path):
    """The build stage's RUN lines, run on the context .dockerignore leaves:
    autotools regenerate from nothing, and make install stages every file
    that the httpd and consumer stages COPY --from=build."""
    if not os.path.isfile(os.path.join(BUILD, "mod_ytkafka", ".libs",
                                       "mod_ytkafka.so")):
        pytest.skip("the tree does not build yet (no module in %s)" % BUILD)
    pats = [_pattern_re(p) for p in dockerignore_patterns()]
    ctx = tmp_path / "src"
    for root, dirs, files in os.walk(SRC):
        rel_root = os.path.relpath(root, SRC)
        rel_root = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not ignored(rel_root + d, pats)]
        for f in files:
            rel = rel_root + f
            if not ignored(rel, pats):
                os.makedirs(ctx / rel_root, exist_ok=True)
                shutil.copy2(os.path.join(root, f), ctx / rel, follow_symlinks=False)
    assert not (ctx / "configure").exists()

    staging = tmp_path / "staging"
    for line in runs("build"):
        if "dev/deps" in line:
            continue   # the packages are there: dev/test installed them
        line = line.replace("/src/", str(ctx) + "/").replace("/staging", str(staging))
        r = subprocess.run(["bash", "-eo", "pipefail", "-c", line], cwd=ctx,
                           capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, line + "\n" + r.stdout[-4000:] + r.stderr[-4000:]

    for src in re.findall(r"^COPY --from=build (\S+)", read("Dockerfile"), re.M):
        assert (staging / src.lstrip("/").replace("staging/", "", 1)).exists(), src
    assert (staging / "usr/lib/apache2/modules/mod_ytkafka.so").is_file()
    assert os.access(staging / "usr/bin/ytkafka-consumer", os.X_OK)
    etc = staging / "etc" / "ytkafka"
    assert {"ytkafka.load", "ytkafka.conf", "ytkafka-consumer.conf"} <= set(os.listdir(etc))


def test_status_page_only_from_inside_the_container():
    conf = read("conf", "ytkafka-container.conf")
    block = re.search(r'<Location "/ytkafka-status">(.*?)</Location>', conf,
                      re.S).group(1)
    requires = [l.split() for l in block.splitlines()
                if l.strip().startswith("Require")]
    assert requires == [["Require", "local"]], requires


def test_consumer_entrypoint_makes_sqlite_files_group_writable(tmp_path):
    """The entrypoint's claim, with the real SQLite: a database it pre-creates
    comes out 0664, and so do the -wal and -shm files SQLite makes beside
    it, under the image's umask. (Without the pre-created file SQLite
    creates the database 0644.)"""
    import sqlite3
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/ytkafka-consumer-entrypoint"\]$',
                     read("Dockerfile"), re.M)
    script = read("conf", "ytkafka-consumer-entrypoint")
    assert "exec /usr/bin/ytkafka-consumer \"$@\"" in script
    fake = tmp_path / "entrypoint"
    fake.write_text(script.replace("exec /usr/bin/ytkafka-consumer",
                                   "exec true"))
    db = tmp_path / "videos.db"
    env = dict(os.environ, YTK_DB="sqlite3:%s" % db)
    subprocess.run(["sh", str(fake), "-F", "x"], env=env, check=True)
    assert db.stat().st_size == 0
    old = os.umask(0o002)
    try:
        con = sqlite3.connect(str(db))
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (x)")
        con.execute("INSERT INTO t VALUES (1)")
        con.commit()
        for suffix in ("", "-wal", "-shm"):
            mode = os.stat(str(db) + suffix).st_mode & 0o777
            assert mode == 0o664, (suffix, oct(mode))
        con.close()
    finally:
        os.umask(old)
    # A file an earlier run left 0644 is made group-writable.
    os.chmod(db, 0o644)
    subprocess.run(["sh", str(fake)], env=env, check=True)
    assert os.stat(db).st_mode & 0o777 == 0o664
