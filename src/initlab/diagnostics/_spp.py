"""Signal Propagation Plots of a torch model's residual blocks (torch optional).

Brock, De & Smith 2021, "Characterizing signal propagation to close the performance gap in
unnormalized ResNets": on one batch, for the input of the first residual block (the stem output)
and for the output of every residual block (after the addition), per channel c over all other
axes (ddof 0, as the official ``signal_metrics``):

* ``avg_sq_mean`` = mean_c (mean x_c)², the average channel squared mean;
* ``avg_var`` = mean_c Var(x_c), the average channel variance;
* ``res_avg_var`` = mean_c Var(f(x)_c) of the residual branch f(x) = y − s·x as it enters the sum
  (after any branch scalar: SkipInit's and ReZero's α = 0 give 0 here), where s is the gain of
  the skip path (1 for y = x + f(x)). For a block that merges non-linearly (``relu(x + f(x))``,
  post-norm ``LN(x + f(x))``) the branch cannot be separated: ``res_avg_var`` is None.

The channel axis is 1 for blocks that contain a convolution (NCHW) and the last axis otherwise
([batch, features] or [batch, tokens, features]).

**Finding residual blocks** (no knowledge of the model's classes needed): every non-root module
with children and parameters whose first input and output are tensors of the same shape is a
candidate; it is a residual block when, run alone on (the first 16 samples of) the input it
received with every parameter set to zero (norm layers' gains and biases kept;
:func:`torch.func.functional_call`, the model's own tensors untouched), its output still varies
with the input: a block that computes f(x) alone then outputs a constant (zero weights cut every
path), a block that computes x + f(x) passes x through its parameter-free skip path. Of nested
candidates only the innermost are kept (a stage made of residual blocks is not itself counted).
A module called several times is measured on its first call.

The model is left exactly as it was: the forward passes run under ``torch.no_grad()`` with dropout
modules switched to eval (BatchNorm uses the batch statistics, as at the first training step), and
:func:`preserved_state` restores every buffer (BatchNorm running statistics, ``num_batches_tracked``),
every module's ``training`` flag and torch's RNG state afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


from initlab.diagnostics._torch_state import prepare_inputs, preserved_state

__all__ = ["SPP", "ResidualBlock", "find_residual_blocks", "signal_propagation", "plot_spp"]


@dataclass
class ResidualBlock:
    """One residual block found in a model: its qualified ``name``, the ``module``, the skip gain
    ``skip_gain`` (s in y = s·x + f(x), None for a non-linear merge), the ``channel_axis`` used for
    its statistics and whether its input was the previous block's output (``chained``)."""

    name: str
    module: Any = field(repr=False)
    skip_gain: float | None
    channel_axis: int
    chained: bool


@dataclass
class SPP:
    """A Signal Propagation Plot's data: point 0 is the first block's input (the stem output),
    point k ≥ 1 the output of block k. ``res_avg_var[0]`` is None (no branch)."""

    names: list[str]
    avg_sq_mean: list[float]
    avg_var: list[float]
    res_avg_var: list[float | None]
    chained: list[bool]
    skip_gain: list[float | None]

    @property
    def blocks(self) -> list[str]:
        """The residual blocks' names (point 1 on)."""
        return self.names[1:]

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "avg_sq_mean": list(self.avg_sq_mean), "avg_var": list(self.avg_var),
                "res_avg_var": list(self.res_avg_var), "chained": list(self.chained),
                "skip_gain": list(self.skip_gain)}

    def plot(self, path: str | None = None) -> Any:
        """The three panels of the paper's figure (see :func:`plot_spp`)."""
        return plot_spp(self, path)


def _as_inputs(model: Any, x: Any) -> tuple[Any, ...]:
    """The positional inputs of ``model`` for ``x`` (the probe's :func:`prepare_inputs`: device,
    dtype, finiteness); keyword inputs are not supported by these passes."""
    args, kwargs, _ = prepare_inputs(model, x)
    if kwargs:
        raise ValueError("The 'x' argument must be positional inputs (an array or a tuple) for the signal-propagation "
                         f"pass and LSUV; got keyword inputs {sorted(kwargs)}.")
    return args


def _channel_axis(module: Any) -> int:
    from torch.nn.modules.conv import _ConvNd

    return 1 if any(isinstance(m, _ConvNd) for m in module.modules()) else -1


