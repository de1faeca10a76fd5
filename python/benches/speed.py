"""Speed of rbflex.score_many (RBFleX) on xautodl NB201 nets, one core,
against the CLI's `bench --jobs 1` on the same nets.

    .venv-py/bin/python python/benches/speed.py [N]

The CLI's `correlate --out` lists N sampled (index, arch) pairs; `bench
--index ...` times those indices; score_many times the same archs built
by xautodl (batch 3, as the CLI's default)."""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import CLI  # noqa: E402

import rbflex  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
torch.set_num_threads(1)
with tempfile.TemporaryDirectory() as d:
    subprocess.run([str(CLI), "correlate", "--space", "nb201", "--sample", str(n), "--quiet", "--seed", "1", "--proxy",
                    "rbflex", "--out", d, "--jobs", "1", "--device", "cpu"], check=True, capture_output=True)
    rows = [line.split(",")[:2] for line in (Path(d) / "scores.csv").read_text().splitlines()[1:]]
idx = [r[0] for r in rows]
archs = [r[1] for r in rows]
args = [str(CLI), "bench", "--jobs", "1", "--device", "cpu", "--json", "--seed", "1"]
for i in idx:
    args += ["--index", i]
cli = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def build(arch):
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    return TinyNetwork(16, 5, Structure.str2structure(arch), 10)


x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
t0 = time.time()
df = rbflex.score_many((build, archs), x, proxies=["rbflex"], seed=1, progress=False)
secs = time.time() - t0
py = len(archs) / secs


def reference_protocol(arch):
    """The RBFleX authors' NB201 scoring as their script does it (written
    here from its description, not copied): hooks on every module whose type
    name contains "ReLU" concatenating outputs into K, on the last module's
    input into Q, float64, one forward per image, min-max normalisation,
    RBF kernels and slogdet."""
    net = build(arch)
    mods = list(net.named_modules())
    st = {}

    def hk(m, i, o):
        st["K"] = torch.cat([st["K"], o.reshape(-1).double()])

    def hq(m, i, o):
        st["Q"] = torch.cat([st["Q"], i[0].reshape(-1).double()])
    for k, (_, m) in enumerate(mods):
        if "ReLU" in str(type(m)):
            m.register_forward_hook(hk)
        if k == len(mods) - 1:
            m.register_forward_hook(hq)
    rows_k, rows_q = [], []
    for i in range(x.shape[0]):
        st["K"], st["Q"] = torch.tensor([], dtype=torch.float64), torch.tensor([], dtype=torch.float64)
        net(x[i:i + 1])
        rows_k.append(st["K"])
        rows_q.append(st["Q"])
    out = 0.0
    for rows, g in ((rows_k, 2.68690173088039e-12), (rows_q, 1.02460061284506e-11)):
        m = torch.stack(rows)
        lo, hi = m.min(0, keepdim=True).values, m.max(0, keepdim=True).values
        hi[hi == lo] = 1
        lo[hi == lo] = 0
        m = (m - lo) / (hi - lo)
        sq = (m ** 2).sum(-1)
        out += torch.linalg.slogdet(torch.exp(-g * (sq[:, None] + sq[None, :] - 2 * m @ m.T)))[1].item()
    return out


t0 = time.time()
with torch.no_grad():
    for a in archs:
        torch.manual_seed(0)
        reference_protocol(a)
ref = len(archs) / (time.time() - t0)
print(json.dumps({"networks": len(archs), "reference_nets_per_second": ref, "vs_reference": py / ref, "cli_nets_per_second": cli["nets_per_second"],
                  "python_nets_per_second": py, "ratio": py / cli["nets_per_second"],
                  "python_seconds": secs, "scored": int(df["score"].notna().sum())}, indent=1))
