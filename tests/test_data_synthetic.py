"""gaussian, moons, circles, digits, mnist1d: shapes, seeding, no global state."""

from __future__ import annotations

import random

import numpy as np
import pytest

from initlab import data


def test_gaussian_moments_and_seeding():
    X = data.gaussian(20000, 5, rng=0)
    assert X.shape == (20000, 5) and X.dtype == np.float32
    # mean within 5 standard errors (1/sqrt(n)) of 0, variance within 5 s.e. (sqrt(2/n)) of 1
    assert np.all(np.abs(X.mean(0)) < 5 / np.sqrt(20000))
    assert np.all(np.abs(X.var(0) - 1) < 5 * np.sqrt(2 / 20000))
    np.testing.assert_array_equal(X, data.gaussian(20000, 5, rng=0))
    X2, y = data.gaussian(100, 3, rng=1, n_classes=4)
    assert set(np.unique(y)) <= {0, 1, 2, 3} and y.shape == (100,)


@pytest.mark.parametrize("fn", [data.moons, data.circles])
def test_toy_sets_split_and_seed(fn):
    s = fn(400, 100, 0.1, rng=0)
    assert s.X_train.shape == (400, 2) and s.X_test.shape == (100, 2)
    assert s.X_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert np.bincount(s.y_train).tolist() == [200, 200]
    again = fn(400, 100, 0.1, rng=0)
    np.testing.assert_array_equal(s.X_train, again.X_train)
    assert not np.array_equal(s.X_train, fn(400, 100, 0.1, rng=1).X_train)
    assert not np.array_equal(s.X_train[:100], s.X_test)  # test drawn apart from train


def test_bad_arguments():
    with pytest.raises(ValueError, match="'noise'"):
        data.moons(10, 10, noise=-1)
    with pytest.raises(TypeError, match="'n_train'"):
        data.moons(10.5)
    with pytest.raises(ValueError, match="'factor'"):
        data.circles(10, 10, factor=1.5)


def test_digits_scaled_and_split():
    X, y, Xt, yt = data.digits(0.25, rng=0)
    assert X.shape[1] == 64 and len(X) + len(Xt) == 1797 and len(Xt) == round(0.25 * 1797)
    assert X.min() >= 0 and X.max() == 1.0 and set(np.unique(y)) == set(range(10))


def test_global_rng_check_sees_a_draw(global_rng_untouched):
    # the fixture must notice a draw that only moves the position in NumPy's key array, and a
    # draw from Python's random
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with pytest.raises(AssertionError, match="NumPy"):
            with global_rng_untouched():
                np.random.random()
        with pytest.raises(AssertionError, match="Python"):
            with global_rng_untouched():
                random.random()
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _draw_every_generator():
    data.gaussian(50, 3, rng=0, n_classes=2)
    data.moons(20, 10, 0.1, rng=0)
    data.circles(20, 10, 0.1, rng=0)
    data.digits(rng=0)


def test_generators_leave_global_random_state_alone(global_rng_untouched):
    # first call imports scikit-learn, whose import chain loads rich.style, which calls
    # random.getrandbits at import time (a third-party import side effect, not a draw of ours)
    _draw_every_generator()
    with global_rng_untouched():
        _draw_every_generator()


def test_data_does_not_import_the_engine_and_checks_dtype():
    import subprocess
    import sys

    code = "import sys, initlab.data; assert 'initlab.nn' not in sys.modules, sorted(m for m in sys.modules if m.startswith('initlab'))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert data.gaussian(3, 2, rng=0, dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="'dtype'.*float32 or float64.*'float16'"):
        data.gaussian(3, 2, rng=0, dtype="float16")


def test_mnist1d_seeded_and_restores_global_random_state(global_rng_untouched):
    with global_rng_untouched():
        a = data.mnist1d(num_samples=300, rng=0)
    assert a.X_train.shape == (240, 40) and a.X_test.shape == (60, 40) and a.y_train.dtype == np.int64
    np.testing.assert_array_equal(a.X_train, data.mnist1d(num_samples=300, rng=0).X_train)
    assert not np.array_equal(a.X_train, data.mnist1d(num_samples=300, rng=1).X_train)
    with pytest.raises(ValueError, match="unknown setting 'bogus'"):
        data.mnist1d(num_samples=100, bogus=1)
