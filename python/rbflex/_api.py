"""The user-facing functions (see the package docstring)."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import torch
from torch import nn

from . import _rbflex
from ._probe import Prepared, output_tensor

#: proxies whose protocol reads the images' labels (besides those whose
#: ``needs`` says so: SNIP, GraSP, Fisher and the plain loss gradient)
_READS_LABELS = {"snip", "grasp", "fisher", "plain"}

Inputs = Union[torch.Tensor, Iterable]
Proxies = Union[str, Sequence[str]]


def proxies() -> "list[dict]":
    """Every proxy and rank aggregation: name, whether it needs labels, its
    protocol batch (None: your whole batch), whether it needs a classifier."""
    return [
        {"name": n, "labels": lab, "batch": b, "classifier": c, "aggregate": bool(d), "describe": d}
        for n, lab, b, c, d in _rbflex.proxies()
    ]


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
          stages: Optional[Sequence[str]] = None) -> "dict[str, float]":
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

    Returns:
        every asked proxy's value and parts, by the CLI's JSON column names
        (RBFleX's value is ``score``); notes on degenerate values under
        ``"<proxy>_note"``.
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
    info = {p["name"]: p for p in globals()["proxies"]()}
    for p in needed:
        if (info[p]["labels"] or p in _READS_LABELS) and labels is None:
            raise ValueError(f"proxy {p} needs labels: pass labels=... or a loader of (x, y)")
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
        values, notes = _rbflex.score(factory, x, labels, spec, gk, gq, int(seed), classes, str(dev))
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


def score_many(models, inputs: Inputs, proxies: Proxies = ("rbflex",), seed: int = 0,
               out: Optional[str] = None, labels: Optional[torch.Tensor] = None,
               gammas: Optional["tuple[float, float]"] = None, device: Union[str, torch.device, None] = None,
               name: str = "user", stages: Optional[Sequence[str]] = None, progress: bool = True,
               indices: Optional[Sequence[int]] = None):
    """Scores a set of networks; returns a ``pandas.DataFrame`` with one row
    per network and a column per asked proxy (and rank aggregation such as
    ``az`` or ``ensemble``, ranked over this set), plus every part.

    Args:
        models: a list of ``nn.Module`` (each scored on a copy), or a pair
            ``(build, archs)``: ``build(arch) -> nn.Module`` is called lazily,
            one network at a time, right after
            ``torch.manual_seed(seed * 1_000_000 + i)`` (as the CLI seeds).
        inputs, labels, gammas, device, stages: as :func:`score`.
        proxies: names, ``"all"`` or a comma list.
        seed: the run seed (network ``i`` gets ``seed * 1_000_000 + i``).
        out: a results folder, the CLI's (``run.json``, ``scores.csv``,
            lock): an interrupted call resumes there, nothing scored twice.
        name: the space's name recorded in ``run.json``.
        progress: print a progress line on stderr.
        indices: score only these positions of ``archs`` (a sample of a large
            space; each keeps its own seed ``seed * 1_000_000 + i``).

    A network whose build or forward fails is reported (column ``error``)
    and the others are scored; Ctrl-C stops after the current network and
    keeps every finished score (in ``out``).
    """
    import sys

    import pandas as pd

    spec = _proxy_spec(proxies)
    needed, _asked = _rbflex.selection_names(spec)
    x, labels = _batch(inputs, labels)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", 0)
    info = {p["name"]: p for p in globals()["proxies"]()}
    for p in needed:
        if (info[p]["labels"] or p in _READS_LABELS) and labels is None:
            raise ValueError(f"proxy {p} needs labels: pass labels=... or a loader of (x, y)")
    if isinstance(models, tuple) and len(models) == 2 and callable(models[0]):
        build_fn, archs = models
        archs = list(archs)

        def build(i: int) -> Prepared:
            m = build_fn(archs[i])
            if not isinstance(m, nn.Module):
                raise TypeError(f"build({archs[i]!r}) returned {type(m).__name__}, not an nn.Module")
            return Prepared(m, dev, own=True, stages=stages)
        first = None
    else:
        mods = list(models)
        archs = [f"model{i}" for i in range(len(mods))]
        for i, m in enumerate(mods):
            if not isinstance(m, nn.Module):
                raise TypeError(f"models[{i}]: expected an nn.Module, got {type(m).__name__}")

        def build(i: int) -> Prepared:
            return Prepared(mods[i], dev, stages=stages)
        first = mods[0] if mods else None
    names = [str(a) for a in archs]
    if not names:
        raise ValueError("models: the set is empty")
    if len(set(names)) != len(names):
        raise ValueError("archs: each architecture must be unique (str(arch) names it in scores.csv)")
    gk, gq = gammas if gammas is not None else _rbflex_gammas()
    # classes from the first network's logits (its build does not move torch's generator)
    state = torch.get_rng_state()
    try:
        if first is None:
            i0 = 0 if indices is None or not len(indices) else int(min(indices))
            torch.manual_seed(int(seed) * 1_000_000 + i0)
            first = build_fn(archs[i0])
        prep = Prepared(first, dev, stages=stages)
        classes = _check_model(prep, x.to(dev), needed)
    finally:
        torch.set_rng_state(state)
    run = _rbflex.Run(name, names, build, x, labels, _digest(x, labels), spec, float(gk), float(gq),
                      int(seed), classes, str(dev), None if out is None else str(out))
    errors: "dict[int, str]" = {}
    chosen = range(len(names)) if indices is None else sorted(set(int(i) for i in indices))
    bad = [i for i in chosen if not 0 <= i < len(names)]
    if bad:
        raise ValueError(f"indices: {bad[0]} is outside the {len(names)} archs")
    todo = [i for i in chosen if not run.done(i)]
    import time

    t0 = time.time()
    for k, i in enumerate(todo):
        try:
            run.score(i)
        except ValueError as e:
            errors[i] = str(e)
            print(f"rbflex: {names[i]}: {e}", file=sys.stderr)
        except KeyboardInterrupt:
            kept = sum(run.done(j) for j in todo)
            print(f"\nrbflex: interrupted; {kept} of {len(todo)} networks scored, kept"
                  + (f" in {out}" if out is not None else ""), file=sys.stderr)
            break
        if progress:
            rate = (k + 1) / max(time.time() - t0, 1e-9)
            print(f"\rscoring {k + 1}/{len(todo)} ({rate:.1f} nets/s)", end="", file=sys.stderr, flush=True)
    if progress and todo:
        print(file=sys.stderr)
    rows, values = run.table(list(chosen))
    df = pd.DataFrame([{"index": i, "arch": a, "init_seed": s, **v} for i, a, s, v in rows])
    if len(df):
        for col, vals in values:
            if col not in df.columns or col in ("az", "ensemble"):
                df[col] = vals
        df = df.set_index("index")
    if errors:
        err = pd.DataFrame({"arch": [names[i] for i in errors], "error": list(errors.values())},
                           index=pd.Index(list(errors), name="index"))
        df = pd.concat([df, err]).sort_index()
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
    if isinstance(accuracy, (str, bytes)) or hasattr(accuracy, "__fspath__"):
        acc_df = pd.read_csv(accuracy, dtype={"arch": str})
        missing = {"arch", "accuracy"} - set(acc_df.columns)
        if missing:
            raise ValueError(f"accuracy: the CSV needs columns arch,accuracy (missing {sorted(missing)})")
        acc = dict(zip(acc_df["arch"], acc_df["accuracy"]))
    else:
        acc = {str(k): float(v) for k, v in dict(accuracy).items()}
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
                    dataset: Optional[str] = None, jobs: int = 0, out: Optional[str] = None):
    """The CLI's ``correlate`` on a built-in space (see :func:`spaces`):
    ``sample`` networks (None: all) scored with ``proxies`` and correlated
    with the space's benchmark accuracy, in ``out`` (the CLI's results
    folder, resumable, with ``correlate.csv``/``.png``; default: a new
    temporary folder). Returns one row per proxy (``kendall``, ``spearman``,
    ``pearson``, ``n``) with the report's ``csv``/``plot`` paths in ``.attrs``."""
    import json
    import os
    import tempfile

    import pandas as pd

    gk, gq = gammas if gammas is not None else _rbflex_gammas()
    out = out if out is not None else tempfile.mkdtemp(prefix="rbflex-correlate-")
    jobs = jobs or os.cpu_count() or 1
    rep = json.loads(_rbflex.correlate_space(space, sample, _proxy_spec(proxies), int(seed), int(batch), float(gk),
                                             float(gq), dataset, int(jobs), str(out)))
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