_DETECT_SAMPLES = 16  # samples fed to the parameter-free pass that tells a residual block

_NORM_NAMES = ("BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm", "RMSNorm", "LocalResponseNorm")


def _is_norm(module: Any) -> bool:
    return any(c.__name__.startswith(_NORM_NAMES) for c in type(module).__mro__)


def _zero_param_output(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The module's output with every parameter zero (norm layers' kept), buffers copied."""
    import torch
    from torch.func import functional_call

    keep = {f"{n}.{pn}" if n else pn for n, m in module.named_modules() if _is_norm(m)
            for pn, _ in m.named_parameters(recurse=False)}
    tensors: dict[str, Any] = {}
    for n, p in module.named_parameters(remove_duplicate=False):  # tied weights: every name
        tensors[n] = p if n in keep else torch.zeros_like(p)
    for n, b in module.named_buffers(remove_duplicate=False):
        tensors[n] = b.clone()
    return functional_call(module, tensors, args, kwargs, strict=False)


def _varies(out: Any, x: Any) -> bool:
    """True when ``out`` changes across the batch (relative to the input's spread)."""
    o = out.detach().double().reshape(out.shape[0], -1)
    xi = x.detach().double().reshape(x.shape[0], -1)
    spread_o = float((o - o[:1]).abs().max()) if o.shape[0] > 1 else float(o.abs().max())
    spread_x = float((xi - xi[:1]).abs().max()) if xi.shape[0] > 1 else float(xi.abs().max())
    return spread_x > 0 and spread_o > 1e-6 * spread_x


def _capture(model: Any, inputs: tuple[Any, ...]) -> tuple[list[tuple[str, Any, tuple[Any, ...], dict[str, Any], Any]], Any]:
    """One forward pass recording (name, module, args, kwargs, output) of every candidate module
    (non-root, with children and parameters), first call only; returns them in call order."""
    import torch

    calls: list[tuple[str, Any, tuple[Any, ...], dict[str, Any], Any]] = []
    seen: set[int] = set()
    handles = []
    cands = [(name, mod) for name, mod in model.named_modules()
             if name and any(True for _ in mod.children()) and any(True for _ in mod.parameters())]
    if not cands:  # a flat model (a Sequential of layers) has no block: no forward pass needed
        return calls, None

    def hook(name: str) -> Any:
        def fn(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            if id(mod) in seen:
                return
            seen.add(id(mod))
            calls.append((name, mod, args, dict(kwargs), out))
        return fn

    for name, mod in cands:
        handles.append(mod.register_forward_hook(hook(name), with_kwargs=True))
    try:
        with torch.no_grad():
            out = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return calls, out


def _find(model: Any, inputs: tuple[Any, ...]) -> list[tuple[ResidualBlock, Any, Any, Any]]:
    """(block, input, output, zero-parameter output) of every residual block, in call order."""
    import torch

    calls, _ = _capture(model, inputs)
    found: list[tuple[str, Any, Any, Any, Any]] = []
    with torch.no_grad():
        for name, mod, args, kwargs, out in calls:
            if not args or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
                continue
            x = args[0]
            if tuple(x.shape) != tuple(out.shape) or not x.is_floating_point() or x.ndim < 2:
                continue
            # the parameter-free pass only needs a few samples: cut every batch-sized input
            nb = int(x.shape[0])
            k = min(nb, _DETECT_SAMPLES)

            def cut(a: Any) -> Any:
                return a[:k] if isinstance(a, torch.Tensor) and a.ndim >= 1 and a.shape[0] == nb else a

            xs = cut(x)
            z = _zero_param_output(mod, tuple(cut(a) for a in args), {kk: cut(v) for kk, v in kwargs.items()})
            if isinstance(z, torch.Tensor) and tuple(z.shape) == tuple(xs.shape) and _varies(z, xs):
                found.append((name, mod, x, out, (xs, z)))
    names = [f[0] for f in found]
    inner = [f for f in found if not any(n != f[0] and n.startswith(f[0] + ".") for n in names)]
    blocks: list[tuple[ResidualBlock, Any, Any, Any]] = []
    prev_out = None
    for name, mod, x, out, (xs, z) in inner:
        xd, zd = xs.double(), z.double()
        nx = float((xd * xd).sum())
        s = float((zd * xd).sum()) / nx if nx > 0 else 0.0
        lin = float((zd - s * xd).norm()) <= 1e-4 * max(float(zd.norm()), 1e-30)
        blk = ResidualBlock(name, mod, s if lin else None, _channel_axis(mod), prev_out is not None and x is prev_out)
        blocks.append((blk, x, out, z))
        prev_out = out
    return blocks


def find_residual_blocks(model: Any, x: Any) -> list[ResidualBlock]:
    """The residual blocks of ``model`` (see the module docstring), found by one forward pass on
    ``x`` (a tensor/array or a tuple of positional inputs) and one parameter-free pass per candidate
    block. The model is left unchanged."""
    import torch

    if not isinstance(model, torch.nn.Module):
        from initlab._validation import bad_type

        bad_type("model", "a torch.nn.Module", model)
    inputs = _as_inputs(model, x)
    with preserved_state(model, dropout_off=True):
        return [b for b, *_ in _find(model, inputs)]


def _chan_stats(t: Any, axis: int) -> tuple[float, float]:
    """(mean_c mean², mean_c Var) of ``t`` with channels on ``axis``, over every other axis (ddof 0)."""
    v = t.detach().double().movedim(axis, -1)
    v = v.reshape(-1, v.shape[-1])
    m = v.mean(dim=0)
    var = v.var(dim=0, unbiased=False)
    return float((m * m).mean()), float(var.mean())


def signal_propagation(model: Any, x: Any) -> SPP:
    """Signal Propagation Plot statistics of ``model``'s residual blocks on the batch ``x``.

    Brock, De & Smith 2021: feed an N(0, 1) batch (or your data) and read, per block,
    ``avg_sq_mean``, ``avg_var`` and ``res_avg_var`` (module docstring). Raises ValueError when the
    model has no residual block. The model's parameters, buffers, flags and torch's RNG state are
    unchanged afterwards.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        from initlab._validation import bad_type

        bad_type("model", "a torch.nn.Module", model)
    inputs = _as_inputs(model, x)
    with preserved_state(model, dropout_off=True):
        found = _find(model, inputs)
        if not found:
            raise ValueError(
                f"The 'model' argument has no residual block (a module whose output is x + f(x) for its input x); "
                f"got {type(model).__name__}."
            )
        first, x0, _, _ = found[0]
        sq0, var0 = _chan_stats(x0, first.channel_axis)
        spp = SPP(names=[f"input of {first.name}"], avg_sq_mean=[sq0], avg_var=[var0], res_avg_var=[None],
                  chained=[False], skip_gain=[None])
        for blk, xi, out, _ in found:
            sq, var = _chan_stats(out, blk.channel_axis)
            res = None
            if blk.skip_gain is not None:
                res = _chan_stats(out.double() - blk.skip_gain * xi.double(), blk.channel_axis)[1]
            spp.names.append(blk.name)
            spp.avg_sq_mean.append(sq)
            spp.avg_var.append(var)
            spp.res_avg_var.append(res)
            spp.chained.append(blk.chained)
            spp.skip_gain.append(blk.skip_gain)
    return spp


def plot_spp(spp: SPP, path: str | None = None) -> Any:
    """One figure with the paper's three panels against depth: average channel squared mean,
    average channel variance, residual-branch variance (log scale where a panel spans more than
    a factor 100). Saved to ``path`` (and closed; the path is returned) when given, else the
    matplotlib Figure is returned."""
    from initlab.diagnostics._plots import _plt, _save

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    depth = list(range(len(spp.names)))
    panels = [("Average channel squared mean", spp.avg_sq_mean), ("Average channel variance", spp.avg_var),
              ("Residual branch variance", spp.res_avg_var)]
    for ax, (title, vals) in zip(axes, panels):
        pts = [(d, float(v)) for d, v in zip(depth, vals) if v is not None and math.isfinite(float(v))]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3)
            pos = [p[1] for p in pts if p[1] > 0]
            if pos and max(pos) > 100 * min(pos):
                ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("block (0 = input of the first block)")
        ax.grid(alpha=0.3)
    fig.suptitle("Signal Propagation Plot (Brock, De & Smith 2021)")
    fig.tight_layout()
    return _save(fig, path)
