"""The numba kernels of :mod:`initlab.diagnostics._kernels` (imported only through its
:func:`~initlab.diagnostics._kernels.load`, so that numba stays optional and is not imported by
``import initlab``). Each kernel reads its tensor once; see that module's docstring."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numba import types
from numba.extending import overload

jit = numba.njit(nogil=True, boundscheck=False, error_model="numpy", cache=True)
# sums that may be reassociated (vectorised): float64 accumulators of float32/float64 values; NaN and
# inf still propagate (no "nnan"/"ninf")
jit_sum = numba.njit(nogil=True, boundscheck=False, error_model="numpy", cache=True, fastmath={"reassoc"})


def add_sq(acc: float, f: float, x: Any) -> float:
    """acc + f·f, f a float64 value read from the array x. Compiled (numba overloads below) with
    fused multiply-add allowed ("contract") when x is float32, without otherwise: the square of a
    float32 value is exact in float64 (24 + 24 significant bits ≤ 53, exponents in range), so
    round(acc + f·f) computed as one fma is bitwise the rounded sum of the same exact product,
    and the fma only frees the adder ports. For float64 values (whose square is rounded) the
    product and the sum are rounded separately, as written."""
    return acc + f * f


def _f32(x: Any) -> bool:
    return isinstance(x, types.Array) and x.dtype == types.float32


@overload(add_sq, jit_options={"fastmath": {"reassoc", "contract"}})
def _add_sq_f32(acc: Any, f: Any, x: Any) -> Any:
    if _f32(x):
        def impl(acc: Any, f: Any, x: Any) -> Any:  # pragma: no cover - compiled
            return acc + f * f
        return impl
    return None


@overload(add_sq, jit_options={"fastmath": {"reassoc"}})
def _add_sq_other(acc: Any, f: Any, x: Any) -> Any:
    if not _f32(x):
        def impl(acc: Any, f: Any, x: Any) -> Any:  # pragma: no cover - compiled
            return acc + f * f
        return impl
    return None


ROWS = 4  # rows of a [rows, C] tensor read together by fw_stats/grad_sums (their sums added first)
_NZ_CHUNK = 1 << 30  # rows counted in int32 before the counts are added up in float64


@jit
def fw_stats(x: Any, near_t: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """x [rows, C]; out [5, C] float64: per channel Σx, max, Σx², min, count(|x| ≤ near_t)
    (compared in x's dtype). A NaN is never a maximum or minimum here (the caller marks the
    channels whose Σx² is NaN). Returns the totals (Σx, Σx², near-zero count).
    (The loop over channels vectorises; ROWS = 4 rows are read together, their four values
    added before they join the channel's float64 sums (a reassociation of the sum) and folded
    one by one into the maxima and minima, which stay in x's dtype (exact): a quarter of the
    accumulator traffic. Near-zero counts in int32 per chunk of 2^30 rows, summed in float64.)"""
    r_, c_ = x.shape
    s = out[0]
    q = out[2]
    mx = np.empty(c_, dtype=x.dtype)
    mn = np.empty(c_, dtype=x.dtype)
    nz = np.empty(c_, dtype=np.int32)
    for c in range(c_):
        s[c] = 0.0
        q[c] = 0.0
        mx[c] = -np.inf
        mn[c] = np.inf
        out[4, c] = 0.0
    for r0 in range(0, r_, _NZ_CHUNK):
        r1 = min(r_, r0 + _NZ_CHUNK)
        for c in range(c_):
            nz[c] = 0
        rb = r0 + (r1 - r0) // ROWS * ROWS
        for r in range(r0, rb, ROWS):
            for c in range(c_):
                a = x[r, c]
                b = x[r + 1, c]
                d = x[r + 2, c]
                e = x[r + 3, c]
                fa = np.float64(a)
                fb = np.float64(b)
                fd = np.float64(d)
                fe = np.float64(e)
                s[c] += (fa + fb) + (fd + fe)
                q[c] += add_sq(fb * fb, fa, x) + add_sq(fe * fe, fd, x)
                m = mx[c]
                m = a if a > m else m
                m = b if b > m else m
                m = d if d > m else m
                m = e if e > m else m
                mx[c] = m
                m = mn[c]
                m = a if a < m else m
                m = b if b < m else m
                m = d if d < m else m
                m = e if e < m else m
                mn[c] = m
                nz[c] += ((np.int32(abs(a) <= near_t) + np.int32(abs(b) <= near_t))
                          + (np.int32(abs(d) <= near_t) + np.int32(abs(e) <= near_t)))
        for r in range(rb, r1):
            for c in range(c_):
                v = x[r, c]
                w = np.float64(v)
                s[c] += w
                q[c] = add_sq(q[c], w, x)
                mx[c] = v if v > mx[c] else mx[c]
                mn[c] = v if v < mn[c] else mn[c]
                nz[c] += np.int32(abs(v) <= near_t)
        for c in range(c_):
            out[4, c] += nz[c]
    ts = 0.0
    tq = 0.0
    tn = 0.0
    for c in range(c_):
        out[1, c] = mx[c]
        out[3, c] = mn[c]
        ts += s[c]
        tq += q[c]
        tn += out[4, c]
    return ts, tq, tn


@jit
def grad_sums(x: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """x [rows, C]; out [2, C] float64: per channel Σx, Σx². Returns the totals (Σx, Σx²).
    (ROWS rows read together, as :func:`fw_stats`.)"""
    r_, c_ = x.shape
    s = out[0]
    q = out[1]
    for c in range(c_):
        s[c] = 0.0
        q[c] = 0.0
    rb = r_ // ROWS * ROWS
    for r in range(0, rb, ROWS):
        for c in range(c_):
            fa = np.float64(x[r, c])
            fb = np.float64(x[r + 1, c])
            fd = np.float64(x[r + 2, c])
            fe = np.float64(x[r + 3, c])
            s[c] += (fa + fb) + (fd + fe)
            q[c] += add_sq(fb * fb, fa, x) + add_sq(fe * fe, fd, x)
    for r in range(rb, r_):
        for c in range(c_):
            w = np.float64(x[r, c])
            s[c] += w
            q[c] = add_sq(q[c], w, x)
    ts = 0.0
    tq = 0.0
    for c in range(c_):
        ts += s[c]
        tq += q[c]
    return ts, tq


# the flat sums: scalar float64 accumulators in loops that may be reassociated (jit_sum), which LLVM
# vectorises with accumulators in registers (an accumulator array in memory is reloaded and stored
# at each element, as a store to the snapshot may alias it)


@jit_sum
def flat_sums(x: Any) -> Any:  # pragma: no cover - compiled
    """x 1-D: (Σx, Σx²)."""
    a = 0.0
    b = 0.0
    for i in range(x.shape[0]):
        w = np.float64(x[i])
        a += w
        b = add_sq(b, w, x)
    return a, b


@jit
def flat_slot(x: Any, vals: Any, o: int) -> bool:  # pragma: no cover - compiled
    """:func:`flat_sums` of x (1-D) into vals[o], vals[o + 1]; returns whether the variance
    cancels (:func:`cancels_w`): a replayed step's weight gradient in one call."""
    a, b = flat_sums(x)
    vals[o] = a
    vals[o + 1] = b
    return cancels_w(a, b, x.shape[0])


