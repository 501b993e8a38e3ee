"""Fill an existing NumPy array or torch tensor in place: :func:`fill_`.

torch is never imported here: a torch tensor can only be passed in when torch is loaded already.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from initlab._rng import RngLike
from initlab.init._registry import Initializer, get, registry
from initlab.init._sampling import inner_bound

__all__ = ["fill_"]

_TORCH_DTYPES = ("float16", "float32", "float64", "complex64", "complex128")


def _initializer(spec: Any) -> Initializer:
    """``get(spec)``, also accepting a registered scheme function (``initlab.init.normal``)."""
    if callable(spec) and not isinstance(spec, Initializer):
        for info in registry().values():
            if info.fn is spec:
                return get(info.name)
        raise TypeError(
            f"The 'spec' argument must be a spec string, a dict, an InitSpec, an Initializer or a scheme function "
            f"of initlab.init; got {type(spec).__name__} {getattr(spec, '__name__', spec)!r}."
        )
    return get(spec)


def _bf16_inner(x: float, *, upper: bool) -> float:
    """The bfloat16 value nearest ``x`` inside the interval it bounds: the largest <= ``x`` when
    ``upper``, else the smallest >= ``x`` (bfloat16 is the top 16 bits of a float32).

    >>> _bf16_inner(0.1, upper=True) <= 0.1 <= _bf16_inner(0.1, upper=False)
    True
    """
    f = inner_bound(x, np.float32, upper=upper).reshape(1)
    bits = f.view(np.uint32)
    low16 = int(bits[0]) & 0xFFFF
    if low16:
        negative = bool(int(bits[0]) >> 31)
        truncate = upper != negative  # towards zero: down for positives (upper), up for negatives (lower)
        bits[0] = (int(bits[0]) & 0xFFFF0000) + (0 if truncate else 0x10000)
    return float(f[0])


def _bf16_bits(w: np.ndarray) -> np.ndarray:
    """float32 ``w`` rounded to bfloat16, round to nearest even (torch's rule), as int16 bit patterns."""
    b = np.ascontiguousarray(w, dtype=np.float32).reshape(-1).view(np.uint32)
    r = np.right_shift(b, 16)
    np.bitwise_and(r, 1, out=r)
    r += 0x7FFF
    r += b
    np.right_shift(r, 16, out=r)
    return r.astype(np.uint16).view(np.int16).reshape(w.shape)


def _bfloat16(init: Initializer, shape: tuple[int, ...], kw: dict[str, Any], overrides: dict[str, Any]) -> np.ndarray:
    """The bfloat16 bit patterns (int16) of ``init``'s float32 draw, clipped to the scheme's
    bounds rounded inwards to bfloat16 (so rounding never steps outside them)."""
    w = init(shape, dtype=np.float32, **kw, **overrides)
    if w.size and init.info.variance != "deterministic":  # (a deterministic scheme's moments are a full draw)
        site = {k: kw[k] for k in ("layout", "transposed", "in_axis", "out_axis")}
        m = init.moments(shape, **site, **overrides)
        lo = _bf16_inner(m["low"], upper=False) if m["low"] is not None else None
        hi = _bf16_inner(m["high"], upper=True) if m["high"] is not None else None
        if (lo is not None or hi is not None) and (lo is None or hi is None or lo <= hi):
            # (no bfloat16 value lies inside [low, high] when lo > hi, a constant say: then
            # rounding to nearest is the best there is)
            np.clip(w, lo, hi, out=w)
    return _bf16_bits(w)


def fill_(tensor: Any, spec: Any, *, rng: RngLike = None, layout: str = "torch", in_axis: int | None = None,
          out_axis: int | None = None, transposed: bool = False, num_threads: int | None = None,
          **overrides: Any) -> Any:
    """Fill ``tensor`` (a torch tensor or a NumPy array) in place from ``spec`` and return it.

    ``spec`` is anything :func:`get` takes (a spec string such as ``"kaiming_normal(mode=fan_out)"``,
    a dict, an InitSpec, an Initializer) or a scheme function such as ``initlab.init.normal``;
    ``overrides`` are scheme parameters (``fill_(w, "normal", std=0.02)``). The values are
    bitwise those of ``get(spec)(tensor.shape, rng=rng, dtype=<tensor's dtype>, layout=layout, ...)``
    for the same ``rng`` (and any ``num_threads``); torch's own random state is never used.

    * NumPy array: ``spec(shape, out=array)`` (see the ``out`` argument of the schemes).
    * CPU torch tensor, float16/32/64 or complex64/128: written through ``tensor.detach().numpy()``,
      which shares the tensor's memory: no copy, the data pointer is unchanged, and
      ``requires_grad`` parameters work (as ``torch.nn.init``, the write is not recorded by
      autograd; the tensor's version counter is bumped as an in-place torch op would). A
      non-contiguous tensor (a transposed or sliced view) is filled through one temporary
      array copied into the view.
    * bfloat16 (NumPy has no such dtype): drawn in float32, clipped to the scheme's bounds
      rounded inwards to bfloat16 (uniform and truncated schemes; so no value leaves them), then
      rounded to nearest even, torch's float32→bfloat16 rule, and written as 16-bit patterns
      into the tensor's memory (CPU). The values equal
      ``torch.from_numpy(spec(shape, dtype=np.float32)).to(torch.bfloat16)`` except where that
      rounding would step past a bound.
    * CUDA (or any non-CPU) tensor: drawn on the host, then copied to the device with one
      ``tensor.copy_`` (a host-to-device transfer of the tensor's size).

    >>> import numpy as np
    >>> w = np.empty((3, 4), np.float32)
    >>> fill_(w, "kaiming_normal(nonlinearity=relu)", rng=0) is w
    True
    >>> bool((w == get("kaiming_normal(nonlinearity=relu)")((3, 4), rng=0)).all())
    True
    """
    init = _initializer(spec)
    kw: dict[str, Any] = {"rng": rng, "layout": layout, "in_axis": in_axis, "out_axis": out_axis,
                          "transposed": transposed, "num_threads": num_threads}
    if isinstance(tensor, np.ndarray):
        return init(tensor.shape, out=tensor, **kw, **overrides)
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"The 'tensor' argument must be a torch.Tensor or a numpy.ndarray; got {type(tensor).__name__}."
        )
    return _fill_tensor(torch, tensor, init, kw, overrides)


