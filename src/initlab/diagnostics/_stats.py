"""Statistics kernels of the probe: moments in few passes, fixed-bin histograms on a subsample.

The probe must cost little beside the forward and backward pass it watches (the benchmark
``benchmarks/probe_speed.py`` holds it to ≤ 1.5× a plain forward+backward), so each tensor is read
as few times as possible:

* :func:`moments` reads an array ``x`` of shape ``[batch, channels, *spatial]`` (or
  ``[batch, units]``) four times: per-channel sums (one reduction, float32 accumulation over the
  batch, then float64), the sum of squares ``Σx²`` (one BLAS dot product), the per-channel maximum
  and the global minimum. From these,

  - mean ``m = Σx / n`` and pooled variance ``Σx²/n − m²`` (over batch, units and positions,
    ddof = 0, as the seeds' tables ``np.std(H)``),
  - the average channel squared mean ``sq_mean = mean_c (mean_{b,s} x)²`` and the average channel
    variance ``chan_var = Σx²/n − sq_mean`` (Signal Propagation Plots: Brock, De & Smith 2021,
    "Characterizing signal propagation to close the performance gap in unnormalized ResNets").

  ``Σx²/n − m²`` cancels catastrophically when the spread is tiny beside the mean (a sigmoid
  layer sitting at 0.5 with std 1e-4); when the variance falls below 1e-3 of the second moment the
  kernel recomputes it exactly with a centered two-pass float64 formula, so the fast path is never
  the inaccurate one.
* :func:`hist_edges` is initlab's one rule for a histogram's range (the probe, the watch, the
  training :class:`~initlab.diagnostics.Probe` callback and the studies' figures all use it):
  given ``bounds`` exactly; else the smallest to the largest finite value (or the ``central``
  fraction of them, between the quantiles (1 − central)/2 and (1 + central)/2), a range of zero
  width widened to ±1 around the value, then widened by ``margin`` × its width on each side.
  Equal-width bins.
* :func:`histogram` bins values on fixed edges (chosen once per quantity for all layers, so the
  rows are comparable as in the seeds' plots) with ``np.bincount`` on precomputed bin indices;
  values outside the edges are counted in the end bins (``outside="clip"``) or left out
  (``outside="drop"``).
  By default it reads a deterministic strided subsample of at most 65 536 values (the stride is
  made coprime with the channel count so every unit is visited); ``counts`` are those of the
  subsample and ``n_sampled`` says how many values were binned. ``density`` is the normalised
  histogram, which the subsample estimates without bias (standard error ≤ √(p/n_sampled)).

>>> import numpy as np
>>> x = np.array([[1.0, -1.0], [3.0, 1.0]], dtype=np.float32)
>>> m = moments(x)
>>> m.mean, round(m.std, 6), m.min, m.max, m.sq_mean
(1.0, 1.414214, -1.0, 3.0, 2.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["Moments", "Histogram", "moments", "hist_edges", "histogram", "subsample", "mean_pairwise_cosine",
           "cosine_from_sums", "near_zero"]

_EXACT_FALLBACK = 1e-3  # recompute the variance centered when var < this · E[x²]
HIST_SAMPLE = 65536


@dataclass(frozen=True)
class Moments:
    """Pooled moments of one tensor (see the module docstring for the formulas)."""

    n: int
    mean: float
    std: float
    sq_mean: float
    chan_var: float
    min: float
    max: float
    chan_max: np.ndarray  # per-channel maximum (the probe's "unit never active" test uses it)


def _as_channels(x: np.ndarray) -> np.ndarray:
    """View ``x`` as [batch, channels, rest] (rest = 1 for dense layers)."""
    if x.ndim == 0:
        return x.reshape(1, 1, 1)
    if x.ndim == 1:
        return x.reshape(-1, 1, 1)
    return x.reshape(x.shape[0], x.shape[1], -1)


def moments(x: np.ndarray) -> Moments:
    """Mean, pooled std (ddof=0), channel squared mean / variance, min, max of ``x`` in four reads.

    ``x`` has shape [batch, channels, *spatial] or [batch, units]; channel statistics are over
    the batch and the spatial positions.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((400, 50)).astype(np.float32)
    >>> m = moments(x)
    >>> bool(abs(m.std - float(np.std(x.astype(np.float64)))) < 1e-6)
    True
    """
    x = np.ascontiguousarray(x)
    if x.size == 0:
        raise ValueError(f"The 'x' argument must be a non-empty array; got shape {x.shape}.")
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    xc = _as_channels(x)
    n = x.size
    per_chan = xc.shape[0] * xc.shape[2]
    flat = x.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):  # float32 overflow -> exact float64 path below
        if xc.shape[2] == 1:
            chan_sum = xc[:, :, 0].sum(axis=0, dtype=x.dtype).astype(np.float64)
            chan_max = xc[:, :, 0].max(axis=0)
        else:
            chan_sum = xc.sum(axis=(0, 2), dtype=np.float64)
            chan_max = xc.max(axis=(0, 2))
        total = float(chan_sum.sum())
        sumsq = float(np.dot(flat, flat))
        mean = total / n
        ex2 = sumsq / n
        chan_mean = chan_sum / per_chan
        sq_mean = float(np.dot(chan_mean, chan_mean)) / chan_mean.size
        var = ex2 - mean * mean
        chan_var = ex2 - sq_mean
    if not math.isfinite(var) or var < _EXACT_FALLBACK * ex2:
        # tiny spread beside the mean: exact centered two-pass in float64
        with np.errstate(over="ignore", invalid="ignore"):  # inf/nan inputs give inf/nan, not warnings
            x64 = xc.astype(np.float64)
            mean = float(x64.mean())
            var = float(np.mean((x64 - mean) ** 2))
            cm = x64.mean(axis=(0, 2))
            sq_mean = float(np.mean(cm * cm))
            chan_var = float(np.mean((x64 - cm[None, :, None]) ** 2))
    mn = float(flat.min())
    mx = float(chan_max.max())
    return Moments(
        n=n,
        mean=mean,
        std=math.sqrt(max(var, 0.0)),
        sq_mean=sq_mean,
        chan_var=max(chan_var, 0.0),
        min=mn,
        max=mx,
        chan_max=chan_max,
    )


def subsample(x: np.ndarray, k: int | None = HIST_SAMPLE) -> np.ndarray:
    """A deterministic strided subsample of at most ``k`` values of ``x`` (a copy, 1-D).

    The stride is made coprime with the number of channels (``x.shape[1]``) so the sample visits
    every unit. ``k=None`` returns every value.

    >>> import numpy as np
    >>> subsample(np.arange(12.0).reshape(3, 4), 4).tolist()
    [0.0, 3.0, 6.0, 9.0]
    """
    flat = np.ascontiguousarray(x).reshape(-1)
    if k is None or flat.size <= k:
        return flat.copy()
    step = -(-flat.size // k)
    chans = x.shape[1] if x.ndim >= 2 else 1
    while math.gcd(step, chans) != 1:
        step += 1
    return flat[::step].copy()


@dataclass(frozen=True)
class Histogram:
    """Counts of values on fixed ``edges`` (len(counts) + 1 edges); values outside are clipped
    into the end bins. ``n_sampled`` values were binned (a subsample, see :func:`subsample`)."""

    edges: np.ndarray
    counts: np.ndarray
    n_sampled: int

    @property
    def density(self) -> np.ndarray:
        """counts / (n_sampled · bin width): integrates to 1 over the edges."""
        width = np.diff(self.edges)
        total = max(self.n_sampled, 1)
        return self.counts / (total * width)


def hist_edges(values: np.ndarray | Sequence[np.ndarray], bins: int, *, bounds: tuple[float, float] | None = None,
               central: float = 1.0, margin: float = 0.0) -> np.ndarray:
    """The ``bins + 1`` equal-width edges of a histogram of ``values`` (one array, or several
    binned on common edges, e.g. the layers of one group) — initlab's one range rule:

    1. ``bounds`` (lo, hi) when given (a bounded activation's range, a figure's fixed range);
       ``margin`` does not apply to them;
    2. else the smallest to the largest finite value over all the arrays (``central`` = 1), or the
       quantiles (1 − central)/2 and (1 + central)/2 of all of them (``central`` < 1: a long tail
       does not squeeze the bulk into one bin); (−1, 1) when there is no finite value;
    3. a range of zero width (hi ≤ lo) becomes (lo − 1, hi + 1);
    4. a range read off the values is widened by ``margin`` × its width on each side (the watch
       keeps the edges of its first step, so later steps need room).

    >>> hist_edges(np.array([0.0, 2.0]), 4).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    >>> hist_edges([np.array([3.0]), np.array([3.0])], 2).tolist()
    [2.0, 3.0, 4.0]
    >>> hist_edges(np.array([0.0, 1.0]), 2, margin=0.5).tolist()
    [-0.5, 0.5, 1.5]
    >>> hist_edges(np.array([5.0]), 2, bounds=(-1.0, 1.0), margin=0.5).tolist()
    [-1.0, 0.0, 1.0]
    """
    if bounds is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
    else:
        arrays = [values] if isinstance(values, np.ndarray) else list(values)
        finite = [f for f in (np.asarray(a).reshape(-1) for a in arrays) if f.size]
        finite = [f for f in (f[np.isfinite(f)] for f in finite) if f.size]
        if not finite:
            lo, hi = -1.0, 1.0
        elif central >= 1.0:
            lo = min(float(f.min()) for f in finite)
            hi = max(float(f.max()) for f in finite)
        else:
            tail = (1.0 - central) / 2.0
            v = np.concatenate([f.astype(np.float64) for f in finite])
            lo, hi = (float(q) for q in np.quantile(v, [tail, 1.0 - tail]))
    if not hi > lo:
        lo, hi = lo - 1.0, hi + 1.0
    if bounds is None and margin:
        span = hi - lo
        lo, hi = lo - margin * span, hi + margin * span
    return np.linspace(lo, hi, int(bins) + 1)


def histogram(values: np.ndarray, edges: np.ndarray, *, outside: str = "clip") -> Histogram:
    """Bin ``values`` on equal-width ``edges`` (:func:`hist_edges`) with one ``np.bincount``;
    non-finite values are left out, values outside the edges are counted in the end bins
    (``outside="clip"``) or left out (``"drop"``, also from ``n_sampled``).

    >>> import numpy as np
    >>> h = histogram(np.array([-0.9, -0.1, 0.1, 0.2, 5.0]), np.linspace(-1, 1, 5))
    >>> h.counts.tolist()
    [1, 1, 2, 1]
    >>> histogram(np.array([-0.9, -0.1, 0.1, 0.2, 5.0]), np.linspace(-1, 1, 5), outside="drop").counts.tolist()
    [1, 1, 2, 0]
    """
    edges = np.asarray(edges, dtype=np.float64)
    nb = edges.size - 1
    lo, hi = float(edges[0]), float(edges[-1])
    v = np.asarray(values).reshape(-1)
    v = v[np.isfinite(v)]
    if outside == "drop":
        v = v[(v >= lo) & (v <= hi)]
    elif outside != "clip":
        raise ValueError(f"The 'outside' argument must be one of 'clip', 'drop'; got {outside!r}.")
    if hi <= lo:
        counts = np.zeros(nb, dtype=np.int64)
        counts[0] = v.size
        return Histogram(edges, counts, int(v.size))
    # clip as floats first: a value far outside the edges would overflow the integer cast
    pos = np.clip((v.astype(np.float64) - lo) * (nb / (hi - lo)), 0, nb - 1)
    idx = pos.astype(np.intp)
    counts = np.bincount(idx, minlength=nb).astype(np.int64)
    return Histogram(edges, counts, int(v.size))


def near_zero(x: np.ndarray, threshold: float) -> float:
    """The fraction of the values of ``x`` with |x| ≤ ``threshold`` (fastai's ActivationStats
    near-zero fraction with threshold 0.05; the seed 000 study's spike of deltas at 0 with
    threshold 0.01·std). 0.0 for an empty array.

    >>> import numpy as np
    >>> near_zero(np.array([-0.1, -0.05, 0.0, 0.2]), 0.05)
    0.5
    """
    flat = np.asarray(x).reshape(-1)
    t = float(threshold)
    return float(np.count_nonzero((flat <= t) & (flat >= -t))) / max(flat.size, 1)


def mean_pairwise_cosine(x: np.ndarray, k: int = 64, max_features: int = 4096) -> float:
    """Mean cosine similarity between the representations of distinct samples (rows of ``x``).

    Uses the first ``k`` samples (flattened per sample); a sample of more than ``max_features``
    values is read on a deterministic strided subset of at most that many coordinates (the same
    for every sample), so a [64, 128 tokens, 2048] activation costs no more than a dense layer. This is the empirical counterpart of the
    mean-field correlation c (Poole et al. 2016): → 1 when every input is mapped to the same
    direction (collapsed correlations). Rows of zero norm are left out; when fewer than two rows
    have a norm, the samples count as fully collapsed (1.0). Computed in O(k·features) by
    :func:`cosine_from_sums`.

    >>> import numpy as np
    >>> round(mean_pairwise_cosine(np.ones((5, 3))), 6)
    1.0
    """
    head = np.asarray(x[:k])
    r = head.reshape(head.shape[0], -1)
    if r.shape[1] > max_features:
        r = r[:, ::-(-r.shape[1] // max_features)]
    r = np.asarray(r, dtype=np.float64)
    if r.shape[0] < 2:
        return float("nan")
    with np.errstate(all="ignore"):
        n2 = np.einsum("ij,ij->i", r, r)
        inv = np.where(n2 > 0, 1.0 / np.sqrt(n2), 0.0)
        inv = np.where(np.isinf(n2), 0.0, np.where(np.isnan(n2), np.nan, inv))
        u = (r * inv[:, None]).sum(axis=0)
        return cosine_from_sums(n2, float(np.dot(u, u)))


def cosine_from_sums(n2: np.ndarray, q: float) -> float:
    """The mean pairwise cosine of :func:`mean_pairwise_cosine` from two sums over the k sample
    rows x_i: their squared norms n2_i = ‖x_i‖², and q = ‖Σ_i x_i/‖x_i‖‖² over the rows of
    non-zero norm. With u_i = x_i/‖x_i‖, Σ_{i≠j} cos_ij = ‖Σ_i u_i‖² − Σ_i ‖u_i‖² = q − m over
    the m rows of non-zero norm, so the mean over i ≠ j is (q − m)/(m(m − 1)): no k×k Gram
    matrix. Fewer than two rows: NaN; fewer than two rows of non-zero norm: 1.0 (collapsed);
    a non-finite norm (a diverged layer): NaN. The watch forms n2 and q with torch operations
    on the tensor's device and hands over only these k + 1 numbers.

    >>> import numpy as np
    >>> cosine_from_sums(np.array([1.0, 4.0]), 2.0), cosine_from_sums(np.zeros(3), 0.0)
    (0.0, 1.0)
    """
    n2 = np.asarray(n2, dtype=np.float64).reshape(-1)
    if n2.size < 2:
        return float("nan")
    if not (np.all(np.isfinite(n2)) and math.isfinite(q)):
        return float("nan")
    m = int(np.count_nonzero(n2 > 0))
    if m < 2:
        return 1.0
    return float((q - m) / (m * (m - 1)))
