"""The numba kernels of :mod:`initlab.diagnostics._kernels` (imported only through its
:func:`~initlab.diagnostics._kernels.load`, so that numba stays optional and is not imported by
``import initlab``). Each kernel reads its tensor once; see that module's docstring."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

jit = numba.njit(nogil=True, boundscheck=False, error_model="numpy", cache=True)
# sums that may be reassociated (vectorised): float64 accumulators of float32/float64 values; NaN and
# inf still propagate (no "nnan"/"ninf")
jit_sum = numba.njit(nogil=True, boundscheck=False, error_model="numpy", cache=True, fastmath={"reassoc"})
LANES = 64  # independent accumulators of a flat sum (vectorised; summed at the end)


@jit
def fw_stats(x: Any, near_t: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """x [rows, C]; out [5, C] float64: per channel Σx, max, Σx², min, count(|x| ≤ near_t)
    (compared in x's dtype). A NaN is never a maximum or minimum here (the caller marks the
    channels whose Σx² is NaN). Returns the totals (Σx, Σx², near-zero count).
    (Accumulators local to the kernel, maxima and minima in x's dtype, which is exact: the
    loop over channels vectorises.)"""
    r_, c_ = x.shape
    s = np.zeros(c_)
    q = np.zeros(c_)
    nz = np.zeros(c_, dtype=np.int64)
    mx = np.empty(c_, dtype=x.dtype)
    mn = np.empty(c_, dtype=x.dtype)
    for c in range(c_):
        mx[c] = -np.inf
        mn[c] = np.inf
    for r in range(r_):
        for c in range(c_):
            v = x[r, c]
            w = np.float64(v)
            s[c] += w
            q[c] += w * w
            mx[c] = v if v > mx[c] else mx[c]
            mn[c] = v if v < mn[c] else mn[c]
            nz[c] += abs(v) <= near_t
    ts = 0.0
    tq = 0.0
    tn = 0
    for c in range(c_):
        out[0, c] = s[c]
        out[1, c] = mx[c]
        out[2, c] = q[c]
        out[3, c] = mn[c]
        out[4, c] = nz[c]
        ts += s[c]
        tq += q[c]
        tn += nz[c]
    return ts, tq, np.float64(tn)


@jit
def grad_sums(x: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """x [rows, C]; out [2, C] float64: per channel Σx, Σx². Returns the totals (Σx, Σx²)."""
    r_, c_ = x.shape
    for c in range(c_):
        out[0, c] = 0.0
        out[1, c] = 0.0
    for r in range(r_):
        for c in range(c_):
            w = np.float64(x[r, c])
            out[0, c] += w
            out[1, c] += w * w
    return out[0].sum(), out[1].sum()


@jit
def flat_sums(x: Any) -> Any:  # pragma: no cover - compiled
    """x 1-D: (Σx, Σx²)."""
    acc = np.zeros((2, LANES))
    n = x.shape[0]
    m = n // LANES
    for r in range(m):
        b = r * LANES
        for c in range(LANES):
            w = np.float64(x[b + c])
            acc[0, c] += w
            acc[1, c] += w * w
    for i in range(m * LANES, n):
        w = np.float64(x[i])
        acc[0, 0] += w
        acc[1, 0] += w * w
    return acc[0].sum(), acc[1].sum()


@jit
def snap_sums(w_: Any, s: Any) -> Any:  # pragma: no cover - compiled
    """s[:] = w (1-D); returns (Σw, Σw²)."""
    acc = np.zeros((2, LANES))
    n = w_.shape[0]
    m = n // LANES
    for r in range(m):
        b = r * LANES
        for c in range(LANES):
            v = w_[b + c]
            s[b + c] = v
            f = np.float64(v)
            acc[0, c] += f
            acc[1, c] += f * f
    for i in range(m * LANES, n):
        v = w_[i]
        s[i] = v
        f = np.float64(v)
        acc[0, 0] += f
        acc[1, 0] += f * f
    return acc[0].sum(), acc[1].sum()


@jit
def diff_sq(w_: Any, s: Any) -> Any:  # pragma: no cover - compiled
    """Σ(w − s)² (1-D), the difference formed in float64 (exact for float32)."""
    acc = np.zeros(LANES)
    n = w_.shape[0]
    m = n // LANES
    for r in range(m):
        b = r * LANES
        for c in range(LANES):
            d = np.float64(w_[b + c]) - np.float64(s[b + c])
            acc[c] += d * d
    for i in range(m * LANES, n):
        d = np.float64(w_[i]) - np.float64(s[i])
        acc[0] += d * d
    return acc.sum()


@jit
def diff_snap_all(ws: Any, ss: Any, out: Any) -> None:  # pragma: no cover - compiled
    """:func:`diff_snap_sums` of each (ws[i], ss[i]) (tuples of 1-D arrays of one dtype):
    out[i] = (Σ(w − s)², Σw, Σw², whether the variance cancels); one call for all the watched
    weights."""
    for i in range(len(ws)):
        d2, s, q = diff_snap_sums(ws[i], ss[i])
        out[i, 0] = d2
        out[i, 1] = s
        out[i, 2] = q
        out[i, 3] = 1.0 if cancels_w(s, q, ws[i].shape[0]) else 0.0


@jit
def diff_snap_sums(w_: Any, s: Any) -> Any:  # pragma: no cover - compiled
    """Σ(w − s)², then s[:] = w; returns (Σ(w − s)², Σw, Σw²): the update of one step and the
    snapshot (with its sums) of the next, in one pass."""
    acc = np.zeros((3, LANES))
    n = w_.shape[0]
    m = n // LANES
    for r in range(m):
        b = r * LANES
        for c in range(LANES):
            v = w_[b + c]
            f = np.float64(v)
            d = f - np.float64(s[b + c])
            s[b + c] = v
            acc[0, c] += d * d
            acc[1, c] += f
            acc[2, c] += f * f
    for i in range(m * LANES, n):
        v = w_[i]
        f = np.float64(v)
        d = f - np.float64(s[i])
        s[i] = v
        acc[0, 0] += d * d
        acc[1, 0] += f
        acc[2, 0] += f * f
    return acc[0].sum(), acc[1].sum(), acc[2].sum()


@jit_sum
def cos_sums(h: Any, fstep: int, n2: Any) -> float:  # pragma: no cover - compiled
    """h [k, F] (the first k samples, flattened): n2[i] = ‖h_i‖² over features 0, fstep,
    2·fstep...; returns q = ‖Σ_i h_i/‖h_i‖‖² over the rows of non-zero norm (a row of
    non-finite norm makes q NaN) — :func:`~initlab.diagnostics._stats.cosine_from_sums`."""
    k, f_ = h.shape
    if fstep == 1:
        return _cos_sums_dense(h, n2)
    nf = (f_ + fstep - 1) // fstep
    su = np.zeros(nf)
    for i in range(k):
        s = 0.0
        for j in range(nf):
            v = np.float64(h[i, j * fstep])
            s += v * v
        n2[i] = s
        if s == 0.0:
            continue
        inv = 1.0 / math.sqrt(s)
        for j in range(nf):
            su[j] += np.float64(h[i, j * fstep]) * inv
    q = 0.0
    for j in range(nf):
        q += su[j] * su[j]
    return q


@jit_sum
def _cos_sums_dense(h: Any, n2: Any) -> float:  # pragma: no cover - compiled
    """:func:`cos_sums` over all features (unit stride: vectorised)."""
    k, f_ = h.shape
    su = np.zeros(f_)
    for i in range(k):
        s = 0.0
        for j in range(f_):
            v = np.float64(h[i, j])
            s += v * v
        n2[i] = s
        if s == 0.0:
            continue
        inv = 1.0 / math.sqrt(s)
        for j in range(f_):
            su[j] += np.float64(h[i, j]) * inv
    q = 0.0
    for j in range(f_):
        q += su[j] * su[j]
    return q


@jit
def hist_counts(flat: Any, step: int, scale: float, lo: float, k: float, nb: int,
                idx: Any, counts: Any) -> None:  # pragma: no cover - compiled
    """counts[b] += #{values flat[0], flat[step], ... in bin b}, b = ⌊(scale·v − lo)·k⌋ in
    float64 clipped into [0, nb − 1] (the rule of :func:`~initlab.diagnostics._stats.histogram`).
    The values must be finite (the caller checks: Σx² is finite). ``idx`` int32 scratch of at
    least ⌈len/step⌉; eight interleaved partial counts break the store-to-load chain of
    repeated bins."""
    m = (flat.shape[0] + step - 1) // step
    top = np.float64(nb - 1)
    for j in range(m):
        p = (np.float64(flat[j * step]) * scale - lo) * k
        p = p if p > 0.0 else 0.0
        p = p if p < top else top
        idx[j] = np.int32(p)
    part = np.zeros((8, nb), dtype=np.int64)
    j = 0
    while j + 8 <= m:
        part[0, idx[j]] += 1
        part[1, idx[j + 1]] += 1
        part[2, idx[j + 2]] += 1
        part[3, idx[j + 3]] += 1
        part[4, idx[j + 4]] += 1
        part[5, idx[j + 5]] += 1
        part[6, idx[j + 6]] += 1
        part[7, idx[j + 7]] += 1
        j += 8
    while j < m:
        part[0, idx[j]] += 1
        j += 1
    for b in range(nb):
        t = 0
        for r in range(8):
            t += part[r, b]
        counts[b] += t



MID_LANES = 16


@jit
def fw_stats_mid(x: Any, near_t: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """:func:`fw_stats` of a tensor whose channels are its middle axis, x [batch, C, positions]
    (a conv's output): per channel Σx, max, Σx², min, near-zero count over batch and positions,
    in 16 lanes along the positions (vectorised), then summed."""
    n_, c_, p_ = x.shape
    main = p_ - p_ % MID_LANES
    acc = np.empty((5, MID_LANES))
    for c in range(c_):
        for j in range(MID_LANES):
            acc[0, j] = 0.0
            acc[1, j] = -np.inf
            acc[2, j] = 0.0
            acc[3, j] = np.inf
            acc[4, j] = 0.0
        for n in range(n_):
            for p0 in range(0, main, MID_LANES):
                for j in range(MID_LANES):
                    v = x[n, c, p0 + j]
                    w = np.float64(v)
                    acc[0, j] += w
                    acc[1, j] = w if w > acc[1, j] else acc[1, j]
                    acc[2, j] += w * w
                    acc[3, j] = w if w < acc[3, j] else acc[3, j]
                    acc[4, j] += 1.0 if abs(v) <= near_t else 0.0
            for p in range(main, p_):
                v = x[n, c, p]
                w = np.float64(v)
                acc[0, 0] += w
                acc[1, 0] = w if w > acc[1, 0] else acc[1, 0]
                acc[2, 0] += w * w
                acc[3, 0] = w if w < acc[3, 0] else acc[3, 0]
                acc[4, 0] += 1.0 if abs(v) <= near_t else 0.0
        out[0, c] = acc[0].sum()
        out[1, c] = acc[1].max()
        out[2, c] = acc[2].sum()
        out[3, c] = acc[3].min()
        out[4, c] = acc[4].sum()
    return out[0].sum(), out[2].sum(), out[4].sum()


@jit
def grad_sums_mid(x: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """:func:`grad_sums` of x [batch, C, positions]: per channel Σx, Σx² (16 lanes along the
    positions); returns the totals."""
    n_, c_, p_ = x.shape
    main = p_ - p_ % MID_LANES
    acc = np.empty((2, MID_LANES))
    for c in range(c_):
        for j in range(MID_LANES):
            acc[0, j] = 0.0
            acc[1, j] = 0.0
        for n in range(n_):
            for p0 in range(0, main, MID_LANES):
                for j in range(MID_LANES):
                    w = np.float64(x[n, c, p0 + j])
                    acc[0, j] += w
                    acc[1, j] += w * w
            for p in range(main, p_):
                w = np.float64(x[n, c, p])
                acc[0, 0] += w
                acc[1, 0] += w * w
        out[0, c] = acc[0].sum()
        out[1, c] = acc[1].sum()
    return out[0].sum(), out[1].sum()


# one call per recorded tensor -------------------------------------------------------------------
# The watch's hook calls one of these per tensor: its statistics, its cosine sums (``h`` with fewer
# than two rows: none) and its histogram (``nb`` = 0: none; counted only when Σx² is finite, the
# caller bins other samples by the probe's own function). One dispatch instead of three, and the
# cosine's and histogram's reads follow the statistics' while the tensor is in cache.


@jit
def _hist_if_finite(sq: float, flat: Any, hstep: int, scale: float, lo: float, kk: float, nb: int, idx: Any,
                    counts: Any) -> bool:  # pragma: no cover - compiled
    """:func:`hist_counts` of flat when there are bins (nb > 0) and Σx² is finite; whether it counted."""
    counted = nb > 0 and np.isfinite(sq)
    if counted:
        hist_counts(flat, hstep, scale, lo, kk, nb, idx, counts)
    return counted


@jit
def _cos_if_rows(h: Any, fstep: int, n2: Any) -> float:  # pragma: no cover - compiled
    """:func:`cos_sums` of h when it has two rows or more, else NaN."""
    return cos_sums(h, fstep, n2) if h.shape[0] >= 2 else np.nan


@jit
def fw_all(x: Any, near_t: Any, out: Any, h: Any, fstep: int, n2: Any, flat: Any, hstep: int, scale: float,
           lo: float, kk: float, nb: int, idx: Any, counts: Any) -> Any:  # pragma: no cover - compiled
    """:func:`fw_stats` of x [rows, C], :func:`cos_sums` of h, :func:`hist_counts` of flat.
    Returns (Σx, Σx², near-zero count, q (NaN without cosine), whether the histogram was counted)."""
    s, sq, near = fw_stats(x, near_t, out)
    return s, sq, near, _cos_if_rows(h, fstep, n2), _hist_if_finite(sq, flat, hstep, scale, lo, kk, nb, idx, counts)


@jit
def fw_all_mid(x: Any, near_t: Any, out: Any, h: Any, fstep: int, n2: Any, flat: Any, hstep: int, scale: float,
               lo: float, kk: float, nb: int, idx: Any, counts: Any) -> Any:  # pragma: no cover - compiled
    """:func:`fw_all` with :func:`fw_stats_mid` (x [batch, C, positions])."""
    s, sq, near = fw_stats_mid(x, near_t, out)
    return s, sq, near, _cos_if_rows(h, fstep, n2), _hist_if_finite(sq, flat, hstep, scale, lo, kk, nb, idx, counts)


@jit
def grad_all(x: Any, out: Any, flat: Any, hstep: int, scale: float, lo: float, kk: float, nb: int, idx: Any,
             counts: Any) -> Any:  # pragma: no cover - compiled
    """:func:`grad_sums` of x [rows, C] and :func:`hist_counts` of flat. Returns (Σx, Σx², counted)."""
    s, sq = grad_sums(x, out)
    return s, sq, _hist_if_finite(sq, flat, hstep, scale, lo, kk, nb, idx, counts)


@jit
def grad_all_mid(x: Any, out: Any, flat: Any, hstep: int, scale: float, lo: float, kk: float, nb: int, idx: Any,
                 counts: Any) -> Any:  # pragma: no cover - compiled
    """:func:`grad_all` with :func:`grad_sums_mid` (x [batch, C, positions])."""
    s, sq = grad_sums_mid(x, out)
    return s, sq, _hist_if_finite(sq, flat, hstep, scale, lo, kk, nb, idx, counts)


@jit
def cancels(s: float, sq: float, n: int) -> bool:  # pragma: no cover - compiled
    """The probe's rule for a centered recomputation: Σx²/n − mean² is not finite or under
    1e-3·Σx²/n (n at least 1)."""
    n = max(n, 1)
    mean = s / n
    var = sq / n - mean * mean
    return not np.isfinite(var) or var < 1e-3 * sq / n


@jit
def cancels_w(s: float, q: float, n: int) -> bool:  # pragma: no cover - compiled
    """The same rule for a weight's sums, as _HostSums.of writes it: E[w²] − E[w]² is not finite
    or under 1e-3·E[w²]."""
    n = max(n, 1)
    mean = s / n
    ex2 = q / n
    var = ex2 - mean * mean
    return not np.isfinite(var) or var < 1e-3 * ex2


# the replayed steps' kernels (initlab.diagnostics._watch_plan): the same numbers written into the
# step's one array of numbers at fixed offsets --------------------------------------------------
# fw: vals[o : o+5C] the [5, C] channel numbers of fw_stats, then Σx², near-zero count, q, and the
# cosine's n2 (hrows values); grad: vals[o : o+2C] the [2, C] channel sums, then Σx². The
# histogram's counts go to counts[co : co+nb].


@jit
def fw_slot(flat: Any, vals: Any, counts: Any, idx: Any, r: int, c: int, near_t: Any, o: int, hrows: int, feats: int,
            fstep: int, hstep: int, lo: float, kk: float, nb: int, co: int) -> Any:  # pragma: no cover - compiled
    """:func:`fw_all` of flat viewed [r, c] into ``vals`` at ``o``; returns (whether the variance
    cancels (:func:`cancels`), whether the histogram was counted)."""
    b = o + 5 * c
    s, sq, near, q, counted = fw_all(flat.reshape((r, c)), near_t, vals[o:b].reshape((5, c)),
                                     flat[:hrows * feats].reshape((hrows, feats)), fstep, vals[b + 3:b + 3 + hrows],
                                     flat, hstep, 1.0, lo, kk, nb, idx, counts[co:co + nb])
    vals[b:b + 3] = (sq, near, q)
    return cancels(s, sq, r * c), counted


@jit
def fw_slot_mid(flat: Any, vals: Any, counts: Any, idx: Any, n: int, c: int, p: int, near_t: Any, o: int, hrows: int,
                feats: int, fstep: int, hstep: int, lo: float, kk: float, nb: int,
                co: int) -> Any:  # pragma: no cover - compiled
    """:func:`fw_slot` of flat viewed [n, c, p] (channels on axis 1)."""
    b = o + 5 * c
    s, sq, near, q, counted = fw_all_mid(flat.reshape((n, c, p)), near_t, vals[o:b].reshape((5, c)),
                                         flat[:hrows * feats].reshape((hrows, feats)), fstep,
                                         vals[b + 3:b + 3 + hrows], flat, hstep, 1.0, lo, kk, nb, idx, counts[co:co + nb])
    vals[b:b + 3] = (sq, near, q)
    return cancels(s, sq, n * c * p), counted


@jit
def grad_slot(flat: Any, vals: Any, counts: Any, idx: Any, r: int, c: int, o: int, hstep: int, scale: float, lo: float,
              kk: float, nb: int, co: int) -> Any:  # pragma: no cover - compiled
    """:func:`grad_all` of flat viewed [r, c] into ``vals`` at ``o``; returns (whether the variance
    cancels, counted)."""
    s, sq, counted = grad_all(flat.reshape((r, c)), vals[o:o + 2 * c].reshape((2, c)), flat, hstep, scale, lo, kk, nb,
                              idx, counts[co:co + nb])
    vals[o + 2 * c] = sq
    return cancels(s, sq, r * c), counted


@jit
def grad_slot_mid(flat: Any, vals: Any, counts: Any, idx: Any, n: int, c: int, p: int, o: int, hstep: int,
                  scale: float, lo: float, kk: float, nb: int, co: int) -> Any:  # pragma: no cover - compiled
    """:func:`grad_slot` of flat viewed [n, c, p]."""
    s, sq, counted = grad_all_mid(flat.reshape((n, c, p)), vals[o:o + 2 * c].reshape((2, c)), flat, hstep, scale, lo,
                                  kk, nb, idx, counts[co:co + nb])
    vals[o + 2 * c] = sq
    return cancels(s, sq, n * c * p), counted
