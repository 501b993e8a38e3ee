"""The watch's traced-and-replayed recorded steps (initlab.diagnostics._watch_plan): a watch whose
steps are replayed from a plan holds exactly what the general path records (the same rows, number
for number), also when a step departs from the plan (a batch of another size, a branch of the
forward taken on some steps, a backward not run), and the training is bitwise the same."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from initlab.diagnostics import _kernels, watch  # noqa: E402
from _torch_models import chunked  # noqa: E402

pytestmark = pytest.mark.skipif(_kernels.load() is None, reason="the replay is the numba kernels' path")


class _Mixed(torch.nn.Module):
    """Linear → ReLU (merged rows), Linear → in-place ReLU, Linear → Tanh (saturation counted in
    the hook), LayerNorm → GELU on [B, T, D], and an optional branch taken on some steps only."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 16)
        self.act1 = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(16, 16)
        self.act2 = torch.nn.ReLU(inplace=True)
        self.fc3 = torch.nn.Linear(16, 16)
        self.act3 = torch.nn.Tanh()
        self.norm = torch.nn.LayerNorm(16)
        self.gelu = torch.nn.GELU()
        self.extra = torch.nn.Linear(16, 16)
        self.out = torch.nn.Linear(16 * 5, 3)
        self.branch = False

    def forward(self, x):  # x [B, 5, 6]
        h = self.act3(self.fc3(self.act2(self.fc2(self.act1(self.fc1(x))))))
        h = self.gelu(self.norm(h))
        if self.branch:
            h = self.extra(h)
        return self.out(h.reshape(h.shape[0], -1))


class _Cnn(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                  nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Sigmoid(), nn.Flatten(),
                                  nn.Linear(8 * 6 * 6, 3))

    def forward(self, x):
        return self.body(x)


def _train(build, xs, ys, every, *, replay, branch_at=(), backward_skip=(), seed=0):
    """Train a fresh model (torch seed ``seed``) on the batches ``xs``/``ys`` under a watch;
    returns (watch, parameters after training)."""
    torch.manual_seed(seed)
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    w = watch(model, every=every)
    w._hooks.replay = replay
    with w:
        for s, (xb, yb) in enumerate(zip(xs, ys)):
            if hasattr(model, "branch"):
                model.branch = s in branch_at
            opt.zero_grad()
            loss = ((model(xb) - yb) ** 2).mean()
            if s not in backward_skip:
                loss.backward()
                opt.step()
            w.log_loss(loss)
    return w, [p.detach().clone() for p in model.parameters()]


def _same(a, b):
    """The two watches hold the same record: every row field, histogram, verdict and note."""
    da = json.dumps(a.to_dict(), sort_keys=True, default=str)
    db = json.dumps(b.to_dict(), sort_keys=True, default=str)
    assert da == db
    assert [str(v) for v in a.verdicts] == [str(v) for v in b.verdicts]
    assert a.notes == b.notes


def _batches(shape, sizes, seed=0):
    rng = np.random.default_rng(seed)
    xs = [torch.from_numpy(rng.standard_normal((n, *shape)).astype(np.float32)) for n in sizes]
    ys = [torch.from_numpy(rng.standard_normal((n, 3)).astype(np.float32)) for n in sizes]
    return xs, ys


@pytest.mark.parametrize("every", [1, 3])
def test_replayed_steps_equal_the_general_path(every):
    xs, ys = _batches((5, 6), [32] * 12)
    wr, pr = _train(_Mixed, xs, ys, every, replay=True)
    wg, pg = _train(_Mixed, xs, ys, every, replay=False)
    assert wr._hooks.replayed == len(range(0, 12, every)) - 2  # the first step, then the traced one
    assert wr._hooks.departures == 0 and wg._hooks.replayed == 0
    _same(wr, wg)
    for a, b in zip(pr, pg):
        assert torch.equal(a, b)


def test_replayed_cnn_equals_the_general_path():
    """Conv outputs ([batch, channels, positions] kernels), BatchNorm, an in-place ReLU after it
    (its pre-hook), a depthwise conv and a sigmoid (saturation)."""
    xs, ys = _batches((3, 6, 6), [16] * 8, seed=1)
    wr, _ = _train(_Cnn, xs, ys, 1, replay=True)
    wg, _ = _train(_Cnn, xs, ys, 1, replay=False)
    assert wr._hooks.replayed == 6
    _same(wr, wg)


def _encoder():
    nn = torch.nn
    return nn.Sequential(nn.Linear(6, 16), nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False),
        nn.Flatten(), nn.Linear(16 * 5, 3))


