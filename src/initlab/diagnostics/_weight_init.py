"""What init a weight has, read off the tensor: its exact structure where there is one, else the
shape of the distribution of its entries.

**Exact structure** (:func:`structure`, weights in torch layout ``[out, in, *kernel]``):

* ``zeros`` / ``constant(value=c)``: every entry equal;
* ``delta_orthogonal(gain=g)`` (Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of
  CNNs"): a convolution kernel whose taps are all exactly zero except the centre one
  ((k−1)//2 as JAX and initlab, or k//2 as torch's ``dirac_``, on each kernel axis), which is an
  orthogonal matrix times g: MᵀM = g²·I (orthonormal columns, out ≥ in) or MMᵀ = g²·I (out < in).
  ``dirac`` when that centre is exactly the identity (torch ``dirac_``, gain 1);
* ``orthogonal(gain=g)`` (Saxe, McClelland & Ganguli 2014): the weight as an ``out × (in·kernel)``
  matrix (as torch's ``orthogonal_`` and initlab's ``orthogonal`` flatten it) has orthonormal rows
  or columns times g, W·Wᵀ ∝ I; ``eye(gain=g)`` when it is g times the identity. A matrix with one
  row or one column is orthogonal up to scale whatever its entries, so it is never named so.

The orthogonality test is exact up to floating point: every row norm and the Gram matrix of the
first rows within ``rtol`` = max(10⁻⁴, 8·eps) of g² (at most 0.25/√c for c columns, where a
random matrix's rows are orthogonal to ~1/√c), then M·(Mᵀ·V) = g²·V for 8 fixed Gaussian
vectors V (a deterministic generator seeded with 0; no global state), in the weight's precision
(float32 at least), so the cost stays O(out·in·kernel) and a random weight is rejected after its
first 16 rows. A Gaussian matrix of c columns misses it by ~1/√c, far above the tolerance for
any realistic layer.

**Distribution shape** (:func:`excess_kurtosis`, :func:`families`): the sample excess kurtosis
γ̂ = m₄/m₂² − 3 of the entries is compared with each family's γ (normal 0, uniform −1.2, normal
truncated at ±2σ as Keras/JAX's ``truncated_normal`` −0.634) within 4 standard errors
√(v/n), v the family's asymptotic n·Var(γ̂) from its moments μ₂…μ₈ (delta method: normal 24,
uniform 1.32); not judged below 100 entries. With few weights several families fit and the name
says so.

>>> import numpy as np
>>> from initlab import init
>>> structure(init.delta_orthogonal((32, 16, 3, 3), gain=2 ** 0.5, rng=0))
'delta_orthogonal(gain=1.41)'
>>> structure(init.orthogonal((64, 32), rng=0)), structure(np.zeros((4, 4))), structure(init.kaiming_normal((64, 64), rng=0))
('orthogonal(gain=1)', 'zeros', None)
>>> families(excess_kurtosis(init.kaiming_uniform((256, 256), rng=0)), 256 * 256)
('uniform',)
"""

from __future__ import annotations

import math

import numpy as np

from initlab.diagnostics._stats import subsample

__all__ = ["structure", "excess_kurtosis", "families", "FAMILIES", "KURTOSIS_SAMPLE"]

_Z_SE = 4.0  # standard errors a measured kurtosis may stray from a family's
_CHECK_ROWS = 16  # rows whose Gram matrix is computed in full before the probe-vector test
_CHECK_VECTORS = 8
_MIN_N = 100  # fewer entries: the shape of the distribution is not judged
#: entries of a weight its kurtosis is measured on (a strided subsample beyond)
KURTOSIS_SAMPLE = 65536


