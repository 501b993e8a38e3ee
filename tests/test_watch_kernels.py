"""The watch's fused numba kernels: each equals its definition, and a watch computed by them
equals the same watch computed by torch operations, row by row, histogram count by count."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from initlab.diagnostics import _kernels, watch  # noqa: E402
from initlab.diagnostics._stats import cosine_from_sums, histogram, mean_pairwise_cosine  # noqa: E402

K = _kernels.load()


def test_numba_is_installed_with_the_test_extra():
    assert K is not None


def test_load_honours_the_switch(monkeypatch):
    monkeypatch.setattr(_kernels, "_STATE", {})
    monkeypatch.setenv("INITLAB_NO_NUMBA", "1")
    assert _kernels.load() is None
    monkeypatch.setattr(_kernels, "_STATE", {})
    monkeypatch.setenv("INITLAB_NO_NUMBA", "0")
    assert _kernels.load() is not None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fw_stats_and_grad_sums(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((97, 13)) * 0.1).astype(dtype)
    x[3, 4] = dtype(0.05)  # exactly at the threshold: near zero (compared in x's dtype)
    out = np.empty((5, 13))
    s, sq, near = K.fw_stats(x, x.dtype.type(0.05), out)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(out[0], x64.sum(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out[1], x64.max(0))
    np.testing.assert_allclose(out[2], (x64 ** 2).sum(0), rtol=1e-12)
    np.testing.assert_array_equal(out[3], x64.min(0))
    assert near == np.count_nonzero(np.abs(x) <= x.dtype.type(0.05)) == out[4].sum()
    assert s == pytest.approx(x64.sum(), rel=1e-12, abs=1e-12) and sq == pytest.approx((x64 ** 2).sum(), rel=1e-12)
    g = np.empty((2, 13))
    s2, sq2 = K.grad_sums(x, g)
    np.testing.assert_allclose(g[0], out[0], rtol=1e-12, atol=1e-14)
    assert (s2, sq2) == pytest.approx((s, sq), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("shape", [(32, 16, 1024), (8, 3, 7), (4, 5, 33)])
def test_channel_mid_kernels(shape):
    """[batch, C, positions] (a conv's output): the same sums, extremes and count per channel,
    over batch and positions."""
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    out, g = np.empty((5, shape[1])), np.empty((2, shape[1]))
    s, sq, near = K.fw_stats_mid(x, np.float32(0.05), out)
    s2, sq2 = K.grad_sums_mid(x, g)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(out[0], x64.sum((0, 2)), rtol=1e-11, atol=1e-11)
    np.testing.assert_array_equal(out[1], x64.max((0, 2)))
    np.testing.assert_allclose(out[2], (x64 ** 2).sum((0, 2)), rtol=1e-12)
    np.testing.assert_array_equal(out[3], x64.min((0, 2)))
    assert near == out[4].sum() == np.count_nonzero(np.abs(x) <= np.float32(0.05))
    np.testing.assert_allclose(g, out[[0, 2]], rtol=1e-12, atol=1e-11)
    assert (s, sq) == pytest.approx((s2, sq2), rel=1e-12, abs=1e-11)


def test_flat_kernels_and_the_fused_update():
    rng = np.random.default_rng(1)
    for n in (1, 63, 64, 1000, 4097):
        w = rng.standard_normal(n).astype(np.float32)
        before = (w + 1e-3 * rng.standard_normal(n)).astype(np.float32)
        w64, b64 = w.astype(np.float64), before.astype(np.float64)
        assert K.flat_sums(w) == pytest.approx((w64.sum(), (w64 ** 2).sum()), rel=1e-12, abs=1e-12)
        assert K.diff_sq(w, before) == pytest.approx(((w64 - b64) ** 2).sum(), rel=1e-12)
        snap = before.copy()
        d2, s, q = K.diff_snap_sums(w, snap)
        assert d2 == pytest.approx(((w64 - b64) ** 2).sum(), rel=1e-12)
        assert (s, q) == pytest.approx((w64.sum(), (w64 ** 2).sum()), rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(snap, w)
        snap2 = np.zeros_like(w)
        assert K.snap_sums(w, snap2) == pytest.approx((s, q), rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(snap2, w)


@pytest.mark.parametrize("shape,step", [((64, 300), 1), ((100, 9000), 3), ((2, 5), 1)])
def test_cos_sums_give_the_probes_cosine(shape, step):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(np.float32) + 0.3
    x[1] = 0.0  # a zero row is left out, as the probe leaves it out
    h = x[:64]
    n2 = np.empty(h.shape[0])
    q = K.cos_sums(h, step, n2)
    assert cosine_from_sums(n2, q) == pytest.approx(mean_pairwise_cosine(x), rel=1e-9, abs=1e-12)
    x[0, 0] = np.inf
    n2 = np.empty(h.shape[0])
    assert math.isnan(cosine_from_sums(n2, K.cos_sums(x[:64], step, n2)))


@pytest.mark.parametrize("step,scale", [(1, 1.0), (7, 1.0), (1, 64.0)])
def test_hist_counts_equal_the_probes_histogram(step, scale):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000).astype(np.float32)
    edges = np.linspace(-1.5, 2.0, 41) / scale
    x[:40] = edges[:40].astype(np.float32)  # values on the edges, and outside the range
    x[40:45] = [-9.0, 9.0, 2.0 / scale, -1.5 / scale, 0.0]
    counts = np.zeros(40, dtype=np.int64)
    idx = np.empty(5000, dtype=np.int32)
    from initlab.diagnostics._watch import _bin_params

    lo, k = _bin_params(edges * scale)
    K.hist_counts(x, step, scale, lo, k, 40, idx, counts)
    want = histogram(x[::step].astype(np.float64) * scale, edges * scale)
    np.testing.assert_array_equal(counts, want.counts)


# -- a watch by the kernels equals the watch by torch operations --------------------------------

class _Seq(torch.nn.Module):
    """Linear → in-place ReLU, Linear → Tanh (saturation), LayerNorm and GELU on [B, T, D]
    (channel-last 3-D tensors), a Conv1d ([batch, channels, positions]) with a functional ReLU,
    float64 optional."""

    def __init__(self, dtype=torch.float32) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 16, dtype=dtype)
        self.act1 = torch.nn.ReLU(inplace=True)
        self.fc2 = torch.nn.Linear(16, 16, dtype=dtype)
        self.act2 = torch.nn.Tanh()
        self.norm = torch.nn.LayerNorm(16, dtype=dtype)
        self.gelu = torch.nn.GELU()
        self.conv = torch.nn.Conv1d(5, 4, 3, padding=1, dtype=dtype)
        self.out = torch.nn.Linear(16 * 5 + 4 * 6, 3, dtype=dtype)

    def forward(self, x):  # x [B, 5, 6]
        h = self.act2(self.fc2(self.act1(self.fc1(x))))
        h = self.gelu(self.norm(h))
        c = torch.relu(self.conv(x))  # channels 5, length 6
        return self.out(torch.cat([h.flatten(1), c.flatten(1)], 1))


def _run(model, x, y, every, steps, lr=0.05, scale_at=None):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    with watch(model, every=every) as w:
        for s in range(steps):
            opt.zero_grad()
            xb = x[(s % 4) * 32:(s % 4 + 1) * 32]
            if scale_at is not None and s >= scale_at:
                xb = xb.clone()  # a diverging input: inf and NaN values, inf/NaN statistics
                xb[0, 0] = math.inf
                xb[1, :, 2] = math.nan
            loss = ((model(xb) - y[(s % 4) * 32:(s % 4 + 1) * 32]) ** 2).mean()
            loss.backward()
            opt.step()
            w.log_loss(loss)
    return w


_ROW_KEYS = ("mean", "std", "sq_mean", "chan_var", "min", "max", "preact_mean", "preact_std", "preact_min",
             "preact_max", "saturated", "dead", "cosine", "weight_std", "grad_std", "grad_rms", "grad_act_std",
             "grad_weight_std", "grad_weight_ratio", "gain_mean", "gain_std")


def _close(a, b, rel):
    """Equal within ``rel`` and, for values near 0 (a mean after a norm), an absolute rel·1e-1:
    the torch path sums float32 values in float32 (an error of about 1e-7 of Σ|x|/n on a mean),
    the kernels in float64."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == pytest.approx(b, rel=rel, abs=rel * 0.1)


def _compare(wk, wt, rel):
    assert [s.step for s in wk.steps] == [s.step for s in wt.steps]
    for sk, st_ in zip(wk.steps, wt.steps):
        assert [r.name for r in sk.layers] == [r.name for r in st_.layers]
        assert _close(sk.input_mean, st_.input_mean, rel) and _close(sk.input_std, st_.input_std, rel)
        assert _close(sk.input_cosine, st_.input_cosine, rel)
        for a, b in zip(sk.layers, st_.layers):
            for key in _ROW_KEYS:
                assert _close(getattr(a, key), getattr(b, key), rel), (sk.step, a.name, key, getattr(a, key),
                                                                      getattr(b, key))
            for key in ("hist", "preact_hist", "grad_hist"):
                ha, hb = getattr(a, key), getattr(b, key)
                assert (ha is None) == (hb is None), (a.name, key)
                if ha is not None:
                    np.testing.assert_array_equal(ha.edges, hb.edges)
                    # a value within float32 rounding of an edge may fall on either side of it
                    assert np.abs(ha.counts - hb.counts).sum() <= 2, (sk.step, a.name, key)
        assert sk.near_zero.keys() == st_.near_zero.keys()
        for name in sk.near_zero:
            assert _close(sk.near_zero[name], st_.near_zero[name], 1e-12), (sk.step, name)
        assert sk.update_ratio.keys() == st_.update_ratio.keys()
        for name in sk.update_ratio:
            assert _close(sk.update_ratio[name], st_.update_ratio[name], 1e-4), (sk.step, name)


def _on_paths(monkeypatch, fn):
    """``fn()`` run with the kernels, with torch operations only, and with torch operations as
    the watch chooses them off the CPU (``_launch_bound`` true, run here on the CPU), each from
    torch seed 0: {"kernels": ..., "torch": ..., "device": ...}."""
    from initlab.diagnostics import _watch

    out = {}
    for path in ("kernels", "torch", "device"):
        torch.manual_seed(0)
        with monkeypatch.context() as m:
            if path != "kernels":
                m.setattr(_kernels, "load", lambda: None)
            if path == "device":
                m.setattr(_watch, "_launch_bound", lambda t: True)
            out[path] = fn()
    return out


@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_watch_equals_torch_ops_watch(monkeypatch, every, dtype):
    """Same model, same seed, same batches: the rows by the kernels equal the rows by torch
    operations (float32 sums in a different order: rel 1e-5; float64: 1e-9), the histograms count
    for count (up to a value on an edge), the update ratios (every=1: fused with the next step's
    copy; every=3: not) and the training bitwise."""
    rng = np.random.default_rng(4)
    npd = np.float32 if dtype == torch.float32 else np.float64
    x = torch.from_numpy(rng.standard_normal((128, 5, 6)).astype(npd))
    y = torch.from_numpy(rng.standard_normal((128, 3)).astype(npd))
    def one():
        model = _Seq(dtype)
        w = _run(model, x, y, every, 7)
        return w, {k: v.clone() for k, v in model.state_dict().items()}

    runs = _on_paths(monkeypatch, one)
    wk, sk = runs["kernels"]
    wt, st_ = runs["torch"]
    wd, sd = runs["device"]
    for k in sk:
        assert torch.equal(sk[k], st_[k]), k
        assert torch.equal(sk[k], sd[k]), k
    _compare(wk, wt, 1e-5 if dtype == torch.float32 else 1e-9)
    _compare(wk, wd, 1e-5 if dtype == torch.float32 else 1e-9)
    assert any(r.hist is not None for r in wk.steps[-1].layers)


class _Cnn(torch.nn.Module):
    """Conv2d → BatchNorm2d → ReLU modules (channels on axis 1), a depthwise conv, then a linear
    readout: the [batch, channels, positions] kernels."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.Tanh(), torch.nn.Flatten(),
            torch.nn.Linear(8 * 6 * 6, 3))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("every", [1, 2])
def test_kernel_watch_equals_torch_ops_watch_on_a_cnn(monkeypatch, every):
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((128, 3, 6, 6)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((128, 3)).astype(np.float32))
    runs = _on_paths(monkeypatch, lambda: _run(_Cnn(), x, y, every, 5))
    _compare(runs["kernels"], runs["torch"], 1e-5)
    _compare(runs["kernels"], runs["device"], 1e-5)
    names = [r.name for r in runs["kernels"].steps[0].layers]
    assert names[:2] == ["body.0", "body.1"], names


def test_kernel_watch_equals_torch_ops_watch_when_diverging(monkeypatch):
    """inf and NaN statistics (a diverging run) come out the same by both paths, and the verdicts
    name the divergence."""
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((128, 5, 6)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((128, 3)).astype(np.float32))
    out = _on_paths(monkeypatch, lambda: _run(_Seq(), x, y, 1, 5, scale_at=3))
    _compare(out["kernels"], out["torch"], 1e-5)
    _compare(out["kernels"], out["device"], 1e-5)
    verdicts = [(v.kind, v.name, v.step) for v in out["kernels"].verdicts]
    assert verdicts == [(v.kind, v.name, v.step) for v in out["torch"].verdicts]
    assert verdicts == [(v.kind, v.name, v.step) for v in out["device"].verdicts]
    assert any(kind == "diverged" for kind, _, _ in verdicts), verdicts
    assert any(not math.isfinite(r.std) for r in out["kernels"].steps[-1].layers)


def test_a_failing_kernel_turns_to_torch_operations_and_says_so(monkeypatch):
    """A kernel that fails (say, numba cannot compile it for some array here) must not stop the
    user's training: the watch notes it and computes the rest with torch operations, giving the
    same rows as a watch by torch operations."""
    import types

    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.standard_normal((128, 5, 6)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((128, 3)).astype(np.float32))
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] > 6:  # fails in the middle of step 1's forward pass
            raise TypeError("no matching definition")
        return K.fw_all(*args)

    broken = types.SimpleNamespace(**{n: getattr(K, n) for n in dir(K) if not n.startswith("_")})
    broken.fw_all = flaky  # the forward tensors' kernel
    monkeypatch.setattr(_kernels, "load", lambda: broken)
    torch.manual_seed(0)
    wk = _run(_Seq(), x, y, 1, 4)
    assert any("numba kernels failed" in n and "TypeError" in n for n in wk.notes), wk.notes
    monkeypatch.setattr(_kernels, "load", lambda: None)
    torch.manual_seed(0)
    wt = _run(_Seq(), x, y, 1, 4)
    _compare(wk, wt, 1e-5)


# -- regressions found in review -----------------------------------------------------------------

def _both(monkeypatch, build, loop):
    """The same loop watched by the kernels, by torch operations and by torch operations as chosen
    off the CPU: {path: Watch}."""
    def one():
        model = build()
        with watch(model, every=1) as w:
            loop(model, w)
        return w

    return _on_paths(monkeypatch, one)


class _InPlaceSkip(torch.nn.Module):
    """torchvision's ResNet block ending: ``out = self.bn(out); out += identity; out = self.relu(out)``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.relu = torch.nn.ReLU()
        self.out = torch.nn.Linear(8, 1)

    def forward(self, x):
        h = self.norm(self.fc(x))
        h += 3.0 * x  # in place, after the norm's hook read h
        return self.out(self.relu(h))


def test_an_in_place_write_between_two_rows_is_measured_anew(monkeypatch):
    """The ReLU's input was written after the norm's row was taken: its pre-activation is the
    tensor it gets (the probe's definition), measured anew, not the norm's numbers, by both
    paths alike (histograms too)."""
    x = torch.from_numpy(np.random.default_rng(9).standard_normal((64, 8)).astype(np.float32))
    seen = {}

    def loop(model, w):
        for _ in range(3):
            with torch.no_grad():
                seen["pre"] = (model.norm(model.fc(x)) + 3.0 * x).double()
            model(x).pow(2).mean().backward()
            w.log_loss(0.0)

    out = _both(monkeypatch, _InPlaceSkip, loop)
    _compare(out["kernels"], out["torch"], 1e-5)
    _compare(out["kernels"], out["device"], 1e-5)
    for w in out.values():
        rows = {s.name: s for s in w.steps[0].layers}
        assert rows["relu"].preact_mean == pytest.approx(float(seen["pre"].mean()), rel=1e-5, abs=1e-6)
        assert rows["relu"].preact_std == pytest.approx(float(seen["pre"].std(correction=0)), rel=1e-5)
        assert rows["norm"].std == pytest.approx(1.0, rel=1e-2)  # the norm's own output, before the add


@pytest.mark.parametrize("fail_after", [1, 2, 3, 5])
def test_kernels_failing_at_any_point_of_a_step(monkeypatch, fail_after):
    """Kernels that stop working between a linear layer's output and its merged tanh (a step
    with members of both paths) still give the torch path's rows."""
    import types

    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] > fail_after:
            raise TypeError("no matching definition")
        return K.fw_all(*args)

    broken = types.SimpleNamespace(**{n: getattr(K, n) for n in dir(K) if not n.startswith("_")})
    broken.fw_all = flaky  # the forward tensors' kernel
    rng = np.random.default_rng(10)
    x = torch.from_numpy(rng.standard_normal((128, 5, 6)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((128, 3)).astype(np.float32))
    monkeypatch.setattr(_kernels, "load", lambda: broken)
    torch.manual_seed(0)
    wk = _run(_Seq(), x, y, 1, 3)
    assert any("numba kernels failed" in n for n in wk.notes)
    monkeypatch.setattr(_kernels, "load", lambda: None)
    torch.manual_seed(0)
    _compare(wk, _run(_Seq(), x, y, 1, 3), 1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models(monkeypatch, dtype):
    """float16/bfloat16 weights and activations (the torch path, read as float32): the first step
    names the init from a float32 copy of the weights."""
    def build():
        return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)).to(dtype)

    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0)).to(dtype)

    def loop(model, w):
        for _ in range(2):
            model(x).float().pow(2).mean().backward()

    out = _both(monkeypatch, build, loop)
    for w in out.values():
        assert [s.step for s in w.steps] == [0, 1]
        assert all(math.isfinite(s.std) and s.weight_kurtosis is not None for s in w.steps[0].layers)
    _compare(out["kernels"], out["torch"], 1e-5)
    _compare(out["kernels"], out["device"], 1e-5)