@pytest.mark.parametrize("every", [1, 3])
def test_replayed_attention_equals_the_general_path(every):
    """nn.MultiheadAttention's row (its out_proj's, from a hook on the attention, which returns a
    tuple) is replayed like a Linear's."""
    xs, ys = _batches((5, 6), [16] * 9, seed=2)
    wr, pr = _train(_encoder, xs, ys, every, replay=True)
    wg, pg = _train(_encoder, xs, ys, every, replay=False)
    assert wr._hooks.replayed == len(range(0, 9, every)) - 2 and wr._hooks.departures == 0
    assert "1.layers.1.self_attn.out_proj" in wr.layer_names
    _same(wr, wg)
    for a, b in zip(pr, pg):
        assert torch.equal(a, b)


def test_training_is_bitwise_the_same_with_a_replaying_watch():
    xs, ys = _batches((5, 6), [32] * 8)
    _, pw = _train(_Mixed, xs, ys, 1, replay=True)
    torch.manual_seed(0)
    model = _Mixed()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for xb, yb in zip(xs, ys):
        opt.zero_grad()
        ((model(xb) - yb) ** 2).mean().backward()
        opt.step()
    for a, b in zip(pw, model.parameters()):
        assert torch.equal(a, b.detach())


def test_a_batch_of_another_size_is_taken_by_the_general_path():
    """The last batch of an epoch is smaller: that step starts unlike the plan (its input), is
    recorded by the general path, and the replay resumes from a new trace."""
    xs, ys = _batches((5, 6), [32, 32, 32, 32, 32, 7, 32, 32, 32, 32, 7, 32])
    wr, _ = _train(_Mixed, xs, ys, 1, replay=True)
    wg, _ = _train(_Mixed, xs, ys, 1, replay=False)
    assert wr._hooks.replayed > 0
    _same(wr, wg)
    assert [s.batch for s in wr.steps] == [int(x.shape[0]) for x in xs]


def test_a_branch_taken_on_some_steps_departs_mid_forward():
    """A module run on steps 5 and 9 only: the replayed step meets a hook call the plan does not
    have in the middle of its forward pass and goes on by the general path from there (the rows
    before it made from the numbers taken so far); then a module the plan has is missing at the
    end of the forward (step 6 after a plan traced with the branch)."""
    xs, ys = _batches((5, 6), [32] * 12)
    wr, _ = _train(_Mixed, xs, ys, 1, replay=True, branch_at=(5, 9))
    wg, _ = _train(_Mixed, xs, ys, 1, replay=False, branch_at=(5, 9))
    assert wr._hooks.departures >= 1
    _same(wr, wg)
    names5 = [r.name for r in wr.steps[5].layers]
    assert "extra" in names5 and "extra" not in [r.name for r in wr.steps[4].layers]


def test_a_recorded_step_without_backward_is_finished_by_the_general_path():
    xs, ys = _batches((5, 6), [32] * 8)
    wr, _ = _train(_Mixed, xs, ys, 1, replay=True, backward_skip=(4,))
    wg, _ = _train(_Mixed, xs, ys, 1, replay=False, backward_skip=(4,))
    _same(wr, wg)
    assert not wr.steps[4].backward and wr.steps[5].backward


def test_a_failing_kernel_in_a_replayed_step(monkeypatch):
    """A replay kernel that fails mid-step: the note, and the step finished by the general path
    (by torch operations) with the same rows as a watch by torch operations."""
    import types

    K = _kernels.load()
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] > 3:
            raise TypeError("no matching definition")
        return K.fw_slot(*args)

    broken = types.SimpleNamespace(**{n: getattr(K, n) for n in dir(K) if not n.startswith("_")})
    broken.fw_slot = flaky
    xs, ys = _batches((5, 6), [32] * 8)
    monkeypatch.setattr(_kernels, "load", lambda: broken)
    wr, pr = _train(_Mixed, xs, ys, 1, replay=True)
    assert any("numba kernels failed" in n for n in wr.notes)
    monkeypatch.setattr(_kernels, "load", lambda: None)
    wt, pt = _train(_Mixed, xs, ys, 1, replay=True)
    for a, b in zip(pr, pt):
        assert torch.equal(a, b)
    for sa, sb in zip(wr.steps, wt.steps):
        assert [r.name for r in sa.layers] == [r.name for r in sb.layers]
        for a, b in zip(sa.layers, sb.layers):
            for key in ("mean", "std", "grad_std", "weight_std", "cosine"):
                va, vb = getattr(a, key), getattr(b, key)
                # (float32 sums on the torch path: a mean of about 0 agrees to a millionth of the std)
                tol = 1e-6 * max(abs(b.std), abs(b.grad_std or 0.0), 1e-30)
                assert (va is None and vb is None) or va == pytest.approx(vb, rel=1e-5, abs=tol), (sa.step, a.name, key)


