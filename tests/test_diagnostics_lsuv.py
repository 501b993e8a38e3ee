"""LSUV (initlab.fix) brings every layer's pre-activation variance within tol of 1."""

from __future__ import annotations

import numpy as np
import pytest

import initlab
from initlab.nn import Network

STARTS = ["normal(std=1.0)", "normal(std=0.01)"]


def _preact_vars_numpy(net: Network, x: np.ndarray) -> np.ndarray:
    _, trace = net.forward(x, capture=True)
    return np.array([np.var(t.preact.astype(np.float64)) for t in trace])


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("start", STARTS)
def test_lsuv_numpy_20_layers(act: str, start: str) -> None:
    net = Network([64] + [128] * 20, activation=act, output=act, init=start, rng=0)
    x = np.random.default_rng(1).standard_normal((256, 64)).astype(np.float32)
    tol, max_iter = 0.1, 10
    rec = initlab.fix(net, x, tol=tol, max_iter=max_iter, rng=2)
    v = _preact_vars_numpy(net, x)
    assert len(v) == 20 and np.all(np.abs(v - 1) <= tol), v
    assert rec.converged and all(r["iterations"] <= max_iter for r in rec.layers)
    # the record's scales are what was applied to the orthogonal weights: W Wᵀ = scale² I
    w = net.layers[3].weight.astype(np.float64)
    np.testing.assert_allclose(w @ w.T, rec.scales[3] ** 2 * np.eye(128), atol=1e-4 * rec.scales[3] ** 2)


def test_lsuv_with_bias_iterates_and_respects_max_iter() -> None:
    net = Network([32] + [64] * 5, activation="tanh", output="tanh", init="normal(std=1.0)",
                  bias_init="normal(std=0.5)", rng=0)
    x = np.random.default_rng(1).standard_normal((200, 32)).astype(np.float32)
    rec = initlab.fix(net, x, tol=0.01, max_iter=10, rng=0)
    assert all(r["iterations"] <= 10 for r in rec.layers)
    v = _preact_vars_numpy(net, x)
    assert np.all(np.abs(v - 1) <= 0.01) == rec.converged
    rec0 = initlab.fix(net, x, tol=0.01, max_iter=0, rng=0)
    assert all(r["iterations"] == 0 and r["scale"] == 1.0 for r in rec0.layers)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("start", STARTS)
def test_lsuv_torch_20_layers(act: str, start: str) -> None:
    torch = pytest.importorskip("torch")
    mods = []
    width = [64] + [128] * 20
    for i in range(20):
        mods += [torch.nn.Linear(width[i], width[i + 1]), torch.nn.Tanh() if act == "tanh" else torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods)
    initlab.apply(model, {"Linear": {"weight": start, "bias": "zeros"}}, rng=0)
    x = np.random.default_rng(1).standard_normal((256, 64)).astype(np.float32)
    rec = initlab.fix(model, x, tol=0.1, max_iter=10, rng=3)
    assert rec.converged and len(rec.layers) == 20
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o.detach().double().var(unbiased=False).item()))
             for m in model if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    assert np.all(np.abs(np.array(outs) - 1) <= 0.1), outs


def test_fix_bad_input() -> None:
    net = Network([4, 4], rng=0)
    with pytest.raises(ValueError, match="tol"):
        initlab.fix(net, np.ones((3, 4)), tol=0)
    with pytest.raises(TypeError, match="model"):
        initlab.fix(object(), np.ones((3, 4)))
