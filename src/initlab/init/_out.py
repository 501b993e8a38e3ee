"""The ``out=`` argument of every scheme: its validation, and where a draw is written.

A scheme called with ``out=arr`` fills ``arr`` in place and returns it. The values are the bits
the same call without ``out`` returns (same ``rng``, any ``num_threads``): a fresh draw is
itself "allocate, then fill in place", and both paths run the same fill. ``arr`` must be a
writeable NumPy array of exactly ``shape`` with a dtype the scheme supports; ``dtype`` is then
None (the default: ``out``'s dtype is used) or ``out``'s dtype. A C-contiguous ``arr`` is written
directly; any other (a strided or transposed view) is filled correctly through one temporary
array of the same shape, copied in with :func:`numpy.copyto`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["REAL_DTYPES", "COMPLEX_DTYPES", "check_dtype", "resolve_out", "target", "deliver", "direct"]

REAL_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))


def check_dtype(dtype: Any, *, complex_ok: bool, scheme: str) -> np.dtype:
    """The numpy dtype for ``dtype`` (float16/32/64; complex64/128 where the scheme has a target)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"The 'dtype' argument must be one of float16, float32, float64, complex64, complex128; "
            f"got {dtype!r}."
        ) from None
    if dt in REAL_DTYPES:
        return dt
    if dt in COMPLEX_DTYPES:
        if not complex_ok:
            raise TypeError(
                f"The 'dtype' argument of {scheme!r} must be float16, float32 or float64: "
                f"{scheme!r} has no defined complex target variance; got {dt.name}."
            )
        return dt
    raise TypeError(
        f"The 'dtype' argument must be one of float16, float32, float64"
        f"{', complex64, complex128' if complex_ok else ''}; got {dt.name}."
    )




def _dtype_words(dt: np.dtype) -> str:
    return dt.name if dt.isnative else f"{dt.name} in non-native byte order ({dt.str})"


def resolve_out(out: Any, shape: tuple[int, ...], dtype: Any, *, complex_ok: bool, scheme: str) -> np.dtype:
    """The dtype to draw: ``dtype`` (default float32) without ``out``; with ``out``, its dtype,
    after checking that ``out`` is a writeable ndarray of ``shape`` and a supported dtype.

    >>> resolve_out(None, (2,), None, complex_ok=True, scheme="normal")
    dtype('float32')
    >>> resolve_out(np.zeros((2, 3)), (2, 3), None, complex_ok=True, scheme="normal")
    dtype('float64')
    >>> resolve_out(np.zeros((3, 2)), (2, 3), None, complex_ok=True, scheme="normal")
    Traceback (most recent call last):
    ...
    ValueError: The 'out' argument must be an array of shape (2, 3) (the 'shape' argument); got an array of shape (3, 2).
    """
    if out is None:
        return check_dtype(np.float32 if dtype is None else dtype, complex_ok=complex_ok, scheme=scheme)
    if not isinstance(out, np.ndarray):
        hint = ""
        if type(out).__module__.split(".")[0] == "torch":
            hint = " (to fill a torch tensor in place use initlab.init.fill_(tensor, spec))"
        raise TypeError(
            f"The 'out' argument must be None or a numpy.ndarray of shape {shape}{hint}; "
            f"got {type(out).__name__}."
        )
    if out.shape != shape:
        raise ValueError(
            f"The 'out' argument must be an array of shape {shape} (the 'shape' argument); "
            f"got an array of shape {out.shape}."
        )
    allowed = REAL_DTYPES + (COMPLEX_DTYPES if complex_ok else ())
    if out.dtype not in allowed:
        raise TypeError(
            f"The 'out' argument of {scheme!r} must have dtype {', '.join(d.name for d in allowed)} "
            f"(native byte order); got {_dtype_words(out.dtype)}."
        )
    if dtype is not None:
        dt = check_dtype(dtype, complex_ok=complex_ok, scheme=scheme)
        if dt != out.dtype:
            raise TypeError(
                f"The 'dtype' argument must be None or the dtype of 'out' ({out.dtype.name}) when 'out' is "
                f"given; got {dt.name}."
            )
    if not out.flags.writeable:
        raise ValueError("The 'out' argument must be a writeable array; got a read-only array.")
    return out.dtype


def direct(out: np.ndarray | None) -> bool:
    """True when ``out`` can be written in place as a flat C-ordered buffer."""
    return out is not None and out.flags.c_contiguous and out.flags.aligned


def target(out: np.ndarray | None, shape: tuple[int, ...], dt: np.dtype) -> np.ndarray:
    """Where to draw: ``out`` itself when it can be written directly, else a new C-ordered array.

    >>> a = np.empty((2, 2))
    >>> target(a, (2, 2), a.dtype) is a, target(a.T[::1, ::2], (2, 1), a.dtype) is a
    (True, False)
    """
    return out if out is not None and direct(out) else np.empty(shape, dtype=dt)


def deliver(w: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``w`` when there is no ``out``; else ``out``, with ``w`` copied in (cast as ``astype``
    would) unless ``w`` already is ``out``."""
    if out is None:
        return w
    if w is not out:
        np.copyto(out, w, casting="same_kind")
    return out
