"""Statistics kernels and probe basics: moments, histograms, batch-size independence, errors, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

import initlab
from initlab.diagnostics._stats import histogram, moments, subsample
from initlab.nn import Network


@pytest.mark.parametrize("shape", [(300, 70), (20, 6, 5, 4)])
def test_moments_match_numpy(shape: tuple[int, ...]) -> None:
    x = (np.random.default_rng(0).standard_normal(shape) * 3 + 1).astype(np.float32)
    m = moments(x)
    x64 = x.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    assert m.mean == pytest.approx(x64.mean(), rel=1e-6)
    assert m.std == pytest.approx(x64.std(), rel=1e-6)
    assert m.sq_mean == pytest.approx(np.mean(x64.mean(axis=axes) ** 2), rel=1e-5)
    assert m.chan_var == pytest.approx(np.mean(x64.var(axis=axes)), rel=1e-5)
    assert (m.min, m.max) == (float(x.min()), float(x.max()))


def test_moments_exact_when_spread_is_tiny_beside_the_mean() -> None:
    x = (0.5 + 1e-5 * np.random.default_rng(0).standard_normal((1000, 50))).astype(np.float32)
    assert moments(x).std == pytest.approx(x.astype(np.float64).std(), rel=1e-6)


def test_histogram_matches_numpy_and_subsample_visits_every_unit() -> None:
    v = np.random.default_rng(0).standard_normal(10000)
    edges = np.linspace(-3, 3, 31)
    inside = v[(v >= -3) & (v < 3)]
    np.testing.assert_array_equal(histogram(inside, edges).counts, np.histogram(inside, edges)[0])
    x = np.arange(1000 * 64, dtype=np.float64).reshape(1000, 64)
    s = subsample(x, 4096)
    assert s.size <= 4096 and len(set((s % 64).astype(int))) == 64


def test_gradient_is_per_sample_so_independent_of_batch() -> None:
    """A batch-mean loss would make the gradient std 20x smaller on the 20x larger batch.

    Tolerance from the sampling spread at the small batch size: the large batch split into 20
    disjoint batches of 100 gives 20 independent std estimates; the small batch's std must lie in
    their 99.9% prediction interval, t(0.9995, 19)·s·√(1 + 1/20), around the large batch's std.
    """
    from scipy import stats

    net = Network([50, 100, 100, 5], "tanh", init="lecun_normal", rng=0)
    small = initlab.probe(net, np.random.default_rng(0).standard_normal((100, 50)), rng=1)
    xl = np.random.default_rng(1).standard_normal((2000, 50))
    large = initlab.probe(net, xl, rng=1)
    chunks = np.array([initlab.probe(net, xl[k * 100:(k + 1) * 100], rng=10 + k).column("grad_std") for k in range(20)])
    half = stats.t.ppf(0.9995, 19) * chunks.std(axis=0, ddof=1) * np.sqrt(1 + 1 / 20)
    diff = np.abs(small.column("grad_std") - large.column("grad_std"))
    assert np.all(diff <= half), (diff, half)
    assert np.all(half < 0.5 * large.column("grad_std"))  # the test can tell a 20x change apart


def test_bad_input_and_json_and_plots(tmp_path: object) -> None:
    net = Network([4, 8, 2], "relu", rng=0)
    x = np.random.default_rng(0).standard_normal((32, 4))
    with pytest.raises(ValueError, match="'loss'"):
        initlab.probe(net, x, loss="hinge")
    with pytest.raises(TypeError, match="'model'"):
        initlab.probe("net", x)
    with pytest.raises(ValueError, match="'y'"):
        initlab.probe(net, x, y=np.zeros(5), loss="mse")
    with pytest.raises(ValueError, match="'y'"):
        initlab.probe(net, x, y=np.full(32, 7), loss="ce")
    res = initlab.probe(net, x, rng=0, backward=False)
    d = json.loads(res.to_json(histograms=True))
    assert "grad_std" not in d["layers"][0] and len(d["layers"][0]["hist"]["counts"]) == 50
    res = initlab.probe(net, x, rng=0, theory=True)
    for name in ("plot", "plot_histograms", "plot_stats", "plot_gradients"):
        path = str(tmp_path) + f"/{name}.png"  # type: ignore[operator]
        getattr(res, name)(path)
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "layer" in str(res)
