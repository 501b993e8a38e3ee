"""The replayed steps' hot path (initlab.diagnostics._watch_plan): the gradient hook a replayed
hook call registers (``_add_grad_hook``) behaves as ``Tensor.register_hook`` in every case the
autograd engine distinguishes (an in-place write after the registration, one output of a
multi-output node, a second backward through a kept graph, a leaf, a tensor not requiring a
gradient, a tensor subclass, a torch function mode), and the field-by-field signature check
(``_same_signature``) agrees with comparing ``signature()`` tuples."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from initlab.diagnostics import _watch_plan as wp  # noqa: E402
from _torch_models import hook_count  # noqa: E402


def _run(scenario, register):
    """Run ``scenario`` with gradient hooks registered by ``register``; returns what the hooks
    saw (in call order) and the leaves' gradients."""
    seen = []

    def hook(name):
        def fn(g):
            seen.append((name, None if g is None else g.detach().clone()))
        return fn

    grads = scenario(lambda t, name: register(t, hook(name)))
    return seen, grads


def _in_place_after(reg):
    torch.manual_seed(0)
    a = torch.randn(4, 3, requires_grad=True)
    y = a * 2.0
    reg(y, "y")
    y.mul_(3.0)  # written in place after the registration: the hook sees the gradient of y before the write
    reg(y, "y_after")
    (y.sin() * torch.arange(3.0)).sum().backward()
    return [a.grad.clone()]


def _multi_output(reg):
    torch.manual_seed(1)
    a = torch.randn(6, 4, requires_grad=True)
    p, q, r = (a * 1.5).split(2)  # one node, three outputs (output_nr 0, 1, 2)
    reg(q, "q")
    reg(r, "r")
    (p.sum() + (q ** 2).sum() * 3.0 + r.exp().sum()).backward()
    return [a.grad.clone()]


def _multi_output_unused(reg):
    torch.manual_seed(2)
    a = torch.randn(6, 4, requires_grad=True)
    p, q = (a * 1.5).split(3)
    reg(q, "q")  # q does not reach the loss: its hook is called with None
    p.sum().backward()
    return [a.grad.clone()]


def _retain_graph(reg):
    torch.manual_seed(3)
    a = torch.randn(5, requires_grad=True)
    y = a.tanh()
    reg(y, "y")
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    return [a.grad.clone()]


def _leaf(reg):
    torch.manual_seed(4)
    a = torch.randn(5, requires_grad=True)
    reg(a, "a")
    (a * a).sum().backward()
    return [a.grad.clone()]


def _two_hooks_one_tensor(reg):
    torch.manual_seed(5)
    a = torch.randn(3, 2, requires_grad=True)
    y = a @ torch.ones(2, 2)
    reg(y, "first")
    y.register_hook(lambda g: g * 2.0)  # a user's hook after ours: it changes what flows on
    reg(y, "second")
    y.pow(2).sum().backward()
    return [a.grad.clone()]


@pytest.mark.parametrize("scenario", [_in_place_after, _multi_output, _multi_output_unused, _retain_graph, _leaf,
                                      _two_hooks_one_tensor])
def test_the_fast_registration_is_register_hook(scenario):
    seen_std, grads_std = _run(scenario, lambda t, fn: t.register_hook(fn))
    seen_fast, grads_fast = _run(scenario, wp._add_grad_hook)
    assert [n for n, _ in seen_fast] == [n for n, _ in seen_std]
    assert all((a is None and b is None) or torch.equal(a, b) for (_, a), (_, b) in zip(seen_fast, seen_std))
    assert all(torch.equal(a, b) for a, b in zip(grads_fast, grads_std))
    assert seen_std


