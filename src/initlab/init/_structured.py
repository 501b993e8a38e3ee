"""Structured schemes: orthogonal, eye, dirac, delta_orthogonal, sparse and ZerO.

Each works on the canonical view ``[out, in, *kernel]`` of the weight (the axes come from
``layout`` / ``in_axis`` / ``out_axis`` / ``transposed``, exactly as for fans) and is transposed
back to the caller's layout, so ``layout="torch"`` reproduces torch and ``layout="keras"`` Keras.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from initlab._rng import RngLike, as_generator
from initlab._validation import bad_value, check_int, check_number
from initlab.init._dist import Site
from initlab.init._out import deliver, direct, resolve_out, target
from initlab.init._sampling import fill, fill_value, parallel, resolve_threads

__all__ = ["orthogonal", "eye", "dirac", "delta_orthogonal", "sparse", "zero", "orthogonal_matrix"]

Shape = Any


def _real_of(dt: np.dtype) -> np.dtype:
    if dt == np.complex64 or dt == np.float16 or dt == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


@functools.lru_cache(maxsize=1)
def _scipy_openblas() -> Any:
    """scipy's bundled OpenBLAS (for its thread-count setter), or None if not found."""
    try:
        import ctypes
        from pathlib import Path

        import scipy

        libdir = Path(scipy.__file__).resolve().parent.parent / "scipy.libs"
        for path in sorted(libdir.glob("libscipy_openblas*.so*")):
            lib = ctypes.CDLL(str(path))
            if hasattr(lib, "scipy_openblas_set_num_threads") and hasattr(lib, "scipy_openblas_get_num_threads"):
                return lib
    except Exception:  # pragma: no cover - any other BLAS: leave its threads alone
        return None
    return None


@contextlib.contextmanager
def _lapack_threads(n: int) -> Iterator[None]:
    """Run scipy's LAPACK with ``n`` threads (best effort; restored afterwards).

    initlab's ``num_threads`` governs every part of a draw, the QR included; it also avoids
    OpenBLAS's collapse when its threads compete with other busy processes.
    """
    lib = _scipy_openblas()
    if lib is None:
        yield
        return
    old = int(lib.scipy_openblas_get_num_threads())
    if old == n:
        yield
        return
    lib.scipy_openblas_set_num_threads(int(n))
    try:
        yield
    finally:
        lib.scipy_openblas_set_num_threads(old)


_Q_BLOCK = 256  # columns per task when forming Q; fixed, so results never depend on threads


def _form_q_blocked(v: np.ndarray, tau: np.ndarray, threads: int) -> np.ndarray:
    """Q = H_1⋯H_k (k = v.shape[1]) formed in column blocks of :data:`_Q_BLOCK`, in parallel.

    Column block [c0, c1) of Q is H_1⋯H_{c1}·E[:, c0:c1]: reflectors j >= c1 act on rows >= j,
    where those identity columns are zero, so they are skipped; total work equals orgqr's
    (4/3·n³ for a square Q). Each block is one LAPACK ``ormqr``/``unmqr`` call (it releases the
    GIL), so the blocks run on initlab's threads.
    """
    from scipy.linalg import lapack

    m, k = v.shape
    (ormqr,) = lapack.get_lapack_funcs(("unmqr" if v.dtype.kind == "c" else "ormqr",), (v,))
    q = np.zeros((m, k), dtype=v.dtype, order="F")
    starts = list(range(0, k, _Q_BLOCK))

    def job(c0: int) -> None:
        c1 = min(k, c0 + _Q_BLOCK)
        e = np.zeros((m, c1 - c0), dtype=v.dtype, order="F")
        e[np.arange(c0, c1), np.arange(c1 - c0)] = 1
        cq, _, info = ormqr("L", "N", v[:, :c1], tau[:c1], e, lwork=64 * (c1 - c0), overwrite_c=1)
        if info != 0:  # pragma: no cover - LAPACK argument error
            raise RuntimeError(f"LAPACK ormqr failed with info={info}")
        q[:, c0:c1] = cq

    order = starts[::-1]  # the costly blocks (many reflectors) first, for balance
    parallel(len(order), threads, lambda i: job(order[i]))
    return q


