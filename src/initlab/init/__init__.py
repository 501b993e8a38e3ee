"""Exact, fast, framework-independent weight initializers.

Every scheme is a pure function ``scheme(shape, *, rng=None, dtype=None, layout="torch",
in_axis=None, out_axis=None, transposed=False, num_threads=None, out=None, **params) -> np.ndarray``
built on one :func:`variance_scaling` core: float32 unless ``dtype`` says otherwise; with ``out=``
an existing array is filled in place and returned, bitwise equal to the new array the same call
returns. :func:`fill_` fills a torch tensor's memory (or an array) in place from a spec. Names follow torch (``*_normal`` is untruncated);
Keras/JAX's truncated ``he_normal``/``glorot_normal``/``lecun_normal`` are
``he_truncated_normal``/``glorot_truncated_normal``/``lecun_truncated_normal``.
:func:`get` turns a spec string like ``"kaiming_normal(mode=fan_out, a=0.3)"`` into a validated
:class:`Initializer`; :func:`registry` lists every scheme with its formula and paper.

>>> import initlab.init as ii
>>> w = ii.kaiming_normal((300, 500), mode="fan_in", nonlinearity="leaky_relu", a=0.3, rng=0)
>>> w.shape, w.dtype
((300, 500), dtype('float32'))
>>> ii.kaiming_normal((300, 500), nonlinearity="relu", rng=0, out=w) is w
True
>>> ii.compute_fans((64, 3, 3, 3))
(27, 576)
"""

from __future__ import annotations

from initlab.init._fans import LAYOUTS, compute_fans
from initlab.init._fill import fill_
from initlab.init._gains import calculate_gain, gain
from initlab.init._registry import Initializer, SchemeInfo, get, lookup, registry, schemes
from initlab.init._schemes import (
    constant,
    glorot_normal,
    glorot_truncated_normal,
    glorot_uniform,
    he_normal,
    he_truncated_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_truncated_normal,
    lecun_uniform,
    normal,
    ones,
    torch_default,
    torch_default_bias,
    trunc_normal,
    uniform,
    variance_scaling,
    xavier_normal,
    xavier_uniform,
    zeros,
)
from initlab.init._spec import InitSpec, parse_spec
from initlab.init._structured import delta_orthogonal, dirac, eye, orthogonal, sparse, zero

__all__ = [
    "LAYOUTS", "compute_fans", "calculate_gain", "gain", "Initializer", "SchemeInfo", "InitSpec", "get",
    "lookup", "registry", "schemes", "parse_spec", "fill_",
    "constant", "zeros", "ones", "normal", "uniform", "trunc_normal", "variance_scaling",
    "xavier_uniform", "xavier_normal", "glorot_uniform", "glorot_normal", "glorot_truncated_normal",
    "kaiming_uniform", "kaiming_normal", "he_uniform", "he_normal", "he_truncated_normal",
    "lecun_uniform", "lecun_normal", "lecun_truncated_normal", "torch_default", "torch_default_bias",
    "orthogonal", "eye", "dirac", "delta_orthogonal", "sparse", "zero",
]
