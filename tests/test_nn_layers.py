"""The layer protocol: every layer's forward and backward against torch autograd (float64, 1e-6) and
finite differences; to_torch and save/load round trips; random streams by purpose; callbacks."""

from __future__ import annotations

import numpy as np
import pytest

from initlab.nn import (
    Activation,
    AvgPool1d,
    AvgPool2d,
    BatchNorm,
    Conv1d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    MaxPool1d,
    MaxPool2d,
    Network,
    Residual,
)
from initlab.nn.callbacks import Callback

F64 = np.float64


def _layers() -> list[tuple[str, object, tuple[int, ...]]]:
    """(name, layer, per-sample input shape) for every layer kind and option."""
    return [
        ("dense", Dense(5, 4, "tanh", dtype=F64), (5,)),
        ("conv1d", Conv1d(3, 4, 3, padding=1, activation="relu", dtype=F64), (3, 9)),
        ("conv1d_stride_dil", Conv1d(2, 4, 3, stride=2, dilation=2, padding=2, dtype=F64), (2, 11)),
        ("conv1d_circular", Conv1d(2, 3, 3, padding=1, padding_mode="circular", activation="tanh", dtype=F64), (2, 7)),
        ("conv2d", Conv2d(2, 3, 3, padding=1, activation="gelu", dtype=F64), (2, 5, 6)),
        ("conv2d_groups", Conv2d(4, 6, (3, 2), stride=(2, 1), groups=2, padding=(1, 0), dtype=F64), (4, 6, 5)),
        ("conv2d_circular_dil", Conv2d(2, 2, 3, padding=2, dilation=2, padding_mode="circular", dtype=F64), (2, 6, 6)),
        ("maxpool1d", MaxPool1d(2, dtype=F64), (3, 8)),
        ("maxpool2d", MaxPool2d(2, dtype=F64), (2, 4, 6)),
        ("avgpool1d", AvgPool1d(3, stride=2, dtype=F64), (2, 9)),
        ("avgpool2d", AvgPool2d(2, dtype=F64), (2, 4, 4)),
        ("globalavgpool", GlobalAvgPool(dtype=F64), (3, 4, 5)),
        ("flatten", Flatten(dtype=F64), (2, 3, 4)),
        ("batchnorm_dense", BatchNorm(5, dtype=F64), (5,)),
        ("batchnorm_conv", BatchNorm(3, dtype=F64), (3, 4, 4)),
        ("layernorm", LayerNorm(6, dtype=F64), (6,)),
        ("layernorm_2d", LayerNorm((3, 4), dtype=F64), (2, 3, 4)),
        ("activation", Activation("silu", dtype=F64), (7,)),
        ("residual", Residual([Dense(5, 5, "tanh", dtype=F64), Dense(5, 5, dtype=F64)], alpha=0.7), (5,)),
        ("residual_conv", Residual([Conv1d(3, 3, 3, padding=1, activation="relu", dtype=F64), BatchNorm(3, dtype=F64)]), (3, 6)),
    ]


def _net(layer: object, shape: tuple[int, ...], seed: int = 0) -> Network:
    net = Network([layer], input_shape=shape, rng=seed, dtype=F64)
    rng = np.random.default_rng(seed + 1)
    net.params[...] = rng.normal(0, 0.5, net.params.size)  # also moves BN/LN scales off 1
    return net


@pytest.mark.parametrize("name,layer,shape", _layers(), ids=[c[0] for c in _layers()])
def test_layer_backward_matches_torch_autograd(name: str, layer: object, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    net = _net(layer, shape)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, *shape))
    model = net.to_torch().double().train()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = model(xt)
    out, trace = net.forward(x, capture=True, train=True)
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=1e-6, atol=1e-9)
    v = rng.normal(size=out.shape)
    (yt * torch.from_numpy(v)).sum().backward()
    trace = net.backward(v, trace)
    gx = net.layers[0].backward(trace[0].grad_preact, trace[0].cache, from_preact=True)[0]
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-6, atol=1e-9)
    tparams = [p for p in model.parameters()]
    assert len(tparams) == len(trace[0].grads)
    for g, p in zip(trace[0].grads, tparams):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-6, atol=1e-9)


