"""A user's module as the engine sees it: a private copy with forward hooks.

The engine (Rust) calls :meth:`Prepared.params` once and :meth:`Prepared.forward`
per pass; the hooks record, in firing order, what the proxies read (codes
shared with ``python/src/lib.rs``):

* ``ACT``: outputs of activation modules (``nn.ReLU`` and NAFBee's others);
* ``BLOCK``: outputs of other modules whose class name contains "ReLU"
  (the RBFleX reference hooks every such module, e.g. NB201's ``ReLUConvBN``);
* ``LAST``: the input of the last ``nn.Linear`` (the classifier's input);
* ``FEATURE``: outputs of the stages (AZ-NAS);
* ``PRE_POOL``: the input of the last global average pooling (Zen-NAS);
* ``LAYER``: Conv/Linear outputs with their weights and multiply-adds;
* ``BN``: BatchNorm inputs (batch mode only).

Activations called as functions (``F.relu``) are invisible to module hooks,
as in the reference.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any, Iterable, Optional

import torch
from torch import nn

ACT, BLOCK, LAST, FEATURE, PRE_POOL, LAYER, BN = range(7)
CONV_W, LINEAR_W, BIAS, NORM, OTHER = range(5)

#: activation modules (NAFBee's eleven)
ACTIVATIONS = (
    nn.ReLU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ReLU6, nn.Mish, nn.Hardswish,
    nn.CELU, nn.ELU, nn.Hardtanh, nn.SELU,
)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (
    nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)
POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)


def default_stages(model: nn.Module) -> list[nn.Module]:
    """The blocks of a top-level ``ModuleList``, or ``Sequential`` of blocks
    (not of single layers), each a stage (NB201: every cell, even one
    without a convolution), and the other top-level children that hold a
    convolution or attention (NB201: the stem), in order."""

    def deep(m: nn.Module) -> bool:
        return any(isinstance(s, CONVS + (nn.MultiheadAttention,)) for s in m.modules())

    stages: list[nn.Module] = []
    for child in model.children():
        subs = list(child.children())
        blocks = isinstance(child, nn.Sequential) and subs and all(list(c.children()) for c in subs)
        if isinstance(child, nn.ModuleList) or blocks:
            stages.extend(subs)
        elif deep(child):
            stages.append(child)
    return stages


def output_tensor(out: Any) -> torch.Tensor:
    """The logits of a forward's result: a tensor, the last tensor of a
    tuple/list (xautodl returns ``(features, logits)``), or ``.logits``."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[-1], torch.Tensor):
        return out[-1]
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError(f"the model returned {type(out).__name__}; rbflex needs a tensor of logits "
                    "(or a tuple ending with one)")


def _named_modules(root: nn.Module) -> "list[tuple[str, nn.Module]]":
    """``list(root.named_modules())`` (pre-order, each module once under its
    first name) without its nested generators."""
    out: "list[tuple[str, nn.Module]]" = []
    memo: set = set()
    stack = [("", root)]
    while stack:
        name, mod = stack.pop()
        if mod in memo:
            continue
        memo.add(mod)
        out.append((name, mod))
        kids = [(f"{name}.{k}" if name else k, c) for k, c in mod._modules.items() if c is not None]
        stack.extend(reversed(kids))
    return out


