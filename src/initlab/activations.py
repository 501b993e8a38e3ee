"""The one list of activation functions in initlab.

Each nonlinearity is one :class:`Activation` object, used by every part of the project:

* the engine (:mod:`initlab.nn`) calls :meth:`Activation.forward` and :meth:`Activation.derivative`;
* the theory (:mod:`initlab.theory`) uses the Gaussian expectations
  (:meth:`Activation.expect`, :meth:`Activation.second_moment`, :meth:`Activation.deriv_second_moment`),
  in closed form for the ReLU family and the identity, by quadrature otherwise;
* the gains (:func:`initlab.init.gain`, :func:`initlab.init.calculate_gain`) use
  :attr:`Activation.torch_nonlinearity` and the expectations;
* the probe (:mod:`initlab.diagnostics`) uses :meth:`Activation.saturated_mask` and
  :attr:`Activation.can_die` to decide what counts as saturated or dead, and
  :func:`from_torch` to recognise torch activation modules.

Never add a second list of activations elsewhere: register a new one here with :func:`register`.

>>> act = get("tanh")
>>> float(act.forward(np.array([0.0]))[0]), float(act.derivative(np.array([0.0]))[0])
(0.0, 1.0)
>>> round(get("relu").second_moment(2.0), 12)   # E[relu(sqrt(2) z)^2] = 2/2
1.0
>>> get("leaky_relu(0.3)").param
0.3
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from initlab._validation import check_number, suggest

__all__ = [
    "Activation",
    "get",
    "names",
    "register",
    "from_torch",
    "gaussian_expectation",
    "gaussian_nodes",
    "gaussian_expectation_2d",
    "gaussian_nodes_2d",
    "SELU_ALPHA",
    "SELU_SCALE",
]

Array = np.ndarray
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# ---------------------------------------------------------------------------------------------
# Gaussian expectations: E_z[g(√q z)] and E[g1(u₁) g2(u₂)] for a correlated Gaussian pair
# ---------------------------------------------------------------------------------------------
# Composite Gauss–Legendre rules in z ~ N(0, 1) units. The breakpoints are a fixed set that
# resolves the Gaussian weight itself (_BASE) plus, around the point p where the integrand bends
# (a kink, or a switch of width a), p and p ± a·ρᵏ while a·ρᵏ < _TOP: panels graded
# geometrically towards the feature, so each panel is smooth and its width is about its distance
# from the feature. A kink at p (ReLU family, ELU/SELU) is then integrated exactly, and a switch as
# sharp as tanh(√q z) at q = 1000 (width 0.03 in z) costs log₃(_TOP/a) panels more, not a finer grid.
_Z = 9.0  # N(0, 1) mass beyond ±9 is 2e-19: negligible in float64
_BASE = np.array([-_Z, -5.0, -2.0, 0.0, 2.0, 5.0, _Z])  # resolves exp(−z²/2) to ~1e-13 with 10 nodes a panel
_RHO = 3.0  # grading ratio of the panels around a feature
_TOP = 2.0  # graded offsets stop here: _BASE resolves anything broader
_A_MIN = 1e-12  # a feature narrower than this (z units) is not refined further
_ORDER_1D = 12
_ORDER_2D = 12
_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _gauss_legendre(order: int) -> tuple[np.ndarray, np.ndarray]:
    if order not in _GL_CACHE:
        _GL_CACHE[order] = np.polynomial.legendre.leggauss(order)
    return _GL_CACHE[order]


def _n_graded(a: np.ndarray) -> np.ndarray:
    """Number of graded offsets a·ρᵏ (k = 0, 1, ...) below _TOP for feature widths a (z units)."""
    a = np.maximum(np.asarray(a, dtype=np.float64), _A_MIN)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.ceil(np.log(_TOP / a) / math.log(_RHO))
    return np.where(a < _TOP, k, 0.0).astype(np.int64)


def _n_nodes(n_graded: int, order: int, centred: bool) -> int:
    """Nodes of a _composite rule: ``order`` per panel."""
    return order * (_BASE.size - 1 + 2 * n_graded + int(centred))


def _composite(
    p: np.ndarray | None, a: np.ndarray, n_graded: int, order: int, *, centred: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w (Gaussian density included) of E_z[h(z)], one rule per entry of ``a``.

    ``p`` (shape of ``a``; None means 0, a breakpoint of _BASE already) is where h bends and ``a``
    how narrow the bend is, in z units; ``centred``: p itself is a breakpoint (a kink there). Offsets beyond _TOP become empty panels, so every rule has
    :func:`_n_nodes` nodes. Node-major: shapes ``(n,) + a.shape`` (the elementwise work then runs
    along the long trailing axes).
    """
    gx, gw = _gauss_legendre(order)
    shape = a.shape
    lead = (1,) * a.ndim
    offs = np.maximum(a, _A_MIN) * (_RHO ** np.arange(n_graded)).reshape((-1,) + lead)
    offs = np.where(offs < _TOP, offs, 0.0)
    centre = np.zeros(lead) if p is None else p
    parts = [np.broadcast_to(_BASE.reshape((-1,) + lead), (_BASE.size,) + shape), centre - offs, centre + offs]
    if p is not None and centred:
        parts.append(p[None])
    br = np.sort(np.clip(np.concatenate(parts, axis=0), -_Z, _Z), axis=0)
    lo = br[:-1]
    half = (br[1:] - lo) * 0.5
    z = (lo + half * (gx + 1.0).reshape((-1, 1) + lead)).reshape((-1,) + shape)
    # w = half·gw·exp(−z²/2)/√(2π), as exp(log(gw/√(2π)) − z²/2)·half in place (fewer passes)
    w = z * z
    w *= -0.5
    w += np.broadcast_to(np.log(gw * _INV_SQRT_2PI).reshape((-1, 1) + lead), (order,) + half.shape).reshape(w.shape)
    np.exp(w, out=w)
    w *= np.broadcast_to(half, (order,) + half.shape).reshape(w.shape)
    return z, w


