"""Fused one-pass statistics kernels for the watch's CPU path (compiled by numba when installed).

A recorded training step of :func:`initlab.watch` reads every layer's activation, delta, weight
and weight gradient. With torch operations each statistic is its own pass and its own dispatch
(sum, Σx², channel maxima, minimum, the near-zero test, the cosine's norms, the histogram's bin
index, the snapshot copy, ‖ΔW‖...): about a thousand small operations per step, each costing a
few microseconds of overhead on a tensor that takes one to read. These kernels compute all the
statistics of one tensor in one pass over its memory, as the probe defines them
(:func:`initlab.diagnostics._stats.moments`, :func:`~initlab.diagnostics._stats.near_zero`,
:func:`~initlab.diagnostics._stats.cosine_from_sums`, :func:`~initlab.diagnostics._stats.histogram`),
with float64 accumulators. They run on NumPy views of CPU tensors (no copy) in the hook that sees
the tensor, so nothing is kept for later and an in-place operation after the hook cannot change
what was recorded.

numba is optional (the ``torch`` extra installs it): :func:`load` returns None when it is missing,
and the watch then computes the same numbers with torch operations. Kernels are compiled on first
use and cached on disk (numba's ``cache=True``).
"""

from __future__ import annotations

import os
from typing import Any

_STATE: dict[str, Any] = {}


def load() -> Any:
    """The compiled kernels (the module :mod:`initlab.diagnostics._numba_kernels`), or None when numba is not
    installed or ``INITLAB_NO_NUMBA`` is set to a non-empty value other than "0"."""
    if "k" in _STATE:
        return _STATE["k"]
    off = os.environ.get("INITLAB_NO_NUMBA", "")
    k = None
    if not off or off == "0":
        try:
            from initlab.diagnostics import _numba_kernels as k
        except Exception:  # numba missing, or unusable here (no cache location, an unsupported NumPy...)
            k = None
    _STATE["k"] = k
    return k
