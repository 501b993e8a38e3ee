"""Verdicts that know the architecture: no false verdict on a He + BatchNorm CNN or a normalised
ResNet, exploding on one layer, the init in place never recommended, residual growth, and for each
verdict kind a fix that removes it on a second probe."""

from __future__ import annotations

import json

import numpy as np
import pytest

import initlab
from initlab.activations import get
from initlab.cli import main
from initlab.diagnostics import verdicts
from initlab.diagnostics._measure import new_layer
from initlab.diagnostics._result import ProbeResult
from initlab.diagnostics._verdicts import _describe, _num
from initlab.nn import Network

torch = pytest.importorskip("torch")
nn = torch.nn


def _he(model: "torch.nn.Module", seed: int = 0) -> "torch.nn.Module":
    """He-normal weights (fan_in) and zero biases from a private generator (no global seeding)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5)
            elif name.endswith("bias"):
                p.zero_()
    return model


def _cnn() -> "torch.nn.Module":
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 10))


class Block(nn.Module):
    """ResNet v1 basic block: relu(x + bn2(conv2(relu(bn1(conv1(x))))))."""

    def __init__(self, c: int, norm: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
        self.bn1 = nn.BatchNorm2d(c) if norm else nn.Identity()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=not norm)
        self.bn2 = nn.BatchNorm2d(c) if norm else nn.Identity()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def _resnet(norm: bool = True, n: int = 4, c: int = 16) -> "torch.nn.Module":
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c) if norm else nn.Identity(), nn.ReLU(),
                         *[Block(c, norm) for _ in range(n)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


class MLPBlock(nn.Module):
    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, h), nn.ReLU(), nn.Linear(h, d)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return x + self.fc2(self.act(self.fc1(x)))


def _resmlp(n: int = 8, d: int = 64) -> "torch.nn.Module":
    return nn.Sequential(nn.Linear(32, d), *[MLPBlock(d, 4 * d) for _ in range(n)], nn.Linear(d, 10))


def _images(n: int = 64) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, 16, 16)).astype(np.float32)


def _kinds(res: initlab.ProbeResult) -> dict[str, initlab.Verdict]:
    return {v.kind: v for v in res.verdicts}


def test_he_batchnorm_cnn_and_normalised_resnet_get_no_verdict() -> None:
    for model in (_he(_cnn()), _he(_resnet())):
        res = initlab.probe(model, _images(), rng=0)
        assert res.verdicts == [], [str(v) for v in res.verdicts]
    # the premise of the gradient rule: per element, the first conv's gradient is ~100× below the
    # head's (pooling and flattening), which the old rule read as a vanishing gradient
    res = initlab.probe(_he(_cnn()), _images(), rng=0)
    assert res.layers[0].grad_rms < res.layers[-1].grad_rms / 50


def test_norm_weights_are_read_as_gains() -> None:
    """A verdict starting at a norm row never says 'weight std 0' (BatchNorm's weight is a gain of 1)."""
    layers = []
    for i, (kind, act) in enumerate([("linear", None), ("batchnorm1d", None), ("linear", None)]):
        st = new_layer(i + 1, f"l{i}", kind, None)
        st.std, st.width, st.weight_std, st.fan_in = [1.0, 1.0, 1.0][i], 10, [0.3, 0.0, 0.3][i], [10, None, 10][i]
        st.grad_rms = [1e-4, 1e-4, 1.0][i]
        layers.append(st)
    res = ProbeResult(layers=layers, input_std=1.0)
    out = verdicts(res)
    assert [(v.kind, v.layer) for v in out] == [("vanishing_gradient", 2)]  # it starts at the norm row
    assert "weight std 0" not in out[0].message and "gain" in out[0].message
    assert "l1" not in (out[0].fix or {})  # a norm layer's gain is never re-initialised by a fix


def test_exploding_is_found_on_a_single_layer(capsys: pytest.CaptureFixture[str]) -> None:
    """normal(std=s) is no named scheme: the message gives the measured std and σ_w² = fan_in·std²
    of the row, and the distribution it looks like."""
    for init in ("normal(std=1e30)", "normal(std=100)"):
        layers = "20,30" if "e30" in init else "100,100"
        with pytest.raises(SystemExit) as e:
            main(["probe", "--layers", layers, "--init", init, "--json"])
        d = json.loads(capsys.readouterr()[0])
        assert int(e.value.code or 0) == 0
        kinds = {v["kind"]: v for v in d["verdict_details"]}
        assert "exploding" in kinds, d["verdicts"]
        row = d["layers"][kinds["exploding"]["layer"] - 1]
        std, s2 = row["weight_std"], row["fan_in"] * row["weight_std"] ** 2
        assert f"weight std {_num(std)} (σ_w² = fan_in·std² = {_num(s2)}, normal-like)" in kinds["exploding"]["message"], \
            kinds["exploding"]["message"]
        assert "normal(std=" not in kinds["exploding"]["message"]
        assert kinds["exploding"]["fix"]["layers.0"]["*weight*"] == "lecun_normal"


def test_a_named_scheme_is_quoted_with_its_sigma_w2_an_unnamed_init_with_the_measured_one() -> None:
    """kaiming_normal is σ_w² = 2 (not the sample's 2.01); normal(std=1) at fan_in 500 is no
    scheme: its measured σ_w² is quoted."""
    net = Network([500, 500, 500, 500], "tanh", init="normal(std=1)", rng=0)
    res = initlab.probe(net, np.random.default_rng(0).standard_normal((1000, 500)).astype(np.float32), rng=1)
    v = _kinds(res)["saturation"]
    st = res.layers[v.layer - 1]
    assert f"σ_w² = fan_in·std² = {_num(500 * st.weight_std ** 2)}, normal-like)" in v.message, v.message
    assert "use lecun_normal" in v.recommendation
    he = Network([500, 500, 500, 10], "relu", init="kaiming_normal", rng=0)
    res = initlab.probe(he, np.random.default_rng(0).standard_normal((1000, 500)).astype(np.float32), rng=1)
    assert {_describe(st) for st in res.layers[:2]} == {"relu with kaiming_normal weights (σ_w² = 2)"}


def test_the_init_in_place_is_never_recommended() -> None:
    net = Network([100, 200, 200, 200, 10], "relu", init="kaiming_normal", rng=0)
    net.layers[1].bias = np.where(np.arange(200) < 80, -50.0, 0.0).astype(np.float32)
    res = initlab.probe(net, np.random.default_rng(0).standard_normal((500, 100)).astype(np.float32), rng=0)
    v = _kinds(res)["dead"]
    assert "use kaiming_normal" not in str(v) and "already have σ_w² = 2" in v.recommendation
    assert v.fix["layers.1"] == {"*bias*": "zeros"}  # the weights stay; the biases go
    initlab.apply(net, v.fix, rng=0)
    res = initlab.probe(net, np.random.default_rng(0).standard_normal((500, 100)).astype(np.float32), rng=0)
    assert "dead" not in _kinds(res)


def test_verdict_text_agrees_with_the_rows() -> None:
    """A first layer that crushes the signal, then rows that grow back: the sentence states the
    fall at layer 1 and the last value, not a per-layer fall over rows that grow."""
    net = Network([2, 200, 300, 400, 300, 2], "sigmoid", output="sigmoid", init="normal(std=0.01)", rng=0)
    res = initlab.probe(net, np.random.default_rng(0).standard_normal((1000, 2)).astype(np.float32), rng=0)
    v = _kinds(res)["vanishing"]
    s = [st.std for st in res.layers]
    assert s[1] > s[0]  # the premise: the rows grow after layer 1
    assert "at layer 1 (1 at the input →" in v.message and "per layer" not in v.message, v.message


def test_unknown_and_new_row_kinds_are_skipped_and_add_rows_are_read() -> None:
    layers = []
    for i, kind in enumerate(["embedding", "attention", "add", "pool", "rnn", "something_new", "add", "add", "add"]):
        st = new_layer(i + 1, f"blocks.{i}", kind, None)
        st.std, st.width, st.chan_var, st.min = 1.0, 8, 4.0 ** i, -1.0
        layers.append(st)
    res = ProbeResult(layers=layers, input_std=1.0, backward=False)
    out = verdicts(res)
    kinds = [v.kind for v in out]
    assert kinds == ["residual_growth"], [str(v) for v in out]
    assert out[0].fix == {"preset": "fixup", "blocks": ["blocks.2", "blocks.6", "blocks.7", "blocks.8"]}  # add rows of one width: one stream


def test_residual_mlp_growth_is_found_and_its_fix_removes_it() -> None:
    m = _he(_resmlp())
    x = np.random.default_rng(0).standard_normal((256, 32)).astype(np.float32)
    res = initlab.probe(m, x, rng=0)
    k = _kinds(res)
    assert "residual_growth" in k and "exploding" not in k and "exploding_gradient" not in k, [str(v) for v in res.verdicts]
    v = k["residual_growth"]
    spp = initlab.diagnostics.signal_propagation(m, x)
    assert spp.avg_var[-1] / spp.avg_var[0] > 100  # the premise: the stream's variance explodes
    assert v.fix == {"preset": "fixup", "blocks": [str(i) for i in range(1, 9)]}
    json.dumps(res.to_dict())  # the fix is plain data
    initlab.apply(m, v.fix, rng=0)
    res2 = initlab.probe(m, x, rng=0)
    assert "residual_growth" not in _kinds(res2), [str(v) for v in res2.verdicts]
    spp2 = initlab.diagnostics.signal_propagation(m, x)
    assert spp2.avg_var[-1] == pytest.approx(spp2.avg_var[0], rel=1e-9)


def _mlp(spec: str, act: str, bias: str = "zeros", depth: int = 8, width: int = 100) -> "torch.nn.Module":
    mods: list[nn.Module] = []
    for _ in range(depth):
        mods += [nn.Linear(width, width), nn.ReLU() if act == "relu" else nn.Tanh()]
    m = nn.Sequential(*mods, nn.Linear(width, 10))
    initlab.apply(m, {"Linear": {"weight": spec, "bias": bias}}, rng=0)
    return m


def _dead_model() -> "torch.nn.Module":
    m = _mlp("kaiming_normal(nonlinearity=relu)", "relu", depth=3, width=200)
    with torch.no_grad():
        m[2].bias[:80] = -50.0
    return m


CASES = [
    ("exploding", lambda: _mlp("normal(std=1.0)", "relu")),
    ("vanishing", lambda: _mlp("normal(std=0.02)", "relu")),
    ("saturation", lambda: _mlp("normal(std=1.0)", "tanh")),
    ("exploding_gradient", lambda: _mlp("normal(std=1.0)", "tanh")),
    ("vanishing_gradient", lambda: _mlp("normal(std=0.01)", "tanh")),
    ("collapsed", lambda: _mlp("normal(std=0.03)", "tanh", bias="normal(std=1.0)")),
    ("dead", _dead_model),
    ("residual_growth", lambda: _he(_resmlp())),
]


@pytest.mark.parametrize("kind, build", CASES, ids=[c[0] for c in CASES])
def test_each_verdict_fix_removes_it(kind: str, build: object) -> None:
    model = build()  # type: ignore[operator]
    d_in = 32 if kind == "residual_growth" else model[0].in_features
    x = np.random.default_rng(0).standard_normal((500, d_in)).astype(np.float32)
    res = initlab.probe(model, x, rng=0)
    k = _kinds(res)
    assert kind in k, [str(v) for v in res.verdicts]
    assert k[kind].fix is not None
    initlab.apply(model, k[kind].fix, rng=0)
    res2 = initlab.probe(model, x, rng=0)
    assert kind not in _kinds(res2), [str(v) for v in res2.verdicts]


def test_collapse_is_not_judged_on_pooled_nonnegative_features() -> None:
    layers = []
    for i, (kind, cos, mn) in enumerate([("conv2d", 0.1, -3.0), ("activation", 0.1, 0.0), ("pool", 0.99, 0.0),
                                         ("linear", 0.99, -1.0)]):
        st = new_layer(i + 1, f"l{i}", kind, get("relu") if kind == "activation" else None)
        st.std, st.width, st.cosine, st.min = 1.0, 8, cos, mn
        st.preact_min = None
        layers.append(st)
    res = ProbeResult(layers=layers, input_std=1.0, input_cosine=0.0, backward=False)
    assert "collapsed" not in {v.kind for v in verdicts(res)}


def test_residual_branches_are_not_chained_as_serial_layers() -> None:
    """torch's default init on a 12-block residual MLP: each branch shrinks the gradient it carries
    (fc2 then fc1, σ_w² = 1/3), but the stream carries it past every branch, so the product of the
    branches' factors (~1e-4) is no vanishing gradient."""
    m = _resmlp(n=12, d=32)
    initlab.apply(m, {"Linear": {"weight": "kaiming_uniform(a=2.23606797749979)", "bias": "torch_default_bias"}}, rng=0)
    x = np.random.default_rng(0).standard_normal((256, 32)).astype(np.float32)
    res = initlab.probe(m, x, rng=0)
    assert res.verdicts == [], [str(v) for v in res.verdicts]
    g = [s.grad_rms for s in res.layers]
    assert g[1] > g[-2] / 10  # the premise: the gradient reaching the first block is not small
