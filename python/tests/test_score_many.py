"""rbflex.score_many: the CLI's seeding, rank aggregations, the resumable
results folder (killed mid-run, rerun: nothing scored twice, same values)
and a build that fails for one arch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import rbflex
from helpers import nb201, random_archs

ARCHS = random_archs(6, seed=11)
HERE = Path(__file__).resolve().parent


def x8() -> torch.Tensor:
    return torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def build(arch: str) -> torch.nn.Module:
    from xautodl.models.cell_infers.tiny_network import TinyNetwork
    from xautodl.models.cell_searchs.genotypes import Structure

    return TinyNetwork(16, 5, Structure.str2structure(arch), 10)


def test_a_space_is_seeded_as_the_cli_and_ranked():
    df = rbflex.score_many((build, ARCHS[:3]), x8(), proxies=["rbflex", "az"], seed=2, progress=False)
    assert list(df["arch"]) == ARCHS[:3]
    assert list(df["init_seed"]) == [2_000_000, 2_000_001, 2_000_002]
    for i, arch in enumerate(ARCHS[:3]):
        one = rbflex.score(nb201(arch, 2_000_000 + i), x8(), proxies=["rbflex"], seed=2_000_000 + i)
        assert df.loc[i, "score"] == one["score"]
    assert sorted(df["az"].rank()) == [1.0, 2.0, 3.0]


def test_a_list_of_models_is_scored_on_copies():
    nets = [nb201(a, 0) for a in ARCHS[:2]]
    df = rbflex.score_many(nets, x8(), progress=False)
    assert list(df["arch"]) == ["model0", "model1"]
    assert df.loc[1, "score"] == rbflex.score(nets[1], x8())["score"]


def test_a_build_that_raises_is_reported_and_the_others_scored():
    def flaky(arch):
        if arch == ARCHS[1]:
            raise RuntimeError("no such cell")
        return build(arch)

    df = rbflex.score_many((flaky, ARCHS[:3]), x8(), progress=False)
    assert df["score"].notna().sum() == 2
    assert "RuntimeError: no such cell" in df.loc[1, "error"]


KILLED = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, {here!r})
    import rbflex
    from test_score_many import ARCHS, build, x8
    def dies(arch):
        if arch == ARCHS[3]:
            os.kill(os.getpid(), 9)
        return build(arch)
    rbflex.score_many((dies, ARCHS), x8(), proxies=["rbflex", "naswot"], out={out!r}, progress=False)
""")


def test_an_interrupted_folder_resumes_without_scoring_twice(tmp_path):
    out = tmp_path / "run"
    code = KILLED.format(here=str(HERE), out=str(out))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    assert (out / "run.json").exists()
    calls = []

    def counted(arch):
        calls.append(arch)
        return build(arch)

    df = rbflex.score_many((counted, ARCHS), x8(), proxies=["rbflex", "naswot"], out=str(out), progress=False)
    # the first build tells the classes; then only the three never scored
    # (each proxy builds its own copy)
    assert calls[0] == ARCHS[0]
    assert calls[1:] == [a for a in ARCHS[3:] for _ in range(2)]
    fresh = rbflex.score_many((build, ARCHS), x8(), proxies=["rbflex", "naswot"], out=str(tmp_path / "b"),
                              progress=False)
    assert df[["arch", "score", "naswot"]].equals(fresh[["arch", "score", "naswot"]])
    lines = (out / "scores.csv").read_text().splitlines()
    assert len(lines) == 1 + len(ARCHS)


def test_correlate_over_a_user_space(tmp_path):
    df = rbflex.score_many((build, ARCHS), x8(), proxies=["rbflex", "naswot"], seed=3, progress=False)
    acc = dict(zip(df["arch"], df["naswot"]))  # a "ground truth" that naswot ranks perfectly
    table, scores = rbflex.correlate((build, ARCHS), x8(), acc, proxies=["naswot", "rbflex"], seed=3,
                                     progress=False)
    assert table.loc["naswot", "kendall"] == 1.0 and table.loc["naswot", "n"] == len(ARCHS)
    assert list(scores["accuracy"]) == list(df["naswot"])
    csv = tmp_path / "acc.csv"
    csv.write_text("arch,accuracy\n" + "".join(f"{a},1.0\n" for a in ARCHS[:-1]))
    with pytest.raises(ValueError, match=r"^accuracy: no value for 1 arch\(es\), e\.g\. "):
        rbflex.correlate((build, ARCHS), x8(), csv, seed=3, progress=False)


# Python installs its Ctrl-C handler only where SIGINT is not ignored, and a
# shell ignores it in what it starts in the background (`make test &`): the
# scripts below set the handler a terminal's Python has.
INTERRUPTED = textwrap.dedent("""
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {here!r})
    import rbflex
    from test_score_many import ARCHS, build, x8
    def stops(arch):
        if arch == ARCHS[2]:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while this network is scored
        return build(arch)
    df = rbflex.score_many((stops, ARCHS), x8(), out={out!r}, progress=False)
    print(len(df), list(df["arch"]) == ARCHS[:3])
""")


def test_ctrl_c_stops_after_the_current_network_and_keeps_the_scores(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", INTERRUPTED.format(here=str(HERE), out=str(out))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "3 True\n"
    assert "rbflex: interrupted; 3 of 6 networks scored, kept in" in r.stderr
    assert len((out / "scores.csv").read_text().splitlines()) == 1 + 3


def test_a_channels_last_folder_records_its_layout_and_refuses_the_other(tmp_path):
    out = tmp_path / "cl"
    df = rbflex.score_many((build, ARCHS[:2]), x8(), proxies="rbflex,grad_norm", out=str(out), progress=False,
                           channels_last=True)
    assert df["grad_norm"].notna().all()
    assert '"layout": "channels_last"' in (out / "run.json").read_text()
    with pytest.raises(ValueError, match="layout"):
        rbflex.score_many((build, ARCHS[:2]), x8(), proxies="rbflex,grad_norm", out=str(out), progress=False)
