"""Atomic file writes in one place: :func:`atomic_write`, used by every file initlab writes (the
CLI's outputs, saved watches and their tables, sweep exports and plots, the explorer page).

A reader never sees a half-written file, and an interrupted write leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Callable

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], Any]) -> str:
    """Call ``write(tmp)`` to write a temporary file beside ``path`` (same folder and extension, so
    writers that pick a format from it still do), give it mode 0644 and rename it onto ``path``.
    The temporary file is removed on any failure; errors (OSError included) propagate. Returns
    ``path`` as a string.

    >>> import tempfile, pathlib
    >>> d = tempfile.mkdtemp()
    >>> p = atomic_write(d + "/a.txt", lambda tmp: pathlib.Path(tmp).write_text("hi"))
    >>> pathlib.Path(p).read_text()
    'hi'
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target)
    suffix = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return target