def test_a_tensor_not_requiring_grad_raises_as_register_hook():
    t = torch.ones(3)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        t.register_hook(lambda g: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        wp._add_grad_hook(t, lambda g: None)


def test_a_subclass_and_a_function_mode_go_through_register_hook():
    from torch.overrides import TorchFunctionMode

    calls = []

    class Sub(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func is torch.Tensor.register_hook:
                calls.append("sub")
            return super().__torch_function__(func, types, args, kwargs or {})

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is torch.Tensor.register_hook:
                calls.append("mode")
            return func(*args, **(kwargs or {}))

    a = torch.randn(3, requires_grad=True)
    s = (a * 2.0).as_subclass(Sub)
    wp._add_grad_hook(s, lambda g: None)
    y = a * 3.0
    with Mode():
        wp._add_grad_hook(y, lambda g: None)
    assert calls == ["sub", "mode"]


def test_the_hook_goes_with_the_graph():
    """The registration keeps no handle: the hook is freed with the tensor (a replayed step's hook
    lives as long as its graph)."""
    import weakref

    class Fn:
        def __call__(self, g):
            pass

    a = torch.randn(3, requires_grad=True)
    y = a * 2.0
    fn = Fn()
    ref = weakref.ref(fn)
    wp._add_grad_hook(y, fn)
    del fn, y
    assert ref() is None


def _tensors():
    a = torch.randn(4, 3, requires_grad=True)
    b = a * 2.0
    c = b.relu()
    d = torch.randn(4, 3)
    e = torch.randn(4, 3, dtype=torch.float64)
    f = torch.randn(2, 3)
    return a, b, c, d, e, f


def test_the_signature_check_is_the_signature_comparison():
    a, b, c, d, e, f = _tensors()
    outs = [None, 1.5, a, b, c, d, e, f]
    ins = [None, a, b, c, d, e, f]
    lasts = [(None, math.nan), (b, wp._version(b)), (b, wp._version(b) + 1), (c, math.nan), (d, wp._version(d))]
    sigs = {wp.signature(o, x, last) for o in outs for x in ins for last in lasts}
    sigs |= {(wp.signature(b, b, (b, wp._version(b)))[0], wp.signature(c, b, (b, wp._version(b)))[1])}
    n = 0
    for sig in sigs:
        for o in outs:
            for x in ins:
                for last in lasts:
                    assert wp._same_signature(sig, o, x, last) == (wp.signature(o, x, last) == sig)
                    n += 1
    assert n > 1000
    # an in-place write since: the input is no longer the last row's output as it was
    last = (b, wp._version(b))
    sig = wp.signature(c, b, last)
    assert wp._same_signature(sig, c, b, last)
    with torch.no_grad():
        b.mul_(1.0)
    assert not wp._same_signature(sig, c, b, last)


def _diverging_run(replay: bool, every: int):
    """A ReLU MLP trained with a learning rate that sends its weights to inf and NaN within a
    few steps, under a watch (replayed or by the general path)."""
    import numpy as np

    from initlab.diagnostics import watch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    rng = np.random.default_rng(0)
    w = watch(model, every=every)
    w._hooks.replay = replay
    with w:
        for _ in range(12):
            x = torch.from_numpy(rng.standard_normal((8, 6)).astype(np.float32)) * 100.0
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            w.log_loss(loss)
    return w, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("every", [1, 2])
def test_a_diverging_replayed_run_finishes_as_the_general_path(every):
    """The replayed steps' finish runs outside NumPy's errstate: with weights, statistics and
    update sizes gone to inf/NaN it warns of nothing (warnings are errors here) and records what
    the general path records."""
    import json

    from initlab.diagnostics import _kernels

    wr, pr = _diverging_run(True, every)
    wg, pg = _diverging_run(False, every)
    if _kernels.load() is not None:  # (without numba there is no replay: both runs are the general path)
        assert wr._hooks.replayed >= 2 and wg._hooks.replayed == 0
    assert json.dumps(wr.to_dict(), sort_keys=True, default=str) == json.dumps(wg.to_dict(), sort_keys=True,
                                                                              default=str)
    assert [str(v) for v in wr.verdicts] == [str(v) for v in wg.verdicts]
    assert all(torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()) for a, b in zip(pr, pg))
    updates = [r.get("update_ratio") for r in wr.rows()]
    assert any(u is not None and not math.isfinite(u) for u in updates)


# -- the cheap registrations of a recorded step and the unrecorded steps' log_loss ---------------

def _watched_mlp(seed: int = 0):
    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(inplace=True), nn.Linear(16, 2))


