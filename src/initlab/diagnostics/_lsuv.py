"""LSUV, layer-sequential unit-variance initialization (Mishkin & Matas 2016, "All you need is a
good init").

1. Orthogonal pre-init of every weight (:func:`initlab.init.orthogonal`, Saxe et al. 2014).
2. For each layer in forward order, with the layers before it already fixed: forward the batch,
   measure the variance v of the layer's output (its pre-activation, pooled over batch, units and
   positions) and divide W by √v, until |v − 1| ≤ ``tol`` or ``max_iter`` rescalings were made.

Biases are left as they are (zero in the paper); with a zero bias one rescaling reaches v = 1
up to float rounding, with a bias the loop iterates. Works for :class:`initlab.nn.Network` and for
torch modules, over every parameterised operation in the order it first runs (the forward pass is
cut short after the operation being fixed):

* ``Linear`` and ``ConvNd``: orthogonal weight, rescaled on its output;
* ``MultiheadAttention``: orthogonal q, k, v blocks (each E×E) and output projection; the output
  projection is rescaled on the attention's output (q and k are not: their scale is the softmax's
  temperature, not a variance to preserve);
* ``LSTM``/``GRU``/``RNN``: orthogonal pre-init of every weight matrix, one block per gate, and no
  rescaling (the output is bounded by tanh, so unit variance is out of reach and rescaling towards
  it would saturate the gates); their record has ``converged`` None;
* ``Embedding`` is left out: a lookup has no input variance to preserve, and torch's N(0, 1)
  default already gives unit output variance.

The torch model is otherwise left as it was: buffers (BatchNorm running statistics,
``num_batches_tracked``), every module's ``training`` flag and torch's RNG state are restored,
and dropout is off during the passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab._rng import RngLike, as_generator
from initlab._validation import check_int, check_number
from initlab.diagnostics._stats import moments

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
        """True when every rescaled layer ended with |Var − 1| ≤ tol (recurrent layers, which are
        only pre-initialised, have ``converged`` None and do not count)."""
        return all(r["converged"] for r in self.layers if r["converged"] is not None)

    @property
    def scales(self) -> list[float]:
        """The scale applied to each layer's orthogonal weights."""
        return [r["scale"] for r in self.layers]

    def to_dict(self) -> dict[str, Any]:
        return {"tol": self.tol, "max_iter": self.max_iter, "converged": self.converged, "layers": list(self.layers)}

    def __str__(self) -> str:
        lines = [f"LSUV (tol {self.tol:g}, max_iter {self.max_iter}): {'converged' if self.converged else 'NOT converged'}"]
        for r in self.layers:
            if r["var"] is None:
                lines.append(f"  layer {r['index']} {r['name']}: {r.get('note', 'not rescaled')}")
                continue
            lines.append(f"  layer {r['index']} {r['name']}: scale {r['scale']:.4g} after {r['iterations']} rescalings, "
                         f"var {r['var_start']:.4g} -> {r['var']:.4g}")
        return "\n".join(lines)


def _var(z: np.ndarray) -> float:
    """The variance (ddof = 0) of all of ``z``, as the probe measures it (:func:`moments`)."""
    return moments(np.asarray(z, dtype=np.float64)).std ** 2


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


def _torch_ops(model: Any, inputs: tuple[Any, ...]) -> list[tuple[str, Any]]:
    """The parameterised operations LSUV sets, in the order they first run: Linear, ConvNd,
    MultiheadAttention, LSTM/GRU/RNN (Embedding is left out: see :func:`fix`)."""
    import torch
    import torch.nn as nn
    from torch.nn.modules.conv import _ConvNd
    from torch.nn.modules.rnn import RNNBase

    order: list[tuple[str, Any]] = []
    names = {m: n for n, m in model.named_modules()}
    # out_proj of an attention module is used through its weight, never called: it is the
    # attention op's, not an op of its own
    inner = {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}

    def record(mod: Any, inp: Any, out: Any) -> None:
        if all(mod is not m for _, m in order):
            order.append((names[mod] or type(mod).__name__, mod))

    handles = [m.register_forward_hook(record) for m in model.modules()
               if isinstance(m, (nn.Linear, _ConvNd, nn.MultiheadAttention, RNNBase)) and id(m) not in inner]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return order


