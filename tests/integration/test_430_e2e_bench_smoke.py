"""bench/e2e/run --quick: the end-to-end benchmark runs on the real stack
(Kafka, httpd with ytkafka-send and ytkafka-results, ytkafka-consumer, the
fake YouTube, the direct path), prints both rows with numbers, and every
link the broker path accepted became readable through GET /links/{id} and
is in the consumer's database. Nothing here asserts on timing."""
import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from httpd import BUILD, SRC, module_path

RUN = os.path.join(SRC, "bench", "e2e", "run")
CONSUMER = os.path.join(BUILD, "consumer", "ytkafka-consumer")
NUM = r"[0-9.]+(?: s)?"


def read_tsv(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            assert len(p) == 11, line
            rows.append({"status": int(p[3]), "post_us": int(p[4]),
                         "ready_us": int(p[5]), "result": p[8], "error": p[9],
                         "id": p[10]})
    return rows


@pytest.mark.skipif(not os.path.exists(module_path()), reason="mod_ytkafka not built")
@pytest.mark.skipif(not os.access(CONSUMER, os.X_OK), reason="consumer not built")
def test_quick_run_completes_and_every_accepted_link_is_readable(workdir):
    work = os.path.join(workdir, "e2e-bench")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(workdir, 0o755)
    os.chmod(work, 0o755)
    env = dict(os.environ, YTK_BUILD_DIR=BUILD)
    r = subprocess.run([RUN, "--quick", "--workdir", work, "--keep"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout

    rows = {}
    for line in out.splitlines():
        m = re.match(r"^\| 10 \| (broker|direct) \| (\d+) \| (%s) / (%s) \| "
                     r"(%s) / (%s) \| .* \| (\d+)[^|]* \| (yes|\*\*no\*\*) \|"
                     % (NUM, NUM, NUM, NUM), line)
        if m:
            rows[m.group(1)] = m
    assert set(rows) == {"broker", "direct"}, out
    for path, m in rows.items():
        assert int(m.group(2)) == 40, (path, out)     # 10 links/s for 4 s
        assert int(m.group(7)) == 0, (path, out)      # no errors
    assert re.search(r"highest bounded rate: broker path %s links/s, direct "
                     r"path %s links/s" % (NUM, NUM), out), out

    # Every link the broker path accepted was read back through
    # GET /links/{id}, and its row is in the consumer's database.
    broker = read_tsv(os.path.join(work, "broker-10.tsv"))
    assert len(broker) == 40
    accepted = [x for x in broker if 200 <= x["status"] < 300]
    assert len(accepted) == 40, broker
    for x in accepted:
        assert x["error"] == "-" and x["ready_us"] >= x["post_us"] > 0, x
        assert x["result"] == "ok", x
    ids = {x["id"] for x in accepted}
    assert len(ids) == 40                             # distinct video ids
    db = sqlite3.connect(os.path.join(work, "db", "ytkafka.db"))
    try:
        stored = dict(db.execute(
            "SELECT video_id, status FROM videos WHERE video_id IN (%s)"
            % ",".join("?" * len(ids)), sorted(ids)).fetchall())
    finally:
        db.close()
    assert stored == {i: "ok" for i in ids}

    # The direct path answered every POST with the parsed result.
    direct = read_tsv(os.path.join(work, "direct-10.tsv"))
    assert len(direct) == 40
    assert all(x["status"] == 200 and x["result"] == "ok" for x in direct), direct
    shutil.rmtree(work, ignore_errors=True)
