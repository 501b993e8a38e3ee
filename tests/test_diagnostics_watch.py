"""initlab.watch: a torch training loop watched layer by layer, bitwise unchanged."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import initlab  # noqa: E402
from initlab.diagnostics import Watch, _kernels, watch  # noqa: E402
from _torch_models import hook_count, mlp  # noqa: E402


_mlp = mlp


@pytest.fixture(autouse=True, params=["kernels", "torch_ops", "device_ops"])
def stats_path(request, monkeypatch):
    """Every test runs three times: with the fused numba kernels (the CPU path when numba is
    installed, as the test extra installs it), with torch operations only (the path without
    numba, which is also the path of every tensor off the CPU), and with torch operations as the
    watch chooses them off the CPU (``_launch_bound`` true: one reduction per group where the CPU
    runs a BLAS dot per tensor, Welford's var_mean for the weights and their gradients...), run
    here on the CPU."""
    if request.param in ("torch_ops", "device_ops"):
        monkeypatch.setattr(_kernels, "load", lambda: None)
        if request.param == "device_ops":
            from initlab.diagnostics import _watch

            monkeypatch.setattr(_watch, "_launch_bound", lambda t: True)
    else:
        assert _kernels.load() is not None, "numba is part of the test extra"
    return request.param


def _data(n: int = 512, d_in: int = 10) -> tuple["torch.Tensor", "torch.Tensor"]:
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((n, d_in)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((n, 1)).astype(np.float32))
    return x, y


def _train(model, opt, x, y, steps, w=None, batch=64):
    for s in range(steps):
        i = (s * batch) % x.shape[0]
        opt.zero_grad()
        loss = ((model(x[i:i + batch]) - y[i:i + batch]) ** 2).mean()
        loss.backward()
        opt.step()
        if w is not None:
            w.log_loss(loss)


@pytest.mark.parametrize("every", [1, 3])
def test_training_is_bitwise_the_same_with_and_without_watch(every):
    """Dropout (torch's RNG) and BatchNorm (buffers) included: parameters, buffers and the RNG
    stream after training are identical."""
    x, y = _data()
    results = []
    for watched in (False, True):
        torch.manual_seed(123)
        model = _mlp(None, dropout=0.2, norm=True)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        if watched:
            with watch(model, every=every) as w:
                _train(model, opt, x, y, 12, w)
            assert [r.step for r in w.steps] == list(range(0, 12, every))
        else:
            _train(model, opt, x, y, 12)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        results.append((state, torch.random.get_rng_state().clone()))
    (s0, r0), (s1, r1) = results
    assert s0.keys() == s1.keys()
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    assert torch.equal(r0, r1)


def test_step_zero_equals_probe_on_the_same_batch():
    """Forward and backward statistics at step 0 are the probe's on that batch: the loss ½‖o − y‖²
    per sample, batch mean (loss_reduction="mean"), is the probe's "mse" with these targets."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 40), torch.nn.Tanh(), torch.nn.Linear(40, 30), torch.nn.ReLU(),
                                torch.nn.Linear(30, 5))
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((128, 12)).astype(np.float32)
    yb = rng.standard_normal((128, 5)).astype(np.float32)
    ref = initlab.probe(model, xb, y=yb, loss="mse", rng=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, every=1) as w:
        opt.zero_grad()
        out = model(torch.from_numpy(xb))
        loss = 0.5 * ((out - torch.from_numpy(yb)) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
        w.log_loss(loss)
    got = w.steps[0].layers
    assert [s.name for s in got] == [s.name for s in ref.layers]
    keys = ("mean", "std", "sq_mean", "chan_var", "min", "max", "preact_mean", "preact_std", "saturated", "dead",
            "cosine", "weight_std", "grad_std", "grad_rms", "grad_act_std", "grad_weight_std", "grad_weight_ratio",
            "fan_in", "fan_out", "weight_kurtosis")
    for a, b in zip(got, ref.layers):
        for k in keys:
            va, vb = getattr(a, k), getattr(b, k)
            if vb is None:
                assert va is None, (a.name, k)
            else:
                assert va == pytest.approx(vb, rel=1e-5, abs=1e-9), (a.name, k)
    assert [s.weight_init for s in got] == [s.weight_init for s in ref.layers]  # the init in place, named once
    assert all(s.weight_kurtosis is None for s in w.steps[-1].layers) or len(w.steps) == 1
    assert w.steps[0].loss == pytest.approx(loss.item())
    # the relative update of plain SGD is lr·‖∇W‖/‖W‖, the probe's mean-loss gradient ratio
    for st in got:
        upd = w.steps[0].update_ratio[st.name]
        assert upd == pytest.approx(0.01 * st.grad_weight_ratio, rel=1e-4)


def test_hooks_removed_also_after_an_exception():
    model = _mlp(None)
    before = hook_count(model)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(RuntimeError, match="boom"):
        with watch(model, every=1):
            opt.zero_grad()
            loss = ((model(x[:32]) - y[:32]) ** 2).mean()  # forward of a recorded step: param hooks are live
            raise RuntimeError("boom")
    assert hook_count(model) == before
    # the graph of the failed step still backpropagates without touching the (removed) watch
    loss.backward()
    w2 = watch(model, every=1)
    with w2:
        _train(model, opt, x, y, 2, w2)
    assert hook_count(model) == before
    assert len(w2.steps) == 2


def test_eval_forwards_are_not_steps():
    model = _mlp(None)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, every=1) as w:
        for _ in range(3):
            _train(model, opt, x, y, 1, w)
            model.eval()
            with torch.no_grad():
                model(x)
            model.train()
    assert [r.step for r in w.steps] == [0, 1, 2]


def test_dying_relu_layer_named_with_its_step():
    """ReLU MLP with N(0, 1) weights and Adam at lr 0.2: the updates push units dead within the
    first steps; the dead verdict names the layer and the first recorded step that shows it."""
    model = _mlp(1.0)
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=0.2)
    with watch(model, every=1) as w:
        _train(model, opt, x, y, 30, w)
    dead = [v for v in w.verdicts if v.kind == "dead"]
    assert dead, [str(v) for v in w.verdicts]
    v = dead[0]
    assert v.step > 0  # not dead at initialization: it died while training
    assert v.name in w.layer_names
    row = w.steps[[r.step for r in w.steps].index(v.step)].layers
    st = next(s for s in row if s.name == v.name)
    assert st.dead > 0.1
    prev = w.steps[[r.step for r in w.steps].index(v.step) - 1].layers
    assert all((s.dead or 0.0) <= 0.1 for s in prev)  # the step before shows no dead layer
    assert f"step {v.step}" in str(v)


