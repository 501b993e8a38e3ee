"""Accuracy of the Gaussian expectations behind the mean-field theory, against references
computed here, independently of initlab's rules: scipy's adaptive quad (nested, in the rotated
coordinates u₁ = √q z₁, u₂ = √q (c z₁ + √(1−c²) z₂), with the kink and switch of each integrand as
break points), closed forms, and Monte Carlo as a sanity check."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, optimize

from initlab import activations as A
from initlab import theory as T

QS = [0.01, 1.0, 16.7, 50.0, 200.0, 1000.0]
CS = [-1.0, -0.99, -0.5, 0.0, 0.5, 0.9, 0.999, 1.0]
_Z = 10.0
_INV = 1.0 / math.sqrt(2.0 * math.pi)


def _quad_points(f, centre: float, width: float) -> float:
    """∫ f over [−10, 10] by scipy's quad, split at centre, centre ± width, centre ± 3·width."""
    pts = sorted({p for p in (centre - 3 * width, centre - width, centre, centre + width, centre + 3 * width) if -_Z < p < _Z})
    edges = [-_Z, *pts, _Z]
    with warnings.catch_warnings():  # quad's roundoff notices at 1e-13 requested accuracy
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return sum(integrate.quad(f, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)[0] for a, b in zip(edges[:-1], edges[1:]))


def _scalar(g):
    return lambda x: float(g(np.array([x]))[0])


def ref_1d(g, q: float) -> float:
    """E[g(√q z)] by quad, split where g bends (x = 0 and |x| = 1, 3)."""
    s = math.sqrt(q)
    return _quad_points(lambda z: g(s * z) * math.exp(-0.5 * z * z) * _INV, 0.0, 1.0 / s)


def ref_2d(g1, g2, q: float, c: float) -> float:
    """E[g1(u₁) g2(u₂)] by nested quad on the rotated coordinates (inner break points on u₂ = 0)."""
    s = math.sqrt(q)
    if abs(c) == 1.0:
        return ref_1d(lambda x: g1(x) * g2(c * x), q)
    r = math.sqrt(1.0 - c * c)

    def outer(z1: float) -> float:
        inner = _quad_points(lambda z2: g2(s * (c * z1 + r * z2)) * math.exp(-0.5 * z2 * z2) * _INV, -c * z1 / r, 1.0 / (s * r))
        return g1(s * z1) * inner * math.exp(-0.5 * z1 * z1) * _INV

    return _quad_points(outer, 0.0, 1.0 / s)


@pytest.mark.parametrize("which", ["fn", "deriv"])
@pytest.mark.parametrize("name", A.names())
def test_2d_expectation_to_1e8_relative(name: str, which: str) -> None:
    """Every activation, φ and φ′, q up to 1000, c in [−1, 1] with ±1 exactly: error below
    1e-8 relative (and below 1e-12 of √(E[g²]E[g²]) where the value itself is 0)."""
    act = A.get(name)
    g = getattr(act, which)
    gs = _scalar(g)
    closed = act.kernel if which == "fn" else act.deriv_kernel
    for q in QS:
        scale = ref_2d(gs, gs, q, 1.0)  # E[g(u)²]: the Cauchy–Schwarz bound of |E[g(u₁)g(u₂)]|
        for c in CS:
            ref = ref_2d(gs, gs, q, c)
            tol = 1e-8 * abs(ref) + 1e-12 * scale
            quad = A.gaussian_expectation_2d(g, g, q, c, scale=act.scale, smooth=act.smooth)
            assert abs(quad - ref) <= tol, (name, which, q, c, quad, ref)
            assert abs(closed(q, c) - ref) <= tol, (name, which, q, c, closed(q, c), ref)


@pytest.mark.parametrize("name", A.names())
def test_1d_expectations_to_1e10_relative(name: str) -> None:
    """The length map's integrals E[φ²], E[φ′²], E[φ] to 1e-10 (and E[φφ″], for ξ_q, to 1e-8) at q <= 1000."""
    act = A.get(name)
    for q in QS:
        for ours, g, rel in [
            (act.second_moment(q), lambda x: act.fn(x) ** 2, 1e-10),
            (act.deriv_second_moment(q), lambda x: act.deriv(x) ** 2, 1e-10),
            (act.mean(q), act.fn, 1e-10),
            # φφ″ bends faster than φ (GELU's φ″ is a bump of width 1): measured 6e-9 at worst
            (act.expect(lambda x: act.fn(x) * act.deriv2(x), q), lambda x: act.fn(x) * act.deriv2(x), 1e-8),
        ]:
            gs = _scalar(g)
            ref = ref_1d(gs, q)
            size = ref_1d(lambda x: gs(x) ** 2, q) ** 0.5  # RMS of the integrand: the scale of the sum
            assert abs(ours - ref) <= rel * abs(ref) + 1e-13 * size, (name, q, ours, ref)


