"""tests/lint/shellcheck.sh: it finds the repository's shell scripts, it
fails on a bad one, and every script passes."""
import os
import shutil
import subprocess

import pytest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(SRC, "tests", "lint", "shellcheck.sh")

needs_shellcheck = pytest.mark.skipif(not shutil.which("shellcheck"),
                                      reason="shellcheck not installed "
                                      "(dev/deps test installs it)")


def test_finds_the_scripts():
    r = subprocess.run([LINT, "--list"], capture_output=True, text=True,
                       cwd=SRC)
    assert r.returncode == 0, r.stderr
    found = set(r.stdout.split())
    for script in ("dev/deps", "dev/build", "dev/test", ".ci/run",
                   "tests/lint/shellcheck.sh"):
        assert script in found, (script, found)
    assert not any(f.startswith(("build/", "build-")) or f == "configure"
                   for f in found), found


@needs_shellcheck
def test_a_bad_untracked_script_fails(tmp_path):
    if not shutil.which("git"):
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    (repo / "tests" / "lint").mkdir(parents=True)
    (repo / "bench" / "x").mkdir(parents=True)
    shutil.copy(LINT, repo / "tests" / "lint")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    bad = repo / "bench" / "x" / "run"
    bad.write_text("#!/bin/sh\nfor f in $(ls *.txt); do echo $f; done\n")
    bad.chmod(0o755)
    r = subprocess.run([str(repo / "tests" / "lint" / "shellcheck.sh")],
                       capture_output=True, text=True, cwd=repo)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "bench/x/run" in r.stdout + r.stderr


@needs_shellcheck
def test_every_script_passes():
    r = subprocess.run([LINT], capture_output=True, text=True, cwd=SRC,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
