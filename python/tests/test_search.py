"""rbflex.search: a user's design space searched at random and by
evolution (its own mutate), the CLI's picks on NB201 (as a user space and as
the built-in space), the reports written, and the refusals in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import rbflex
from helpers import CLI, EXAMPLES
from test_score_many import build as nb201_build

sys.path.insert(0, str(EXAMPLES))
import cnn_space  # noqa: E402
from cnn_space import build  # noqa: E402

#: the example's CNN family (python/examples/cnn_space.py), made small
CHOICES = {"d": (1, 2, 3), "w": (8, 16), "k": (1, 3), "a": ("relu", "gelu")}
ARCHS = cnn_space.space(CHOICES)


def mutate(arch: str, rng) -> str:
    """One choice changed."""
    return cnn_space.mutate(arch, rng, CHOICES)


def x4() -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))


ACC = {a: float(i % 5) for i, a in enumerate(ARCHS)}


def test_a_user_space_is_searched_at_random_and_by_evolution_and_resumes(tmp_path):
    out = tmp_path / "s"
    df = rbflex.search((build, ARCHS), x4(), ACC, mutate=mutate, strategy=("random", "evolution"), networks=12,
                       trials=2, population=4, tournament=2, children=3, out=str(out), progress=False)
    assert list(df["strategy"]) == ["random"] * 2 + ["evolution"] * 2
    assert list(df["trial"]) == [0, 1, 0, 1] and set(df["proxy"]) == {"rbflex"}
    assert all(df["accuracy"] == [ACC[a] for a in df["arch"]])
    rep = json.loads((out / "search.json").read_text())
    assert rep["evolution"]["networks"] == 12 and "accuracy" in rep["evolution"]["mean"]
    assert df.attrs["plot"] == str(out / "search.png") and (out / "search.png").stat().st_size > 0
    # every pick is the best score of the networks its trial scored
    for t in rep["evolution"]["trials"]:
        assert t["score"] == max(e["fitness"] for e in t["evaluations"])
        assert len({e["index"] for e in t["evaluations"]}) == 12
    calls = []

    def counted(arch):
        calls.append(arch)
        return build(arch)

    again = rbflex.search((counted, ARCHS), x4(), ACC, mutate=mutate, strategy=("random", "evolution"),
                          networks=12, trials=2, population=4, tournament=2, children=3, out=str(out),
                          progress=False)
    assert calls == [ARCHS[0]]  # the classes probe only: nothing scored twice
    assert again[["arch", "score"]].equals(df[["arch", "score"]])


def test_without_accuracy_the_picks_have_none_and_no_plot(tmp_path):
    df = rbflex.search((build, ARCHS), x4(), networks=5, trials=1, out=str(tmp_path), progress=False)
    assert len(df) == 1 and df["accuracy"].isna().all() and df.attrs["plot"] is None
    assert df.loc[0, "score"] == rbflex.score_many((build, ARCHS), x4(), progress=False)["score"].loc[
        df.loc[0, "index"]]


def test_evolution_without_mutate_is_refused_before_anything_runs(tmp_path):
    calls = []

    def counted(arch):
        calls.append(arch)
        return build(arch)

    with pytest.raises(ValueError, match=r"^strategy evolution needs mutate=: "):
        rbflex.search((counted, ARCHS), x4(), strategy="evolution", out=str(tmp_path / "s"), progress=False)
    assert calls == [] and not (tmp_path / "s").exists()


@pytest.mark.parametrize("bad, message", [
    (lambda a, rng: "d9-w8-k1-relu", r"^mutate\('d1-w8-k1-relu'\) returned 'd9-w8-k1-relu', which is not one of archs$"),
    (lambda a, rng: 1 / 0, r"^mutate\('d1-w8-k1-relu'\) raised ZeroDivisionError: division by zero$"),
    (lambda a, rng: a, r"^mutate\('d1-w8-k1-relu'\) returned the arch itself"),
])
def test_a_bad_mutation_is_named(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        rbflex.search((build, ARCHS), x4(), mutate=bad, strategy="evolution", networks=8, trials=1,
                      out=str(tmp_path), progress=False)


def test_bad_arguments_are_one_line():
    with pytest.raises(ValueError, match=r"^strategy: unknown 'greedy'"):
        rbflex.search((build, ARCHS), x4(), strategy="greedy")
    with pytest.raises(ValueError, match=r"^networks: must be between 1 and the 24 archs, got 25$"):
        rbflex.search((build, ARCHS), x4(), networks=25)
    with pytest.raises(ValueError, match=r"^accuracy: no value for 23 of the 24 archs, e\.g\. 'd1-w8-k1-gelu'"):
        rbflex.search((build, ARCHS), x4(), {ARCHS[0]: 1.0})
    with pytest.raises(ValueError, match=r"^search: crossover= is for built-in spaces with a crossover"):
        rbflex.search((build, ARCHS), x4(), mutate=mutate, strategy="evolution", crossover=0.5)


def cli_search(tmp_path, *args: str) -> dict:
    return json.loads(subprocess.run(
        [str(CLI), "search", "--space", "nb201", "--seed", "1", "--out", str(tmp_path / "cli"), "--json",
         "--device", "cpu", "--quiet", *args], check=True, capture_output=True, text=True).stdout)


def test_nb201_as_a_user_space_picks_as_the_clis_random_search(tmp_path):
    want = cli_search(tmp_path, "--networks", "3", "--trials", "2")
    x, _ = rbflex.images("cifar10", 3, 1)
    df = rbflex.search((nb201_build, rbflex.space_archs("nb201")), x, networks=3, trials=2, seed=1,
                       out=str(tmp_path / "py"), progress=False)
    assert list(df["index"]) == [t["index"] for t in want["trials"]]
    assert list(df["score"]) == [t["score"] for t in want["trials"]]


def test_a_builtin_space_is_searched_as_the_cli(tmp_path):
    evo = ["--networks", "9", "--trials", "1", "--strategy", "evolution", "--population", "3", "--tournament",
           "2", "--children", "2", "--crossover", "1"]
    want = cli_search(tmp_path, *evo)
    df = rbflex.search(space="nb201", strategy="evolution", networks=9, trials=1, population=3, tournament=2,
                       children=2, crossover=1.0, jobs=1, out=str(tmp_path / "py"), progress=False)
    assert list(df["index"]) == [t["index"] for t in want["trials"]]
    assert list(df["score"]) == [t["score"] for t in want["trials"]]
    assert list(df["accuracy"]) == [t["accuracy"]["cifar10"] for t in want["trials"]]
    assert df.attrs["report"]["trials"][0]["evaluations"] == want["trials"][0]["evaluations"]
    assert df.attrs["report"]["evolution"]["crossover"] == 1.0
    assert any(e["mate"] is not None for e in want["trials"][0]["evaluations"]), "no child was crossed at rate 1"


# with Python's Ctrl-C handler even where the shell started the tests with
# SIGINT ignored (in the background): see test_score_many.INTERRUPTED
STOPPED = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {here!r})
import rbflex
from test_search import ARCHS, build, mutate, x4
n = 0
def stops(arch):
    global n
    n += 1
    if n == 4:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while this network is scored
    return build(arch)
rbflex.search((stops, ARCHS), x4(), mutate=mutate, networks=12, trials=2, out={out!r}, progress=False)
"""


