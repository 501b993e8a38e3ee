"""Structural properties: orthogonality, identity-like kernels, sparsity, ZerO, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import initlab.init as ii
from initlab.init import _sampling


@pytest.mark.parametrize("shape", [(20, 20), (10, 30), (30, 10), (8, 4, 3, 3), (4, 8, 3), (300, 520), (600, 270)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_orthogonal_rows_or_columns(shape, dtype) -> None:
    g = 1.7
    w = ii.orthogonal(shape, gain=g, rng=0, dtype=dtype)
    assert w.shape == shape and w.dtype == dtype
    m = w.reshape(shape[0], -1).astype(np.complex128)
    r, c = m.shape
    tol = 2e-4 if dtype in (np.float32, np.complex64) else 1e-10
    if r <= c:
        assert np.allclose(m @ m.conj().T, g * g * np.eye(r), atol=tol)
    else:
        assert np.allclose(m.conj().T @ m, g * g * np.eye(c), atol=tol)


def test_orthogonal_blocked_path_is_thread_independent_and_haar() -> None:
    # min(rows, cols) > 256: Q is formed in fixed column blocks on initlab's threads
    from initlab.init import _structured

    assert 300 > _structured._Q_BLOCK
    a = ii.orthogonal((300, 400), rng=5, num_threads=1)
    b = ii.orthogonal((300, 400), rng=5, num_threads=3)
    assert np.array_equal(a, b)
    # Haar: the first entry of sqrt(n)·(a column) is close to N(0,1); its square ~ Beta(1/2, (n-1)/2)
    from scipy import stats

    w = ii.orthogonal((400, 300), rng=6, dtype=np.float64)
    assert stats.kstest(w[:, 0] ** 2, stats.beta(0.5, (400 - 1) / 2).cdf).pvalue > 1e-4
    assert stats.kstest(w[:, -1] ** 2, stats.beta(0.5, (400 - 1) / 2).cdf).pvalue > 1e-4


def test_orthogonal_transposed_uses_out_axis() -> None:
    w = ii.orthogonal((4, 8, 3), transposed=True, rng=0).astype(np.float64)  # [in, out, k]
    m = np.moveaxis(w, 1, 0).reshape(8, -1)
    assert np.allclose(m @ m.T, np.eye(8), atol=1e-5)


@pytest.mark.parametrize("ndim,conv", [(1, F.conv1d), (2, F.conv2d), (3, F.conv3d)])
def test_dirac_passes_signal_through_conv(ndim, conv) -> None:
    c = 4
    w = ii.dirac((c, c) + (3,) * ndim)
    x = torch.randn((2, c) + (7,) * ndim, generator=torch.Generator().manual_seed(0))
    y = conv(x, torch.from_numpy(w), padding=1)
    assert torch.equal(y, x)


def test_dirac_grouped_conv_passes_signal() -> None:
    w = ii.dirac((6, 2, 3), groups=3)  # Conv1d(6, 6, 3, groups=3): each group maps 2 channels
    x = torch.randn(1, 6, 9, generator=torch.Generator().manual_seed(1))
    assert torch.equal(F.conv1d(x, torch.from_numpy(w), padding=1, groups=3), x[:, :6])


@pytest.mark.parametrize("k", [3, 4])
def test_delta_orthogonal_preserves_norm_through_conv(k: int) -> None:
    cin, cout = 4, 6
    w = ii.delta_orthogonal((cout, cin, k, k), gain=1.0, rng=0, dtype=np.float64)
    x = torch.randn(3, cin, 9, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    # explicit "same" padding: (k-1)//2 before, k//2 after (what padding="same" does, without its warning)
    xp = F.pad(x, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
    y = F.conv2d(xp, torch.from_numpy(w))
    assert y.shape == (3, cout, 9, 9)
    # per pixel: y = Q x with Q (6x4) orthonormal columns -> |y| = |x| everywhere
    assert torch.allclose(y.norm(dim=1), x.norm(dim=1), atol=1e-10)
    centre = w[:, :, (k - 1) // 2, (k - 1) // 2]
    assert np.allclose(centre.T @ centre, np.eye(cin), atol=1e-12)
    with pytest.raises(ValueError, match="out channels >= in"):
        ii.delta_orthogonal((2, 4, 3), rng=0)


def test_delta_orthogonal_keras_layout() -> None:
    w = ii.delta_orthogonal((3, 3, 4, 8), layout="keras", rng=1, dtype=np.float64)
    c = w[1, 1]  # [in, out]
    assert np.allclose(c @ c.T, np.eye(4), atol=1e-12)
    assert np.count_nonzero(w) == np.count_nonzero(c)


def test_eye_and_zero() -> None:
    assert np.array_equal(ii.eye((3, 4), gain=2.0), 2.0 * np.eye(3, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        ii.eye((3, 4, 5))
    assert np.array_equal(ii.zero((4, 4)), np.eye(4, dtype=np.float32))
    assert np.array_equal(ii.zero((3, 5)), np.eye(3, 5, dtype=np.float32))
    # P > Q: c·H_m[:P, :Q], m = ceil(log2 P), c = 2^(-(m-1)/2); columns orthogonal with equal norms
    from scipy.linalg import hadamard

    w = ii.zero((6, 3), dtype=np.float64)
    assert np.array_equal(w, 2 ** (-(3 - 1) / 2) * hadamard(8)[:6, :3])
    w = ii.zero((8, 3), dtype=np.float64)  # P a power of 2: orthogonal columns of squared norm 8·2^-2
    assert np.allclose(w.T @ w, 2.0 * np.eye(3))
    k = ii.zero((4, 4, 3, 3))
    assert np.array_equal(k[:, :, 1, 1], np.eye(4)) and np.count_nonzero(k) == 4


@pytest.mark.parametrize("shape,sparsity", [((10, 7), 0.35), ((50, 20), 0.9), ((8, 3), 0.0), ((8, 3), 1.0)])
def test_sparse_zeros_per_column(shape, sparsity) -> None:
    w = ii.sparse(shape, sparsity=sparsity, rng=3)
    nz = int(np.ceil(sparsity * shape[0]))
    assert ((w == 0).sum(axis=0) == nz).all()


def test_sparse_mask_is_uniform_over_rows() -> None:
    # each row is zeroed in a column with probability k/rows; chi-square over rows
    rows, cols, k = 10, 4000, 3
    w = ii.sparse((rows, cols), sparsity=0.3, rng=4)
    counts = (w == 0).sum(axis=1)
    expected = cols * k / rows
    from scipy import stats

    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert stats.chi2(rows - 1).sf(chi2) > 1e-4


@pytest.mark.parametrize(
    "name,kw",
    [("normal", {}), ("uniform", {}), ("trunc_normal", {}), ("trunc_normal", {"a": 1.0, "b": 3.0}),
     ("he_truncated_normal", {}), ("xavier_uniform", {}), ("kaiming_normal", {}), ("sparse", {"sparsity": 0.2}),
     ("orthogonal", {})],
)
def test_results_do_not_depend_on_thread_count(name, kw, monkeypatch) -> None:
    shape = (700, 600) if name != "orthogonal" else (40, 10500)  # > 3 blocks (orthogonal: a cheap QR)
    assert np.prod(shape) > 3 * _sampling.BLOCK
    fn = getattr(ii, name)
    a = fn(shape, rng=11, num_threads=1, **kw)
    b = fn(shape, rng=11, num_threads=3, **kw)
    monkeypatch.setenv("INITLAB_NUM_THREADS", "2")
    c = fn(shape, rng=11, **kw)
    d = fn(shape, rng=12, **kw)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert not np.array_equal(a, d)
    if name == "sparse":
        assert not np.array_equal(a == 0, d == 0)  # the mask comes from the rng too
        assert np.array_equal(a == 0, b == 0)


def test_generator_stream_advances_and_unseeded_calls_differ() -> None:
    g = np.random.default_rng(0)
    assert not np.array_equal(ii.normal((5, 5), rng=g), ii.normal((5, 5), rng=g))
    assert not np.array_equal(ii.normal((5, 5)), ii.normal((5, 5)))
    assert not np.array_equal(ii.sparse((6, 6), sparsity=0.5), ii.sparse((6, 6), sparsity=0.5))


def test_bad_thread_counts() -> None:
    with pytest.raises(ValueError, match="num_threads"):
        ii.normal((3, 3), num_threads=0)
    with pytest.raises(TypeError, match="num_threads"):
        ii.normal((3, 3), num_threads=1.5)


def test_float32_normal_radius_reaches_past_9_sigma() -> None:
    # one raw 64-bit draw per pair: high 40 bits -> radius uniform U = (2^40 - t)·2^-40, low 24
    # bits -> angle; U <= 2^-8 is redrawn as 2^-8·(1 - u53), so the maximum is sqrt(-2 ln 2^-61)
    # = 9.19 sigma (a float32 uniform would stop at 5.8 sigma)
    from initlab.init._sampling import _box_muller32

    class Bits:
        def __init__(self, raw: int) -> None:
            self.raw = raw

        def random_raw(self, size: int) -> np.ndarray:
            return np.full(size, self.raw, dtype=np.uint64)

    class Gen:
        def __init__(self, raw: int) -> None:
            self.bit_generator = Bits(raw)
            self.calls = 0

        def random(self, size=None):
            self.calls += 1
            return np.full(size, 1.0 - 2.0**-53)  # the largest float64 uniform

        def integers(self, low, high, size, dtype, endpoint):  # 64-bit words of a non-numpy bit generator
            assert (low, high, dtype, endpoint) == (0, 2**64 - 1, np.uint64, True)
            return self.bit_generator.random_raw(size)

    g = Gen(((1 << 40) - 1) << 24)  # t = 2^40 - 1: U = 2^-40 <= 2^-8, redrawn; angle bits 0
    v = np.empty(2, np.float32)
    _box_muller32(g, v)  # type: ignore[arg-type]
    assert g.calls == 1
    assert v[0] == pytest.approx(np.sqrt(-2 * np.log(2.0**-61)), rel=1e-6) and v[0] > 9.1
    assert v[1] == 0.0  # sin(0)
    # just above the threshold: U = (2^32 + 1)·2^-40 is kept (no redraw); angle 2^23·2pi/2^24 = pi
    g = Gen((((1 << 40) - (1 << 32) - 1) << 24) | (1 << 23))
    _box_muller32(g, v)  # type: ignore[arg-type]
    assert g.calls == 0
    assert v[0] == pytest.approx(-np.sqrt(-2 * np.log(2.0**-8)), rel=1e-6)


@pytest.mark.parametrize("sparsity", [0.4, 0.8])  # k = 2 of 5 rows, and k = 4 (the complement branch)
def test_sparse_zero_rows_are_a_uniform_subset_per_column(sparsity: float) -> None:
    """Every k-subset of the rows must be equally likely as a column's zero set (torch's
    randperm(rows)[:k] law): a chi-square test over all C(5, k) subsets, alpha = 1e-3."""
    from itertools import combinations
    from math import comb

    from scipy import stats

    rows, cols = 5, 40_000
    k = math.ceil(sparsity * rows)
    w = ii.sparse((rows, cols), sparsity=sparsity, std=1.0, rng=11)
    zero = w == 0
    assert (zero.sum(axis=0) == k).all()
    code = (zero * (1 << np.arange(rows))[:, None]).sum(axis=0)
    subsets = [sum(1 << r for r in s) for s in combinations(range(rows), k)]
    counts = np.array([(code == s).sum() for s in subsets])
    assert counts.sum() == cols  # every column's zero set is one of the k-subsets
    expected = np.full(len(subsets), cols / comb(rows, k))
    assert stats.chisquare(counts, expected).pvalue > 1e-3