def test_step_zero_verdicts_name_the_init_as_the_probe_does():
    """The first recorded step measures each weight's structure and kurtosis as the probe does, so
    its verdicts name the init in place in the probe's words ("normal-like"); later steps do not
    measure them (the weights have moved) and report a scale."""
    model = _mlp(1.0)
    x, y = _data()
    ref = initlab.probe(model, x[:64].numpy(), y=y[:64].numpy(), loss="mse", rng=0)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    with watch(model, every=1) as w:
        _train(model, opt, x, y, 3, w)
    first = [v.message for v in w.verdicts if v.step == 0]
    want = [v.message for v in ref.verdicts]
    assert first and first == want[:len(first)], (first, want)
    assert "normal-like" in first[0]
    assert all(s.weight_kurtosis is None for s in w.steps[1].layers)
    assert [s.weight_kurtosis for s in w.steps[0].layers] == pytest.approx([s.weight_kurtosis for s in ref.layers])


def test_well_initialized_net_gets_no_verdict():
    model = _mlp(None)
    x, y = _data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with watch(model, every=5) as w:
        _train(model, opt, x, y, 100, w)
    assert w.verdicts == []
    assert "no problem seen" in str(w)


def test_divergence_is_a_verdict_not_nan_noise():
    model = _mlp(1.0)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    with watch(model, every=1) as w:
        _train(model, opt, x, y, 6, w)
    kinds = [v.kind for v in w.verdicts]
    assert "diverged" in kinds
    d = next(v for v in w.verdicts if v.kind == "diverged")
    assert all(v.step <= d.step for v in w.verdicts)


def test_table_exports(tmp_path):
    import pandas as pd  # in the test extra
    model = _mlp(None)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, every=2) as w:
        _train(model, opt, x, y, 6, w)
    rows = w.rows()
    assert len(rows) == 3 * len(w.layer_names)
    df = w.to_pandas()
    assert list(df["step"].unique()) == [0, 2, 4]
    assert df.loc[df["name"] == "0", "std"].tolist() == [r["std"] for r in rows if r["name"] == "0"]
    w.to_csv(str(tmp_path / "w.csv"))
    back = pd.read_csv(tmp_path / "w.csv")
    assert np.allclose(back["std"].to_numpy(), df["std"].to_numpy())
    w.to_parquet(str(tmp_path / "w.parquet"))
    assert pd.read_parquet(tmp_path / "w.parquet")["loss"].tolist() == df["loss"].tolist()
    steps, edges, counts = w.histograms("2")
    assert counts.shape == (3, edges.size - 1) and steps.tolist() == [0, 2, 4]
    assert counts.sum(axis=1).tolist() == [65536 if c > 65536 else c for c in counts.sum(axis=1).tolist()]
    path = w.plot(str(tmp_path / "w.png"))
    assert (tmp_path / "w.png").stat().st_size > 10_000 and path.endswith("w.png")


