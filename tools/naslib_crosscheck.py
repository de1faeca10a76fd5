#!/usr/bin/env python3
"""Cross-check rbflex's proxies against NASLib's NAS-Bench-Suite-Zero values.

    tools/naslib_crosscheck.py indices ZC_JSON DATASET > idx.txt
        the official NB201 indices of the networks NASLib scored on DATASET
        (cifar10, cifar100, ImageNet16-120), for `rbflex correlate --indices idx.txt`
    tools/naslib_crosscheck.py compare ZC_JSON DATASET RUN/correlate.csv
        Spearman's rho between NASLib's value and rbflex's, per proxy, over the
        networks both have (NaN/inf and NASLib's -1e8 failures dropped)

Standard library only. NASLib encodes a cell as six op indices
(0 skip_connect, 1 none, 2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3) on the
edges 0->1, 0->2, 0->3, 1->2, 1->3, 2->3; rbflex's embedded arch list
(data/nb201/archs.txt.gz) gives six digits (0 none, 1 skip, 2 conv1x1,
3 conv3x3, 4 avgpool) on the edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3.
"""
import csv
import gzip
import json
import math
import os
import sys

NASLIB_TO_DIGIT = {0: "1", 1: "0", 2: "3", 3: "2", 4: "4"}
# NASLib name -> rbflex proxy column
PAIRS = {"flops": "flops", "params": "params", "snip": "snip", "jacov": "jacob_cov", "grad_norm": "grad_norm",
         "plain": "plain", "epe_nas": "epe_nas", "fisher": "fisher", "grasp": "grasp", "l2_norm": "l2_norm",
         "synflow": "synflow", "nwot": "naswot", "zen": "zen"}


def table(path, dataset):
    d = json.load(open(path))
    d = d.get("nasbench201", d)
    return d[dataset]


def index_of():
    root = os.path.join(os.path.dirname(__file__), "..", "data", "nb201", "archs.txt.gz")
    return {line.strip(): i for i, line in enumerate(gzip.open(root, "rt"))}


def our_code(t):
    a, b, c, d, e, f = t
    return "".join(NASLIB_TO_DIGIT[x] for x in (a, b, d, c, e, f))


def ranks(x):
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in order[i:j + 1]:
            r[k] = (i + j) / 2 + 1
        i = j + 1
    return r


def pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else float("nan")


def main():
    cmd, path, dataset = sys.argv[1:4]
    t = table(path, dataset)
    idx = index_of()
    by_index = {}
    for key, rec in t.items():
        code = our_code(tuple(int(v) for v in key.strip("()").split(",")))
        by_index[idx[code]] = rec
    if cmd == "indices":
        for i in sorted(by_index):
            print(i)
        return
    rows = list(csv.DictReader(open(sys.argv[4])))
    print(f"{'proxy':<12} {'n':>5} {'spearman':>9}")
    for theirs, ours in PAIRS.items():
        if not rows or ours not in rows[0]:
            continue
        pairs = []
        for r in rows:
            rec = by_index.get(int(r["index"]))
            if rec is None or theirs not in rec:
                continue
            v = rec[theirs]
            a, b = float(r[ours]), float(v["score"] if isinstance(v, dict) else v)
            if math.isfinite(a) and math.isfinite(b) and b != -1e8:
                pairs.append((a, b))
        if len(pairs) > 2:
            x, y = zip(*pairs)
            print(f"{ours:<12} {len(pairs):>5} {pearson(ranks(list(x)), ranks(list(y))):>9.4f}")


if __name__ == "__main__":
    main()
