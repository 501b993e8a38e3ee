"""scikit-learn's ``make_moons`` and ``load_digits`` without importing scikit-learn.

Importing ``sklearn.datasets`` costs about 1.3 s of CPU (``sklearn.utils`` pulls in
``scipy.stats`` and pandas), more than the report's two-moons and digits data take to make. The
two functions here do what the installed scikit-learn's functions do, with its arithmetic and its
random numbers in its order, so their arrays are the same bit for bit
(``tests/test_data_sklearn_fast.py`` compares them with scikit-learn's):

* :func:`make_moons` — ``sklearn.datasets.make_moons(n_samples, noise=noise, random_state=seed)``
  (an int ``n_samples``, shuffled): the two half circles, their rows permuted by
  ``RandomState(seed).shuffle``, then Gaussian noise from the same ``RandomState``;
* :func:`load_digits` — ``load_digits().data`` and ``.target``: the CSV file scikit-learn ships,
  read with ``numpy.loadtxt``.

They are used only where the installed scikit-learn's source of those functions (and of the
helpers they call) is the source they were checked against (:data:`_VERIFIED`, read from the
files on disk, without importing the package); otherwise :func:`usable` is False and initlab calls
scikit-learn itself.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import re
from pathlib import Path

import numpy as np

__all__ = ["make_moons", "load_digits", "usable"]

#: the functions replicated here or called by them: (file inside the sklearn package, function)
_SOURCES = (
    ("datasets/_samples_generator.py", "make_moons"),
    ("datasets/_base.py", "load_digits"),
    ("datasets/_base.py", "load_gzip_compressed_csv_data"),
    ("utils/_indexing.py", "shuffle"),
    ("utils/_indexing.py", "resample"),
    ("utils/_indexing.py", "_safe_indexing"),
    ("utils/_indexing.py", "_array_indexing"),
    ("utils/validation.py", "check_random_state"),
)
#: SHA-256 of those functions' sources, in :data:`_SOURCES`' order, that this module replicates
_VERIFIED = {
    "c6b92356f60ec9651c3d5b841691ea2c430bf1c0c695011ce8be3a8bf434795e",  # scikit-learn 1.9.1
}


def _package_dir() -> Path | None:
    """The installed ``sklearn`` package's folder, found without importing it (None: not installed)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _function_source(text: str, name: str) -> str:
    """The source of the top-level function ``name`` in the module text ``text``: from its
    ``def`` line to the next line that starts in column 0 with anything but the ``)`` closing a
    long signature or the end of ``text`` (KeyError where there is no such function)."""
    m = re.search(rf"^def {re.escape(name)}\(.*?(?=^[^\s)]|\Z)", text, flags=re.S | re.M)
    if m is None:
        raise KeyError(name)
    return m.group(0)


def _fingerprint() -> str:
    root = _package_dir()
    if root is None:
        raise ImportError("sklearn")
    h = hashlib.sha256()
    texts: dict[str, str] = {}
    for rel, name in _SOURCES:
        if rel not in texts:
            texts[rel] = (root / rel).read_text(encoding="utf-8")
        h.update(_function_source(texts[rel], name).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def usable() -> bool:
    """Whether the installed scikit-learn's functions are the ones this module replicates."""
    try:
        return _fingerprint() in _VERIFIED
    except (ImportError, OSError, KeyError, UnicodeDecodeError):
        return False


def make_moons(n_samples: int, *, noise: float | None, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """``sklearn.datasets.make_moons(n_samples, shuffle=True, noise=noise, random_state=random_state)``
    for an int ``n_samples`` and an int seed: (X float64 ``[n, 2]``, y intp)."""
    n_out = n_samples // 2
    n_in = n_samples - n_out
    generator = np.random.RandomState(random_state)
    outer_x = np.cos(np.linspace(0, np.pi, n_out))
    outer_y = np.sin(np.linspace(0, np.pi, n_out))
    inner_x = 1 - np.cos(np.linspace(0, np.pi, n_in))
    inner_y = 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5
    X = np.vstack([np.append(outer_x, inner_x), np.append(outer_y, inner_y)]).T
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    # sklearn.utils.shuffle → resample(replace=False): a shuffled arange, then the rows taken
    indices = np.arange(n_samples)
    generator.shuffle(indices)
    X, y = X[indices], y[indices]
    if noise is not None:
        X += generator.normal(scale=noise, size=X.shape)
    return X, y


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(d.data, d.target)`` of ``sklearn.datasets.load_digits()``: float64 ``[1797, 64]`` pixels
    0..16 and int labels, read from the file scikit-learn ships."""
    root = _package_dir()
    if root is None:
        raise ImportError("sklearn")
    with open(root / "datasets" / "data" / "digits.csv.gz", "rb") as compressed:
        data = np.loadtxt(gzip.open(compressed, mode="rt", encoding="utf-8"), delimiter=",")
    return data[:, :-1], data[:, -1].astype(int, copy=False)