def test_fixed_histogram_edges_across_steps():
    model = _mlp(None)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with watch(model, every=1) as w:
        _train(model, opt, x, y, 4, w)
    for name in w.layer_names:
        edges = {tuple(s.hist.edges) for r in w.steps for s in r.layers if s.name == name}
        assert len(edges) == 1


def test_bad_arguments():
    model = _mlp(None)
    with pytest.raises(TypeError, match="'model'"):
        watch(object())
    with pytest.raises(ValueError, match="'every'"):
        watch(model, every=0)
    with pytest.raises(ValueError, match="'loss_reduction'.*mean"):
        watch(model, loss_reduction="avg")
    with pytest.raises(TypeError, match="'loss'"):
        w = watch(model)
        with w:
            model(torch.ones(2, 10))
            w.log_loss("high")
    with pytest.raises(ValueError, match="'name'"):
        Watch().series("nope", "std")


# -- initlab's own engine: the Probe callback gives the same Watch ------------------------------

def test_engine_probe_callback_step_zero_equals_probe():
    """Network.fit with the Probe callback: step 0's rows are initlab.probe's on the same (full)
    batch. The engine's mse is mean((o − y)²) over the batch and the k outputs, so its per-sample
    delta is 2(o − y)/k where the probe's ½‖o − y‖² gives (o − y)."""
    from initlab.diagnostics import Probe
    from initlab.nn import Network

    rng = np.random.default_rng(0)
    X = rng.standard_normal((128, 6)).astype(np.float64)
    Y = rng.standard_normal((128, 3)).astype(np.float64)
    net = Network([6, 30, 20, 3], "tanh", init="xavier_normal", rng=1, dtype="float64")
    ref = initlab.probe(net, X, y=Y, loss="mse", rng=0)
    ref_out = net.predict(X)
    probe = Probe(every=2)
    net.fit(X, Y, epochs=5, lr=0.05, loss="mse", progress=False, callbacks=[probe])
    assert probe.steps == [0, 2, 4]
    got = probe.watch.steps[0].layers
    for a, b in zip(got, ref.layers):
        for k in ("mean", "std", "preact_std", "saturated", "cosine", "weight_std"):
            va, vb = getattr(a, k), getattr(b, k)
            assert (va is None and vb is None) or va == pytest.approx(vb, rel=1e-9), (a.name, k)
        assert a.grad_rms == pytest.approx(b.grad_rms * 2 / 3, rel=1e-9)
        assert a.grad_weight_std == pytest.approx(b.grad_weight_std * 2 / 3, rel=1e-9)
    # the update of plain SGD: lr · ‖∂L/∂W‖ / ‖W‖, L the engine's (mean) loss
    for st in got:
        assert probe.watch.steps[0].update_ratio[st.name] == pytest.approx(0.05 * st.grad_weight_ratio, rel=1e-6)
    assert probe.watch.steps[0].loss == pytest.approx(float(np.mean((ref_out - Y) ** 2)), rel=1e-9)


def test_engine_probe_names_a_dying_layer():
    """A ReLU MLP with N(0, 1) weights trained by Adam at lr 0.2 on the engine: a dead layer
    appears during training and is named with its step."""
    from initlab.diagnostics import Probe
    from initlab.nn import Network

    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 10)).astype(np.float32)
    Y = rng.standard_normal((512, 1)).astype(np.float32)
    net = Network([10, 64, 64, 64, 1], "relu", init="normal(std=1)", rng=0)
    probe = Probe(every=1)
    net.fit(X, Y, epochs=4, batch_size=64, lr=0.2, optimizer="adam", loss="mse", progress=False, rng=0,
            callbacks=[probe])
    dead = [v for v in probe.watch.verdicts if v.kind == "dead"]
    assert dead and dead[0].step > 0 and dead[0].name.startswith("layers.")


# -- the fast path's pieces and the op-level capture ------------------------------------------------

_KEYS = ("mean", "std", "sq_mean", "chan_var", "min", "max", "preact_mean", "preact_std", "saturated", "dead",
         "cosine", "weight_std", "grad_std", "grad_rms", "grad_act_std", "grad_weight_std", "grad_weight_ratio",
         "gain_mean", "gain_std", "skip_std", "branch_std")