def test_kept_steps_are_not_visited_by_the_garbage_collector():
    """A replayed step is kept as numbers (a tuple of arrays and numbers) until the Watch is read:
    the objects the collector tracks do not grow with the steps recorded."""
    xs, ys = _batches((5, 6), [32] * 4)
    torch.manual_seed(0)
    model = _Mixed()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with watch(model, every=1) as w:
        def run(n):
            for s in range(n):
                opt.zero_grad()
                loss = ((model(xs[s % 4]) - ys[s % 4]) ** 2).mean()
                loss.backward()
                opt.step()
                w.log_loss(loss)
        run(10)
        gc.collect()
        before = len(gc.get_objects())
        run(50)
        gc.collect()
        gc.collect()
        grown = len(gc.get_objects()) - before
    assert w._hooks.replayed >= 50
    assert grown < 50, grown  # (the general path keeps about 100 tracked objects a step: 5000)
    assert len(w.steps) == 60


def test_alternating_batch_sizes_keep_the_plan():
    """Batches of 32 and 20 in turn: a step of the other size is recorded by the general path and
    the plan is kept for the next one (it is not traced anew at every step)."""
    sizes = [32, 20] * 7
    xs, ys = _batches((5, 6), sizes)
    wr, _ = _train(_Mixed, xs, ys, 1, replay=True)
    wg, _ = _train(_Mixed, xs, ys, 1, replay=False)
    _same(wr, wg)
    assert wr._hooks.replayed >= 4 and wr._hooks.traces <= 2


def test_a_second_backward_through_the_graph():
    """backward(retain_graph=True) twice on a recorded step: the general path keeps the second
    backward's deltas; a replayed step hands itself back to it and keeps the same."""
    xs, ys = _batches((5, 6), [32] * 8)

    def run(replay):
        torch.manual_seed(0)
        model = _Mixed()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        w = watch(model, every=1)
        w._hooks.replay = replay
        with w:
            for s, (xb, yb) in enumerate(zip(xs, ys)):
                opt.zero_grad()
                loss = ((model(xb) - yb) ** 2).mean()
                loss.backward(retain_graph=True)
                if s in (4, 6):
                    (2 * loss).backward()
                opt.step()
                w.log_loss(loss)
        return w

    wr, wg = run(True), run(False)
    _same(wr, wg)
    assert wr._hooks.departures >= 1