_PANEL = 128  # reflectors per compact-WY panel (GEMM path)
_CHUNK = 128  # Q columns per task (GEMM path); both fixed, so results never depend on threads
assert _PANEL % _CHUNK == 0  # a chunk never straddles two panels (internal invariant)


@functools.lru_cache(maxsize=1)
def _cblas() -> Any:
    """ctypes handles to scipy's OpenBLAS CBLAS sgemm/dgemm, or None.

    ctypes releases the GIL during the call, and CBLAS takes leading dimensions, so sub-blocks of
    Q are updated in place on initlab's threads without copies.
    """
    import ctypes

    lib = _scipy_openblas()
    if lib is None:  # pragma: no cover - another BLAS
        return None
    try:
        fns = {}
        for t, ct in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            gemm = getattr(lib, f"scipy_cblas_{t}gemm")
            gemm.restype = None
            gemm.argtypes = [ctypes.c_int] * 6 + [ct, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                                   ctypes.c_int, ct, ctypes.c_void_p, ctypes.c_int]
            fns[t] = gemm
        return fns
    except AttributeError:  # pragma: no cover - an OpenBLAS without these symbols
        return None


_COL, _NOTRANS, _TRANS = 102, 111, 112  # CBLAS enums


def _form_q_gemm(v: np.ndarray, tau: np.ndarray, signs: np.ndarray, threads: int, fns: Any) -> np.ndarray:
    """Q·diag(signs), Q = H_1⋯H_k, by compact-WY panels of :data:`_PANEL` reflectors (BLAS-3 only).

    A panel's product is I − V·T·Vᵀ with T⁻¹ = striu(VᵀV) + diag(1/τ), inverted by ``trtri`` (the same T as LAPACK's
    ``larft``: Puglisi 1992; Joffrain et al., "Accumulating Householder transformations,
    revisited", 2006). Panels are applied last to first to diag(signs) (as ``orgqr`` does), each
    touching only rows and columns >= its first reflector, so the work is orgqr's 4/3·n³ — but
    in large GEMMs instead of orgqr's 32-wide blocks. Columns are split into fixed chunks of
    :data:`_CHUNK`, the tasks of one panel, run on initlab's threads.
    """
    from scipy.linalg import lapack

    m, k = v.shape
    dt = v.dtype
    gemm = fns["s" if dt == np.float32 else "d"]
    isz = dt.itemsize
    q = np.zeros((m, k), dtype=dt, order="F")
    q[np.arange(k), np.arange(k)] = signs
    qp = q.ctypes.data
    starts = list(range(0, k, _PANEL))

    def prep(c0: int) -> tuple[np.ndarray, np.ndarray]:
        c1 = min(k, c0 + _PANEL)
        b = c1 - c0
        vp = np.array(v[c0:, c0:c1], order="F")
        top = vp[:b]
        top[np.triu_indices(b)] = 0
        top[np.arange(b), np.arange(b)] = 1
        tinv = np.asfortranarray(vp.T @ vp)
        tinv[np.tril_indices(b)] = 0
        tinv[np.arange(b), np.arange(b)] = 1.0 / tau[c0:c1]
        # T itself (b×b, well conditioned: its inverse has diagonal 1/τ ∈ [1/2, 1]), so that
        # applying it is one GEMM per chunk instead of a slower triangular solve
        (trtri,) = lapack.get_lapack_funcs(("trtri",), (tinv,))
        tmat, info = trtri(tinv, lower=0)
        if info != 0:  # pragma: no cover - singular T⁻¹ cannot happen (τ ∈ [1, 2])
            raise RuntimeError(f"LAPACK trtri failed with info={info}")
        return vp, np.asfortranarray(tmat, dtype=dt)

    panels: list[Any] = [None] * len(starts)

    def prep_at(i: int) -> None:
        panels[i] = prep(starts[i])

    parallel(len(starts), threads, prep_at)
    for c0, (vp, tmat) in zip(reversed(starts), reversed(panels)):
        rows = m - c0
        b = vp.shape[1]

        def job(j0: int, c0: int = c0, rows: int = rows, b: int = b, vp: np.ndarray = vp,
                tmat: np.ndarray = tmat) -> None:
            w = min(k, j0 + _CHUNK) - j0
            cp = qp + (c0 + j0 * m) * isz
            # W = Vᵀ·Q[c0:, cols];  Q[c0:, cols] −= V·(T·W)
            if j0 < c0 + b:  # the panel's own columns: Q[c0:, cols] is still diag(signs) there
                i0 = j0 - c0
                wk = np.asfortranarray(vp[i0:i0 + w].T * signs[j0:j0 + w])
            else:  # later columns: rows c0 .. c0+b of Q are still zero there
                wk = np.empty((b, w), dtype=dt, order="F")
                gemm(_COL, _TRANS, _NOTRANS, b, w, rows - b, 1.0, vp.ctypes.data + b * isz, rows,
                     cp + b * isz, m, 0.0, wk.ctypes.data, b)
            tw = np.empty((b, w), dtype=dt, order="F")
            gemm(_COL, _NOTRANS, _NOTRANS, b, w, b, 1.0, tmat.ctypes.data, b, wk.ctypes.data, b, 0.0, tw.ctypes.data, b)
            gemm(_COL, _NOTRANS, _NOTRANS, rows, w, b, -1.0, vp.ctypes.data, rows, tw.ctypes.data, b, 1.0, cp, m)

        chunks = list(range(c0, k, _CHUNK))
        parallel(len(chunks), threads, lambda i, chunks=chunks, job=job: job(chunks[i]))
    return q


