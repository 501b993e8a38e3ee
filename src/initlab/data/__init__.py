"""initlab.data: the datasets of the seed experiments, all offline and seeded.

* :func:`gaussian` — i.i.d. N(0, 1) inputs (optionally with random labels);
* :func:`moons`, :func:`circles` — scikit-learn's 2-D toy problems, train and test drawn apart;
* :func:`digits` — scikit-learn's shipped 8×8 digits scaled to [0, 1];
* :func:`mnist1d` — MNIST-1D (Greydanus, 2020) generated locally;
* :func:`mnist` — MNIST from IDX files or an .npz in a folder you give (optional download);
* :func:`read_idx` / :func:`write_idx` — the IDX format.

The split functions return a :class:`Split` ``(X_train, y_train, X_test, y_test)``: X float32
``[n, d]``, y int64 ``[n]``.
"""

from __future__ import annotations

from initlab.data._split import Split
from initlab.data.idx import read_idx, write_idx
from initlab.data.mnist import mnist
from initlab.data.offline import digits, mnist1d
from initlab.data.synthetic import circles, gaussian, moons

__all__ = ["Split", "gaussian", "moons", "circles", "digits", "mnist1d", "mnist", "read_idx", "write_idx"]

DATASETS = ("moons", "circles", "digits", "mnist1d", "mnist", "gaussian")
