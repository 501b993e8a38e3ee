"""Helpers shared by the CLI verbs: JSON output, shape parsing, the rich console."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from initlab._json import to_jsonable

__all__ = ["emit_json", "parse_shape", "parse_int_list", "to_jsonable", "console", "option_names"]


def console() -> Any:
    """A rich Console on stdout (imported lazily)."""
    from rich.console import Console

    return Console()


def emit_json(obj: Any) -> None:
    """Print ``obj`` as strict JSON on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


def parse_shape(text: str, *, name: str = "--shape") -> tuple[int, ...]:
    """Parse ``"300x500"`` (or ``"64,3,3,3"``) into a tuple of non-negative ints.

    >>> parse_shape("300x500")
    (300, 500)
    """
    parts = text.replace(",", "x").lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"The {name!r} option must look like 300x500 (non-negative ints); got {text!r}.") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"The {name!r} option must have non-negative sizes; got {text!r}.")
    return dims


def parse_int_list(text: str, *, name: str) -> list[int]:
    """Parse ``"2,12,6,1"`` into ``[2, 12, 6, 1]`` (positive ints).

    >>> parse_int_list("2,12,6,1", name="--layers")
    [2, 12, 6, 1]
    """
    try:
        vals = [int(p) for p in text.split(",") if p.strip() != ""]
    except ValueError:
        raise ValueError(f"The {name!r} option must be comma-separated positive ints like 2,12,6,1; got {text!r}.") from None
    if len(vals) < 2 or any(v <= 0 for v in vals):
        raise ValueError(f"The {name!r} option must be at least two comma-separated positive ints; got {text!r}.")
    return vals


@contextlib.contextmanager
def option_names(mapping: dict[str, str]) -> Iterator[None]:
    """Re-word library errors for the command line: "The 'seed' argument" becomes "The '--seed'
    option" for each ``{python_argument: cli_option}`` in ``mapping``.

    >>> with option_names({"out_dir": "--out"}):
    ...     raise ValueError("The 'out_dir' argument must be a folder; got 'x'.")
    Traceback (most recent call last):
    ...
    ValueError: The '--out' option must be a folder; got 'x'.
    """
    try:
        yield
    except (ValueError, TypeError) as e:
        msg = str(e)
        new = msg
        for arg, opt in mapping.items():
            new = new.replace(f"The {arg!r} argument", f"The {opt!r} option")
        if new == msg:
            raise
        raise type(e)(new) from None
