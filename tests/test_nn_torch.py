"""initlab's engine against torch autograd (float64): outputs, loss, gradients, captured signals."""

from __future__ import annotations

import numpy as np
import pytest

from initlab import activations
from initlab.nn import Network

torch = pytest.importorskip("torch")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _random_net(sizes, act, output, rng):
    net = Network(sizes, act, output, init="zeros", rng=0, dtype=np.float64)
    for layer in net.layers:
        layer.weight = rng.normal(0, 1.0 / np.sqrt(layer.n_in), layer.shape)
        layer.bias = rng.normal(0, 0.3, layer.n_out)
    return net


def _torch_loss(name, out, y):
    if name == "bce":
        return torch.nn.functional.binary_cross_entropy(out, torch.from_numpy(y))
    if name == "ce":
        return torch.nn.functional.cross_entropy(out, torch.from_numpy(y))
    return torch.nn.functional.mse_loss(out, torch.from_numpy(y))


#: every activation that has a torch module (to_torch rejects the others), plus non-default parameters
TORCH_ACTS = [n for n in activations.names() if activations.get(n).torch_module is not None] + [
    "leaky_relu(0.2)", "elu(0.5)"]


def test_torch_acts_cover_the_usual_activations():
    assert {"relu", "leaky_relu", "mish", "tanh", "gelu", "selu"} <= set(TORCH_ACTS)


@pytest.mark.parametrize("case", range(len(TORCH_ACTS)))
def test_random_architectures_match_torch_autograd(case):
    rng = np.random.default_rng(100 + case)
    depth = int(rng.integers(2, 5))
    sizes = [int(s) for s in rng.integers(1, 9, depth + 1)]
    sizes[-1] = max(sizes[-1], 2)
    # case k puts TORCH_ACTS[k] in the first hidden layer (each appears at least once); the rest random
    acts = [TORCH_ACTS[case]] + [str(rng.choice(TORCH_ACTS)) for _ in range(depth - 2)]
    loss = ["bce", "ce", "mse"][case % 3]
    output = {"bce": "sigmoid", "ce": "linear", "mse": str(rng.choice(["linear", "tanh", "softplus"]))}[loss]
    net = _random_net(sizes, acts, output, rng)
    n = int(rng.integers(1, 12))
    x = rng.normal(size=(n, sizes[0]))
    if loss == "bce":
        y = rng.integers(0, 2, (n, sizes[-1])).astype(np.float64)
    elif loss == "ce":
        y = rng.integers(0, sizes[-1], n)
    else:
        y = rng.normal(size=(n, sizes[-1]))
    value, trace = net.gradients(x, y, loss)

    model = net.to_torch()
    out = model(torch.from_numpy(x))
    tl = _torch_loss(loss, out, y)
    tl.backward()
    assert value == pytest.approx(tl.item(), rel=1e-10)
    assert _rel(net.forward(x), out.detach().numpy()) < 1e-12
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for t, lin in zip(trace, linears):
        assert _rel(t.grad_weight, lin.weight.grad.numpy()) < 1e-6, (sizes, acts)
        assert _rel(t.grad_bias, lin.bias.grad.numpy()) < 1e-6, (sizes, acts)


def test_capture_matches_torch_intermediate_signals():
    rng = np.random.default_rng(7)
    net = _random_net([4, 6, 5, 3], ["tanh", "relu"], "linear", rng)
    x = rng.normal(size=(9, 4))
    out, trace = net.forward(x, capture=True)
    model = net.to_torch()
    h = torch.from_numpy(x)
    seen = []
    for m in model:
        h = m(h)
        seen.append(h.detach().numpy())
    # Sequential: Linear, Tanh, Linear, ReLU, Linear
    np.testing.assert_allclose(trace[0].preact, seen[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(trace[0].act, seen[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(trace[1].act, seen[3], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, seen[4], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(trace[1].inputs, trace[0].act)
