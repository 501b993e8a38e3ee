"""theory.predict (folding each layer's propagate) against Monte-Carlo on wide random networks.

Tolerances come from the sample size: a second moment estimated from n roughly independent
Gaussian-like values has relative standard error √(2/n_eff); the layers' units share weights, so
n_eff is taken as the number of independent weight draws that set it (the width × the number of
networks), and the tests allow 6 standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import initlab.theory as T
from initlab.nn import BatchNorm, Conv1d, Conv2d, Dense, LayerNorm, Network, Residual, predict_stack


def _measure(make, x: np.ndarray, nets: int, *, train: bool = False) -> list[dict[str, float]]:
    """Pooled second moments of every layer's pre-activation, output and pre-activation gradient
    (output gradient ~ N(0, 1)) over ``nets`` independent random networks."""
    acc: list[dict[str, float]] = []
    rng = np.random.default_rng(123)
    for k in range(nets):
        net = make(k)
        out, trace = net.forward(x, capture=True, train=train)
        net.backward(rng.normal(size=out.shape), trace)
        for i, t in enumerate(trace):
            if len(acc) <= i:
                acc.append({"q": 0.0, "m": 0.0, "s": 0.0, "g": 0.0})
            acc[i]["q"] += float(np.mean(np.square(t.preact, dtype=np.float64))) / nets
            acc[i]["m"] += float(np.mean(t.act, dtype=np.float64)) / nets
            acc[i]["s"] += float(np.mean(np.square(t.act, dtype=np.float64))) / nets
            acc[i]["g"] += float(np.mean(np.square(t.grad_preact, dtype=np.float64))) / nets
    return acc


def _tol(n_eff: int) -> float:
    return 6.0 * math.sqrt(2.0 / n_eff)


def test_dense_stack_matches_monte_carlo_and_predict_stack() -> None:
    width, depth, nets = 400, 5, 4
    x = np.random.default_rng(0).normal(size=(200, width))
    make = lambda k: Network([width] * (depth + 1), "tanh", "tanh", init="normal(std=0.06)", bias_init="normal(std=0.2)",  # noqa: E731
                             rng=k, dtype=np.float64)
    pred = T.predict(make(0), input_var=1.0)
    mc = _measure(make, x, nets)
    tol = _tol(width * nets)
    for r, m in zip(pred.layers, mc):
        assert m["q"] == pytest.approx(r.preact_var + r.preact_mean ** 2, rel=tol)
        assert m["s"] == pytest.approx(r.act_second_moment, rel=tol)
        assert m["g"] == pytest.approx(r.grad_var, rel=2 * tol)
    old = predict_stack([width] * (depth + 1), "tanh", "normal(std=0.06)", bias_inits="normal(std=0.2)")
    np.testing.assert_allclose(old.preact_var, pred.preact_var, rtol=1e-12)
    np.testing.assert_allclose(old.grad_var, pred.grad_var, rtol=1e-12)


def test_conv_with_circular_padding_is_exact_in_the_mean_field() -> None:
    C, L, nets = 64, 32, 4
    x = np.random.default_rng(1).normal(size=(16, 1, 8, 8)) * 1.3  # E[x²] = 1.69
    make = lambda k: Network(  # noqa: E731
        [Conv2d(1, C, 3, padding=1, padding_mode="circular", activation="tanh", init="normal(std=0.5)", dtype=np.float64),
         Conv2d(C, C, 3, padding=1, padding_mode="circular", activation="tanh", init="xavier_normal", dtype=np.float64),
         Conv2d(C, C, 3, padding=2, dilation=2, padding_mode="circular", activation="relu", init="he_normal", dtype=np.float64)],
        input_shape=(1, 8, 8), rng=k, dtype=np.float64)
    pred = T.predict(make(0), input_var=1.69)
    mc = _measure(make, x, nets)
    tol = _tol(C * nets)  # the output channels' weights are the independent draws
    for i, (r, m) in enumerate(zip(pred.layers, mc)):
        q = 0.25 * 9 * 1.69 if i == 0 else r.preact_var
        assert r.preact_var == pytest.approx(q, rel=1e-12)
        assert m["q"] == pytest.approx(r.preact_var, rel=tol)
        assert m["s"] == pytest.approx(r.act_second_moment, rel=tol)
        assert m["g"] == pytest.approx(r.grad_var, rel=2 * tol)
    assert not pred.notes  # circular padding: nothing approximate to state


def test_conv1d_zero_padding_states_its_border_effect() -> None:
    net = Network([Conv1d(1, 8, 5, padding=2, activation="linear", init="normal(std=1)")], input_shape=(1, 10), rng=0)
    pred = T.predict(net)
    # taps inside: positions 0..9, kernel 5, padding 2 -> (3+4+5*6+4+3)/(10*5) = 44/50
    assert pred.layers[0].preact_var == pytest.approx(5 * 44 / 50)
    assert "zero padding" in pred.notes[0] and "0.8800" in pred.notes[0]


def test_residual_block_variance_adds_and_gradients_grow() -> None:
    width, nets, alpha = 300, 4, 0.5
    x = np.random.default_rng(2).normal(size=(150, width))
    make = lambda k: Network(  # noqa: E731
        [Residual([Dense(width, width, "relu", init="he_normal", dtype=np.float64),
                   Dense(width, width, init="lecun_normal", dtype=np.float64)], alpha=alpha) for _ in range(4)],
        rng=k, dtype=np.float64)
    pred = T.predict(make(0))
    mc = _measure(make, x, nets)
    tol = _tol(width * nets)
    # E[y²] = E[x²](1 + α²·2·(1/2)) per block = 1.25^l
    for i, (r, m) in enumerate(zip(pred.layers, mc)):
        assert r.act_second_moment == pytest.approx(1.25 ** (i + 1), rel=1e-9)
        assert m["s"] == pytest.approx(r.act_second_moment, rel=tol * math.sqrt(i + 1))
        assert m["g"] == pytest.approx(r.grad_var, rel=2 * tol * math.sqrt(4 - i))


def test_norm_layers_reset_the_scale() -> None:
    width, nets = 256, 4
    x = np.random.default_rng(3).normal(size=(128, width)) * 3.0
    make = lambda k: Network(  # noqa: E731
        [Dense(width, width, "linear", init="normal(std=0.3)", dtype=np.float64), BatchNorm(width, dtype=np.float64),
         Dense(width, width, "tanh", init="xavier_normal", dtype=np.float64), LayerNorm(width, dtype=np.float64)],
        rng=k, dtype=np.float64)
    pred = T.predict(make(0), input_var=9.0)
    mc = _measure(make, x, nets, train=True)
    tol = _tol(width * nets)
    assert pred.layers[0].preact_var == pytest.approx(width * 0.09 * 9.0)
    for r, m in zip(pred.layers, mc):
        assert m["s"] == pytest.approx(r.act_second_moment, rel=tol)
    assert pred.layers[1].act_second_moment == pytest.approx(1.0, rel=1e-5)


def test_predict_rejects_what_has_no_propagate() -> None:
    with pytest.raises(TypeError, match="network_or_layers"):
        T.predict([object()])
    with pytest.raises(ValueError, match="input_var"):
        T.predict(Network([3, 2], rng=0), input_var=-1.0)


def test_the_theory_imports_no_init() -> None:
    import subprocess
    import sys

    code = "import sys, initlab.theory; print('initlab.init' in sys.modules, 'initlab.nn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_probe_of_a_conv_network_shows_the_same_prediction() -> None:
    import initlab

    net = Network([Conv2d(1, 32, 3, padding=1, padding_mode="circular", activation="tanh", init="xavier_normal"),
                   Conv2d(32, 32, 3, padding=1, padding_mode="circular", activation="tanh", init="lecun_normal")],
                  input_shape=(1, 8, 8), rng=0)
    x = np.random.default_rng(0).normal(size=(64, 1, 8, 8)).astype(np.float32)
    res = initlab.probe(net, x, theory=True)
    pred = T.predict(net, input_var=float(np.mean(x.astype(np.float64) ** 2)), input_mean=float(np.mean(x, dtype=np.float64)))
    assert [st.kind for st in res.layers] == ["conv2d", "conv2d"]
    for st, r in zip(res.layers, pred.layers):
        assert st.theory_std == pytest.approx(r.act_std, rel=1e-6)  # the probe reads the input moments in float32
        assert st.std == pytest.approx(r.act_std, rel=_tol(32))