class _NormSkip(torch.nn.Module):
    """LayerNorm → [Linear, on some steps] → GELU: a step departing at the activation whose input
    is the norm row's output (the general path then bins that output's histogram again)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 16)
        self.norm = torch.nn.LayerNorm(16)
        self.extra = torch.nn.Linear(16, 16)
        self.gelu = torch.nn.GELU()
        self.out = torch.nn.Linear(16 * 5, 3)
        self.branch = False

    def forward(self, x):
        h = self.norm(self.fc(x))
        if self.branch:
            h = self.extra(h)
        h = self.gelu(h)
        return self.out(h.reshape(h.shape[0], -1))


def test_a_departure_at_an_activation_after_a_norm():
    xs, ys = _batches((5, 6), [32] * 10)
    wr, pr = _train(_NormSkip, xs, ys, 1, replay=True, branch_at=(4, 7))
    wg, pg = _train(_NormSkip, xs, ys, 1, replay=False, branch_at=(4, 7))
    assert wr._hooks.departures >= 1
    _same(wr, wg)
    for s_r, s_g in zip(wr.steps, wg.steps):  # (to_dict has no histograms)
        for a, b in zip(s_r.layers, s_g.layers):
            for key in ("hist", "preact_hist", "grad_hist"):
                ha, hb = getattr(a, key), getattr(b, key)
                assert (ha is None) == (hb is None), (s_r.step, a.name, key)
                if ha is not None:
                    np.testing.assert_array_equal(ha.counts, hb.counts)
                    assert ha.n_sampled == hb.n_sampled


def test_a_parametrized_weight_is_not_evaluated():
    """spectral_norm's power iteration runs when its weight is read in training mode (it updates
    the module's buffers): the watch does not read it, so the training is bitwise the same."""
    from torch.nn.utils.parametrizations import spectral_norm

    x = torch.randn(32, 10, generator=torch.Generator().manual_seed(1))

    def run(watched, replay=True):
        torch.manual_seed(0)
        model = torch.nn.Sequential(spectral_norm(torch.nn.Linear(10, 16)), torch.nn.Tanh(), torch.nn.Linear(16, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        w = watch(model, every=1) if watched else None
        if w is not None:
            w._hooks.replay = replay
            w.__enter__()
        for _ in range(6):
            opt.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            opt.step()
        if w is not None:
            w.__exit__(None, None, None)
        return {k: v.clone() for k, v in model.state_dict().items()}, w

    plain, _ = run(False)
    for replay in (True, False):
        watched, w = run(True, replay)
        assert all(torch.equal(plain[k], watched[k]) for k in plain)
        assert w.steps[-1].layers[0].weight_std is None and w.steps[-1].layers[-1].weight_std is not None


class _TanhFirst(torch.nn.Module):
    """Tanh on the input (an infinite input value stays finite after it: tanh(inf) = 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.t, self.fc, self.r, self.o = torch.nn.Tanh(), torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.o(self.r(self.fc(self.t(x)))).sum(1)


def test_a_replayed_histogram_counts_its_own_finite_values():
    """The traced step had an infinite input value (the Tanh row's pre-activation histogram binned
    the finite ones); the later, finite steps' histograms count their whole sample, not the
    traced step's count."""
    xs, ys = _batches((5, 6), [32] * 6)
    xs[1] = xs[1].clone()
    xs[1][0, 0, 0] = float("inf")
    wr, _ = _train(_TanhFirst, xs, ys, 1, replay=True)
    wg, _ = _train(_TanhFirst, xs, ys, 1, replay=False)
    assert wr._hooks.replayed > 0
    ns = [[(r.name, None if r.preact_hist is None else r.preact_hist.n_sampled) for r in s.layers] for s in wr.steps]
    assert ns == [[(r.name, None if r.preact_hist is None else r.preact_hist.n_sampled) for r in s.layers]
                  for s in wg.steps]
    assert ns[1][0][1] == ns[2][0][1] - 1  # (the traced step binned one value fewer)


class _Reweight(_Mixed):
    """A model whose forward() replaces the output layer's weight on some steps."""

    def forward(self, x):
        if self.branch:
            self.out.weight = torch.nn.Parameter(self.out.weight.detach() * 0.5)
        return super().forward(x)


def test_a_weight_replaced_inside_forward():
    xs, ys = _batches((5, 6), [32] * 8)
    wr, _ = _train(_Reweight, xs, ys, 1, replay=True, branch_at=(4,))
    wg, _ = _train(_Reweight, xs, ys, 1, replay=False, branch_at=(4,))
    _same(wr, wg)
    out4 = [r for r in wr.steps[4].layers if r.name == "out"][0]
    assert out4.weight_std is None and wr.steps[4].update_ratio.get("out") is None


@pytest.mark.parametrize("every", [1, 3])
def test_a_gradient_that_is_none_records_no_delta(every):
    """No exception escapes into the loop's backward; the unused ReLU's row has no delta at any
    step; replay on and off record the same; training is bitwise that of no watch."""
    xs, ys = _batches((6,), [16] * 7, seed=2)
    wr, pr = _train(chunked, xs, ys, every, replay=True)
    wg, pg = _train(chunked, xs, ys, every, replay=False)
    _same(wr, wg)
    rows = [r for r in wr.rows() if r["name"] == "act"]
    assert [r["step"] for r in rows] == list(range(0, 7, every))
    assert all(r["grad_std"] is None for r in rows)
    assert all(r["grad_std"] is not None for r in wr.rows() if r["name"] == "out")
    model = chunked()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for xb, yb in zip(xs, ys):
        opt.zero_grad()
        ((model(xb) - yb) ** 2).mean().backward()
        opt.step()
    for a, b, c in zip(pr, pg, model.parameters()):
        assert torch.equal(a, c.detach()) and torch.equal(b, c.detach())


def test_replayed_steps_across_several_arenas(monkeypatch):
    """The replayed steps' numbers are rows of arrays made a few steps at a time: with three rows
    an array, ten replayed steps take four arrays and each keeps its own numbers (the record is
    the general path's)."""
    from initlab.diagnostics import _watch_plan as wp

    monkeypatch.setattr(wp, "ARENA", 3)
    xs, ys = _batches((5, 6), [32] * 12, seed=3)
    wr, pr = _train(_Mixed, xs, ys, 1, replay=True)
    wg, pg = _train(_Mixed, xs, ys, 1, replay=False)
    assert wr._hooks.replayed == 10
    kept = [k for k in wr._lazy if isinstance(k, tuple) and k and k[0] == "replay"]
    assert len(kept) == 10 and len({id(k[4].base) for k in kept}) == 4
    _same(wr, wg)
    for a, b in zip(pr, pg):
        assert torch.equal(a, b)
