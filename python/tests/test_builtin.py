"""Built-in spaces and the CLI's inputs: rbflex.images feeds what the CLI
draws; the NB201 archs as a user design space (xautodl) correlate as the
CLI's `correlate`; rbflex.correlate(space=...) is the CLI's protocol."""

from __future__ import annotations

import csv
import json
import subprocess

import rbflex
from helpers import CLI, nb201
from test_score_many import build


def cli_correlate(tmp_path, n: int) -> "tuple[dict, list[dict]]":
    out = tmp_path / "cli"
    rep = subprocess.run([str(CLI), "correlate", "--space", "nb201", "--sample", str(n), "--seed", "1", "--proxy",
                          "rbflex", "--out", str(out), "--json", "--device", "cpu", "--quiet"],
                         check=True, capture_output=True, text=True).stdout
    with open(out / "correlate.csv") as f:
        return json.loads(rep), list(csv.DictReader(f))


def test_images_are_the_clis_inputs():
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    want = json.loads(subprocess.run([str(CLI), "score", "--arch", arch, "--seed", "4", "--json", "--device", "cpu"],
                                     check=True, capture_output=True, text=True).stdout)
    x, labels = rbflex.images("cifar10", 3, 4)
    assert list(x.shape) == [3, 3, 32, 32] and labels is not None
    assert rbflex.score(nb201(arch, 4), x, seed=4)["score"] == float(want["score"])


def test_nb201_as_a_user_space_correlates_as_the_cli(tmp_path):
    rep, rows = cli_correlate(tmp_path, 12)
    archs = rbflex.space_archs("nb201")
    assert len(archs) == 15625
    idx = [int(r["index"]) for r in rows]
    acc = {r["arch"]: float(r["cifar10"]) for r in rows}
    x, _ = rbflex.images("cifar10", 3, 1)
    table, scores = rbflex.correlate((build, archs), x, acc, seed=1, indices=idx, progress=False)
    assert [float(r["score"]) for r in rows] == list(scores["score"])
    assert table.loc["rbflex", "kendall"] == rep["kendall"]


def test_correlate_on_a_builtin_space_is_the_clis(tmp_path):
    rep, _ = cli_correlate(tmp_path, 12)
    table = rbflex.correlate(space="nb201", sample=12, proxies=["rbflex"], seed=1, out=str(tmp_path / "py"), jobs=1)
    assert table.loc["rbflex", "kendall"] == rep["kendall"]
    assert table.attrs["csv"].endswith("correlate.csv")


def test_hda_over_nb201_as_a_user_space_is_the_clis():
    want = json.loads(subprocess.run([str(CLI), "hda", "--networks", "5", "--seed", "1", "--json", "--device", "cpu"],
                                     check=True, capture_output=True, text=True).stdout)
    x, _ = rbflex.images("cifar10", 3, 1)
    got = rbflex.hda((build, rbflex.space_archs("nb201")), x, networks=5, seed=1)
    assert got["indices"] == [n["index"] for n in want["networks"]]
    assert (got["gamma_k"], got["gamma_q"]) == (want["gamma_k"], want["gamma_q"])
