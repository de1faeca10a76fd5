"""A user-defined design space searched and ranked end to end.

A small CNN family (depth, width, kernel, activation): every network is
scored with RBFleX, AZ-NAS and the ensemble, ranked, and the run kept in a
results folder that a rerun (or an interrupted run) resumes; then the space
is searched, at random and by evolution (with a mutation that changes one
choice), on the same budget.

    python python/examples/cnn_space.py [OUT]
"""

import itertools
import sys

import torch
from torch import nn

import rbflex

ACTS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}
CHOICES = {"d": (3, 6), "w": (16, 32), "k": (3, 5), "a": tuple(ACTS)}


def build(arch: str) -> nn.Module:
    """``d{depth}-w{width}-k{kernel}-{act}`` -> a CNN for 32x32 images, 10 classes."""
    d, w, k, act = arch.split("-")
    depth, width, kernel = int(d[1:]), int(w[1:]), int(k[1:])
    layers, c = [], 3
    for i in range(depth):
        stride = 2 if i in (depth // 3, 2 * depth // 3) else 1
        layers.append(nn.Sequential(nn.Conv2d(c, width, kernel, stride, kernel // 2, bias=False),
                                    nn.BatchNorm2d(width), ACTS[act]()))
        c = width
    return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def space(choices: "dict[str, tuple]" = CHOICES) -> "list[str]":
    """Every arch of the family: one per combination of the choices."""
    return [f"d{d}-w{w}-k{k}-{a}" for d, w, k, a in itertools.product(*choices.values())]


def mutate(arch: str, rng, choices: "dict[str, tuple]" = CHOICES) -> str:
    """A neighbour: one of depth, width, kernel, activation changed."""
    d, w, k, a = arch.split("-")
    parts = {"d": int(d[1:]), "w": int(w[1:]), "k": int(k[1:]), "a": a}
    key = rng.choice(sorted(choices))
    parts[key] = rng.choice([v for v in choices[key] if v != parts[key]])
    return f"d{parts['d']}-w{parts['w']}-k{parts['k']}-{parts['a']}"


def main(out: "str | None") -> None:
    archs = space()
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # or real images
    df = rbflex.score_many((build, archs), x, proxies=["rbflex", "az", "ensemble"], seed=1, out=out)
    ranked = df.sort_values("ensemble", ascending=False)
    print(ranked[["arch", "score", "az", "ensemble"]].head(10).to_string())
    print("best by the ensemble:", ranked.iloc[0]["arch"])

    # guided search: 3 trials of 8 networks each, at random and by evolution
    # (the same seeds and budget); with accuracy={arch: acc} the picks get theirs
    picks = rbflex.search((build, archs), x, mutate=mutate, strategy=("random", "evolution"), networks=8,
                          trials=3, population=4, tournament=2, children=2, seed=1, out=out and f"{out}-search")
    print(picks[["strategy", "trial", "arch", "score"]].to_string())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
