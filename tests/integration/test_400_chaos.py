"""The chaos run's short mode (tests/chaos/run short): overlapping broker,
consumer, httpd, PostgreSQL and YouTube faults on a three-node cluster,
proved by counting. It fails if an acknowledged link is missing from the
topic or has no `ok` row, a record or a row is duplicated, a row is not
`ok`, anything was dead-lettered, or a planned fault was not injected; the
counts are printed in the test's output."""
import json
import os
import shutil
import subprocess

from kafka import SRC

RUN = os.path.join(SRC, "tests", "chaos", "run")


def test_chaos_short(workdir):
    root = os.path.join(workdir, "chaos-short")
    shutil.rmtree(root, ignore_errors=True)
    out = os.path.join(root, "result.json")
    os.makedirs(root)
    # The -Werror build's module: the sanitizers' CPU cost on two cores
    # would make the load itself the fault.
    env = {k: v for k, v in os.environ.items() if k != "YTK_HTTPD_ASAN"}
    r = subprocess.run([RUN, "short", "--workdir", root, "--json", out],
                       capture_output=True, text=True, timeout=1800, env=env)
    print(r.stdout[-20000:])
    print(r.stderr[-5000:])
    assert os.path.exists(out), "no result: the run did not get to its checks"
    with open(out) as f:
        res = json.load(f)
    assert res["requests"] > 0 and res["201"] > 0, res
    for k in ("acked_missing_from_topic", "acked_without_ok_row", "duplicate_rows",
              "dlq_records", "topic_duplicates", "rows_not_ok"):
        assert res[k] == 0, (k, res[k])
    assert res["fault_errors"] == [], res["fault_errors"]
    assert res["faults_not_run"] == [], res["faults_not_run"]
    assert res["201_after_faults"] > 0, res
    # the run's own verdict agrees
    assert res["failures"] == [], res["failures"]
    assert r.returncode == 0
    shutil.rmtree(root, ignore_errors=True)