def _steps(model, w, n, seen=None, rng_seed=0):
    import numpy as np

    rng = np.random.default_rng(rng_seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(n):
        x = torch.from_numpy(rng.standard_normal((8, 6)).astype(np.float32))
        opt.zero_grad()
        out = model(x)
        if seen is not None:  # the hooks in the model between the forward and the backward
            seen.append(hook_count(model))
        loss = (out ** 2).mean()
        loss.backward()
        opt.step()
        w.log_loss(loss)
        if seen is not None:
            seen.append(hook_count(model))


@pytest.mark.parametrize("fast", [True, False])
def test_module_and_weight_hooks_of_a_recorded_step_are_taken_out(fast, monkeypatch):
    """every > 1: the watched modules' forward hooks (and the in-place ReLU's pre-hook) are in
    the model during a recorded forward only, the weights' gradient hooks until the step ends;
    put straight into torch's hook dicts (``fast``) or by torch's methods, the same hooks in the
    same order, and nothing left after the block, also after an exception in a recorded forward."""
    import json

    monkeypatch.setattr(wp, "_FAST_HOOKS", [fast])
    model = _watched_mlp()
    plain = hook_count(model)
    w = initlab_watch(model, every=3)
    seen: list[int] = []
    with w:
        _steps(model, w, 10, seen)
    assert hook_count(model) == plain
    root = 2  # the root's pre-hook and forward hook, in every step
    # recorded steps 0, 3, 6, 9: the modules' hooks are out when the forward ends; the three weights'
    # gradient hooks stay until the step ends (the next forward)
    after_fwd, after_step = seen[0::2], seen[1::2]
    for i, (a, b) in enumerate(zip(after_fwd, after_step)):
        assert a == b == (root + 3 if i % 3 == 0 else root), (i, a, b)
    # registered by torch's methods the record is the same
    monkeypatch.setattr(wp, "_FAST_HOOKS", [not fast])
    model2 = _watched_mlp()
    w2 = initlab_watch(model2, every=3)
    with w2:
        _steps(model2, w2, 10)
    assert json.dumps(w.to_dict(), sort_keys=True, default=str) == json.dumps(w2.to_dict(), sort_keys=True,
                                                                              default=str)
    # an exception inside a recorded forward (after the module hooks went in): none left
    model3 = _watched_mlp()

    def boom(mod, inp, out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with initlab_watch(model3, every=3) as w3:
            _steps(model3, w3, 3)  # steps 0-2; step 3 is recorded
            h = model3[4].register_forward_hook(boom)
            try:
                _steps(model3, w3, 1)
            finally:
                h.remove()
    assert hook_count(model3) == plain


def test_the_module_hooks_are_seen_by_torch_as_registered_ones():
    """A hook put in ``module._forward_hooks`` under the reserved key is called by
    ``Module.__call__`` as one registered by ``register_forward_hook`` (after the hooks registered
    before it), and removed by its handle."""
    calls = []
    lin = torch.nn.Linear(3, 2)
    lin.register_forward_hook(lambda m, i, o: calls.append("user"))
    key = wp.reserve_key()
    assert key is not None
    hs = wp.ModuleHooks(key)
    hs.put(lin._forward_hooks, lambda m, i, o: calls.append(("watch", o.shape)))
    hs.put(lin._forward_pre_hooks, lambda m, i: calls.append("pre"))
    lin(torch.ones(4, 3))
    assert calls == ["pre", "user", ("watch", torch.Size([4, 2]))]
    hs.remove()
    hs.remove()  # (again: nothing)
    calls.clear()
    lin(torch.ones(4, 3))
    assert calls == ["user"]
    assert len(lin._forward_hooks) == 1 and not lin._forward_pre_hooks


@pytest.mark.parametrize("param", [False, True])
def test_a_weight_hook_entry_is_register_hook_on_a_leaf(param):
    a = torch.randn(5, requires_grad=True)
    if param:  # (a module's weight: torch's Parameter goes the same way)
        a = torch.nn.Parameter(a.detach())
    seen = []
    h = wp._grad_hook_handle(a, lambda g: seen.append(g.clone()))
    (a * a).sum().backward()
    assert len(seen) == 1 and torch.equal(seen[0], 2 * a.detach())
    assert type(h) is wp.Entry
    h.remove()
    h.remove()
    (a * a).sum().backward()
    assert len(seen) == 1 and not a._backward_hooks


@pytest.mark.parametrize("every", [1, 3])
def test_the_weights_hook_dicts_are_left_as_they_were(every):
    """A weight with no hooks' dict before the watch has none on the steps not recorded (an empty
    dict is still called by the autograd engine at each backward) and none after the block; a
    weight whose dict the user made keeps it, and the user's hook on it runs on every step."""
    model = _watched_mlp()
    calls = []
    h = model[2].weight.register_hook(lambda g: calls.append(1))
    seen = []

    class Look:
        def __call__(self, mod, inp, out):
            seen.append([m.weight._backward_hooks is None for m in (model[0], model[4])])

    look = model[4].register_forward_hook(Look())
    with initlab_watch(model, every=every) as w:
        _steps(model, w, 7)
    look.remove()
    if every > 1:  # (in a recorded forward the watch's hooks are in: steps 0, 3, 6)
        assert seen == [[i % 3 != 0] * 2 for i in range(7)]
    assert model[0].weight._backward_hooks is None and model[4].weight._backward_hooks is None
    assert len(model[2].weight._backward_hooks) == 1 and len(calls) == 7
    h.remove()


@pytest.mark.parametrize("every", [1, 4])
def test_log_loss_checks_its_argument_on_every_step(every):
    """An unrecorded step keeps nothing (the fast path) but a bad loss raises there as on a
    recorded step: a string (TypeError), a tensor of more than one element (ValueError)."""
    model = _watched_mlp()
    with initlab_watch(model, every=every) as w:
        _steps(model, w, 2)  # step 1: recorded only when every = 1
        with pytest.raises(TypeError, match="'loss'"):
            w.log_loss("high")
        with pytest.raises(ValueError, match="'loss'.*scalar"):
            w.log_loss(torch.ones(3))
        with pytest.raises(TypeError, match="'loss'"):
            w.log_loss(None)
        w.log_loss(torch.tensor([0.5]))  # (one element: accepted)
        w.log_loss(1.25)
    assert [s.step for s in w.steps] == list(range(0, 2, every))
    assert w.steps[0].loss is not None


def initlab_watch(model, every):
    from initlab.diagnostics import watch

    return watch(model, every=every)