def _assert_rows_equal(got, ref, rel=1e-5, abs_=5e-6):
    """Row by row, the probe's names, kinds, activations and statistics.

    Tolerances (float32 sums, u = 2⁻²⁴ ≈ 6e-8): the watch sums in float32 on the device
    (centered per-channel sums for activations; Σx, Σx² for deltas and weights), the probe in
    float32 channel sums and float64 dot products. A float32 cascade sum of n ≤ 2¹⁴ terms is
    within about log₂(n)·u ≈ 1e-6 relative, a dot product within √n·u typically, so the two agree
    to rel 1e-5. The cosine comes from a float32 Gram matrix of ≤ 64 features: each normalised
    entry is within 64·u ≈ 4e-6 absolute, hence abs 5e-6 for values near 0."""
    assert [(s.name, s.kind, s.activation) for s in got] == [(s.name, s.kind, s.activation) for s in ref]
    for a, b in zip(got, ref):
        for k in _KEYS:
            va, vb = getattr(a, k), getattr(b, k)
            if vb is None:
                assert va is None, (a.name, k, va)
            else:
                assert va == pytest.approx(vb, rel=rel, abs=abs_), (a.name, k)


def _one_step(model, xb, yb, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, every=1, **kw) as w:
        opt.zero_grad()
        out = model(torch.from_numpy(xb))
        loss = 0.5 * ((out - torch.from_numpy(yb)) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
        w.log_loss(loss)
    return w


class _Residual(torch.nn.Module):
    """A functional activation (F.relu, torch.tanh in forward) and a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(12, 32)
        self.fc2 = torch.nn.Linear(32, 32)
        self.out = torch.nn.Linear(32, 5)

    def forward(self, x):
        h = torch.nn.functional.relu(self.fc1(x))
        h = h + torch.tanh(self.fc2(h))
        return self.out(h)


def _batch(d_in=12, d_out=5, n=128, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d_in)).astype(np.float32), rng.standard_normal((n, d_out)).astype(np.float32)


def test_ops_capture_gives_the_probes_rows_on_a_functional_residual_model():
    torch.manual_seed(0)
    model = _Residual()
    xb, yb = _batch()
    ref = initlab.probe(model, xb, y=yb, loss="mse", rng=0)
    assert [s.name for s in ref.layers] == ["fc1", "fc2", "add", "out"]
    with torch.no_grad():
        h = torch.relu(model.fc1(torch.from_numpy(xb))).numpy()
    w = _one_step(model, xb, yb, capture="ops")
    _assert_rows_equal(w.steps[0].layers, ref.layers, rel=1e-9, abs_=1e-12)  # the probe's own functions
    assert w.steps[0].near_zero["fc1"] == float(np.mean(np.abs(h) <= 0.05))  # of the activation output
    for st in w.steps[0].layers:
        if st.grad_weight_ratio is not None:
            assert w.steps[0].update_ratio[st.name] == pytest.approx(0.01 * st.grad_weight_ratio, rel=1e-4)


def test_module_capture_rows_and_names_on_a_functional_model():
    """capture="modules" sees modules only: the rows it has carry the probe's names; a Linear
    whose activation is functional is its pre-activation row (the probe merges F.relu into it),
    and the residual add has no row (documented)."""
    torch.manual_seed(0)
    model = _Residual()
    xb, yb = _batch()
    ref = {s.name: s for s in initlab.probe(model, xb, y=yb, loss="mse", rng=0).layers}
    got = _one_step(model, xb, yb).steps[0].layers
    assert [s.name for s in got] == ["fc1", "fc2", "out"]
    for s in got:
        r = ref[s.name]
        assert s.kind == r.kind
        for k in ("preact_mean", "preact_std", "weight_std", "grad_weight_std", "grad_weight_ratio", "grad_rms"):
            assert getattr(s, k) == pytest.approx(getattr(r, k), rel=1e-5), (s.name, k)
        assert s.activation == "linear"  # the functional activation is not seen


@pytest.mark.parametrize("every", [1, 2])
def test_ops_capture_training_is_bitwise_the_same(every):
    """Dropout (functional, torch's RNG), a residual add and nn.MultiheadAttention (run as one op,
    not step by step) under the op-level capture: identical parameters and RNG stream."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = torch.nn.Linear(8, 16)
            self.att = torch.nn.MultiheadAttention(16, 2, batch_first=True)
            self.fc = torch.nn.Linear(16, 16)
            self.out = torch.nn.Linear(16, 1)

        def forward(self, x):
            h = torch.nn.functional.gelu(self.inp(x))
            a, _ = self.att(h, h, h, need_weights=False)
            h = h + torch.nn.functional.dropout(a, 0.2, self.training)
            h = h + torch.relu(self.fc(h))
            return self.out(h).mean(dim=1)

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((64, 5, 8)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((64, 1)).astype(np.float32))
    results = []
    for watched in (False, True):
        torch.manual_seed(7)
        model = Net()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        if watched:
            with watch(model, every=every, capture="ops") as w:
                _train(model, opt, x, y, 4, w, batch=16)
            names = w.layer_names
            assert "add" in names and "inp" in names and "fc" in names
        else:
            _train(model, opt, x, y, 4, batch=16)
        results.append(({k: v.clone() for k, v in model.state_dict().items()}, torch.random.get_rng_state().clone()))
    (s0, r0), (s1, r1) = results
    for k in s0:
        assert torch.equal(s0[k], s1[k]), k
    assert torch.equal(r0, r1)


def test_ops_capture_cleans_up_after_an_exception():
    from torch.overrides import _get_current_function_mode_stack

    model = _Residual()
    before = hook_count(model)
    with pytest.raises(RuntimeError, match="boom"):
        with watch(model, every=1, capture="ops"):
            model(torch.ones(4, 12))
            raise RuntimeError("boom")
    assert hook_count(model) == before
    with pytest.raises(RuntimeError, match="mat1 and mat2"):  # the model itself fails mid-forward
        with watch(model, every=1, capture="ops"):
            model(torch.ones(4, 7))
    assert hook_count(model) == before
    assert _get_current_function_mode_stack() == []
    # the module capture, whose first recorded step also looks for functional ops
    with pytest.raises(RuntimeError, match="mat1 and mat2"):
        with watch(model, every=1):
            model(torch.ones(4, 7))
    assert hook_count(model) == before
    assert _get_current_function_mode_stack() == []


def test_conv_batchnorm_model_step_zero_equals_probe():
    """Conv rows ("conv", op conv2d), BatchNorm rows ("norm": gain_mean/gain_std, no weight_std)
    and a paired activation, by the fast module path, against the probe."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.Tanh(),
                                torch.nn.Conv2d(8, 4, 3), torch.nn.Sigmoid(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 3))
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 1.5)
    rng = np.random.default_rng(2)
    xb = rng.standard_normal((32, 3, 8, 8)).astype(np.float32)
    yb = rng.standard_normal((32, 3)).astype(np.float32)
    ref = initlab.probe(model, xb, y=yb, loss="mse", rng=0, mode="train")
    w = _one_step(model, xb, yb)
    got = w.steps[0].layers
    # Flatten's output reaches the probe's Linear row through a reshape it follows; the watch has
    # no row for the Flatten either
    _assert_rows_equal(got, ref.layers)
    assert [s.op for s in got] == [s.op for s in ref.layers]


def test_cancelling_moments_match_the_probe():
    """A layer whose output sits far from zero with a tiny spread (a sigmoid of a large bias): the
    centered two-pass sums give the probe's std, where E[x²] − mean² in float32 would not."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Linear(16, 2))
    with torch.no_grad():
        model[0].weight.mul_(1e-4)
        model[0].bias.fill_(300.0)
    xb, yb = _batch(6, 2, n=64)
    ref = initlab.probe(model, xb, y=yb, loss="mse", rng=0)
    got = _one_step(model, xb, yb).steps[0].layers
    assert got[0].std == pytest.approx(ref.layers[0].std, rel=1e-3)
    assert 0 < got[0].std < 1e-2


def test_rows_built_when_read_equal_rows_read_at_each_step():
    """The rows of a recorded step are built from its numbers when the Watch is read: reading
    them inside the loop after every step or once at the end gives the same table, and a weight
    whose Σx²/n − mean² cancels (a large mean, a tiny spread) still gets the centered std (taken
    when its step ended, before the snapshot buffer is written again)."""
    tables = []
    for read_each_step in (False, True):
        model = _mlp(None)
        with torch.no_grad():
            model[2].weight.copy_(0.5 + 1e-4 * torch.randn(64, 64, generator=torch.Generator().manual_seed(1)))
        x, y = _data()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        with watch(model, every=2) as w:
            for s in range(7):
                _train(model, opt, x[s * 64:], y[s * 64:], 1, w)
                if read_each_step:
                    assert [r.step for r in w.steps] == list(range(0, s, 2))  # the pending step is not a row yet
        tables.append(w.rows())
        w2 = model[2].weight.detach().double()
    a, b = tables
    assert [r["step"] for r in a] == [r["step"] for r in b] and len({r["step"] for r in a}) == 4
    for ra, rb in zip(a, b):
        assert ra == rb or all(ra[k] == rb[k] or (ra[k] != ra[k] and rb[k] != rb[k]) for k in ra), ra["name"]
    last = [r for r in a if r["name"] == "2" and r["step"] == 6][0]
    assert last["weight_std"] == pytest.approx(float(w2.std(correction=0)), rel=0.05)  # W drifted by one step


def test_torch_histogram_equals_the_probes_histogram():
    from initlab.diagnostics._stats import histogram
    from initlab.diagnostics._watch import _torch_histogram

    rng = np.random.default_rng(3)
    v = rng.standard_normal(5000).astype(np.float32) * 2
    v[:7] = [np.inf, -np.inf, np.nan, 50.0, -50.0, 1.0, -1.0]  # non-finite dropped, outside clipped, edges
    for edges in (np.linspace(-3, 3, 41), np.linspace(-1, 1, 17), np.array([0.5, 0.5])):
        want = histogram(v, edges)
        got = _torch_histogram(torch.from_numpy(v), edges).numpy()
        assert got.tolist() == want.counts.tolist()
        assert int(got.sum()) == want.n_sampled == 4997


def test_batched_histograms_equal_the_probes_histograms():
    """Several histograms binned at once (values end to end, one bincount on bins offset per
    histogram), each on its own edges, give each one's own counts, non-finite values dropped;
    the deltas' scale is applied before binning, as the probe bins the scaled values."""
    from initlab.diagnostics._stats import histogram
    from initlab.diagnostics._watch import _bin_params, _bin_values

    rng = np.random.default_rng(5)
    rows = [(rng.standard_normal(n) * 2).astype(np.float32) for n in (5000, 300, 4096)]
    rows[0][:7] = [np.inf, -np.inf, np.nan, 50.0, -50.0, 1.0, -1.0]
    edges = [np.linspace(-3, 3, 17), np.linspace(-1, 1, 17), np.array([0.5] * 17)]
    scales = [1.0, 64.0, 1.0]
    rep = lambda vals: torch.repeat_interleave(torch.tensor(vals, dtype=torch.float64),  # noqa: E731
                                               torch.tensor([r.size for r in rows]))
    lo, k = rep([_bin_params(e)[0] for e in edges]), rep([_bin_params(e)[1] for e in edges])
    off = torch.repeat_interleave(torch.arange(0, 3 * 17, 17), torch.tensor([r.size for r in rows]))
    got = _bin_values(torch.from_numpy(np.concatenate(rows)), lo, k, rep(scales), off, 3, 16).numpy()
    assert got.shape == (3, 16)
    for g, row, e, sc in zip(got, rows, edges, scales):
        assert g.tolist() == histogram(row.astype(np.float64) * sc, e).counts.tolist()
    assert int(got[0].sum()) == 5000 - 3


def test_cosine_from_sums_equals_the_gram_definition():
    """cosine_from_sums (O(k·features), what the probe and the watch use) equals the mean of
    G_ij/√(G_ii·G_jj) over i ≠ j of the Gram matrix, zero rows left out; all-zero rows are
    collapsed (1.0), a non-finite row gives NaN."""
    from initlab.diagnostics._stats import cosine_from_sums, mean_pairwise_cosine

    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 30)) + 0.3
    x[3] = 0.0
    g = x @ x.T
    n = np.sqrt(np.diag(g))
    keep = n > 0
    u = g[np.ix_(keep, keep)] / np.outer(n[keep], n[keep])
    want = (u.sum() - np.trace(u)) / (9 * 8)
    assert mean_pairwise_cosine(x) == pytest.approx(want, rel=1e-12)
    assert mean_pairwise_cosine(np.zeros((4, 4))) == 1.0
    assert cosine_from_sums(np.array([0.0, 2.0, 0.0]), 1.0) == 1.0  # one row with a norm: collapsed
    x[5, 2] = np.inf
    assert math.isnan(mean_pairwise_cosine(x))
    assert math.isnan(mean_pairwise_cosine(x[:1]))


