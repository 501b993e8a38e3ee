"""BLAS threads in one place: :func:`limit_threads`, the context every part of initlab uses to cap
the threads of the native math libraries (threadpoolctl; restored on exit).

Small matrix products (a batch of 128 by 100 units) gain nothing from a multi-threaded BLAS and,
on a busy machine, lose up to 10× to thread start-up and spinning threads; training
(:func:`initlab.nn.training.blas_threads`), the stacked sweeps and the seed studies therefore run
such work on one thread.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

__all__ = ["limit_threads"]


def limit_threads(threads: int | None, *, user_api: str | None = "blas") -> Any:
    """A context manager capping the threads of ``user_api`` ("blas", "openmp", or None for
    every native thread pool threadpoolctl knows) at ``threads``; ``threads=None`` changes
    nothing. Without threadpoolctl (it ships with scikit-learn and is a dependency of initlab)
    it is a no-op.

    >>> with limit_threads(1):
    ...     pass
    >>> with limit_threads(None):
    ...     pass
    """
    if threads is None:
        return contextlib.nullcontext()
    ctl = _controller()
    if ctl is None:  # pragma: no cover - a dependency of initlab
        return contextlib.nullcontext()
    return ctl.limit(limits=int(threads), user_api=user_api)


_CONTROLLER: list[Any] = []  # [(len(sys.modules) when made, ThreadpoolController)]


def _controller() -> Any:
    """threadpoolctl's controller of the loaded thread pools, kept between calls: making one scans
    every loaded library (about 1 ms with torch loaded, twice per fit), so it is made again only
    when modules were imported since (a new module may have loaded a new BLAS)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return None
    n = len(sys.modules)
    if not _CONTROLLER or _CONTROLLER[0][0] != n:
        _CONTROLLER[:] = [(n, ThreadpoolController())]
    return _CONTROLLER[0][1]