def test_ctrl_c_stops_a_search_and_keeps_its_scores(tmp_path):
    from pathlib import Path

    out = tmp_path / "s"
    here = str(Path(__file__).resolve().parent)
    r = subprocess.run([sys.executable, "-c", STOPPED.format(here=here, out=str(out))], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "KeyboardInterrupt" in r.stderr, r.stderr
    assert f"rbflex: search interrupted; every network scored so far is kept in {out}" in r.stderr
    kept = len((out / "scores.csv").read_text().splitlines()) - 1
    assert 1 <= kept < 12 and not (out / "search.json").exists()
    calls = []

    def counted(arch):
        calls.append(arch)
        return build(arch)

    rbflex.search((counted, ARCHS), x4(), mutate=mutate, networks=12, trials=2, out=str(out), progress=False)
    total = len((out / "scores.csv").read_text().splitlines()) - 1
    assert len(calls) == 1 + total - kept  # the classes probe, then only what was not kept


def test_the_cnn_space_example_runs_end_to_end(tmp_path, capsys):
    cnn_space.main(str(tmp_path / "run"))
    printed = capsys.readouterr().out
    best = printed.split("best by the ensemble: ")[1].split("\n")[0]
    assert best in cnn_space.space()
    assert len((tmp_path / "run" / "scores.csv").read_text().splitlines()) == 1 + len(cnn_space.space())
    picks = json.loads((tmp_path / "run-search" / "search.json").read_text())
    assert [len(picks[s]["trials"]) for s in ("random", "evolution")] == [3, 3]
