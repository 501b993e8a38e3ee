"""The convolution's and max pooling's fast paths, each against torch autograd (float64, 1e-6) and
against each other: channels-first and channels-last patches, the layer's reused buffers (a cache
stays valid after later calls, batch sizes change, pickling drops them), max pooling's
first-maximum rule on ties, overlapping and untiled windows, NaN, and the BLAS thread limit
during training."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from initlab.nn import Conv1d, Conv2d, Dense, Flatten, MaxPool1d, MaxPool2d, Network
from initlab.nn.callbacks import Callback

F64 = np.float64


def _convs() -> list[tuple[str, object, tuple[int, ...]]]:
    """(name, conv, per-sample input shape): stride 1 and strided, zero and circular padding,
    dilation, no bias, 1-D and 2-D; groups = 1 (both layouts apply)."""
    return [
        ("2d_same", Conv2d(3, 5, 3, padding=1, activation="relu", dtype=F64), (3, 6, 5)),
        ("2d_valid", Conv2d(4, 3, (2, 3), dtype=F64), (4, 5, 6)),
        ("2d_stride", Conv2d(3, 4, 3, stride=2, padding=1, activation="tanh", dtype=F64), (3, 7, 6)),
        ("2d_dil_circ", Conv2d(2, 3, 3, padding=2, dilation=2, padding_mode="circular", dtype=F64), (2, 6, 7)),
        ("2d_nobias", Conv2d(3, 2, 3, padding=(1, 0), bias=False, dtype=F64), (3, 5, 5)),
        ("1d_same", Conv1d(4, 3, 5, padding=2, activation="relu", dtype=F64), (4, 9)),
        ("1d_stride", Conv1d(3, 4, 3, stride=2, padding=1, dtype=F64), (3, 10)),
        ("1d_circ", Conv1d(2, 2, 3, padding=1, padding_mode="circular", activation="gelu", dtype=F64), (2, 7)),
    ]


def _check_against_torch(layer: object, shape: tuple[int, ...], seed: int = 0) -> None:
    torch = pytest.importorskip("torch")
    net = Network([layer], input_shape=shape, rng=seed, dtype=F64)
    rng = np.random.default_rng(seed + 1)
    net.params[...] = rng.normal(0, 0.5, net.params.size)
    x = rng.normal(size=(4, *shape))
    model = net.to_torch().double()
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = model(xt)
    la = net.layers[0]
    y, cache = la.forward(x, True)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-9)
    v = rng.normal(size=y.shape)
    (yt * torch.from_numpy(v)).sum().backward()
    gx, grads = la.backward(v, cache)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-6, atol=1e-9)
    tparams = list(model.parameters())
    assert len(grads) == len(tparams)
    for g, p in zip(grads, tparams):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("last", [False, True], ids=["channels_first", "channels_last"])
@pytest.mark.parametrize("name,layer,shape", _convs(), ids=[c[0] for c in _convs()])
def test_conv_layouts_match_torch(name: str, layer: object, shape: tuple[int, ...], last: bool,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Both patch layouts, forced, give torch's outputs and gradients."""
    monkeypatch.setattr(type(layer), "_channels_last", lambda self, C, out_sp: last)
    _check_against_torch(layer, shape)


def test_conv_layout_choice_follows_run_length() -> None:
    """Channels last when C·kw is longer than an output row (and groups = 1), else channels first."""
    assert Conv2d(16, 32, 3, padding=1)._channels_last(16, (4, 4))
    assert not Conv2d(1, 16, 3, padding=1)._channels_last(1, (8, 8))
    assert not Conv2d(4, 4, 3, groups=2)._channels_last(4, (2, 2))
    assert not Conv1d(16, 16, 3, dilation=2)._channels_last(16, (20,))  # runs of C only
    assert Conv1d(16, 16, 3, dilation=2)._channels_last(16, (10,))


def test_conv_grouped_stride1_matches_torch() -> None:
    _check_against_torch(Conv2d(4, 6, 3, padding=1, groups=2, activation="relu", dtype=F64), (4, 5, 5))