@jit_sum
def snap_sums(w_: Any, s: Any) -> Any:  # pragma: no cover - compiled
    """s[:] = w (1-D); returns (Σw, Σw²)."""
    a = 0.0
    b = 0.0
    for i in range(w_.shape[0]):
        v = w_[i]
        s[i] = v
        f = np.float64(v)
        a += f
        b = add_sq(b, f, w_)
    return a, b


@jit_sum
def diff_sq(w_: Any, s: Any) -> Any:  # pragma: no cover - compiled
    """Σ(w − s)² (1-D), the difference formed in float64 (exact for float32)."""
    a = 0.0
    for i in range(w_.shape[0]):
        d = np.float64(w_[i]) - np.float64(s[i])
        a += d * d
    return a


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
def snap_all(ws: Any, ss: Any, out: Any) -> None:  # pragma: no cover - compiled
    """:func:`snap_sums` of each (ws[i], ss[i]) (tuples of 1-D arrays of one dtype): ss[i][:] = ws[i],
    out[i] = (Σw, Σw², whether the variance cancels (:func:`cancels_w`)); one call for all the
    watched weights."""
    for i in range(len(ws)):
        s, q = snap_sums(ws[i], ss[i])
        out[i, 0] = s
        out[i, 1] = q
        out[i, 2] = 1.0 if cancels_w(s, q, ws[i].shape[0]) else 0.0


