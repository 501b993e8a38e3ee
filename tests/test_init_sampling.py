"""The samplers at the edges of the float range, the float16 bounds, and INITLAB_NUM_THREADS."""

from __future__ import annotations

import math

import numpy as np
import pytest

import initlab.init as ii
from initlab.init._sampling import resolve_threads


@pytest.mark.parametrize("std", [1e20, 1e30, 1e-30])
def test_float32_normal_scales_after_the_square_root(std) -> None:
    # scale² overflows (1e20, 1e30) or underflows (1e-30) in float32; the samples must not
    w = ii.normal((4, 4), std=std, rng=0)
    ref = ii.normal((4, 4), std=1.0, rng=0)
    assert w.dtype == np.float32 and np.all(np.isfinite(w)) and np.all(w != 0)
    np.testing.assert_allclose(w.astype(np.float64), ref.astype(np.float64) * std, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_std_beyond_the_dtype_range_is_a_value_error(dtype) -> None:
    fmax = float(np.finfo(dtype).max)
    w = ii.normal((64, 64), std=0.99 * fmax / 10, rng=0, dtype=dtype)  # the largest allowed stds work
    assert w.dtype == dtype and np.all(np.isfinite(w))
    with pytest.raises(ValueError, match="'std'") as e:
        ii.normal((4, 4), std=1.01 * fmax / 10, rng=0, dtype=dtype)
    if dtype != np.float64:  # (float64: std² already overflows, rejected as a non-finite std)
        assert np.dtype(dtype).name in str(e.value) and f"{fmax:.4g}" in str(e.value)  # names the range


def test_float16_std_limit() -> None:
    assert np.all(np.isfinite(ii.normal((100, 100), std=6000.0, rng=1, dtype=np.float16)))
    with pytest.raises(ValueError, match="'std'.*float16"):
        ii.normal((4, 4), std=7000.0, rng=0, dtype=np.float16)


def test_huge_uniform_and_truncated_bounds_stay_finite_and_inside() -> None:
    fmax = float(np.finfo(np.float32).max)
    w = ii.uniform((1000,), a=-0.9 * fmax, b=0.9 * fmax, rng=0)  # b - a overflows float32
    assert np.all(np.isfinite(w)) and np.abs(w.astype(np.float64)).max() <= 0.9 * fmax
    assert w.astype(np.float64).std() > 0.3 * fmax  # really spread, not collapsed onto a bound
    t = ii.trunc_normal((1000,), std=1e38, a=-2e38, b=2e38, rng=0)
    assert np.all(np.isfinite(t)) and np.abs(t.astype(np.float64)).max() <= 2e38
    with pytest.raises(ValueError, match="bounds.*float32"):
        ii.uniform((4,), a=-1e39, b=0.0, rng=0)


@pytest.mark.parametrize("name", ["he_truncated_normal", "glorot_truncated_normal", "lecun_truncated_normal",
                                  "trunc_normal", "kaiming_uniform", "uniform"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_bounded_schemes_never_exceed_their_bounds_after_rounding(name, dtype) -> None:
    shape = (1000, 1000)
    m = ii.get(name).moments(shape)
    w = getattr(ii, name)(shape, rng=0, dtype=dtype).astype(np.float64)
    assert w.min() >= m["low"] and w.max() <= m["high"]  # exactly: no rounding tolerance


def test_initlab_num_threads(monkeypatch) -> None:
    monkeypatch.setenv("INITLAB_NUM_THREADS", "2")
    assert resolve_threads() == 2
    assert resolve_threads(3) == 3  # the argument wins
    for bad in ("abc", "0", "-1"):
        monkeypatch.setenv("INITLAB_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="INITLAB_NUM_THREADS") as e:
            resolve_threads()
        assert repr(bad) in str(e.value)
    monkeypatch.delenv("INITLAB_NUM_THREADS")
    assert resolve_threads() >= 1


def test_threads_do_not_change_the_samples(monkeypatch) -> None:
    shape = (300, 1000)  # several blocks
    monkeypatch.setenv("INITLAB_NUM_THREADS", "1")
    a = ii.normal(shape, rng=5)
    monkeypatch.setenv("INITLAB_NUM_THREADS", "2")
    b = ii.normal(shape, rng=5)
    assert np.array_equal(a, b) and math.isfinite(float(a.sum()))


def test_float32_uniform_is_on_the_2_to_the_minus_24_grid() -> None:
    # two 24-bit uniforms per raw 64-bit draw: U = k·2^-24, k < 2^24, as NumPy's float32 random
    u = ii.uniform((400, 500), rng=3)  # several blocks
    k = u.astype(np.float64) * 2.0**24
    assert np.array_equal(k, np.floor(k)) and k.min() >= 0 and k.max() < 2**24
    n = u.size  # mean 1/2 and variance 1/12 within 6 standard errors
    assert abs(u.mean() - 0.5) < 6 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 6 * math.sqrt(1 / 180 / n)
    # the two halves of one draw are not the same number (nor trivially related)
    assert abs(np.corrcoef(u.reshape(-1)[0:2000:2], u.reshape(-1)[1:2000:2])[0, 1]) < 0.15


@pytest.mark.parametrize("bitgen", [np.random.PCG64, np.random.SFC64, np.random.Philox, np.random.MT19937])
def test_every_bit_generator_gives_a_standard_normal(bitgen) -> None:
    # MT19937's raw output is 32 bits wide: the float32 Box–Muller must not read it as 64 bits
    # (it once gave all zeros); one block (the caller's generator) and several blocks
    for shape in ((100, 100), (400, 500)):
        w = ii.normal(shape, rng=np.random.Generator(bitgen(4))).astype(np.float64)
        n = w.size  # mean 0, variance 1 within 6 standard errors (4th moment 3)
        assert abs(w.mean()) < 6 / math.sqrt(n) and abs(w.var() - 1.0) < 6 * math.sqrt(2.0 / n)
