"""The IDX file format of MNIST (LeCun, Cortes, Burges, "The MNIST database of handwritten digits", 1998).

An IDX file is: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), a byte with the number of dimensions, one big-endian uint32 per
dimension, then the data in big-endian C order. Files ending in ``.gz`` are gunzipped.

>>> import tempfile, os, numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "a-idx2-ubyte")
>>> write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
>>> read_idx(path).tolist()
[[0, 1, 2], [3, 4, 5]]
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx"]

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("=").str[1:]: k for k, v in _TYPES.items()}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"Expected an IDX file at {str(path)!r}; no such file.")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise ValueError(f"Could not read the IDX file {str(path)!r}: {e}.") from None


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` allowed); ValueError naming the file if corrupt."""
    p = Path(path)
    raw = _read_bytes(p)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise ValueError(
            f"{str(p)!r} is not an IDX file: expected the magic bytes 00 00 <type> <ndim> "
            f"with type in {{08, 09, 0B, 0C, 0D, 0E}}; got {raw[:4].hex(' ') or 'an empty file'}."
        )
    dt = np.dtype(_TYPES[raw[2]])
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{str(p)!r} is truncated: its header announces {ndim} dimensions but the file has {len(raw)} bytes.")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    expected = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    if len(raw) - head != expected:
        raise ValueError(
            f"{str(p)!r} is corrupt: its header says shape {tuple(dims)} of {dt.name} ({expected} bytes of data) "
            f"but it holds {len(raw) - head} bytes of data."
        )
    return np.frombuffer(raw, dtype=dt, offset=head).reshape(dims).astype(dt.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped if the name ends in ``.gz``)."""
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=").str[1:]
    if key not in _CODES:
        raise ValueError(f"The 'array' argument must have dtype uint8, int8, int16, int32, float32 or float64; got {arr.dtype}.")
    if arr.ndim > 255:
        raise ValueError(f"The 'array' argument must have at most 255 dimensions; got {arr.ndim}.")
    code = _CODES[key]
    data = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data += np.ascontiguousarray(arr, dtype=np.dtype(_TYPES[code])).tobytes()
    p = Path(path)
    if p.suffix == ".gz":
        with gzip.open(p, "wb") as fh:
            fh.write(data)
    else:
        p.write_bytes(data)
