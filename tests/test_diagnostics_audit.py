"""Audit findings: sum loss, bounded-activation histograms, mean-loss weight gradients, functional
activations, norm rows, unseen inputs, biases in the theory column, inapplicable dead/saturated."""

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
from initlab.nn import Network

GRAD_KINDS = {"vanishing_gradient", "exploding_gradient"}


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, _ = capsys.readouterr()
    return int(e.value.code or 0), out


def _x(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


# -- 1. gradient verdicts read the RMS, so loss="sum" (∂ℓ/∂output ≡ 1, std 0) is no explosion ---------------
def test_sum_loss_healthy_network_has_no_gradient_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli(["probe", "--layers", "20,100,100,100,5", "--activation", "tanh", "--init", "lecun_normal",
                      "--loss", "sum", "--batch", "300", "--json"], capsys)
    d = json.loads(out)
    assert code == 0
    last = d["layers"][-1]
    assert last["grad_std"] == 0.0 and last["grad_rms"] == pytest.approx(1.0)  # the premise: all-ones gradient
    assert not GRAD_KINDS & {v["kind"] for v in d["verdict_details"]}, d["verdicts"]
    net = Network([20, 100, 100, 100, 5], "tanh", init="lecun_normal", rng=0)
    res = initlab.probe(net, _x(300, 20), loss="sum", rng=1)
    assert not GRAD_KINDS & {v.kind for v in res.verdicts}, [str(v) for v in res.verdicts]
    assert all(s.grad_rms is not None and s.grad_rms >= s.grad_std for s in res.layers)


@pytest.mark.parametrize("loss", ["sum", "mse", "ce"])
def test_vanishing_gradient_still_found_under_every_loss(loss: str) -> None:
    net = Network([20, 100, 100, 100, 5], "tanh", init="normal(std=0.01)", rng=0)
    res = initlab.probe(net, _x(300, 20), loss=loss, rng=1)
    v = {v.kind: v for v in res.verdicts}
    assert "vanishing_gradient" in v and "RMS" in v["vanishing_gradient"].message
    g = res.column("grad_rms")
    assert g[0] < g[-1] / 100


# -- 2. bounded activations are binned on their own range -----------------------------------------------------
def test_tanh_saturation_shows_in_the_end_bins_next_to_a_wide_linear_readout(tmp_path: object) -> None:
    net = Network([500, 500, 500, 500], "tanh", init="normal(std=1)", rng=0)
    res = initlab.probe(net, _x(1000, 500).astype(np.float32), rng=1)
    assert res.layers[-1].std > 10  # the premise: the linear read-out spreads far beyond ±1
    for st in res.layers[:2]:
        h = st.hist
        assert h.edges[0] == -1.0 and h.edges[-1] == 1.0
        assert (h.counts[0] + h.counts[-1]) / h.n_sampled > 0.8
    h = res.layers[-1].hist
    assert h.edges[0] < -10 and h.edges[-1] > 10  # the other group keeps its own common binning
    path = str(tmp_path) + "/p.png"  # type: ignore[operator]
    res.plot(path)
    with open(path, "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_bounded_range_reads_the_activation() -> None:
    from initlab.diagnostics._measure import bounded_range

    assert bounded_range(get("tanh")) == (-1.0, 1.0)
    assert bounded_range(get("sigmoid")) == (0.0, 1.0)
    assert bounded_range(get("relu")) is None and bounded_range(get("linear")) is None and bounded_range(None) is None


# -- 3. weight gradients of the MEAN loss: batch independent --------------------------------------------------
def _loss_grad(out: np.ndarray, y: np.ndarray | None, loss: str) -> np.ndarray:
    if loss == "sum":
        return np.ones_like(out)
    if loss == "mse":
        return out - y
    p = np.exp(out - out.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(out)), y] -= 1.0
    return p


@pytest.mark.parametrize("loss", ["mse", "ce", "sum"])
def test_weight_gradient_stats_are_those_of_the_mean_loss(loss: str) -> None:
    """ĝ(B) = (1/B) Σ_b g_b has E[ĝ²] = μ² + σ²/B per entry (μ, σ²: mean and variance of the
    per-sample gradient g_b = δ_b x_bᵀ). So std(ĝ)² and ‖ĝ‖²/‖W‖² at B = 200 may exceed those at
    B = 2000 by ≈ σ̄²(1/200 − 1/2000); allow 3σ̄²/200 (σ̄² estimated from the 2000 per-sample
    gradients). A summed loss would multiply std(ĝ) by B, i.e. ×10 between the two batches."""
    net = Network([10, 50, 50, 4], "tanh", init="xavier_normal", rng=0, dtype=np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 10))
    y = {"mse": rng.standard_normal((2000, 4)), "ce": rng.integers(0, 4, 2000), "sum": None}[loss]
    small = initlab.probe(net, x[:200], y=None if y is None else y[:200], loss=loss, rng=0)
    large = initlab.probe(net, x, y=y, loss=loss, rng=0)
    out, trace = net.forward(x, capture=True)
    net.backward(_loss_grad(out, y, loss), trace)
    for i, (layer, tr) in enumerate(zip(net.layers, trace)):
        d, a = tr.grad_preact, tr.inputs
        mean_g = d.T @ a / len(x)  # the mean-loss gradient at B = 2000
        var_g = (d * d).T @ (a * a) / len(x) - mean_g**2
        assert large.layers[i].grad_weight_std == pytest.approx(float(np.std(mean_g)), rel=1e-9)
        w2 = float(np.sum(layer.weight.astype(np.float64) ** 2))
        tol_std2 = 3 * float(np.mean(var_g)) / 200
        tol_ratio2 = 3 * float(np.sum(var_g)) / 200 / w2
        s, lg = small.layers[i], large.layers[i]
        assert abs(s.grad_weight_std**2 - lg.grad_weight_std**2) <= tol_std2, (i, s.grad_weight_std, lg.grad_weight_std)
        assert abs(s.grad_weight_ratio**2 - lg.grad_weight_ratio**2) <= tol_ratio2, (i, s.grad_weight_ratio, lg.grad_weight_ratio)