def orthogonal_matrix(rows: int, cols: int, gen: np.random.Generator, dtype: np.dtype, num_threads: Any = None) -> np.ndarray:
    """A Haar-random (rows, cols) matrix with orthonormal rows (rows <= cols) or columns (rows > cols).

    Same distribution as torch's ``orthogonal_`` (QR of a Gaussian (big, small) matrix, Q times
    the signs of diag(R); Mezzadri, "How to generate random matrices from the classical compact
    groups", 2007), computed without the factorisation: in Householder QR of a Gaussian matrix,
    step j meets a fresh N(0, I) vector (the earlier reflections are orthogonal and independent
    of it), so the Householder vectors of QR(G) ARE independent Gaussian vectors of lengths
    big, big−1, …. initlab draws them directly (Stewart, "The efficient generation of random
    orthogonal matrices with an application to condition estimators", 1980) and forms Q with
    the reflectors alone — half the flops of ``geqrf`` + ``orgqr``, in float32 for float32
    weights (large real matrices: compact-WY panels in GEMMs, :func:`_form_q_gemm`; otherwise
    LAPACK ``orgqr``/``ormqr``/``ungqr``/``unmqr``).
    """
    from scipy.linalg import lapack

    big, small = max(rows, cols), min(rows, cols)
    work = dtype if dtype.kind == "c" else _real_of(dtype)
    real = _real_of(work)
    a = np.empty((big, small), dtype=work, order="F")
    flat = a.reshape(-1, order="F").view(real) if work.kind == "c" else a.reshape(-1, order="F")
    # a.reshape(order="F") of an F-ordered array is a view: fill writes into ``a``
    fill(flat, gen, "normal", scale=(1 / math.sqrt(2)) if work.kind == "c" else 1.0, num_threads=num_threads)
    # column j's reflector comes from x = a[j:, j]: beta = -sign(Re x0)·|x|, tau = (beta - x0)/beta,
    # v = x[1:]/(x0 - beta) (LAPACK's larfg convention); R's diagonal would be beta.
    norm = _tail_norms(a)
    alpha = np.diagonal(a).astype(np.complex128 if work.kind == "c" else np.float64)
    beta = -np.copysign(norm, alpha.real)
    tau = ((beta - alpha) / beta).astype(work)
    a *= (1.0 / (alpha - beta)).astype(work)[None, :]
    threads = resolve_threads(num_threads)
    # Every LAPACK/BLAS call is single-threaded and initlab's threads split the work in blocks of
    # fixed size instead: OpenBLAS's own threads change the rounding (so the result would depend
    # on num_threads; seen for complex orgqr with 3 threads) and cost more than they bring on
    # <= 2 cores (measured on a 2-core VM: orgqr 2048² took 0.25–8 s with 2 threads, 0.26 s with 1).
    fns = _cblas() if work.kind == "f" and small > _Q_BLOCK else None
    if fns is not None:
        with _lapack_threads(1):
            q = _form_q_gemm(a, tau, np.sign(beta).astype(real), threads, fns)
        return q.T if rows <= cols else q
    with _lapack_threads(1):
        if small <= _Q_BLOCK:
            (orgqr,) = lapack.get_lapack_funcs(("ungqr" if work.kind == "c" else "orgqr",), (a,))
            q, _, info = orgqr(a, tau, lwork=64 * max(small, 1), overwrite_a=1)
            if info != 0:  # pragma: no cover - LAPACK argument error
                raise RuntimeError(f"LAPACK orgqr failed with info={info}")
        else:
            q = _form_q_blocked(a, tau, threads)
    q *= np.sign(beta).astype(real)[None, :]
    if rows <= cols:
        # Q is F-ordered, so Qᵀ is C-ordered: no copy. For a square matrix Qᵀ is Haar too (the
        # Haar measure is invariant under inversion), and its rows are orthonormal as required.
        q = q.T
    return q


