"""Tests of initlab.activations: derivatives, Gaussian expectations, closed forms, parsing, torch mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from initlab import activations as A

ALL = A.names()
# kinked activations: derivative tests avoid a neighbourhood of 0
KINKED = {"relu", "leaky_relu", "elu", "selu"}


def _points(name: str) -> np.ndarray:
    x = np.linspace(-4.0, 4.0, 81)
    if name in KINKED:
        x = x[np.abs(x) > 1e-3]
    return x


@pytest.mark.parametrize("name", ALL)
def test_derivative_matches_central_difference(name: str) -> None:
    act = A.get(name)
    x = _points(name)
    h = 1e-5
    fd = (act.fn(x + h) - act.fn(x - h)) / (2 * h)
    # central difference error O(h² φ‴) + rounding O(eps/h): 1e-6 is many times both
    np.testing.assert_allclose(act.deriv(x), fd, atol=1e-6, rtol=1e-6)
    fd2 = (act.deriv(x + h) - act.deriv(x - h)) / (2 * h)
    np.testing.assert_allclose(act.deriv2(x), fd2, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_derivative_from_output_agrees(name: str) -> None:
    act = A.get(name)
    x = _points(name)
    np.testing.assert_allclose(act.derivative(x, act.fn(x)), act.deriv(x), atol=1e-12)


def _quad(g, q: float) -> float:
    """E[g(√q z)] with scipy's adaptive quad, split at 0 and ±4/√q."""
    s = math.sqrt(q)
    f = lambda z: g(np.array([s * z]))[0] * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    pts = sorted({-12.0, -4.0 / s, 0.0, 4.0 / s, 12.0})
    return sum(integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0] for a, b in zip(pts[:-1], pts[1:]))


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu", "silu", "elu", "softplus", "mish", "erf"])
@pytest.mark.parametrize("q", [0.05, 1.0, 37.0, 500.0])
def test_quadrature_matches_scipy_quad(name: str, q: float) -> None:
    act = A.get(name)
    for ours, g in [
        (act.expect(lambda x: act.fn(x) ** 2, q), lambda x: act.fn(x) ** 2),
        (act.expect(lambda x: act.deriv(x) ** 2, q), lambda x: act.deriv(x) ** 2),
        (act.expect(act.fn, q), act.fn),
    ]:
        assert ours == pytest.approx(_quad(g, q), abs=1e-9, rel=1e-9)


def test_quadrature_is_vectorised() -> None:
    act = A.get("tanh")
    qs = np.array([0.1, 2.0, 500.0])
    vec = act.second_moment(qs)
    assert vec.shape == (3,)
    np.testing.assert_allclose(vec, [act.second_moment(float(q)) for q in qs], rtol=1e-14)


@pytest.mark.parametrize("spec", ["relu", "leaky_relu(0.2)", "linear", "erf"])
@pytest.mark.parametrize("q", [0.3, 2.0, 50.0])
def test_closed_forms_match_quadrature(spec: str, q: float) -> None:
    act = A.get(spec)
    assert act.closed_form  # these activations have closed forms
    assert act.second_moment(q) == pytest.approx(_quad(lambda x: act.fn(x) ** 2, q), rel=1e-9, abs=1e-12)
    assert act.deriv_second_moment(q) == pytest.approx(_quad(lambda x: act.deriv(x) ** 2, q), rel=1e-9, abs=1e-12)
    assert act.mean(q) == pytest.approx(_quad(act.fn, q), rel=1e-9, abs=1e-12)


def _relu_kernel_quad(q: float, c: float, a: float) -> tuple[float, float]:
    """E[φ(u₁)φ(u₂)], E[φ′(u₁)φ′(u₂)] for leaky ReLU (slope a) by 1-D quad over z₁ with the
    inner expectation over z₂ in closed form (E[relu(m + σz)] = mΦ(m/σ) + σφ(m/σ))."""
    s, sc = math.sqrt(q), math.sqrt(1 - c * c)

    def inner_fn(z1: float) -> float:
        m, sd = s * c * z1, s * sc
        e_relu = m * stats.norm.cdf(m / sd) + sd * stats.norm.pdf(m / sd)
        e_phi = a * m + (1 - a) * e_relu
        phi1 = s * z1 if z1 > 0 else a * s * z1
        return phi1 * e_phi * stats.norm.pdf(z1)

    def inner_d(z1: float) -> float:
        m, sd = s * c * z1, s * sc
        p_pos = stats.norm.cdf(m / sd)
        e_d = p_pos + a * (1 - p_pos)
        d1 = 1.0 if z1 > 0 else a
        return d1 * e_d * stats.norm.pdf(z1)

    k = sum(integrate.quad(inner_fn, lo, hi, epsabs=1e-12)[0] for lo, hi in [(-12, 0), (0, 12)])
    kd = sum(integrate.quad(inner_d, lo, hi, epsabs=1e-12)[0] for lo, hi in [(-12, 0), (0, 12)])
    return k, kd


