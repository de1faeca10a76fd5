"""The user-facing functions (see the package docstring)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import torch
from torch import nn

from . import _rbflex
from ._probe import Prepared, output_tensor

Inputs = Union[torch.Tensor, Iterable]
Proxies = Union[str, Sequence[str]]


def proxies() -> "list[dict]":
    """Every proxy and rank aggregation: name, whether it needs labels, its
    protocol batch (None: your whole batch), whether it needs a classifier
    (each from the engine's own ``needs`` of the proxy)."""
    return [
        {"name": n, "labels": lab, "batch": b, "classifier": c, "aggregate": bool(d), "describe": d}
        for n, lab, b, c, d in _rbflex.proxies()
    ]


_AGGREGATES = frozenset(p["name"] for p in proxies() if p["aggregate"])


def needs(name: str) -> "dict":
    """What proxy ``name`` needs, as the engine declares it: ``labels``
    (the images' class labels), ``batch`` (its protocol's batch size, None:
    yours) and ``classifier`` (class logits)."""
    for p in proxies():
        if p["name"] == name:
            return {k: p[k] for k in ("labels", "batch", "classifier")}
    raise ValueError(f"unknown proxy '{name}' (see rbflex.proxies())")


def _check_labels(needed: "list[str]", labels: Optional[torch.Tensor]) -> None:
    """Refuses proxies that read labels when there are none (the engine's needs)."""
    if labels is not None:
        return
    info = {p["name"]: p for p in proxies()}
    for p in needed:
        if info[p]["labels"]:
            raise ValueError(f"proxy {p} needs labels: pass labels=... or a loader of (x, y)")


class _Progress:
    """Progress of a long call on stderr: a ``tqdm`` bar when tqdm is
    installed, else one line (count, rate, ETA) redrawn at most twice a
    second. Also the engine's progress observer; a Ctrl-C that reaches it
    is remembered (``interrupted``) so that the next build stops the run."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.interrupted = False
        self._bar: Any = None
        self._what = ""
        self._total = 0
        self._done = 0
        self._t0 = 0.0
        self._drawn = 0.0

    def start(self, what: str, total: int) -> None:
        """A new bar over ``total`` networks."""
        self.close()
        if not self.enabled or total <= 0:
            return
        self._what, self._total, self._done, self._t0, self._drawn = what, int(total), 0, time.time(), 0.0
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._bar = None
            self._draw(force=True)
        else:
            self._bar = tqdm(total=self._total, desc=what, unit="net", file=sys.stderr)

    def update(self, done: int) -> None:
        """``done`` networks of the bar's total are finished."""
        if not self.enabled:
            return
        step, self._done = done - self._done, done
        if step <= 0:
            return
        if self._bar is not None:
            self._bar.update(step)
        else:
            self._draw(force=done >= self._total)

    def line(self) -> str:
        """``what: done/total nets, R nets/s, ETA T``."""
        secs = max(time.time() - self._t0, 1e-9)
        rate = self._done / secs
        if self._done >= self._total:
            tail = f"in {secs:.0f}s"
        elif rate > 0:
            tail = f"ETA {(self._total - self._done) / rate:.0f}s"
        else:
            tail = "ETA unknown"
        return f"{self._what}: {self._done}/{self._total} nets, {rate:.2f} nets/s, {tail}"

    def _draw(self, force: bool = False) -> None:
        # a terminal gets the line redrawn; a log (a batch job's) a line every 30 s
        tty = sys.stderr.isatty()
        now = time.time()
        if force or now - self._drawn >= (0.5 if tty else 30.0):
            self._drawn = now
            if tty:
                print("\r" + self.line(), end="", file=sys.stderr, flush=True)
            else:
                print(self.line(), file=sys.stderr, flush=True)

    def close(self) -> None:
        """Ends the bar (its last state stays on screen)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self._what and sys.stderr.isatty():
            print(file=sys.stderr)
        self._what = ""

    def engine(self, what: str, done: int, total: int) -> None:
        """The engine's progress observer (``what``: scoring, evolving); it
        runs on the calling thread, where Python handles Ctrl-C: a
        KeyboardInterrupt here stops the engine (``set_progress``)."""
        if not self.enabled:
            return
        if done == 0 or what != self._what:
            self.start(what, total)
        self.update(done)

    @contextlib.contextmanager
    def observing(self) -> Iterator["_Progress"]:
        """The engine reports its progress here while inside (drawn only
        when enabled; a Ctrl-C is noticed either way). Run the engine with
        ``quiet=False`` inside: the observer replaces its bar."""
        _rbflex.set_progress(self)
        try:
            yield self
        finally:
            _rbflex.set_progress(None)
            self.close()


def spaces() -> "list[str]":
    """The built-in design spaces' names (as the CLI's ``--space``)."""
    return list(_rbflex.spaces())


def _proxy_spec(p: Proxies) -> str:
    if isinstance(p, str):
        return p
    names = list(p)
    if not names:
        raise ValueError("proxies: give at least one proxy name (see rbflex.proxies())")
    return ",".join(names)


def _batch(inputs: Inputs, labels: Optional[torch.Tensor]) -> "tuple[torch.Tensor, Optional[torch.Tensor]]":
    """One input batch (and labels) from a tensor or an iterable of (x, y)."""
    if isinstance(inputs, torch.Tensor):
        x = inputs
    else:
        xs, ys = [], []
        for item in inputs:
            if isinstance(item, (tuple, list)) and len(item) >= 2:
                xs.append(item[0])
                ys.append(item[1])
            elif isinstance(item, torch.Tensor):
                xs.append(item)
            else:
                raise TypeError(f"inputs: expected (x, y) pairs or tensors, got {type(item).__name__}")
        if not xs:
            raise ValueError("inputs: the loader gave no batch (it is empty)")
        x = torch.cat(xs)
        if labels is None and len(ys) == len(xs):
            labels = torch.cat([torch.as_tensor(y) for y in ys])
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"inputs: expected a tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"inputs: expected a batch [N, ...] with N >= 1, got shape {list(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"inputs: expected floating-point values, got {x.dtype}")
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.dtype.is_floating_point or labels.dim() != 1 or labels.shape[0] != x.shape[0]:
            raise ValueError(f"labels: expected {x.shape[0]} integer class indices, got {labels.dtype} "
                             f"of shape {list(labels.shape)}")
    return x.detach().float(), labels


def _model_device(model: nn.Module) -> Optional[torch.device]:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return None


def _check_model(prep: Prepared, x: torch.Tensor, needed: "list[str]") -> int:
    """Runs a probe pass (no gradients) and returns the number of classes;
    refuses what the asked proxies cannot read, naming proxy and problem."""
    try:
        with torch.no_grad():
            out = output_tensor(prep.model(x[: min(2, x.shape[0])]))
    except Exception as e:  # the model's own message
        first = (str(e).splitlines() or [""])[0]
        raise ValueError(f"the model's forward raised {type(e).__name__}: {first}") from None
    if out.dim() < 2 and any(p not in ("rbflex", "naswot") for p in needed):
        raise ValueError(f"the model's output has shape {list(out.shape)}; proxies need [N, classes] logits")
    for p in ("rbflex", "naswot"):
        if p in needed and prep.n_acts == 0:
            raise ValueError(f"proxy {p} reads activation modules (nn.ReLU, nn.GELU, ...), but the model has "
                             "none (activations called as functions, F.relu, are not seen)")
    if "rbflex" in needed and not prep.has_last:
        raise ValueError("proxy rbflex reads the input of the last nn.Linear (the classifier), but the model "
                         "has no nn.Linear")
    return int(out.shape[-1]) if out.dim() >= 2 else 0


def score(model: nn.Module, inputs: Inputs, proxies: Proxies = ("rbflex",),
          labels: Optional[torch.Tensor] = None, gammas: Optional["tuple[float, float]"] = None,
          seed: int = 0, device: Union[str, torch.device, None] = None,
          stages: Optional[Sequence[str]] = None, channels_last: bool = False) -> "dict[str, float]":
    """Scores ``model`` with training-free proxies; higher is better.

    Args:
        model: any ``nn.Module`` returning logits (or a tuple ending with them);
            never changed (weights, ``training``, ``requires_grad``).
        inputs: an input batch ``[N, ...]``, or an iterable of ``(x, y)``
            batches (a DataLoader), concatenated.
        proxies: names (see :func:`proxies`), ``"all"`` or a comma list.
        labels: class indices ``[N]`` for the proxies that need them
            (taken from the loader when it gives ``(x, y)``).
        gammas: RBFleX's ``(gamma_k, gamma_q)`` (default: the CLI's).
        seed: the CLI's ``--seed``: the proxies' own random inputs and labels.
            Re-initialising proxies (AZ-NAS, Zen, synflow) draw from torch's
            generator as it stands at the call, as right after the model's
            build (so a model built right after ``torch.manual_seed(S)`` scores
            as ``rbflex score --seed S``); the generator is restored afterwards.
        device: where to run (default: the model's device); the model must
            be there already.
        stages: module names whose outputs AZ-NAS reads as stages (default:
            top-level children holding a convolution or attention).
        channels_last: run every proxy but RBFleX on channels-last inputs
            (the CLI's ``--channels-last``): faster on the CPU for most
            gradient proxies, values differ from the reference's in float32
            rounding (the default keeps them bit for bit).

    Returns:
        every asked proxy's value and parts, by the CLI's JSON column names
        (RBFleX's value is ``score``); notes on degenerate values under
        ``"<proxy>_note"``.

    The model runs on one libtorch intra-op thread, as in the CLI, so the
    values are the same bits on any machine (torch's own setting is restored
    afterwards).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    spec = _proxy_spec(proxies)
    needed, _asked = _rbflex.selection_names(spec)
    x, labels = _batch(inputs, labels)
    have = _model_device(model) or torch.device("cpu")
    dev = torch.device(device) if device is not None else have
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    if have.type != dev.type or (dev.type == "cuda" and have.index not in (None, dev.index)):
        raise ValueError(f"device: the model is on {have}, but {dev} was asked (move it with model.to('{dev}'))")
    _check_labels(needed, labels)
    gk, gq = gammas if gammas is not None else (None, None)
    defaults = _rbflex_gammas()
    gk = defaults[0] if gk is None else float(gk)
    gq = defaults[1] if gq is None else float(gq)
    state = torch.get_rng_state()
    probe = Prepared(model, dev, stages=stages)
    classes = _check_model(probe, x.to(dev), needed)
    if labels is not None and labels.numel() and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"labels: values {int(labels.min())}..{int(labels.max())} are out of range for the "
                         f"model's {classes} classes")

    def factory(init: int) -> Prepared:
        if init != 0:
            torch.set_rng_state(state)
        return Prepared(model, dev, stages=stages)

    try:
        values, notes = _rbflex.score(factory, x, labels, spec, gk, gq, int(seed), classes, str(dev),
                                      channels_last=bool(channels_last))
    finally:
        torch.set_rng_state(state)
    out = {k: float(v) for k, v in values}
    for p, n in notes:
        out[f"{p}_note"] = n
    return out


def _rbflex_gammas() -> "tuple[float, float]":
    return (_GAMMA_K, _GAMMA_Q)


_GAMMA_K, _GAMMA_Q = _rbflex.default_gammas()


def _digest(x: torch.Tensor, labels: Optional[torch.Tensor]) -> str:
    """What ``run.json`` records of the inputs: shape and a SHA-256 of the values."""
    import hashlib

    h = hashlib.sha256(x.contiguous().numpy().tobytes())
    if labels is not None:
        h.update(labels.to(torch.int64).contiguous().numpy().tobytes())
    return f"given batch {'x'.join(map(str, x.shape))}, sha256 {h.hexdigest()[:16]}"


class _UserSpace:
    """``models`` as :func:`score_many` takes them: ``(build, archs)`` or a
    list of modules; ``prepare(i)`` builds (lazily) and prepares network ``i``."""

    def __init__(self, models: Any, dev: torch.device, stages: Optional[Sequence[str]],
                 progress: Optional[_Progress] = None) -> None:
        self.dev, self.stages, self.progress = dev, stages, progress
        if isinstance(models, tuple) and len(models) == 2 and callable(models[0]):
            self.build_fn: Optional[Callable[[Any], nn.Module]] = models[0]
            self.archs = list(models[1])
            self.mods: "list[nn.Module]" = []
        else:
            self.build_fn = None
            self.mods = list(models)
            self.archs = [f"model{i}" for i in range(len(self.mods))]
            for i, m in enumerate(self.mods):
                if not isinstance(m, nn.Module):
                    raise TypeError(f"models[{i}]: expected an nn.Module, got {type(m).__name__}")
        self.names = [str(a) for a in self.archs]
        if not self.names:
            raise ValueError("models: the set is empty")
        if len(set(self.names)) != len(self.names):
            raise ValueError("archs: each architecture must be unique (str(arch) names it in scores.csv)")

    def prepare(self, i: int) -> Prepared:
        """Network ``i`` prepared for the engine (a user's build: its own module)."""
        if self.progress is not None and self.progress.interrupted:
            raise KeyboardInterrupt("interrupted")
        if self.build_fn is None:
            return Prepared(self.mods[i], self.dev, stages=self.stages)
        m = self.build_fn(self.archs[i])
        if not isinstance(m, nn.Module):
            raise TypeError(f"build({self.archs[i]!r}) returned {type(m).__name__}, not an nn.Module")
        return Prepared(m, self.dev, own=True, stages=self.stages)

    def classes(self, x: torch.Tensor, needed: "list[str]", seed: int, first: int = 0) -> int:
        """The classes from network ``first``'s logits, built with its seed
        (torch's generator left as it was); refuses what the proxies cannot read."""
        state = torch.get_rng_state()
        try:
            if self.build_fn is None:
                m = self.mods[first]
            else:
                torch.manual_seed(int(seed) * 1_000_000 + first)
                m = self.build_fn(self.archs[first])
            return _check_model(Prepared(m, self.dev, stages=self.stages), x.to(self.dev), needed)
        finally:
            torch.set_rng_state(state)


def _device(device: Union[str, torch.device, None]) -> torch.device:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    return dev


def score_many(models, inputs: Inputs, proxies: Proxies = ("rbflex",), seed: int = 0,
               out: Optional[str] = None, labels: Optional[torch.Tensor] = None,
               gammas: Optional["tuple[float, float]"] = None, device: Union[str, torch.device, None] = None,
               name: str = "user", stages: Optional[Sequence[str]] = None, progress: bool = True,
               indices: Optional[Sequence[int]] = None, shard: Optional[str] = None, channels_last: bool = False):
    """Scores a set of networks; returns a ``pandas.DataFrame`` with one row
    per network and a column per asked proxy (and rank aggregation such as
    ``az``, ``ensemble`` or ``consensus``, ranked over this set), plus every part.

    Args:
        models: a list of ``nn.Module`` (each scored on a copy), or a pair
            ``(build, archs)``: ``build(arch) -> nn.Module`` is called lazily,
            one network at a time, right after
            ``torch.manual_seed(seed * 1_000_000 + i)`` (as the CLI seeds).
        inputs, labels, gammas, device, stages, channels_last: as :func:`score`
            (``channels_last`` is recorded in ``run.json``, as the CLI's).
        proxies: names, ``"all"`` or a comma list.
        seed: the run seed (network ``i`` gets ``seed * 1_000_000 + i``).
        out: a results folder, the CLI's (``run.json``, ``scores.csv``,
            lock): an interrupted call resumes there, nothing scored twice.
        name: the space's name recorded in ``run.json``.
        progress: show a progress bar on stderr (tqdm when installed).
        indices: score only these positions of ``archs`` (a sample of a large
            space; each keeps its own seed ``seed * 1_000_000 + i``).
        shard: ``"K/N"`` scores only shard K of N of the networks (the CLI's
            ``--shard``: positions K, K+N, ... of the sorted indices) into
            ``out/shard-K-of-N``; ``"auto"`` reads K and N from a Slurm
            array job (``SLURM_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_COUNT``).
            :func:`merge` puts the shards together; the same call without
            ``shard`` on the merged folder then scores nothing again.

    A network whose build or forward fails is reported (column ``error``)
    and the others are scored; Ctrl-C stops after the current network and
    keeps every finished score (in ``out``).
    """
    import pandas as pd

    spec = _proxy_spec(proxies)
    needed, _asked = _rbflex.selection_names(spec)
    x, labels = _batch(inputs, labels)
    dev = _device(device)
    _check_labels(needed, labels)
    k_of_n = _rbflex.parse_shard(shard) if shard is not None else None
    if k_of_n is not None and out is None:
        raise ValueError("shard: give out=DIR too (shard K of N writes DIR/shard-K-of-N)")
    bar = _Progress(progress)
    space = _UserSpace(models, dev, stages)
    names = space.names
    chosen = list(range(len(names))) if indices is None else sorted(set(int(i) for i in indices))
    bad = [i for i in chosen if not 0 <= i < len(names)]
    if bad:
        raise ValueError(f"indices: {bad[0]} is outside the {len(names)} archs")
    gk, gq = gammas if gammas is not None else _rbflex_gammas()
    classes = space.classes(x, needed, seed, chosen[0] if chosen else 0)
    run = _rbflex.Run(name, names, space.prepare, x, labels, _digest(x, labels), spec, float(gk), float(gq),
                      int(seed), classes, str(dev), None if out is None else str(out), k_of_n,
                      None if indices is None else chosen, channels_last=bool(channels_last))
    share = run.share()
    if share is not None:
        chosen = list(share)
    errors: "dict[int, str]" = {}
    todo = [i for i in chosen if not run.done(i)]
    bar.start("scoring", len(todo))
    try:
        for k, i in enumerate(todo):
            try:
                run.score(i)
            except ValueError as e:
                errors[i] = str(e)
                print(f"\nrbflex: {names[i]}: {e}", file=sys.stderr)
            except KeyboardInterrupt:
                kept = sum(run.done(j) for j in todo)
                bar.close()
                print(f"rbflex: interrupted; {kept} of {len(todo)} networks scored, kept"
                      + (f" in {out}" if out is not None else ""), file=sys.stderr)
                break
            bar.update(k + 1)
    finally:
        bar.close()
    rows, values = run.table(list(chosen))
    df = pd.DataFrame([{"index": i, "arch": a, "init_seed": s, **v} for i, a, s, v in rows])
    if len(df):
        for col, vals in values:
            if col not in df.columns or col in _AGGREGATES:
                df[col] = vals
        df = df.set_index("index")
    if errors:
        err = pd.DataFrame({"arch": [names[i] for i in errors], "error": list(errors.values())},
                           index=pd.Index(list(errors), name="index"))
        df = pd.concat([df, err]).sort_index()
    return df


def merge(out: str, archs, shards: Optional[Sequence[str]] = None, allow_missing: bool = False,
          name: str = "user") -> "dict":
    """Puts the shards of a sharded :func:`score_many` (``shard="K/N"``)
    together into ``out``, as ``rbflex merge`` does for the CLI's runs: the
    shard folders ``shards`` (default: every ``out/shard-K-of-N``) must be
    of one run, each complete (unless ``allow_missing``). ``archs`` is the
    space's list (or its ``(build, archs)`` pair), against which every row
    is checked. Returns the merge's report."""
    import json

    if isinstance(archs, tuple) and len(archs) == 2 and callable(archs[0]):
        archs = archs[1]
    names = [str(a) for a in archs]
    dirs = [str(d) for d in (shards or [])]
    return json.loads(_rbflex.merge(str(out), dirs, bool(allow_missing), name, names))


def _accuracy_map(accuracy: Any) -> "dict[str, float]":
    """``{str(arch): accuracy}`` from a dict, a Series or a CSV (arch,accuracy)."""
    import pandas as pd

    if isinstance(accuracy, (str, bytes)) or hasattr(accuracy, "__fspath__"):
        acc_df = pd.read_csv(accuracy, dtype={"arch": str})
        missing = {"arch", "accuracy"} - set(acc_df.columns)
        if missing:
            raise ValueError(f"accuracy: the CSV needs columns arch,accuracy (missing {sorted(missing)})")
        return {str(k): float(v) for k, v in zip(acc_df["arch"], acc_df["accuracy"])}
    return {str(k): float(v) for k, v in dict(accuracy).items()}


def _strategy(strategy: Union[str, Sequence[str]]) -> "tuple[str, bool]":
    """``"random"``, ``"evolution"``, ``"random,evolution"`` or a pair: the
    engine's spec and whether evolution runs."""
    parts = [p.strip() for p in (strategy.split(",") if isinstance(strategy, str) else list(strategy))]
    for p in parts:
        if p not in ("random", "evolution"):
            raise ValueError(f"strategy: unknown '{p}' (random, evolution, or both: ('random', 'evolution'))")
    if not parts:
        raise ValueError("strategy: give random, evolution or both")
    return ",".join(parts), "evolution" in parts


def _mutation(space: _UserSpace, mutate: Callable[[Any, Any], Any]) -> Callable[[int, int], str]:
    """The engine's side of a user's ``mutate(arch, rng)``: ``(index, seed)``
    to the child's name, refusing (naming the arch) a child not in ``archs``,
    the arch itself, or a raise."""
    import random

    known = {n: i for i, n in enumerate(space.names)}

    def child(index: int, seed: int) -> str:
        if space.progress is not None and space.progress.interrupted:
            raise KeyboardInterrupt("interrupted")
        arch = space.archs[index]
        try:
            got = mutate(arch, random.Random(seed))
        except Exception as e:  # the user's own message, one line
            first = (str(e).splitlines() or [""])[0]
            raise ValueError(f"mutate({arch!r}) raised {type(e).__name__}: {first}") from None
        key = str(got)
        if key not in known:
            raise ValueError(f"mutate({arch!r}) returned {got!r}, which is not one of archs")
        if known[key] == index:
            raise ValueError(f"mutate({arch!r}) returned the arch itself; it must return a neighbour in archs")
        return key
    return child


def search(models=None, inputs: Optional[Inputs] = None, accuracy=None, *, mutate=None,
           strategy: Union[str, Sequence[str]] = "random", networks: Optional[int] = None, trials: int = 10,
           proxies: Proxies = ("rbflex",), seed: Optional[int] = None, out: Optional[str] = None,
           labels: Optional[torch.Tensor] = None, gammas: Optional["tuple[float, float]"] = None,
           device: Union[str, torch.device, None] = None, name: str = "user",
           stages: Optional[Sequence[str]] = None, progress: bool = True, population: Optional[int] = None,
           tournament: Optional[int] = None, children: Optional[int] = None,
           crossover: Optional[float] = None, space: Optional[str] = None, batch: int = 3, dataset: Optional[str] = None, jobs: int = 0, channels_last: bool = False):
    """Searches a design space with proxies as the only guide (no training),
    as the CLI's ``search``; returns a ``pandas.DataFrame`` with one row per
    trial per strategy (and per proxy): ``strategy``, ``proxy``, ``trial``,
    the pick's ``index``, ``arch``, ``score`` (its proxy value) and
    ``accuracy`` (NaN when not given).

    Args:
        models: ``(build, archs)`` (or a list of modules) as :func:`score_many`;
            or give ``space=NAME`` for a built-in space (``rbflex.spaces()``).
        inputs: the input batch (user spaces; built-in spaces draw the CLI's).
        accuracy: optional, every arch's accuracy: ``{arch: acc}``, a Series
            or a CSV ``arch,accuracy``; reported for the picks, never used
            to pick.
        mutate: ``mutate(arch, rng) -> arch``, a neighbour of ``arch`` in
            ``archs`` (``rng`` a ``random.Random`` seeded by the engine, so
            a search reproduces); needed by ``strategy="evolution"``.
        strategy: ``"random"`` (the paper's: each trial samples ``networks``
            archs and keeps its best), ``"evolution"`` (regularized
            evolution with the proxy as fitness, ``networks`` distinct
            networks a trial) or both, ``("random", "evolution")``, on the
            same seeds and budget.
        networks, trials: the budget: networks a trial (default 100, or
            every arch of a smaller space), trials.
        proxies: the fitness (each proxy searched on its own; aggregations
            such as ``az`` too).
        seed: the run seed (default 0 for a user space, the CLI's 1 for a
            built-in one).
        out: the results folder (the CLI's: ``scores.csv``, ``run.json``,
            ``search.json`` and, with accuracies, ``search.png``); a rerun
            resumes it, scoring nothing twice. Default: a new temporary one.
        labels, gammas, device, name, stages, channels_last: as :func:`score_many`.
        progress: show a progress bar on stderr.
        population, tournament, children: the evolution's settings (the
            CLI's defaults 10, 5, 8).
        crossover: the share of children that are the mutation of a
            crossover of two tournaments' winners (the CLI's
            ``--crossover``, default 0); built-in spaces with a crossover
            only (nb201, nats-sss, transnas-micro).
        space, batch, dataset, jobs: a built-in space, its images a batch,
            its dataset and the worker threads (0: every core).

    The frame's ``attrs`` hold ``report`` (``search.json`` as a dict),
    ``json`` and ``plot`` (paths; ``plot`` None without accuracies).
    Ctrl-C stops the search; every network scored so far stays in ``out``.
    A ``build`` that raises stops it too, naming the arch (unlike
    :func:`score_many`, which scores the others: a search's picks need
    every sampled network).
    """
    import os
    import tempfile

    spec_strategy, evolution = _strategy(strategy)
    if isinstance(models, str) and space is None:
        models, space = None, models
    spec = _proxy_spec(proxies)
    needed, _asked = _rbflex.selection_names(spec)
    gk, gq = gammas if gammas is not None else _rbflex_gammas()
    bar = _Progress(progress)

    def plan(networks: int) -> "dict[str, Any]":
        """The engine's search plan (the CLI's --strategy, --trials, --networks, ...)."""
        return {"strategy": spec_strategy, "trials": int(trials), "networks": int(networks),
                "population": population, "tournament": tournament, "children": children,
                "crossover": None if crossover is None else float(crossover), "quiet": False}

    if space is not None:
        if models is not None or mutate is not None or accuracy is not None:
            raise ValueError("search: space=NAME searches a built-in space (its own archs, mutation and "
                             "accuracies); give models, mutate and accuracy only for your own space")
        networks = 100 if networks is None else networks
        out = out if out is not None else tempfile.mkdtemp(prefix="rbflex-search-")
        return _searched(bar, out, lambda: _rbflex.search_space(
            space, spec, 1 if seed is None else int(seed), int(batch), float(gk), float(gq), dataset,
            int(jobs or os.cpu_count() or 1), str(out), plan(networks), channels_last=bool(channels_last)))
    if models is None or inputs is None:
        raise TypeError("search: give (build, archs) and inputs, or space=NAME")
    if crossover:
        raise ValueError("search: crossover= is for built-in spaces with a crossover (nb201, nats-sss, "
                         "transnas-micro); a user space only mutates")
    us = _UserSpace(models, _device(device), stages, bar)
    if evolution and mutate is None:
        raise ValueError("strategy evolution needs mutate=: a function mutate(arch, rng) returning a neighbour "
                         "of arch in archs (rng: a random.Random), or use strategy='random'")
    networks = min(100, len(us.names)) if networks is None else networks
    if not evolution and not 1 <= int(networks) <= len(us.names):
        raise ValueError(f"networks: must be between 1 and the {len(us.names)} archs, got {networks}")
    acc_list = None
    if accuracy is not None:
        acc = _accuracy_map(accuracy)
        lacking = [a for a in us.names if a not in acc]
        if lacking:
            raise ValueError(f"accuracy: no value for {len(lacking)} of the {len(us.names)} archs, "
                             f"e.g. {lacking[0]!r} (give every arch's, or none)")
        acc_list = [acc[a] for a in us.names]
    x, labels = _batch(inputs, labels)
    _check_labels(needed, labels)
    dev = _device(device)
    seed = 0 if seed is None else int(seed)
    classes = us.classes(x, needed, seed)
    child = _mutation(us, mutate) if mutate is not None else None
    out = out if out is not None else tempfile.mkdtemp(prefix="rbflex-search-")
    return _searched(bar, out, lambda: _rbflex.search_user(
        name, us.names, us.prepare, child, acc_list, x, labels, _digest(x, labels), spec, float(gk), float(gq),
        seed, classes, str(dev), str(out), plan(networks), channels_last=bool(channels_last)))


def _searched(bar: _Progress, out: str, call: Callable[[], str]) -> "pandas.DataFrame":
    """Runs the engine's search `call` under the progress bar; its report as a
    DataFrame. Ctrl-C stops it, saying where the scores so far are kept."""
    import json

    try:
        with bar.observing():
            text = call()
    except KeyboardInterrupt:
        print(f"rbflex: search interrupted; every network scored so far is kept in {out}", file=sys.stderr)
        raise
    return _search_frame(json.loads(text), out)


def _search_frame(rep: "dict", out: str):
    """One row per strategy, proxy and trial of a search report."""
    import os

    import pandas as pd

    parts = [("random", rep["random"]), ("evolution", rep["evolution"])] if "random" in rep and "evolution" in rep \
        else [(rep.get("strategy", "random"), rep)]
    rows = []
    for strategy, r in parts:
        ds = r["dataset"]
        for proxy, ps in r["proxies"].items():
            for t in ps["trials"]:
                acc = t.get("accuracy", {})
                row = {"strategy": strategy, "proxy": proxy, "trial": t["trial"], "index": t["index"],
                       "arch": t["arch"], "score": t["score"],
                       "accuracy": acc.get("accuracy", acc.get(ds, float("nan")))}
                row.update({f"accuracy_{k}": v for k, v in acc.items() if k not in ("accuracy", ds)})
                rows.append(row)
    df = pd.DataFrame(rows)
    plot = os.path.join(out, "search.png")
    df.attrs.update({"report": rep, "json": os.path.join(out, "search.json"),
                     "plot": plot if os.path.exists(plot) else None})
    return df


def correlate(models=None, inputs: Optional[Inputs] = None, accuracy=None, proxies: Proxies = ("rbflex",), seed: int = 0,
              out: Optional[str] = None, **kwargs):
    """Rank correlation of proxies with accuracy over a user's design space.

    Args:
        models: ``(build, archs)`` (or a list of modules), as :func:`score_many`.
        accuracy: ``{arch: accuracy}`` (keys as ``str(arch)``), a
            ``pandas.Series`` indexed by arch, or a CSV path with columns
            ``arch,accuracy``.
        proxies, seed, out, **kwargs: as :func:`score_many`.

    Returns:
        ``(table, scores)``: one row per proxy (``n``, ``n_nonfinite``,
        ``kendall``, ``spearman``, ``pearson``, computed by the engine as the
        CLI's ``correlate``) and :func:`score_many`'s frame with an
        ``accuracy`` column.
    """
    import pandas as pd

    if isinstance(models, str) or "space" in kwargs:
        # a built-in space: rbflex.correlate(space="nb201", sample=1000, proxies=[...])
        space = kwargs.pop("space", models)
        return correlate_space(space, proxies=proxies, seed=seed if seed else 1, out=out, **kwargs)
    if models is None or inputs is None or accuracy is None:
        raise TypeError("correlate: give (build, archs), inputs and accuracy, or space=NAME")
    acc = _accuracy_map(accuracy)
    df = score_many(models, inputs, proxies=proxies, seed=seed, out=out, **kwargs)
    if "error" in df.columns:
        df = df[df["error"].isna()]
    lacking = [a for a in df["arch"] if a not in acc]
    if lacking:
        raise ValueError(f"accuracy: no value for {len(lacking)} arch(es), e.g. {lacking[0]!r}")
    df = df.assign(accuracy=[float(acc[a]) for a in df["arch"]])
    _needed, asked = _rbflex.selection_names(_proxy_spec(proxies))
    rows = []
    for name in asked:
        col = "score" if name == "rbflex" else name
        n, nn_, k, s, p = _rbflex.correlation([float(v) for v in df[col]], list(df["accuracy"]))
        rows.append({"proxy": name, "n": n, "n_nonfinite": nn_, "kendall": k, "spearman": s, "pearson": p})
    return pd.DataFrame(rows).set_index("proxy"), df


def space_archs(space: str) -> "list[str]":
    """Every architecture of a built-in space, in its official index order."""
    return list(_rbflex.space_archs(space))


def images(dataset: str = "cifar10", n: int = 3, seed: int = 1) -> "tuple[torch.Tensor, Optional[torch.Tensor]]":
    """``n`` images of ``dataset``'s embedded sample chosen with ``seed`` and
    transformed as the CLI's runs draw them (``--batch n --seed seed``), and
    their labels (``None`` where the sample has none)."""
    return _rbflex.images(dataset, int(n), int(seed))


def correlate_space(space: str = "nb201", sample: Optional[int] = 1000, proxies: Proxies = ("rbflex",),
                    seed: int = 1, batch: int = 3, gammas: Optional["tuple[float, float]"] = None,
                    dataset: Optional[str] = None, jobs: int = 0, out: Optional[str] = None,
                    progress: bool = True, channels_last: bool = False):
    """The CLI's ``correlate`` on a built-in space (see :func:`spaces`):
    ``sample`` networks (None: all) scored with ``proxies`` and correlated
    with the space's benchmark accuracy, in ``out`` (the CLI's results
    folder, resumable, with ``correlate.csv``/``.png``; default: a new
    temporary folder), with a progress bar unless ``progress=False``;
    ``channels_last`` as the CLI's ``--channels-last``.
    Returns one row per proxy (``kendall``, ``spearman``, ``pearson``,
    ``n``) with the report's ``csv``/``plot`` paths in ``.attrs``."""
    import json
    import os
    import tempfile

    import pandas as pd

    gk, gq = gammas if gammas is not None else _rbflex_gammas()
    out = out if out is not None else tempfile.mkdtemp(prefix="rbflex-correlate-")
    jobs = jobs or os.cpu_count() or 1
    with _Progress(progress).observing():
        rep = json.loads(_rbflex.correlate_space(space, sample, _proxy_spec(proxies), int(seed), int(batch),
                                                 float(gk), float(gq), dataset, int(jobs), str(out), False,
                                                 bool(channels_last)))
    df = pd.DataFrame([{"proxy": k, "n": v["n"], "n_nonfinite": v["n_nonfinite"], "kendall": v["kendall"],
                        "spearman": v["spearman"], "pearson": v["pearson"]} for k, v in rep["proxies"].items()])
    df = df.set_index("proxy")
    df.attrs.update({k: rep[k] for k in ("space", "dataset", "csv", "plot", "seconds")})
    return df


def hda(models, inputs: Inputs, networks: Optional[int] = None, seed: int = 0,
        device: Union[str, torch.device, None] = None, stages: Optional[Sequence[str]] = None) -> "dict":
    """HDA, the paper's detection of RBFleX's kernel widths, over a user's
    networks: ``networks`` of them (default: all) drawn as the CLI's search
    trial 0 draws them, each built as :func:`score_many` builds it, the
    batch forwarded at once. Returns ``{"gamma_k", "gamma_q", "indices"}``:
    pass ``gammas=(gamma_k, gamma_q)`` to :func:`score` / :func:`score_many`."""
    x, _ = _batch(inputs, None)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(models, tuple) and len(models) == 2 and callable(models[0]):
        build_fn, archs = models[0], list(models[1])

        def build(i: int) -> Prepared:
            return Prepared(build_fn(archs[i]), dev, own=True, stages=stages)
    else:
        mods = list(models)
        archs = [f"model{i}" for i in range(len(mods))]

        def build(i: int) -> Prepared:
            return Prepared(mods[i], dev, stages=stages)
    names = [str(a) for a in archs]
    n = len(names) if networks is None else int(networks)
    gk, gq, idx = _rbflex.hda("user", names, build, x, int(seed), n, str(dev))
    return {"gamma_k": gk, "gamma_q": gq, "indices": idx}
