"""Distribution schemes: constants, normal/uniform/truncated normal, and variance scaling.

One core, :func:`variance_scaling` (Var(w) = scale / n, n from ``mode``), with thin named
versions. Names follow torch: ``*_normal`` is an UNtruncated normal (torch), and the truncated
variants that Keras/JAX call ``he_normal``, ``glorot_normal``, ``lecun_normal`` are
``he_truncated_normal``, ``glorot_truncated_normal``, ``lecun_truncated_normal``. Aliases are
plain assignments (``glorot_uniform = xavier_uniform``, ``he_normal = kaiming_normal``).

Every scheme takes ``shape`` and the keyword arguments ``rng`` (int seed or Generator; no global
state), ``dtype`` (float16/32/64, and complex64/128 where E|w|² has a defined target),
``layout`` ("torch" ``[out, in, *k]``, "keras"/"jax" ``[*k, in, out]``), ``in_axis``/``out_axis``,
``transposed``, ``num_threads`` (never changes the result) and ``out``: an existing writeable NumPy
array of ``shape`` to fill in place and return, with the same bits as the call without it
(``dtype`` then defaults to ``out``'s dtype; see :mod:`initlab.init._out`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initlab._rng import RngLike
from initlab._validation import bad_value, check_choice, check_int, check_number
from initlab.init._dist import TRUNC_STD, Dist, Site, sample
from initlab.init._gains import calculate_gain

__all__ = [
    "constant", "zeros", "ones", "normal", "uniform", "trunc_normal", "variance_scaling",
    "xavier_uniform", "xavier_normal", "glorot_uniform", "glorot_normal", "glorot_truncated_normal",
    "kaiming_uniform", "kaiming_normal", "he_uniform", "he_normal", "he_truncated_normal",
    "lecun_uniform", "lecun_normal", "lecun_truncated_normal", "torch_default", "torch_default_bias",
]

Shape = Any  # a tuple of ints (or an int)
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform", "untruncated_normal")


def _fan_value(site: Site, mode: str) -> float:
    fi, fo = site.fans()
    if mode == "fan_in":
        return float(fi)
    if mode == "fan_out":
        return float(fo)
    if mode == "fan_avg":
        return (fi + fo) / 2.0
    return math.sqrt(fi * fo)


def _std_over(num: float, den: float) -> float:
    """num/√den, inf when den == 0 (only reachable for zero-element shapes' moments)."""
    return num / math.sqrt(den) if den > 0 else math.inf


# -------------------------------------------------------------------------- checks and plans
def _check_constant(value: Any = 0.0) -> dict[str, Any]:
    return {"value": check_number("value", value)}


def _plan_constant(site: Site, p: dict[str, Any]) -> Dist:
    return Dist("constant", loc=p["value"])


def _check_none() -> dict[str, Any]:
    return {}


def _check_normal(mean: Any = 0.0, std: Any = 1.0) -> dict[str, Any]:
    return {"mean": check_number("mean", mean), "std": check_number("std", std, low=0.0)}


def _plan_normal(site: Site, p: dict[str, Any]) -> Dist:
    return Dist("normal", loc=p["mean"], scale=p["std"])


def _check_uniform(a: Any = 0.0, b: Any = 1.0) -> dict[str, Any]:
    lo, hi = check_number("a", a), check_number("b", b)
    if lo > hi:
        bad_value("a, b", "bounds with a <= b", (a, b))
    return {"a": lo, "b": hi}


def _plan_uniform(site: Site, p: dict[str, Any]) -> Dist:
    return Dist("uniform", loc=(p["a"] + p["b"]) / 2.0, scale=(p["b"] - p["a"]) / 2.0)


def _bound(name: str, value: Any, sign: int) -> float:
    """A finite number, or -inf (for a) / +inf (for b): a one-sided truncation."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == sign * math.inf:
        return float(value)
    return check_number(name, value)


def _check_trunc_normal(mean: Any = 0.0, std: Any = 1.0, a: Any = -2.0, b: Any = 2.0) -> dict[str, Any]:
    m = check_number("mean", mean)
    s = check_number("std", std, low=0.0)
    lo, hi = _bound("a", a, -1), _bound("b", b, 1)
    if not lo < hi:
        bad_value("a, b", "absolute bounds with a < b", (a, b))
    if s == 0.0 and not lo <= m <= hi:
        bad_value("mean", f"inside [a, b] = [{lo}, {hi}] when std = 0", mean)
    if s > 0.0:
        from scipy import special

        al, be = (lo - m) / s, (hi - m) / s
        if al > -be:
            al, be = -be, -al
        if not (special.log_ndtr(be) > -1e300 and special.ndtr(be) - special.ndtr(al) >= 0.0):
            bad_value("a, b", "an interval with positive probability under N(mean, std²)", (a, b))
    return {"mean": m, "std": s, "a": lo, "b": hi}


def _plan_trunc_normal(site: Site, p: dict[str, Any]) -> Dist:
    m, s = p["mean"], p["std"]
    if s == 0.0:
        return Dist("constant", loc=m)
    return Dist("truncnorm", loc=m, scale=s, alpha=(p["a"] - m) / s, beta=(p["b"] - m) / s)


def _check_vs(scale: Any = 1.0, mode: Any = "fan_in", distribution: Any = "truncated_normal") -> dict[str, Any]:
    sc = check_number("scale", scale, low=0.0, low_open=True)
    md = check_choice("mode", mode, MODES)
    dist = check_choice("distribution", distribution, DISTRIBUTIONS)
    if dist == "untruncated_normal":
        dist = "normal"
    return {"scale": sc, "mode": md, "distribution": dist}


def _vs_dist(variance_num: float, fan: float, distribution: str) -> Dist:
    """Var(w) = variance_num / fan, drawn from ``distribution``."""
    std = _std_over(math.sqrt(variance_num), fan)
    if distribution == "normal":
        return Dist("normal", scale=std)
    if distribution == "uniform":
        return Dist("uniform", scale=std * math.sqrt(3.0))
    return Dist("truncnorm", scale=std / TRUNC_STD, alpha=-2.0, beta=2.0)


def _plan_vs(site: Site, p: dict[str, Any]) -> Dist:
    return _vs_dist(p["scale"], _fan_value(site, p["mode"]), p["distribution"])


def _check_gain(gain: Any = 1.0) -> dict[str, Any]:
    return {"gain": check_number("gain", gain, low=0.0)}


def _plan_xavier(distribution: str) -> Any:
    def plan(site: Site, p: dict[str, Any]) -> Dist:
        return _vs_dist(p["gain"] ** 2, _fan_value(site, "fan_avg"), distribution)

    return plan


def _check_kaiming(a: Any = 0.0, mode: Any = "fan_in", nonlinearity: Any = "leaky_relu") -> dict[str, Any]:
    if not isinstance(mode, str):
        check_choice("mode", mode, ("fan_in", "fan_out"))
    md = check_choice("mode", mode.lower(), ("fan_in", "fan_out"))  # torch lower-cases the mode
    if nonlinearity == "leaky_relu" and not (a is None or ((not isinstance(a, bool)) and isinstance(a, (int, float)))):
        raise ValueError(f"The 'a' argument (leaky_relu's negative slope) must be an int or float (not a bool); "
                         f"got {type(a).__name__} {a!r}.")
    if isinstance(a, (int, float)) and not isinstance(a, bool) and not math.isfinite(a):
        bad_value("a", "a finite number (leaky_relu's negative slope)", a)
    g = calculate_gain(nonlinearity, a)  # torch's table and its errors
    return {"a": a, "mode": md, "nonlinearity": nonlinearity, "gain": g}


def _plan_kaiming(distribution: str) -> Any:
    def plan(site: Site, p: dict[str, Any]) -> Dist:
        return _vs_dist(p["gain"] ** 2, _fan_value(site, p["mode"]), distribution)

    return plan


def _plan_lecun(distribution: str) -> Any:
    def plan(site: Site, p: dict[str, Any]) -> Dist:
        return _vs_dist(1.0, _fan_value(site, "fan_in"), distribution)

    return plan


def _plan_torch_default(site: Site, p: dict[str, Any]) -> Dist:
    fi, _ = site.fans()
    return Dist("uniform", scale=_std_over(1.0, fi))


def _check_bias(fan_in: Any = None) -> dict[str, Any]:
    return {"fan_in": None if fan_in is None else check_int("fan_in", fan_in, low=0)}


def _plan_bias(site: Site, p: dict[str, Any]) -> Dist:
    fi = p["fan_in"]
    if fi is None:
        bad_value("fan_in", "the layer's fan_in (an int >= 0) for torch_default_bias", None)
    return Dist("uniform", scale=1.0 / math.sqrt(fi) if fi > 0 else 0.0)


# -------------------------------------------------------------------------- public functions
def _run(plan: Any, p: dict[str, Any], shape: Shape, rng: RngLike, dtype: Any, layout: Any, in_axis: Any,
         out_axis: Any, transposed: Any, num_threads: Any, complex_ok: bool, scheme: str,
         out: np.ndarray | None) -> np.ndarray:
    site = Site.make(shape, layout, in_axis, out_axis, transposed)
    return sample(plan, p, site, rng=rng, dtype=dtype, num_threads=num_threads, complex_ok=complex_ok, scheme=scheme,
                  out=out)


def constant(shape: Shape, *, value: float = 0.0, rng: RngLike = None, dtype: Any = None,
             layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
             transposed: bool = False, num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Every entry equal to ``value`` (torch ``constant_``, Keras ``Constant``).

    >>> constant((2, 2), value=0.5).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    return _run(_plan_constant, _check_constant(value), shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, True, "constant", out)


def zeros(shape: Shape, *, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
          in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
          num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """All zeros (torch ``zeros_``).

    >>> zeros((2,)).tolist()
    [0.0, 0.0]
    """
    return _run(_plan_constant, {"value": 0.0}, shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, True, "zeros", out)


def ones(shape: Shape, *, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
         in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
         num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """All ones (torch ``ones_``).

    >>> ones((1, 2)).tolist()
    [[1.0, 1.0]]
    """
    return _run(_plan_constant, {"value": 1.0}, shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, True, "ones", out)


def normal(shape: Shape, *, mean: float = 0.0, std: float = 1.0, rng: RngLike = None,
           dtype: Any = None, layout: str = "torch", in_axis: int | None = None,
           out_axis: int | None = None, transposed: bool = False, num_threads: int | None = None,
           out: np.ndarray | None = None) -> np.ndarray:
    """w ~ N(mean, std²), untruncated (torch ``normal_``). Complex: E|w − mean|² = std².

    >>> w = normal((300, 500), std=0.5, rng=0)
    >>> bool(abs(w.std() - 0.5) < 0.01)
    True
    """
    return _run(_plan_normal, _check_normal(mean, std), shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, True, "normal", out)


def uniform(shape: Shape, *, a: float = 0.0, b: float = 1.0, rng: RngLike = None, dtype: Any = None,
            layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
            transposed: bool = False, num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """w ~ U(a, b) (torch ``uniform_``); mean (a+b)/2, variance (b−a)²/12. Real dtypes only.

    >>> w = uniform((300, 500), rng=0)
    >>> bool(0.0 <= w.min() and w.max() < 1.0)
    True
    """
    return _run(_plan_uniform, _check_uniform(a, b), shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, False, "uniform", out)


def trunc_normal(shape: Shape, *, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                 rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                 in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                 num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """N(mean, std²) conditioned on [a, b], torch semantics (``trunc_normal_``).

    ``a`` and ``b`` are ABSOLUTE bounds and ``std`` is the parent normal's std (so
    ``std=0.02`` with the default ±2 is effectively untruncated, timm#1286). For Keras/JAX's
    ±2σ truncation with corrected std use ``variance_scaling(distribution="truncated_normal")``.
    Sampled exactly by inverse CDF; ``std=0`` returns ``mean`` everywhere. Real dtypes only.

    >>> w = trunc_normal((100, 100), std=1.0, a=-1.0, b=1.0, rng=0)
    >>> bool(w.min() >= -1.0 and w.max() <= 1.0)
    True
    """
    return _run(_plan_trunc_normal, _check_trunc_normal(mean, std, a, b), shape, rng, dtype, layout, in_axis,
                out_axis, transposed, num_threads, False, "trunc_normal", out)


def variance_scaling(shape: Shape, *, scale: float = 1.0, mode: str = "fan_in",
                     distribution: str = "truncated_normal", rng: RngLike = None, dtype: Any = None,
                     layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
                     transposed: bool = False, num_threads: int | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """The general variance-scaling initializer: Var(w) = scale / n.

    n = fan_in | fan_out | (fan_in + fan_out)/2 (``fan_avg``) | √(fan_in·fan_out)
    (``fan_geo_avg``). ``distribution``: ``"normal"`` (untruncated, σ = √v), ``"uniform"``
    (b = √(3v)), ``"truncated_normal"`` (Keras/JAX: z ~ N(0, 1) on [−2, 2], w = √v·z/0.8796…,
    so Var(w) = v exactly). Unlike Keras, ``"normal"`` is NOT silently truncated.
    Keras ``VarianceScaling`` / JAX ``variance_scaling``; Glorot & Bengio, "Understanding the
    difficulty of training deep feedforward neural networks", 2010; He et al., "Delving Deep into
    Rectifiers", 2015.

    >>> w = variance_scaling((256, 512), scale=2.0, mode="fan_in", distribution="uniform", rng=0)
    >>> round(float(w.var() * 512), 1)
    2.0
    """
    return _run(_plan_vs, _check_vs(scale, mode, distribution), shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, True, "variance_scaling", out)


def xavier_uniform(shape: Shape, *, gain: float = 1.0, rng: RngLike = None, dtype: Any = None,
                   layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
                   transposed: bool = False, num_threads: int | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """U(−b, b), b = gain·√(6/(fan_in + fan_out)) (torch ``xavier_uniform_``).

    Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
    networks", 2010. Alias ``glorot_uniform``.

    >>> w = xavier_uniform((300, 500), rng=0)
    >>> bool(abs(w).max() <= (6 / 800) ** 0.5)
    True
    """
    return _run(_plan_xavier("uniform"), _check_gain(gain), shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, True, "xavier_uniform", out)


def xavier_normal(shape: Shape, *, gain: float = 1.0, rng: RngLike = None, dtype: Any = None,
                  layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
                  transposed: bool = False, num_threads: int | None = None,
                  out: np.ndarray | None = None) -> np.ndarray:
    """N(0, σ²), σ = gain·√(2/(fan_in + fan_out)), untruncated (torch ``xavier_normal_``).

    Glorot & Bengio, 2010. Alias ``glorot_normal`` (NOT Keras's truncated GlorotNormal: that is
    :func:`glorot_truncated_normal`).

    >>> w = xavier_normal((300, 500), rng=0)
    >>> round(float(w.var() * 800 / 2), 1)
    1.0
    """
    return _run(_plan_xavier("normal"), _check_gain(gain), shape, rng, dtype, layout, in_axis, out_axis,
                transposed, num_threads, True, "xavier_normal", out)


def glorot_truncated_normal(shape: Shape, *, gain: float = 1.0, rng: RngLike = None, dtype: Any = None,
                            layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
                            transposed: bool = False, num_threads: int | None = None,
                            out: np.ndarray | None = None) -> np.ndarray:
    """Keras/JAX ``glorot_normal``: truncated normal (±2σ), Var(w) = gain²·2/(fan_in + fan_out).

    Glorot & Bengio, 2010. Equals ``variance_scaling(scale=gain², mode="fan_avg",
    distribution="truncated_normal")``.

    >>> w = glorot_truncated_normal((300, 500), rng=0)
    >>> bool(abs(w).max() <= 2 * (2 / 800) ** 0.5 / 0.87962566103423978)
    True
    """
    return _run(_plan_xavier("truncated_normal"), _check_gain(gain), shape, rng, dtype, layout, in_axis,
                out_axis, transposed, num_threads, True, "glorot_truncated_normal", out)


def kaiming_uniform(shape: Shape, *, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                    in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                    num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """U(−b, b), b = gain·√(3/fan), gain = calculate_gain(nonlinearity, a) (torch ``kaiming_uniform_``).

    fan = fan_in or fan_out by ``mode`` (case-insensitive, as torch). He et al., "Delving Deep
    into Rectifiers: Surpassing Human-Level Performance on ImageNet Classification", 2015.
    Alias ``he_uniform``.

    >>> w = kaiming_uniform((300, 500), nonlinearity="relu", rng=0)
    >>> bool(abs(w).max() <= (6 / 500) ** 0.5)
    True
    """
    return _run(_plan_kaiming("uniform"), _check_kaiming(a, mode, nonlinearity), shape, rng, dtype, layout,
                in_axis, out_axis, transposed, num_threads, True, "kaiming_uniform", out)


def kaiming_normal(shape: Shape, *, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                   rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                   in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                   num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """N(0, σ²), σ = gain/√fan, untruncated (torch ``kaiming_normal_``).

    He et al., 2015. Alias ``he_normal`` (NOT Keras/JAX's truncated he_normal: that is
    :func:`he_truncated_normal`).

    >>> w = kaiming_normal((300, 500), mode="fan_in", nonlinearity="leaky_relu", a=0.3, rng=0)
    >>> round(float(w.var() * 500 * 1.09 / 2), 1)
    1.0
    """
    return _run(_plan_kaiming("normal"), _check_kaiming(a, mode, nonlinearity), shape, rng, dtype, layout,
                in_axis, out_axis, transposed, num_threads, True, "kaiming_normal", out)


def he_truncated_normal(shape: Shape, *, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                        rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                        in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                        num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Keras/JAX ``he_normal``: truncated normal (±2σ) with Var(w) = gain²/fan (default 2/fan_in).

    He et al., 2015. Defaults equal ``variance_scaling(scale=2, mode="fan_in",
    distribution="truncated_normal")``.

    >>> w = he_truncated_normal((300, 500), rng=0)
    >>> round(float(w.var() * 500), 1)
    2.0
    """
    return _run(_plan_kaiming("truncated_normal"), _check_kaiming(a, mode, nonlinearity), shape, rng, dtype,
                layout, in_axis, out_axis, transposed, num_threads, True, "he_truncated_normal", out)


def lecun_uniform(shape: Shape, *, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                  in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                  num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """U(−b, b), b = √(3/fan_in), Var = 1/fan_in.

    LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998.

    >>> w = lecun_uniform((300, 500), rng=0)
    >>> bool(abs(w).max() <= (3 / 500) ** 0.5)
    True
    """
    return _run(_plan_lecun("uniform"), {}, shape, rng, dtype, layout, in_axis, out_axis, transposed,
                num_threads, True, "lecun_uniform", out)


def lecun_normal(shape: Shape, *, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                 in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                 num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """N(0, 1/fan_in), untruncated (Keras/JAX ``lecun_normal`` is truncated: see
    :func:`lecun_truncated_normal`). LeCun et al., "Efficient BackProp", 1998; used by SELU
    (Klambauer et al., "Self-Normalizing Neural Networks", 2017).

    >>> w = lecun_normal((300, 500), rng=0)
    >>> round(float(w.var() * 500), 1)
    1.0
    """
    return _run(_plan_lecun("normal"), {}, shape, rng, dtype, layout, in_axis, out_axis, transposed,
                num_threads, True, "lecun_normal", out)


def lecun_truncated_normal(shape: Shape, *, rng: RngLike = None, dtype: Any = None,
                           layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
                           transposed: bool = False, num_threads: int | None = None,
                           out: np.ndarray | None = None) -> np.ndarray:
    """Keras/JAX ``lecun_normal``: truncated normal (±2σ), Var(w) = 1/fan_in exactly.

    >>> w = lecun_truncated_normal((300, 500), rng=0)
    >>> round(float(w.var() * 500), 1)
    1.0
    """
    return _run(_plan_lecun("truncated_normal"), {}, shape, rng, dtype, layout, in_axis, out_axis, transposed,
                num_threads, True, "lecun_truncated_normal", out)


def torch_default(shape: Shape, *, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                  in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                  num_threads: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """What nn.Linear / nn.ConvNd do to their weight: ``kaiming_uniform_(a=√5)``.

    gain = √(2/(1+5)) = 1/√3, so b = 1/√fan_in and Var(w) = 1/(3·fan_in) (pytorch#15314,
    #57109). The bias rule is :func:`torch_default_bias`.

    >>> w = torch_default((300, 500), rng=0)
    >>> bool(abs(w).max() <= 1 / 500 ** 0.5)
    True
    """
    return _run(_plan_torch_default, {}, shape, rng, dtype, layout, in_axis, out_axis, transposed,
                num_threads, True, "torch_default", out)


def torch_default_bias(shape: Shape, *, fan_in: int | None = None, rng: RngLike = None, dtype: Any = None,
                       layout: str = "torch", in_axis: int | None = None, out_axis: int | None = None,
                       transposed: bool = False, num_threads: int | None = None,
                       out: np.ndarray | None = None) -> np.ndarray:
    """What nn.Linear / nn.ConvNd do to their bias: U(−1/√fan_in, 1/√fan_in) (0 if fan_in = 0).

    ``fan_in`` is the layer's fan in (the bias shape alone does not know it).

    >>> b = torch_default_bias((10,), fan_in=4, rng=0)
    >>> bool(abs(b).max() <= 0.5)
    True
    """
    return _run(_plan_bias, _check_bias(fan_in), shape, rng, dtype, layout, in_axis, out_axis, transposed,
                num_threads, True, "torch_default_bias", out)


# aliases by assignment
glorot_uniform = xavier_uniform
glorot_normal = xavier_normal
he_uniform = kaiming_uniform
he_normal = kaiming_normal
