"""Fast, exact, thread-count-independent random fills.

A large array is cut into fixed-size blocks (:data:`BLOCK` elements, independent of the number
of threads). Each block gets its own stream, spawned from one :class:`numpy.random.SeedSequence`
that is derived from the caller's ``rng`` by a single draw; blocks are filled in a thread pool
(NumPy's generators release the GIL). The result therefore depends only on the seed, never on
``num_threads`` (argument, else the environment variable ``INITLAB_NUM_THREADS``, else
``os.cpu_count()``). An array of at most one block is drawn from ``rng`` itself. Every fill
writes into the caller's array (no full-size temporary), so drawing into a new array and into an
existing one (``out=``) give the same bits.

Distributions (all exact in distribution):

* normal: float32 by Box–Muller, one raw 64-bit draw per pair (40-bit radius uniforms, the
  smallest 2⁻⁸ of them redrawn with 53 bits; 24-bit angles) and vectorized float32 sin/cos
  (:func:`_box_muller32`), float64 by NumPy's ziggurat;
* uniform: ``Generator.random(dtype=..., out=...)`` mapped affinely; for the float32 blocks of a
  large array the same values twice as fast from the two 32-bit halves of raw 64-bit draws
  (:func:`_uniform32`);
* truncated normal: when [α, β] holds at least half the mass (float32), Box–Muller normals with
  every value outside [α, β] replaced by an inverse-CDF draw (exact: the kept values follow the
  truncated law, so do the replacements); otherwise inverse CDF, z = Φ⁻¹(Φ(α) + U·(Φ(β) − Φ(α))) with float64 uniforms U and
  ``scipy.special.ndtri``, evaluated in the lower tail (by symmetry) so that far tails keep full
  relative precision, and in log space (``ndtri_exp``) when Φ(β) underflows;
* disk: complex values uniform on the disk |w| ≤ r (radius r·√U, angle 2πV).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from initlab._rng import RngLike, as_generator, derive, spawn_root
from initlab._validation import check_int

__all__ = ["BLOCK", "resolve_threads", "parallel", "fill", "fill_value"]

BLOCK = 1 << 17  # elements per block; fixed so results never depend on the thread count (2^17: fewer
# dispatches than 2^16, scratch still about L2-sized)

_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def resolve_threads(num_threads: Any = None) -> int:
    """The thread count: ``num_threads``, else ``$INITLAB_NUM_THREADS``, else ``os.cpu_count()``.

    >>> resolve_threads(3)
    3
    """
    if num_threads is None:
        env = os.environ.get("INITLAB_NUM_THREADS", "").strip()
        if env:
            try:
                num_threads = int(env)
            except ValueError:
                raise ValueError(
                    f"The 'INITLAB_NUM_THREADS' environment variable must be a positive int; got {env!r}."
                ) from None
            if num_threads < 1:
                raise ValueError(
                    f"The 'INITLAB_NUM_THREADS' environment variable must be a positive int; got {env!r}."
                )
            return num_threads
        return max(1, os.cpu_count() or 1)
    return check_int("num_threads", num_threads, low=1)


def _pool(n: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="initlab-init")
            _POOLS[n] = pool
        return pool


def parallel(nitems: int, threads: int, run: Callable[[int], None]) -> None:
    """Run ``run(i)`` for every i in ``range(nitems)`` on ``threads`` threads: the caller and
    ``threads - 1`` pool workers take the next index from one shared counter (one wake-up per
    worker, not one task per item; the caller works instead of waiting). Exceptions propagate."""
    if threads <= 1 or nitems <= 1:
        for i in range(nitems):
            run(i)
        return
    counter = itertools.count()  # next() on it is atomic under the GIL

    def loop() -> None:
        while (i := next(counter)) < nitems:
            run(i)

    workers = min(threads, nitems) - 1
    pool = _pool(workers)
    futures = [pool.submit(loop) for _ in range(workers)]
    try:
        loop()
    finally:
        for f in futures:
            if not f.cancel():  # a worker that never started has nothing left to do
                f.result()


def _blocks(n: int, rng: RngLike, num_threads: Any, job: Callable[[np.random.Generator, int, int], None]) -> None:
    """Run ``job(gen, start, stop)`` over fixed-size blocks of ``range(n)``, one stream per block.

    Block i's stream is child i of one :func:`~initlab._rng.spawn_root` draw (what
    :func:`~initlab._rng.child_seeds` would give), made inside the worker so that the seeding runs
    in parallel too.
    """
    gen = as_generator(rng)
    threads = resolve_threads(num_threads)
    nblocks = max(1, math.ceil(n / BLOCK))
    if nblocks == 1:
        job(gen, 0, n)
        return
    root = spawn_root(gen)

    def run(i: int) -> None:
        seed = derive(root, i)
        job(np.random.Generator(np.random.SFC64(seed)), i * BLOCK, min(n, (i + 1) * BLOCK))

    parallel(nblocks, threads, run)


def _trunc_std(gen: np.random.Generator, out: np.ndarray, alpha: float, beta: float) -> None:
    """Fill ``out`` (float64, 1-D) with N(0, 1) restricted to [alpha, beta] by inverse CDF."""
    from scipy import special

    flip = alpha > -beta  # work in the lower tail, where Φ has full relative precision
    lo, hi = (-beta, -alpha) if flip else (alpha, beta)
    gen.random(out=out)
    pb = float(special.ndtr(hi))
    if pb > 1e-280:
        pa = float(special.ndtr(lo))
        out *= pb - pa
        out += pa
        special.ndtri(out, out=out)
    else:  # Φ(hi) underflows: sample in log space
        lpa, lpb = float(special.log_ndtr(lo)), float(special.log_ndtr(hi))
        r = math.exp(lpa - lpb) if math.isfinite(lpa) else 0.0
        out *= 1.0 - r
        out += r
        np.log(out, out=out)
        out += lpb
        special.ndtri_exp(out, out=out)
    np.clip(out, lo, hi, out=out)
    if flip:
        np.negative(out, out=out)


_SCRATCH = threading.local()


def _scratch(h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-thread int32 and two float32 work buffers of at least ``h`` elements (reused, so a
    block does not pay an mmap and page faults for its temporaries)."""
    bufs = getattr(_SCRATCH, "bufs", None)
    if bufs is None or bufs[0].size < h:
        bufs = (np.empty(h, np.int32), np.empty(h, np.float32), np.empty(h, np.float32))
        _SCRATCH.bufs = bufs
    return bufs[0][:h], bufs[1][:h], bufs[2][:h]