def _central(f, arr: np.ndarray, h: float = 1e-6) -> np.ndarray:
    out = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + h
        fp = f()
        arr[i] = old - h
        fm = f()
        arr[i] = old
        out[i] = (fp - fm) / (2 * h)
    return out


@pytest.mark.parametrize("name,layer,shape", _layers(), ids=[c[0] for c in _layers()])
def test_layer_backward_matches_finite_differences(name: str, layer: object, shape: tuple[int, ...]) -> None:
    net = _net(layer, shape, seed=3)
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, *shape))
    la = net.layers[0]
    if "maxpool" in name:  # keep the maxima apart so the finite differences do not cross a tie
        x = rng.permutation(np.arange(x.size, dtype=F64)).reshape(x.shape) / x.size
    v = rng.normal(size=la.forward(x, True)[0].shape)
    f = lambda: float(np.sum(v * la.forward(x, True)[0]))  # noqa: E731
    y, cache = la.forward(x, True)
    gx, grads = la.backward(v, cache)
    h = 1e-7 if "maxpool" in name else 1e-6
    np.testing.assert_allclose(gx, _central(f, x, h), rtol=1e-5, atol=1e-7)
    for g, p in zip(grads, la.arrays):
        np.testing.assert_allclose(g, _central(f, p), rtol=1e-5, atol=1e-7)


def _cnn(seed: int = 0, init: str = "he_normal", dtype=np.float32) -> Network:
    return Network(
        [Conv2d(1, 4, 3, padding=1, activation="relu", init=init, dtype=dtype), MaxPool2d(2, dtype=dtype),
         Residual([Conv2d(4, 4, 3, padding=1, padding_mode="circular", activation="tanh", init=init, dtype=dtype),
                   BatchNorm(4, dtype=dtype)], alpha=0.5),
         Dropout(0.2, dtype=dtype), Flatten(dtype=dtype), Dense(64, 10, init=init, dtype=dtype)],
        input_shape=(1, 8, 8), rng=seed, dtype=dtype)


def test_to_torch_round_trip_gives_the_same_outputs() -> None:
    torch = pytest.importorskip("torch")
    net = _cnn(dtype=np.float64)
    x = np.random.default_rng(0).normal(size=(6, 1, 8, 8))
    model = net.to_torch().eval()
    np.testing.assert_allclose(model(torch.from_numpy(x)).detach().numpy(), net.predict(x), rtol=1e-10, atol=1e-12)


def test_save_load_round_trip_of_a_layer_list(tmp_path) -> None:
    from initlab.data import digits

    net = _cnn(seed=2)
    split = digits(rng=0)
    X = split.X_train[:128].reshape(-1, 1, 8, 8)
    net.fit(X, split.y_train[:128], epochs=1, batch_size=32, lr=0.05, progress=False)  # BN running stats move
    net.save(tmp_path / "cnn")
    back = Network.load(tmp_path / "cnn")
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.layers[2].branch[1].running_var, net.layers[2].branch[1].running_var)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.config() == net.config()
    assert b"pickle" not in (tmp_path / "cnn.json").read_bytes()


