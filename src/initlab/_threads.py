"""BLAS threads in one place: :func:`limit_threads`, the context every part of initlab uses to cap
the threads of the native math libraries (threadpoolctl; restored on exit).

Small matrix products (a batch of 128 by 100 units) gain nothing from a multi-threaded BLAS and,
on a busy machine, lose up to 10× to thread start-up and spinning threads; training
(:func:`initlab.nn.training.blas_threads`), the stacked sweeps and the seed studies therefore run
such work on one thread.
"""

from __future__ import annotations

import contextlib
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
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of initlab
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(threads), user_api=user_api)