_RADIUS_BITS = 40  # the high 40 bits of each raw 64-bit draw give the radius uniform; the low 24: the angle
_ANGLE_MASK = np.uint64((1 << (64 - _RADIUS_BITS)) - 1)
_SHIFT = np.uint64(64 - _RADIUS_BITS)
_U_SCALE = np.float32(2.0**-_RADIUS_BITS)
_U_FIX = 2.0**-8  # radius uniforms U <= 2^-8 are redrawn from 53-bit uniforms (see _box_muller32)
_S_FIX = (1 << _RADIUS_BITS) - (1 << (_RADIUS_BITS - 8))  # t >= _S_FIX  <=>  U = (2^40 - t)·2^-40 <= 2^-8
_RAW_FIX = np.uint64(_S_FIX << (64 - _RADIUS_BITS))  # the same test on the raw draw: raw >= _RAW_FIX
_ANGLE = np.float32(2.0 * math.pi * 2.0**-24)
_RAW64 = (np.random.SFC64, np.random.PCG64, np.random.PCG64DXSM, np.random.Philox)


def _raw64(g: np.random.Generator, size: int) -> np.ndarray:
    """``size`` uniform 64-bit words from ``g`` (a new array, free to overwrite): the bit
    generator's raw output where that is 64 bits wide, else ``next_uint64`` through
    ``integers`` (MT19937's raw output is 32 bits wide)."""
    if isinstance(g.bit_generator, _RAW64):
        return g.bit_generator.random_raw(size)
    return g.integers(0, 2**64 - 1, size=size, dtype=np.uint64, endpoint=True)