@jit
def diff_all(ws: Any, ss: Any, out: Any) -> None:  # pragma: no cover - compiled
    """out[i] = :func:`diff_sq` (ws[i], ss[i]) (tuples of 1-D arrays of one dtype): one call for
    all the watched weights."""
    for i in range(len(ws)):
        out[i] = diff_sq(ws[i], ss[i])


@jit_sum
def diff_snap_sums(w_: Any, s: Any) -> Any:  # pragma: no cover - compiled
    """Σ(w − s)², then s[:] = w; returns (Σ(w − s)², Σw, Σw²): the update of one step and the
    snapshot (with its sums) of the next, in one pass."""
    a = 0.0
    b = 0.0
    c = 0.0
    for i in range(w_.shape[0]):
        v = w_[i]
        f = np.float64(v)
        d = f - np.float64(s[i])
        s[i] = v
        a += d * d
        b += f
        c = add_sq(c, f, w_)
    return a, b, c


@jit_sum
def cos_sums(h: Any, fstep: int, n2: Any) -> float:  # pragma: no cover - compiled
    """h [k, F] (the first k samples, flattened): n2[i] = ‖h_i‖² over features 0, fstep,
    2·fstep...; returns q = ‖Σ_i h_i/‖h_i‖‖² over the rows of non-zero norm (a row of
    non-finite norm makes q NaN) — :func:`~initlab.diagnostics._stats.cosine_from_sums`.
    By blocks of four rows (:func:`_cos_block`); with fstep > 1 each block's features are first
    copied into a contiguous float64 buffer, so that the sums vectorise."""
    k, f_ = h.shape
    nf = (f_ + fstep - 1) // fstep
    su = np.zeros(nf)
    if fstep == 1:
        for i0 in range(0, k, 4):
            _cos_block(h, i0, min(4, k - i0), h, n2, i0, su)
    else:
        buf = np.empty((4, nf))
        us = np.uintp(fstep)
        for i0 in range(0, k, 4):
            r = min(4, k - i0)
            for i in range(r):
                for j in range(nf):
                    buf[i, j] = np.float64(h[i0 + i, np.uintp(j) * us])
            _cos_block(buf, 0, r, h, n2, i0, su)
    q = 0.0
    for j in range(nf):
        q += su[j] * su[j]
    return q


@jit_sum
def _cos_block(g: Any, g0: int, r: int, wit: Any, n2: Any, i0: int, su: Any) -> None:  # pragma: no cover - compiled
    """Rows g0 … g0 + r − 1 of g (r ≤ 4; values read from the array ``wit``, whose dtype decides
    :func:`add_sq`): n2[i0 + i] = ‖g_i‖², then su += Σ_i g_i/‖g_i‖, four rows added together
    before they join su (a row of zero norm adds 0·g_i = 0: its values are all 0, or float64
    values whose squares underflow; a non-finite norm still makes the sum NaN)."""
    nf = su.shape[0]
    for i in range(r):
        s = 0.0
        for j in range(nf):
            s = add_sq(s, np.float64(g[g0 + i, j]), wit)
        n2[i0 + i] = s
    if r == 4:
        a0 = _inv_norm(n2[i0])
        a1 = _inv_norm(n2[i0 + 1])
        a2 = _inv_norm(n2[i0 + 2])
        a3 = _inv_norm(n2[i0 + 3])
        for j in range(nf):
            su[j] += ((np.float64(g[g0, j]) * a0 + np.float64(g[g0 + 1, j]) * a1)
                      + (np.float64(g[g0 + 2, j]) * a2 + np.float64(g[g0 + 3, j]) * a3))
    else:
        for i in range(r):
            inv = _inv_norm(n2[i0 + i])
            for j in range(nf):
                su[j] += np.float64(g[g0 + i, j]) * inv


