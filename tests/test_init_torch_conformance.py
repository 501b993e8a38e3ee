"""initlab.init against torch.nn.init 2.13: distributions (KS), fans, gains and errors.

Each KS test compares samples with the exact scipy distribution whose parameters are recomputed
here from torch's own fans and gains; torch's samples pass the same test. Fixed seeds; the KS
test's alpha (1e-4 per test) is the tolerance, so it scales with the sample size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import initlab.init as ii

ALPHA = 1e-4  # per-test KS significance level (many tests: keep false alarms rare)
nn_init = torch.nn.init

# name -> torch-layout weight shape (grouped conv: Conv2d(8, 16, 3, groups=2) has weight 16x4x3x3;
# transposed: ConvTranspose2d(8, 16, 3) has weight 8x16x3x3, which torch treats like any weight)
SHAPES = {
    "linear": (40, 60),
    "conv1d": (24, 16, 5),
    "conv2d": (16, 8, 3, 3),
    "conv3d": (8, 6, 3, 3, 3),
    "grouped": (16, 4, 3, 3),
    "transposed": (8, 16, 3, 3),
}


def torch_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    return nn_init._calculate_fan_in_and_fan_out(torch.empty(shape))


def ks_p(x: np.ndarray, dist: stats.rv_continuous) -> float:
    return float(stats.kstest(np.asarray(x, dtype=np.float64).ravel(), dist.cdf).pvalue)


def torch_sample(fn, shape, seed=0, **kw) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    t = torch.empty(shape, dtype=torch.float64)
    fn(t, generator=g, **kw)
    return t.numpy()


def _reference(scheme: str, shape: tuple[int, ...], kw: dict) -> stats.rv_continuous:
    """The exact distribution torch's documentation gives, from torch's fans and gains."""
    fi, fo = torch_fans(shape)
    if scheme == "xavier_uniform":
        b = kw.get("gain", 1.0) * math.sqrt(6.0 / (fi + fo))
        return stats.uniform(-b, 2 * b)
    if scheme == "xavier_normal":
        return stats.norm(0, kw.get("gain", 1.0) * math.sqrt(2.0 / (fi + fo)))
    fan = fi if kw.get("mode", "fan_in") == "fan_in" else fo
    g = nn_init.calculate_gain(kw.get("nonlinearity", "leaky_relu"), kw.get("a", 0))
    if scheme == "kaiming_uniform":
        b = g * math.sqrt(3.0 / fan)
        return stats.uniform(-b, 2 * b)
    return stats.norm(0, g / math.sqrt(fan))


VS_CASES = [
    ("xavier_uniform", {}),
    ("xavier_uniform", {"gain": 5 / 3}),
    ("xavier_normal", {}),
    ("xavier_normal", {"gain": 0.5}),
    ("kaiming_uniform", {}),
    ("kaiming_uniform", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_uniform", {"a": 0.3, "nonlinearity": "leaky_relu"}),
    ("kaiming_normal", {"nonlinearity": "relu"}),
    ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "tanh"}),
    ("kaiming_normal", {"a": 0.3, "mode": "FAN_OUT"}),
]


@pytest.mark.parametrize("layer", list(SHAPES))
@pytest.mark.parametrize("scheme,kw", VS_CASES)
def test_variance_scaled_schemes_match_torch_distribution(layer: str, scheme: str, kw: dict) -> None:
    shape = SHAPES[layer]
    ref = _reference(scheme, shape, kw)
    ours = getattr(ii, scheme)(shape, rng=1, **kw)
    assert ours.shape == shape and ours.dtype == np.float32
    assert ks_p(ours, ref) > ALPHA
    theirs = torch_sample(getattr(nn_init, scheme + "_"), shape, seed=1, **kw)
    assert ks_p(theirs, ref) > ALPHA


@pytest.mark.parametrize("layer", list(SHAPES))
def test_fans_equal_torch(layer: str) -> None:
    shape = SHAPES[layer]
    assert ii.compute_fans(shape) == torch_fans(shape)
    # the transposed flag swaps them (the right fans for ConvTranspose weights; torch does not)
    fi, fo = torch_fans(shape)
    assert ii.compute_fans(shape, transposed=True) == (fo, fi)


@pytest.mark.parametrize(
    "scheme,torch_fn,kw,ref",
    [
        ("normal", nn_init.normal_, {"mean": 0.5, "std": 2.0}, stats.norm(0.5, 2.0)),
        ("uniform", nn_init.uniform_, {"a": -1.0, "b": 3.0}, stats.uniform(-1.0, 4.0)),
        ("trunc_normal", nn_init.trunc_normal_, {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0},
         stats.truncnorm(-2.0, 2.0)),
        ("trunc_normal", nn_init.trunc_normal_, {"mean": 1.0, "std": 0.5, "a": 0.0, "b": 3.0},
         stats.truncnorm(-2.0, 4.0, loc=1.0, scale=0.5)),
        ("trunc_normal", nn_init.trunc_normal_, {"mean": 0.0, "std": 1.0, "a": 1.5, "b": 4.0},
         stats.truncnorm(1.5, 4.0)),
        ("trunc_normal", nn_init.trunc_normal_, {"mean": 0.0, "std": 1.0, "a": -3.0, "b": -1.0},
         stats.truncnorm(-3.0, -1.0)),
        ("trunc_normal", nn_init.trunc_normal_, {"mean": 0.0, "std": 2.0, "a": 0.0, "b": math.inf},
         stats.truncnorm(0.0, math.inf, scale=2.0)),
        ("trunc_normal", nn_init.trunc_normal_, {"mean": 0.0, "std": 0.02, "a": -2.0, "b": 2.0},
         stats.norm(0.0, 0.02)),  # torch's absolute bounds: std=0.02 is effectively untruncated
    ],
)
def test_plain_schemes_match_torch_distribution(scheme, torch_fn, kw, ref) -> None:
    shape = (64, 80)
    ours = getattr(ii, scheme)(shape, rng=2, **kw)
    assert ks_p(ours, ref) > ALPHA
    assert ks_p(torch_sample(torch_fn, shape, seed=2, **kw), ref) > ALPHA
    if scheme == "trunc_normal":
        assert ours.min() >= kw["a"] and ours.max() <= kw["b"]
        m = ii.get({"name": scheme, "params": kw}).moments(shape)
        assert m["mean"] == pytest.approx(ref.mean(), rel=1e-9, abs=1e-12)
        assert m["var"] == pytest.approx(ref.var(), rel=1e-9)


def test_trunc_normal_far_tail_is_exact() -> None:
    # an interval 6..7 sigma out: inverse CDF in the lower tail keeps full precision
    ref = stats.truncnorm(6.0, 7.0)
    w = ii.trunc_normal((50, 40), a=6.0, b=7.0, rng=3, dtype=np.float64)
    assert w.min() >= 6.0 and w.max() <= 7.0
    assert ks_p(w, ref) > ALPHA


def test_torch_default_matches_nn_linear_and_conv() -> None:
    lin = torch.nn.Linear(60, 40)
    conv = torch.nn.Conv2d(8, 16, 3)
    for module in (lin, conv):
        shape = tuple(module.weight.shape)
        fi, _ = torch_fans(shape)
        b = 1 / math.sqrt(fi)
        ref = stats.uniform(-b, 2 * b)
        assert ks_p(module.weight.detach().numpy(), ref) > ALPHA
        assert ks_p(ii.torch_default(shape, rng=4), ref) > ALPHA
        bias = ii.torch_default_bias((4000,), fan_in=fi, rng=4)
        assert ks_p(bias, ref) > ALPHA
        assert ii.get("torch_default").moments(shape)["var"] == pytest.approx(1 / (3 * fi))
    assert not ii.torch_default_bias((5,), fan_in=0).any()


def test_orthogonal_distribution_matches_torch_first_row() -> None:
    # a Haar-orthogonal 40x40 matrix: sqrt(n)·w_ij is close to N(0, 1); compare both libraries'
    # entries with the exact law of an entry of a uniform unit vector in R^n: w² ~ Beta(1/2, (n-1)/2)
    n = 40
    ref = stats.beta(0.5, (n - 1) / 2)
    ours = ii.orthogonal((n, n), rng=5, dtype=np.float64)
    theirs = torch_sample(nn_init.orthogonal_, (n, n), seed=5)
    assert ks_p(ours[:, 0] ** 2, ref) > ALPHA and ks_p(ours[0] ** 2, ref) > ALPHA
    assert ks_p(theirs[:, 0] ** 2, ref) > ALPHA


@pytest.mark.parametrize(
    "scheme,torch_fn,shape,kw",
    [
        ("kaiming_normal", nn_init.kaiming_normal_, (5,), {}),
        ("kaiming_uniform", nn_init.kaiming_uniform_, (), {}),
        ("xavier_uniform", nn_init.xavier_uniform_, (7,), {}),
        ("xavier_normal", nn_init.xavier_normal_, (7,), {}),
        ("kaiming_normal", nn_init.kaiming_normal_, (4, 5), {"mode": "fan_avg"}),
        ("kaiming_uniform", nn_init.kaiming_uniform_, (4, 5), {"nonlinearity": "gelu"}),
        ("kaiming_uniform", nn_init.kaiming_uniform_, (4, 5), {"a": True}),
        ("kaiming_uniform", nn_init.kaiming_uniform_, (4, 5), {"a": "x"}),
        ("sparse", nn_init.sparse_, (4, 5, 3), {"sparsity": 0.1}),
        ("eye", nn_init.eye_, (4, 5, 3), {}),
        ("orthogonal", nn_init.orthogonal_, (5,), {}),
        ("dirac", nn_init.dirac_, (4, 5), {}),
        ("dirac", nn_init.dirac_, (4, 5, 3, 3, 3, 3), {}),
        ("dirac", nn_init.dirac_, (5, 4, 3), {"groups": 2}),
        ("uniform", nn_init.uniform_, (4, 5), {"a": 1.0, "b": 0.0}),
        ("normal", nn_init.normal_, (4, 5), {"std": -1.0}),
        ("xavier_uniform", nn_init.xavier_uniform_, (4, 5), {"gain": -1.0}),
        ("xavier_normal", nn_init.xavier_normal_, (4, 5), {"gain": -1.0}),
    ],
)
def test_errors_wherever_torch_raises(scheme, torch_fn, shape, kw) -> None:
    with pytest.raises(Exception):
        with torch.no_grad():
            torch_fn(torch.empty(shape), **kw)
    with pytest.raises((ValueError, TypeError)) as err:
        getattr(ii, scheme)(shape, **kw)
    message = str(err.value)
    assert "'" in message and "got" in message  # names the argument and what was given


def test_zero_element_shapes_return_empty_where_torch_fails() -> None:
    with pytest.raises(ZeroDivisionError):
        nn_init.xavier_uniform_(torch.empty(0, 0))
    for name in ("xavier_uniform", "xavier_normal", "kaiming_normal", "kaiming_uniform", "orthogonal",
                 "lecun_normal", "he_truncated_normal", "normal", "trunc_normal", "torch_default", "zero"):
        w = getattr(ii, name)((0, 0))
        assert w.shape == (0, 0) and w.dtype == np.float32
    assert ii.kaiming_normal((0, 3, 3, 3)).shape == (0, 3, 3, 3)
    assert ii.sparse((0, 4), sparsity=0.5).shape == (0, 4)
    assert ii.dirac((0, 0, 3)).shape == (0, 0, 3)


def test_trunc_normal_std_zero_returns_mean_where_torch_fails() -> None:
    with pytest.raises(ZeroDivisionError):
        nn_init.trunc_normal_(torch.empty(3, 3), std=0.0)
    w = ii.trunc_normal((3, 3), mean=0.5, std=0.0)
    assert (w == 0.5).all()
    with pytest.raises(ValueError, match="mean"):
        ii.trunc_normal((3, 3), mean=5.0, std=0.0)


def test_sparse_and_eye_and_dirac_match_torch_structure() -> None:
    t = torch.empty(10, 7)
    nn_init.sparse_(t, 0.35, generator=torch.Generator().manual_seed(0))
    ours = ii.sparse((10, 7), sparsity=0.35, rng=0)
    assert ((t == 0).sum(0) == 4).all() and ((ours == 0).sum(0) == 4).all()
    assert np.array_equal(ii.eye((3, 5)), nn_init.eye_(torch.empty(3, 5)).numpy())
    for shape, groups in (((6, 4, 3), 1), ((8, 2, 3, 3), 2), ((4, 4, 3, 2, 5), 1), ((6, 3, 4), 3)):
        ref = nn_init.dirac_(torch.empty(shape), groups=groups).numpy()
        assert np.array_equal(ii.dirac(shape, groups=groups), ref)


def test_complex_variance_is_the_target_unlike_torch_uniform() -> None:
    shape = (200, 300)
    target = 2.0 / 500
    t = torch.empty(shape, dtype=torch.complex64)
    nn_init.xavier_uniform_(t, generator=torch.Generator().manual_seed(0))
    torch_e2 = float((t.abs() ** 2).mean())
    n = math.prod(shape)
    for scheme in ("xavier_uniform", "xavier_normal", "glorot_truncated_normal"):
        w = getattr(ii, scheme)(shape, rng=0, dtype=np.complex64)
        e2 = np.abs(w.astype(np.complex128)) ** 2
        se = e2.std() / math.sqrt(n)
        assert abs(e2.mean() - target) < 5 * se, scheme
    assert torch_e2 > 1.8 * target  # torch doubles it (documented bug)


def _torch_sample_dtype(fn, shape, seed, dtype, **kw) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    t = torch.empty(shape, dtype=dtype)
    fn(t, generator=g, **kw)
    return t.numpy()


@pytest.mark.parametrize(
    "shape,dtype",
    [
        ((300, 100), np.float64),  # tall: the columns are orthonormal
        ((100, 300), np.float64),  # wide: the rows are orthonormal
        ((64, 32, 3, 3), np.float32),  # conv kernel, flattened to [64, 288] like torch
        ((150, 150), np.float32),
    ],
)
def test_orthogonal_distribution_matches_torch_over_shapes(shape, dtype) -> None:
    # torch flattens [out, ...] to [out, prod(rest)] = [r, c] and draws a Haar-orthogonal matrix's
    # r x c block: the longer side's lines are unit vectors uniform on the sphere of R^N, N = max(r, c),
    # so one such line's squared entries (divided by gain²) follow Beta(1/2, (N-1)/2).
    gain = 1.5
    r, c = shape[0], int(np.prod(shape[1:]))
    n = max(r, c)
    ref = stats.beta(0.5, (n - 1) / 2)
    ours = ii.orthogonal(shape, gain=gain, rng=11, dtype=dtype).reshape(r, c).astype(np.float64)
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    theirs = _torch_sample_dtype(nn_init.orthogonal_, shape, 11, tdt, gain=gain).reshape(r, c).astype(np.float64)
    for w in (ours, theirs):
        line = w[0] if c >= r else w[:, 0]  # a unit-norm line (times gain) of length N
        assert line.size == n
        np.testing.assert_allclose(np.linalg.norm(line), gain, rtol=1e-5 if dtype == np.float32 else 1e-12)
        assert ks_p((line / gain) ** 2, ref) > ALPHA


def test_sparse_nonzero_values_are_normal_like_torch() -> None:
    shape, sparsity, std = (200, 300), 0.1, 0.02
    ref = stats.norm(0, std)
    ours = ii.sparse(shape, sparsity=sparsity, std=std, rng=3, dtype=np.float64)
    theirs = torch_sample(nn_init.sparse_, shape, seed=3, sparsity=sparsity, std=std)
    for w in (ours, theirs):
        nz = w[w != 0]
        assert nz.size == shape[1] * (shape[0] - math.ceil(sparsity * shape[0]))
        assert ks_p(nz, ref) > ALPHA
