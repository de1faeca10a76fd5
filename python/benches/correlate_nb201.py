"""NB201 as a user design space (xautodl's TinyNetwork, the embedded
accuracy table) against the CLI's `correlate` on the same sample, one core.

    .venv-py/bin/python python/benches/correlate_nb201.py [N]

Runs `rbflex correlate --space nb201 --sample N --seed 1 --proxy rbflex
--jobs 1`, then `rbflex.correlate((build, archs), x, accuracy, seed=1,
indices=...)` on the same indices (the CLI's correlate.csv), the same
images (`rbflex.images("cifar10", 3, 1)`) and the accuracies that file
lists (the embedded table's); prints both Kendall taus, whether every
score is the same bit for bit, and the wall times."""

import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import CLI  # noqa: E402

import rbflex  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
torch.set_num_threads(1)


def build(arch):
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    return TinyNetwork(16, 5, Structure.str2structure(arch), 10)


with tempfile.TemporaryDirectory() as d:
    t0 = time.time()
    rep = json.loads(subprocess.run([str(CLI), "correlate", "--space", "nb201", "--sample", str(n), "--seed", "1",
                                     "--proxy", "rbflex", "--out", d, "--jobs", "1", "--device", "cpu", "--json",
                                     "--quiet"], check=True, capture_output=True, text=True).stdout)
    cli_secs = time.time() - t0
    with open(Path(d) / "correlate.csv") as f:
        rows = list(csv.DictReader(f))
idx = [int(r["index"]) for r in rows]
acc = {r["arch"]: float(r["cifar10"]) for r in rows}
x, _ = rbflex.images("cifar10", 3, 1)
t0 = time.time()
table, scores = rbflex.correlate((build, rbflex.space_archs("nb201")), x, acc, seed=1, indices=idx, progress=False)
py_secs = time.time() - t0
same = [float(r["score"]) for r in rows] == list(scores["score"])
py_kendall = float(table.loc["rbflex", "kendall"])
print(json.dumps({"networks": len(idx), "cli_kendall": rep["kendall"], "python_kendall": py_kendall,
                  "kendall_equal": rep["kendall"] == py_kendall, "scores_bit_for_bit": bool(same),
                  "cli_seconds": cli_secs, "python_seconds": py_secs}, indent=1))