@pytest.mark.parametrize("cls,shape", [(Conv2d, (6, 5, 5)), (Conv2d, (1, 8, 8)), (Conv1d, (6, 11))],
                         ids=["2d_last", "2d_first", "1d_last"])
def test_conv_cache_survives_later_calls(cls: type, shape: tuple[int, ...]) -> None:
    """The padded buffers are reused; a forward's cache must not be: backward on an earlier cache,
    after later forwards and backwards (other inputs, other batch sizes), gives that pass's gradients."""
    la = cls(shape[0], 3, 3, padding=1, activation="relu", dtype=F64)
    rng = np.random.default_rng(3)
    la.arrays[0][...] = rng.normal(size=la.arrays[0].shape)
    la.arrays[1][...] = rng.normal(size=la.arrays[1].shape)
    x1, x2, x3 = rng.normal(size=(4, *shape)), rng.normal(size=(4, *shape)), rng.normal(size=(7, *shape))
    y1, c1 = la.forward(x1, True)
    v = rng.normal(size=y1.shape)
    ref_y = y1.copy()
    ref_gx, ref_grads = la.backward(v, c1)
    ref_gx, ref_grads = ref_gx.copy(), [g.copy() for g in ref_grads]
    y2, c2 = la.forward(x2, True)
    la.forward(x3, True)
    la.backward(rng.normal(size=y2.shape), c2)
    np.testing.assert_array_equal(y1, ref_y)
    gx, grads = la.backward(v, c1)
    np.testing.assert_array_equal(gx, ref_gx)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_array_equal(g, r)
    # outputs of a new batch size equal the rows of a bigger batch
    np.testing.assert_allclose(la.forward(x3[:2])[0], la.forward(x3)[0][:2], rtol=1e-12, atol=1e-12)


def test_conv_copy_drops_buffers() -> None:
    """A copied layer (copy.deepcopy, pickle's protocol) leaves the buffers behind and makes its own."""
    la = Conv2d(6, 3, 3, padding=1, dtype=F64)
    x = np.random.default_rng(0).normal(size=(2, 6, 5, 5))
    y = la.forward(x)[0]
    assert "_plan_cache" in la.__dict__
    back = copy.deepcopy(la)
    assert "_plan_cache" not in back.__dict__
    np.testing.assert_array_equal(back.forward(x)[0], y)


def _pool_cases() -> list[tuple[str, object, tuple[int, ...]]]:
    return [
        ("2x2_tiled", MaxPool2d(2, dtype=F64), (3, 4, 6)),
        ("2x2_untiled", MaxPool2d(2, dtype=F64), (2, 5, 7)),
        ("3x3_overlap", MaxPool2d(3, stride=2, dtype=F64), (2, 7, 7)),
        ("2x3_stride1", MaxPool2d((2, 3), stride=1, dtype=F64), (2, 4, 5)),
        ("1x1", MaxPool2d(1, dtype=F64), (2, 3, 3)),
        ("1d_tiled", MaxPool1d(2, dtype=F64), (3, 8)),
        ("1d_overlap", MaxPool1d(3, stride=2, dtype=F64), (3, 9)),
    ]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("name,layer,shape", _pool_cases(), ids=[c[0] for c in _pool_cases()])
