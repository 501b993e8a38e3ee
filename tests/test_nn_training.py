"""Training: a hand-worked SGD step, seed 001 reproduced, determinism, precision, divergence, optimizers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.data import moons
from initlab.nn import Network


def test_one_sgd_step_worked_by_hand():
    # 2-2-1, ReLU hidden, sigmoid output, bce, one sample x = (1, 2), y = 1, lr = 0.1.
    # z1 = W1 x + b1 = (0.5 - 1.0, 0.25 + 1.5 + 0.1) = (-0.5, 1.85); a1 = relu(z1) = (0, 1.85)
    # z2 = (1, -1)·a1 = -1.85; p = σ(-1.85) = 0.1358729; L = log(1 + e^{1.85}) = 1.9960354
    # dL/dz2 = p - y = -0.8641271; dW2 = dz2·a1 = (0, -1.5986351); db2 = -0.8641271
    # dL/da1 = dz2·W2 = (-0.8641271, 0.8641271); dz1 = (0, 0.8641271) (relu' = 0, 1)
    # dW1 = dz1 ⊗ x = [[0, 0], [0.8641271, 1.7282542]]; db1 = (0, 0.8641271)
    net = Network([2, 2, 1], "relu", "sigmoid", init="zeros", rng=0, dtype=np.float64)
    net.layers[0].weight = [[0.5, -0.5], [0.25, 0.75]]
    net.layers[0].bias = [0.0, 0.1]
    net.layers[1].weight = [[1.0, -1.0]]
    net.layers[1].bias = [0.0]
    hist = net.fit([[1.0, 2.0]], [1.0], epochs=1, lr=0.1, optimizer="sgd", loss="bce", progress=False)
    assert hist.step_loss[0] == pytest.approx(1.9960354, abs=1e-7)
    np.testing.assert_allclose(net.layers[0].weight, [[0.5, -0.5], [0.16358729, 0.57717458]], atol=1e-8)
    np.testing.assert_allclose(net.layers[0].bias, [0.0, 0.01358729], atol=1e-8)
    np.testing.assert_allclose(net.layers[1].weight, [[1.0, -0.84013649]], atol=1e-8)
    np.testing.assert_allclose(net.layers[1].bias, [0.08641271], atol=1e-8)


@pytest.fixture(scope="module")
def seed001():
    return moons(400, 100, noise=0.2, rng=0)


def test_seed001_zeros_init_learns_nothing(seed001):
    X, y, Xt, yt = seed001
    net = Network([2, 12, 6, 1], "relu", "sigmoid", init="zeros", rng=0)
    hist = net.fit(X, y, epochs=15000, lr=0.01, progress=False)
    # every weight gradient is 0 and the output bias gradient is mean(0.5 - y) = 0 (balanced classes)
    assert np.allclose(hist.epoch_loss, math.log(2), atol=1e-6)
    assert net.evaluate(X, y)["accuracy"] == 0.5
    assert net.evaluate(Xt, yt)["accuracy"] == 0.5
    assert all(not np.any(layer.weight) for layer in net.layers)  # symmetry never broken
    assert abs(float(net.layers[-1].bias[0])) < 1e-6  # only float32 rounding noise


def test_seed001_he_init_learns_moons(seed001):
    X, y, Xt, yt = seed001
    net = Network([2, 12, 6, 1], "relu", "sigmoid", init="he_normal", rng=0)
    hist = net.fit(X, y, epochs=15000, lr=0.01, X_val=Xt, y_val=yt, progress=False)
    assert not hist.diverged and len(hist.epoch_loss) == 15000
    assert hist.epoch_loss[-1] < 0.5 * hist.epoch_loss[0]
    assert net.evaluate(Xt, yt)["accuracy"] >= 0.93
    assert hist.val_epochs[-1] == 15000 and hist.val_accuracy[-1] == net.evaluate(Xt, yt)["accuracy"]


def test_same_seed_same_history_minibatch():
    X, y, _, _ = moons(200, 0, noise=0.2, rng=5)
    runs = []
    for _ in range(2):
        net = Network([2, 8, 1], "tanh", "sigmoid", init="xavier_normal", rng=11)
        h = net.fit(X, y, epochs=5, batch_size=16, lr=0.1, optimizer="momentum", progress=False)
        runs.append((h.step_loss, net.params.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = Network([2, 8, 1], "tanh", "sigmoid", init="xavier_normal", rng=11)
    h3 = other.fit(X, y, epochs=5, batch_size=16, lr=0.1, optimizer="momentum", progress=False, rng=99)
    assert h3.step_loss != runs[0][0]  # a different shuffling stream gives a different path


def test_float32_and_float64_agree():
    X, y, _, _ = moons(300, 0, noise=0.2, rng=1)
    n32 = Network([2, 12, 6, 1], "relu", "sigmoid", init="he_normal", rng=3)
    n64 = Network([2, 12, 6, 1], "relu", "sigmoid", init="zeros", rng=3, dtype=np.float64)
    n64.params[:] = n32.params
    h32 = n32.fit(X, y, epochs=300, lr=0.05, progress=False)
    h64 = n64.fit(X, y, epochs=300, lr=0.05, progress=False)
    assert n32.params.dtype == np.float32 and n64.params.dtype == np.float64
    np.testing.assert_allclose(h32.epoch_loss, h64.epoch_loss, rtol=1e-4)
    np.testing.assert_allclose(n32.params, n64.params, rtol=1e-3, atol=1e-4)


def test_divergence_stops_and_flags_without_nan_output():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)) * 10
    y = rng.normal(size=(64, 2)) * 10
    net = Network([3, 32, 32, 2], "relu", init="normal(std=3)", rng=0)
    hist = net.fit(X, y, epochs=200, lr=1.0, loss="mse", progress=False)
    assert hist.diverged
    assert isinstance(hist.diverged_step, int) and hist.diverged_step == len(hist.step_loss)
    assert hist.epochs_run < 200
    assert all(math.isfinite(v) for v in hist.step_loss + hist.epoch_loss)
    assert np.all(np.isfinite(net.params)) and np.all(np.isfinite(net.predict(X)))


def test_divergence_on_the_last_update_is_caught_and_rolled_back():
    # One full-batch epoch: the only loss is measured before the (only) update, which blows the
    # weights up; the run must end diverged, with the initial (finite) weights restored.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = rng.normal(size=(400, 2)).astype(np.float32)
    net = Network([3, 64, 64, 2], "relu", init="normal(std=100)", rng=0)
    before = net.params.copy()
    hist = net.fit(X, y, epochs=1, lr=1.0, loss="mse", progress=False)
    assert hist.diverged is True
    assert hist.diverged_step == 1 == len(hist.step_loss) and hist.diverged_epoch == 0
    np.testing.assert_array_equal(net.params, before)
    assert math.isfinite(net.evaluate(X, y, "mse")["loss"])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_optimizers_match_torch(optimizer):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    y = rng.integers(0, 3, 40)
    net = Network([3, 7, 3], "tanh", init="xavier_uniform", rng=2, dtype=np.float64)
    model = net.to_torch()
    kw = {"momentum": {"momentum": 0.9}}.get(optimizer, {})
    hist = net.fit(X, y, epochs=4, batch_size=10, lr=0.05, optimizer=optimizer, loss="ce", shuffle=False, progress=False, **kw)
    topt = {"sgd": lambda p: torch.optim.SGD(p, lr=0.05), "momentum": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
            "adam": lambda p: torch.optim.Adam(p, lr=0.05)}[optimizer](model.parameters())
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    tl = []
    for _ in range(4):
        for s in range(0, 40, 10):
            topt.zero_grad()
            lo = torch.nn.functional.cross_entropy(model(Xt[s : s + 10]), yt[s : s + 10])
            lo.backward()
            topt.step()
            tl.append(lo.item())
    np.testing.assert_allclose(hist.step_loss, tl, rtol=1e-9)
    np.testing.assert_allclose(net.layers[0].weight, model[0].weight.detach().numpy(), rtol=1e-8, atol=1e-12)


def test_batch_size_and_epoch_loss_bookkeeping():
    X, y, _, _ = moons(50, 0, noise=0.1, rng=2)
    net = Network([2, 4, 1], "relu", "sigmoid", rng=0)
    h = net.fit(X, y, epochs=3, batch_size=20, lr=0.1, progress=False)
    assert len(h.step_loss) == 9  # batches of 20, 20, 10
    sizes = np.array([20, 20, 10])
    for e in range(3):
        assert h.epoch_loss[e] == pytest.approx(np.dot(h.step_loss[3 * e : 3 * e + 3], sizes) / 50)
    assert h.train_seconds > 0 and h.epochs_run == 3


def test_fit_rejects_bad_arguments():
    net = Network([2, 3, 1], "relu", "sigmoid", rng=0)
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="'X'.*shape"):
        net.fit(np.zeros((4, 3)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="'y'.*4 rows"):
        net.fit(X, [0, 1, 0])
    with pytest.raises(ValueError, match="'optimizer'.*'sgd'"):
        net.fit(X, [0, 1, 0, 1], optimizer="sgdd")
    with pytest.raises(ValueError, match="'lr'"):
        net.fit(X, [0, 1, 0, 1], lr=-1)
    with pytest.raises(ValueError, match="'ce'.*output"):
        net.fit(X, [0, 1, 0, 1], loss="ce")
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        net.fit(X, [0, 2, 0, 1])
    with pytest.raises(ValueError, match="finite"):
        net.fit(np.full((4, 2), np.nan), [0, 1, 0, 1])
    with pytest.raises(TypeError, match="'batch_size'"):
        net.fit(X, [0, 1, 0, 1], batch_size=2.5)


def test_unknown_optimizer_keyword_lists_the_allowed_ones():
    from initlab.nn import optimizers

    net = Network([2, 3, 1], "relu", "sigmoid", rng=0)
    X = np.zeros((4, 2))
    with pytest.raises(TypeError, match="'adam'.*'momentum'.*allowed: 'lr', 'beta1', 'beta2', 'eps'"):
        net.fit(X, [0, 1, 0, 1], optimizer="adam", momentum=0.9)
    with pytest.raises(TypeError, match="'sgd'.*'betas'.*allowed: 'lr'\\."):
        optimizers.get("sgd", lr=0.1, betas=(0.9, 0.99))
    assert optimizers.hyperparameters("momentum") == ["momentum"]
    assert optimizers.get("momentum", lr=0.1, momentum=0.5).momentum == 0.5


def _tiny():
    net = Network([2, 3, 1], "tanh", "sigmoid", rng=0)
    X = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    return net, X, (X[:, 0] > 0).astype(np.float32)


def test_progress_true_draws_a_rich_progress_bar(monkeypatch):
    import io

    from rich.console import Console

    from initlab.nn import training

    buf = io.StringIO()
    monkeypatch.setattr(training, "_console", lambda: Console(file=buf, force_terminal=True, width=100))
    net, X, y = _tiny()
    hist = net.fit(X, y, epochs=7, lr=0.1, progress=True)
    drawn = buf.getvalue()
    assert "training" in drawn and "7/7" in drawn and f"loss {hist.epoch_loss[-1]:.4g}" in drawn


def test_progress_default_goes_to_stderr_and_false_writes_nothing(capsys):
    net, X, y = _tiny()
    net.fit(X, y, epochs=7, lr=0.1, progress=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    net.fit(X, y, epochs=7, lr=0.1, progress=True)  # stderr is not a terminal here: rich draws little
    out = capsys.readouterr()
    assert out.out == ""  # never on stdout (the CLI's --json owns it)
