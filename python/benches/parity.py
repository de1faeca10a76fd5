"""Parity of rbflex.score with `rbflex score --input` on xautodl NB201 nets.

    .venv-py/bin/python python/benches/parity.py [N]

N random archs (seed i for arch i), 8 random images, every proxy the CLI's
`--input` can run (no labels). Prints, per column, how many archs match
bit for bit and the largest relative difference."""

import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import cli_score, nb201, random_archs, save_safetensors  # noqa: E402
from test_score import UNLABELLED, batch  # noqa: E402

import rbflex  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
stats = {}
with tempfile.TemporaryDirectory() as d:
    path = Path(d) / "x.safetensors"
    x = batch()
    save_safetensors(path, x=x)
    for i, arch in enumerate(random_archs(n, seed=2024)):
        want = cli_score(arch, i, path, UNLABELLED)
        got = rbflex.score(nb201(arch, i), x, proxies=UNLABELLED, seed=i)
        for k, v in want.items():
            if k in ("arch", "index", "params", "proxy") or k.endswith("_note"):
                continue
            w, g = float(v), got[k]
            exact = w == g or (w != w and g != g)
            rel = 0.0 if exact else abs(g - w) / max(abs(w), 1e-300)
            s = stats.setdefault(k, {"exact": 0, "max_rel": 0.0})
            s["exact"] += exact
            s["max_rel"] = max(s["max_rel"], rel)
        print(f"{i + 1}/{n}", file=sys.stderr)
print(json.dumps({"archs": n, "columns": stats}, indent=1))