def _tail_norms(a: np.ndarray) -> np.ndarray:
    """‖a[j:, j]‖ for every column j of the F-ordered ``a`` (float64): one BLAS dot per
    contiguous column tail, instead of a masked copy of the whole matrix."""
    k = a.shape[1]
    out = np.empty(k, dtype=np.float64)
    if a.dtype.kind == "c":
        for j in range(k):
            x = a[j:, j]
            out[j] = np.vdot(x, x).real
    else:
        for j in range(k):
            x = a[j:, j]
            out[j] = np.dot(x, x)
    return np.sqrt(out, out=out)


def _canonical(site: Site) -> tuple[tuple[int, ...], list[int]]:
    """(canonical shape [out, in, *k], permutation taking canonical axes to the caller's)."""
    ax = site.axes()
    perm = [ax.out_axis, ax.in_axis, *ax.kernel_axes]
    return tuple(site.shape[p] for p in perm), perm


def _in_place(perm: list[int], out: np.ndarray | None) -> bool:
    """True when the canonical array can be ``out`` itself (no axis permutation, C-contiguous)."""
    return direct(out) and perm == sorted(perm)


def _zeros(cshape: tuple[int, ...], perm: list[int], dt: np.dtype, out: np.ndarray | None, num_threads: Any) -> np.ndarray:
    """A zero canonical array: ``out`` itself, zeroed in parallel blocks, when it can be written in
    place; else new (``np.zeros``)."""
    if out is not None and _in_place(perm, out):
        fill_value(out.reshape(-1), 0, num_threads=num_threads)
        return out
    return np.zeros(cshape, dtype=dt)


def _finish(w: np.ndarray, perm: list[int], dt: np.dtype, out: np.ndarray | None) -> np.ndarray:
    """The canonical ``w`` in the caller's layout and dtype: a new C-ordered array, or ``out``
    (``w`` copied in, cast as ``astype`` casts, unless ``w`` already is ``out``)."""
    if out is not None and w is out:
        return out
    view = np.transpose(w, np.argsort(perm))
    if out is None:
        return np.ascontiguousarray(view).astype(dt, copy=False)
    np.copyto(out, view, casting="same_kind")
    return out


def _check_gain(gain: Any = 1.0) -> dict[str, Any]:
    return {"gain": check_number("gain", gain, low=0.0)}


