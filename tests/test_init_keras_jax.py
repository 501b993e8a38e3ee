"""Keras / JAX semantics against their documented formulas: variance scaling, the truncation
constant, fan_avg / fan_geo_avg, layouts and the truncated named variants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import initlab.init as ii

ALPHA = 1e-4
TRUNC = 0.87962566103423978


def ks_p(x: np.ndarray, dist) -> float:
    return float(stats.kstest(np.asarray(x, dtype=np.float64).ravel(), dist.cdf).pvalue)


def test_truncation_constant_is_std_of_standard_normal_on_pm2() -> None:
    assert stats.truncnorm(-2, 2).std() == pytest.approx(TRUNC, rel=1e-15)
    from scipy.special import ndtr

    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    assert math.sqrt(1 - 4 * phi2 / (ndtr(2) - ndtr(-2))) == pytest.approx(TRUNC, rel=1e-15)


def _n(mode: str, fi: int, fo: int) -> float:
    return {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2, "fan_geo_avg": math.sqrt(fi * fo)}[mode]


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("distribution", ["normal", "truncated_normal", "uniform"])
def test_variance_scaling_keras_layout(mode: str, distribution: str) -> None:
    shape = (3, 3, 16, 32)  # Keras Conv2D kernel [kh, kw, in, out]
    fi, fo = 9 * 16, 9 * 32
    v = 2.0 / _n(mode, fi, fo)
    w = ii.variance_scaling(shape, scale=2.0, mode=mode, distribution=distribution, layout="keras", rng=7)
    if distribution == "normal":
        ref = stats.norm(0, math.sqrt(v))  # NOT silently truncated as Keras does
    elif distribution == "uniform":
        b = math.sqrt(3 * v)
        ref = stats.uniform(-b, 2 * b)
    else:
        s = math.sqrt(v) / TRUNC
        ref = stats.truncnorm(-2, 2, scale=s)
        assert np.abs(w).max() <= 2 * s * (1 + 1e-6)
    assert ks_p(w, ref) > ALPHA
    assert ref.var() == pytest.approx(v, rel=1e-12)
    assert ii.get(f"variance_scaling(scale=2.0, mode={mode}, distribution={distribution})").moments(
        shape, layout="keras")["var"] == pytest.approx(v, rel=1e-12)


@pytest.mark.parametrize(
    "name,scale,mode",
    [("he_truncated_normal", 2.0, "fan_in"), ("glorot_truncated_normal", 1.0, "fan_avg"),
     ("lecun_truncated_normal", 1.0, "fan_in")],
)
def test_keras_jax_named_truncated_normals(name: str, scale: float, mode: str) -> None:
    shape = (5, 24, 48)  # JAX Conv1D kernel [k, in, out]
    fi, fo = 5 * 24, 5 * 48
    s = math.sqrt(scale / _n(mode, fi, fo)) / TRUNC
    w = getattr(ii, name)(shape, layout="jax", rng=8)
    assert ks_p(w, stats.truncnorm(-2, 2, scale=s)) > ALPHA
    same = ii.variance_scaling(shape, scale=scale, mode=mode, distribution="truncated_normal", layout="jax", rng=8)
    assert np.array_equal(w, same)


@pytest.mark.parametrize(
    "name,scale,mode,dist",
    [("lecun_normal", 1.0, "fan_in", "normal"), ("lecun_uniform", 1.0, "fan_in", "uniform"),
     ("he_uniform", 2.0, "fan_in", "uniform"), ("glorot_uniform", 1.0, "fan_avg", "uniform"),
     ("he_normal", 2.0, "fan_in", "normal"), ("glorot_normal", 1.0, "fan_avg", "normal")],
)
def test_named_schemes_are_variance_scaling(name: str, scale: float, mode: str, dist: str) -> None:
    shape = (32, 48)
    a = getattr(ii, name)(shape, layout="keras", rng=3)
    b = ii.variance_scaling(shape, scale=scale, mode=mode, distribution=dist, layout="keras", rng=3)
    assert np.allclose(a, b, rtol=1e-6, atol=0)


def test_layouts_and_explicit_axes() -> None:
    assert ii.compute_fans((3, 3, 16, 32), layout="keras") == (144, 288)
    assert ii.compute_fans((3, 3, 16, 32), layout="jax") == (144, 288)
    assert ii.compute_fans((32, 16, 3, 3), layout="torch") == (144, 288)
    # JAX in_axis/out_axis (e.g. a [in, k, out] kernel)
    assert ii.compute_fans((16, 3, 32), in_axis=0, out_axis=-1) == (48, 96)
    # keras transposed conv kernel [k, k, out, in]
    assert ii.compute_fans((3, 3, 32, 16), layout="keras", transposed=True) == (144, 288)
    with pytest.raises(ValueError, match="in_axis"):
        ii.compute_fans((3, 4), in_axis=5)
    with pytest.raises(ValueError, match="layout"):
        ii.compute_fans((3, 4), layout="tf")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ii.compute_fans((3,), layout="keras")  # Keras silently returns fans here


def test_keras_orthogonal_layout_orthonormal_columns_of_out() -> None:
    w = ii.orthogonal((3, 3, 8, 16), layout="keras", rng=0).astype(np.float64)
    m = w.reshape(-1, 16)  # Keras: (prod(others), out) matrix with orthonormal columns
    assert np.allclose(m.T @ m, np.eye(16), atol=1e-5)


def test_jax_uniform_is_one_sided_and_maps_to_uniform_0_scale() -> None:
    # jax.nn.initializers.uniform(scale) samples [0, scale): initlab's uniform(a=0, b=scale)
    w = ii.uniform((100, 100), a=0.0, b=0.01, rng=0)
    assert w.min() >= 0 and w.max() < 0.01
    assert ks_p(w, stats.uniform(0, 0.01)) > ALPHA


def test_bad_variance_scaling_parameters_are_rejected_when_made() -> None:
    for spec, arg in [("variance_scaling(mode=fan_sum)", "mode"), ("variance_scaling(distribution=gauss)", "distribution"),
                      ("variance_scaling(scale=0)", "scale"), ("variance_scaling(scale=-1)", "scale")]:
        with pytest.raises(ValueError, match=arg):
            ii.get(spec)
