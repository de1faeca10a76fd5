"""Where score_many's time goes on xautodl NB201 nets (RBFleX, one core):
per network, the user's build (xautodl in Python), the package's
preparation (hooks, parameters and their roles), the hooked forward, and the rest
(the engine: maths, glue).

    .venv-py/bin/python python/benches/breakdown.py [N]

Compare with `rbflex bench --jobs 1 --index ...` on the same indices
(printed as a command)."""

import collections
import sys
import time

import torch

import rbflex
from rbflex import _probe

n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
torch.set_num_threads(1)
spent: "collections.Counter[str]" = collections.Counter()


def timed(name, f):
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[name] += time.perf_counter() - t
    return g


def build(arch):
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    return TinyNetwork(16, 5, Structure.str2structure(arch), 10)


idx = list(range(0, 15625, 15625 // n))[:n]
every = rbflex.space_archs("nb201")
archs = [every[i] for i in idx]
x, _ = rbflex.images("cifar10", 3, 1)
rbflex.score_many((build, archs[:2]), x, seed=1, progress=False)  # warm up
_probe.Prepared.__init__ = timed("prepare", _probe.Prepared.__init__)
_probe.Prepared.forward = timed("forward", _probe.Prepared.forward)
t0 = time.time()
rbflex.score_many((timed("build", build), archs), x, seed=1, progress=False)
total = time.time() - t0
ms = {k: round(1000 * v / n, 1) for k, v in spent.items()}
ms["rest"] = round(1000 * total / n - sum(ms.values()), 1)
print(f"{n / total:.2f} nets/s; ms per network: {ms}")
print("rbflex bench --jobs 1 --device cpu --seed 1 " + " ".join(f"--index {i}" for i in idx[:3]) + " ...")