# -- 4. functional activations and pass-through modules (torch) ------------------------------------------------
torch = pytest.importorskip("torch")


def _seeded(model: "torch.nn.Module", seed: int) -> "torch.nn.Module":
    """Re-draw every parameter from a private torch.Generator (no global seeding)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif name.endswith("bias"):
                p.zero_()
    return model


class _Functional(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(10, 20)
        self.b = torch.nn.Linear(20, 3)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.b(torch.nn.functional.relu(self.a(x)))


def test_functional_activation_is_merged_into_the_producing_layer() -> None:
    """Op-level capture sees F.relu: the layer's row gets the activation, measured by hand here."""
    model = _seeded(_Functional(), 0)
    x = _x(64, 10).astype(np.float32)
    res = initlab.probe(model, x, rng=0)
    a, b = res.layers
    with torch.no_grad():
        z = model.a(torch.from_numpy(x)).double()
    h = torch.relu(z)
    assert a.activation == "relu" and a.name == "a" and b.name == "b" and b.activation == "linear"
    assert a.preact_std == pytest.approx(float(z.std(unbiased=False)), rel=1e-5)
    assert a.std == pytest.approx(float(h.std(unbiased=False)), rel=1e-5)
    assert a.dead == pytest.approx(float((z.max(0).values <= 0).double().mean()), abs=1e-12)
    assert b.input_seen and res.notes == [] and res.unexamined == []


def test_flatten_identity_dropout_modules_are_pass_through() -> None:
    model = _seeded(torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Dropout(0.0), torch.nn.Flatten(),
        torch.nn.Identity(), torch.nn.Linear(4 * 6 * 6, 5), torch.nn.Unflatten(1, (5, 1))), 1)
    res = initlab.probe(model, _x(16, 3 * 8 * 8).reshape(16, 3, 8, 8).astype(np.float32), rng=0)
    assert res.notes == [] or all("plain stacks" in n for n in res.notes), res.notes
    assert [s.activation for s in res.layers] == ["relu", "linear"]
    assert all(s.input_seen for s in res.layers)


