#!/usr/bin/env python3
"""How far can a rank aggregation of the consensus members get, with and without labels?

    tools/aggregation_study.py RUN [RUN ...]

Each RUN is a `rbflex correlate` folder scored with at least the ten members
of `consensus` (`--proxy consensus,ensemble,rbflex,synflow,naswot,meco,params,
flops,l2_norm,az_expressivity,az_progressivity,az_trainability`); a TransNAS
`--task all` folder counts once per task. Every accuracy column of a run's
`correlate.csv` is one column of the study. For each column it prints the best
single member (chosen with the labels), `consensus` and `ensemble` as the run
scored them, and two label-fit bounds over weighted sums of the members'
ln(rank / n), the rule `consensus` and `ensemble` share:

* one weight vector for every column at once (the best any rule fixed in
  advance could do on these columns, however it was chosen);
* one weight vector per run (the best a rule that adapts its weights to each
  run's candidates could do, were its choice as good as the labels').

The bounds search 1 + 10 + 3,000 weight vectors (the members alone and two
Dirichlet draws, seed 0), so they are lower bounds of the true optima: good
enough to show what a target asks for. A column counts as met where its value
is within --margin (0.02) Kendall tau-b of the best member. Then every rule of
a small label-free family (the anchor rule of `consensus`, its weights raised
to a power, divided by each member's redundancy with the others, or anchored
on the most central member) is chosen leave-one-space-out: on the other
spaces' columns by the mean over spaces of the mean gap, judged on the held-out
space. With --bootstrap B it also resamples each column's networks, to tell a gap
from sampling noise; with --calibrate K it chooses the weights on K labelled
networks of each column (not label-free: what a few trained networks would buy).
Needs numpy, scipy and pandas.
"""
import argparse
import glob
import os
import sys

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata

MEMBERS = ["rbflex", "synflow", "naswot", "meco", "params", "flops", "l2_norm",
           "az_expressivity", "az_progressivity", "az_trainability"]
ACCURACY = ["cifar10", "cifar100", "imagenet16_120", "imagenet", "taskonomy"]


def load(run):
    """(space, column, member values [10 x n], consensus, ensemble, accuracy) per column of a run."""
    files = [os.path.join(run, "correlate.csv")]
    if not os.path.exists(files[0]):
        files = sorted(glob.glob(os.path.join(run, "*", "correlate.csv")))
    if not files:
        sys.exit(f"{run}: no correlate.csv (nor <task>/correlate.csv) in it")
    space = os.path.basename(os.path.normpath(run))
    out = []
    for f in files:
        d = pd.read_csv(f).rename(columns={"score": "rbflex"})
        missing = [m for m in MEMBERS + ["consensus", "ensemble"] if m not in d]
        if missing:
            sys.exit(f"{f}: lacks {', '.join(missing)}: score it with --proxy consensus,ensemble,{','.join(MEMBERS)}")
        values = np.array([d[m].to_numpy(float) for m in MEMBERS])
        for a in [c for c in ACCURACY if c in d]:
            name = os.path.basename(os.path.dirname(f)) if a == "taskonomy" else a
            out.append((space, name, values, d["consensus"].to_numpy(float), d["ensemble"].to_numpy(float),
                        d[a].to_numpy(float)))
    return out


def log_rank(v):
    """ln(rank / n), rank 1 = lowest, ties averaged, NaN and -inf lowest (as rbflex ranks)."""
    v = np.where(np.isnan(v), -np.inf, v)
    return np.log(rankdata(v, method="average") / len(v))


def tau(x, acc):
    """Kendall tau-b over the candidates with an accuracy; non-finite proxy values rank lowest."""
    m = np.isfinite(acc)
    x = np.where(np.isfinite(x), x, -1e300)
    return kendalltau(x[m], acc[m]).statistic


def spearman(L):
    return np.nan_to_num(np.corrcoef(np.array([rankdata(l) for l in L])))


def anchored(L, anchor=0, power=1.0, redundancy=0.0):
    """Members weighted by max(0, Spearman with the anchor) ** power (the anchor: 1), each weight
    then optionally divided by sum_j |rho_ij| ** redundancy over the weighted members j."""
    C = spearman(L)
    w = np.array([1.0 if i == anchor else max(C[i, anchor], 0.0) ** power for i in range(len(L))])
    if redundancy:
        red = (np.abs(C) ** redundancy * (w > 0)).sum(1)
        w = np.where(w > 0, w / np.maximum(red, 1e-12), 0.0)
    return w @ L


