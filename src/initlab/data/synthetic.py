"""Synthetic data: Gaussian inputs, two moons, two circles (scikit-learn generators, seeded).

>>> X, y, Xt, yt = moons(400, 100, noise=0.2, rng=0)
>>> X.shape, X.dtype, Xt.shape, sorted(set(y.tolist()))
((400, 2), dtype('float32'), (100, 2), [0, 1])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from initlab._rng import RngLike, as_generator
from initlab._validation import check_int, check_number, resolve_dtype
from initlab.data._split import Split

__all__ = ["gaussian", "moons", "circles"]


def _seed(gen: np.random.Generator) -> int:
    """An int seed for scikit-learn's ``random_state`` drawn from ``gen``."""
    return int(gen.integers(0, 2**31 - 1))


def gaussian(
    n: int, d: int, *, rng: RngLike = None, n_classes: int | None = None, dtype: Any = np.float32
) -> Any:
    """``n`` samples of ``d`` i.i.d. standard normal inputs, ``X ~ N(0, I_d)``, shape ``[n, d]``.

    With ``n_classes`` also returns uniformly random integer labels: ``(X, y)`` (the "random
    labels" workload of the speed benchmark and of seed 000's signal-propagation probes).

    >>> gaussian(3, 2, rng=0).shape
    (3, 2)
    >>> X, y = gaussian(5, 4, rng=0, n_classes=10); y.dtype
    dtype('int64')
    """
    n = check_int("n", n, low=0)
    d = check_int("d", d, low=1)
    gen = as_generator(rng)
    X = gen.standard_normal((n, d), dtype=resolve_dtype(dtype).type)
    if n_classes is None:
        return X
    k = check_int("n_classes", n_classes, low=1)
    return X, gen.integers(0, k, size=n, dtype=np.int64)


def _two_sets(make: Any, n_train: int, n_test: int, rng: RngLike, **kw: Any) -> Split:
    n_train = check_int("n_train", n_train, low=1)
    n_test = check_int("n_test", n_test, low=0)
    gen = as_generator(rng)
    s_train, s_test = _seed(gen), _seed(gen)
    X, y = make(n_samples=n_train, random_state=s_train, **kw)
    if n_test:
        Xt, yt = make(n_samples=n_test, random_state=s_test, **kw)
    else:
        Xt, yt = np.zeros((0, X.shape[1])), np.zeros(0, dtype=np.int64)
    f = np.float32
    return Split(X.astype(f), y.astype(np.int64), Xt.astype(f), yt.astype(np.int64))


def moons(n_train: int = 400, n_test: int = 100, noise: float = 0.2, *, rng: RngLike = None) -> Split:
    """Two interleaving half circles (``sklearn.datasets.make_moons``), train and test drawn
    independently as in seed 001 (400 train / 100 test, noise 0.2). Labels 0/1, classes balanced.
    Where the installed scikit-learn is the version :mod:`initlab.data._sklearn_fast` replicates,
    the same arrays are made without importing it.
    """
    noise = check_number("noise", noise, low=0.0)
    from initlab.data import _sklearn_fast

    if _sklearn_fast.usable():  # the same arrays without importing scikit-learn (1.3 s)
        make_moons: Any = _sklearn_fast.make_moons
    else:
        from sklearn.datasets import make_moons
    return _two_sets(make_moons, n_train, n_test, rng, noise=noise)


def circles(
    n_train: int = 400, n_test: int = 100, noise: float = 0.05, factor: float = 0.5, *, rng: RngLike = None
) -> Split:
    """A small circle inside a large one (``sklearn.datasets.make_circles``), train and test
    drawn independently. ``factor`` is the inner radius over the outer one, in (0, 1).
    """
    noise = check_number("noise", noise, low=0.0)
    factor = check_number("factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
    from sklearn.datasets import make_circles

    return _two_sets(make_circles, n_train, n_test, rng, noise=noise, factor=factor)
