#!/usr/bin/env python3
"""Checks that two rbflex results folders hold the same run: run.json and
correlate.csv byte for byte, the same report (correlate.json or search.json)
but for wall times and file paths, and the same scores.csv rows (every value
bit for bit, in index order) but for the per-network seconds.

usage: scripts/same-run.py WHOLE_DIR MERGED_DIR"""
import csv
import json
import sys
from pathlib import Path

TIMING = {"seconds", "worker_seconds", "search_seconds", "trial_worker_seconds", "csv", "plot"}


def rows(d):
    with open(d / "scores.csv", newline="") as f:
        r = list(csv.reader(f))
    keep = [i for i, c in enumerate(r[0]) if not c.endswith("seconds")]
    return [[r[0][i] for i in keep]] + sorted(([row[i] for i in keep] for row in r[1:]), key=lambda x: int(x[0]))


def report(d):
    for name in ("correlate.json", "search.json"):
        if (d / name).exists():
            v = json.loads((d / name).read_text())
            return name, {k: x for k, x in v.items() if k not in TIMING}
    sys.exit(f"{d}: no correlate.json or search.json")


def main():
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    bad = []
    if (a / "run.json").read_bytes() != (b / "run.json").read_bytes():
        bad.append("run.json")
    if (a / "correlate.csv").exists() and (a / "correlate.csv").read_bytes() != (b / "correlate.csv").read_bytes():
        bad.append("correlate.csv")
    ra, rb = rows(a), rows(b)
    if ra != rb:
        bad.append("scores.csv")
    (name, va), (_, vb) = report(a), report(b)
    if va != vb:
        bad.append(name)
    if bad:
        sys.exit(f"{a} and {b} differ: {', '.join(bad)}")
    print(f"same run: {len(ra) - 1} networks, identical run.json, scores.csv values, {name}"
          + (", correlate.csv" if (a / "correlate.csv").exists() else ""))


main()