def _box_muller32(g: np.random.Generator, v: np.ndarray, scale: float = 1.0) -> None:
    """Fill float32 ``v`` with N(0, scale²) by Box–Muller, exact for float32.

    One raw 64-bit draw per pair of normals: its low 24 bits give the angle 2πV (V on the 2⁻²⁴
    grid, the law of NumPy's float32 uniform), its high 40 bits t give the radius uniform
    U = (2⁴⁰ − t)·2⁻⁴⁰ ∈ (0, 1], rounded to float32 (so the logarithm is taken in vectorised
    float32). Where U <= 2⁻⁸ (probability 2⁻⁸ exactly) U is replaced by 2⁻⁸·(1 − u) with a
    fresh 53-bit float64 uniform u, i.e. by a uniform on (0, 2⁻⁸]: the mixture is exactly
    uniform, every kept grid value carries >= 8 bits beyond float32's 24 (so rounding to float32
    is unbiased), and the smallest U is 2⁻⁶¹: the radius √(−2 ln U) reaches 9.2σ (a float32
    uniform, a multiple of 2⁻²⁴, could never give more than 5.8σ). cos and sin of the same angle
    give two independent normals. The raw draws release the GIL, so blocks fill in parallel;
    one draw per pair instead of two halves the generator's share of the time. The scale
    multiplies the radius after the square root (scale² would overflow float32 for
    scale >= ~1.8e19). Every pass writes into ``v`` or small per-thread scratch buffers.
    """
    n = v.size
    h = (n + 1) // 2
    ai, r32, th = _scratch(h)
    raw = _raw64(g, h)
    np.bitwise_and(raw, _ANGLE_MASK, out=ai, casting="unsafe")  # < 2^24: fits int32
    np.multiply(ai, _ANGLE, out=th, dtype=np.float32)
    fix = np.flatnonzero(raw >= _RAW_FIX)
    t = raw.view(np.int64)
    np.right_shift(raw, _SHIFT, out=raw)
    np.subtract(1 << _RADIUS_BITS, t, out=t)  # 2^40 - t in [1, 2^40]
    r32[...] = t  # rounded to float32 (a plain cast is the fastest pass)
    r32 *= _U_SCALE  # exact: a power of two
    if fix.size:
        u = g.random(fix.size)
        np.subtract(1.0, u, out=u)
        u *= _U_FIX
        r32[fix] = u
    np.log(r32, out=r32)
    r32 *= np.float32(-2.0)
    np.sqrt(r32, out=r32)
    if scale != 1.0:
        r32 *= np.float32(scale)
    c = v[:h]
    np.cos(th, out=c)
    c *= r32
    m = n - h
    if m:
        sn = v[h:]
        np.sin(th[:m], out=sn)
        sn *= r32[:m]


_F24 = 2.0**-24
_SMALLEST_NORMAL32 = float(np.finfo(np.float32).tiny)


