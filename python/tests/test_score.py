"""rbflex.score: parity with the CLI on xautodl's NB201 networks, the
model-unchanged property, and each bad input's one-line error."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from torch import nn

import rbflex
from helpers import cli_score, nb201, save_safetensors

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]
RBFLEX_COLS = ("score", "logdet_k", "logdet_q", "la", "lq")
#: every proxy the CLI's `score --input` can run (no labels in an input file)
UNLABELLED = ("rbflex,naswot,synflow,grad_norm,jacob_cov,l2_norm,zen,params,flops,"
              "az_expressivity,az_progressivity,az_trainability,az_complexity")


def batch(n: int = 8, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g)


def same(a: float, b: float, rel: float) -> bool:
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return str(a) == str(b)
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


@pytest.mark.parametrize("arch,seed", [(ARCHS[0], 1), (ARCHS[1], 7), (ARCHS[2], 2)])
def test_every_proxy_matches_the_cli_on_nb201(tmp_path, arch, seed):
    x = batch()
    path = tmp_path / "x.safetensors"
    save_safetensors(path, x=x)
    want = cli_score(arch, seed, path, UNLABELLED)
    net = nb201(arch, seed)
    got = rbflex.score(net, x, proxies=UNLABELLED, seed=seed)
    for col in RBFLEX_COLS:
        assert got[col] == float(want[col]), col  # bit for bit
    skip = {"arch", "index", "params", "proxy"}
    cols = [k for k in want if k not in skip and not k.endswith("_note")]
    assert set(cols) <= set(got)
    # bit for bit, gradients too: the CLI's cells give every edge its own
    # ReLU when gradients flow, so a node's gradient is summed as xautodl's
    bad = {c: (got[c], want[c]) for c in cols if not same(got[c], float(want[c]), 0.0)}
    assert not bad


def test_the_model_is_unchanged():
    net = nb201(ARCHS[0], 1)
    net.eval()
    for p in list(net.parameters())[:3]:
        p.requires_grad_(False)
    before = copy.deepcopy(net.state_dict())
    flags = [p.requires_grad for p in net.parameters()]
    rbflex.score(net, batch(), proxies="all", labels=torch.arange(8) % 10)
    assert not net.training
    assert [p.requires_grad for p in net.parameters()] == flags
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_vkdnw_is_refused_on_a_users_module_before_any_work():
    # it reads each layer call's input and parameters (near and meco: outputs),
    # which a module's hooks do not report: its Fisher matrix would be zero and
    # its entropy 0, as if measured
    net = nb201(ARCHS[0], 1)
    want = ("proxy vkdnw reads every Conv2d, BatchNorm and Linear call of the network, "
            "which model's networks do not report (a user's nn.Module does not yet)")
    with pytest.raises(ValueError, match=f"^{re.escape(want)}$"):
        rbflex.score(net, batch(), proxies=["synflow", "vkdnw"])
    got = rbflex.score(net, batch(), proxies="all", labels=torch.arange(8) % 10)
    assert "synflow" in got and not {"vkdnw", "vkdnw_single", "near", "meco"} & set(got)


def test_the_proxies_and_spaces_are_listed():
    names = [p["name"] for p in rbflex.proxies()]
    assert names[0] == "rbflex" and "synflow" in names and "az" in names
    assert "nb201" in rbflex.spaces()


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        raise RuntimeError("boom in forward")


class NoActs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 3)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.b = nn.Linear(8, 3)

    def forward(self, x):
        return self.b(self.act(self.a(x)))


def test_a_forward_that_raises_shows_the_models_message():
    with pytest.raises(ValueError, match="^the model's forward raised RuntimeError: boom in forward$"):
        rbflex.score(Raises(), torch.randn(4, 4))


def test_a_model_without_activation_modules_is_refused():
    with pytest.raises(ValueError, match=r"^proxy rbflex reads activation modules .* the model has none"):
        rbflex.score(NoActs(), torch.randn(4, 4))


def test_wrong_shape_and_dtype():
    with pytest.raises(ValueError, match="^the model's forward raised RuntimeError: mat1 and mat2 shapes"):
        rbflex.score(Mlp(), torch.randn(4, 5))
    with pytest.raises(TypeError, match=r"^inputs: expected floating-point values, got torch.int64$"):
        rbflex.score(Mlp(), torch.ones(4, 4, dtype=torch.long))


def test_an_empty_loader():
    with pytest.raises(ValueError, match=r"^inputs: the loader gave no batch \(it is empty\)$"):
        rbflex.score(Mlp(), [])


def test_labels_out_of_range_and_missing():
    x = torch.randn(4, 4)
    with pytest.raises(ValueError, match=r"^labels: values 0\.\.5 are out of range for the model's 3 classes$"):
        rbflex.score(Mlp(), x, proxies=["snip"], labels=torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match=r"^proxy snip needs labels: pass labels=\.\.\. or a loader of \(x, y\)$"):
        rbflex.score(Mlp(), x, proxies=["snip"])


def test_a_loader_of_pairs_gives_labels():
    loader = [(torch.randn(2, 4), torch.tensor([0, 1])), (torch.randn(2, 4), torch.tensor([2, 1]))]
    out = rbflex.score(Mlp(), loader, proxies=["rbflex", "snip"])
    assert math.isfinite(out["snip"]) and "score" in out


def test_the_model_on_another_device_than_asked():
    with pytest.raises(ValueError, match=r"^device: the model is on cpu, but cuda:0 was asked"):
        rbflex.score(Mlp(), torch.randn(4, 4), device="cuda")


def test_the_values_do_not_depend_on_torchs_thread_setting():
    x = batch()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        many = rbflex.score(nb201(ARCHS[0], 1), x, proxies=UNLABELLED, seed=1)
        assert torch.get_num_threads() == 3  # the caller's setting is back
        torch.set_num_threads(1)
        one = rbflex.score(nb201(ARCHS[0], 1), x, proxies=UNLABELLED, seed=1)
    finally:
        torch.set_num_threads(before)
    assert many == one


def test_channels_last_is_the_clis_flag(tmp_path):
    x = batch()
    path = tmp_path / "x.safetensors"
    save_safetensors(path, x=x)
    proxies = "rbflex,grad_norm,jacob_cov,az_trainability"
    want = cli_score(ARCHS[0], 1, path, proxies, "--channels-last")
    got = rbflex.score(nb201(ARCHS[0], 1), x, proxies=proxies, seed=1, channels_last=True)
    plain = rbflex.score(nb201(ARCHS[0], 1), x, proxies=proxies, seed=1)
    assert got["score"] == plain["score"]  # RBFleX keeps the reference's layout
    assert any(got[c] != plain[c] for c in ("grad_norm", "jacob_cov", "az_trainability"))
    for c in ("score", "grad_norm", "jacob_cov", "az_trainability"):
        assert got[c] == float(want[c]), c
    with pytest.raises(ValueError, match=r"^channels-last is for proxies with a batch of their own; rbflex keeps"):
        rbflex.score(nb201(ARCHS[0], 1), x, channels_last=True)
