"""Mean-field maps of a wide random network: length map, correlation map, fixed points, χ₁, depth scales.

Setting (Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, "Exponential expressivity in deep
neural networks through transient chaos"; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017,
"Deep Information Propagation"): weights W_ij ~ N(0, σ_w²/N_{l−1}), biases ~ N(0, σ_b²), z ~ N(0, 1).

* length map      q^l = σ_w² E[φ(√q^{l−1} z)²] + σ_b²,               fixed point q*;
* correlation map c^l = [σ_w² E[φ(u₁)φ(u₂)] + σ_b²] / q*,             fixed point c*,
  u₁ = √q* z₁, u₂ = √q* (c z₁ + √(1−c²) z₂);
* χ₁ = σ_w² E[φ′(√q* z)²]: < 1 ordered, = 1 critical (edge of chaos), > 1 chaotic;
* ξ_q⁻¹ = −log[χ₁ + σ_w² E[φ″(√q* z) φ(√q* z)]],  ξ_c⁻¹ = −log χ_c*,  χ_c* = σ_w² E[φ′(u₁)φ′(u₂)] at c*
  (χ_c* = χ₁ when c* = 1); trainable depth ≈ 6 ξ_c (Schoenholz et al. 2017).

Every function accepts an activation name or :class:`initlab.activations.Activation`.
:func:`length_map`, :func:`fixed_point`, :func:`chi1`, :func:`depth_scales` and
:func:`trainable_depth` are vectorised over ``sigma_w2``/``sigma_b2`` (scalars in, floats out;
arrays in, arrays out); :func:`correlation_map` takes scalar σ's (and q) and is vectorised over
``c``; :func:`critical_sigma_w2`, :func:`phase` and :func:`point` take scalars.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from initlab import activations as _acts
from initlab._validation import bad_type, check_number

__all__ = [
    "MeanFieldPoint",
    "length_map",
    "correlation_map",
    "fixed_point",
    "chi1",
    "depth_scales",
    "critical_sigma_w2",
    "trainable_depth",
    "phase",
    "point",
]

Activation = _acts.Activation
_Q_MAX = 1e30  # beyond this the length map is declared divergent (q* = inf)
_Q_TINY = 1e-12  # below this·scale² (with σ_b = 0) q* is declared 0: φ is linear there
_CRIT_TOL = 1e-6  # |χ₁ − 1| <= this (relative) counts as critical


def _act(activation: str | Activation) -> Activation:
    return _acts.get(activation)


def _real_array(name: str, raw: Any) -> np.ndarray:
    """``raw`` as a float64 array if it is a real number or an array of them, all finite and >= 0
    (strings, booleans, complex and object arrays are refused rather than converted)."""
    if np.ndim(raw) == 0:
        value = raw.item() if isinstance(raw, (np.ndarray, np.generic)) else raw
        return np.asarray(check_number(name, value, low=0.0), dtype=np.float64)
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iuf":
        bad_type(name, "a real number or an array of real numbers", raw)
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"The {name!r} argument must be finite and >= 0 everywhere; got {raw!r}.")
    return arr


def _params(sigma_w2: Any, sigma_b2: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validated, broadcast float arrays (flattened later by callers) and whether inputs were scalars."""
    scalar = np.ndim(sigma_w2) == 0 and np.ndim(sigma_b2) == 0
    sw = _real_array("sigma_w2", sigma_w2)
    sb = _real_array("sigma_b2", sigma_b2)
    try:
        sw, sb = np.broadcast_arrays(sw, sb)
    except ValueError:
        raise ValueError(
            f"The 'sigma_w2' and 'sigma_b2' arguments must have broadcastable shapes; got shapes "
            f"{sw.shape} and {sb.shape}."
        ) from None
    return np.array(sw, dtype=np.float64), np.array(sb, dtype=np.float64), scalar


def _out(x: np.ndarray, scalar: bool) -> Any:
    return float(np.reshape(x, ())) if scalar else x