class Prepared:
    """A copy of ``model`` (or ``model`` itself when ``own``) on ``device``,
    in train mode with every parameter requiring gradients, hooks attached."""

    def __init__(self, model: nn.Module, device: torch.device, own: bool = False,
                 stages: Optional[Iterable[str]] = None):
        m = model if own else copy.deepcopy(model)
        named = _named_modules(m)
        mods = [mod for _, mod in named]
        # named_parameters() as torch orders and names them (each tensor once,
        # under its first module), with its module's role; one walk of the tree
        self._params = []
        seen: set = set()
        moved = False
        for mname, mod in named:
            for pname, p in mod._parameters.items():
                if p is None or p in seen:
                    continue
                seen.add(p)
                moved = moved or p.device != device
                if isinstance(mod, CONVS):
                    role = CONV_W if pname == "weight" else BIAS
                elif isinstance(mod, nn.Linear):
                    role = LINEAR_W if pname == "weight" else BIAS
                elif isinstance(mod, NORMS):
                    role = NORM
                else:
                    role = OTHER
                self._params.append((f"{mname}.{pname}" if mname else pname, p, role))
            moved = moved or any(b is not None and b.device != device for b in mod._buffers.values())
        # .to() and .train() walk the whole tree again: only when they change something
        if moved:
            m.to(device)
            self._params = [(n, p, r) for (n, _, r), p in zip(self._params, m.parameters())]
        if not all(mod.training and type(mod).train is nn.Module.train for mod in mods):
            m.train()
        for _, p, _ in self._params:
            if not p.requires_grad:
                p.requires_grad_(True)
        self.model = m
        self.events: Optional[list] = None
        self.want_layers = False
        names = dict(named)
        self.bns = [mod for mod in mods if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
        # per-image statistics in one batched pass when every BatchNorm is 2-D
        # (instance_norm with the BN's affine = BN on each image alone, bit
        # for bit) and convolutions larger than 1x1 run image by image (as
        # the CLI: libtorch picks another algorithm for a batch)
        self.batched_per_image = all(type(b) is nn.BatchNorm2d for b in self.bns)
        self.big_convs = [mod for mod in mods if type(mod) is nn.Conv2d and tuple(mod.kernel_size) != (1, 1)]
        self._layer_mods = [mod for mod in mods if isinstance(mod, CONVS + (nn.Linear,))]
        linears = [mod for mod in mods if isinstance(mod, nn.Linear)]
        pools = [mod for mod in mods if isinstance(mod, POOLS)]
        if stages is None:
            stage_mods = default_stages(m)
        else:
            stage_mods = []
            for s in stages:
                if s not in names:
                    raise ValueError(f"stages: the model has no module named '{s}'")
                stage_mods.append(names[s])
        self.n_acts = 0
        for mod in mods:
            if isinstance(mod, ACTIVATIONS):
                mod.register_forward_hook(self._hook(ACT))
                self.n_acts += 1
            elif "ReLU" in type(mod).__name__:
                mod.register_forward_hook(self._hook(BLOCK))
                self.n_acts += 1
        for s in stage_mods:
            s.register_forward_hook(self._hook(FEATURE))
        self.has_last = bool(linears)
        if linears:
            linears[-1].register_forward_pre_hook(self._pre_hook(LAST))
        self.has_pool = bool(pools)
        if pools:
            pools[-1].register_forward_pre_hook(self._pre_hook(PRE_POOL))

    # hooks ---------------------------------------------------------------
    def _hook(self, kind: int):
        def hook(_mod, _inp, out):
            if self.events is not None and isinstance(out, torch.Tensor):
                self.events.append((kind, out, None, 0.0))
        return hook

    def _pre_hook(self, kind: int):
        def hook(_mod, inp):
            if self.events is not None and inp and isinstance(inp[0], torch.Tensor):
                self.events.append((kind, inp[0], None, 0.0))
        return hook

    def _layer_hook(self, mod, _inp, out):
        if self.events is None or not self.want_layers or not isinstance(out, torch.Tensor):
            return
        w = mod.weight
        if isinstance(mod, nn.Linear):
            macs = float(w.numel()) * (out.numel() // max(out.shape[-1], 1))
        else:
            macs = float(out.numel()) * math.prod(w.shape[1:])
        self.events.append((LAYER, out, w, macs))

    def _bn_hook(self, _mod, inp):
        if self.events is not None and self.want_layers and inp:
            self.events.append((BN, inp[0], None, 0.0))

    # engine API ------------------------------------------------------------
    def params(self) -> list:
        """(name, tensor, role) in ``named_parameters`` order."""
        return self._params

    def _run(self, x: torch.Tensor, layers: bool) -> tuple[torch.Tensor, list]:
        self.events, self.want_layers = [], layers
        # Conv/Linear outputs and BatchNorm inputs only where a proxy may read them
        handles = []
        if layers:
            for mod in self._layer_mods:
                handles.append(mod.register_forward_hook(self._layer_hook))
            for mod in self.bns:
                handles.append(mod.register_forward_pre_hook(self._bn_hook))
        try:
            out = output_tensor(self.model(x))
            return out, self.events
        finally:
            self.events = None
            for h in handles:
                h.remove()

    def forward(self, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, list]:
        """Runs ``x`` in ``mode`` (``per_image``, ``batch``, ``off`` or ``eval``)."""
        if mode == "batch":
            return self._run(x, True)
        if mode == "eval":
            # BatchNorm in eval mode on the model's running statistics (VKDNW's
            # model.eval(); a fresh network's are mean 0, variance 1)
            flags = [bn.training for bn in self.bns]
            for bn in self.bns:
                bn.eval()
            try:
                return self._run(x, True)
            finally:
                for bn, f in zip(self.bns, flags):
                    bn.train(f)
        if mode == "off":
            saved = []
            for bn in self.bns:
                saved.append(bn.__dict__.get("forward"))
                bn.forward = _identity
            try:
                return self._run(x, True)
            finally:
                for bn, f in zip(self.bns, saved):
                    if f is None:
                        del bn.forward
                    else:
                        bn.forward = f
        if self.batched_per_image:
            return self._per_image_batched(x)
        # per image: each alone (train-mode BN with its own statistics)
        outs, runs = [], []
        for i in range(x.shape[0]):
            o, ev = self._run(x[i:i + 1], False)
            outs.append(o)
            runs.append(ev)
        first = runs[0]
        if any(len(r) != len(first) for r in runs):
            raise RuntimeError("the model's hooks fired a different number of times per image")
        events = [(k, torch.cat([r[j][1] for r in runs]), None, 0.0) for j, (k, *_rest) in enumerate(first)]
        return torch.cat(outs), events


    def _per_image_batched(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        for bn in self.bns:
            bn.forward = _instance_norm(bn)
        for conv in self.big_convs:
            conv.forward = _conv_per_image(conv)
        try:
            return self._run(x, False)
        finally:
            for mod in self.bns + self.big_convs:
                del mod.forward


def _instance_norm(bn: nn.BatchNorm2d):
    def forward(x):
        return torch.nn.functional.instance_norm(x, None, None, bn.weight, bn.bias, True, 0.1, bn.eps)
    return forward


def _conv_per_image(conv: nn.Conv2d):
    def forward(x):
        if x.shape[0] == 1:
            return conv._conv_forward(x, conv.weight, conv.bias)
        return torch.cat([conv._conv_forward(x[i:i + 1], conv.weight, conv.bias) for i in range(x.shape[0])])
    return forward


def _identity(x, *args, **kwargs):
    return x
