"""The watch's torch-operations path off the CPU: how many torch operations a recorded step adds.

Off the CPU each torch operation is a kernel launch the CPU issues (10-100+ µs on CUDA), and a
small model's step is launch-bound: the watch's cost there is the NUMBER of operations. These
tests count them deterministically (a TorchDispatchMode counting every aten operation that is
not a view), on the CPU, with the choices the watch makes off the CPU (``_watch._launch_bound``
true), and guard their structure: no BLAS call (cuBLAS is expensive to launch), and a layer more
of the same width adds only its own copies and its gradient's one reduction, never another set of
per-group operations. No timing is asserted (benchmarks/watch_ops.py times them on a GPU)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import initlab  # noqa: E402
from initlab.diagnostics import _kernels, _watch  # noqa: E402
from _torch_models import mlp, train_mse  # noqa: E402

_VIEWS = {"detach", "alias", "empty", "empty_like", "empty_strided", "_local_scalar_dense", "lift_fresh",
          "_unsafe_view", "unsqueeze", "squeeze", "expand", "t", "transpose", "view", "as_strided", "select",
          "slice", "unbind", "permute", "_reshape_alias", "split", "split_with_sizes", "reshape", "flatten",
          "unflatten", "view_as", "expand_as", "is_same_size", "set_", "resize_"}


def _count(model, x, y, *, watched: bool, steps: int = 3) -> Counter:
    """The non-view aten operations of ``steps`` SGD steps (after three warm-up steps: the first
    recorded step names the init and fixes the histogram edges), the model watched every step by
    the device path, or plain."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: Counter = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name not in _VIEWS and not getattr(func, "is_view", False):
                self.ops[name] += 1
            return func(*args, **(kwargs or {}))

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(w):
        train_mse(model, opt, x, y, 1, w)

    w = initlab.watch(model, every=1) if watched else None
    if w is not None:
        w.__enter__()
    try:
        for _ in range(3):
            step(w)
        c = Count()
        with c:
            for _ in range(steps):
                step(w)
    finally:
        if w is not None:
            w.__exit__(None, None, None)
    if w is not None:
        assert len(w.steps) == 3 + steps and all(len(s.layers) == len(w.steps[0].layers) for s in w.steps)
    return c.ops


def _added(depth: int, monkeypatch, steps: int = 3) -> Counter:
    """Operations a recorded step adds (watched minus plain, per step) to a ReLU MLP of ``depth``
    hidden layers of width 32, by the device path run on the CPU."""
    monkeypatch.setattr(_kernels, "load", lambda: None)
    monkeypatch.setattr(_watch, "_launch_bound", lambda t: True)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((64, 10)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((64, 1)).astype(np.float32))
    plain = _count(mlp(None, width=32, depth=depth), x, y, watched=False, steps=steps)
    watched = _count(mlp(None, width=32, depth=depth), x, y, watched=True, steps=steps)
    out = Counter()
    for k in watched | plain:
        d = watched[k] - plain[k]
        assert d % steps == 0, (k, d)  # the same operations every recorded step
        if d:
            out[k] = d // steps
    return out


def test_the_device_path_calls_no_blas(monkeypatch):
    """No dot, matrix product or batched matrix product in a recorded step off the CPU (each a
    cuBLAS call, about 100 µs of the CPU's time to launch there), and one host copy per step."""
    ops = _added(3, monkeypatch)
    assert not {"dot", "vdot", "mm", "bmm", "addmm", "mv", "matmul"} & set(ops), ops
    assert ops["_to_copy"] <= 3, ops  # the histogram's float64 values and indices, the step's one host copy


def test_a_layer_more_adds_only_its_copies_and_its_gradients_reduction(monkeypatch):
    """Two hidden layers more of the same width add, per recorded step, their four tensors'
    copies into the stacks (pre-activation, activation, and their deltas) and their weights'
    copies (5 each), and one var_mean per weight gradient (its hook runs alone): 6 operations a
    layer; their statistics are computed with the other tensors of their stacks, and their
    weights' moments in the same stacked var_mean."""
    small, big = _added(3, monkeypatch), _added(5, monkeypatch)
    grown = {k: big[k] - small[k] for k in big | small if big[k] != small[k]}
    assert grown == {"copy_": 10, "var_mean": 2}, grown
    assert sum(big.values()) <= 100, big  # the whole recorded step of the 5-layer MLP