@jit
def _inv_norm(s: float) -> float:  # pragma: no cover - compiled
    """1/√s, and 0 for s = 0 (a row left out of the cosine)."""
    return 0.0 if s == 0.0 else 1.0 / math.sqrt(s)


HIST_CHUNK = 256  # samples gathered into a float64 buffer, then binned (vectorised) and counted


@jit
def hist_counts(flat: Any, step: int, scale: float, lo: float, k: float, nb: int,
                idx: Any, counts: Any) -> None:  # pragma: no cover - compiled
    """counts[b] += #{values flat[0], flat[step], ... in bin b}, b = ⌊(scale·v − lo)·k⌋ in
    float64 clipped into [0, nb − 1] (the rule of :func:`~initlab.diagnostics._stats.histogram`).
    The values must be finite (the caller checks: Σx² is finite). ``idx`` int32 scratch of at
    least min(⌈len/step⌉, HIST_CHUNK). By chunks of HIST_CHUNK samples: the strided samples
    copied into a float64 buffer, their bins computed in a loop that vectorises (unsigned
    indices: no negative-index wraparound test), then counted in four interleaved int32 partial
    counts (which break the store-to-load chain of repeated bins)."""
    m = (flat.shape[0] + step - 1) // step
    if m <= 0 or nb <= 0:
        return
    top = np.float64(nb - 1)
    us = np.uintp(step)
    buf = np.empty(min(m, HIST_CHUNK))
    part = np.zeros((4, nb), dtype=np.int32)
    for j0 in range(0, m, HIST_CHUNK):
        n = min(HIST_CHUNK, m - j0)
        base = np.uintp(j0) * us
        for t in range(n):
            buf[np.uintp(t)] = np.float64(flat[base + np.uintp(t) * us])
        for t in range(n):
            p = (buf[np.uintp(t)] * scale - lo) * k
            p = p if p > 0.0 else 0.0
            p = p if p < top else top
            idx[np.uintp(t)] = np.int32(p)
        t = 0
        while t + 4 <= n:
            part[0, idx[t]] += 1
            part[1, idx[t + 1]] += 1
            part[2, idx[t + 2]] += 1
            part[3, idx[t + 3]] += 1
            t += 4
        while t < n:
            part[0, idx[t]] += 1
            t += 1
        if j0 + HIST_CHUNK < m and (j0 // HIST_CHUNK) % 4096 == 4095:
            _flush_counts(part, counts)  # (int32 partial counts: flushed every 2^20 samples)
    _flush_counts(part, counts)


@jit
def _flush_counts(part: Any, counts: Any) -> None:  # pragma: no cover - compiled
    """counts += the partial counts' sum; the partial counts zeroed."""
    for b in range(part.shape[1]):
        counts[b] += (np.int64(part[0, b]) + np.int64(part[1, b])) + (np.int64(part[2, b]) + np.int64(part[3, b]))
        part[0, b] = 0
        part[1, b] = 0
        part[2, b] = 0
        part[3, b] = 0


@jit
def fw_stats_mid(x: Any, near_t: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """:func:`fw_stats` of a tensor whose channels are its middle axis, x [batch, C, positions]
    (a conv's output): per channel Σx, max, Σx², min, near-zero count over batch and positions.
    For each channel, :func:`fw_stats`'s loop with the positions in place of the channels
    (contiguous: vectorised; ROWS samples at a time), then the positions' numbers reduced."""
    n_, c_, p_ = x.shape
    s = np.empty(p_)
    q = np.empty(p_)
    mx = np.empty(p_, dtype=x.dtype)
    mn = np.empty(p_, dtype=x.dtype)
    nz = np.empty(p_, dtype=np.int32)
    ts = 0.0
    tq = 0.0
    tn = 0.0
    for c in range(c_):
        for p in range(p_):
            s[p] = 0.0
            q[p] = 0.0
            mx[p] = -np.inf
            mn[p] = np.inf
        cnt = 0.0
        for n0 in range(0, n_, _NZ_CHUNK):
            n1 = min(n_, n0 + _NZ_CHUNK)
            for p in range(p_):
                nz[p] = 0
            nb_ = n0 + (n1 - n0) // ROWS * ROWS
            for n in range(n0, nb_, ROWS):
                for p in range(p_):
                    a = x[n, c, p]
                    b = x[n + 1, c, p]
                    d = x[n + 2, c, p]
                    e = x[n + 3, c, p]
                    fa = np.float64(a)
                    fb = np.float64(b)
                    fd = np.float64(d)
                    fe = np.float64(e)
                    s[p] += (fa + fb) + (fd + fe)
                    q[p] += add_sq(fb * fb, fa, x) + add_sq(fe * fe, fd, x)
                    m = mx[p]
                    m = a if a > m else m
                    m = b if b > m else m
                    m = d if d > m else m
                    m = e if e > m else m
                    mx[p] = m
                    m = mn[p]
                    m = a if a < m else m
                    m = b if b < m else m
                    m = d if d < m else m
                    m = e if e < m else m
                    mn[p] = m
                    nz[p] += ((np.int32(abs(a) <= near_t) + np.int32(abs(b) <= near_t))
                              + (np.int32(abs(d) <= near_t) + np.int32(abs(e) <= near_t)))
            for n in range(nb_, n1):
                for p in range(p_):
                    v = x[n, c, p]
                    w = np.float64(v)
                    s[p] += w
                    q[p] = add_sq(q[p], w, x)
                    mx[p] = v if v > mx[p] else mx[p]
                    mn[p] = v if v < mn[p] else mn[p]
                    nz[p] += np.int32(abs(v) <= near_t)
            for p in range(p_):
                cnt += nz[p]
        cs = 0.0
        cq = 0.0
        m1 = -np.inf
        m3 = np.inf
        for p in range(p_):
            cs += s[p]
            cq += q[p]
            v1 = np.float64(mx[p])
            v3 = np.float64(mn[p])
            m1 = v1 if v1 > m1 else m1
            m3 = v3 if v3 < m3 else m3
        out[0, c] = cs
        out[1, c] = m1
        out[2, c] = cq
        out[3, c] = m3
        out[4, c] = cnt
        ts += cs
        tq += cq
        tn += cnt
    return ts, tq, tn


@jit
def grad_sums_mid(x: Any, out: Any) -> Any:  # pragma: no cover - compiled
    """:func:`grad_sums` of x [batch, C, positions]: per channel Σx, Σx² (per position over the
    batch, ROWS samples at a time, vectorised along the positions; then summed); returns the
    totals."""
    n_, c_, p_ = x.shape
    s = np.empty(p_)
    q = np.empty(p_)
    ts = 0.0
    tq = 0.0
    nb_ = n_ // ROWS * ROWS
    for c in range(c_):
        for p in range(p_):
            s[p] = 0.0
            q[p] = 0.0
        for n in range(0, nb_, ROWS):
            for p in range(p_):
                fa = np.float64(x[n, c, p])
                fb = np.float64(x[n + 1, c, p])
                fd = np.float64(x[n + 2, c, p])
                fe = np.float64(x[n + 3, c, p])
                s[p] += (fa + fb) + (fd + fe)
                q[p] += add_sq(fb * fb, fa, x) + add_sq(fe * fe, fd, x)
        for n in range(nb_, n_):
            for p in range(p_):
                w = np.float64(x[n, c, p])
                s[p] += w
                q[p] = add_sq(q[p], w, x)
        cs = 0.0
        cq = 0.0
        for p in range(p_):
            cs += s[p]
            cq += q[p]
        out[0, c] = cs
        out[1, c] = cq
        ts += cs
        tq += cq
    return ts, tq


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
