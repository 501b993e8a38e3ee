"""One format for argument errors, as scikit-learn does: name the argument, the allowed values and
what was given. ``ValueError`` for a wrong value, ``TypeError`` for a wrong type."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any, NoReturn

__all__ = [
    "bad_value",
    "bad_type",
    "check_choice",
    "check_number",
    "check_int",
    "suggest",
    "resolve_dtype",
    "available_memory",
    "check_memory",
    "format_bytes",
]


def _kind(name: str) -> str:
    """"option" for a command-line name (``--seed``), else "argument"."""
    return "option" if str(name).startswith("--") else "argument"


def bad_value(name: str, allowed: str, got: Any) -> NoReturn:
    """Raise ``ValueError("The 'name' argument must be <allowed>; got <got>.")`` ("option" for a
    command-line name such as ``--seed``)."""
    raise ValueError(f"The {name!r} {_kind(name)} must be {allowed}; got {got!r}.")


def bad_type(name: str, allowed: str, got: Any) -> NoReturn:
    """Raise ``TypeError`` naming the argument, the allowed types and the type given."""
    raise TypeError(f"The {name!r} {_kind(name)} must be {allowed}; got {type(got).__name__} {got!r}.")


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for the closest choice, or ``""``.

    >>> suggest("xavier_unifrom", ["xavier_uniform", "xavier_normal"])
    " (did you mean 'xavier_uniform'?)"
    """
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (case-sensitive), else raise ValueError.

    >>> check_choice("mode", "fan_in", ["fan_in", "fan_out"])
    'fan_in'
    """
    options = list(choices)
    if not isinstance(value, str):
        bad_type(name, "one of " + ", ".join(repr(c) for c in options), value)
    if value not in options:
        raise ValueError(
            f"The {name!r} {_kind(name)} must be one of {', '.join(repr(c) for c in options)}; "
            f"got {value!r}{suggest(value, options)}."
        )
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``float(value)`` if it is a finite real number in the given range.

    Booleans are rejected (``True`` is not a slope).

    >>> check_number("std", 0.5, low=0)
    0.5
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        bad_type(name, "a real number", value)
    x = float(value)
    if not math.isfinite(x):
        bad_value(name, "a finite number", value)
    if low is not None and (x < low or (low_open and x == low)):
        bad_value(name, f"{'>' if low_open else '>='} {low}", value)
    if high is not None and (x > high or (high_open and x == high)):
        bad_value(name, f"{'<' if high_open else '<='} {high}", value)
    return x


def check_int(name: str, value: Any, *, low: int | None = None) -> int:
    """Return ``int(value)`` if it is an integer (not a bool) ``>= low``.

    >>> check_int("groups", 2, low=1)
    2
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bad_type(name, "an int", value)
    v = int(value)
    if low is not None and v < low:
        bad_value(name, f"an int >= {low}", value)
    return v


def resolve_dtype(dtype: Any, *, name: str = "dtype", allowed: tuple[Any, ...] = ("float32", "float64")) -> Any:
    """Return ``np.dtype(dtype)`` if it is one of ``allowed`` (default float32 and float64), else
    raise ValueError naming the argument and the allowed dtypes. ``allowed`` holds anything
    ``np.dtype`` accepts (``np.float32`` or ``"float32"``); numpy is imported lazily.

    >>> resolve_dtype("float64")
    dtype('float64')
    >>> resolve_dtype("float16")
    Traceback (most recent call last):
    ...
    ValueError: The 'dtype' argument must be float32 or float64; got 'float16'.
    """
    import numpy as np

    options = [np.dtype(a) for a in allowed]
    words = " or ".join(str(o) for o in options) if len(options) <= 2 else "one of " + ", ".join(map(str, options))
    try:
        dt = np.dtype(dtype)
    except TypeError:
        bad_value(name, words, dtype)
    if dt not in options:
        bad_value(name, words, dtype)
    return dt


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units.

    >>> format_bytes(3 * 2**30), format_bytes(512)
    ('3.0 GiB', '512 B')
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int | None:
    """Bytes a new allocation can use, or None where that cannot be told: ``MemAvailable`` of
    /proc/meminfo (Linux; else free physical pages), capped by the cgroup v2 limit of a container
    (``memory.max`` − ``memory.current``)."""
    import os

    avail: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, AttributeError):
            avail = None
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        avail = max(0, limit - used) if avail is None else min(avail, max(0, limit - used))
    return avail


def check_memory(name: str, nbytes: int, what: str) -> None:
    """Refuse, before allocating, work that needs more memory than is available: ValueError naming
    the argument (``"--shape"`` style names read as options), what was asked for, the size needed
    and the size available. Does nothing where the available memory cannot be told.

    >>> check_memory("shape", 8, "a tiny array")
    >>> check_memory("--shape", 2**80, "100000x100000 float32 weights")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The '--shape' option asks for 100000x100000 float32 weights, which needs about 1099511627776.0 TiB of memory; ... available.
    """
    avail = available_memory()
    if avail is None or nbytes <= avail:
        return
    raise ValueError(f"The {name!r} {_kind(name)} asks for {what}, which needs about {format_bytes(nbytes)} of memory; "
                     f"{format_bytes(avail)} is available.")
