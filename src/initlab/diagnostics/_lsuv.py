"""LSUV, layer-sequential unit-variance initialization (Mishkin & Matas 2016, "All you need is a
good init").

1. Orthogonal pre-init of every weight (:func:`initlab.init.orthogonal`, Saxe et al. 2014).
2. For each layer in forward order, with the layers before it already fixed: forward the batch,
   measure the variance v of the layer's output (its pre-activation, pooled over batch, units and
   positions) and divide W by √v, until |v − 1| ≤ ``tol`` or ``max_iter`` rescalings were made.

Biases are left as they are (zero in the paper); with a zero bias one rescaling reaches v = 1
up to float rounding, with a bias the loop iterates. Works for :class:`initlab.nn.Network` and for
torch modules (every Linear/ConvNd, in the order they run; the forward pass is cut short after
the layer being fixed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab._rng import RngLike, as_generator
from initlab._validation import check_int, check_number

__all__ = ["LSUVRecord", "fix"]


@dataclass
class LSUVRecord:
    """What :func:`fix` did: per layer the total scale applied to the orthogonal weights, the
    number of rescalings, the output variance after the orthogonal pre-init and at the end."""

    tol: float
    max_iter: int
    layers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """True when every layer ended with |Var − 1| ≤ tol."""
        return all(r["converged"] for r in self.layers)

    @property
    def scales(self) -> list[float]:
        """The scale applied to each layer's orthogonal weights."""
        return [r["scale"] for r in self.layers]

    def to_dict(self) -> dict[str, Any]:
        return {"tol": self.tol, "max_iter": self.max_iter, "converged": self.converged, "layers": list(self.layers)}

    def __str__(self) -> str:
        lines = [f"LSUV (tol {self.tol:g}, max_iter {self.max_iter}): {'converged' if self.converged else 'NOT converged'}"]
        for r in self.layers:
            lines.append(f"  layer {r['index']} {r['name']}: scale {r['scale']:.4g} after {r['iterations']} rescalings, "
                         f"var {r['var_start']:.4g} -> {r['var']:.4g}")
        return "\n".join(lines)


def _var(z: np.ndarray) -> float:
    z = np.asarray(z, dtype=np.float64)
    return float(z.var())


def _fix_network(net: Any, x: Any, tol: float, max_iter: int, gen: np.random.Generator) -> LSUVRecord:
    """LSUV over the network's layer list: every layer with a weight (Dense, Conv) gets an
    orthogonal weight rescaled until its pre-activation variance is 1 on ``x``; other layers pass
    the signal on (a Residual block is run as a whole)."""
    from initlab import init as _init

    rec = LSUVRecord(tol, max_iter)
    weighted = [la for la in net.layers if la.params and la.params[0].name == "weight" and not la.children()]
    for layer in weighted:
        layer.weight = _init.orthogonal(layer.params[0].shape, rng=gen, dtype=net.dtype)
    h = net.check_x(x)
    for i, layer in enumerate(net.layers):
        if layer not in weighted:
            h = layer.forward(h)[0]
            continue
        y, c = layer.forward(h)
        v0 = v = _var(layer.preact(y, c))
        scale, it = 1.0, 0
        while not abs(v - 1.0) <= tol and it < max_iter and v > 0 and math.isfinite(v):
            s = 1.0 / math.sqrt(v)
            layer.weight = layer.weight * s
            scale *= s
            it += 1
            y, c = layer.forward(h)
            v = _var(layer.preact(y, c))
        rec.layers.append({"index": i + 1, "name": f"layers.{i}", "scale": scale, "iterations": it,
                           "var_start": v0, "var": v, "converged": bool(abs(v - 1.0) <= tol)})
        h = y
    return rec


class _Stop(Exception):
    pass


def _fix_torch(model: Any, x: Any, tol: float, max_iter: int, gen: np.random.Generator) -> LSUVRecord:
    import torch
    import torch.nn as nn
    from torch.nn.modules.conv import _ConvNd

    from initlab import init as _init

    p0 = next(iter(model.parameters()), None)
    dtype = p0.dtype if p0 is not None else torch.float32
    device = p0.device if p0 is not None else torch.device("cpu")
    xt = (x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))).to(device=device, dtype=dtype)
    order: list[tuple[str, Any]] = []
    names = {m: n for n, m in model.named_modules()}

    def record(mod: Any, inp: Any, out: Any) -> None:
        if all(mod is not m for _, m in order):
            order.append((names[mod], mod))

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, (nn.Linear, _ConvNd))]
    try:
        with torch.no_grad():
            model(xt)
    finally:
        for h in handles:
            h.remove()
    if not order:
        raise ValueError(f"The 'model' argument has no Linear or ConvNd layer for LSUV; got {type(model).__name__}.")
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    rec = LSUVRecord(tol, max_iter)
    with torch.no_grad():
        for _, m in order:
            w = _init.orthogonal(tuple(m.weight.shape), rng=gen, dtype=np_dtype)
            m.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
        for i, (name, m) in enumerate(order):
            box: dict[str, float] = {}

            def grab(mod: Any, inp: Any, out: Any) -> None:
                box["v"] = float(out.detach().double().var(unbiased=False))
                raise _Stop

            h = m.register_forward_hook(grab)
            try:
                def measure() -> float:
                    try:
                        model(xt)
                    except _Stop:
                        pass
                    return box["v"]

                v0 = v = measure()
                scale, it = 1.0, 0
                while not abs(v - 1.0) <= tol and it < max_iter and v > 0 and math.isfinite(v):
                    s = 1.0 / math.sqrt(v)
                    m.weight.mul_(s)
                    scale *= s
                    it += 1
                    v = measure()
            finally:
                h.remove()
            rec.layers.append({"index": i + 1, "name": name, "scale": scale, "iterations": it,
                               "var_start": v0, "var": v, "converged": bool(abs(v - 1.0) <= tol)})
    return rec


def fix(model: Any, x: Any, *, tol: float = 0.1, max_iter: int = 10, rng: RngLike = None) -> LSUVRecord:
    """LSUV-initialize ``model`` (an initlab Network or a torch module) in place on the batch ``x``.

    Args:
        model: :class:`initlab.nn.Network` or ``torch.nn.Module``.
        x: a batch of inputs ([batch, in] or what the torch model takes).
        tol: stop when |Var(pre-activation) − 1| ≤ tol.
        max_iter: at most this many rescalings per layer.
        rng: seed or Generator for the orthogonal pre-init.

    Returns:
        An :class:`LSUVRecord` (per layer: scale, rescalings, variance before and after).
    """
    tol = check_number("tol", tol, low=0.0, low_open=True)
    max_iter = check_int("max_iter", max_iter, low=0)
    gen = as_generator(rng)
    from initlab.diagnostics._probe_torch import is_torch_module

    if is_torch_module(model):
        return _fix_torch(model, x, tol, max_iter, gen)
    if _is_network(model):
        return _fix_network(model, x, tol, max_iter, gen)
    raise TypeError(f"The 'model' argument must be an initlab.nn.Network or a torch.nn.Module; got {type(model).__name__}.")


def _is_network(model: Any) -> bool:
    from initlab.nn import Network

    return isinstance(model, Network)