def test_same_seed_different_init_gives_identical_minibatch_order() -> None:
    seen: dict[str, list[np.ndarray]] = {}

    class Record(Callback):
        wants_trace = True

        def __init__(self, key: str) -> None:
            self.key = key
            seen[key] = []

        def on_step(self, net, step, loss, trace):
            seen[self.key].append(trace[0].inputs.copy())

    X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    for init in ("zeros", "he_normal", "orthogonal"):
        net = Network([3, 7, 1], "relu", "sigmoid", init=init, rng=5)
        net.fit(X, y, epochs=2, batch_size=8, lr=0.1, progress=False, callbacks=[Record(init)])
    for a, b, c in zip(seen["zeros"], seen["he_normal"], seen["orthogonal"]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # and a different seed does change the order
    other = Network([3, 7, 1], "relu", "sigmoid", rng=6)
    other.fit(X, y, epochs=1, batch_size=8, lr=0.1, progress=False, callbacks=[Record("other")])
    assert not np.array_equal(seen["other"][0], seen["zeros"][0])


def test_the_seeds_init_stream_is_unchanged() -> None:
    """The initial weights of a seeded network are what the seed alone gives (studies' numbers hold)."""
    from initlab import init

    net = Network([4, 3], "relu", init="he_normal", rng=9)
    np.testing.assert_array_equal(net.layers[0].weight, init.he_normal((3, 4), rng=np.random.default_rng(9)))


def test_dropout_masks_come_from_the_dropout_stream() -> None:
    X = np.ones((16, 6), dtype=np.float32)
    outs = []
    for init in ("he_normal", "xavier_normal"):
        net = Network([Dense(6, 6, init=init), Dropout(0.5)], rng=3)
        _, trace = net.forward(X, capture=True, train=True)
        outs.append(trace[1].cache)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_probe_callback_records_with_fixed_edges_and_stops_on_request() -> None:
    from initlab.diagnostics import Probe
    from initlab.diagnostics._stats import moments

    X = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    net = Network([4, 16, 1], "tanh", "sigmoid", rng=0)
    probe = Probe(every=3, bins=8)
    last = {}

    class Stopper(Callback):
        wants_trace = True

        def on_step(self, net, step, loss, trace):
            last["act_std"] = moments(trace[0].act).std
            last["step"] = step
            from initlab.nn.callbacks import STOP

            return STOP if step == 6 else None

    hist = net.fit(X, y, epochs=20, batch_size=16, lr=0.1, progress=False, callbacks=[probe, Stopper()])
    assert probe.steps == [0, 3, 6] and len(hist.step_loss) == 6
    rows = [r.layers[0] for r in probe.watch.steps]
    assert all(r.hist.counts.shape == (8,) and r.hist.counts.sum() == 16 * 16 for r in rows)
    assert len({tuple(r.hist.edges) for r in rows}) == 1  # fixed edges: the steps compare
    assert rows[-1].std == last["act_std"]
    assert probe.series("std").shape == (2, 3)


def test_keyboard_interrupt_ends_fit_with_a_history_that_says_where() -> None:
    X = np.random.default_rng(1).normal(size=(32, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)

    class CtrlC(Callback):
        def on_step(self, net, step, loss, trace):
            if step == 5:
                raise KeyboardInterrupt

    hist = Network([2, 4, 1], "relu", "sigmoid", rng=0).fit(X, y, epochs=10, batch_size=8, progress=False, callbacks=[CtrlC()])
    assert hist.interrupted and hist.interrupted_step == 5 and hist.interrupted_epoch == 1
    assert len(hist.step_loss) == 5 and hist.epochs_run == 1


def test_fit_with_nan_targets_raises_without_a_warning() -> None:
    import warnings

    net = Network([2, 3, 1], rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="'y'"):
            net.fit(np.zeros((4, 2)), [0.0, np.nan, 1.0, 0.0], loss="mse")
        with pytest.raises((ValueError, TypeError), match="'y'"):
            Network([2, 3, 2], rng=0).fit(np.zeros((4, 2)), [0.0, np.nan, 1.0, 0.0])
        with pytest.raises(ValueError, match="'y'"):
            Network([2, 3, 1], output="sigmoid", rng=0).fit(np.zeros((4, 2)), [0.0, np.nan, 1.0, 0.0])


def test_layer_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="padding_mode"):
        Conv2d(1, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="groups"):
        Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="Residual"):
        Network([Residual([Dense(3, 4)])], input_shape=(3,), rng=0)
    with pytest.raises(ValueError, match="input_shape"):
        Network([Conv1d(1, 2, 3)], rng=0)
    with pytest.raises(ValueError, match="p"):
        Dropout(1.0)
