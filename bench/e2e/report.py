#!/usr/bin/env python3
"""bench/e2e's tables, from the per-link files e2e-load wrote.

    report.py ladder DIR RATE[,RATE...]       the ladder table
    report.py bounded DIR PATH RATE[,...]     the highest bounded rate of PATH
    report.py burst DIR BASE PEAK BEFORE PEAK_S AFTER   the burst table

Files: DIR/<path>-<rate>.tsv and DIR/<path>-burst.tsv, path "broker" or
"direct", one line per link (see load.c).

Bounded: a run at a rate is bounded when no link failed and the p99 of the
time to readable over the links scheduled in its last third is at most
1.5 x the p99 over its first third + 100 ms (BOUND_FACTOR, BOUND_SLACK_MS).
A queue that grows for the whole run fails this: its last third waits for
everything queued before it.
"""
import os
import sys

BOUND_FACTOR = 1.5
BOUND_SLACK_MS = 100.0


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            rows.append({"n": int(p[0]), "sched": int(p[1]) / 1000.0,
                         "lag": int(p[2]) / 1000.0, "status": int(p[3]),
                         "post": int(p[4]) / 1000.0, "ready": int(p[5]) / 1000.0,
                         "res": int(p[6]) / 1000.0, "polls": int(p[7]),
                         "result": p[8], "error": p[9], "id": p[10]})
    return rows