# -- 5. norm rows carry a gradient; one norm no longer disables the gradient verdicts ---------------------------
class _Block(torch.nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.BatchNorm2d(c)
        self.act = torch.nn.ReLU()
        self.conv2, self.bn2 = torch.nn.Conv2d(c, c, 3, padding=1), torch.nn.BatchNorm2d(c)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return torch.nn.functional.relu(x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x))))))


class _ResNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn, self.r = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU()
        self.b = _Block(8)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.fc(self.b(self.r(self.bn(self.stem(x)))).mean((2, 3)))


def _cnn_probe() -> tuple["torch.nn.Module", np.ndarray, initlab.ProbeResult]:
    model = _seeded(_ResNet(), 0)
    x = np.random.default_rng(0).standard_normal((32, 3, 8, 8)).astype(np.float32)
    return model, x, initlab.probe(model, x, rng=0)


def test_conv_bn_residual_model_rows() -> None:
    model, x, res = _cnn_probe()
    kinds = [s.kind for s in res.layers]
    assert kinds == ["conv", "norm", "activation", "conv", "norm", "activation", "conv",
                     "norm", "add", "activation", "pool", "linear"]
    assert [s.name for s in res.layers] == ["stem", "bn", "r", "b.conv1", "b.bn1", "b.act", "b.conv2", "b.bn2",
                                            "b.add", "b.relu", "mean", "fc"]
    with torch.no_grad():
        z = model.stem(torch.from_numpy(x)).double()
    chan_mean = z.mean(dim=(0, 2, 3))
    assert res.layers[0].width == 8
    assert res.layers[0].preact_sq_mean == pytest.approx(float((chan_mean**2).mean()), rel=1e-5)
    for s in res.layers:
        assert s.grad_std is not None and s.grad_std > 0 and s.grad_rms is not None, s.name
    for s in res.layers:
        if s.kind == "norm":  # affine weight gradient, and nothing saturates or dies in a norm
            assert s.grad_weight_std is not None and s.grad_weight_ratio is not None
            assert s.dead is None and s.saturated is None and s.weight_std is None and s.gain_std == 0.0
    # the norm row's gradient is the gradient at its output: for bn → relu, the relu row's input
    assert res.layers[1].grad_std == pytest.approx(res.layers[2].grad_std, rel=1e-12)


def _tanh_mlp(layernorm: bool) -> "torch.nn.Module":
    g = torch.Generator().manual_seed(4)
    mods: list[torch.nn.Module] = []
    for i in range(8):
        lin = torch.nn.Linear(100, 100)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(100, 100, generator=g))  # N(0, 1): chaotic, gradients explode
            lin.bias.zero_()
        mods += [lin, torch.nn.Tanh()]
        if layernorm and i == 3:
            mods.append(torch.nn.LayerNorm(100))
    out = torch.nn.Linear(100, 4)
    with torch.no_grad():
        out.weight.copy_(torch.randn(4, 100, generator=g))
        out.bias.zero_()
    return torch.nn.Sequential(*mods, out)


def test_layernorm_keeps_the_gradient_verdicts() -> None:
    x = _x(256, 100).astype(np.float32)
    plain = initlab.probe(_tanh_mlp(False), x, rng=0)
    assert "exploding_gradient" in {v.kind for v in plain.verdicts}  # the premise
    with_ln = initlab.probe(_tanh_mlp(True), x, rng=0)
    ln = next(s for s in with_ln.layers if s.op == "layer_norm")
    assert ln.grad_std is not None and ln.grad_weight_std is not None
    assert "exploding_gradient" in {v.kind for v in with_ln.verdicts}