def _check_q(q: Any) -> np.ndarray:
    q_arr = np.asarray(q, dtype=np.float64)
    if np.any(q_arr < 0) or not np.all(np.isfinite(q_arr)):
        raise ValueError(f"The 'q' argument (a variance) must be finite and >= 0; got {q!r}.")
    return q_arr


def _check_c(c: Any) -> np.ndarray:
    c_arr = np.asarray(c, dtype=np.float64)
    if np.any(np.abs(c_arr) > 1) or not np.all(np.isfinite(c_arr)):
        raise ValueError(f"The 'c' argument (a correlation) must be in [-1, 1]; got {c!r}.")
    return c_arr


def gaussian_nodes(q: Any, *, scale: float = 4.0, order: int = _ORDER_1D) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x = √q·z and weights w with E_z[g(√q·z)] ≈ Σ w·g(x), one row per entry of ``q``.

    Composite Gauss–Legendre in z on panels split at 0 (where every activation bends or kinks)
    and graded geometrically (ratio 3) from ±(scale/4)/√q outwards, plus fixed panels for the
    Gaussian weight on [−9, 9]. ``scale`` is the activation's :attr:`Activation.scale` (4 for tanh,
    whose poles at ±iπ/2 set how fast it bends). Measured against scipy's adaptive quad with the
    default ``order`` (nodes per panel), for every activation initlab knows and 0.01 <= q <= 1000:
    E[φ²], E[φ′²], E[φ] within 1e-10 relative, E[φφ″] within 6e-9 (tests/test_activations_expectation.py). The rule of :func:`gaussian_expectation`, exposed so that several
    integrands can share one evaluation of φ. Shapes ``q.shape + (n,)``; every row has the same
    number of nodes (the rows needing fewer panels get empty ones).

    >>> x, w = gaussian_nodes(2.0)
    >>> round(float(np.sum(w * x**2)), 12)
    2.0
    """
    q_arr = _check_q(q)
    s = np.sqrt(q_arr)
    with np.errstate(divide="ignore"):
        a = np.where(s > 0, (scale / 4.0) / np.where(s > 0, s, 1.0), np.inf)
    z, w = _composite(None, a, int(np.max(_n_graded(a), initial=0)), int(order))
    return np.moveaxis(s * z, 0, -1), np.moveaxis(w, 0, -1)


def _positive_nodes(q: np.ndarray, a: np.ndarray, n_graded: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`gaussian_nodes` for a 1-D float64 ``q > 0`` whose ``a = (scale/4)/√q`` and number of
    graded offsets (the largest of :func:`_n_graded`'s over ``a``) the caller has at hand: the same
    nodes and weights, bit for bit, without checking ``q`` or working out ``a`` and ``n_graded``
    again (the theory's fixed-point solvers call this thousands of times on one or two q's)."""
    z, w = _composite(None, a, n_graded, order)
    return (np.sqrt(q) * z).T, w.T


