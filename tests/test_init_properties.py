"""Property tests (hypothesis): random shapes, layouts, dtypes and parameters keep shapes and
dtypes, match the theoretical variance within a sample-size tolerance, and fail only with
ValueError/TypeError."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import initlab.init as ii

VS_SCHEMES = ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "lecun_uniform",
              "lecun_normal", "he_truncated_normal", "glorot_truncated_normal", "lecun_truncated_normal",
              "torch_default"]
dims = st.integers(min_value=1, max_value=12)
shapes = st.lists(dims, min_size=2, max_size=5).map(tuple)
layouts = st.sampled_from(["torch", "keras", "jax"])
dtypes = st.sampled_from([np.float16, np.float32, np.float64, np.complex64, np.complex128])


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(VS_SCHEMES), shape=shapes, layout=layouts, transposed=st.booleans(), dtype=dtypes,
       seed=st.integers(0, 2**32))
def test_shape_dtype_and_variance(name, shape, layout, transposed, dtype, seed) -> None:
    w = getattr(ii, name)(shape, rng=seed, layout=layout, transposed=transposed, dtype=dtype)
    assert w.shape == shape and w.dtype == dtype
    m = ii.get(name).moments(shape, layout=layout, transposed=transposed)
    fi, fo = ii.compute_fans(shape, layout=layout, transposed=transposed)
    assert m["var"] > 0 and math.isfinite(m["var"])
    x = w.astype(np.complex128 if w.dtype.kind == "c" else np.float64)
    e2 = np.abs(x) ** 2
    n = x.size
    # E|w|² = var (mean 0): 6 standard errors; the 4th moment of these laws is at most 3·var²
    tol = 6 * math.sqrt(3.0 * m["var"] ** 2 / n) + (2e-3 * m["var"] if dtype == np.float16 else 0.0)
    assert abs(e2.mean() - m["var"]) < tol
    if m["high"] is not None and w.dtype.kind != "c":
        assert np.abs(x).max() <= m["high"]  # exact: rounding to the dtype never leaves the bounds


@settings(max_examples=60, deadline=None)
@given(
    spec=st.sampled_from([
        "normal(std=0.5)", "uniform(a=-1, b=2)", "trunc_normal(std=2.0, a=-1.0, b=3.0)", "orthogonal(gain=1.5)",
        "sparse(sparsity=0.4)", "zero", "eye", "dirac", "delta_orthogonal", "variance_scaling(mode=fan_geo_avg)",
        "constant(value=3)", "zeros", "ones", "kaiming_normal(mode=fan_out, a=0.1)",
    ]),
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=5).map(tuple),
    layout=layouts,
    transposed=st.booleans(),
    dtype=dtypes,
)
def test_no_unexpected_exception_types(spec, shape, layout, transposed, dtype) -> None:
    init = ii.get(spec)
    try:
        w = init(shape, rng=0, layout=layout, transposed=transposed, dtype=dtype)
    except (ValueError, TypeError) as e:
        assert "'" in str(e)  # names the argument
        return
    assert w.shape == shape and w.dtype == dtype
    assert np.isfinite(w).all()


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]), shape=shapes, layout=layouts,
       scale=st.floats(0.01, 10.0))
def test_variance_scaling_moments_formula(mode, shape, layout, scale) -> None:
    fi, fo = ii.compute_fans(shape, layout=layout)
    n = {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2, "fan_geo_avg": math.sqrt(fi * fo)}[mode]
    for dist in ("normal", "uniform", "truncated_normal"):
        m = ii.get({"name": "variance_scaling", "params": {"scale": scale, "mode": mode, "distribution": dist}})
        assert math.isclose(m.moments(shape, layout=layout)["var"], scale / n, rel_tol=1e-12)


@settings(max_examples=40, deadline=None)
@given(params=st.dictionaries(st.sampled_from(["std", "mean", "a", "b"]),
                              st.one_of(st.floats(-5, 5), st.integers(-3, 3), st.sampled_from(["x", True, None])),
                              max_size=4))
def test_spec_dict_string_round_trip(params) -> None:
    spec = ii.InitSpec("trunc_normal", params)
    assert ii.parse_spec(str(spec)) == spec
    assert ii.InitSpec.from_dict(spec.to_dict()) == spec
    try:
        ii.get(spec)
    except (ValueError, TypeError):
        pass
