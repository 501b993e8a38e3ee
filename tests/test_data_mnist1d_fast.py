"""initlab.data._mnist1d_fast: MNIST-1D computed for all signals at once is the package's dataset, bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from initlab.data import _mnist1d_fast
from initlab.data.offline import mnist1d

CONFIGS = [
    (200, 0, {}),
    (1000, 42, {}),
    (2000, 12345, {"shuffle_seq": True}),
    (300, 7, {"padding": [10, 20], "max_translation": 5, "final_seq_length": 30}),
    (55, 3, {"train_split": 0.5, "scale_coeff": 0.9, "shear_scale": 2.0}),
]


def _cfg(n: int, seed: int, kw: dict):
    from mnist1d.data import get_dataset_args

    cfg = get_dataset_args()
    for k, v in kw.items():
        setattr(cfg, k, v)
    cfg.num_samples, cfg.seed = n, seed
    return cfg


def _global_state():
    s = np.random.get_state()
    return s[1].copy(), s[2], s[3], s[4], random.getstate()


def test_installed_mnist1d_is_the_verified_one():
    # if this fails, mnist1d changed: check make_dataset against the new source and add its fingerprint
    assert _mnist1d_fast.usable(), _mnist1d_fast._fingerprint()


@pytest.mark.parametrize("n, seed, kw", CONFIGS)
def test_same_dataset_and_global_state_as_the_package(n, seed, kw):
    from mnist1d.data import make_dataset

    saved = np.random.get_state(), random.getstate()
    try:
        ref = make_dataset(_cfg(n, seed, kw))
        ref_state = _global_state()
        fast = _mnist1d_fast.make_dataset(_cfg(n, seed, kw))
        fast_state = _global_state()
    finally:
        np.random.set_state(saved[0])
        random.setstate(saved[1])
    for key in ("x", "x_test", "y", "y_test", "t"):
        assert fast[key].dtype == ref[key].dtype and fast[key].shape == ref[key].shape, key
        assert np.array_equal(fast[key], ref[key]), key  # bit for bit, not within a tolerance
    assert np.array_equal(fast_state[0], ref_state[0]) and fast_state[1:] == ref_state[1:]


def test_offline_mnist1d_gives_the_packages_dataset(monkeypatch):
    fast = mnist1d(num_samples=400, rng=5)
    _mnist1d_fast.usable.cache_clear()
    monkeypatch.setattr(_mnist1d_fast, "_VERIFIED", set())  # unverified package: its own make_dataset
    try:
        assert not _mnist1d_fast.usable()
        slow = mnist1d(num_samples=400, rng=5)
    finally:
        _mnist1d_fast.usable.cache_clear()
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and np.array_equal(a, b)