def _pre_init(name: str, m: Any, gen: np.random.Generator) -> str:
    """Orthogonal pre-init (Saxe et al. 2014) of one op; returns which weight LSUV rescales."""
    import torch
    import torch.nn as nn
    from torch.nn.modules.rnn import RNNBase

    from initlab import init as _init
    from initlab.diagnostics._apply import write

    ortho = _init.get("orthogonal")
    if isinstance(m, nn.MultiheadAttention):
        E = m.embed_dim
        if m.in_proj_weight is not None:
            for k in range(3):  # q, k, v blocks: each an orthogonal E×E matrix
                with torch.no_grad():
                    block = m.in_proj_weight[k * E:(k + 1) * E]
                write(block, ortho, gen)
        else:
            for pn in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                write(getattr(m, pn), ortho, gen)
        write(m.out_proj.weight, ortho, gen)
        return "out_proj.weight"
    if isinstance(m, RNNBase):
        g = {"LSTM": 4, "GRU": 3}.get(m.mode, 1)
        for pn, p in m.named_parameters(recurse=False):
            if pn.startswith("weight_"):
                rows = p.shape[0] // g
                for k in range(g):  # one orthogonal block per gate, as torch stacks them
                    with torch.no_grad():
                        block = p[k * rows:(k + 1) * rows]
                    write(block, ortho, gen)
        return ""
    write(m.weight, ortho, gen)
    return "weight"


def _fix_torch(model: Any, x: Any, tol: float, max_iter: int, gen: np.random.Generator) -> LSUVRecord:
    import torch

    from initlab.diagnostics._spp import _as_inputs
    from initlab.diagnostics._torch_state import preserved_state

    inputs = _as_inputs(model, x)
    rec = LSUVRecord(tol, max_iter)
    with preserved_state(model, parameters=False, dropout_off=True):
        order = _torch_ops(model, inputs)
        if not order:
            raise ValueError("The 'model' argument has no Linear, ConvNd, MultiheadAttention or LSTM/GRU/RNN layer for "
                             f"LSUV; got {type(model).__name__}.")
        with torch.no_grad():
            targets = [_pre_init(name, m, gen) for name, m in order]
            for i, ((name, m), target) in enumerate(zip(order, targets)):
                if not target:  # recurrent: orthogonal pre-init only
                    rec.layers.append({"index": i + 1, "name": name, "scale": 1.0, "iterations": 0, "var_start": None,
                                       "var": None, "converged": None, "rescaled": None,
                                       "note": "recurrent layer: orthogonal pre-init per gate only (its output is "
                                               "bounded by tanh, unit variance is out of reach)"})
                    continue
                weight = m.get_parameter(target)
                box: dict[str, float] = {}

                def grab(mod: Any, inp: Any, out: Any) -> None:
                    o = out[0] if isinstance(out, tuple) else out
                    box["v"] = _var(o.detach().double().cpu().numpy())
                    raise _Stop

                h = m.register_forward_hook(grab)
                try:
                    def measure() -> float:
                        try:
                            model(*inputs)
                        except _Stop:
                            pass
                        return box["v"]

                    v0 = v = measure()
                    scale, it = 1.0, 0
                    while not abs(v - 1.0) <= tol and it < max_iter and v > 0 and math.isfinite(v):
                        s = 1.0 / math.sqrt(v)
                        weight.mul_(s)
                        scale *= s
                        it += 1
                        v = measure()
                finally:
                    h.remove()
                rec.layers.append({"index": i + 1, "name": name, "scale": scale, "iterations": it,
                                   "var_start": v0, "var": v, "converged": bool(abs(v - 1.0) <= tol),
                                   "rescaled": target})
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