def test_maxpool_matches_torch(name: str, layer: object, shape: tuple[int, ...], ties: bool) -> None:
    """Forward and backward equal torch's exactly, ties included (a ReLU's zeros, repeated values):
    the gradient goes to the first maximum of each window in row-major order, as torch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    if ties:
        x = np.maximum(rng.integers(-3, 3, size=(4, *shape)), 0).astype(F64)  # many equal maxima
    else:
        x = rng.permutation(np.arange(4 * int(np.prod(shape)), dtype=F64)).reshape(4, *shape)
    y, cache = layer.forward(x, True)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = layer.torch_modules()[0](xt)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    v = rng.normal(size=y.shape)
    (yt * torch.from_numpy(v)).sum().backward()
    gx, grads = layer.backward(v, cache)
    assert grads == []
    if all(s >= k for s, k in zip(layer.stride, layer.kernel_size)):
        np.testing.assert_array_equal(gx, xt.grad.numpy())
    else:  # overlapping windows add several gradients onto one input, in another order than torch
        np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(gx, layer._backward_argmax(v, cache))  # the general path


def test_maxpool_nan_window_takes_the_argmax_path() -> None:
    """A NaN compares unequal to itself: such a window falls back to argmax (the first NaN wins)."""
    la = MaxPool2d(2, dtype=F64)
    x = np.arange(32, dtype=F64).reshape(2, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[1, 0, 3, 3] = np.nan
    y, cache = la.forward(x, True)
    assert np.isnan(y[0, 0, 0, 0]) and np.isnan(y[1, 0, 1, 1])
    g = np.ones_like(y)
    gx, _ = la.backward(g, cache)
    np.testing.assert_array_equal(gx, la._backward_argmax(g, cache))
    assert gx[0, 0, 0, 1] == 1.0 and gx[1, 0, 3, 3] == 1.0 and gx.sum() == y.size


def test_fit_limits_blas_threads_and_restores_them() -> None:
    """fit(threads=1) runs with one BLAS thread and leaves the previous limit afterwards (twice: the
    controller is kept between fits)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas() -> list[int]:
        return [d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]

    seen: list[list[int]] = []

    class Record(Callback):
        def on_step(self, net, step, loss, trace):  # type: ignore[no-untyped-def]
            seen.append(blas())

    before = blas()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 1, 4, 4)).astype(np.float32), rng.integers(0, 2, 8)
    net = Network([Conv2d(1, 2, 3, padding=1), MaxPool2d(2), Flatten(), Dense(8, 2)], input_shape=(1, 4, 4), rng=0)
    for _ in range(2):
        net.fit(X, y, epochs=1, batch_size=4, loss="ce", progress=False, threads=1, callbacks=[Record()])
        assert blas() == before
    assert seen and all(all(n == 1 for n in s) for s in seen)


def test_conv_keeps_buffers_of_small_batches_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Buffers for a batch over the size limit are used once and not kept; results are the same."""
    from initlab.nn import conv as conv_mod

    la = Conv2d(2, 3, 3, padding=1, dtype=F64)
    x = np.random.default_rng(0).normal(size=(5, 2, 6, 6))
    y_kept = la.forward(x)[0]
    assert len(la.__dict__["_plan_cache"]) == 1
    monkeypatch.setattr(conv_mod, "_KEEP_BYTES", 0)
    la2 = Conv2d(2, 3, 3, padding=1, dtype=F64)
    la2.arrays[0][...] = la.arrays[0]
    y, cache = la2.forward(x, True)
    la2.backward(np.ones_like(y), cache)
    assert la2.__dict__["_plan_cache"] == {}
    np.testing.assert_array_equal(y, y_kept)


@pytest.mark.parametrize("last", [False, True], ids=["channels_first", "channels_last"])
def test_conv_layouts_float32_training_step(last: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """In float32 (training's dtype), with the gradients written into views of a flat vector as
    fit does, each layout gives the float64 result to float32 precision."""
    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.3, size=(8, 6, 3, 3))
    b = rng.normal(0, 0.1, size=8)
    x = rng.normal(size=(5, 6, 7, 7))
    v = rng.normal(size=(5, 8, 7, 7))
    ref = Conv2d(6, 8, 3, padding=1, activation="relu", weight=w, bias=b, dtype=F64)
    y64, c64 = ref.forward(x, True)
    gx64, (gw64, gb64) = ref.backward(v, c64)
    monkeypatch.setattr(Conv2d, "_channels_last", lambda self, C, out_sp: last)
    la = Conv2d(6, 8, 3, padding=1, activation="relu", weight=w, bias=b)
    flat = np.zeros(w.size + b.size, dtype=np.float32)
    out = [flat[: w.size].reshape(w.shape), flat[w.size :]]
    y, cache = la.forward(x.astype(np.float32), True)
    assert y.dtype == np.float32
    gx, grads = la.backward(v.astype(np.float32), cache, out=out)
    assert grads[0] is out[0] and grads[1] is out[1] and gx.dtype == np.float32
    np.testing.assert_allclose(y, y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gx, gx64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flat[: w.size].reshape(w.shape), gw64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(flat[w.size :], gb64, rtol=1e-4, atol=1e-4)