def test_stacked_weight_moments_equal_each_weights_own(monkeypatch):
    """_Sums.lazy_moments (the copies of one size stacked, one var_mean) gives each weight the
    centered mean and variance of its own values, stacked or not (a stack over _STACK_MAX values
    is not stacked), as the probe's float64 moments."""
    from initlab.diagnostics._stats import moments

    monkeypatch.setattr(_watch, "_launch_bound", lambda t: True)
    g = torch.Generator().manual_seed(3)
    ws = [torch.randn(32, 16, generator=g) * s + c for s, c in ((1.0, 0.0), (0.1, 2.0), (3.0, -1.0))]
    ws += [torch.randn(7, 5, generator=g), torch.full((4, 4), 0.25)]
    for limit in (_watch._STACK_MAX, 600):  # 600: the three 32x16 (1,536 values) one var_mean each
        monkeypatch.setattr(_watch, "_STACK_MAX", limit)
        d = _watch._Deferred()
        sums = [_watch._Sums.of(d, w, keep=True) for w in ws]
        assert all(s.mv is None for s in sums) and len(d.lazy) == len(ws)  # (done when the step ends)
        _watch._Sums.lazy_moments(d)
        d.resolve()
        for w, s in zip(ws, sums):
            s.settle(d)
            got, want = s.moments(d), moments(w.double().numpy().reshape(-1))  # (a weight: one channel)
            assert got.n == want.n
            assert got.mean == pytest.approx(want.mean, rel=1e-6, abs=1e-7)
            assert got.std == pytest.approx(want.std, rel=1e-5, abs=1e-7)
            assert got.sq_mean == pytest.approx(want.sq_mean, rel=1e-6, abs=1e-7)
            assert math.isfinite(got.chan_var)


def test_the_device_paths_counts_equal_the_bincounts():
    """The scatter-add of kept float64 ones (the device path's counts, in the step's float64
    numbers) counts as bincount does, and the full [rows, nb + 1] counts hold the [rows, nb] ones
    (their last column the dropped values)."""
    from initlab.diagnostics._watch import _bin_params, _bin_values, _count

    rng = np.random.default_rng(2)
    idx = torch.from_numpy(rng.integers(0, 53, 4000))
    ones = torch.ones(4000, dtype=torch.float64)
    got = _count(idx, 53, scatter=True, ones=ones)
    assert got.dtype == torch.float64 and got.tolist() == _count(idx, 53, scatter=False).tolist()
    edges = np.linspace(-2.0, 2.0, 17)
    lo, k = _bin_params(edges)
    v = torch.from_numpy(np.concatenate([rng.standard_normal(300), [np.inf, np.nan, -np.inf, 5.0]]))
    lo_v, k_v = torch.full((v.numel(),), lo, dtype=torch.float64), torch.full((v.numel(),), k, dtype=torch.float64)
    part = _bin_values(v, lo_v, k_v, None, 0, 1, 16)
    full = _bin_values(v, lo_v, k_v, None, 0, 1, 16, full=True)
    assert full.shape == (1, 17) and torch.equal(full[:, :16], part)
    assert int(full[0, 16]) == 3 and int(part.sum()) == v.numel() - 3  # the non-finite values dropped


@pytest.mark.parametrize("device", [False, True])
def test_the_cosine_sums_on_the_host_or_reduced_there_agree(monkeypatch, device):
    """A stack's cosine sums Σ_i x_i/‖x_i‖ go to the host as they are when they are few (their
    square taken there), else reduced to their norm first (_SU_HOST): the same cosines, and the
    probe's mean_pairwise_cosine of the input."""
    from initlab.diagnostics._stats import mean_pairwise_cosine

    monkeypatch.setattr(_kernels, "load", lambda: None)
    if device:
        monkeypatch.setattr(_watch, "_launch_bound", lambda t: True)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((64, 10)).astype(np.float32) + 0.5)
    y = torch.from_numpy(rng.standard_normal((64, 1)).astype(np.float32))
    cos = []
    for limit in (_watch._SU_HOST, 0):
        monkeypatch.setattr(_watch, "_SU_HOST", limit)
        model = mlp(None, width=32, depth=3)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        with initlab.watch(model, every=1) as w:
            train_mse(model, opt, x, y, 3, w)
        cos.append([(s.input_cosine, *(r.cosine for r in s.layers)) for s in w.steps])
    a, b = np.array(cos[0]), np.array(cos[1])
    assert a.shape == b.shape == (3, 5) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert cos[0][0][0] == pytest.approx(mean_pairwise_cosine(x.numpy()), rel=1e-6)


def test_rows_are_a_view_when_evenly_spaced_else_a_kept_index():
    """_rows: all rows or evenly spaced ones a view of the stack (no copy, no operation); others
    copied by an index tensor made once per rows and device (no host-to-device copy per step)."""
    from initlab.diagnostics._watch import _rows, _spaced

    t = torch.arange(24.0).reshape(6, 4)
    assert _rows(t, list(range(6))) is t
    assert _spaced([1, 3, 5]) and not _spaced([0, 1, 3]) and _spaced([2])
    v = _rows(t, [1, 3, 5])
    assert v.untyped_storage().data_ptr() == t.untyped_storage().data_ptr() and torch.equal(v, t[[1, 3, 5]])
    cache: dict = {}
    a = _rows(t, [0, 1, 3], cache)
    ix = cache[((0, 1, 3), t.device)]
    b = _rows(t * 2, [0, 1, 3], cache)
    assert len(cache) == 1 and cache[((0, 1, 3), t.device)] is ix
    assert torch.equal(a, t[[0, 1, 3]]) and torch.equal(b, 2 * t[[0, 1, 3]])
