"""MNIST from a user-given folder: the four standard IDX files or one ``mnist.npz``.

Looked for, in this order, inside ``folder``:

1. ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
   ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; the ``train-images.idx3-ubyte``
   spelling is accepted too);
2. ``mnist.npz`` with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test`` (Keras' file),
   read with ``allow_pickle=False``.

With ``download=True`` and no files present, the four ``.gz`` IDX files are fetched from ``url``
into ``folder`` (the cache) when that URL is reachable. Pixels are scaled to [0, 1] and images
flattened to 784 features.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from initlab.data._split import Split
from initlab.data.idx import read_idx

__all__ = ["mnist", "MNIST_URL", "MNIST_FILES"]

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _find(folder: Path, name: str) -> Path | None:
    dotted = name.replace("-idx", ".idx")
    for cand in (name, name + ".gz", dotted, dotted + ".gz"):
        if (folder / cand).is_file():
            return folder / cand
    return None


def _download(folder: Path, url: str) -> None:
    import urllib.request

    folder.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        target = folder / (name + ".gz")
        if target.exists():
            continue
        tmp = target.with_name(target.name + ".part")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/" + name + ".gz", timeout=30) as r, open(tmp, "wb") as fh:
                fh.write(r.read())
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise FileNotFoundError(f"Could not download MNIST from {url!r} into {str(folder)!r}: {e}.") from None
        tmp.replace(target)


def _check(images: np.ndarray, labels: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{where}: expected images of shape [n, 28, 28]; got {images.shape}.")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{where}: expected {images.shape[0]} labels of shape [n]; got {labels.shape}.")
    if images.dtype.kind not in "biuf":
        raise ValueError(f"{where}: expected numeric images; got dtype {images.dtype}.")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{where}: expected integer labels; got dtype {labels.dtype}.")
    if images.dtype.kind == "f" and not np.all(np.isfinite(images)):
        raise ValueError(f"{where}: the images contain NaN or inf.")
    if images.shape[0] == 0:
        raise ValueError(f"{where}: the file holds no images.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: expected labels in 0..9; got {int(labels.min())}..{int(labels.max())}.")
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    if images.dtype == np.uint8:
        X /= 255.0
    return X, labels.astype(np.int64)


def mnist(folder: str | os.PathLike[str], *, download: bool = False, url: str = MNIST_URL) -> Split:
    """MNIST (LeCun et al., 1998) from ``folder``: X float32 ``[n, 784]`` in [0, 1], y int64.

    Raises FileNotFoundError naming the folder and the expected files when none are there, and
    ValueError naming the file when one is corrupt.
    """
    root = Path(folder)
    paths = [_find(root, name) for name in MNIST_FILES]
    npz = root / "mnist.npz"
    if any(p is None for p in paths) and not npz.is_file() and download:
        _download(root, url)
        paths = [_find(root, name) for name in MNIST_FILES]
    if all(p is not None for p in paths):
        ti, tl, vi, vl = (read_idx(p) for p in paths)  # type: ignore[arg-type]
        X, y = _check(ti, tl, f"{str(paths[0])!r} / {str(paths[1])!r}")
        Xt, yt = _check(vi, vl, f"{str(paths[2])!r} / {str(paths[3])!r}")
        return Split(X, y, Xt, yt)
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as data:
                arrays = {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except KeyError as e:
            raise ValueError(f"{str(npz)!r} must hold arrays x_train, y_train, x_test, y_test; missing {e}.") from None
        except (OSError, ValueError) as e:
            raise ValueError(f"{str(npz)!r} is not a readable .npz of MNIST arrays (no pickle allowed): {e}.") from None
        X, y = _check(arrays["x_train"], arrays["y_train"], repr(str(npz)))
        Xt, yt = _check(arrays["x_test"], arrays["y_test"], repr(str(npz)))
        return Split(X, y, Xt, yt)
    missing = [name for name, p in zip(MNIST_FILES, paths) if p is None]
    raise FileNotFoundError(
        f"No MNIST found in {str(root)!r}: expected the IDX files {', '.join(MNIST_FILES)} (optionally .gz) "
        f"or mnist.npz; missing {', '.join(missing)}. Pass download=True to fetch them into that folder."
    )