def _family_moments(trunc: float | None) -> tuple[float, float]:
    """(γ, n·Var(γ̂)) of the normal distribution truncated at ±``trunc`` σ (None: not truncated).

    Even moments of the truncated standard normal: μ_k = (k−1)·μ_{k−2} − 2·b^{k−1}·φ(b)/Z,
    Z = erf(b/√2); n·Var(γ̂) by the delta method on (m₂, m₄) (the mean's effect vanishes for a
    symmetric law): (μ₈ − μ₄²)/μ₂⁴ + 4μ₄²(μ₄ − μ₂²)/μ₂⁶ − 4μ₄(μ₆ − μ₄μ₂)/μ₂⁵.
    """
    mu = {0: 1.0}
    for k in (2, 4, 6, 8):
        tail = 0.0 if trunc is None else 2.0 * trunc ** (k - 1) * math.exp(-trunc * trunc / 2) / math.sqrt(2 * math.pi)
        z = 1.0 if trunc is None else math.erf(trunc / math.sqrt(2.0))
        mu[k] = (k - 1) * mu[k - 2] - tail / z
    return _gamma_var(mu[2], mu[4], mu[6], mu[8])


def _gamma_var(m2: float, m4: float, m6: float, m8: float) -> tuple[float, float]:
    g = m4 / (m2 * m2) - 3.0
    v = (m8 - m4 * m4) / m2 ** 4 + 4 * m4 * m4 * (m4 - m2 * m2) / m2 ** 6 - 4 * m4 * (m6 - m4 * m2) / m2 ** 5
    return g, v


#: family → (excess kurtosis γ, asymptotic n·Var of the sample excess kurtosis)
FAMILIES: dict[str, tuple[float, float]] = {
    "normal": _family_moments(None),
    "uniform": _gamma_var(1 / 3, 1 / 5, 1 / 7, 1 / 9),  # U(−1, 1): μ_k = 1/(k+1)
    "truncated_normal": _family_moments(2.0),
}


def excess_kurtosis(weight: np.ndarray) -> float:
    """m₄/m₂² − 3 of the entries of ``weight`` (central moments, float64), on a deterministic
    strided subsample of at most :data:`KURTOSIS_SAMPLE` entries (enough to tell the families
    apart: 4 standard errors are ±0.08 for a normal); NaN when they are all equal.

    >>> round(excess_kurtosis(np.array([-1.0, 1.0])), 6)
    -2.0
    """
    w = subsample(np.asarray(weight), KURTOSIS_SAMPLE).astype(np.float64, copy=False)
    if w.size == 0:
        return math.nan
    d = w - w.mean()
    d2 = d * d
    m2 = float(d2.mean())
    if not m2 > 0 or not math.isfinite(m2):
        return math.nan
    d2 *= d2  # (elementwise: a BLAS dot here costs milliseconds in thread wake-ups under load)
    m4 = float(d2.sum()) / w.size
    return m4 / (m2 * m2) - 3.0


def families(kurtosis: float | None, n: int) -> tuple[str, ...]:
    """The families of :data:`FAMILIES` within 4 standard errors of the ``kurtosis`` measured on a
    weight of ``n`` entries (on min(n, KURTOSIS_SAMPLE) of them); every family when the kurtosis is
    unknown (None or NaN) or measured on fewer than 100 entries (where the sample kurtosis is too far from its asymptotic law to judge: a
    uniform sample of 16 falls outside 4 asymptotic standard errors 3% of the time).

    >>> families(0.05, 100_000), families(0.05, 20)
    (('normal',), ('normal', 'uniform', 'truncated_normal'))
    """
    n = min(int(n), KURTOSIS_SAMPLE)
    if kurtosis is None or not math.isfinite(kurtosis) or n < _MIN_N:
        return tuple(FAMILIES)
    return tuple(f for f, (g, v) in FAMILIES.items() if abs(kurtosis - g) <= _Z_SE * math.sqrt(v / n))


