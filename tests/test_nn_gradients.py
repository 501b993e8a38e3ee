"""Backprop checked against central finite differences (float64) and against torch autograd."""

from __future__ import annotations

import numpy as np
import pytest

from initlab import activations
from initlab.nn import Dense, Network, losses

EPS = 1e-6


def _central(f, arr: np.ndarray) -> np.ndarray:
    """Central finite differences of the scalar f() w.r.t. every entry of arr (modified in place)."""
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + EPS
        fp = f()
        arr[i] = old - EPS
        fm = f()
        arr[i] = old
        g[i] = (fp - fm) / (2 * EPS)
    return g


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _random_net(sizes, act, output, rng, loss_scale=1.0):
    net = Network(sizes, act, output, init="zeros", rng=0, dtype=np.float64)
    for layer in net.layers:
        layer.weight = rng.normal(0, 1.0 / np.sqrt(layer.n_in), layer.shape)
        layer.bias = rng.normal(0, 0.3, layer.n_out)
    return net


@pytest.mark.parametrize("name", activations.names())
def test_every_activation_matches_finite_differences(name):
    rng = np.random.default_rng(1)
    net = _random_net([3, 5, 4, 2], name, "linear", rng)
    x = rng.normal(size=(6, 3))
    y = rng.normal(size=(6, 2))
    _, trace = net.gradients(x, y, "mse")
    for layer, t in zip(net.layers, trace):
        num_w = _central(lambda: net.evaluate(x, y, "mse")["loss"], layer.weight)
        num_b = _central(lambda: net.evaluate(x, y, "mse")["loss"], layer.bias)
        assert _rel(t.grad_weight, num_w) < 1e-6, name
        assert _rel(t.grad_bias, num_b) < 1e-6, name


@pytest.mark.parametrize(
    "loss,output,n_out",
    [("bce", "sigmoid", 1), ("bce", "linear", 3), ("ce", "linear", 4), ("mse", "linear", 2), ("mse", "tanh", 2), ("mse", "sigmoid", 1)],
)
def test_every_loss_matches_finite_differences(loss, output, n_out):
    rng = np.random.default_rng(2)
    net = _random_net([3, 4, n_out], "tanh", output, rng)
    x = rng.normal(size=(7, 3))
    if loss == "ce":
        y = rng.integers(0, n_out, 7)
    elif loss == "bce":
        y = rng.integers(0, 2, (7, n_out)).astype(float)
    else:
        y = rng.normal(size=(7, n_out))
    _, trace = net.gradients(x, y, loss)
    for layer, t in zip(net.layers, trace):
        num = _central(lambda: net.evaluate(x, y, loss)["loss"], layer.weight)
        assert _rel(t.grad_weight, num) < 1e-6
    # the loss alone: dL/dt against finite differences of the loss value
    lo = losses.get(loss)
    t_in = rng.normal(size=(5, n_out))
    yp = lo.prepare(y[:5], n_out, np.dtype(np.float64))
    _, g = lo.value_and_grad(t_in.copy(), yp)
    num = _central(lambda: lo.value_and_grad(t_in.copy(), yp)[0], t_in)
    assert _rel(g, num) < 1e-6


def test_dense_layer_backward_matches_finite_differences():
    rng = np.random.default_rng(3)
    layer = Dense(4, 3, "gelu", weight=rng.normal(size=(3, 4)), bias=rng.normal(size=3), dtype=np.float64)
    x = rng.normal(size=(5, 4))
    v = rng.normal(size=(5, 3))  # L = sum(v * a)
    _, cache = layer.forward(x)
    gx, (gw, gb) = layer.backward(v, cache)
    f = lambda: float(np.sum(v * layer.forward(x)[0]))  # noqa: E731
    assert _rel(gw, _central(f, layer.weight)) < 1e-6
    assert _rel(gb, _central(f, layer.bias)) < 1e-6
    assert _rel(gx, _central(f, x)) < 1e-6


def test_bce_on_logits_is_stable_where_naive_log_overflows():
    lo = losses.get("bce")
    z = np.array([[800.0], [-800.0]])
    y = np.array([[0.0], [1.0]])
    value, g = lo.value_and_grad(z, y)
    assert value == pytest.approx(800.0)  # -log(sigmoid(-800)) = 800 exactly in the limit
    assert np.allclose(g, [[0.5], [-0.5]])