def pct(values, q):
    """nearest-rank percentile; None for no values"""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(q / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def stats(rows):
    ok = [r for r in rows if r["error"] == "-" and r["ready"] >= 0]
    posted = [r for r in rows if r["post"] >= 0]
    n = len(rows)
    third = [r for r in ok if r["sched"] < rows[-1]["sched"] / 3.0] if rows else []
    last = [r for r in ok if r["sched"] >= rows[-1]["sched"] * 2 / 3.0] if rows else []
    s = {"links": n,
         "accepted": sum(1 for r in rows if 200 <= r["status"] < 300),
         "readable": len(ok),
         "not_ok": sum(1 for r in ok if r["result"] != "ok"),
         "errors": n - len(ok),
         "error_kinds": {},
         "post50": pct([r["post"] for r in posted], 50),
         "post99": pct([r["post"] for r in posted], 99),
         "ready50": pct([r["ready"] for r in ok], 50),
         "ready99": pct([r["ready"] for r in ok], 99),
         "first99": pct([r["ready"] for r in third], 99),
         "last99": pct([r["ready"] for r in last], 99),
         "lag99": pct([r["lag"] for r in rows], 99),
         "res50": pct([r["res"] for r in ok], 50),
         "res99": pct([r["res"] for r in ok], 99)}
    for r in rows:
        if r["error"] != "-":
            s["error_kinds"][r["error"]] = s["error_kinds"].get(r["error"], 0) + 1
    s["bounded"] = (s["errors"] == 0 and s["first99"] is not None
                    and s["last99"] is not None
                    and s["last99"] <= BOUND_FACTOR * s["first99"] + BOUND_SLACK_MS)
    return s


def ms(v):
    if v is None:
        return "–"
    if v >= 10000:
        return "%.1f s" % (v / 1000.0)
    return "%.0f" % v if v >= 10 else "%.1f" % v


def run_file(d, path, rate):
    return os.path.join(d, "%s-%s.tsv" % (path, rate))


def ladder(d, rates):
    print("| rate (links/s) | path | links | POST p50 / p99 (ms) | POST → readable "
          "p50 / p99 (ms) | p99 first → last third (ms) | errors | bounded | "
          "poll resolution p50 / p99 (ms) | send lag p99 (ms) |")
    print("|---:|---|---:|---:|---:|---:|---:|---|---:|---:|")
    for rate in rates:
        for path in ("broker", "direct"):
            f = run_file(d, path, rate)
            if not os.path.exists(f):
                continue
            s = stats(load(f))
            err = str(s["errors"])
            if s["error_kinds"]:
                err += " (" + ", ".join("%s %d" % kv for kv in
                                       sorted(s["error_kinds"].items())) + ")"
            if s["not_ok"]:
                err += ", %d not ok" % s["not_ok"]
            res = ("%s / %s" % (ms(s["res50"]), ms(s["res99"])) if path == "broker"
                   else "in the answer")
            print("| %s | %s | %d | %s / %s | %s / %s | %s → %s | %s | %s | %s | %s |"
                  % (rate, path, s["links"], ms(s["post50"]), ms(s["post99"]),
                     ms(s["ready50"]), ms(s["ready99"]), ms(s["first99"]),
                     ms(s["last99"]), err, "yes" if s["bounded"] else "**no**",
                     res, ms(s["lag99"])))


def bounded(d, path, rates):
    best = 0
    for rate in rates:
        f = run_file(d, path, rate)
        if os.path.exists(f) and stats(load(f))["bounded"]:
            best = max(best, float(rate))
        else:
            break
    print("%g" % best)


def burst(d, base, peak, before, peak_s, after):
    base, peak = float(base), float(peak)
    before, peak_s, after = float(before), float(peak_s), float(after)
    end = before + peak_s
    print("| second (of the schedule) | rate | broker POST p99 | broker POST → "
          "readable p50 / p99 | direct POST (= result) p50 / p99 | direct errors |")
    print("|---:|---:|---:|---:|---:|---:|")
    data = {p: load(os.path.join(d, "%s-burst.tsv" % p)) for p in ("broker", "direct")}
    total = int(before + peak_s + after + 0.5)
    recovered = {}
    for sec in range(total):
        row = {}
        for p, rows in data.items():
            w = [r for r in rows if sec * 1000 <= r["sched"] < (sec + 1) * 1000]
            ok = [r for r in w if r["error"] == "-" and r["ready"] >= 0]
            row[p] = (pct([r["post"] for r in w if r["post"] >= 0], 99),
                      pct([r["ready"] for r in ok], 50), pct([r["ready"] for r in ok], 99),
                      len(w) - len(ok))
        rate = peak if before <= sec < end else base
        print("| %d | %g | %s | %s / %s | %s / %s | %d |"
              % (sec, rate, ms(row["broker"][0]), ms(row["broker"][1]),
                 ms(row["broker"][2]), ms(row["direct"][1]), ms(row["direct"][2]),
                 row["direct"][3]))
    for p, rows in data.items():
        pre = [r["ready"] for r in rows if r["sched"] < before * 1000
               and r["error"] == "-" and r["ready"] >= 0]
        ref = (pct(pre, 99) or 0) * BOUND_FACTOR + BOUND_SLACK_MS
        # the first link scheduled after the burst from which every later
        # one was readable within the pre-burst bound
        late = [r for r in rows if r["sched"] >= end * 1000]
        rec = None
        for i in range(len(late)):
            if all(x["error"] == "-" and 0 <= x["ready"] <= ref for x in late[i:]):
                rec = late[i]["sched"] / 1000.0 - end
                break
        recovered[p] = (rec, ref, sum(1 for r in rows if r["error"] != "-"))
    print()
    for p in ("broker", "direct"):
        rec, ref, errs = recovered[p]
        print("- %s: %s; %d link(s) failed in the whole burst run"
              % (p, ("back within %.0f ms (1.5 × its pre-burst p99 + 100 ms) for "
                     "links sent %.1f s after the burst ended" % (ref, rec))
                 if rec is not None else
                 "not back within %.0f ms by the end of the run" % ref, errs))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "ladder" and len(sys.argv) == 4:
        ladder(sys.argv[2], sys.argv[3].split(","))
    elif cmd == "bounded" and len(sys.argv) == 5:
        bounded(sys.argv[2], sys.argv[3], sys.argv[4].split(","))
    elif cmd == "burst" and len(sys.argv) == 8:
        burst(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