def _orthogonal_gain(m: np.ndarray, rtol: float) -> float | None:
    """g where M·Mᵀ = g²·I (M with no more rows than columns; else its transpose) within ``rtol``,
    else None. The Gram matrix of the first rows comes first: it rejects a random matrix after
    reading 16 rows."""
    if m.shape[0] > m.shape[1]:
        m = m.T
    # the rows of a random matrix of c columns are orthogonal to ~1/√c: the tolerance stays well
    # below that (float16 weights with c ≥ 10⁴ would otherwise pass)
    rtol = min(rtol, 0.25 / math.sqrt(m.shape[1]))
    head = np.asarray(m[:_CHECK_ROWS], dtype=np.float64)
    gram = head @ head.T
    g2 = float(np.trace(gram)) / gram.shape[0]
    if not (g2 > 0 and math.isfinite(g2)):
        return None
    gram[np.diag_indices_from(gram)] -= g2
    if float(np.max(np.abs(gram))) > rtol * g2:
        return None
    if m.shape[0] > _CHECK_ROWS:
        # the whole matrix in its own precision (float32 at least): no float64 copy of a big weight
        work = np.float64 if m.dtype.itemsize > 4 or not np.issubdtype(m.dtype, np.floating) else np.float32
        m = np.asarray(m, dtype=work)
        rows = np.einsum("ij,ij->i", m, m)
        if float(np.max(np.abs(rows - g2))) > rtol * g2:
            return None
        v = np.random.default_rng(0).standard_normal((m.shape[0], _CHECK_VECTORS)).astype(work)
        r = m @ (m.T @ v) - work(g2) * v
        if float(np.max(np.linalg.norm(r, axis=0) / np.linalg.norm(v, axis=0))) > rtol * g2:
            return None
    return math.sqrt(g2)


def _is_eye(m: np.ndarray, g: float, rtol: float) -> bool:
    """Whether an orthogonal-up-to-g matrix ``m`` is g times the (partial) identity: its diagonal
    is g (the rows, or columns, having norm g, every other entry is then 0)."""
    return bool(np.all(np.abs(np.diagonal(m).astype(np.float64) - g) <= rtol * g))


def structure(weight: np.ndarray) -> str | None:
    """The init a weight (torch layout ``[out, in, *kernel]``) has exactly, as a spec with its
    gain to 3 significant figures (see the module docstring), or None.

    >>> from initlab import init
    >>> structure(np.full((3, 5), 0.5)), structure(init.eye((4, 6), gain=2.0)), structure(init.dirac((4, 4, 3), rng=0))
    ('constant(value=0.5)', 'eye(gain=2)', 'dirac')
    """
    w = np.asarray(weight)
    if w.size == 0 or not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
        return None
    flat = w.reshape(-1)
    if flat[:64].min() == flat[:64].max() and np.all(flat == flat[0]):  # 64 first: cheap for a random weight
        v = float(flat[0])
        return "zeros" if v == 0 else f"constant(value={v:.3g})"
    if w.ndim < 2:
        return None
    eps = float(np.finfo(w.dtype).eps) if np.issubdtype(w.dtype, np.floating) else 0.0
    rtol = max(1e-4, 8.0 * eps)
    if w.ndim >= 3 and math.prod(w.shape[2:]) > 1:
        taps = w.reshape(w.shape[0], w.shape[1], -1)
        centres = {int(np.ravel_multi_index(c, w.shape[2:]))
                   for c in ([(k - 1) // 2 for k in w.shape[2:]], [k // 2 for k in w.shape[2:]])}
        off = next((j for j in range(taps.shape[2]) if j not in centres), None)
        if off is None or not np.any(taps[:, :, off]):  # an off-centre tap all zero: look at them all
            live = np.flatnonzero(np.any(taps != 0, axis=(0, 1)))
            if live.size == 1 and int(live[0]) in centres:
                centre = taps[:, :, int(live[0])]
                g = _orthogonal_gain(centre, rtol)
                if g is not None:
                    if _is_eye(centre, 1.0, rtol):
                        return "dirac"
                    return f"delta_orthogonal(gain={g:.3g})"
    mat = w.reshape(w.shape[0], -1)
    if min(mat.shape) >= 2 and np.all(np.isfinite(mat[:_CHECK_ROWS])):
        g = _orthogonal_gain(mat, rtol)
        if g is not None:
            if w.ndim == 2 and _is_eye(mat, g, rtol):
                return f"eye(gain={g:.3g})"
            return f"orthogonal(gain={g:.3g})"
    return None
