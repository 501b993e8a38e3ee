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
# Gaussian expectations: E_z[g(sqrt(q) z)], z ~ N(0, 1)
# ---------------------------------------------------------------------------------------------
_Z_MAX = 12.0  # N(0,1) mass beyond 12 sigma is ~4e-33: negligible in float64
_GL_ORDER = 48
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_ORDER)


_GL_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {_GL_ORDER: (_GL_X, _GL_W)}


def _panel_rule(width: np.ndarray, order: int = _GL_ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w (including the Gaussian density) for E_z[g(z)], per row.

    Composite Gauss–Legendre on the panels [-Z, -a], [-a, 0], [0, a], [a, Z] where ``a`` is
    where the integrand's nonlinearity lives in z-units (``width``). A breakpoint at 0 handles
    kinks (ReLU family, ELU's second derivative), and the inner panels shrink with ``width`` so
    that a sharply switching integrand (tanh at q ≈ 500 is nearly a step in z) stays resolved,
    where a fixed-order Gauss–Hermite rule is off by several percent.
    """
    if order not in _GL_CACHE:
        _GL_CACHE[order] = np.polynomial.legendre.leggauss(order)
    gl_x, gl_w = _GL_CACHE[order]
    a = np.clip(width, 1e-12, _Z_MAX / 2.0)[..., None]
    edges = [(-_Z_MAX, -a), (-a, 0.0), (0.0, a), (a, _Z_MAX)]
    zs, ws = [], []
    for lo, hi in edges:
        lo_b = np.broadcast_to(lo, a.shape)
        hi_b = np.broadcast_to(hi, a.shape)
        half = (hi_b - lo_b) / 2.0
        zs.append(lo_b + half * (gl_x + 1.0))
        ws.append(half * gl_w)
    z = np.concatenate(zs, axis=-1)
    w = np.concatenate(ws, axis=-1) * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z, w


def _check_q(q: Any) -> np.ndarray:
    q_arr = np.asarray(q, dtype=np.float64)
    if np.any(q_arr < 0) or not np.all(np.isfinite(q_arr)):
        raise ValueError(f"The 'q' argument (a variance) must be finite and >= 0; got {q!r}.")
    return q_arr


def gaussian_nodes(q: Any, *, scale: float = 4.0, order: int = _GL_ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x = √q·z and weights w with E_z[g(√q·z)] ≈ Σ w·g(x), one row per entry of ``q``.

    The rule of :func:`gaussian_expectation`, exposed so that several integrands can share one
    evaluation of φ (the theory needs E[φ²], E[φ′²] and E[φφ″] at the same q). Shapes are
    ``q.shape + (4·order,)`` (``order`` Gauss–Legendre nodes on each of the four panels).

    >>> x, w = gaussian_nodes(2.0)
    >>> round(float(np.sum(w * x**2)), 12)
    2.0
    """
    q_arr = _check_q(q)
    s = np.sqrt(q_arr)
    with np.errstate(divide="ignore"):
        width = np.where(s > 0, scale / np.where(s > 0, s, 1.0), _Z_MAX)
    z, w = _panel_rule(width, int(order))
    return s[..., None] * z, w


def gaussian_expectation(g: Callable[[Array], Array], q: Any, *, scale: float = 4.0) -> Any:
    """E_z[g(√q·z)] for z ~ N(0, 1), vectorised over ``q`` (scalar or array, q >= 0).

    ``scale`` is the half-width, in pre-activation units, of the region where ``g`` is
    nonlinear (≈ 3 for tanh); it sets the inner quadrature panels to ±scale/√q.

    >>> round(float(gaussian_expectation(lambda x: x**2, 3.0)), 12)
    3.0
    """
    x, w = gaussian_nodes(q, scale=scale)
    out = np.sum(g(x) * w, axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def gaussian_nodes_2d(
    q: Any, c: Any, *, scale: float = 4.0, order: int = 16
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes (u₁, u₂) and weights w with E[g(u₁, u₂)] ≈ Σ w·g(u₁, u₂) for a correlated Gaussian pair.

    u₁ = √q(a z₁ + b z₂), u₂ = √q(a z₁ − b z₂), a = √((1+c)/2), b = √((1−c)/2): variances q,
    correlation c, and a rule symmetric in u₁ ↔ u₂ (so E[φ(u₁)²] = E[φ(u₂)²] exactly on the rule and
    c = 1 stays a fixed point of the correlation map). Tensor product of the 1-D composite
    Gauss–Legendre panel rule of :func:`gaussian_nodes` (``order`` nodes per panel), which stays
    accurate for large q where a Gauss–Hermite rule does not. Shapes ``broadcast(q, c).shape + (n, n)``.
    """
    q_arr = _check_q(q)
    c_arr = np.asarray(c, dtype=np.float64)
    if np.any(np.abs(c_arr) > 1) or not np.all(np.isfinite(c_arr)):
        raise ValueError(f"The 'c' argument (a correlation) must be in [-1, 1]; got {c!r}.")
    q_b, c_b = np.broadcast_arrays(q_arr, c_arr)
    s = np.sqrt(q_b)
    with np.errstate(divide="ignore"):
        width = np.where(s > 0, scale / np.where(s > 0, s, 1.0), _Z_MAX)
    z, w = _panel_rule(width, int(order))  # [..., n]
    a = (s * np.sqrt((1.0 + c_b) / 2.0))[..., None, None]
    b = (s * np.sqrt(np.clip((1.0 - c_b) / 2.0, 0.0, 1.0)))[..., None, None]
    u1 = a * z[..., :, None] + b * z[..., None, :]
    # the panel nodes are symmetric (z[::-1] = −z), so u₂(z₁, z₂) = u₁(z₁, −z₂) = u1[..., ::-1]:
    # callers may evaluate φ once on u1 and flip it
    return u1, u1[..., ::-1], w[..., :, None] * w[..., None, :]


def gaussian_expectation_2d(
    g1: Callable[[Array], Array],
    g2: Callable[[Array], Array],
    q: Any,
    c: Any,
    *,
    scale: float = 4.0,
    order: int = 16,
) -> Any:
    """E[g1(u₁)·g2(u₂)] for (u₁, u₂) Gaussian with variances q and correlation c.

    The integral of the correlation map (Poole et al. 2016, "Exponential expressivity in deep
    neural networks through transient chaos"), by the tensor-product rule of
    :func:`gaussian_nodes_2d`, vectorised over broadcast ``q`` and ``c`` (c in [-1, 1]). Accurate
    to ~1e-8 for smooth activations; the ReLU family and erf have closed forms
    (:meth:`Activation.kernel`).

    >>> round(float(gaussian_expectation_2d(lambda x: x, lambda x: x, 2.0, 0.3)), 9)  # q·c
    0.6
    """
    u1, u2, w = gaussian_nodes_2d(q, c, scale=scale, order=order)
    out = np.sum(g1(u1) * g2(u2) * w, axis=(-2, -1))
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
        scale: half-width of the nonlinear region in pre-activation units (for quadrature).
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
        Williams 1997), else a tensor-product quadrature (:func:`gaussian_expectation_2d`).
        """
        if "kernel" in self.closed_form:
            return self.closed_form["kernel"](q, c)
        return gaussian_expectation_2d(self.fn, self.fn, q, c, scale=self.scale)

    def deriv_kernel(self, q: Any, c: Any) -> Any:
        """E[φ′(u₁)φ′(u₂)] (variance q, correlation c): χ_c = σ_w² times this at c*."""
        if "deriv_kernel" in self.closed_form:
            return self.closed_form["deriv_kernel"](q, c)
        return gaussian_expectation_2d(self.deriv, self.deriv, q, c, scale=self.scale)

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
    qa = _check_q(q)
    ca = np.asarray(c, dtype=np.float64)
    if np.any(np.abs(ca) > 1) or not np.all(np.isfinite(ca)):
        raise ValueError(f"The 'c' argument (a correlation) must be in [-1, 1]; got {c!r}.")
    return np.broadcast_arrays(qa, ca)


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

    return Activation(
        name="gelu",
        fn=lambda x: x * cdf(x),
        deriv=lambda x: cdf(x) + x * pdf(x),
        deriv2=lambda x: pdf(x) * (2 - x * x),
        torch_module="GELU",
        scale=5.0,
        max_deriv=1.1289,
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
