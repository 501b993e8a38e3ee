"""IDX reading/writing and MNIST from a folder, with small files made here (never downloaded)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from initlab.data import mnist, read_idx, write_idx


def _fake_mnist(folder, n_train=5, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(folder / (name + sfx), arr)
    return arrays


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype) if dtype != np.uint8 else np.arange(24, dtype=dtype).reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", arr)
    back = read_idx(tmp_path / "a.idx")
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, arr)


def test_idx_header_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "l", np.array([7, 2], dtype=np.uint8))
    assert (tmp_path / "l").read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 2])


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_idx_folder(tmp_path, gz):
    arrays = _fake_mnist(tmp_path, gz=gz)
    X, y, Xt, yt = mnist(tmp_path)
    assert X.shape == (5, 784) and Xt.shape == (3, 784) and X.dtype == np.float32
    np.testing.assert_allclose(X, arrays["train-images-idx3-ubyte"].reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])


def test_mnist_from_npz(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), y_train=np.arange(4),
             x_test=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), y_test=np.array([1, 2]))
    X, y, Xt, yt = mnist(tmp_path)
    assert X.shape == (4, 784) and yt.tolist() == [1, 2] and X.max() <= 1.0


def test_missing_mnist_names_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as e:
        mnist(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_truncated_idx_names_the_file(tmp_path):
    _fake_mnist(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.*corrupt.*shape \\(5, 28, 28\\)"):
        mnist(tmp_path)


def test_bad_magic_and_bad_gzip(tmp_path):
    (tmp_path / "x").write_bytes(b"\x12\x34\x08\x01")
    with pytest.raises(ValueError, match="'.*x' is not an IDX file"):
        read_idx(tmp_path / "x")
    (tmp_path / "y.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="y.gz"):
        read_idx(tmp_path / "y.gz")
    with gzip.open(tmp_path / "z.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1]))
    with pytest.raises(ValueError, match="3 bytes of data.*holds 1"):
        read_idx(tmp_path / "z.gz")


def test_wrong_image_shape_and_pickled_npz_rejected(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 10, 10), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((1, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(1, dtype=np.uint8))
    with pytest.raises(ValueError, match="\\[n, 28, 28\\]"):
        mnist(tmp_path)
    other = tmp_path / "npz"
    other.mkdir()
    np.savez(other / "mnist.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1), x_test=np.zeros((1, 28, 28)), y_test=np.zeros(1))
    with pytest.raises(ValueError, match="mnist.npz"):
        mnist(other)


def test_mnist_download_from_a_file_url_fills_the_cache(tmp_path):
    server = tmp_path / "server"
    server.mkdir()
    arrays = _fake_mnist(server, gz=True)
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError):
        mnist(cache)  # nothing there and no download asked
    X, y, Xt, yt = mnist(cache, download=True, url=server.as_uri())
    assert X.shape == (5, 784) and Xt.shape == (3, 784)
    np.testing.assert_allclose(X, arrays["train-images-idx3-ubyte"].reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte"])
    assert sorted(p.name for p in cache.iterdir()) == sorted(n + ".gz" for n in arrays)
    for p in server.iterdir():  # the cache holds the served bytes, and is used from now on
        p.unlink()
    np.testing.assert_array_equal(mnist(cache)[2], Xt)


def test_mnist_download_from_an_unreachable_url_is_a_clear_error(tmp_path):
    url = (tmp_path / "no-such-server").as_uri()
    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="Could not download MNIST") as e:
        mnist(cache, download=True, url=url)
    assert url in str(e.value) and str(cache) in str(e.value)
    assert not any(cache.iterdir())  # no partial file left behind