def _fill_tensor(torch: Any, t: Any, init: Initializer, kw: dict[str, Any], overrides: dict[str, Any]) -> Any:
    shape = tuple(t.shape)
    name = str(t.dtype).removeprefix("torch.")
    if name not in _TORCH_DTYPES and name != "bfloat16":
        raise TypeError(
            f"The 'tensor' argument must have dtype float16, bfloat16, float32, float64, complex64 or complex128; "
            f"got {t.dtype}."
        )
    if t.device.type == "meta":
        raise ValueError("The 'tensor' argument must hold data (a CPU or CUDA tensor); got a tensor on the meta device.")
    on_cpu = t.device.type == "cpu" and not t.is_conj() and not t.is_neg()
    with torch.no_grad():
        if name == "bfloat16":
            bits = _bfloat16(init, shape, kw, overrides)
            if not on_cpu:
                t.copy_(torch.from_numpy(bits).view(torch.bfloat16))  # (copy_ bumps the version)
                return t
            np.copyto(t.detach().view(torch.int16).numpy(), bits)
        elif on_cpu:
            init(shape, out=t.detach().numpy(), **kw, **overrides)
        else:
            t.copy_(torch.from_numpy(init(shape, dtype=np.dtype(name), **kw, **overrides)))
            return t
    torch.autograd.graph.increment_version(t)  # a write through NumPy is invisible to autograd otherwise
    return t