def orthogonal(shape: Shape, *, gain: float = 1.0, rng: RngLike = None, dtype: Any = None,
               layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
               transposed: bool = False, num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """A (semi-)orthogonal matrix times ``gain`` (torch ``orthogonal_``).

    The out axis becomes the rows and every other axis is flattened into the columns (torch:
    rows = size(0)); the rows are orthonormal when rows ≤ cols (W·Wᵀ = g²I), else the columns
    (WᵀW = g²I). Complex dtypes give a unitary matrix (E|w|² per entry = g²·min/(rows·cols)).
    Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
    linear neural networks", 2014.

    >>> w = orthogonal((3, 5), rng=0).astype(np.float64)
    >>> bool(np.allclose(w @ w.T, np.eye(3), atol=1e-6))
    True
    """
    p = _check_gain(gain)
    site = Site.make(shape, layout, in_axis, out_axis, transposed)
    dt = resolve_out(out, site.shape, dtype, complex_ok=True, scheme="orthogonal")
    if len(site.shape) < 2:
        bad_value("shape", "a shape with 2 or more dimensions (only tensors with 2 or more dimensions are supported)",
                  site.shape)
    if site.size == 0:
        return deliver(np.empty(site.shape, dtype=dt), out)
    cshape, perm = _canonical(site)
    rows = cshape[0]
    cols = site.size // rows
    q = orthogonal_matrix(rows, cols, as_generator(rng), dt, num_threads)
    if p["gain"] != 1.0:
        q *= q.real.dtype.type(p["gain"])
    return _finish(q.reshape(cshape), perm, dt, out)


def _moments_orthogonal(site: Site, p: dict[str, Any]) -> dict[str, Any]:
    if len(site.shape) < 2:
        bad_value("shape", "a shape with 2 or more dimensions", site.shape)
    if site.size == 0:
        return {"mean": 0.0, "var": math.nan, "low": -p["gain"], "high": p["gain"]}
    rows = _canonical(site)[0][0]
    cols = site.size // rows
    g = p["gain"]
    return {"mean": 0.0, "var": g * g * min(rows, cols) / (rows * cols), "low": -g, "high": g}


def eye(shape: Shape, *, gain: float = 1.0, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
        in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
        num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """The (rectangular) identity times ``gain``, 2-D only (torch ``eye_``, Keras ``Identity``).

    Preserves the inputs in linear layers, as many as possible.

    >>> eye((2, 3)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    p = _check_gain(gain)
    site = Site.make(shape, layout, in_axis, out_axis, transposed)
    dt = resolve_out(out, site.shape, dtype, complex_ok=True, scheme="eye")
    if len(site.shape) != 2:
        bad_value("shape", "a 2-D shape (only tensors with 2 dimensions are supported)", site.shape)
    if out is None:
        w = np.zeros(site.shape, dtype=dt)
    else:
        w = target(out, site.shape, dt)
        fill_value(w.reshape(-1), 0, num_threads=num_threads)
    np.fill_diagonal(w, p["gain"])
    return deliver(w, out)


def _check_conv_ndim(site: Site, name: str) -> None:
    if len(site.shape) not in (3, 4, 5):
        bad_value("shape", f"a 3-, 4- or 5-D convolution kernel for {name} "
                  "(only tensors with 3, 4, or 5 dimensions are supported)", site.shape)


def _check_dirac(groups: Any = 1) -> dict[str, Any]:
    return {"groups": check_int("groups", groups, low=1)}


def dirac(shape: Shape, *, groups: int = 1, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
          in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
          num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """The Dirac delta kernel (torch ``dirac_``): a convolution that passes its inputs through.

    For each of ``groups`` groups, channel d of the group's outputs gets a 1 at input d, at the
    centre tap k//2 of every kernel axis (torch's centre). Out channels must divide by groups.
    Zagoruyko & Komodakis, "DiracNets: Training Very Deep Neural Networks Without
    Skip-Connections", 2017.

    >>> w = dirac((2, 2, 3))
    >>> w[:, :, 1].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    p = _check_dirac(groups)
    site = Site.make(shape, layout, in_axis, out_axis, transposed)
    dt = resolve_out(out, site.shape, dtype, complex_ok=True, scheme="dirac")
    _check_conv_ndim(site, "dirac")
    cshape, perm = _canonical(site)
    g = p["groups"]
    if cshape[0] % g != 0:
        bad_value("groups", f"a divisor of the out channels ({cshape[0]}): dim 0 must be divisible by groups", groups)
    w = _zeros(cshape, perm, dt, out, num_threads)
    opg = cshape[0] // g
    centre = tuple(k // 2 for k in cshape[2:])
    m = min(opg, cshape[1])
    if m > 0 and all(k > 0 for k in cshape[2:]):
        d = np.arange(m)
        for gi in range(g):
            w[(gi * opg + d, d, *centre)] = 1
    return _finish(w, perm, dt, out)


def delta_orthogonal(shape: Shape, *, gain: float = 1.0, rng: RngLike = None, dtype: Any = None,
                     layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
                     transposed: bool = False, num_threads: int | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Delta-orthogonal convolution kernel (JAX ``delta_orthogonal``).

    Every tap is zero except the centre ((k−1)//2 on each kernel axis, as JAX), which is a random
    orthogonal (out × in) matrix with orthonormal columns, times ``gain`` (out ≥ in required), so
    the convolution is norm-preserving. Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington,
    "Dynamical Isometry and a Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla
    Convolutional Neural Networks", 2018.

    >>> w = delta_orthogonal((4, 2, 3), rng=0).astype(np.float64)
    >>> bool(np.allclose(w[:, :, 1].T @ w[:, :, 1], np.eye(2), atol=1e-6))
    True
    """
    p = _check_gain(gain)
    site = Site.make(shape, layout, in_axis, out_axis, transposed)
    dt = resolve_out(out, site.shape, dtype, complex_ok=True, scheme="delta_orthogonal")
    _check_conv_ndim(site, "delta_orthogonal")
    cshape, perm = _canonical(site)
    if cshape[0] < cshape[1]:
        bad_value("shape", f"out channels >= in channels for delta_orthogonal (got out={cshape[0]}, in={cshape[1]})",
                  site.shape)
    if site.size == 0:
        return deliver(np.empty(site.shape, dtype=dt), out)
    q = orthogonal_matrix(cshape[0], cshape[1], as_generator(rng), dt, num_threads)
    w = _zeros(cshape, perm, dt, out, num_threads)
    centre = tuple((k - 1) // 2 for k in cshape[2:])
    w[(slice(None), slice(None), *centre)] = q * p["gain"]
    return _finish(w, perm, dt, out)


def _moments_delta(site: Site, p: dict[str, Any]) -> dict[str, Any]:
    _check_conv_ndim(site, "delta_orthogonal")
    cshape, _ = _canonical(site)
    g = p["gain"]
    if site.size == 0:
        return {"mean": 0.0, "var": math.nan, "low": -g, "high": g}
    k = math.prod(cshape[2:])
    return {"mean": 0.0, "var": g * g / (cshape[0] * k), "low": -g, "high": g}


def _check_sparse(sparsity: Any = None, std: Any = 0.01) -> dict[str, Any]:
    if sparsity is None:
        bad_value("sparsity", "a number in [0, 1] (the fraction of zeros per column; required)", sparsity)
    return {"sparsity": check_number("sparsity", sparsity, low=0.0, high=1.0), "std": check_number("std", std, low=0.0)}


def sparse(shape: Shape, *, sparsity: float | None = None, std: float = 0.01, rng: RngLike = None,
           dtype: Any = None, layout: str = "torch", in_axis: int | None = None,
           out_axis: int | None = None, transposed: bool = False, num_threads: int | None = None,
           out: np.ndarray | None = None) -> np.ndarray:
    """N(0, std²) with ceil(sparsity·rows) zeros in every column, 2-D only (torch ``sparse_``).

    Rows are the out axis (torch: dim 0). Unlike torch, the zero mask is drawn from the same
    ``rng`` as the values, so the whole result is reproducible. Martens, "Deep learning via
    Hessian-free optimization", 2010.

    >>> w = sparse((10, 4), sparsity=0.3, rng=0)
    >>> (w == 0).sum(axis=0).tolist()
    [3, 3, 3, 3]
    """
    p = _check_sparse(sparsity, std)
    site = Site.make(shape, layout, in_axis, out_axis, transposed)
    dt = resolve_out(out, site.shape, dtype, complex_ok=True, scheme="sparse")
    if len(site.shape) != 2:
        bad_value("shape", "a 2-D shape (only tensors with 2 dimensions are supported)", site.shape)
    cshape, perm = _canonical(site)
    if site.size == 0:
        return deliver(np.empty(site.shape, dtype=dt), out)
    gen = as_generator(rng)
    rows, cols = cshape
    work = np.dtype(np.float32) if dt == np.float16 else dt
    w = out if out is not None and work == dt and _in_place(perm, out) else np.empty(cshape, dtype=work)
    flat = w.reshape(-1).view(_real_of(work)) if work.kind == "c" else w.reshape(-1)
    fill(flat, gen, "normal", scale=p["std"] / (math.sqrt(2) if work.kind == "c" else 1.0), num_threads=num_threads)
    nz = math.ceil(p["sparsity"] * rows)
    if nz > 0:
        _zero_columns(gen, w, nz)
    return _finish(w, perm, dt, out)


def _zero_columns(gen: np.random.Generator, w: np.ndarray, k: int) -> None:
    """Set k entries of every column of the C-ordered 2-D ``w`` to 0, at k distinct rows chosen
    uniformly at random per column (the same law as torch's ``randperm(rows)[:k]``).

    Robert Floyd's algorithm (Bentley & Floyd, "Programming pearls: a sample of brilliance",
    1987), vectorised over the columns: for j = rows−k … rows−1 draw t ∈ [0, j]; take t, or j if
    t was taken already. It yields a uniformly random k-subset in k steps of O(cols) work on a
    boolean mask, with no permutation array. If k > rows/2 the kept complement is drawn instead.
    """
    rows, cols = w.shape
    take = min(k, rows - k)
    mask = np.zeros(rows * cols, dtype=bool)
    base = np.arange(cols, dtype=np.intp)
    for j in range(rows - take, rows):
        lin = gen.integers(0, j + 1, size=cols) * cols + base
        hit = mask[lin]
        lin[hit] = j * cols + base[hit]
        mask[lin] = True
    flat = w.reshape(-1)
    if take == k:
        flat[mask] = 0
    else:
        flat[~mask] = 0


def _moments_sparse(site: Site, p: dict[str, Any]) -> dict[str, Any]:
    if len(site.shape) != 2:
        bad_value("shape", "a 2-D shape", site.shape)
    rows = _canonical(site)[0][0]
    keep = 1.0 - (math.ceil(p["sparsity"] * rows) / rows if rows else 0.0)
    return {"mean": 0.0, "var": p["std"] ** 2 * keep, "low": None, "high": None}


def zero(shape: Shape, *, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
         in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
         num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """ZerO initialization: deterministic identity / Hadamard matrices (Zhao et al. 2021).

    For the (P out × Q in) matrix: P = Q → I; P < Q → partial identity I*; P > Q →
    c·I*·H_m·I* with m = ⌈log₂P⌉, c = 2^{−(m−1)/2} and H_m the 2^m Sylvester–Hadamard matrix.
    Convolution kernels get the matrix at the centre tap (k//2), zeros elsewhere.
    Zhao, Schäfer & Anandkumar, "ZerO Initialization: Initializing Neural Networks with only
    Zeros and Ones", 2021.

    >>> zero((2, 3)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    site = Site.make(shape, layout, in_axis, out_axis, transposed)
    dt = resolve_out(out, site.shape, dtype, complex_ok=True, scheme="zero")
    if len(site.shape) < 2:
        bad_value("shape", "a shape with 2 or more dimensions", site.shape)
    cshape, perm = _canonical(site)
    if site.size == 0:
        return deliver(np.empty(site.shape, dtype=dt), out)
    pr, qc = cshape[0], cshape[1]
    if pr <= qc:
        mat = np.eye(pr, qc)
    else:
        from scipy import linalg

        m = math.ceil(math.log2(pr))
        mat = 2.0 ** (-(m - 1) / 2) * linalg.hadamard(2**m)[:pr, :qc]
    w = _zeros(cshape, perm, dt, out, num_threads)
    centre = tuple(k // 2 for k in cshape[2:])
    w[(slice(None), slice(None), *centre)] = mat
    return _finish(w, perm, dt, out)
