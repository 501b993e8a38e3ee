"""The distribution a scheme resolves to for one shape, how to draw it and its exact moments.

Every distribution-type scheme is a *plan*: ``plan(site, params) -> Dist``. The same Dist gives
the samples (:func:`sample`) and the theoretical moments (:meth:`Dist.moments`), so the two
cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from initlab._rng import RngLike
from initlab._validation import bad_value
from initlab.init._fans import Axes, check_layout, check_shape, fans_of, resolve_axes
from initlab.init._out import COMPLEX_DTYPES, REAL_DTYPES, check_dtype, deliver, resolve_out, target
from initlab.init._sampling import fill, fill_value, inner_bound

__all__ = ["Dist", "Site", "check_dtype", "sample", "TRUNC_STD", "REAL_DTYPES", "COMPLEX_DTYPES"]

#: std of N(0, 1) truncated to [-2, 2] = √(1 − 4φ(2)/(Φ(2) − Φ(−2))) (Keras/JAX's constant)
TRUNC_STD = 0.87962566103423978
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Site:
    """Where a weight lives: its shape and axis convention (fans are computed on demand)."""

    shape: tuple[int, ...]
    layout: str = "torch"
    in_axis: int | None = None
    out_axis: int | None = None
    transposed: bool = False

    @staticmethod
    def make(shape: Any, layout: Any = "torch", in_axis: Any = None, out_axis: Any = None, transposed: Any = False) -> Site:
        check_layout(layout)
        if not isinstance(transposed, (bool, np.bool_)):
            raise TypeError(f"The 'transposed' argument must be a bool; got {type(transposed).__name__} {transposed!r}.")
        return Site(check_shape(shape), layout, in_axis, out_axis, bool(transposed))

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def axes(self) -> Axes:
        return resolve_axes(self.shape, self.layout, self.transposed, self.in_axis, self.out_axis)

    def fans(self) -> tuple[int, int]:
        return fans_of(self.shape, self.axes())


def _phi(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x) if math.isfinite(x) else 0.0


def _xphi(x: float) -> float:
    return x * _phi(x) if math.isfinite(x) else 0.0


@dataclass(frozen=True)
class Dist:
    """A resolved distribution.

    kind ``"constant"`` (value ``loc``), ``"normal"`` (N(loc, scale²)), ``"uniform"``
    (U(loc − scale, loc + scale)), ``"truncnorm"`` (N(loc, scale²) restricted to
    [loc + alpha·scale, loc + beta·scale]). For complex dtypes the same variance is E|w − loc|²:
    normal and truncnorm draw real and imaginary parts with variance var/2 each; uniform draws the
    disk of radius scale·√(2/3).
    """

    kind: str
    loc: float = 0.0
    scale: float = 0.0
    alpha: float = -math.inf
    beta: float = math.inf

    def moments(self) -> dict[str, Any]:
        """Exact mean, variance and bounds (None when unbounded)."""
        k, m, s = self.kind, self.loc, self.scale
        if k == "constant" or (s == 0.0 and k in ("normal", "truncnorm", "uniform")):
            return {"mean": m, "var": 0.0 if math.isfinite(s) else math.nan, "low": m, "high": m}
        if not math.isfinite(s):
            return {"mean": m, "var": math.nan, "low": None, "high": None}
        if k == "normal":
            return {"mean": m, "var": s * s, "low": None, "high": None}
        if k == "uniform":
            return {"mean": m, "var": s * s / 3.0, "low": m - s, "high": m + s}
        if k == "truncnorm":
            from scipy import special

            a, b = self.alpha, self.beta
            flip = a > -b
            lo, hi = (-b, -a) if flip else (a, b)
            z = float(special.ndtr(hi) - special.ndtr(lo))
            if z <= 0.0:  # far tail: fall back to scipy's careful moments
                from scipy import stats

                mu_z, var_z = (float(v) for v in stats.truncnorm.stats(a, b, moments="mv"))
            else:
                mu_z = (_phi(lo) - _phi(hi)) / z
                var_z = 1.0 + (_xphi(lo) - _xphi(hi)) / z - mu_z * mu_z
                if flip:
                    mu_z = -mu_z
            return {
                "mean": m + s * mu_z,
                "var": s * s * var_z,
                "low": m + s * a if math.isfinite(a) else None,
                "high": m + s * b if math.isfinite(b) else None,
            }
        raise AssertionError(k)  # pragma: no cover


Plan = Callable[[Site, dict[str, Any]], Dist]

#: a normal's samples are taken to reach this many standard deviations (the float32 Box–Muller
#: sampler reaches 9.2σ; float64 draws beyond 10σ have probability ~1.5e-23)
NORMAL_REACH = 10.0


def _check_range(d: Dist, dt: np.dtype, scheme: str) -> None:
    """ValueError when the samples of ``d`` could not be represented in ``dt`` (they would be ±inf).

    A normal (or a truncated normal with a bound beyond 10σ) needs |loc| + 10·std <= finfo(dt).max,
    i.e. std <= finfo(dt).max / 10 at loc 0; a uniform or truncated normal needs its bounds inside
    the dtype's range.
    """
    fmax = float(np.finfo(dt).max)
    if dt.kind == "c":  # the real and imaginary parts each get variance std² / 2
        fmax *= math.sqrt(2.0)
    name = np.dtype(dt).name
    if d.kind == "uniform":
        if abs(d.loc) + d.scale > fmax:
            raise ValueError(
                f"The bounds of {scheme!r} must lie within the range of dtype {name} (±{fmax:.4g}); "
                f"got [{d.loc - d.scale:.4g}, {d.loc + d.scale:.4g}]."
            )
        return
    reach = NORMAL_REACH if d.kind == "normal" else min(NORMAL_REACH, max(abs(d.alpha), abs(d.beta)))
    if abs(d.loc) + reach * d.scale > fmax:
        limit = (fmax - abs(d.loc)) / reach
        raise ValueError(
            f"The 'std' of {scheme!r} must be at most {limit:.4g} for dtype {name} (its range is ±{fmax:.4g}; "
            f"samples reach {reach:g} std); got std={d.scale:.4g}."
        )


def sample(
    plan: Plan,
    params: dict[str, Any],
    site: Site,
    *,
    rng: RngLike,
    dtype: Any,
    num_threads: Any,
    complex_ok: bool,
    scheme: str,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Draw an array of ``site.shape`` from ``plan(site, params)``; into ``out`` when given.

    Every check runs before anything is written. The draw goes straight into ``out`` when it is
    C-contiguous (only float16 needs a float32 scratch array, rounded into ``out`` once); a new
    array is the same fill into freshly allocated memory, hence bitwise the same values.
    """
    dt = resolve_out(out, site.shape, dtype, complex_ok=complex_ok, scheme=scheme)
    if site.size == 0:
        return deliver(np.empty(site.shape, dtype=dt), out)
    d = plan(site, params)
    n = site.size
    if d.kind == "constant" or d.scale == 0.0:
        w = target(out, site.shape, dt)
        fill_value(w.reshape(-1), d.loc, num_threads=num_threads)
        return deliver(w, out)
    if not math.isfinite(d.scale):
        bad_value("shape", "a shape whose fans are positive", site.shape)
    _check_range(d, dt, scheme)
    w = target(out, site.shape, dt)
    flat = w.reshape(-1)  # a view: w is C-contiguous
    if dt.kind == "c":
        real = np.dtype(np.float32) if dt == np.complex64 else np.dtype(np.float64)
        pairs = flat.view(real)
        if d.kind == "uniform":
            fill(pairs, rng, "disk", scale=d.scale * math.sqrt(2.0 / 3.0), num_threads=num_threads)
        elif d.kind == "normal":
            fill(pairs, rng, "normal", scale=d.scale / math.sqrt(2.0), num_threads=num_threads)
        else:
            fill(pairs, rng, "truncnorm", scale=d.scale / math.sqrt(2.0), alpha=d.alpha, beta=d.beta,
                 num_threads=num_threads)
        if d.loc != 0.0:
            pairs[0::2] += real.type(d.loc)
        return deliver(w, out)
    work = np.dtype(np.float32) if dt == np.float16 else dt
    if d.kind == "uniform" and abs(d.loc) + 2.0 * d.scale > float(np.finfo(work).max):
        # the bounds fit the dtype but the width b - a does not: sample in float64, round once
        work = np.dtype(np.float64)
    buf = flat if work == dt else np.empty(n, dtype=work)
    if d.kind == "normal":
        fill(buf, rng, "normal", loc=d.loc, scale=d.scale, num_threads=num_threads)
    elif d.kind == "uniform":
        fill(buf, rng, "uniform", loc=d.loc - d.scale, scale=2.0 * d.scale, num_threads=num_threads)
    else:
        fill(buf, rng, "truncnorm", loc=d.loc, scale=d.scale, alpha=d.alpha, beta=d.beta, num_threads=num_threads)
    if work != dt:
        flat[...] = buf  # one rounding, as astype
        if d.kind == "truncnorm" and (math.isfinite(d.alpha) or math.isfinite(d.beta)):
            # rounding to the narrower dtype (float16) can step outside [low, high]: clip to the
            # dtype's values inside the bounds
            lo = inner_bound(d.loc + d.scale * d.alpha, dt, upper=False) if math.isfinite(d.alpha) else None
            hi = inner_bound(d.loc + d.scale * d.beta, dt, upper=True) if math.isfinite(d.beta) else None
            np.clip(flat, lo, hi, out=flat)
        elif d.kind == "uniform":
            lo = inner_bound(d.loc - d.scale, dt, upper=False)
            hi = inner_bound(d.loc + d.scale, dt, upper=True)
            np.clip(flat, lo, hi, out=flat)
    return deliver(w, out)
