"""Shared test helpers: NB201 networks (xautodl), the CLI, safetensors."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("RBFLEX_BIN", ROOT / "target" / "release" / "rbflex"))
EXAMPLES = ROOT / "python" / "examples"
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]


def nb201(arch: str, seed: int) -> torch.nn.Module:
    """xautodl's NB201 TinyNetwork (C=16, N=5, 10 classes) built right after
    ``torch.manual_seed(seed)``, as the reference builds it."""
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    torch.manual_seed(seed)
    return TinyNetwork(16, 5, Structure.str2structure(arch), 10)


def random_archs(n: int, seed: int = 0) -> list[str]:
    """``n`` NB201 arch strings drawn uniformly (ops per edge)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        e = [rng.choice(OPS) for _ in range(6)]
        out.append(f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|")
    return out


def save_safetensors(path: Path, **tensors: torch.Tensor) -> None:
    """Writes float32 tensors in the safetensors format (8-byte header
    length, JSON header, raw little-endian data): written here to avoid a
    dependency for one file."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def cli_score(arch: str, seed: int, x_path: Path, proxies: str, *extra: str) -> dict:
    """``rbflex score --arch A --seed S --input X --proxy P --json --device cpu [EXTRA]``."""
    out = subprocess.run(
        [str(CLI), "score", "--arch", arch, "--seed", str(seed), "--input", str(x_path), "--proxy", proxies,
         "--json", "--device", "cpu", *extra],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)