def test_sigmoid_bce_grad_act_never_inf_when_the_output_saturates():
    # last-layer biases push z to ±40 and ±3: in float32 sigmoid(40) == 1 and sigmoid(-40) > 0,
    # so σ'(z) is exactly 0 for z = 40 and tiny but nonzero for z = -40
    net = Network([2, 3, 1], "tanh", "sigmoid", init="zeros", rng=0)
    x = np.zeros((4, 2), dtype=np.float32)
    y = np.array([0.0, 1.0, 0.0, 1.0])
    net.layers[1].bias = [40.0]
    _, trace = net.gradients(x, y, "bce")
    ga = trace[-1].grad_act
    assert not np.isinf(ga).any()
    sig = trace[-1].act
    d = sig * (1 - sig)
    assert np.all(np.isnan(ga[d == 0])) and np.any(d == 0)
    # the backward pass itself stays finite: dL/dz = (σ - y)/n
    np.testing.assert_allclose(trace[-1].grad_preact[:, 0], (sig[:, 0] - y) / 4, rtol=1e-6)
    # where σ' != 0 the value is the true dL/dσ = (σ - y) / (n σ (1 - σ)), checked in float64
    net64 = Network([2, 3, 1], "tanh", "sigmoid", init="zeros", rng=0, dtype=np.float64)
    for z in (3.0, -3.0, -40.0):
        net64.layers[1].bias = [z]
        _, tr = net64.gradients(np.zeros((2, 2)), np.array([0.0, 1.0]), "bce")
        s = 1 / (1 + np.exp(-z))
        expected = (s - np.array([0.0, 1.0])) / (2 * s * (1 - s))
        np.testing.assert_allclose(tr[-1].grad_act[:, 0], expected, rtol=1e-9)
        num = _central(lambda: net64.evaluate(np.zeros((2, 2)), np.array([0.0, 1.0]), "bce")["loss"], net64.layers[1].bias)
        # dL/db = Σ dL/dσ · σ'(z): the finite differences agree with grad_act · σ'
        assert num[0] == pytest.approx(float(np.sum(tr[-1].grad_act[:, 0] * s * (1 - s))), rel=1e-5, abs=1e-9)


FIT_ACTS = list(activations.names()) + ["leaky_relu(0.2)", "elu(0.5)"]


@pytest.mark.parametrize("loss,output", [("mse", "linear"), ("bce", "sigmoid"), ("ce", "linear"), ("mse", "tanh")])
@pytest.mark.parametrize("act", FIT_ACTS)
def test_one_sgd_step_of_fit_equals_network_gradients(act, loss, output):
    # fit's loop has its own forward/backward (preallocated buffers, lr folded into the loss
    # gradient); one full-batch SGD step must move every parameter by exactly -lr · Network.gradients.
    rng = np.random.default_rng(17)
    n_out = 1 if loss == "bce" else 3
    net = Network([4, 6, 5, n_out], act, output, init="xavier_normal", bias_init="normal(std=0.3)", rng=3,
                  dtype=np.float64)
    x = rng.normal(size=(9, 4))
    if loss == "bce":
        y = rng.integers(0, 2, 9).astype(np.float64)
    elif loss == "ce":
        y = rng.integers(0, n_out, 9)
    else:
        y = rng.normal(size=(9, n_out))
    value, trace = net.gradients(x, y, loss)
    before = [(layer.weight.copy(), layer.bias.copy()) for layer in net.layers]
    lr = 0.5
    hist = net.fit(x, y, epochs=1, lr=lr, optimizer="sgd", loss=loss, progress=False)
    assert not hist.diverged and hist.step_loss[0] == pytest.approx(value, rel=1e-12)
    for layer, (w0, b0), t in zip(net.layers, before, trace):
        for new, old, grad in ((layer.weight, w0, t.grad_weight), (layer.bias, b0, t.grad_bias)):
            step = (old - new) / lr
            scale = max(float(np.abs(grad).max()), 1e-300)
            # rounding of old - new is ~eps·|old|/lr: bounded relative to the gradient's scale
            tol = 1e-10 + 4 * np.finfo(np.float64).eps * float(np.abs(old).max()) / lr / scale
            assert float(np.abs(step - grad).max()) / scale < tol, (act, loss, output)