def gaussian_expectation(g: Callable[[Array], Array], q: Any, *, scale: float = 4.0, order: int = _ORDER_1D) -> Any:
    """E_z[g(√q·z)] for z ~ N(0, 1), vectorised over ``q`` (scalar or array, q >= 0).

    By the rule of :func:`gaussian_nodes` (``scale``: how wide the region is where ``g`` bends,
    in pre-activation units; 4 for tanh).

    >>> round(float(gaussian_expectation(lambda x: x**2, 3.0)), 12)
    3.0
    """
    x, w = gaussian_nodes(q, scale=scale, order=order)
    out = np.sum(g(x) * w, axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def _pair_plan(
    q: np.ndarray, c: np.ndarray, scale: float, smooth: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(σ, s_y, a_out, a_in) of the rule of :func:`gaussian_nodes_2d`."""
    h = scale / 4.0
    ac = np.abs(c)
    sig = np.sqrt(q * (1.0 - ac))
    sy = np.sqrt(q * ac)
    # ψ(y) = E_e[φ(y + σe)] bends over max(σ, h) (smooth φ) or has φ's kink blurred over σ (kinked φ)
    a_y = np.where(sig == 0, h, np.maximum(sig, h) if smooth else np.minimum(sig, h))
    with np.errstate(divide="ignore"):
        a_out = np.where(sy > 0, a_y / np.where(sy > 0, sy, 1.0), np.inf)
        a_in = np.where(sig > 0, h / np.where(sig > 0, sig, 1.0), np.inf)
    return sig, sy, a_out, a_in


def _pair_nodes(
    sig: np.ndarray,
    sy: np.ndarray,
    a_out: np.ndarray,
    a_in: np.ndarray,
    neg: np.ndarray,
    order: int,
    smooth: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rule of gaussian_nodes_2d for 1-D parameter arrays, node-major: x1, x2 of shape
    (n_i, n_o, rows), w_in of that shape or (n_i, 1, 1) when the inner rule is shared (a smooth
    integrand with no narrow feature), w_out of shape (n_o, rows)."""
    if np.all(sy == 0):  # c = 0 or q = 0: u₁, u₂ independent; one outer node, w = 0
        wz, w_out = np.zeros((1,) + sy.shape), np.ones((1,) + sy.shape)
    else:
        wz, w_out = _composite(None, a_out, int(np.max(_n_graded(a_out))), order)
        w_out /= np.sum(w_out, axis=0)
    y = sy * wz  # [n_o, rows]
    n_graded = int(np.max(_n_graded(a_in)))
    if np.all(sig == 0):  # c = ±1 or q = 0: u₂ = ±u₁; one inner node, e = 0
        x = y[None]
        w_in = np.ones((1, 1, 1))
    elif smooth and n_graded == 0:  # nothing to align: one inner rule for all
        ez, w_in = _composite(None, np.zeros((1, 1)), 0, order)
        x = y + sig * ez
    else:  # the kink or switch of φ(y + σe) at e = −y/σ is a panel edge (smooth: the middle of one)
        safe = np.where(sig > 0, sig, 1.0)
        centre = np.where(sig > 0, -y / safe, 0.0)
        ez, w_in = _composite(centre, np.broadcast_to(a_in, centre.shape), n_graded, order, centred=not smooth)
        x = y + sig * ez
    x2 = np.where(neg, -x, x) if np.any(neg) else x
    return x, x2, w_in, w_out


def gaussian_nodes_2d(
    q: Any, c: Any, *, scale: float = 4.0, smooth: bool = False, order: int = _ORDER_2D
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rule for E[g1(u₁)·g2(u₂)], (u₁, u₂) Gaussian with variances q and correlation c.

    Returns (x1, x2, w_in, w_out) with
    E[g1(u₁) g2(u₂)] ≈ Σᵢ w_outᵢ · (Σⱼ w_inᵢⱼ g1(x1ᵢⱼ)) · (Σⱼ w_inᵢⱼ g2(x2ᵢⱼ)).

    It rests on u₁ = √q(√|c| w + √(1−|c|) e₁), u₂ = √q(±√|c| w + √(1−|c|) e₂) with w, e₁, e₂
    independent N(0, 1) (± the sign of c): the pair's expectation is E_w[ψ1(y) ψ2(±y)],
    y = √(q|c|) w, of the 1-D smoothings ψ(y) = E_e[g(y + σe)], σ = √(q(1−|c|)). Both integrals are
    composite Gauss–Legendre rules (:func:`gaussian_nodes`' panels) split where the integrand
    bends: the outer at y = 0, graded from the blurred kink's width σ (``smooth=False``: g has a
    kink at 0) or from max(σ, scale/4); the inner at y + σe = 0, graded from (scale/4)/σ. The kink and
    saturation lines u₁ = 0 and u₂ = 0 are thus panel edges, where a tensor product of 1-D rules
    (or Gauss–Hermite) cuts across them. c = ±1 (σ = 0) and c = 0 (y = 0) are exact limits (one
    inner or one outer node); at c = 1 the outer rule is :func:`gaussian_nodes`' rule for
    ``order``. x2 is x1 (c >= 0) or −x1 (c < 0). Shapes ``broadcast(q, c).shape + (n_o, n_i)``
    and ``+ (n_o,)``.

    >>> x1, x2, w_in, w_out = gaussian_nodes_2d(2.0, 0.3)
    >>> round(float(np.sum(w_out * np.sum(w_in * x1, -1) * np.sum(w_in * x2, -1))), 12)  # q·c
    0.6
    """
    q_b, c_b = np.broadcast_arrays(_check_q(q), _check_c(c))
    shape = q_b.shape
    qf, cf = q_b.ravel(), c_b.ravel()
    sig, sy, a_out, a_in = _pair_plan(qf, cf, scale, smooth)
    x1, x2, w_in, w_out = _pair_nodes(sig, sy, a_out, a_in, cf < 0, int(order), smooth)
    w_in = np.broadcast_to(w_in, x1.shape)

    def rows_first(v: np.ndarray) -> np.ndarray:
        return np.moveaxis(v, -1, 0).reshape(shape + v.shape[:-1])

    def swap(v: np.ndarray) -> np.ndarray:  # (rows..., n_i, n_o) -> (rows..., n_o, n_i)
        return np.swapaxes(v, -1, -2)

    return swap(rows_first(x1)), swap(rows_first(x2)), swap(rows_first(w_in)), rows_first(w_out)


_CHUNK = 1 << 20  # nodes per block: keeps the temporaries in cache-sized pieces


def _pair_expectations(
    values: Callable[[Array, Array], list[tuple[Array, Array]]],
    q: Any,
    c: Any,
    *,
    scale: float = 4.0,
    smooth: bool = False,
    order: int = _ORDER_2D,
    smoothed: Callable[[Array, Array, Array], list[tuple[Array, Array]]] | None = None,
) -> list[np.ndarray]:
    """[E[a1ₖ(u₁) a2ₖ(u₂)] for the pairs (a1ₖ, a2ₖ) = values(x1, x2)], shape broadcast(q, c).

    ``smoothed(y1, y2, σ)``, when given, returns the same pairs' inner integrals
    ψ(y) = E_e[a(y + σe)] in closed form (ELU, SELU) at y1 = y and y2 = ±y; the inner rule is then
    skipped (σ > 0; σ = 0 needs no inner rule).

    The rule of :func:`gaussian_nodes_2d`, with the points grouped by their panel layout so that
    none pays for another's panels (the phase diagram mixes q from 1e-3 to 1e3), in blocks of
    about 2²⁰ nodes. ``values`` gets node arrays (x2 is x1 when c >= 0: reuse its evaluation)
    and returns the integrand pairs; ψ is summed once per distinct array.
    """
    q_b, c_b = np.broadcast_arrays(_check_q(q), _check_c(c))
    shape = q_b.shape
    qf, cf = q_b.ravel(), c_b.ravel()
    sig, sy, a_out, a_in = _pair_plan(qf, cf, scale, smooth)
    k_out = np.where(sy > 0, _n_graded(a_out), -1)
    k_in = np.where(sig > 0, _n_graded(a_in), -1)
    outs: list[np.ndarray] | None = None
    for ko, ki in sorted(set(zip(k_out.tolist(), k_in.tolist()))):
        idx = np.flatnonzero((k_out == ko) & (k_in == ki))
        n_o = 1 if ko < 0 else _n_nodes(ko, order, False)
        n_i = 1 if ki < 0 else _n_nodes(ki, order, not smooth)
        if smoothed is not None and ki >= 0:
            if ko < 0:
                wz, w_out = np.zeros((1, idx.size)), np.ones((1, idx.size))
            else:
                wz, w_out = _composite(None, a_out[idx], ko, order)
                w_out /= np.sum(w_out, axis=0)
            y = sy[idx] * wz
            neg = cf[idx] < 0
            pairs = smoothed(y, np.where(neg, -y, y) if np.any(neg) else y, np.broadcast_to(sig[idx], y.shape))
            if outs is None:
                outs = [np.zeros(qf.size) for _ in pairs]
            for k, (p1, p2) in enumerate(pairs):
                outs[k][idx] = np.einsum("ik,ik,ik->k", w_out, p1, p2)
            continue
        step = max(1, _CHUNK // (n_o * n_i))
        for start in range(0, idx.size, step):
            j = idx[start:start + step]
            x1, x2, w_in, w_out = _pair_nodes(sig[j], sy[j], a_out[j], a_in[j], cf[j] < 0, order, smooth)
            w_in = np.broadcast_to(w_in, x1.shape)
            pairs = values(x1, x2)
            if outs is None:
                outs = [np.zeros(qf.size) for _ in pairs]
            psi: dict[int, np.ndarray] = {}  # ψ(y) = Σⱼ w_in·v, once per distinct array v
            for k, (v1, v2) in enumerate(pairs):
                for v in (v1, v2):
                    if id(v) not in psi:
                        psi[id(v)] = np.einsum("ijk,ijk->jk", w_in, v)
                outs[k][j] = np.einsum("ik,ik,ik->k", w_out, psi[id(v1)], psi[id(v2)])
    if outs is None:  # no points: ask values() how many pairs it makes
        outs = [np.zeros(0) for _ in values(np.zeros((1, 1, 1)), np.zeros((1, 1, 1)))]
    return [o.reshape(shape) for o in outs]


def gaussian_expectation_2d(
    g1: Callable[[Array], Array],
    g2: Callable[[Array], Array],
    q: Any,
    c: Any,
    *,
    scale: float = 4.0,
    smooth: bool = False,
    order: int = _ORDER_2D,
) -> Any:
    """E[g1(u₁)·g2(u₂)] for (u₁, u₂) Gaussian with variances q and correlation c.

    The integral of the correlation map (Poole et al. 2016, "Exponential expressivity in deep
    neural networks through transient chaos"), by the rule of :func:`gaussian_nodes_2d` (``scale``
    as in :func:`gaussian_nodes`; ``smooth=True`` only if g1, g2 have no kink at 0), vectorised
    over broadcast ``q`` and ``c`` (c in [-1, 1], ±1 included). Measured against scipy's nested
    adaptive quad for every activation initlab knows (φ and φ′), q from 0.01 to 1000 and c in
    {±1, −0.99, ±0.5, 0, 0.9, 0.999}, default ``order``: at worst 4e-11 relative, 7e-12 of
    √(E[g1(u₁)²] E[g2(u₂)²]) (tested to 1e-8 relative in tests/test_activations_expectation.py;
    order 8 gives ~1e-7). The ReLU family, erf and GELU have closed forms (:meth:`Activation.kernel`).

    >>> round(float(gaussian_expectation_2d(lambda x: x, lambda x: x, 2.0, 0.3)), 12)  # q·c
    0.6
    >>> round(float(gaussian_expectation_2d(np.tanh, np.tanh, 1.0, 1.0)), 12) == round(
    ...     float(gaussian_expectation(lambda x: np.tanh(x) ** 2, 1.0)), 12)
    True
    """
    same = g1 is g2

    def values(x1: Array, x2: Array) -> list[tuple[Array, Array]]:
        v1 = g1(x1)
        return [(v1, v1 if same and x2 is x1 else g2(x2))]

    out = _pair_expectations(values, q, c, scale=scale, smooth=smooth, order=order)[0]
    return float(out) if np.ndim(out) == 0 else out


# ---------------------------------------------------------------------------------------------
# The Activation object
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """A nonlinearity φ with everything initlab needs to know about it.

    Attributes:
        name: canonical name (``"tanh"``, ``"leaky_relu"``...).
        param: the one parameter of parametric activations (leaky_relu's negative slope,
            elu's alpha), else None.
        fn, deriv, deriv2: φ, φ′ and φ″ as functions of the pre-activation x.
        deriv_from_output: optional cheaper φ′ from (x, y=φ(x)) (tanh: 1 − y²).
        torch_nonlinearity: the name torch.nn.init.calculate_gain accepts for it, or None.
        torch_module: the torch.nn class name of the module form (``"Tanh"``).
        scale: half-width of the nonlinear region in pre-activation units; the quadrature
            rules grade their panels from scale/4 (the distance over which φ bends: tanh's poles
            at ±iπ/2 give 4 for tanh).
        smooth: φ and φ′ are smooth at 0 (False for the ReLU family, ELU and SELU, whose kink the
            2-D rule resolves on graded panels).
        saturating: bounded activations (tanh, sigmoid) whose units saturate.
        saturation_threshold: |φ′(x)| below ``saturation_threshold · max|φ′|`` counts as saturated.
        can_die: φ′ is exactly 0 on a half-line, so a unit can be dead on a whole batch (ReLU).
        closed_form: closed forms of E[φ(√q z)²], E[φ′(√q z)²], E[φ(√q z)] by name
            (``second_moment``, ``deriv_second_moment``, ``mean``), and of the two-input kernels
            E[φ(u₁)φ(u₂)], E[φ′(u₁)φ′(u₂)] as functions of (q, c) (``kernel``, ``deriv_kernel``).
        homogeneous: φ(λx) = λφ(x) for λ > 0 (linear and the ReLU family), so the length map
            is linear in q and the correlation map does not depend on q.
    """

    name: str
    fn: Callable[[Array], Array] = field(repr=False)
    deriv: Callable[[Array], Array] = field(repr=False)
    deriv2: Callable[[Array], Array] = field(repr=False)
    param: float | None = None
    deriv_from_output: Callable[[Array, Array], Array] | None = field(default=None, repr=False)
    torch_nonlinearity: str | None = None
    torch_module: str | None = None
    scale: float = 4.0
    saturating: bool = False
    saturation_threshold: float = 0.05
    max_deriv: float = 1.0
    can_die: bool = False
    closed_form: dict[str, Callable[..., Any]] = field(default_factory=dict, repr=False)
    homogeneous: bool = False
    smooth: bool = True

    # -- engine ------------------------------------------------------------------------------
    def forward(self, x: Array) -> Array:
        """φ(x), elementwise, keeping the dtype of ``x``."""
        return self.fn(x)

    __call__ = forward

    def derivative(self, x: Array, y: Array | None = None) -> Array:
        """φ′(x); if ``y = φ(x)`` is given and a cheaper formula exists, it is used."""
        if y is not None and self.deriv_from_output is not None:
            return self.deriv_from_output(x, y)
        return self.deriv(x)

    def second_derivative(self, x: Array) -> Array:
        """φ″(x) (0 almost everywhere for the ReLU family)."""
        return self.deriv2(x)

    # -- probe -------------------------------------------------------------------------------
    def saturated_mask(self, x: Array, y: Array | None = None) -> Array:
        """Boolean mask of pre-activations where the unit is saturated: |φ′(x)| < thr·max|φ′|.

        Only bounded activations saturate (tanh, sigmoid); for the others the mask is all False
        (a ReLU's zero side is "dead", not saturated: see :attr:`can_die`). ``y = φ(x)``, when
        given, lets φ′ come from the output (:meth:`derivative`), e.g. tanh′ = 1 − y².

        >>> get("tanh").saturated_mask(np.array([0.0, 4.0])).tolist()
        [False, True]
        """
        if not self.saturating:
            return np.zeros(np.shape(x if y is None else y), dtype=bool)
        return np.abs(self.derivative(x, y)) < self.saturation_threshold * self.max_deriv

    def inactive_mask(self, x: Array) -> Array:
        """Boolean mask where φ′(x) == 0 (a ReLU unit is off); all False if it cannot die."""
        if not self.can_die:
            return np.zeros(np.shape(x), dtype=bool)
        return self.deriv(x) == 0

    # -- theory ------------------------------------------------------------------------------
    def expect(self, g: Callable[[Array], Array], q: Any) -> Any:
        """E_z[g(√q·z)], z ~ N(0, 1), by adaptive composite quadrature (see gaussian_expectation)."""
        return gaussian_expectation(g, q, scale=self.scale)

    def second_moment(self, q: Any) -> Any:
        """E[φ(√q·z)²] — the length map's integrand."""
        if "second_moment" in self.closed_form:
            return self.closed_form["second_moment"](q)
        return self.expect(lambda x: self.fn(x) ** 2, q)

    def deriv_second_moment(self, q: Any) -> Any:
        """E[φ′(√q·z)²] — χ₁ = σ_w² times this at q*."""
        if "deriv_second_moment" in self.closed_form:
            return self.closed_form["deriv_second_moment"](q)
        return self.expect(lambda x: self.deriv(x) ** 2, q)

    def mean(self, q: Any) -> Any:
        """E[φ(√q·z)]."""
        if "mean" in self.closed_form:
            return self.closed_form["mean"](q)
        return self.expect(self.fn, q)

    def kernel(self, q: Any, c: Any) -> Any:
        """E[φ(u₁)φ(u₂)] for Gaussian u₁, u₂ of variance q and correlation c (the c-map's integral).

        Closed form where known (the arc-cosine kernel of the ReLU family, Cho & Saul 2009; erf,
        Williams 1997; GELU), else the rule of :func:`gaussian_expectation_2d`, with its inner
        integral in closed form for ELU and SELU (measured within 4e-11 relative for q <= 1000).
        """
        if "kernel" in self.closed_form:
            return self.closed_form["kernel"](q, c)
        return self._kernel(q, c, derivative=False)

    def deriv_kernel(self, q: Any, c: Any) -> Any:
        """E[φ′(u₁)φ′(u₂)] (variance q, correlation c): χ_c = σ_w² times this at c*."""
        if "deriv_kernel" in self.closed_form:
            return self.closed_form["deriv_kernel"](q, c)
        return self._kernel(q, c, derivative=True)

    def _kernel(self, q: Any, c: Any, *, derivative: bool) -> Any:
        g = self.deriv if derivative else self.fn
        if "smoothed" not in self.closed_form:
            return gaussian_expectation_2d(g, g, q, c, scale=self.scale, smooth=self.smooth)
        psi = self.closed_form["smoothed"]

        def values(x1: Array, x2: Array) -> list[tuple[Array, Array]]:
            v1 = g(x1)
            return [(v1, v1 if x2 is x1 else g(x2))]

        def smoothed(y1: Array, y2: Array, sig: Array) -> list[tuple[Array, Array]]:
            return [(psi(y1, sig)[int(derivative)], psi(y2, sig)[int(derivative)])]

        out = _pair_expectations(values, q, c, scale=self.scale, smooth=self.smooth, smoothed=smoothed)[0]
        return float(out) if np.ndim(out) == 0 else out

    @property
    def spec(self) -> str:
        """The string that :func:`get` parses back to this activation (``"leaky_relu(0.3)"``)."""
        return self.name if self.param is None else f"{self.name}({self.param!r})"

    def __str__(self) -> str:
        return self.spec


# ---------------------------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------------------------
def _expit(x: Array) -> Array:
    return special.expit(x)


def _as_out(x: Any) -> Any:
    return float(x) if np.ndim(x) == 0 else x


def _qc(q: Any, c: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.broadcast_arrays(_check_q(q), _check_c(c))


def _arccos1(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """E[relu(u₁)relu(u₂)] = q/(2π)·(sin θ + (π − θ) cos θ), θ = arccos c (Cho & Saul 2009, n = 1)."""
    theta = np.arccos(np.clip(c, -1.0, 1.0))
    return q / (2 * math.pi) * (np.sin(theta) + (math.pi - theta) * np.cos(theta))


def _arccos0(c: np.ndarray) -> np.ndarray:
    """E[H(u₁)H(u₂)] = (π − θ)/(2π), θ = arccos c (Cho & Saul 2009, n = 0): the ReLU′ kernel."""
    return (math.pi - np.arccos(np.clip(c, -1.0, 1.0))) / (2 * math.pi)


def _identity() -> Activation:
    return Activation(
        name="linear",
        fn=lambda x: x,
        deriv=lambda x: np.ones_like(x),
        deriv2=lambda x: np.zeros_like(x),
        torch_nonlinearity="linear",
        torch_module="Identity",
        closed_form={
            "second_moment": lambda q: q,
            "deriv_second_moment": lambda q: np.ones_like(q) if np.ndim(q) else 1.0,
            "mean": lambda q: np.zeros_like(q) if np.ndim(q) else 0.0,
            "kernel": lambda q, c: _as_out(np.asarray(q, dtype=np.float64) * np.asarray(c, dtype=np.float64)),
            "deriv_kernel": lambda q, c: _as_out(np.ones(np.broadcast(np.asarray(q), np.asarray(c)).shape)),
        },
        homogeneous=True,
    )


def _sigmoid() -> Activation:
    def d(x: Array) -> Array:
        s = _expit(x)
        return s * (1 - s)

    def d2(x: Array) -> Array:
        s = _expit(x)
        return s * (1 - s) * (1 - 2 * s)

    return Activation(
        name="sigmoid",
        fn=_expit,
        deriv=d,
        deriv2=d2,
        deriv_from_output=lambda x, y: y * (1 - y),
        torch_nonlinearity="sigmoid",
        torch_module="Sigmoid",
        scale=8.0,
        saturating=True,
        max_deriv=0.25,
    )


def _tanh() -> Activation:
    def d(x: Array) -> Array:
        t = np.tanh(x)
        return 1 - t * t

    def d2(x: Array) -> Array:
        t = np.tanh(x)
        return -2 * t * (1 - t * t)

    return Activation(
        name="tanh",
        fn=np.tanh,
        deriv=d,
        deriv2=d2,
        deriv_from_output=lambda x, y: 1 - y * y,
        torch_nonlinearity="tanh",
        torch_module="Tanh",
        scale=4.0,
        saturating=True,
    )


def _leaky(name: str, slope: float) -> Activation:
    a = slope

    def fn(x: Array) -> Array:
        if a == 0.0:
            return np.maximum(x, 0)
        return np.where(x > 0, x, x * np.asarray(a, dtype=x.dtype))

    def d(x: Array) -> Array:
        one = np.ones((), dtype=x.dtype)
        return np.where(x > 0, one, np.asarray(a, dtype=x.dtype))

    def m2(q: Any) -> Any:
        return (1 + a * a) * np.asarray(q) / 2 if np.ndim(q) else (1 + a * a) * q / 2

    def dm2(q: Any) -> Any:
        v = (1 + a * a) / 2
        return np.full(np.shape(q), v) if np.ndim(q) else v

    def mu(q: Any) -> Any:
        return (1 - a) * np.sqrt(np.asarray(q, dtype=np.float64) / (2 * math.pi)) if np.ndim(q) else (
            (1 - a) * math.sqrt(q / (2 * math.pi))
        )

    def kern(q: Any, c: Any) -> Any:
        # φ = a·x + (1−a)·relu(x); E[u₁ relu(u₂)] = q·c/2; relu part: arc-cosine kernel n=1.
        qa, ca = _qc(q, c)
        return _as_out(a * a * qa * ca + a * (1 - a) * qa * ca + (1 - a) ** 2 * _arccos1(qa, ca))

    def dkern(q: Any, c: Any) -> Any:
        qa, ca = _qc(q, c)
        return _as_out(a * a + a * (1 - a) + (1 - a) ** 2 * _arccos0(ca) + 0.0 * qa)

    is_relu = name == "relu"
    return Activation(
        name=name,
        fn=fn,
        deriv=d,
        deriv2=lambda x: np.zeros_like(x),
        param=None if is_relu else a,
        deriv_from_output=(lambda x, y: (y > 0).astype(y.dtype)) if is_relu else None,
        torch_nonlinearity=name,
        torch_module="ReLU" if is_relu else "LeakyReLU",
        scale=1.0,
        can_die=(a == 0.0),
        closed_form={"second_moment": m2, "deriv_second_moment": dm2, "mean": mu, "kernel": kern, "deriv_kernel": dkern},
        homogeneous=True,
        smooth=False,
    )


def _relu() -> Activation:
    return _leaky("relu", 0.0)


def _leaky_relu(negative_slope: float = 0.01) -> Activation:
    a = check_number("negative_slope", negative_slope)
    return _leaky("leaky_relu", a)


def _elu_like(name: str, alpha: float, lam: float) -> Activation:
    def fn(x: Array) -> Array:
        al = np.asarray(alpha * lam, dtype=x.dtype)
        return np.where(x > 0, lam * x, al * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)

    def d(x: Array) -> Array:
        return np.where(x > 0, lam, alpha * lam * np.exp(np.minimum(x, 0))).astype(x.dtype, copy=False)

    def d2(x: Array) -> Array:
        return np.where(x > 0, 0.0, alpha * lam * np.exp(np.minimum(x, 0))).astype(x.dtype, copy=False)

    def from_y(x: Array, y: Array) -> Array:
        return np.where(x > 0, np.asarray(lam, dtype=y.dtype), y + np.asarray(alpha * lam, dtype=y.dtype))

    def smoothed(y: Array, sig: Array) -> tuple[Array, Array]:
        """(E[φ(X)], E[φ′(X)]) for X ~ N(y, σ²), σ > 0: E[X; X > 0] = yΦ(y/σ) + σϕ(y/σ) and
        E[eˣ; X <= 0] = exp(y + σ²/2)·Φ(−(y + σ²)/σ), taken through log Φ so nothing overflows."""
        t = y / sig
        tail = np.exp(y + 0.5 * sig * sig + special.log_ndtr(-(y + sig * sig) / sig))
        below = special.ndtr(-t)
        pos = y * special.ndtr(t) + sig * np.exp(-0.5 * t * t) * _INV_SQRT_2PI
        return lam * pos + alpha * lam * (tail - below), lam * special.ndtr(t) + alpha * lam * tail

    return Activation(
        name=name,
        fn=fn,
        deriv=d,
        deriv2=d2,
        param=alpha if name == "elu" else None,
        deriv_from_output=from_y,
        torch_nonlinearity="selu" if name == "selu" else None,
        torch_module="SELU" if name == "selu" else "ELU",
        scale=6.0,
        max_deriv=max(lam, alpha * lam),
        smooth=False,
        closed_form={"smoothed": smoothed},
    )


def _elu(alpha: float = 1.0) -> Activation:
    return _elu_like("elu", check_number("alpha", alpha, low=0.0), 1.0)


def _selu() -> Activation:
    return _elu_like("selu", SELU_ALPHA, SELU_SCALE)


def _gelu() -> Activation:
    inv_sqrt2 = 1 / math.sqrt(2)

    def pdf(x: Array) -> Array:
        return np.exp(-0.5 * x * x) * np.asarray(_INV_SQRT_2PI, dtype=x.dtype)

    def cdf(x: Array) -> Array:
        return 0.5 * (1 + special.erf(x * np.asarray(inv_sqrt2, dtype=x.dtype)))

    def orthant(q: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
        """ρ = qc, a = q + 1, det(I + Σ) and θ = arccos(ρ/a), the angle of v = u − ε, ε ~ N(0, I)."""
        rho = q * c
        a = q + 1.0
        det = a * a - rho * rho
        theta = np.arccos(np.clip(rho / a, -1.0, 1.0))
        return rho, a, det, theta

    def kern(q: Any, c: Any) -> Any:
        # φ(u) = u·P(ε <= u): E[u₁u₂ 1{v₁ >= 0, v₂ >= 0}], v = u − ε; regress u on v (B = Σ(Σ+I)⁻¹,
        # C = Σ − BΣ) and use the orthant moments of v (Cho & Saul 2009's arc-cosine kernels)
        qa, ca = _qc(q, c)
        rho, a, det, th = orthant(qa, ca)
        p0 = (math.pi - th) / (2 * math.pi)
        m12 = a * (np.sin(th) + (math.pi - th) * np.cos(th)) / (2 * math.pi)
        m11 = a * (math.pi - th + np.sin(th) * np.cos(th)) / (2 * math.pi)
        b11, b12 = (qa * a - rho * rho) / det, rho / det
        c12 = rho - (rho * (qa * a - rho * rho) + rho * qa) / det
        return _as_out(c12 * p0 + 2 * b11 * b12 * m11 + (b11 * b11 + b12 * b12) * m12)

    def dkern(q: Any, c: Any) -> Any:
        # φ′ = Φ(u) + uϕ(u): E[Φ(u₁)Φ(u₂)] (an orthant probability), 2·E[Φ(u₁)u₂ϕ(u₂)] (tilt by ϕ(u₂),
        # then Stein's lemma), E[u₁ϕ(u₁)u₂ϕ(u₂)] = ρ / (2π det(I + Σ)^{3/2})
        qa, ca = _qc(q, c)
        rho, a, det, th = orthant(qa, ca)
        t1 = (math.pi - th) / (2 * math.pi)
        t2 = rho / a / np.sqrt(a) / (2 * math.pi) / np.sqrt(1.0 + qa - rho * rho / a)
        t3 = rho / (2 * math.pi * det**1.5)
        return _as_out(t1 + 2 * t2 + t3)

    return Activation(
        name="gelu",
        fn=lambda x: x * cdf(x),
        deriv=lambda x: cdf(x) + x * pdf(x),
        deriv2=lambda x: pdf(x) * (2 - x * x),
        torch_module="GELU",
        scale=5.0,
        max_deriv=1.1289,
        closed_form={"kernel": kern, "deriv_kernel": dkern},
    )


def _silu() -> Activation:
    def d(x: Array) -> Array:
        s = _expit(x)
        return s * (1 + x * (1 - s))

    def d2(x: Array) -> Array:
        s = _expit(x)
        return s * (1 - s) * (2 + x * (1 - 2 * s))

    return Activation(
        name="silu",
        fn=lambda x: x * _expit(x),
        deriv=d,
        deriv2=d2,
        torch_module="SiLU",
        scale=8.0,
        max_deriv=1.0998,
    )


def _softplus() -> Activation:
    def d2(x: Array) -> Array:
        s = _expit(x)
        return s * (1 - s)

    return Activation(
        name="softplus",
        fn=lambda x: np.logaddexp(np.zeros((), dtype=x.dtype), x),
        deriv=_expit,
        deriv2=d2,
        torch_module="Softplus",
        scale=8.0,
    )


def _mish() -> Activation:
    def sp(x: Array) -> Array:
        return np.logaddexp(np.zeros((), dtype=x.dtype), x)

    def d(x: Array) -> Array:
        t = np.tanh(sp(x))
        return t + x * (1 - t * t) * _expit(x)

    def d2(x: Array) -> Array:
        s = _expit(x)
        t = np.tanh(sp(x))
        dt = (1 - t * t) * s
        ddt = -2 * t * dt * s + (1 - t * t) * s * (1 - s)
        return 2 * dt + x * ddt

    return Activation(
        name="mish",
        fn=lambda x: x * np.tanh(sp(x)),
        deriv=d,
        deriv2=d2,
        torch_module="Mish",
        scale=8.0,
        max_deriv=1.0882,
    )


def _erf() -> Activation:
    two_over_sqrt_pi = 2 / math.sqrt(math.pi)

    def d(x: Array) -> Array:
        return np.exp(-x * x) * np.asarray(two_over_sqrt_pi, dtype=x.dtype)

    def m2(q: Any) -> Any:  # (2/π) arcsin(2q / (1 + 2q))
        qa = _check_q(q)
        return _as_out(2 / math.pi * np.arcsin(2 * qa / (1 + 2 * qa)))

    def dm2(q: Any) -> Any:  # (4/π) / sqrt(1 + 4q)
        qa = _check_q(q)
        return _as_out(4 / math.pi / np.sqrt(1 + 4 * qa))

    def kern(q: Any, c: Any) -> Any:  # (2/π) arcsin(2qc / (1 + 2q))  (Williams 1997)
        qa, ca = _qc(q, c)
        return _as_out(2 / math.pi * np.arcsin(2 * qa * ca / (1 + 2 * qa)))

    def dkern(q: Any, c: Any) -> Any:  # (4/π) / sqrt((1 + 2q)² − 4q²c²)
        qa, ca = _qc(q, c)
        return _as_out(4 / math.pi / np.sqrt((1 + 2 * qa) ** 2 - 4 * qa * qa * ca * ca))

    return Activation(
        name="erf",
        fn=lambda x: special.erf(x),
        deriv=d,
        deriv2=lambda x: -2 * x * d(x),
        scale=5.0,
        saturating=True,
        max_deriv=two_over_sqrt_pi,
        closed_form={
            "second_moment": m2,
            "deriv_second_moment": dm2,
            "mean": lambda q: _as_out(np.zeros_like(_check_q(q))),
            "kernel": kern,
            "deriv_kernel": dkern,
        },
    )


# name -> (factory, name of its parameter or None when it has none)
_REGISTRY: dict[str, tuple[Callable[..., Activation], str | None]] = {
    "linear": (_identity, None),
    "sigmoid": (_sigmoid, None),
    "tanh": (_tanh, None),
    "relu": (_relu, None),
    "leaky_relu": (_leaky_relu, "negative_slope"),
    "elu": (_elu, "alpha"),
    "selu": (_selu, None),
    "gelu": (_gelu, None),
    "silu": (_silu, None),
    "softplus": (_softplus, None),
    "mish": (_mish, None),
    "erf": (_erf, None),
}
_ALIASES: dict[str, str] = {"identity": "linear", "swish": "silu", "logistic": "sigmoid"}
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\(\s*(?:([A-Za-z_]+)\s*=\s*)?([^()]*?)\s*\))?\s*$")


def register(name: str, factory: Callable[..., Activation], param_name: str | None = None) -> None:
    """Add an activation to the one registry (``factory(param)`` or ``factory()`` builds it)."""
    if name in _REGISTRY or name in _ALIASES:
        raise ValueError(f"The 'name' argument must be a new activation name; {name!r} exists.")
    _REGISTRY[name] = (factory, param_name)


def names() -> list[str]:
    """Canonical names of every activation initlab knows.

    >>> names()[:4]
    ['linear', 'sigmoid', 'tanh', 'relu']
    """
    return list(_REGISTRY)


def get(activation: str | Activation, param: float | None = None) -> Activation:
    """The Activation for a name, a spec string like ``"leaky_relu(0.3)"``, or an Activation.

    ``param`` sets the parameter of parametric activations (leaky_relu's negative slope,
    default 0.01 as in torch; elu's alpha, default 1).

    >>> get("leaky_relu", 0.2).spec
    'leaky_relu(0.2)'
    >>> get("swish").name
    'silu'
    """
    if isinstance(activation, Activation):
        if param is not None:
            return get(activation.name, param)
        return activation
    if not isinstance(activation, str):
        raise TypeError(
            f"The 'activation' argument must be a name ({', '.join(names())}) or an Activation; "
            f"got {type(activation).__name__} {activation!r}."
        )
    m = _SPEC.match(activation)
    if not m:
        raise ValueError(
            f"The 'activation' argument must be a name like 'tanh' or 'leaky_relu(0.3)'; got {activation!r}."
        )
    name, kw, arg = m.group(1).lower(), m.group(2), m.group(3)
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        raise ValueError(
            f"The 'activation' argument must be one of {', '.join(names())}; "
            f"got {activation!r}{suggest(name, list(_REGISTRY) + list(_ALIASES))}."
        )
    factory, param_name = _REGISTRY[name]
    if arg is not None and arg != "":
        if param_name is None:
            raise ValueError(f"The activation {name!r} takes no parameter; got {activation!r}.")
        if kw is not None and kw != param_name:
            raise ValueError(f"The parameter of {name!r} is {param_name!r}; got {kw!r} in {activation!r}.")
        if param is not None:
            raise ValueError(f"The parameter of {name!r} was given twice: in {activation!r} and as param={param!r}.")
        try:
            param = float(arg)
        except ValueError:
            raise ValueError(f"The {param_name!r} of {name!r} must be a number; got {arg!r}.") from None
    if param is None:
        return factory()
    if param_name is None:
        raise ValueError(f"The activation {name!r} takes no parameter; got param={param!r}.")
    return factory(param)


def from_torch(module: Any) -> Activation | None:
    """The Activation equivalent to a torch activation module, or None if it is not one.

    Recognised by class name (no torch import): Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU,
    SELU, GELU (approximate="none" only), SiLU, Softplus (beta=1 only), Mish.
    """
    cls = type(module).__name__
    if cls == "LeakyReLU":
        return get("leaky_relu", float(module.negative_slope))
    if cls == "ELU":
        return get("elu", float(module.alpha))
    if cls == "GELU" and getattr(module, "approximate", "none") != "none":
        return None
    if cls == "Softplus" and float(getattr(module, "beta", 1.0)) != 1.0:
        return None
    for name, (factory, param_name) in _REGISTRY.items():
        if param_name is None:
            act = factory()
            if act.torch_module == cls:
                return act
    return None