def central(L, power=1.0, redundancy=0.0):
    C = spearman(L)
    return anchored(L, int(np.argmax(C.sum(1))), power, redundancy)


def weight_vectors(rng, sparse, dense):
    """Each member alone, `sparse` and `dense` Dirichlet draws from `rng`, and equal weights."""
    n = len(MEMBERS)
    return np.vstack([np.eye(n), rng.dirichlet(np.full(n, 0.3), sparse), rng.dirichlet(np.ones(n), dense),
                      np.ones((1, n))])


def within(margin, pairs):
    """How many (column, value) pairs are within `margin` of the column's best member."""
    return int(sum(r["best_tau"] - x <= margin for r, x in pairs))


RULES = {
    "consensus (anchor rbflex)": lambda L: anchored(L),
    "anchor, weights squared": lambda L: anchored(L, power=2),
    "anchor, / redundancy": lambda L: anchored(L, redundancy=1),
    "anchor, / redundancy^2": lambda L: anchored(L, redundancy=2),
    "anchor, / redundancy^4": lambda L: anchored(L, redundancy=4),
    "central anchor": lambda L: central(L),
    "central anchor, / redundancy^2": lambda L: central(L, redundancy=2),
    "rbflex alone": lambda L: L[0],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--margin", type=float, default=0.02)
    ap.add_argument("--bootstrap", type=int, default=0, metavar="B",
                    help="also resample each column's networks B times (seed 1): how often its best member, "
                         "and consensus, are within the margin of the resample's best member")
    ap.add_argument("--calibrate", type=int, default=0, metavar="K",
                    help="also choose the weights (of 611 vectors) on K labelled networks of each column, "
                         "10 draws (seed 0), and judge them on the column's other networks")
    args = ap.parse_args()
    cols = [c for r in args.runs for c in load(r)]
    group = lambda s: "nds" if s.startswith("nds") else s
    rows = []
    for space, name, V, cons, ens, acc in cols:
        L = np.array([log_rank(v) for v in V])
        t = [tau(v, acc) for v in V]
        rows.append(dict(space=space, column=name, n=int(np.isfinite(acc).sum()), V=V, L=L, acc=acc,
                         cons=cons, best_index=int(np.argmax(t)), best=MEMBERS[int(np.argmax(t))],
                         best_tau=max(t), consensus=tau(cons, acc), ensemble=tau(ens, acc),
                         rules={k: tau(f(L), acc) for k, f in RULES.items()}))
    # label-fit bounds
    W = weight_vectors(np.random.default_rng(0), 2000, 1000)
    T = np.array([[tau(w @ r["L"], r["acc"]) for r in rows] for w in W])
    best = np.array([r["best_tau"] for r in rows])
    met = best - T <= args.margin
    i = int(np.argmax(met.sum(1) + 1e-3 * T.mean(1)))
    fixed = T[i]
    per_run = np.zeros(len(rows))
    for s in dict.fromkeys(r["space"] for r in rows):
        c = [k for k, r in enumerate(rows) if r["space"] == s]
        j = int(np.argmax(met[:, c].sum(1) + 1e-3 * T[:, c].mean(1)))
        per_run[c] = T[j, c]
    print("%-14s %-16s %4s  %-24s %9s %9s %9s %9s" % ("space", "column", "n", "best member", "consensus",
                                                      "ensemble", "fixed fit", "run fit"))
    for r, f, p in zip(rows, fixed, per_run):
        print("%-14s %-16s %4d  %-18s %.3f %9.3f %9.3f %9.3f %9.3f" % (
            r["space"], r["column"][:16], r["n"], r["best"], r["best_tau"], r["consensus"], r["ensemble"], f, p))
    k = len(rows)
    count = lambda v: within(args.margin, zip(rows, v))
    gap = lambda v: float(np.mean([r["best_tau"] - x for r, x in zip(rows, v)]))
    print(f"\nwithin {args.margin} of the best member (mean gap):")
    for label, v in [("consensus", [r["consensus"] for r in rows]), ("ensemble", [r["ensemble"] for r in rows]),
                     ("label-fit, one rule for all columns", fixed), ("label-fit, one rule per run", per_run)]:
        print("  %-38s %2d/%d (%.3f)" % (label, count(v), k, gap(v)))
    print("  fixed weights (%s): %s" % (", ".join(MEMBERS), np.round(W[i], 2)))
    # the label-free family, in sample and leave-one-space-out
    def space_mean(rule, rs):
        per = {}
        for r in rs:
            per.setdefault(group(r["space"]), []).append(r["best_tau"] - r["rules"][rule])
        return float(np.mean([np.mean(v) for v in per.values()]))
    print("\nlabel-free rules, in sample: met, mean gap, mean over spaces of the space's mean gap")
    for rule in RULES:
        v = [r["rules"][rule] for r in rows]
        print("  %-32s %2d/%d  %.3f  %.3f" % (rule, count(v), k, gap(v), space_mean(rule, rows)))
    held = []
    for g in dict.fromkeys(group(r["space"]) for r in rows):
        rule = min(RULES, key=lambda x: space_mean(x, [r for r in rows if group(r["space"]) != g]))
        test = [r for r in rows if group(r["space"]) == g]
        held += [(r, r["rules"][rule]) for r in test]
        print("  held out %-8s chose %-32s met %d/%d" % (g, rule, count([r["rules"][rule] for r in test]), len(test)))
    print("  held out, all: %d/%d (%.3f)" % (within(args.margin, held), len(held),
                                             np.mean([r["best_tau"] - x for r, x in held])))
    if args.bootstrap:
        bootstrap(rows, args.bootstrap, args.margin)
    if args.calibrate:
        calibrate(rows, args.calibrate, args.margin)


def calibrate(rows, k, margin, draws=10):
    """Not label-free: how far K labelled networks per column (e.g. K trained ones) take the
    weights, judged on the column's other networks against the best member there."""
    rng = np.random.default_rng(0)
    W = weight_vectors(rng, 400, 200)
    print(f"\ncalibrated on {k} labelled networks per column ({draws} draws), judged on the others:")
    met, gaps = 0.0, []
    for r in rows:
        space, name, V, acc = r["space"], r["column"], r["V"], r["acc"]
        S = W @ r["L"]
        labelled = np.flatnonzero(np.isfinite(acc))
        hit, gap = 0, []
        for _ in range(draws):
            idx = rng.choice(labelled, k, replace=False)
            rest = np.setdiff1d(np.arange(len(acc)), idx)
            j = int(np.nanargmax([tau(x[idx], acc[idx]) for x in S]))
            g = max(tau(v[rest], acc[rest]) for v in V) - tau(S[j][rest], acc[rest])
            hit, gap = hit + (g <= margin), gap + [g]
        met, gaps = met + hit / draws, gaps + [np.mean(gap)]
        print("  %-14s %-16s mean gap %6.3f  within %.2f in %3.0f%% of draws" % (space, name[:16], np.mean(gap),
                                                                               margin, 100 * hit / draws))
    print("  expected columns met %.1f / %d, mean gap %.3f" % (met, len(rows), np.mean(gaps)))


def bootstrap(rows, times, margin):
    """Is a column's gap sampling noise? Resample its networks and see how often its best member
    (on all of them) is still within the margin of the best member on the resample."""
    rng = np.random.default_rng(1)
    print(f"\nbootstrap ({times} resamples): share of resamples within {margin} of the resample's best member")
    kept, cons = 0.0, 0.0
    for r in rows:
        space, name, V, c, acc, best = r["space"], r["column"], r["V"], r["cons"], r["acc"], r["best_index"]
        hit = np.zeros(2)
        for _ in range(times):
            s = rng.integers(0, len(acc), len(acc))
            t = [tau(v[s], acc[s]) for v in V]
            hit += [max(t) - t[best] <= margin, max(t) - tau(c[s], acc[s]) <= margin]
        kept, cons = kept + hit[0] / times, cons + hit[1] / times
        print("  %-14s %-16s %-18s %4.0f%%   consensus %4.0f%%" % (space, name[:16], MEMBERS[best],
                                                                  100 * hit[0] / times, 100 * hit[1] / times))
    print("  expected columns met: by each column's best member %.1f / %d, by consensus %.1f" % (kept, len(rows), cons))


if __name__ == "__main__":
    main()
