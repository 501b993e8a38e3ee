"""MNIST-1D's ``make_dataset`` with the per-signal arithmetic done for all signals at once.

``mnist1d.data.make_dataset`` (Greydanus, 2020) transforms each of its signals by itself: per
signal it builds two ``scipy.interpolate.interp1d`` objects, two ``linspace`` grids and a Gaussian
filter, so 5000 signals cost about 1.5 s, nearly all of it Python overhead. :func:`make_dataset`
draws the same random numbers from the same global NumPy state in the same order (one signal after
the other: ``rand`` for the padding, ``rand`` for the scale, ``choice`` for the translation,
``randn`` for the correlated and the i.i.d. noise, ``rand`` for the shear) and then applies the same
floating-point operations elementwise to all signals at once: linear interpolation as
``numpy.interp`` computes it (which ``interp1d`` calls for 1-D float data), the same Gaussian filter
along the signal axis, the same masks and sums. The result is bit for bit the package's, and so is
the global random state afterwards (``tests/test_data_mnist1d_fast.py`` checks both).

It is used only where the package's generator is the one it was checked against: the SHA-256 of the
source of ``mnist1d.transform`` and of ``make_dataset`` must match :data:`_VERIFIED`; any other
version of the package runs its own ``make_dataset`` (:func:`usable`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from typing import Any

import numpy as np

__all__ = ["make_dataset", "usable"]

#: SHA-256 of (source of mnist1d.transform, source of mnist1d.data.make_dataset) this module replicates
_VERIFIED = {
    ("413d07d5e36a027622c45468bac1f69fd4ed5bd38ed5444d2336e7291ec328dd",  # mnist1d 0.0.2.post1
     "98f69ad48d983579e1e1fc37ae69ac8c5759317dc0581fc37f936c815e5330de"),
}


def _fingerprint() -> tuple[str, str]:
    import mnist1d.data
    import mnist1d.transform

    a = hashlib.sha256(inspect.getsource(mnist1d.transform).encode()).hexdigest()
    b = hashlib.sha256(inspect.getsource(mnist1d.data.make_dataset).encode()).hexdigest()
    return a, b


@functools.lru_cache(maxsize=1)
def usable() -> bool:
    """Whether the installed ``mnist1d`` is the version :func:`make_dataset` replicates."""
    try:
        return _fingerprint() in _VERIFIED
    except (ImportError, OSError, TypeError):
        return False


def _interp(x_new: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """``numpy.interp(x_new, xp, f)`` for every row ``f`` of ``fp`` at once, with numpy.interp's
    arithmetic: ``slope = (f[j+1] − f[j]) / (xp[j+1] − xp[j])``, ``slope·(x − xp[j]) + f[j]``,
    ``f[j]`` where ``x == xp[j]`` and ``f[-1]`` at ``x == xp[-1]`` (``x_new`` within ``xp``)."""
    n = xp.size
    j = np.searchsorted(xp, x_new, side="right") - 1  # xp[j] <= x < xp[j+1]
    last = j >= n - 1
    jc = np.minimum(j, n - 2)
    slope = (fp[:, jc + 1] - fp[:, jc]) / (xp[jc + 1] - xp[jc])
    out = slope * (x_new - xp[jc]) + fp[:, jc]
    exact = (x_new == xp[jc]) & ~last
    out[:, exact] = fp[:, jc[exact]]
    out[:, last] = fp[:, [n - 1]]
    return out


def make_dataset(args: Any) -> dict[str, Any]:
    """``mnist1d.data.make_dataset(args)`` (the package's templates), computed for all signals at once."""
    from mnist1d.data import get_templates
    from mnist1d.transform import interpolate
    from mnist1d.utils import set_seed
    from scipy.ndimage import gaussian_filter1d

    templates = get_templates()
    set_seed(args.seed)
    n_classes = len(templates["y"])
    per_class = args.num_samples // n_classes
    total = n_classes * per_class
    low, high = args.padding
    length = args.template_len + args.padding[-1]
    eps = 1e-8

    # the random numbers, drawn in the package's order (signal by signal)
    pad = np.empty(total, dtype=np.int64)
    scale = np.empty(total)
    shift = np.empty(total, dtype=np.int64)
    corr = np.empty((total, length))
    iid = np.empty((total, length))
    shear = np.empty(total)
    rand, randn, choice = np.random.rand, np.random.randn, np.random.choice
    for i in range(total):
        pad[i] = low + int(rand() * (high - low + 1))
        scale[i] = rand()
        shift[i] = choice(args.max_translation)
        corr[i] = randn(length)
        iid[i] = randn(length)
        shear[i] = rand()

    label = np.repeat(np.arange(n_classes), per_class)
    base = templates["x"][label] + eps  # [total, template_len]
    x = np.empty((total, length))
    grid = np.linspace(0, 1, length)
    for p in np.unique(pad):  # pad with p zeros, then stretch to `length` samples
        rows = np.flatnonzero(pad == p)
        padded = np.concatenate([base[rows], np.zeros((rows.size, int(p)))], axis=1)
        x[rows] = _interp(grid, np.linspace(0, 1, padded.shape[1]), padded)
    x *= (1 + args.scale_coeff * (scale - 0.5))[:, None]
    x = x[np.arange(total)[:, None], (np.arange(length)[None, :] - shift[:, None]) % length]  # translate
    mask = x != 0
    noise = gaussian_filter1d(args.corr_noise_scale * corr, 2, axis=-1)
    x = mask * x + (1 - mask) * noise
    x = x + args.iid_noise_scale * iid
    coeff = args.shear_scale * (shear - 0.5)
    x = x - coeff[:, None] * np.linspace(-0.5, 0.5, length)
    x = _interp(np.linspace(0, 1, args.final_seq_length), grid, x)
    new_t = interpolate(interpolate(templates["t"], length), args.final_seq_length)

    ys = templates["y"][label]
    batch_shuffle = np.random.permutation(len(ys))
    xs = x[batch_shuffle]
    ys = ys[batch_shuffle]
    if args.shuffle_seq:
        seq_shuffle = np.random.permutation(args.final_seq_length)
        xs = xs[..., seq_shuffle]
    new_t = new_t / xs.std()
    xs = (xs - xs.mean()) / xs.std()
    split_ix = int(len(ys) * args.train_split)
    return {"x": xs[:split_ix], "x_test": xs[split_ix:], "y": ys[:split_ix], "y_test": ys[split_ix:],
            "t": new_t, "templates": templates}