def test_hooks_only_during_recorded_forwards():
    """Steps that are not recorded run with the root's two hooks only."""
    model = _mlp(None)
    before = hook_count(model)
    seen = []
    with watch(model, every=3) as w:
        for s in range(4):
            model(torch.ones(8, 10))
            seen.append(hook_count(model) - before)
    assert seen == [2 + 4, 2, 2, 2 + 4]  # step 0 and 3: weight-gradient hooks of the 4 Linear layers
    assert [r.step for r in w.steps] == [0, 3]
    assert hook_count(model) == before


def test_bad_capture():
    with pytest.raises(ValueError, match="'capture'.*modules"):
        watch(_mlp(None), capture="tensors")


def test_module_capture_notes_the_functional_ops_it_does_not_see():
    from torch.overrides import _get_current_function_mode_stack

    torch.manual_seed(0)
    xb, yb = _batch()
    w = _one_step(_Residual(), xb, yb)
    assert len(w.notes) == 1
    assert "relu, residual add, tanh" in w.notes[0] and 'capture="ops"' in w.notes[0]
    assert "note: forward() runs relu" in str(w) and w.to_dict()["notes"] == w.notes
    assert _get_current_function_mode_stack() == []
    # a stack of modules (the benchmark's MLP) has nothing unseen; nor has the op-level capture
    assert _one_step(_mlp(None, d_in=12, depth=2), xb, yb[:, :1]).notes == []
    assert _one_step(_Residual(), xb, yb, capture="ops").notes == []