def test_parametrized_weights_leave_nothing_behind(monkeypatch):
    """A parametrized weight (weight_norm) is a new tensor at each access: the copies and sums
    kept between steps stay bounded."""
    from torch.nn.utils.parametrizations import weight_norm

    model = torch.nn.Sequential(weight_norm(torch.nn.Linear(6, 64)), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    with watch(model, every=1) as w:
        for _ in range(12):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        hooks = w._hooks
        assert not hooks.presnap
        assert len(hooks.buffers) <= 2
    assert len(w.steps) == 12


def test_huge_finite_values_and_a_tiny_gradient_spread_as_the_probe(monkeypatch):
    """Activations near 1e20 (x² overflows float32) and a weight gradient whose spread is tiny
    beside its mean: both paths give the probe's numbers (its float64 centered fallback)."""
    from initlab.diagnostics._stats import mean_pairwise_cosine, moments

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = torch.nn.LeakyReLU(1.0)
            self.fc = torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.fc(self.act(x).reshape(x.shape[0], -1, 4)).mean(1)

    g = torch.Generator().manual_seed(0)
    big = torch.randn(32, 8, generator=g) * 1e20
    near = torch.randn(32, 8, generator=g) + 1000.0
    grads = {}

    def loop(model, w):
        model(big)  # (no backward: the forward's numbers)
        model(near).pow(2).mean().backward()
        grads["gw"] = model.fc.weight.grad.detach().clone()

    out = _both(monkeypatch, M, loop)
    ref = moments(big.numpy())
    want_gw = float(grads["gw"].double().std(correction=0))
    for path, w in out.items():
        st = w.steps[0].layers[0]
        assert st.std == pytest.approx(ref.std, rel=1e-5), path
        assert st.cosine == pytest.approx(mean_pairwise_cosine(big.numpy()), rel=1e-5, abs=1e-7), path
        assert w.steps[1].layers[-1].grad_weight_std == pytest.approx(want_gw, rel=1e-4), path


@pytest.mark.parametrize("capture", ["modules", "ops"])
def test_a_lazy_module_is_watched_from_its_first_step(monkeypatch, capture):
    """A LazyLinear's weight does not exist before the first forward: that step has no weight
    statistics for it, later steps do, and the training runs as without the watch."""
    def build():
        return torch.nn.Sequential(torch.nn.LazyLinear(16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))

    def loop(model, w):
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()

    if capture == "ops":
        torch.manual_seed(0)
        model = build()
        with watch(model, every=1, capture="ops") as w:
            loop(model, w)
        assert w.steps[1].layers[0].weight_std > 0
        return
    out = _both(monkeypatch, build, loop)
    for w in out.values():
        assert w.steps[0].layers[0].weight_std is None and w.steps[1].layers[0].weight_std > 0
    _compare(out["kernels"], out["torch"], 1e-5)
    _compare(out["kernels"], out["device"], 1e-5)


@pytest.mark.parametrize("mid", [False, True])
def test_fused_and_slot_kernels_equal_their_parts(mid):
    """fw_all/grad_all (one call per tensor) and the replay's fw_slot/grad_slot (the same numbers
    at fixed offsets of one array) equal fw_stats, cos_sums, hist_counts and grad_sums called one
    by one; the variance flag is the probe's rule."""
    rng = np.random.default_rng(12)
    shape = (24, 6, 10) if mid else (24, 60)
    x = np.maximum(rng.standard_normal(shape), 0).astype(np.float32)
    flat = x.reshape(-1)
    near = np.float32(0.05)
    hstep, nb, lo, kk = 7, 40, -3.0, 40 / 6.0
    idx = np.empty(flat.size, dtype=np.int32)
    out_ref, c_ref = np.empty((5, shape[1])), np.zeros(nb, dtype=np.int64)
    s, sq, nz = (K.fw_stats_mid if mid else K.fw_stats)(x, near, out_ref)
    h = flat.reshape(shape[0], -1)[:16]
    n2_ref = np.empty(16)
    q_ref = K.cos_sums(h, 1, n2_ref)
    K.hist_counts(flat, hstep, 1.0, lo, kk, nb, idx, c_ref)
    out, n2, c = np.empty((5, shape[1])), np.empty(16), np.zeros(nb, dtype=np.int64)
    r = (K.fw_all_mid if mid else K.fw_all)(x, near, out, h, 1, n2, flat, hstep, 1.0, lo, kk, nb, idx, c)
    assert r[:4] == (s, sq, nz, q_ref) and r[4]
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(n2, n2_ref)
    np.testing.assert_array_equal(c, c_ref)
    c_ref[:] = 0  # the histogram again, for the slot kernel
    K.hist_counts(flat, hstep, 1.0, lo, kk, nb, idx, c_ref)
    vals, counts = np.full(5 * shape[1] + 3 + 16 + 4, np.nan), np.zeros(nb + 3, dtype=np.int64)
    feats = flat.size // shape[0]
    view = shape if mid else (shape[0], shape[1])
    cancel, counted = (K.fw_slot_mid if mid else K.fw_slot)(flat, vals, counts, idx, *view, near, 2, 16, feats, 1,
                                                             hstep, lo, kk, nb, 3)
    assert counted and not cancel
    np.testing.assert_array_equal(vals[2:2 + 5 * shape[1]].reshape(5, -1), out_ref)
    b = 2 + 5 * shape[1]
    assert (vals[b], vals[b + 1], vals[b + 2]) == (sq, nz, q_ref)
    np.testing.assert_array_equal(vals[b + 3:b + 19], n2_ref)
    np.testing.assert_array_equal(counts[3:], c_ref)
    g_ref = np.empty((2, shape[1]))
    gs, gq = (K.grad_sums_mid if mid else K.grad_sums)(x, g_ref)
    gv, gc = np.zeros(2 * shape[1] + 1), np.zeros(nb, dtype=np.int64)
    cancel, counted = (K.grad_slot_mid if mid else K.grad_slot)(flat, gv, gc, idx, *view, 0, hstep, 1.0, lo, kk, nb, 0)
    np.testing.assert_array_equal(gv[:-1].reshape(2, -1), g_ref)
    assert gv[-1] == gq and counted and not cancel
    np.testing.assert_array_equal(gc, c_ref)


def test_variance_rules_and_the_weights_update_kernel():
    # the probe's rule: Σx²/n − mean² below 1e-3·E[x²] (or not finite)
    assert K.cancels(100.0, 100.0, 100) and not K.cancels(0.0, 100.0, 100)
    assert K.cancels(math.nan, 1.0, 4) and K.cancels_w(10.0, 10.0, 10) and not K.cancels_w(0.0, 10.0, 10)
    rng = np.random.default_rng(13)
    ws = tuple(rng.standard_normal(n).astype(np.float32) for n in (100, 7, 64))
    ss = tuple((w + rng.standard_normal(w.size).astype(np.float32) * 0.01) for w in ws)
    ref = [K.diff_snap_sums(w, s.copy()) for w, s in zip(ws, ss)]
    out = np.empty((3, 4))
    K.diff_snap_all(ws, ss, out)
    for i, (w, s) in enumerate(zip(ws, ss)):
        assert tuple(out[i, :3]) == ref[i]
        np.testing.assert_array_equal(s, w)  # the next step's copy
        assert out[i, 3] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_all_weights_kernels_are_the_per_weight_kernels(dtype):
    """snap_all / diff_all (one call for all the watched weights) give bitwise what snap_sums /
    cancels_w / diff_sq give weight by weight, on the benchmark MLP's sizes, tails, a constant
    weight (the variance cancels) and non-finite values."""
    rng = np.random.default_rng(21)
    sizes = (784 * 256, 256 * 256, 7, 2560, 33, 100)
    ws = [rng.standard_normal(n).astype(dtype) for n in sizes]
    ws[4][:] = 3.0
    ws[5][11] = np.nan if dtype == np.float64 else np.inf
    ws = tuple(ws)
    ss = tuple(np.zeros_like(w) for w in ws)
    out = np.full((len(ws), 3), -1.0)
    K.snap_all(ws, ss, out)
    for i, (w, s) in enumerate(zip(ws, ss)):
        ref_s = np.zeros_like(w)
        a, q = K.snap_sums(w, ref_s)
        np.testing.assert_array_equal(s, w)
        assert (out[i, 0], out[i, 1]) == (a, q) or (math.isnan(a) and math.isnan(out[i, 0]))
        assert out[i, 2] == (1.0 if K.cancels_w(a, q, w.size) else 0.0)
    assert out[4, 2] == 1.0 and out[5, 2] == 1.0 and out[0, 2] == 0.0
    vals = np.full(2 * len(ws) + 1, -1.0)
    for i, w in enumerate(ws):  # flat_slot: flat_sums into a step's numbers, and the variance rule
        a, q = K.flat_sums(w)
        cancel = K.flat_slot(w, vals, 2 * i + 1)
        assert (vals[2 * i + 1], vals[2 * i + 2]) == (a, q) or (math.isnan(a) and math.isnan(vals[2 * i + 1]))
        assert cancel == K.cancels_w(a, q, w.size)
    assert vals[0] == -1.0
    news = tuple(w + (rng.standard_normal(w.size) * 0.01).astype(dtype) for w in ws)
    d = np.full(len(ws), -1.0)
    K.diff_all(news, ss, d)
    for i, (w, s) in enumerate(zip(news, ss)):
        ref = K.diff_sq(w, s)
        assert d[i] == ref or (math.isnan(ref) and math.isnan(d[i]))
    assert d[0] > 0.0


# -- the kernels' blocked / vectorised paths: tails, non-finite values, float64 ---------------------
# fw_stats and grad_sums read four rows at a time, cos_sums adds four normalised rows at a time,
# hist_counts bins by chunks of 256 samples, the flat sums keep their accumulators in registers;
# every tail (rows, channels, samples not a multiple of the block or of a vector) is checked
# against a plain NumPy reference: extremes and counts bitwise, sums to 1e-12 relative.


def _ref_stats(x, near_t):
    """NumPy reference of fw_stats: Σx (NaN propagates), max/min ignoring NaN (±inf when a
    channel has no number), Σx², near-zero count compared in x's dtype."""
    x64 = x.astype(np.float64)
    num = ~np.isnan(x64)
    mx = np.where(num, x64, -np.inf).max(0) if x.shape[0] else np.full(x.shape[1], -np.inf)
    mn = np.where(num, x64, np.inf).min(0) if x.shape[0] else np.full(x.shape[1], np.inf)
    return x64.sum(0), mx, (x64 * x64).sum(0), mn, (np.abs(x) <= near_t).sum(0)


def _sums_close(got, want, rel=1e-12):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    np.testing.assert_allclose(got[fin], want[fin], rtol=rel, atol=rel * 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows,chans", [(0, 5), (1, 1), (3, 7), (4, 8), (5, 9), (7, 17), (9, 33), (130, 256), (13, 100)])
def test_blocked_row_kernels_on_every_tail(dtype, rows, chans):
    rng = np.random.default_rng(rows * 1000 + chans)
    x = (rng.standard_normal((rows, chans)) * 0.1).astype(dtype)
    if rows:
        x[rng.integers(0, rows, size=chans // 2 + 1), rng.integers(0, chans, size=chans // 2 + 1)] = 0
    near = dtype(0.05)
    out = np.full((5, chans), 7.0)  # stale values: overwritten
    s, sq, nz = K.fw_stats(x, near, out)
    ref = _ref_stats(x, near)
    _sums_close(out[0], ref[0])
    np.testing.assert_array_equal(out[1], ref[1])
    _sums_close(out[2], ref[2])
    np.testing.assert_array_equal(out[3], ref[3])
    np.testing.assert_array_equal(out[4], ref[4])
    assert nz == ref[4].sum()
    _sums_close([s, sq], [ref[0].sum(), ref[2].sum()])
    g = np.full((2, chans), 7.0)
    gs, gq = K.grad_sums(x, g)
    _sums_close(g[0], ref[0])
    _sums_close(g[1], ref[2])
    _sums_close([gs, gq], [ref[0].sum(), ref[2].sum()])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_row_kernels_with_non_finite_values(dtype):
    """NaN in any of the four rows of a block, or in a tail row: Σx and Σx² NaN for its channel,
    the maxima and minima those of the numbers (±inf for a channel of NaN only); inf counts as a
    maximum and makes the sums inf."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((11, 12)).astype(dtype)
    for r in range(11):
        x[r, r] = np.nan  # rows 0..3, 4..7 (blocks) and 8..10 (tail)
    x[:, 11] = np.nan
    x[5, 0] = np.inf
    x[9, 1] = -np.inf
    out = np.empty((5, 12))
    s, sq, nz = K.fw_stats(x, dtype(0.05), out)
    ref = _ref_stats(x, dtype(0.05))
    _sums_close(out[0], ref[0])
    np.testing.assert_array_equal(out[1], ref[1])
    _sums_close(out[2], ref[2])
    np.testing.assert_array_equal(out[3], ref[3])
    np.testing.assert_array_equal(out[4], ref[4])
    assert out[1, 11] == -np.inf and out[3, 11] == np.inf and out[1, 0] == np.inf and out[3, 1] == -np.inf
    assert math.isnan(s) and math.isnan(sq) and nz == ref[4].sum()
    g = np.empty((2, 12))
    gs, gq = K.grad_sums(x, g)
    _sums_close(g, np.stack([ref[0], ref[2]]))
    assert math.isnan(gs) and math.isnan(gq)


def _ref_cos(h):
    """cos_sums by definition: row norms² n2, q = ‖Σ_i h_i/‖h_i‖‖² over the rows of non-zero norm."""
    h64 = h.astype(np.float64)
    n2 = (h64 * h64).sum(1)
    keep = n2 != 0
    su = (h64[keep] / np.sqrt(n2[keep])[:, None]).sum(0)
    return n2, float((su * su).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 7, 8, 64])
@pytest.mark.parametrize("fstep", [1, 3, 40])
def test_cos_sums_in_blocks_of_four_rows(dtype, k, fstep):
    """Dense (fstep 1) and strided features (copied per block of four rows into a buffer; 40:
    one feature of 37), row counts below, at and past the blocks."""
    rng = np.random.default_rng(k)
    h = (rng.standard_normal((k, 37)) + 0.5).astype(dtype)
    h[k // 2] = 0.0  # a zero row inside a block or in the tail: left out
    n2 = np.empty(k)
    q = K.cos_sums(h, fstep, n2)
    n2_ref, q_ref = _ref_cos(h[:, ::fstep])
    _sums_close(n2, n2_ref)
    assert q == pytest.approx(q_ref, rel=1e-12)


def test_cos_sums_rows_whose_squares_underflow_and_non_finite_rows():
    """float64 values whose squares underflow to 0: a row of norm 0, left out (not inf·0); a
    row holding inf or NaN makes q NaN wherever it sits."""
    rng = np.random.default_rng(22)
    h = rng.standard_normal((6, 20))
    h[2] = 1e-170  # squares underflow: n2 = 0, the row is left out
    n2 = np.empty(6)
    q = K.cos_sums(h, 1, n2)
    assert n2[2] == 0.0
    n2_ref, q_ref = _ref_cos(h)
    assert q == pytest.approx(q_ref, rel=1e-12)
    for r in (1, 5):  # in the first block of four rows, in the tail
        for bad in (np.inf, np.nan):
            g = h.copy()
            g[r, 3] = bad
            assert math.isnan(K.cos_sums(g, 1, np.empty(6)))
            assert math.isnan(K.cos_sums(g, 3, np.empty(6)))  # feature 3 is read with fstep 3


def _ref_hist(flat, step, scale, lo, k, nb):
    v = flat[::step].astype(np.float64)
    p = np.clip((v * scale - lo) * k, 0.0, nb - 1)
    return np.bincount(p.astype(np.int64), minlength=nb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,step", [(1, 1), (3, 1), (255, 1), (256, 1), (257, 1), (4096, 9), (32768, 9),
                                    (100352, 25), (1000, 7), (777, 256), (513, 2)])
def test_hist_counts_chunks_and_strides(dtype, n, step):
    """Sample counts below, at and across the 256-sample chunks; strides that do (2, 256) and do
    not (7, 9, 25) divide a channel count of 256; counts added to what is there."""
    rng = np.random.default_rng(n + step)
    flat = (rng.standard_normal(n) * 1.5).astype(dtype)
    flat[: min(n, 4)] = dtype(-3.0)  # on the low edge and outside
    nb, lo, k = 40, -3.0, 40 / 6.0
    counts = np.arange(nb, dtype=np.int64)
    m = -(-n // step)
    idx = np.empty(m, dtype=np.int32)  # the smallest scratch callers give
    K.hist_counts(flat, step, 1.0, lo, k, nb, idx, counts)
    np.testing.assert_array_equal(counts - np.arange(nb), _ref_hist(flat, step, 1.0, lo, k, nb))
    counts[:] = 0
    K.hist_counts(flat, step, 128.0, lo * 128, k / 128, nb, idx, counts)  # a delta's scale
    np.testing.assert_array_equal(counts, _ref_hist(flat, step, 128.0, lo * 128, k / 128, nb))


def test_hist_counts_of_a_strided_view_and_infinite_values():
    """A 1-D view with a stride (no copy), and ±inf values (not counted by the watch, which checks
    Σx² first, but binned into the end bins by the kernel, never out of range)."""
    rng = np.random.default_rng(23)
    base = rng.standard_normal(3000).astype(np.float32)
    view = base[1::3]
    counts = np.zeros(16, dtype=np.int64)
    K.hist_counts(view, 5, 1.0, -2.0, 4.0, 16, np.empty(1000, dtype=np.int32), counts)
    np.testing.assert_array_equal(counts, _ref_hist(view, 5, 1.0, -2.0, 4.0, 16))
    x = np.array([np.inf, -np.inf, 0.0, 1.0], dtype=np.float32)
    counts = np.zeros(16, dtype=np.int64)
    K.hist_counts(x, 1, 1.0, -2.0, 4.0, 16, np.empty(4, dtype=np.int32), counts)
    assert counts[0] == 1 and counts[15] == 1 and counts.sum() == 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 5, 15, 16, 17, 31, 33, 1000, 65537])
def test_flat_kernels_on_tails_and_dtypes(dtype, n):
    """The flat sums (register accumulators; for float32 Σx² by fma, the squares being exact):
    Σx and Σx² within 1e-12 of the exactly rounded sums (math.fsum of the exact squares), the
    snapshot copied bitwise."""
    rng = np.random.default_rng(n)
    w = (rng.standard_normal(n) * 3).astype(dtype)
    s = (w + rng.standard_normal(n) * 1e-3).astype(dtype)
    w64, s64 = w.astype(np.float64), s.astype(np.float64)
    want = (math.fsum(w64), math.fsum(w64 * w64))
    if dtype == np.float32:
        assert all(float(v) * float(v) == float(v * v) for v in w64[:50])  # the squares are exact
    assert K.flat_sums(w) == pytest.approx(want, rel=1e-12, abs=1e-300)
    snap = s.copy()
    d2, a, b = K.diff_snap_sums(w, snap)
    assert d2 == pytest.approx(math.fsum((w64 - s64) ** 2), rel=1e-12, abs=1e-300)
    assert (a, b) == pytest.approx(want, rel=1e-12, abs=1e-300)
    np.testing.assert_array_equal(snap, w)
    assert K.diff_sq(w, s) == pytest.approx(d2, rel=1e-12, abs=1e-300)
    snap2 = np.zeros_like(w)
    assert K.snap_sums(w, snap2) == pytest.approx(want, rel=1e-12, abs=1e-300)
    np.testing.assert_array_equal(snap2, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_kernels_propagate_non_finite_values(dtype):
    w = np.ones(100, dtype=dtype)
    w[37] = np.nan
    assert all(math.isnan(v) for v in K.flat_sums(w))
    w[37] = np.inf
    assert K.flat_sums(w) == (np.inf, np.inf)
    snap = np.ones(100, dtype=dtype)
    d2, a, b = K.diff_snap_sums(w, snap)
    assert (d2, a, b) == (np.inf, np.inf, np.inf) and snap[37] == np.inf
    out = np.empty((2, 4))
    K.diff_snap_all((w, np.ones(10, dtype=dtype)), (np.ones(100, dtype=dtype), np.ones(10, dtype=dtype)), out)
    assert out[0, 3] == 1.0 and tuple(out[1]) == (0.0, 10.0, 10.0, 1.0)  # inf variance, then constant weights


@pytest.mark.parametrize("hstep,chans", [(9, 256), (8, 256), (1, 10), (25, 784)])
def test_slot_kernels_on_the_mlp_shapes(hstep, chans):
    """fw_slot/grad_slot on the benchmark's shapes (a stride coprime or not with the channels)
    equal the references: statistics, cosine and histogram."""
    rng = np.random.default_rng(hstep + chans)
    x = np.maximum(rng.standard_normal((128, chans)), -0.5).astype(np.float32)
    flat = x.reshape(-1)
    nb, lo, kk = 40, -3.0, 40 / 6.0
    idx = np.empty(-(-flat.size // hstep), dtype=np.int32)
    vals, counts = np.zeros(5 * chans + 3 + 64), np.zeros(nb, dtype=np.int64)
    near = np.float32(1e-3)
    cancel, counted = K.fw_slot(flat, vals, counts, idx, 128, chans, near, 0, 64, chans, 1, hstep, lo, kk, nb, 0)
    ref = _ref_stats(x, near)
    got = vals[:5 * chans].reshape(5, chans)
    _sums_close(got[0], ref[0])
    np.testing.assert_array_equal(got[[1, 3, 4]], np.stack([ref[1], ref[3], ref[4]]))
    _sums_close(got[2], ref[2])
    n2_ref, q_ref = _ref_cos(x[:64])
    b = 5 * chans
    assert vals[b] == pytest.approx(ref[2].sum(), rel=1e-12) and vals[b + 1] == ref[4].sum()
    assert vals[b + 2] == pytest.approx(q_ref, rel=1e-12)
    _sums_close(vals[b + 3:], n2_ref)
    assert counted and not cancel
    np.testing.assert_array_equal(counts, _ref_hist(flat, hstep, 1.0, lo, kk, nb))
    gv, gc = np.zeros(2 * chans + 1), np.zeros(nb, dtype=np.int64)
    cancel, counted = K.grad_slot(flat, gv, gc, idx, 128, chans, 0, hstep, 128.0, lo * 128, kk / 128, nb, 0)
    _sums_close(gv[:-1].reshape(2, chans), np.stack([ref[0], ref[2]]))
    np.testing.assert_array_equal(gc, _ref_hist(flat, hstep, 128.0, lo * 128, kk / 128, nb))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0, 3, 4), (1, 2, 1), (3, 5, 7), (4, 3, 16), (9, 4, 33), (13, 2, 100), (8, 3, 0)])
def test_channel_mid_kernels_on_every_tail(dtype, shape):
    """[batch, C, positions]: batch sizes below, at and past the four-sample blocks, positions
    shorter than a vector, none at all; non-finite values in a block and in the tail; the
    reference is fw_stats' reference over batch and positions."""
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 0.1).astype(dtype)
    if x.size:
        x.reshape(-1)[rng.integers(0, x.size, size=max(1, x.size // 10))] = 0
    if shape[0] >= 9 and shape[2]:
        x[1, 0, 0] = np.nan  # in a block
        x[8, 1, shape[2] - 1] = np.nan  # in the tail
        x[5, 1, 0] = np.inf
        x[:, 2 % shape[1], :] = np.nan if shape[1] > 2 else x[:, 2 % shape[1], :]
    near = dtype(0.05)
    out, g = np.full((5, shape[1]), 7.0), np.full((2, shape[1]), 7.0)
    s, sq, nz = K.fw_stats_mid(x, near, out)
    gs, gq = K.grad_sums_mid(x, g)
    flat = x.transpose(0, 2, 1).reshape(-1, shape[1])  # [batch·positions, C]
    ref = _ref_stats(flat, near)
    _sums_close(out[0], ref[0], 1e-11)
    np.testing.assert_array_equal(out[1], ref[1])
    _sums_close(out[2], ref[2], 1e-11)
    np.testing.assert_array_equal(out[3], ref[3])
    np.testing.assert_array_equal(out[4], ref[4])
    assert nz == ref[4].sum()
    _sums_close(g, np.stack([ref[0], ref[2]]), 1e-11)
    tot = [ref[0].sum(), ref[2].sum()]
    _sums_close([s, sq], tot, 1e-11)
    _sums_close([gs, gq], tot, 1e-11)
