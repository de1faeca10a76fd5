"""rbflex: training-free neural architecture search for any ``torch.nn.Module``.

RBFleX-NAS and 18 other training-free proxies, computed by the same Rust
engine as the ``rbflex`` command line (``tch`` on the same libtorch as your
torch, tensors shared without copies)::

    import torch, rbflex
    net = MyNet()
    x = torch.randn(16, 3, 32, 32)
    rbflex.score(net, x)                       # {'score': ..., 'logdet_k': ...}
    rbflex.score(net, x, proxies=["rbflex", "synflow", "naswot"])

What the proxies read comes from forward hooks on the module tree:
activation modules (``nn.ReLU``, ``GELU``, ``SiLU``, ... and any module whose
class name contains "ReLU", as the RBFleX reference does), the input of the
last ``nn.Linear`` (the classifier's input), Conv/Linear outputs, the input of
the last global average pooling, and the stages (top-level children holding a
convolution or attention, or ``stages=[...]``). Activations called as
functions (``F.relu``, ``torch.relu``) are not modules and are not seen, as in
the reference: a model without activation modules is refused by the proxies
that read them. Your model is never changed: every pass runs on a copy.
"""

from __future__ import annotations

import re as _re

TORCH_NEEDED = "2.13"


def _check_torch() -> None:
    try:
        import torch
    except ImportError as e:  # pragma: no cover
        raise ImportError(f"rbflex needs torch {TORCH_NEEDED}.x ({e})") from None
    have = torch.__version__.split("+")[0]
    if not _re.match(_re.escape(TORCH_NEEDED) + r"(\.|$)", have):
        raise ImportError(f"rbflex needs torch {TORCH_NEEDED}.x (its engine is built on libtorch "
                          f"{TORCH_NEEDED}), but torch {have} is installed")


_check_torch()

from ._api import (correlate, correlate_space, hda, images, merge, needs, proxies, score,  # noqa: E402
                   score_many, search, space_archs, spaces)

__all__ = ["score", "score_many", "search", "correlate", "correlate_space", "merge", "hda", "images", "needs",
           "proxies", "space_archs", "spaces"]
