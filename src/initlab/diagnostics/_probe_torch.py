"""Probing a ``torch.nn.Module`` with forward hooks and tensor gradient hooks (torch optional).

Every ``Linear`` and ``ConvNd`` module (a "layer": its output is the pre-activation), every
activation module :func:`initlab.activations.from_torch` recognises, and every normalisation
module (BatchNorm, LayerNorm, GroupNorm) is hooked; ``Flatten``, ``Unflatten``, ``Identity`` and
dropout modules are watched as pass-through (shape-only or identity: no row of their own, but
their output counts as seen and their input as consumed). An activation module whose input is the output
of the layer just before it is merged with that layer (pre-activation → activation, as in a
Network); any other activation or norm module gets its own row. Statistics are computed inside the
hooks, on zero-copy NumPy views of the (CPU) tensors, by the same functions as the NumPy probe,
so in-place activations (``ReLU(inplace=True)``) cannot corrupt them. Conv outputs are reduced per
channel (over batch and positions), as Signal Propagation Plots do.

Hooks cannot see what ``forward()`` does with functional calls (``F.relu(x)``, ``x + skip``,
``x.mean((2, 3))``): when a row's output is not the input of a later hooked module (nor the model
output), the result's ``notes`` say so against that (producing) row and, for a layer without an
activation module, its activation is reported as unknown (None, with ``saturated`` and ``dead``
None) rather than guessed linear. A row whose input was not made by a hooked module has
``input_seen`` False; the verdicts do not compare it with the layer before it. Norm rows report
the gradient at their output as ``grad_std`` / ``grad_rms``, and the gradient of their affine
weight as ``grad_weight_std`` / ``grad_weight_ratio``. The theory column is given only for a
plain chain Linear → activation → Linear → …, fed by the model input.

Gradients come from ``torch.autograd.grad`` (the modules' ``.grad`` are left untouched).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab import activations as _activations
from initlab.diagnostics._measure import (
    act_stats,
    backward_stats,
    finish_histograms,
    loss_gradient,
    new_layer,
    preact_stats,
    weight_stats,
)
from initlab.diagnostics._result import LayerStats, ProbeResult
from initlab.diagnostics._stats import HIST_SAMPLE, mean_pairwise_cosine, moments
from initlab.diagnostics._theory import add_theory, empirical_spec

__all__ = ["probe_torch", "is_torch_module", "to_numpy"]


def is_torch_module(obj: Any) -> bool:
    """True for a torch.nn.Module (without importing torch when it is not loaded)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def to_numpy(t: Any) -> np.ndarray:
    """A NumPy view (CPU) or copy (other devices) of a tensor, detached."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.numpy()


@dataclass
class _Entry:
    st: LayerStats
    samples: dict[str, Any]
    module: Any
    kind: str
    out: Any  # the tensor this row ends with
    activation: _activations.Activation | None
    paired: bool = False
    input_seen: bool = True
    pos: int = 0
    grads: dict[str, np.ndarray] = field(default_factory=dict)


def _kinds(module: Any) -> str | None:
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.conv import _ConvNd

    if isinstance(module, (nn.Linear, _ConvNd)):
        return "param"
    if isinstance(module, (_NormBase, nn.LayerNorm, nn.GroupNorm)):
        return "norm"
    from torch.nn.modules.dropout import _DropoutNd

    if isinstance(module, (nn.Flatten, nn.Unflatten, nn.Identity, _DropoutNd)):
        return "pass"
    if len(list(module.children())) == 0 and _activations.from_torch(module) is not None:
        return "act"
    return None


def probe_torch(
    model: Any,
    x: Any,
    *,
    y: Any,
    loss: str,
    backward: bool,
    theory: bool,
    rng: np.random.Generator,
    bins: int,
    hist_sample: int | None = HIST_SAMPLE,
) -> ProbeResult:
    """Statistics of every hooked module of ``model`` on the batch ``x`` (see :func:`initlab.probe`)."""
    import torch

    p0 = next(iter(model.parameters()), None)
    dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
    device = p0.device if p0 is not None else torch.device("cpu")
    xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    xt = xt.to(device=device, dtype=dtype)

    entries: list[_Entry] = []
    known: list[Any] = [xt]  # tensors whose producer the probe saw (kept alive so ids stay unique)
    # (position, tensor): the input of a hooked module; position = index of the row it feeds (the
    # next row for pass-through modules), so a row's output counts as consumed only by a later one
    consumed: list[tuple[int, Any]] = []
    linear = _activations.get("linear")
    handles = []

    def seen(t: Any) -> bool:
        return any(t is k for k in known)

    def grad_hook(entry: _Entry, key: str) -> Any:
        def fn(g: Any) -> None:
            entry.grads[key] = to_numpy(g)
        return fn

    def consume(inp: tuple[Any, ...], pos: int) -> None:
        if inp and isinstance(inp[0], torch.Tensor):
            consumed.append((pos, inp[0]))

    def pass_hook(mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        consume(inp, len(entries))
        if isinstance(out, torch.Tensor):
            known.append(out)

    def param_hook(mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        consume(inp, len(entries))
        e = _Entry(new_layer(len(entries) + 1, names[mod], type(mod).__name__.lower(), linear), {}, mod, "param",
                   out, linear, input_seen=bool(inp) and seen(inp[0]))
        o = to_numpy(out)
        preact_stats(e.st, o, e.samples, hist_sample)
        act_stats(e.st, o, linear, o, e.samples, hist_sample)
        weight_stats(e.st, to_numpy(mod.weight))
        if backward and out.requires_grad:
            out.register_hook(grad_hook(e, "preact"))
        entries.append(e)
        known.append(out)

    def act_hook(mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        act = _activations.from_torch(mod)
        xin = inp[0] if inp else None
        inplace = xin is out
        prev = entries[-1] if entries else None
        if prev is not None and prev.kind == "param" and not prev.paired and xin is prev.out:
            a = to_numpy(out)
            pre = None if inplace else to_numpy(xin)
            prev.samples.pop("preact_moments", None)  # act differs from preact now
            act_stats(prev.st, a, act, pre, prev.samples, hist_sample)
            prev.activation, prev.paired, prev.out = act, True, out
            if backward and out.requires_grad:
                out.register_hook(grad_hook(prev, "act"))
        else:
            consume(inp, len(entries))
            e = _Entry(new_layer(len(entries) + 1, names[mod], "activation", act), {}, mod, "act", out, act,
                       input_seen=xin is not None and seen(xin))
            a = to_numpy(out)
            if not inplace and xin is not None:
                pi = to_numpy(xin)
                preact_stats(e.st, pi, e.samples, hist_sample)
                e.samples.pop("preact_moments", None)
                act_stats(e.st, a, act, pi, e.samples, hist_sample)
                if backward and xin.requires_grad:
                    xin.register_hook(grad_hook(e, "preact"))
            else:
                act_stats(e.st, a, act, None, e.samples, hist_sample)
            if backward and out.requires_grad:
                out.register_hook(grad_hook(e, "act"))
            entries.append(e)
        known.append(out)

    def norm_hook(mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        consume(inp, len(entries))
        e = _Entry(new_layer(len(entries) + 1, names[mod], type(mod).__name__.lower(), None), {}, mod, "norm", out,
                   None, input_seen=bool(inp) and seen(inp[0]))
        act_stats(e.st, to_numpy(out), None, None, e.samples, hist_sample)
        if getattr(mod, "weight", None) is not None:
            weight_stats(e.st, to_numpy(mod.weight))
        if backward and out.requires_grad:
            out.register_hook(grad_hook(e, "act"))
        entries.append(e)
        known.append(out)

    names: dict[Any, str] = {}
    for name, mod in model.named_modules():
        kind = _kinds(mod)
        if kind is None:
            continue
        names[mod] = name or type(mod).__name__
        hook = {"param": param_hook, "act": act_hook, "norm": norm_hook, "pass": pass_hook}[kind]
        handles.append(mod.register_forward_hook(hook))
    if not handles:
        raise ValueError(
            f"The 'model' argument has no module the probe can hook (Linear, ConvNd, activation or norm "
            f"modules); got {type(model).__name__}."
        )
    try:
        if backward:
            out = model(xt)
        else:
            with torch.no_grad():
                out = model(xt)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"The 'model' must return one tensor; it returned {type(out).__name__}.")
        if backward:
            g = loss_gradient(to_numpy(out), y, loss, rng)
            params: list[Any] = []
            for e in entries:
                w = getattr(e.module, "weight", None)
                if (e.kind in ("param", "norm") and isinstance(w, torch.Tensor) and w.requires_grad
                        and not any(w is p for p in params)):
                    params.append(w)
            if not out.requires_grad:
                raise ValueError("The 'model' output does not require grad (frozen parameters?); use backward=False.")
            gt = torch.from_numpy(np.ascontiguousarray(g)).to(device=out.device, dtype=out.dtype)
            wgrads = torch.autograd.grad(out, params, grad_outputs=gt, allow_unused=True) if params else []
            wg = {id(p): gw for p, gw in zip(params, wgrads)}
    finally:
        for h in handles:
            h.remove()

    notes: list[str] = []
    layers = [e.st for e in entries]
    batch = int(xt.shape[0]) if xt.ndim else 1
    unseen_out = [not (e.out is out or any(t is e.out and pos > i for pos, t in consumed))
                  for i, e in enumerate(entries)]
    for i, e in enumerate(entries):
        e.st.input_seen = e.input_seen
        nxt = f"layer {entries[i + 1].st.index} ({entries[i + 1].st.name})" if i + 1 < len(entries) else "the model output"
        if unseen_out[i]:
            if e.kind == "param" and not e.paired:
                e.activation = None
                e.st.activation, e.st.saturated, e.st.dead = None, None, None
                notes.append(f"layer {e.st.index} ({e.st.name}): its output goes through an operation hooks cannot see "
                             f"(a functional activation?) before {nxt}; no activation is reported")
            else:
                notes.append(f"layer {e.st.index} ({e.st.name}): its output goes through an operation hooks cannot see "
                             f"(a functional activation, a residual add, pooling, a reshape?) before {nxt}")
        if not e.input_seen and not (i > 0 and unseen_out[i - 1]):
            notes.append(
                f"layer {e.st.index} ({e.st.name}): its input was made by an operation hooks cannot see "
                "(a reshape, pooling, a residual add, a functional call...); it is not compared with the layer before"
            )
        if backward:
            w = getattr(e.module, "weight", None)
            has_w = e.kind in ("param", "norm") and isinstance(w, torch.Tensor)
            gw = wg.get(id(w)) if has_w else None
            gpre = e.grads.get("act") if e.kind == "norm" else e.grads.get("preact")
            gact = e.grads.get("act", gpre if e.kind == "param" and not e.paired else None)
            backward_stats(e.st, grad_preact=gpre, grad_act=gact,
                           grad_weight=None if gw is None else to_numpy(gw),
                           weight=to_numpy(w) if has_w else None,
                           samples=e.samples, batch=batch, hist_sample=hist_sample)
    finish_histograms(layers, [e.samples for e in entries], [e.activation for e in entries], bins)
    xin = to_numpy(xt)
    mi = moments(xin)
    result = ProbeResult(
        layers=layers, input_mean=mi.mean, input_std=mi.std, input_cosine=mean_pairwise_cosine(xin),
        loss=loss if backward else None, backward=backward, theory=False, notes=notes, model="torch",
        batch=int(xin.shape[0]),
    )
    if theory:
        plain = _plain_stack(entries, xt)
        if plain is None:
            notes.append("theory column only for plain stacks of Linear + activation modules; not computed")
        else:
            sizes, acts, inits, binits = plain
            result.theory = add_theory(layers, sizes, acts, inits, binits, mi.std ** 2 + mi.mean ** 2, notes)
    return result


def _plain_stack(entries: list[_Entry], xt: Any) -> tuple[list[int], list[Any], list[str], list[str]] | None:
    """(sizes, activations, init specs, bias specs) if the probed modules form Linear → act → …"""
    import torch.nn as nn

    if not entries or any(e.kind != "param" or not isinstance(e.module, nn.Linear) or not e.input_seen for e in entries):
        return None
    sizes = [entries[0].module.in_features]
    acts, inits, binits = [], [], []
    for i, e in enumerate(entries):
        m = e.module
        if m.in_features != sizes[-1] or (i < len(entries) - 1 and entries[i + 1].module.in_features != m.out_features):
            return None
        sizes.append(m.out_features)
        acts.append(e.activation)
        w = to_numpy(m.weight).astype(np.float64)
        inits.append(empirical_spec(float(np.sqrt(np.mean(w * w)))))
        if m.bias is None:
            binits.append("zeros")
        else:
            b = to_numpy(m.bias).astype(np.float64)
            binits.append(empirical_spec(float(np.sqrt(np.mean(b * b)))))
    return sizes, acts, inits, binits
