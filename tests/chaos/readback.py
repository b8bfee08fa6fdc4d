"""Reading the chaos run's results back and judging them: the records of a
topic (kcat), their video ids and DLQ codes, the spans of error-only
answers, and the list of failed checks."""
import json
import subprocess


# ---- reading back --------------------------------------------------------------------

def topic_records(bootstrap, topic):
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning",
                        "-e", "-q", "-J"], capture_output=True, text=True, timeout=300)
    out = []
    for line in r.stdout.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def payload_vid(rec):
    try:
        return json.loads(rec["payload"])["video_id"]
    except (ValueError, KeyError, TypeError):
        return None


def dlq_codes(dlq):
    """{ytk-dlq-code header: count}"""
    out = {}
    for d in dlq:
        h = d.get("headers") or []
        code = "?"
        for i in range(0, len(h) - 1, 2):
            if h[i] == "ytk-dlq-code":
                code = h[i + 1]
        out[code] = out.get(code, 0) + 1
    return out


def error_spans(records):
    """Spans (start, end) in which every answer was an error: from the
    first error after a 201 to the next 201, by completion time."""
    spans = []
    start = None
    for rec in sorted(records, key=lambda r: r["t1"]):
        if rec["status"] == 201:
            if start is not None:
                spans.append((start, rec["t1"]))
                start = None
        elif start is None:
            start = rec["t1"]
    if start is not None:
        spans.append((start, max(r["t1"] for r in records)))
    return spans


MUST_BE_ZERO = ("acked_missing_from_topic", "acked_without_ok_row", "duplicate_rows",
                "dlq_records", "topic_duplicates", "rows_not_ok")
# No single fault may leave the endpoint answering only errors longer than
# this: a liveness bound (about ten times a leader kill's span on a loaded
# machine), not a speed figure.
ERROR_ONLY_BOUND = 120.0


def failures(res):
    """Why the run failed: [] when every count and every fault is right."""
    bad = ["%s = %s (must be 0)" % (k, res[k]) for k in MUST_BE_ZERO if res[k] != 0]
    if res["fault_errors"]:
        bad.append("fault errors: %s" % "; ".join(res["fault_errors"]))
    if res["faults_not_run"]:
        bad.append("faults not injected: %s" % ", ".join(res["faults_not_run"]))
    for f in res["faults"]:
        if f["error_only_seconds"] > ERROR_ONLY_BOUND:
            bad.append("%s: %.1f s of errors only (bound %.0f s)" % (
                f["fault"], f["error_only_seconds"], ERROR_ONLY_BOUND))
    if res["longest_error_only_seconds"] > ERROR_ONLY_BOUND:
        bad.append("longest error-only span %.1f s (bound %.0f s)" % (
            res["longest_error_only_seconds"], ERROR_ONLY_BOUND))
    if res["201"] == 0:
        bad.append("no request acknowledged")
    if res["201_after_faults"] == 0:
        bad.append("no 201 after the last fault: the endpoint did not recover")
    return bad