# -- 6. pooling is a row of its own: the fc after it reads a seen input ------------------------------------------
def test_pooled_features_get_a_pool_row() -> None:
    """x.mean((2, 3)) is captured as a "pool" row (global average pooling) and the fc after it reads
    its output. (Not judging pooled non-negative features as collapsed is the verdicts' rule.)"""
    model, x, res = _cnn_probe()
    pool, fc = res.layers[-2], res.layers[-1]
    assert pool.kind == "pool" and pool.op == "mean" and pool.width == 8 and fc.input_seen
    with torch.no_grad():
        feats = model.b(model.r(model.bn(model.stem(torch.from_numpy(x))))).mean((2, 3)).double()
        logits = model.fc(feats.float()).double()
    assert pool.std == pytest.approx(float(feats.std(unbiased=False)), rel=1e-5)
    assert pool.sq_mean == pytest.approx(float((feats.mean(0) ** 2).mean()), rel=1e-5)
    assert fc.preact_std == pytest.approx(float(logits.std(unbiased=False)), rel=1e-5)


def test_recommendation_uses_the_rows_own_activation_or_names_the_main_one() -> None:
    layers = []
    for i, act in enumerate(["tanh", "tanh", "tanh", "linear", "relu"]):
        st = new_layer(i + 1, f"l{i + 1}", "dense", get(act))
        st.std, st.cosine = 1.0, 0.1
        layers.append(st)
    layers[3].cosine = 0.99  # a linear row "collapses"
    layers[4].dead = 0.5  # a relu row has dead units
    found = {v.kind: v for v in verdicts(ProbeResult(layers=layers, input_std=1.0, input_cosine=0.0, backward=False))}
    assert found["collapsed"].recommendation.endswith("for tanh, the model's main activation")
    assert found["collapsed"].recommendation.startswith("use lecun_normal")
    assert found["dead"].recommendation.startswith("use kaiming_normal") and "main activation" not in found["dead"].recommendation


# -- 7. the theory column includes the bias variance -------------------------------------------------------------
def test_cli_theory_reflects_bias_variance(capsys: pytest.CaptureFixture[str]) -> None:
    from initlab.nn import predict_stack

    sizes = [50, 200, 200, 200, 3]
    code, out = _cli(["probe", "--layers", ",".join(map(str, sizes)), "--activation", "tanh", "--init",
                      "lecun_normal", "--bias", "normal(std=0.1)", "--theory", "--batch", "400", "--json"], capsys)
    d = json.loads(out)
    assert code == 0 and d["theory"]
    q0 = d["input"]["std"] ** 2 + d["input"]["mean"] ** 2
    acts = ["tanh"] * 3 + ["linear"]
    with_b = predict_stack(sizes, acts, ["lecun_normal"] * 4, input_var=q0, bias_inits=["normal(std=0.1)"] * 4)
    no_b = predict_stack(sizes, acts, ["lecun_normal"] * 4, input_var=q0, bias_inits=["zeros"] * 4)
    got = np.array([s["theory_std"] for s in d["layers"]])
    np.testing.assert_allclose(got, np.asarray(with_b.act_std, dtype=float), rtol=1e-9)
    # σ_b² = 0.01 shows: the zero-bias prediction differs by far more than the comparison's tolerance
    assert np.all(np.abs(np.asarray(no_b.act_std, dtype=float) - got) > 1e-4 * got)


# -- 8. dead / saturated are None where they do not apply -------------------------------------------------------
def test_dead_and_saturated_none_where_they_do_not_apply() -> None:
    x = _x(200, 10)
    relu = initlab.probe(Network([10, 30, 3], "relu", rng=0), x, rng=0)
    assert relu.layers[0].dead == 0.0 and relu.layers[0].saturated is None
    assert relu.layers[1].dead is None and relu.layers[1].saturated is None  # linear read-out
    tanh = initlab.probe(Network([10, 30, 3], "tanh", rng=0), x, rng=0)
    assert tanh.layers[0].dead is None and isinstance(tanh.layers[0].saturated, float)
    d = json.loads(relu.to_json())
    assert d["layers"][1]["dead"] is None and d["layers"][1]["saturated"] is None
    row = next(line for line in str(relu).splitlines() if line.strip().startswith("│     2"))
    cells = [c.strip() for c in row.split("│")]
    assert cells.count("—") >= 2, row