def _uniform32(g: np.random.Generator, v: np.ndarray, loc: float, scale: float) -> None:
    """Fill float32 ``v`` with loc + scale·U, U uniform on the 2⁻²⁴ grid of [0, 1): exactly the
    values of ``g.random(dtype=np.float32, out=v); v *= float32(scale); v += float32(loc)`` for a
    fresh 64-bit bit generator ``g`` (a block's own stream), twice as fast.

    NumPy's float32 uniform is the top 24 bits of a 32-bit word times 2⁻²⁴, and a 64-bit
    generator's 32-bit words are the low then the high half of each 64-bit draw: so one raw
    draw per pair of values gives the same words without a call per value. And scale·U is one
    rounding: x·(float32(scale)·2⁻²⁴) equals float32(U·float32(scale)) exactly (a power-of-two
    factor commutes with rounding) when float32(scale)·2⁻²⁴ is a normal number; otherwise U is
    formed first and then multiplied, as NumPy would.
    """
    n = v.size
    raw = g.bit_generator.random_raw((n + 1) // 2)
    u = raw.view(np.uint32)[:n]
    np.right_shift(u, np.uint32(8), out=u)
    x = u.view(np.int32)  # < 2^24: exact in float32
    s32 = float(np.float32(scale))
    if s32 * _F24 >= _SMALLEST_NORMAL32:
        np.multiply(x, np.float32(s32 * _F24), out=v, dtype=np.float32)
    else:
        np.multiply(x, np.float32(_F24), out=v, dtype=np.float32)
        if scale != 1.0:
            v *= np.float32(scale)
    if loc != 0.0:
        v += np.float32(loc)


_FILL_BLOCK = 1 << 20  # elements per task of a constant fill (any size gives the same result)


def fill_value(out: np.ndarray, value: complex, *, num_threads: Any = None) -> np.ndarray:
    """Set every element of the 1-D array ``out`` to ``value`` (cast to its dtype), in parallel
    blocks for large arrays (a fill is memory-bound; the result never depends on the threads).

    >>> fill_value(np.empty(3, np.float32), 0.5).tolist()
    [0.5, 0.5, 0.5]
    """
    threads = resolve_threads(num_threads)
    nblocks = math.ceil(out.size / _FILL_BLOCK)
    if nblocks <= 1:
        out.fill(value)
        return out

    def run(i: int) -> None:
        out[i * _FILL_BLOCK:(i + 1) * _FILL_BLOCK].fill(value)

    parallel(nblocks, threads, run)
    return out


def inner_bound(bound: float, dt: Any, *, upper: bool) -> np.ndarray:
    """``bound`` rounded into ``dt`` towards the inside of the interval: the largest ``dt`` value
    <= ``bound`` when ``upper``, else the smallest >= ``bound`` (clipping to it never leaves
    the interval, whereas round-to-nearest can step half an ulp outside).

    >>> float(inner_bound(0.1, np.float32, upper=True)) <= 0.1 < float(np.float32(0.1))
    True
    """
    t = np.dtype(dt).type
    v = np.asarray(bound, dtype=dt)
    if upper and float(v) > bound:
        v = np.nextafter(v, t(-np.inf))
    elif not upper and float(v) < bound:
        v = np.nextafter(v, t(np.inf))
    return np.asarray(v, dtype=dt)


def fill(
    out: np.ndarray,
    rng: RngLike,
    kind: str,
    *,
    loc: float = 0.0,
    scale: float = 1.0,
    alpha: float = -math.inf,
    beta: float = math.inf,
    num_threads: Any = None,
) -> np.ndarray:
    """Fill the 1-D float32/float64 array ``out`` in place and return it.

    kind ``"normal"``: loc + scale·z; ``"uniform"``: loc + scale·U, U ~ U[0, 1);
    ``"truncnorm"``: loc + scale·z with z ~ N(0, 1) restricted to [alpha, beta];
    ``"disk"`` (``out`` of even length, pairs (re, im)): uniform on the disk of radius ``scale``.

    >>> a = fill(np.empty(5, np.float32), 0, "normal")
    >>> b = fill(np.empty(5, np.float32), 0, "normal")
    >>> bool((a == b).all())
    True
    """
    n = out.size
    dt = out.dtype
    if n == 0:
        return out
    if kind == "normal":

        def job(g: np.random.Generator, s: int, e: int) -> None:
            v = out[s:e]
            if dt == np.float32:
                _box_muller32(g, v, scale)
            else:
                g.standard_normal(dtype=dt, out=v)
                if scale != 1.0:
                    v *= dt.type(scale)
            if loc != 0.0:
                v += dt.type(loc)

    elif kind == "uniform":

        def job(g: np.random.Generator, s: int, e: int) -> None:
            v = out[s:e]
            if dt == np.float32 and e - s < n:  # a block's fresh SFC64 stream (the caller's own
                # generator, for a one-block array, keeps NumPy's call and its 32-bit buffer)
                _uniform32(g, v, loc, scale)
                return
            g.random(dtype=dt, out=v)
            if scale != 1.0:
                v *= dt.type(scale)
            if loc != 0.0:
                v += dt.type(loc)

    elif kind == "truncnorm":
        hi_val = inner_bound(loc + scale * beta, dt, upper=True) if math.isfinite(beta) else None
        lo_val = inner_bound(loc + scale * alpha, dt, upper=False) if math.isfinite(alpha) else None

        from scipy import special

        mass = abs(float(special.ndtr(-abs(alpha)) - special.ndtr(-abs(beta)))) if alpha * beta > 0 else (
            1.0 - float(special.ndtr(alpha)) - float(special.ndtr(-beta)))
        if mass >= 0.5 and dt == np.float32:
            a32 = np.float32(alpha) if math.isfinite(alpha) else -np.inf
            b32 = np.float32(beta) if math.isfinite(beta) else np.inf

            def job(g: np.random.Generator, s: int, e: int) -> None:
                # N(0, 1) by Box–Muller; every value outside [alpha, beta] is replaced by a fresh
                # draw from the truncated law (inverse CDF): exact, and cheap when few fall out.
                v = out[s:e]
                _box_muller32(g, v)
                bad = np.flatnonzero((v < a32) | (v > b32))
                if bad.size:
                    z = np.empty(bad.size, dtype=np.float64)
                    _trunc_std(g, z, alpha, beta)
                    v[bad] = z
                if scale != 1.0:
                    v *= dt.type(scale)
                if loc != 0.0:
                    v += dt.type(loc)
                if lo_val is not None or hi_val is not None:
                    np.clip(v, lo_val, hi_val, out=v)

            _blocks(n, rng, num_threads, job)
            return out

        def job(g: np.random.Generator, s: int, e: int) -> None:
            z = np.empty(e - s, dtype=np.float64)
            _trunc_std(g, z, alpha, beta)
            if scale != 1.0:
                z *= scale
            if loc != 0.0:
                z += loc
            v = out[s:e]
            v[...] = z
            if lo_val is not None or hi_val is not None:
                np.clip(v, lo_val, hi_val, out=v)

    elif kind == "disk":
        m = n // 2
        pairs = out.reshape(m, 2)

        def job(g: np.random.Generator, s: int, e: int) -> None:
            r = g.random(e - s)  # float64 radius uniforms
            np.sqrt(r, out=r)
            r *= scale
            th = g.random(e - s)
            th *= 2 * math.pi
            pairs[s:e, 0] = r * np.cos(th)
            pairs[s:e, 1] = r * np.sin(th)

        _blocks(m, rng, num_threads, job)
        return out
    else:  # pragma: no cover - internal
        raise ValueError(f"unknown fill kind {kind!r}")
    _blocks(n, rng, num_threads, job)
    return out
