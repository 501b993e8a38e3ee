"""The softmax cross-entropy (the fused log-softmax of :class:`initlab.nn.losses.CrossEntropy`)
against torch.nn.functional.cross_entropy in float64, extreme and masked logits, buffers, and a
diverging run reported as diverged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.nn import Network
from initlab.nn.losses import CrossEntropy, get

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch(z: np.ndarray, y: np.ndarray, scale: float = 1.0) -> tuple[float, np.ndarray]:
    zt = torch.from_numpy(z.astype(np.float64)).requires_grad_(True)
    loss = F.cross_entropy(zt, torch.from_numpy(y.astype(np.int64)))
    (loss * scale).backward()
    return float(loss.detach()), zt.grad.numpy()


def _close(a: float, b: float, rtol: float = 1e-12) -> bool:
    return a == b or abs(a - b) <= rtol * max(abs(a), abs(b), 1.0)


@pytest.mark.parametrize("n, k", [(1, 2), (7, 3), (100, 10), (128, 10), (33, 37)])
def test_forward_and_gradient_match_torch_in_float64(n: int, k: int) -> None:
    rng = np.random.default_rng(n * 100 + k)
    ce = CrossEntropy()
    for spread in (1.0, 30.0, 1e4):
        z = rng.standard_normal((n, k)) * spread
        y = rng.integers(0, k, n)
        for scale in (1.0, 0.37 * n):
            want, gwant = _torch(z, y, scale)
            got, g = ce.value_and_grad(z.copy(), y.astype(np.intp), None, scale)
            assert _close(got, want), (spread, got, want)
            np.testing.assert_allclose(g, gwant, rtol=0, atol=1e-12 * max(1.0, scale / n))


def test_extreme_and_masked_logits_follow_torch() -> None:
    ce = CrossEntropy()
    y = np.array([0, 1, 2, 0], dtype=np.intp)
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4], [-np.inf, 2.0, 1.0]])
    want, gwant = _torch(z, y)
    got, g = ce.value_and_grad(z, y)
    assert math.isinf(want) and got == want  # the last row's label logit is masked: +inf, as torch
    z[3, 0] = 0.0  # unmask the label; mask another entry
    z[3, 2] = -np.inf
    want, gwant = _torch(z, y)
    got, g = ce.value_and_grad(z, y)
    assert math.isfinite(got) and _close(got, want), (got, want)
    np.testing.assert_allclose(g, gwant, rtol=0, atol=1e-12)
    assert g[3, 2] == 0.0
    # a row of equal huge logits: log k, gradient (1/k − onehot)/n
    got, g = ce.value_and_grad(np.full((2, 4), 1e300), np.array([1, 3], dtype=np.intp))
    assert _close(got, math.log(4))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_logits_give_a_non_finite_loss(bad: float) -> None:
    z = np.zeros((3, 4))
    z[1, 2] = bad
    with np.errstate(invalid="ignore"):  # as the engine calls it
        got, _ = CrossEntropy().value_and_grad(z, np.array([0, 1, 2], dtype=np.intp))
        assert not math.isfinite(got)
        got, _ = CrossEntropy().value_and_grad(np.full((1, 3), -np.inf), np.array([0], dtype=np.intp))
    assert math.isnan(got)  # every class masked: NaN, as torch


def test_float32_agrees_with_float64_and_buffers_are_reused_or_aliased() -> None:
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((100, 10)) * 5).astype(np.float32)
    y = rng.integers(0, 10, 100).astype(np.intp)
    ce = CrossEntropy()
    ref, gref = ce.value_and_grad(z.astype(np.float64), y, None, 3.0)
    buf = np.empty_like(z)
    got, g = ce.value_and_grad(z, y, buf, 3.0)
    assert g is buf and g.dtype == np.float32
    assert abs(got - ref) <= 1e-6 * abs(ref)
    np.testing.assert_allclose(g, gref, rtol=0, atol=1e-7)
    # the gradient written over the logits themselves, and into a non-contiguous buffer
    z2 = z.copy()
    got2, g2 = ce.value_and_grad(z2, y, z2, 3.0)
    assert g2 is z2 and got2 == got and np.array_equal(g2, g)
    wide = np.zeros((100, 20), np.float32)
    got3, g3 = ce.value_and_grad(z, y, wide[:, ::2], 3.0)
    assert got3 == got and np.array_equal(wide[:, ::2], g) and not np.any(wide[:, 1::2])
    # an empty batch: NaN, no error
    v, g0 = ce.value_and_grad(np.zeros((0, 10), np.float32), np.zeros(0, np.intp))
    assert math.isnan(v) and g0.shape == (0, 10)


def test_value_is_the_doc_example_and_the_alias() -> None:
    assert get("cross_entropy").value(np.zeros((2, 3)), np.array([0, 2])) == pytest.approx(math.log(3), rel=1e-15)


def test_a_diverging_ce_run_is_reported_as_diverged() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 20)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    net = Network([20, 64, 64, 10], "relu", init="normal(std=3)", rng=0)
    hist = net.fit(X, y, loss="ce", lr=1e6, epochs=3, batch_size=32, progress=False, rng=0)
    assert hist.diverged
    assert all(math.isfinite(v) for v in hist.step_loss)  # the non-finite step is not recorded as a loss