def test_inplace_activations_step_zero_equals_probe():
    """ReLU(inplace=True) merged into a Linear, and after a BatchNorm (its input read by a
    pre-hook before it writes, as the probe reads in-place ops), then an activation taking an
    activation's output: rows and statistics equal the probe's; the BatchNorm row's near-zero
    fraction is of its output before the ReLU overwrote it."""
    import copy

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 40), torch.nn.ReLU(inplace=True), torch.nn.Linear(40, 30),
                                torch.nn.BatchNorm1d(30), torch.nn.ReLU(inplace=True), torch.nn.Tanh(),
                                torch.nn.Linear(30, 5))
    xb, yb = _batch()
    ref = initlab.probe(model, xb, y=yb, loss="mse", rng=0, mode="train")
    with torch.no_grad():
        bn_out = copy.deepcopy(model)[:4](torch.from_numpy(xb)).numpy()
    w = _one_step(model, xb, yb)
    _assert_rows_equal(w.steps[0].layers, ref.layers)
    assert [s.kind for s in ref.layers] == ["linear", "linear", "norm", "activation", "activation", "linear"]
    assert w.steps[0].near_zero["3"] == float(np.mean(np.abs(bn_out) <= 0.05))


class _Loop(torch.nn.Module):
    """The same Linear applied ``depth`` times (a depth that may change between steps), its
    output then written in place by a functional op the watch does not see."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(12, 32)
        self.fc = torch.nn.Linear(32, 32)
        self.out = torch.nn.Linear(32, 5)
        self.depth = 2

    def forward(self, x):
        h = self.inp(x)
        for _ in range(self.depth):
            h = self.fc(h)
            h.mul_(0.5)  # in place, after the hook has read h
        return self.out(h)


def test_recorded_tensors_are_copies_and_groups_grow_with_the_step():
    """The watch copies each recorded tensor when its hook runs: an in-place write later in the
    forward does not change the row (its mean is the module's own output's). A step with more
    tensors of one shape than the steps before (the same Linear called 2, then 4 times) gets a
    row for each call, each with its own statistics, equal to a fresh watch of that step."""
    torch.manual_seed(0)
    model = _Loop()
    xb, _ = _batch()
    x = torch.from_numpy(xb)
    with torch.no_grad():
        h = model.inp(x)
        want = []
        for _ in range(4):
            h = model.fc(h)
            want.append(h.double().mean().item())
            h = h * 0.5
    stepped = []
    with watch(model, every=1) as w:
        for depth in (2, 4):
            model.depth = depth
            model(x).sum().backward()
            stepped.append(depth)
    rows = {s.step: {st.name: st for st in s.layers} for s in w.steps}
    assert sorted(rows[0]) == ["fc", "fc.1", "inp", "out"]
    assert sorted(rows[1]) == ["fc", "fc.1", "fc.2", "fc.3", "inp", "out"]
    for step, depth in ((0, 2), (1, 4)):
        for k in range(depth):
            name = "fc" if k == 0 else f"fc.{k}"
            assert rows[step][name].mean == pytest.approx(want[k], rel=1e-5, abs=1e-7), (step, name)
    fresh = watch(model, every=1)
    with fresh:
        model(x).sum().backward()
    for st in fresh.steps[0].layers:
        for key in ("mean", "std", "min", "max", "cosine", "grad_std"):
            assert getattr(rows[1][st.name], key) == pytest.approx(getattr(st, key), rel=1e-6), (st.name, key)


def test_device_paths_equal_the_cpu_paths():
    """The paths taken off the CPU (no GPU here): counting by scatter-add equals bincount, and
    ‖ΔW‖ formed in new tensors (_update_norms) equals ‖ΔW‖ formed in the snapshot buffers."""
    from initlab.diagnostics._watch import _count, _Deferred, _update_norms, _update_norms_in_place

    idx = torch.from_numpy(np.random.default_rng(0).integers(0, 50, 3000))
    assert _count(idx, 53, scatter=True).tolist() == _count(idx, 53, scatter=False).tolist()
    g = torch.Generator().manual_seed(0)
    ws = [torch.randn(30, 20, generator=g), torch.randn(7, generator=g, dtype=torch.float64)]
    before = [w + 1e-3 * torch.randn(w.shape, generator=g, dtype=w.dtype) for w in ws]
    snaps = {i: (w, b.clone()) for i, (w, b) in enumerate(zip(ws, before))}
    d = _Deferred()
    refs = _update_norms(d, snaps)
    d.resolve()
    in_place = _update_norms_in_place(snaps)
    for i, (w, b) in enumerate(zip(ws, before)):
        want = float(torch.linalg.vector_norm((w - b).double()))
        assert float(d[refs[i]][0]) == pytest.approx(want, rel=1e-5)
        assert in_place[i] == pytest.approx(want, rel=1e-5)


def test_stacked_copies_are_released_when_the_block_ends(monkeypatch):
    """The stacks of recorded tensors live while the block runs, not after it: the Watch keeps
    numbers, not a copy of the last step's activations. (The kernels keep no stack at all.)"""
    import gc
    import weakref

    monkeypatch.setattr(_kernels, "load", lambda: None)
    model = _mlp(None)
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    with watch(model, every=1) as w:
        _train(model, opt, x, y, 3, w)
        bufs = [weakref.ref(g.buf) for g in w._hooks.groups.values() if g.buf is not None]
        assert bufs
    gc.collect()
    assert all(b() is None for b in bufs)
    assert [r.step for r in w.steps] == [0, 1, 2] and w.steps[2].layers[0].std > 0