@pytest.mark.parametrize("a", [0.0, 0.2])
@pytest.mark.parametrize("c", [-0.8, 0.0, 0.45, 0.95])
def test_arccos_kernel_matches_quadrature(a: float, c: float) -> None:
    act = A.get("relu") if a == 0.0 else A.get("leaky_relu", a)
    q = 1.7
    k, kd = _relu_kernel_quad(q, c, a)
    assert act.kernel(q, c) == pytest.approx(k, abs=1e-9)
    assert act.deriv_kernel(q, c) == pytest.approx(kd, abs=1e-9)


@pytest.mark.parametrize("name", ["tanh", "erf", "gelu"])
@pytest.mark.parametrize("c", [-0.5, 0.3, 0.99])
def test_2d_quadrature_matches_nested_quad(name: str, c: float) -> None:
    act = A.get(name)
    q = 2.3
    s, sc = math.sqrt(q), math.sqrt(1 - c * c)

    def outer(z1: float) -> float:
        inner = _quad(lambda x: act.fn(s * c * z1 + x), q * sc * sc)  # x = √q √(1−c²) z₂
        return float(act.fn(np.array([s * z1]))[0]) * inner * stats.norm.pdf(z1)

    ref = integrate.quad(outer, -10, 10, epsabs=1e-11, limit=200)[0]
    got = A.gaussian_expectation_2d(act.fn, act.fn, q, c, scale=act.scale, order=24)
    assert got == pytest.approx(ref, abs=1e-8)
    if name == "erf":  # the closed form (Williams 1997) against the same reference
        assert act.kernel(q, c) == pytest.approx(ref, abs=1e-8)


def test_erf_is_erf() -> None:
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(A.get("erf").fn(x), special.erf(x))


def test_expectation_rejects_bad_q() -> None:
    with pytest.raises(ValueError, match="'q'"):
        A.gaussian_expectation(np.tanh, -1.0)
    with pytest.raises(ValueError, match="'c'"):
        A.get("relu").kernel(1.0, 1.5)


# --- get(): parsing and errors ----------------------------------------------------------------
def test_get_parses_specs_and_aliases() -> None:
    assert A.get("leaky_relu(0.3)").param == 0.3
    assert A.get("leaky_relu(negative_slope=0.3)").param == 0.3
    assert A.get(" LeakyReLU ".replace("LeakyReLU", "leaky_relu")).param == 0.01
    assert A.get("TANH").name == "tanh"
    assert A.get("identity").name == "linear"
    assert A.get("logistic").name == "sigmoid"
    assert A.get("elu", 0.5).param == 0.5
    act = A.get("tanh")
    assert A.get(act) is act
    assert A.get(A.get("leaky_relu(0.3)").spec).param == 0.3  # spec round-trips


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        ("tanhh", ValueError, "did you mean 'tanh'"),
        ("tanh(0.3)", ValueError, "takes no parameter"),
        ("leaky_relu(alpha=0.3)", ValueError, "negative_slope"),
        ("leaky_relu(abc)", ValueError, "must be a number"),
        ("leaky relu", ValueError, "must be a name like"),
        (3, TypeError, "'activation' argument"),
    ],
)
def test_get_errors_name_the_problem(bad, exc, words: str) -> None:
    with pytest.raises(exc, match=words):
        A.get(bad)


def test_get_param_twice_and_param_for_plain() -> None:
    with pytest.raises(ValueError, match="twice"):
        A.get("leaky_relu(0.2)", 0.3)
    with pytest.raises(ValueError, match="takes no parameter"):
        A.get("tanh", 0.3)


def test_register_rejects_existing_names() -> None:
    with pytest.raises(ValueError, match="exists"):
        A.register("tanh", lambda: A.get("tanh"))


# --- from_torch ---------------------------------------------------------------------------------
def test_from_torch_maps_modules() -> None:
    nn = pytest.importorskip("torch.nn")
    assert A.from_torch(nn.Tanh()).name == "tanh"
    assert A.from_torch(nn.ReLU()).name == "relu"
    assert A.from_torch(nn.Sigmoid()).name == "sigmoid"
    leaky = A.from_torch(nn.LeakyReLU(0.2))
    assert leaky.name == "leaky_relu" and leaky.param == pytest.approx(0.2)
    assert A.from_torch(nn.ELU(alpha=0.7)).param == pytest.approx(0.7)
    assert A.from_torch(nn.GELU()).name == "gelu"
    assert A.from_torch(nn.GELU(approximate="tanh")) is None
    assert A.from_torch(nn.Softplus(beta=2.0)) is None
    assert A.from_torch(nn.Identity()).name == "linear"
    assert A.from_torch(nn.Linear(2, 2)) is None


def test_activations_match_torch_functions() -> None:
    torch = pytest.importorskip("torch")
    x = np.linspace(-5, 5, 101)
    t = torch.from_numpy(x)
    pairs = {
        "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
        "gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu,
        "softplus": torch.nn.functional.softplus, "mish": torch.nn.functional.mish,
        "selu": torch.nn.functional.selu, "elu": torch.nn.functional.elu, "erf": torch.erf,
    }
    for name, fn in pairs.items():
        np.testing.assert_allclose(A.get(name).fn(x), fn(t).numpy(), atol=1e-12, err_msg=name)
