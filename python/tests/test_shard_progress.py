"""score_many's shards (the CLI's --shard, merged back as `rbflex merge`),
the progress bar (tqdm or one stderr line), the proxies' needs from the
engine, and a run killed from outside resumed without scoring twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

import rbflex
from test_score_many import ARCHS, build, x8

HERE = Path(__file__).resolve().parent


def test_two_shards_merged_equal_the_unsharded_run(tmp_path):
    whole = rbflex.score_many((build, ARCHS), x8(), proxies=["rbflex", "naswot"], out=str(tmp_path / "whole"),
                              progress=False)
    a = rbflex.score_many((build, ARCHS), x8(), proxies=["rbflex", "naswot"], out=str(tmp_path / "a"),
                          shard="0/2", progress=False)
    b = rbflex.score_many((build, ARCHS), x8(), proxies=["rbflex", "naswot"], out=str(tmp_path / "b"),
                          shard="1/2", progress=False)
    assert list(a.index) == [0, 2, 4] and list(b.index) == [1, 3, 5]
    assert (tmp_path / "a" / "shard-0-of-2" / "indices.txt").exists()
    rep = rbflex.merge(str(tmp_path / "m"), ARCHS, [str(tmp_path / "a" / "shard-0-of-2"),
                                                    str(tmp_path / "b" / "shard-1-of-2")])
    assert (rep["shards"], rep["rows"], rep["scored"]) == (2, 6, 6)
    import pandas as pd

    def values(d):  # every column but the timings
        t = pd.read_csv(d / "scores.csv")
        return t[[c for c in t.columns if "seconds" not in c]]

    assert values(tmp_path / "m").equals(values(tmp_path / "whole"))
    calls = []

    def counted(arch):
        calls.append(arch)
        return build(arch)

    merged = rbflex.score_many((counted, ARCHS), x8(), proxies=["rbflex", "naswot"], out=str(tmp_path / "m"),
                               progress=False)
    assert calls == [ARCHS[0]]  # the classes probe only
    assert merged[["arch", "score", "naswot"]].equals(whole[["arch", "score", "naswot"]])


def test_shard_auto_reads_slurm_and_bad_shards_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
    df = rbflex.score_many((build, ARCHS), x8(), out=str(tmp_path), shard="auto", progress=False)
    assert list(df.index) == [2, 5] and (tmp_path / "shard-2-of-3").is_dir()
    with pytest.raises(ValueError, match=r"^shard='3/3': shard 3 of 3 does not exist"):
        rbflex.score_many((build, ARCHS), x8(), out=str(tmp_path), shard="3/3", progress=False)
    with pytest.raises(ValueError, match=r"^shard: give out=DIR too"):
        rbflex.score_many((build, ARCHS), x8(), shard="0/2", progress=False)
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    with pytest.raises(ValueError, match=r"^shard=auto: no array-job index"):
        rbflex.score_many((build, ARCHS), x8(), out=str(tmp_path), shard="auto", progress=False)


def test_progress_is_one_stderr_line_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    rbflex.score_many((build, ARCHS[:3]), x8())
    err = capsys.readouterr().err
    assert "scoring: 0/3 nets" in err and "scoring: 3/3 nets" in err and " nets/s, in " in err
    rbflex.score_many((build, ARCHS[:3]), x8(), progress=False)
    assert capsys.readouterr().err == ""


def test_progress_uses_tqdm_when_installed(monkeypatch):
    bars = []

    class Bar:
        def __init__(self, total, desc, **kw):
            self.total, self.desc, self.n, self.closed = total, desc, 0, False
            bars.append(self)

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = Bar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", auto)
    rbflex.score_many((build, ARCHS[:2]), x8())
    from test_search import ARCHS as CNN, build as cnn, mutate, x4
    rbflex.search((cnn, CNN), x4(), mutate=mutate, strategy="evolution", networks=6, trials=1, population=3,
                  tournament=2, children=2)
    assert [(b.desc, b.total, b.n, b.closed) for b in bars] == [("scoring", 2, 2, True), ("evolving", 6, 6, True)]


def test_the_proxies_needs_come_from_the_engine():
    labelled = {p["name"] for p in rbflex.proxies() if p["labels"]}
    assert labelled == {"snip", "grasp", "fisher", "plain", "epe_nas", "zico"}
    assert rbflex.needs("snip") == {"labels": True, "batch": 64, "classifier": True}
    assert rbflex.needs("rbflex")["labels"] is False
    with pytest.raises(ValueError, match=r"^proxy zico needs labels: "):
        rbflex.score_many((build, ARCHS[:1]), x8(), proxies=["rbflex", "zico"], progress=False)
    with pytest.raises(ValueError, match=r"^unknown proxy 'nope'"):
        rbflex.needs("nope")


SLOW = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    import rbflex
    from test_score_many import ARCHS, build, x8
    def slow(arch):
        time.sleep(0.3)
        return build(arch)
    rbflex.score_many((slow, ARCHS), x8(), proxies=["rbflex", "naswot"], out={out!r}, progress=False)
""")


def test_killed_from_outside_after_some_rows_the_rerun_scores_the_rest_once(tmp_path):
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-c", SLOW.format(here=str(HERE), out=str(out))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    scores = out / "scores.csv"
    t0 = time.time()
    while time.time() - t0 < 120 and p.poll() is None:
        if scores.exists() and len(scores.read_text().splitlines()) >= 1 + 2:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -9, p.stderr.read().decode()
    done = [line.split(",")[0] for line in scores.read_text().splitlines()[1:]]
    assert 2 <= len(done) < len(ARCHS)
    calls = []

    def counted(arch):
        calls.append(arch)
        return build(arch)

    df = rbflex.score_many((counted, ARCHS), x8(), proxies=["rbflex", "naswot"], out=str(out), progress=False)
    rest = [a for i, a in enumerate(ARCHS) if str(i) not in done]
    assert calls[1:] == [a for a in rest for _ in range(2)]  # after the classes probe: each unscored once a proxy
    assert len(scores.read_text().splitlines()) == 1 + len(ARCHS)
    fresh = rbflex.score_many((build, ARCHS), x8(), proxies=["rbflex", "naswot"], progress=False)
    assert df[["arch", "score", "naswot"]].equals(fresh[["arch", "score", "naswot"]])