def _encoder(seed: int = 0, layers: int = 2):
    """A Linear, a TransformerEncoder (nn.MultiheadAttention inside; dropout off, so the probe's
    "init" mode runs the same forward) and a linear readout."""
    torch.manual_seed(seed)
    enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True),
                                      layers, enable_nested_tensor=False)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), enc, torch.nn.Flatten(), torch.nn.Linear(16 * 5, 3))


def test_attention_out_proj_row_equals_the_probes():
    """nn.MultiheadAttention never calls its out_proj module (it uses the weight): the watch records
    the attention's output as the probe's ``<path>.out_proj`` row, with out_proj's weight, fans,
    gradients and update size; the probe's rows inside the attention are named in the note."""
    model = _encoder()
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((12, 5, 8)).astype(np.float32)
    yb = rng.standard_normal((12, 3)).astype(np.float32)
    ref = {r.name: r for r in initlab.probe(model, xb, y=yb, loss="mse", rng=0).layers}
    w = _one_step(model, xb, yb)
    got = {r.name: r for r in w.steps[0].layers}
    names = [f"1.layers.{i}.self_attn.out_proj" for i in range(2)]
    for n in names:
        a, b = got[n], ref[n]
        assert a.module == b.module == "MultiheadAttention" and a.kind == "linear"
        for k in ("mean", "std", "min", "max", "weight_std", "grad_std", "grad_rms", "grad_weight_std",
                  "grad_weight_ratio", "fan_in", "fan_out"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-5, abs=1e-9), (n, k)
        # plain SGD: ‖ΔW‖/‖W‖ = lr·‖∇W‖/‖W‖ of out_proj's weight
        assert w.steps[0].update_ratio[n] == pytest.approx(0.01 * a.grad_weight_ratio, rel=1e-4)
    assert [n for n in got if "out_proj" in n] == names  # one row each, in forward order
    assert any("q/k/v projections and attention" in note for note in w.notes)