def _moments(act: Activation, q: np.ndarray, order: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E[φ²], E[φ′²], E[φφ″]) at variances q (1-D array), sharing one evaluation of φ."""
    if act.homogeneous:
        m = np.asarray(act.second_moment(q), dtype=np.float64) * np.ones_like(q)
        d = np.asarray(act.deriv_second_moment(q), dtype=np.float64) * np.ones_like(q)
        return m, d, np.zeros_like(q)
    # q = 0 as the limit q → 0⁺ (a kink at 0, as SELU's φ′, averages its two sides)
    q = np.maximum(q, 1e-300)
    # group the q's by their number of graded panels, so that none pays for another's
    a = (act.scale / 4.0) / np.sqrt(q)
    n_graded = _acts._n_graded(a)
    out = np.empty((3,) + q.shape)
    for k in (n_graded.reshape(-1) if n_graded.size == 1 else np.unique(n_graded)):
        idx = n_graded == k
        # gaussian_nodes(q[idx], scale=act.scale, order=order), with q > 0 and a, k known here
        x, w = _acts._positive_nodes(q[idx], a[idx], int(k), order)
        w = w / np.sum(w, axis=-1, keepdims=True)  # E[1] = 1 exactly: no bias in h = L(q) − q near q = 0
        f = act.fn(x)
        d = act.derivative(x, f)
        dd = act.deriv2(x)
        out[0][idx], out[1][idx], out[2][idx] = (np.sum(w * f * f, axis=-1), np.sum(w * d * d, axis=-1),
                                                 np.sum(w * f * dd, axis=-1))
    return out[0], out[1], out[2]


# ---------------------------------------------------------------------------------------------
# Length map and q*
# ---------------------------------------------------------------------------------------------
def length_map(activation: str | Activation, q: Any, sigma_w2: Any, sigma_b2: Any) -> Any:
    """One step of the length map: q ↦ σ_w² E[φ(√q z)²] + σ_b² (Poole et al. 2016).

    >>> length_map("relu", 3.0, 2.0, 0.1)   # 2 · 3/2 + 0.1
    3.1
    """
    act = _act(activation)
    sw, sb, scalar = _params(sigma_w2, sigma_b2)
    q = _acts._check_q(q)  # every activation, closed form or not: a variance is finite and >= 0
    m = np.asarray(act.second_moment(q), dtype=np.float64)
    out = sw * m + sb
    return float(out) if np.ndim(out) == 0 else out


def _q_star(
    act: Activation, sw: np.ndarray, sb: np.ndarray, q0: float, max_iter: int = 300, order: int = 12
) -> np.ndarray:
    """Stable fixed point of the length map reached from q0, vectorised over 1-D sw, sb.

    Safeguarded Newton on h(q) = L(q) − q with L′(q) = σ_w²(E[φ′²] + E[φφ″]) (Gaussian integration
    by parts); plain iteration q ← L(q) where Newton is not safe (h′ ≥ 0, or a step out of q > 0),
    doubling q while the map is still growing. q > 1e30 is reported as divergence (inf); q < 1e-12·s²
    (s the activation's scale) with σ_b = 0 as q* = 0 (the odd activations' ordered phase).
    """
    if act.homogeneous:
        k = float(act.second_moment(1.0))
        a = sw * k
        with np.errstate(divide="ignore", invalid="ignore"):
            qs = sb / (1.0 - a)
        neutral = np.abs(a - 1.0) <= 1e-12
        return np.where(a < 1.0 - 1e-12, qs, np.where(neutral & (sb == 0), q0, np.inf))
    q = np.full(sw.shape, float(q0))
    active = np.ones(sw.shape, dtype=bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        qi, swi, sbi = q[idx], sw[idx], sb[idx]
        m, d, p = _moments(act, qi, order)
        lq = swi * m + sbi
        h = lq - qi
        hp = swi * (d + p) - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = qi - h / hp
        # converged: residual and Newton step both negligible (a double root at q* = 0, the
        # critical point of an odd φ, halves q each step and ends in the q < 1e-30 branch)
        done = (np.abs(h) <= 1e-13 * np.maximum(qi, 1e-300)) & (np.abs(newton - qi) <= 1e-10 * qi)
        ok = (hp < 0) & np.isfinite(newton) & (newton > 0)
        qn = np.where(ok, newton, np.where((h > 0) & (hp >= 0), np.maximum(lq, 2.0 * qi), lq))
        qn = np.where(done, qi, qn)
        small = (sbi == 0) & (qn < _Q_TINY * act.scale**2)
        qn = np.where(small, 0.0, qn)
        # growing map (h > 0, h′ >= 0) far beyond the nonlinear region: φ is asymptotically
        # linear or bounded there, so the growth cannot stop (divergence, q* = inf)
        big = (qn > _Q_MAX) | ((h > 0) & (hp >= 0) & (qi > 1e4 * act.scale**2))
        qn = np.where(big, np.inf, qn)
        q[idx] = qn
        active[idx] = ~(done | small | big)
    return q


def fixed_point(
    activation: str | Activation, sigma_w2: Any, sigma_b2: Any, *, q0: float = 1.0
) -> tuple[Any, Any]:
    """(q*, c*): the fixed points of the length and correlation maps (Poole et al. 2016).

    q* is the stable fixed point reached by iterating the length map from ``q0``; it is 0 for odd
    activations with σ_b = 0 in the ordered phase and ``inf`` where the map diverges (ReLU with
    σ_w² > 2). For ReLU at σ_w² = 2, σ_b = 0 every q is fixed and q* = q0. c* = 1 when χ₁ <= 1
    (ordered/critical: all inputs end up aligned); in the chaotic phase c* < 1 is found by Newton's
    method from c = 0 (the c-map is convex and increasing on [0, 1]); nan when q* = inf.

    >>> fixed_point("relu", 1.0, 0.5)          # q* = σ_b² / (1 − σ_w²/2)
    (1.0, 1.0)
    >>> q, c = fixed_point("tanh", 2.0, 0.0)   # chaotic: q* > 0, c* = 0
    >>> round(q, 4), c
    (0.618, 0.0)
    """
    r = _solve(_act(activation), sigma_w2, sigma_b2, q0=q0)
    return r["q_star"], r["c_star"]


# ---------------------------------------------------------------------------------------------
# Correlation map, χ₁, depth scales
# ---------------------------------------------------------------------------------------------
def correlation_map(
    activation: str | Activation, c: Any, sigma_w2: float, sigma_b2: float, *, q: float | None = None
) -> Any:
    """One step of the correlation map at q (default q*): c ↦ [σ_w² E[φ(u₁)φ(u₂)] + σ_b²] / q*.

    u₁ = √q z₁, u₂ = √q (c z₁ + √(1−c²) z₂). The denominator is σ_w² E[φ(√q z)²] + σ_b² (= q* at
    the fixed point), so c = 1 maps to 1 exactly. The ReLU family and erf use closed forms (the
    arc-cosine kernel, Cho & Saul 2009, "Kernel Methods for Deep Learning").

    >>> round(correlation_map("relu", 0.0, 2.0, 0.0, q=1.0), 6)   # 2·(1/2π)/1 = 1/π
    0.31831
    """
    act = _act(activation)
    sw = check_number("sigma_w2", sigma_w2, low=0.0)
    sb = check_number("sigma_b2", sigma_b2, low=0.0)
    if q is None:
        q = float(fixed_point(act, sw, sb)[0])
    q = check_number("q", q, low=0.0) if math.isfinite(q) else q
    if not math.isfinite(q) or q == 0:
        raise ValueError(f"The correlation map needs 0 < q < inf; got q = {q!r} (pass q= explicitly).")
    num = sw * np.asarray(act.kernel(q, c), dtype=np.float64) + sb
    den = sw * float(act.kernel(q, 1.0)) + sb  # same rule as the numerator: c = 1 maps to 1
    out = np.clip(num / den, -1.0, 1.0)
    return float(out) if np.ndim(out) == 0 else out


def _c_star(
    act: Activation, sw: np.ndarray, sb: np.ndarray, q: np.ndarray, order: int, max_iter: int = 60
) -> tuple[np.ndarray, np.ndarray]:
    """(c*, χ_c*) for chaotic points (χ₁ > 1, 0 < q* < inf), vectorised; Newton from c = 0.

    Newton's method on c ↦ [σ_w² K(c) + σ_b²]/K₁ − c, K(c) = E[φ(u₁)φ(u₂)], with the slope
    σ_w² q K′(c) = σ_w² q E[φ′(u₁)φ′(u₂)] (Price's theorem). It runs on a coarse rule (half the
    ``order``) until the step is below 1e-7 (or c > 0.99, where only the full rule resolves the
    map's distance from the diagonal), then polishes on the full rule (quadratic convergence: one
    or two steps), so the result has the accuracy of the full rule at little more than the cost
    of two evaluations. Safeguarded: a step right of c* that Newton cannot take halves back
    towards the last point left of it.
    """
    closed = "kernel" in act.closed_form and "deriv_kernel" in act.closed_form

    def kernels(qi: np.ndarray, ci: np.ndarray, o: int) -> tuple[np.ndarray, np.ndarray]:
        """(E[φ(u₁)φ(u₂)], E[φ′(u₁)φ′(u₂)]) sharing one evaluation of φ on the 2-D rule."""
        if closed:
            k = np.asarray(act.closed_form["kernel"](qi, ci), dtype=np.float64)
            kd = np.asarray(act.closed_form["deriv_kernel"](qi, ci), dtype=np.float64)
            return k, kd

        def values(x1: np.ndarray, x2: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
            f1 = act.fn(x1)
            d1 = act.derivative(x1, f1)
            if x2 is x1:
                return [(f1, f1), (d1, d1)]
            f2 = act.fn(x2)
            return [(f1, f2), (d1, act.derivative(x2, f2))]

        smoothed = None
        if "smoothed" in act.closed_form:  # ψ(y) = E_e[φ(y + σe)] in closed form (ELU, SELU)
            psi = act.closed_form["smoothed"]

            def smoothed(y1: np.ndarray, y2: np.ndarray, sig: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
                p1 = psi(y1, sig)
                p2 = p1 if y2 is y1 else psi(y2, sig)
                return [(p1[0], p2[0]), (p1[1], p2[1])]

        k, kd = _acts._pair_expectations(
            values, qi, ci, scale=act.scale, smooth=act.smooth, order=o, smoothed=smoothed
        )
        return k, kd

    coarse_order = max(6, order // 2)
    # the c-map's denominator on each rule, so that c = 1 maps to 1 exactly on both (the rules'
    # errors at c ≈ 1 and at c = 1 then cancel, which matters near the edge of chaos)
    den_fine = sw * kernels(q, np.ones_like(q), order)[0] + sb
    den_coarse = sw * kernels(q, np.ones_like(q), coarse_order)[0] + sb
    c = np.zeros_like(q)
    below = np.zeros_like(q)  # largest c seen left of c* (the c-map above the diagonal)
    chi_c = np.full(q.shape, np.nan)
    active = np.ones(q.shape, dtype=bool)
    fine = np.zeros(q.shape, dtype=bool)  # on the full rule
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        qi, ci, fi = q[idx], c[idx], fine[idx]
        k, kd = np.empty(idx.size), np.empty(idx.size)
        for on_fine, o in ((False, coarse_order), (True, order)):
            sel = fi == on_fine
            if np.any(sel):
                k[sel], kd[sel] = kernels(qi[sel], ci[sel], o)
        den = np.where(fi, den_fine[idx], den_coarse[idx])
        f = (sw[idx] * k + sb[idx]) / den
        fp = sw[idx] * qi * kd / den
        g = f - ci
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = ci - g / (fp - 1.0)
        lo = np.where(g > 0, np.maximum(below[idx], ci), below[idx])
        below[idx] = lo
        # Newton where it is safe; else c ↦ f(c) from the left of c* (monotone: f increases) or
        # halving back towards the last point left of c* (right of c* the slope can exceed 1)
        ok = (fp < 1.0) & np.isfinite(newton) & (newton >= lo) & (newton <= 1.0)
        cn = np.where(ok, newton, np.where(g > 0, f, 0.5 * (lo + ci)))
        cn = np.clip(cn, 0.0, 1.0)
        step = np.abs(cn - ci)
        # on the full rule a step below 1e-10 leaves c* to ~1e-18 (quadratic convergence) and
        # χ_c, taken at ci, to ~1e-10 relative: below the rule's own error
        done = fi & ((step <= 1e-10) | (np.abs(g) <= 1e-15))
        chi_c[idx[done]] = sw[idx[done]] * kd[done]
        c[idx] = cn
        to_fine = ~fi & ((step <= 1e-7) | (cn > 0.99))  # near c = 1 only the full rule resolves g
        below[idx[to_fine]] = 0.0  # the coarse rule's c* is not the full rule's: forget its bracket
        fine[idx] = fi | to_fine
        active[idx] = ~done
    c = np.where(c < 1e-15, 0.0, c)  # odd φ with σ_b = 0: c* = 0 exactly (Newton lands on ~1e-32)
    left = np.flatnonzero(np.isnan(chi_c))  # did not settle within max_iter: report where it is
    if left.size:
        chi_c[left] = sw[left] * kernels(q[left], c[left], order)[1]
    return c, chi_c


def _solve(
    act: Activation, sigma_w2: Any, sigma_b2: Any, *, q0: float = 1.0, order: int = 12, order1d: int = 12
) -> dict[str, Any]:
    """Everything at once, vectorised: q*, c*, χ₁, χ_c*, ξ_q, ξ_c (scalars in → floats out).

    ``order``: Gauss–Legendre nodes per panel and axis of the 2-D rule for c*; ``order1d``: Gauss–Legendre nodes per panel
    of the 1-D rule (48: accurate to ~1e-9 up to q ≈ 500; the phase diagram uses fewer).
    """
    sw_a, sb_a, scalar = _params(sigma_w2, sigma_b2)
    q0 = check_number("q0", q0, low=0.0, low_open=True)
    shape = sw_a.shape
    sw, sb = sw_a.ravel(), sb_a.ravel()
    q = _q_star(act, sw, sb, q0, order=order1d)
    finite = np.isfinite(q)
    # χ₁ and the ξ_q slope at q* (for q* = inf: the large-q limit, exact for homogeneous φ)
    q_eval = np.where(finite, q, 1e12)
    m, d, p = _moments(act, q_eval, order1d)
    chi = sw * d
    slope = sw * (d + p)
    with np.errstate(divide="ignore"):
        xi_q = np.where(slope < 1.0, -1.0 / np.log(np.where(slope > 0, slope, 1.0)), np.inf)
    xi_q = np.where(np.abs(slope - 1.0) <= _CRIT_TOL, np.inf, xi_q)
    xi_q = np.where(slope <= 0, 0.0, xi_q)
    xi_q = np.where(finite, xi_q, np.nan)
    c = np.ones_like(q)
    chi_c = chi.copy()
    chaotic = finite & (q > 0) & (chi > 1.0 + _CRIT_TOL)
    if np.any(chaotic):
        idx = np.flatnonzero(chaotic)
        cc, xc = _c_star(act, sw[idx], sb[idx], q[idx], order)
        c[idx], chi_c[idx] = cc, xc
    c = np.where(finite, c, np.nan)
    chi_c = np.where(finite, chi_c, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi_c = -1.0 / np.log(chi_c)
    near1 = np.abs(chi_c - 1.0) <= _CRIT_TOL
    xi_c = np.where(near1, np.inf, xi_c)
    xi_c = np.where(chi_c <= 0, 0.0, xi_c)
    xi_c = np.where(chi_c > 1.0 + _CRIT_TOL, np.nan, xi_c)  # no finite depth scale (divergent map)
    res = {"q_star": q, "c_star": c, "chi1": chi, "chi_c": chi_c, "xi_q": xi_q, "xi_c": xi_c}
    return {k: _out(v.reshape(shape), scalar) for k, v in res.items()}


def chi1(activation: str | Activation, sigma_w2: Any, sigma_b2: Any, *, q0: float = 1.0) -> Any:
    """χ₁ = σ_w² E[φ′(√q* z)²]: the mean squared singular value of one layer's Jacobian.

    χ₁ < 1 ordered (gradients vanish), χ₁ > 1 chaotic (gradients explode), χ₁ = 1 the edge of chaos
    (Poole et al. 2016; Schoenholz et al. 2017). For q* = inf, the large-q limit.

    >>> chi1("relu", 2.0, 0.0), round(chi1("tanh", 1.0, 0.0), 12)
    (1.0, 1.0)
    """
    return _solve(_act(activation), sigma_w2, sigma_b2, q0=q0)["chi1"]


def depth_scales(activation: str | Activation, sigma_w2: Any, sigma_b2: Any, *, q0: float = 1.0) -> tuple[Any, Any]:
    """(ξ_q, ξ_c): depths over which the length and correlation maps forget their input.

    ξ_q⁻¹ = −log[χ₁ + σ_w² E[φ″(√q* z) φ(√q* z)]] and ξ_c⁻¹ = −log χ_c*, with
    χ_c* = σ_w² E[φ′(u₁)φ′(u₂)] at c* (= χ₁ when c* = 1) (Schoenholz et al. 2017, "Deep
    Information Propagation"). ξ = inf at criticality; nan where q* = inf.

    >>> xi_q, xi_c = depth_scales("relu", 1.0, 0.5)   # χ₁ = 1/2: ξ = 1/log 2
    >>> round(xi_q, 6), round(xi_c, 6)
    (1.442695, 1.442695)
    """
    r = _solve(_act(activation), sigma_w2, sigma_b2, q0=q0)
    return r["xi_q"], r["xi_c"]


def trainable_depth(activation: str | Activation, sigma_w2: Any, sigma_b2: Any, *, q0: float = 1.0) -> Any:
    """≈ 6 ξ_c: the depth up to which Schoenholz et al. (2017) found random networks trainable.

    >>> round(trainable_depth("relu", 1.0, 0.5), 3)
    8.656
    """
    return 6.0 * depth_scales(activation, sigma_w2, sigma_b2, q0=q0)[1]


def _phase_of(chi: float) -> str:
    if not math.isfinite(chi):
        return "chaotic" if chi == math.inf else "undefined"
    if abs(chi - 1.0) <= _CRIT_TOL:
        return "critical"
    return "ordered" if chi < 1.0 else "chaotic"


def phase(activation: str | Activation, sigma_w2: float, sigma_b2: float, *, q0: float = 1.0) -> str:
    """"ordered" (χ₁ < 1), "critical" (|χ₁ − 1| <= 1e-6) or "chaotic" (χ₁ > 1).

    >>> phase("tanh", 0.5, 0.0), phase("tanh", 1.0, 0.0), phase("tanh", 2.0, 0.0)
    ('ordered', 'critical', 'chaotic')
    """
    sw = check_number("sigma_w2", sigma_w2, low=0.0)
    sb = check_number("sigma_b2", sigma_b2, low=0.0)
    return _phase_of(float(chi1(activation, sw, sb, q0=q0)))


# ---------------------------------------------------------------------------------------------
# The edge of chaos
# ---------------------------------------------------------------------------------------------
def _chi1_q(act: Activation, sw: np.ndarray, sb: np.ndarray, order1d: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """(χ₁, q*) on 1-D arrays: _solve's χ₁ without the correlation map."""
    q = _q_star(act, sw, sb, 1.0, order=order1d)
    d = _moments(act, np.where(np.isfinite(q), q, 1e12), order1d)[1]
    return sw * d, q


def _edges_between(
    act: Activation, sb: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """The σ_w² in [lo, hi] where χ₁ = 1, per entry of ``sb`` (χ₁(lo) < 1 <= χ₁(hi) assumed).

    The one root-finder of the edge of chaos (:func:`critical_sigma_w2` and the phase diagram's
    critical line): 1/φ′(0)² exactly for an odd φ with σ_b = 0 when it lies in the bracket;
    otherwise the Illinois variant of regula falsi, vectorised over the entries, to
    |Δσ_w²| <= 1e-13 + 4ε·σ_w². Returns (roots, reasons): nan and a reason where χ₁ jumps over 1 at
    the root (the length map starts to diverge there) or reaches 1 only where q* = inf.
    """
    sb = np.asarray(sb, dtype=np.float64)
    x0, x1 = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
    root = np.full(sb.shape, np.nan)
    zero = np.zeros(1)
    if float(act.fn(zero)[0]) == 0.0 and float(act.deriv(zero)[0]) != 0.0:
        s = 1.0 / float(act.deriv(zero)[0]) ** 2
        cand = (sb == 0) & (x0 <= s) & (s <= x1)
        if np.any(cand):
            k = np.flatnonzero(cand)
            g = _chi1_q(act, np.array([s * (1 - 1e-6), s * (1 + 1e-6)]), np.zeros(2))[0] - 1.0
            if g[0] < 0 < g[1]:
                root[k] = s
    todo = np.flatnonzero(np.isnan(root))
    if todo.size:
        a, b, s_b = x0[todo], x1[todo], sb[todo]
        fa = _chi1_q(act, a, s_b)[0] - 1.0
        fb = _chi1_q(act, b, s_b)[0] - 1.0
        active = np.ones(todo.size, dtype=bool)
        for _ in range(200):
            i = np.flatnonzero(active)
            if i.size == 0:
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                x = b[i] - fb[i] * (b[i] - a[i]) / (fb[i] - fa[i])
            lo_i, hi_i = np.minimum(a[i], b[i]), np.maximum(a[i], b[i])
            x = np.where(np.isfinite(x) & (x > lo_i) & (x < hi_i), x, 0.5 * (a[i] + b[i]))
            fx = _chi1_q(act, x, s_b[i])[0] - 1.0
            flip = fx * fb[i] < 0
            a[i] = np.where(flip, b[i], a[i])
            fa[i] = np.where(flip, fb[i], 0.5 * fa[i])  # Illinois: halve the stale end's value
            b[i], fb[i] = x, fx
            active[i] = (np.abs(b[i] - a[i]) > 1e-13 + 4 * np.finfo(float).eps * np.abs(b[i])) & (fx != 0)
        root[todo] = b
    reasons = [""] * sb.size
    chi, q = _chi1_q(act, root, sb) if sb.size else (np.zeros(0), np.zeros(0))
    up = _chi1_q(act, root * (1 + 1e-9), sb)[0] if sb.size else np.zeros(0)
    for k in range(sb.size):
        if abs(chi[k] - 1.0) > 1e-6:
            reasons[k] = (
                f"no edge of chaos: chi1 jumps from below 1 to {up[k]:.6g} at sigma_w2 = {root[k]:.6g}, where the "
                "length map starts to diverge (q* = inf)"
            )
        elif not math.isfinite(float(q[k])):
            # χ₁ = 1 only in the large-q limit (softplus: σ_w² → 2 like ReLU), where q* = inf: the
            # root is an artefact of the divergent length map, not a critical point
            reasons[k] = f"no edge of chaos: chi1 reaches 1 only at sigma_w2 = {root[k]:.6g}, where the length map diverges (q* = inf)"
        if reasons[k]:
            root[k] = np.nan
    return root, reasons


def critical_sigma_w2(activation: str | Activation, sigma_b2: float = 0.0) -> float:
    """The σ_w² where χ₁ = 1 for the given σ_b²: the edge of chaos (Schoenholz et al. 2017).

    Closed form for homogeneous φ (χ₁ = σ_w² E[φ′²] does not depend on q*): 2 for ReLU,
    2/(1 + a²) for leaky ReLU, 1 for linear. For odd smooth φ with σ_b = 0 the ordered phase has
    q* = 0 and χ₁ = σ_w² φ′(0)², so the edge is 1/φ′(0)² (1 for tanh). Otherwise regula falsi
    (Illinois) on χ₁(σ_w²) − 1 with q* solved at every trial (sigmoid: σ_w² ≈ 1e2 with σ_b = 0),
    from the first upward crossing on a geometric scan. The phase diagram's critical line uses the
    same root-finder between its grid points, so the two agree to ~1e-12.

    Raises ValueError where χ₁ = 1 is not reached at a finite fixed point: where χ₁ jumps over 1
    as the length map starts to diverge (gelu, silu, mish with σ_b = 0), or reaches 1 only in the
    large-q limit with q* = inf (softplus: asymptotically a ReLU at σ_w² = 2).

    >>> critical_sigma_w2("tanh"), critical_sigma_w2("relu"), critical_sigma_w2("linear")
    (1.0, 2.0, 1.0)
    >>> round(critical_sigma_w2("tanh", 0.05), 3)
    1.761
    """
    act = _act(activation)
    sb = check_number("sigma_b2", sigma_b2, low=0.0)
    if act.homogeneous:
        return 1.0 / float(act.deriv_second_moment(1.0))

    def f(sw: float) -> float:
        return float(_chi1_q(act, np.array([sw]), np.array([sb]))[0][0]) - 1.0

    zero = np.zeros(1)
    if sb == 0.0 and float(act.fn(zero)[0]) == 0.0:
        d0 = float(act.deriv(zero)[0]) ** 2
        if d0 > 0:
            s = 1.0 / d0
            if f(s * (1 - 1e-6)) < 0 < f(s * (1 + 1e-6)):
                return s
    lo = 0.5 / max(act.max_deriv, 1e-12) ** 2
    if f(lo) >= 0:
        lo = lo * 1e-3
    hi = max(2.0 * lo, 1.0)
    while f(hi) <= 0:
        hi *= 2.0
        if hi > 1e8:
            raise ValueError(
                f"No edge of chaos found for activation {act.spec!r} with sigma_b2={sb!r}: "
                f"chi1 stays below 1 for sigma_w2 up to 1e8."
            )
    # scan [lo, hi] for the first upward crossing of χ₁ = 1 between two finite fixed points: χ₁ can
    # cross 1, then fall back to its large-q limit where q* = inf (elu with σ_b > 0), and a
    # crossing into q* = inf is where the length map starts to diverge, not an edge of chaos
    grid = np.geomspace(lo, hi, 65)
    chi, q = _chi1_q(act, grid, np.full_like(grid, sb))
    g, fin = chi - 1.0, np.isfinite(q)
    up = (g[:-1] < 0) & (g[1:] >= 0)
    good = np.flatnonzero(up & fin[:-1] & fin[1:])
    j = int(good[0]) if good.size else int(np.flatnonzero(up)[0])
    root, reasons = _edges_between(act, np.array([sb]), grid[j : j + 1], grid[j + 1 : j + 2])
    if reasons[0]:
        raise ValueError(
            f"No edge of chaos with a finite fixed point for activation {act.spec!r} with sigma_b2={sb!r}: "
            + reasons[0].removeprefix("no edge of chaos: ")
            + "."
        )
    return float(root[0])


# ---------------------------------------------------------------------------------------------
# One point of the (σ_w², σ_b²) plane
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeanFieldPoint:
    """Every mean-field quantity at one (activation, σ_w², σ_b²).

    ``phase`` is "ordered", "critical" or "chaotic" from χ₁; ``trainable_depth`` = 6 ξ_c.
    Non-finite values are meaningful: ξ = inf at criticality, q* = inf for a divergent length
    map (then c*, ξ_q, ξ_c are nan).
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    c_star: float
    chi1: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str
    trainable_depth: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (non-finite floats stay floats; the CLI turns them into JSON null)."""
        return asdict(self)

    def notes(self) -> list[str]:
        """Plain-language explanations of the non-finite values."""
        out = []
        if self.q_star == math.inf:
            out.append("q* = inf: the length map diverges (no finite fixed point), so c*, xi_q and xi_c are undefined.")
        if self.q_star == 0.0:
            out.append("q* = 0: the pre-activation variance decays to zero with depth (sigma_b2 = 0 and phi(0) = 0, chi1 <= 1).")
        if self.xi_c == math.inf or self.xi_q == math.inf:
            out.append("xi = inf: at the edge of chaos (chi = 1) signals propagate to any depth (decay is sub-exponential).")
        return out


def point(activation: str | Activation, sigma_w2: float, sigma_b2: float, *, q0: float = 1.0) -> MeanFieldPoint:
    """All mean-field quantities at one point, as a :class:`MeanFieldPoint`.

    >>> p = point("tanh", 1.5, 0.05)
    >>> p.phase, round(p.q_star, 4), round(p.chi1, 4), round(p.xi_c, 2)
    ('ordered', 0.418, 0.9386, 15.79)
    """
    act = _act(activation)
    sw = check_number("sigma_w2", sigma_w2, low=0.0)
    sb = check_number("sigma_b2", sigma_b2, low=0.0)
    r = _solve(act, sw, sb, q0=q0)
    return MeanFieldPoint(
        activation=act.spec,
        sigma_w2=sw,
        sigma_b2=sb,
        q_star=r["q_star"],
        c_star=r["c_star"],
        chi1=r["chi1"],
        chi_c=r["chi_c"],
        xi_q=r["xi_q"],
        xi_c=r["xi_c"],
        phase=_phase_of(r["chi1"]),
        trainable_depth=6.0 * r["xi_c"],
    )