def test_c_equal_one_is_the_length_map_integral() -> None:
    """At c = 1 the 2-D rule is the 1-D rule: the correlation map keeps c = 1 fixed exactly."""
    for name in ["tanh", "selu", "gelu", "softplus"]:
        act = A.get(name)
        for q in [0.3, 16.7, 800.0]:
            k = A.gaussian_expectation_2d(act.fn, act.fn, q, 1.0, scale=act.scale, smooth=act.smooth)
            assert k == pytest.approx(act.second_moment(q), rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "selu", "gelu", "relu", "sigmoid"])
def test_2d_expectation_agrees_with_monte_carlo(name: str) -> None:
    act = A.get(name)
    rng = np.random.default_rng(20261130)
    n = 400_000
    z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
    for q, c in [(1.0, 0.5), (16.7, -0.5), (200.0, 0.9)]:
        u1 = math.sqrt(q) * z1
        u2 = math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
        prod = act.fn(u1) * act.fn(u2)
        se = float(np.std(prod)) / math.sqrt(n)
        assert abs(float(np.mean(prod)) - act.kernel(q, c)) <= 5 * se, (name, q, c)


def test_closed_forms_vectorise_and_match_the_rule() -> None:
    q = np.array([0.5, 16.7, 300.0])[:, None]
    c = np.array([-1.0, -0.3, 0.0, 0.7, 1.0])[None, :]
    for name in ["relu", "leaky_relu(0.2)", "erf", "linear"]:
        act = A.get(name)
        for closed, g in [(act.kernel, act.fn), (act.deriv_kernel, act.deriv)]:
            quad = A.gaussian_expectation_2d(g, g, q, c, scale=act.scale, smooth=act.smooth)
            np.testing.assert_allclose(closed(q, c), quad, rtol=1e-10, atol=1e-12 * float(np.max(np.abs(quad))))


# --- derived quantities --------------------------------------------------------------------------
def _reference_point(name: str, sw2: float, sb2: float, q_guess: float, c_guess: float) -> tuple[float, float, float]:
    """(q*, c*, χ_c) from the scipy references alone (brentq on the length and correlation maps)."""
    act = A.get(name)
    f, d = _scalar(act.fn), _scalar(act.deriv)
    q = optimize.brentq(lambda v: sw2 * ref_1d(lambda x: f(x) ** 2, v) + sb2 - v, 0.5 * q_guess, 2.0 * q_guess, xtol=1e-13)
    den = sw2 * ref_1d(lambda x: f(x) ** 2, q) + sb2

    def cmap(cc: float) -> float:
        return (sw2 * ref_2d(f, f, q, cc) + sb2) / den - cc

    c = optimize.brentq(cmap, max(0.0, c_guess - 0.02), min(0.999, c_guess + 0.02), xtol=1e-12)
    return q, c, sw2 * ref_2d(d, d, q, c)


@pytest.mark.parametrize(
    "name, sw2, sb2",
    [("selu", 1.5, 0.1), ("elu", 1.8, 0.05), ("tanh", 21.0, 0.05), ("tanh", 2.5, 0.2), ("tanh", 3.0, 0.1)],
)
def test_c_star_chi_c_xi_c_match_references(name: str, sw2: float, sb2: float) -> None:
    p = T.point(name, sw2, sb2)
    assert p.phase == "chaotic" and 0 < p.c_star < 1
    q, c, chi_c = _reference_point(name, sw2, sb2, p.q_star, p.c_star)
    assert p.q_star == pytest.approx(q, rel=1e-10)
    assert p.c_star == pytest.approx(c, abs=1e-9)
    assert p.chi_c == pytest.approx(chi_c, rel=1e-9)
    assert p.xi_c == pytest.approx(-1.0 / math.log(chi_c), rel=1e-8)
    if name == "tanh" and sw2 == 21.0:
        assert 16.0 < p.q_star < 17.5  # the q* ≈ 16.7 case of the external check