def test_attention_as_the_whole_model():
    """The watched model is itself an nn.MultiheadAttention: its output (a tuple) gives its row."""
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    x = torch.randn(6, 4, 8)
    opt = torch.optim.SGD(mha.parameters(), lr=0.01)
    with watch(mha, every=1) as w:
        for _ in range(2):
            opt.zero_grad()
            out, _ = mha(x, x, x)
            loss = (out ** 2).mean()
            loss.backward()
            opt.step()
            w.log_loss(loss)
    assert [[r.name for r in s.layers] for s in w.steps] == [["out_proj"], ["out_proj"]]
    row = w.steps[0].layers[0]
    assert row.std == pytest.approx(float(mha(x, x, x)[0].detach().std(unbiased=False)), rel=0.2)  # (weights moved)
    assert row.grad_weight_ratio > 0 and w.steps[0].update_ratio["out_proj"] > 0


@pytest.mark.parametrize("every", [1, 3])
def test_attention_training_is_bitwise_the_same(every):
    rng = np.random.default_rng(4)
    xs = torch.from_numpy(rng.standard_normal((6, 8, 5, 8)).astype(np.float32))
    ys = torch.from_numpy(rng.standard_normal((6, 8, 3)).astype(np.float32))
    states = []
    for watched in (False, True):
        model = _encoder(seed=5)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        w = watch(model, every=every) if watched else None
        with (w if w is not None else contextlib.nullcontext()):
            for s in range(6):
                opt.zero_grad()
                loss = ((model(xs[s]) - ys[s]) ** 2).mean()
                loss.backward()
                opt.step()
                if w is not None:
                    w.log_loss(loss)
        states.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*states))
    assert len(w.steps) == len(range(0, 6, every))


def test_ops_capture_notes_the_attention_it_runs_as_one_operation():
    rng = np.random.default_rng(3)
    w = _one_step(_encoder(layers=1), rng.standard_normal((12, 5, 8)).astype(np.float32),
                  rng.standard_normal((12, 3)).astype(np.float32), capture="ops")
    assert len(w.notes) == 1
    assert "in_proj_weight" in w.notes[0] and "runs as one operation" in w.notes[0]
    assert "1.layers.0.self_attn.out_proj" not in w.layer_names
