"""Specs (string ⇄ InitSpec ⇄ dict), the registry, get() validation and moments()."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import initlab.init as ii
from initlab.init import InitSpec


@pytest.mark.parametrize(
    "text",
    [
        "kaiming_normal(mode=fan_out, nonlinearity=leaky_relu, a=0.3)",
        "xavier_uniform",
        "normal(mean=0, std=0.02)",
        "trunc_normal(mean=0.0, std=1e-05, a=-inf, b=2.5)",
        "variance_scaling(scale=2.0, mode=fan_geo_avg, distribution=truncated_normal)",
        "constant(value=-1.5)",
        "torch_default_bias(fan_in=None)",
    ],
)
def test_spec_string_round_trips(text: str) -> None:
    spec = ii.parse_spec(text)
    assert str(spec) == text
    assert ii.parse_spec(str(spec)) == spec
    assert InitSpec.from_dict(spec.to_dict()) == spec
    init = ii.get(text)
    assert str(init.spec) == text and ii.get(init.spec.to_dict()).params == init.params
    assert ii.get(init) is init


def test_spec_parsing_details() -> None:
    s = ii.parse_spec("  normal( std = 2 , mean='x y' ) ")
    assert s.kwargs == {"std": 2, "mean": "x y"} and isinstance(s.kwargs["std"], int)
    assert str(s) == "normal(std=2, mean='x y')"
    assert ii.parse_spec("he_normal()").kwargs == {}
    assert InitSpec("normal", {"std": 0.1}) == InitSpec.from_dict({"name": "normal", "std": 0.1})
    for bad in ["normal(0.1)", "normal(std=0.1", "normal(std=[1])", "1normal", "normal(std=1, std=2)", "normal(s td=1)"]:
        with pytest.raises(ValueError, match="spec"):
            ii.parse_spec(bad)
    with pytest.raises(TypeError, match="spec"):
        ii.get(3.5)


def test_validation_happens_when_made() -> None:
    with pytest.raises(ValueError, match="'mode'.*fan_in.*fan_avg"):
        ii.get("kaiming_normal(mode=fan_avg)")
    with pytest.raises(ValueError, match="did you mean 'xavier_uniform'"):
        ii.get("xavier_unifrom")
    with pytest.raises(ValueError, match="did you mean 'std'"):
        ii.get("normal(sdt=1)")
    with pytest.raises(ValueError, match="'std'.*>= 0"):
        ii.get({"name": "normal", "params": {"std": -1}})
    with pytest.raises(ValueError, match="sparsity"):
        ii.get("sparse")
    with pytest.raises(ValueError, match="'a'"):
        ii.get("kaiming_uniform(a=True)")
    with pytest.raises(ValueError, match="nonlinearity gelu"):
        ii.get("kaiming_uniform(nonlinearity=gelu)")
    with pytest.raises(TypeError, match="dtype"):
        ii.get("uniform")((3, 3), dtype=np.complex64)
    with pytest.raises(TypeError, match="dtype"):
        ii.trunc_normal((3, 3), dtype=np.complex128)
    with pytest.raises(TypeError, match="dtype"):
        ii.normal((3, 3), dtype=np.int32)


def test_registry_lists_every_public_scheme_with_metadata() -> None:
    reg = ii.registry()
    names = set(reg) | {a for info in reg.values() for a in info.aliases}
    public = {n for n in ii.__all__ if callable(getattr(ii, n)) and "shape" in
              inspect.signature(getattr(ii, n)).parameters and n != "compute_fans"}
    assert public == names
    for info in reg.values():
        d = info.to_dict()
        assert d["distribution"] and d["variance"]
        if d["paper"] is not None:
            assert d["paper"]["title"] and d["paper"]["authors"] and 1990 < d["paper"]["year"] < 2030
        # every scheme's function has the common keyword arguments
        sig = inspect.signature(info.fn).parameters
        for kw in ("rng", "dtype", "layout", "in_axis", "out_axis", "transposed", "num_threads"):
            assert sig[kw].kind is inspect.Parameter.KEYWORD_ONLY
        for alias in info.aliases:
            assert getattr(ii, alias) is info.fn  # aliases by assignment
    assert ii.he_normal is ii.kaiming_normal and ii.glorot_uniform is ii.xavier_uniform


MOMENT_CASES = [
    ("uniform(a=0, b=1)", (300, 500), 0.5, 1 / 12, 0.0, 1.0),
    ("normal", (300, 500), 0.0, 1.0, None, None),
    ("xavier_uniform", (300, 500), 0.0, 2 / 800, -math.sqrt(6 / 800), math.sqrt(6 / 800)),
    ("xavier_normal", (300, 500), 0.0, 2 / 800, None, None),
    ("kaiming_uniform(nonlinearity=relu)", (300, 500), 0.0, 2 / 500, -math.sqrt(6 / 500), math.sqrt(6 / 500)),
    ("kaiming_normal(mode=fan_out, nonlinearity=relu)", (300, 500), 0.0, 2 / 300, None, None),
    ("kaiming_normal(a=0.3)", (300, 500), 0.0, 2 / (1.09 * 500), None, None),
    ("lecun_normal", (64, 3, 3, 3), 0.0, 1 / 27, None, None),
    ("he_truncated_normal", (300, 500), 0.0, 2 / 500, -2 * math.sqrt(2 / 500) / 0.87962566103423978,
     2 * math.sqrt(2 / 500) / 0.87962566103423978),
    ("orthogonal(gain=2.0)", (300, 500), 0.0, 4 * 300 / (300 * 500), -2.0, 2.0),
    ("sparse(sparsity=0.1, std=0.5)", (10, 500), 0.0, 0.25 * 0.9, None, None),
]


@pytest.mark.parametrize("spec,shape,mean,var,low,high", MOMENT_CASES)
def test_moments_formulas_and_samples(spec, shape, mean, var, low, high) -> None:
    init = ii.get(spec)
    m = init.moments(shape)
    assert m["mean"] == pytest.approx(mean, abs=1e-15)
    assert m["var"] == pytest.approx(var, rel=1e-12)
    assert (m["low"] is None) == (low is None) and (m["high"] is None) == (high is None)
    if low is not None:
        assert m["low"] == pytest.approx(low) and m["high"] == pytest.approx(high)
    w = init(shape, rng=0).astype(np.float64)
    n = w.size
    # sample mean within 5 standard errors; sample variance within 5 s.e. (s.e. from the 4th moment)
    assert abs(w.mean() - mean) < 5 * math.sqrt(var / n)
    se_var = math.sqrt(max(np.mean((w - w.mean()) ** 4) - w.var() ** 2, 0.0) / n)
    if spec.startswith("orthogonal"):
        assert np.mean(w**2) == pytest.approx(var, rel=1e-5)  # rows have exact norm g
    else:
        assert abs(w.var() - var) < 5 * se_var + 1e-12


def test_moments_for_layouts_transposed_zero_element_and_overrides() -> None:
    init = ii.get("kaiming_normal")
    assert init.moments((3, 3, 16, 32), layout="keras")["var"] == pytest.approx(2 / 144)
    assert init.moments((16, 32, 3), transposed=True)["var"] == pytest.approx(2 / 48)
    assert math.isnan(init.moments((5, 0))["var"])  # fan_in = 0: no weights, no variance
    assert init.moments((0, 5))["var"] == pytest.approx(2 / 5)  # the formula is still defined
    bias = ii.get("torch_default_bias")
    assert bias.moments((10,), fan_in=25)["var"] == pytest.approx(1 / 75)
    assert bias((10,), fan_in=25, rng=0).max() <= 0.2
    with pytest.raises(ValueError, match="fan_in"):
        bias((10,), rng=0)
    t = ii.get("trunc_normal(std=1.0, a=0.0, b=1.0)").moments((4, 4))
    from scipy import stats

    ref = stats.truncnorm(0.0, 1.0)
    assert t["mean"] == pytest.approx(ref.mean(), rel=1e-12) and t["var"] == pytest.approx(ref.var(), rel=1e-10)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.complex128])
def test_dtypes(dtype) -> None:
    for name in ("kaiming_uniform", "xavier_normal", "he_truncated_normal", "orthogonal", "variance_scaling"):
        w = getattr(ii, name)((30, 40), rng=0, dtype=dtype)
        assert w.dtype == dtype and w.shape == (30, 40)
        assert np.isfinite(w).all()
    for name in ("uniform", "trunc_normal"):
        if np.dtype(dtype).kind == "c":
            with pytest.raises(TypeError, match="complex"):
                getattr(ii, name)((3, 4), dtype=dtype)
        else:
            assert getattr(ii, name)((3, 4), dtype=dtype).dtype == dtype
