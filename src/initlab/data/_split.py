"""The return type of the dataset functions."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """A train/test split: ``X_train`` float32 ``[n, d]``, ``y_train`` int64 ``[n]``, same for test.

    Unpacks as ``X, y, X_test, y_test = moons(400, 100, 0.2, rng=0)``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
