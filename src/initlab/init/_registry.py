"""The one registry of initialization schemes, :func:`get` and the :class:`Initializer`.

Each :class:`SchemeInfo` holds the function, its parameter check (run when an initializer is
made, so a bad ``mode`` is rejected at creation, not when it runs), how to compute its
theoretical moments, its aliases, distribution, variance formula and paper.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab._rng import RngLike
from initlab._validation import suggest
from initlab.init import _schemes as S
from initlab.init import _structured as T
from initlab.init._dist import Site
from initlab.init._spec import InitSpec, parse_spec

__all__ = ["SchemeInfo", "Initializer", "registry", "schemes", "lookup", "get"]

Paper = tuple[str, str, int]
GLOROT: Paper = ("Understanding the difficulty of training deep feedforward neural networks",
                 "Xavier Glorot, Yoshua Bengio", 2010)
HE: Paper = ("Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet Classification",
             "Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun", 2015)
LECUN: Paper = ("Efficient BackProp", "Yann LeCun, Léon Bottou, Genevieve B. Orr, Klaus-Robert Müller", 1998)
SAXE: Paper = ("Exact solutions to the nonlinear dynamics of learning in deep linear neural networks",
               "Andrew M. Saxe, James L. McClelland, Surya Ganguli", 2014)
XIAO: Paper = ("Dynamical Isometry and a Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla "
               "Convolutional Neural Networks",
               "Lechao Xiao, Yasaman Bahri, Jascha Sohl-Dickstein, Samuel S. Schoenholz, Jeffrey Pennington", 2018)
DIRAC: Paper = ("DiracNets: Training Very Deep Neural Networks Without Skip-Connections",
                "Sergey Zagoruyko, Nikos Komodakis", 2017)
MARTENS: Paper = ("Deep learning via Hessian-free optimization", "James Martens", 2010)
ZERO: Paper = ("ZerO Initialization: Initializing Neural Networks with only Zeros and Ones",
               "Jiawei Zhao, Florian Schäfer, Anima Anandkumar", 2021)


def _det_moments(fn: Callable[..., np.ndarray]) -> Callable[[Site, dict[str, Any]], dict[str, Any]]:
    """Moments of a deterministic scheme: the array's own mean, variance and range."""

    def moments(site: Site, p: dict[str, Any]) -> dict[str, Any]:
        w = fn(site.shape, layout=site.layout, in_axis=site.in_axis, out_axis=site.out_axis,
               transposed=site.transposed, dtype=np.float64, **p)
        if w.size == 0:
            return {"mean": math.nan, "var": math.nan, "low": None, "high": None}
        return {"mean": float(w.mean()), "var": float(w.var()), "low": float(w.min()), "high": float(w.max())}

    return moments


@dataclass(frozen=True)
class SchemeInfo:
    """One registry entry."""

    name: str
    fn: Callable[..., np.ndarray] = field(repr=False)
    check: Callable[..., dict[str, Any]] = field(repr=False)
    moments: Callable[[Site, dict[str, Any]], dict[str, Any]] = field(repr=False)
    distribution: str
    variance: str
    paper: Paper | None = None
    aliases: tuple[str, ...] = ()
    complex_ok: bool = True

    @property
    def params(self) -> dict[str, Any]:
        """The scheme's parameters and their defaults."""
        return {k: v.default for k, v in inspect.signature(self.check).parameters.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "params": self.params,
            "distribution": self.distribution,
            "variance": self.variance,
            "complex": self.complex_ok,
            "paper": None if self.paper is None else {"title": self.paper[0], "authors": self.paper[1],
                                                      "year": self.paper[2]},
        }


def _plan_moments(plan: Callable[[Site, dict[str, Any]], Any]) -> Callable[[Site, dict[str, Any]], dict[str, Any]]:
    def moments(site: Site, p: dict[str, Any]) -> dict[str, Any]:
        return plan(site, p).moments()

    return moments


def _bias_moments(site: Site, p: dict[str, Any]) -> dict[str, Any]:
    return S._plan_bias(site, p).moments()


_NONE = S._check_none
_TRUNC = "truncated normal on ±2σ, σ = √v/0.8796…"
_ENTRIES: list[SchemeInfo] = [
    SchemeInfo("zeros", S.zeros, _NONE, _plan_moments(lambda s, p: S._plan_constant(s, {"value": 0.0})),
               "constant 0", "0"),
    SchemeInfo("ones", S.ones, _NONE, _plan_moments(lambda s, p: S._plan_constant(s, {"value": 1.0})),
               "constant 1", "0"),
    SchemeInfo("constant", S.constant, S._check_constant, _plan_moments(S._plan_constant), "constant value", "0"),
    SchemeInfo("normal", S.normal, S._check_normal, _plan_moments(S._plan_normal), "N(mean, std²), untruncated",
               "std²"),
    SchemeInfo("uniform", S.uniform, S._check_uniform, _plan_moments(S._plan_uniform), "U(a, b)", "(b−a)²/12",
               complex_ok=False),
    SchemeInfo("trunc_normal", S.trunc_normal, S._check_trunc_normal, _plan_moments(S._plan_trunc_normal),
               "N(mean, std²) conditioned on absolute [a, b] (torch)", "std²·(1 + (αφ(α)−βφ(β))/Z − ((φ(α)−φ(β))/Z)²)",
               complex_ok=False),
    SchemeInfo("variance_scaling", S.variance_scaling, S._check_vs, _plan_moments(S._plan_vs),
               "normal | truncated_normal (±2σ, corrected) | uniform",
               "scale/n, n = fan_in | fan_out | (fan_in+fan_out)/2 | √(fan_in·fan_out)", HE),
    SchemeInfo("xavier_uniform", S.xavier_uniform, S._check_gain, _plan_moments(S._plan_xavier("uniform")),
               "U(−b, b), b = gain·√(6/(fan_in+fan_out))", "2·gain²/(fan_in+fan_out)", GLOROT, ("glorot_uniform",)),
    SchemeInfo("xavier_normal", S.xavier_normal, S._check_gain, _plan_moments(S._plan_xavier("normal")),
               "N(0, σ²), untruncated", "2·gain²/(fan_in+fan_out)", GLOROT, ("glorot_normal",)),
    SchemeInfo("glorot_truncated_normal", S.glorot_truncated_normal, S._check_gain,
               _plan_moments(S._plan_xavier("truncated_normal")), _TRUNC, "2·gain²/(fan_in+fan_out)", GLOROT),
    SchemeInfo("kaiming_uniform", S.kaiming_uniform, S._check_kaiming, _plan_moments(S._plan_kaiming("uniform")),
               "U(−b, b), b = gain·√(3/fan)", "gain²/fan, gain = calculate_gain(nonlinearity, a)", HE,
               ("he_uniform",)),
    SchemeInfo("kaiming_normal", S.kaiming_normal, S._check_kaiming, _plan_moments(S._plan_kaiming("normal")),
               "N(0, σ²), σ = gain/√fan, untruncated", "gain²/fan, gain = calculate_gain(nonlinearity, a)", HE,
               ("he_normal",)),
    SchemeInfo("he_truncated_normal", S.he_truncated_normal, S._check_kaiming,
               _plan_moments(S._plan_kaiming("truncated_normal")), _TRUNC,
               "gain²/fan (default 2/fan_in)", HE),
    SchemeInfo("lecun_uniform", S.lecun_uniform, _NONE, _plan_moments(S._plan_lecun("uniform")),
               "U(−b, b), b = √(3/fan_in)", "1/fan_in", LECUN),
    SchemeInfo("lecun_normal", S.lecun_normal, _NONE, _plan_moments(S._plan_lecun("normal")),
               "N(0, 1/fan_in), untruncated", "1/fan_in", LECUN),
    SchemeInfo("lecun_truncated_normal", S.lecun_truncated_normal, _NONE,
               _plan_moments(S._plan_lecun("truncated_normal")), _TRUNC, "1/fan_in", LECUN),
    SchemeInfo("torch_default", S.torch_default, _NONE, _plan_moments(S._plan_torch_default),
               "U(−1/√fan_in, 1/√fan_in) (kaiming_uniform a=√5)", "1/(3·fan_in)", HE),
    SchemeInfo("torch_default_bias", S.torch_default_bias, S._check_bias, _bias_moments,
               "U(−1/√fan_in, 1/√fan_in), 0 if fan_in = 0 (bias)", "1/(3·fan_in)"),
    SchemeInfo("orthogonal", T.orthogonal, T._check_gain, T._moments_orthogonal,
               "Haar (semi-)orthogonal rows/columns × gain", "gain²·min(r,c)/(r·c)", SAXE),
    SchemeInfo("eye", T.eye, T._check_gain, _det_moments(T.eye), "identity × gain (2-D)", "deterministic"),
    SchemeInfo("dirac", T.dirac, T._check_dirac, _det_moments(T.dirac), "Dirac delta at the centre tap k//2",
               "deterministic", DIRAC),
    SchemeInfo("delta_orthogonal", T.delta_orthogonal, T._check_gain, T._moments_delta,
               "orthogonal centre tap (k−1)//2 × gain, zeros elsewhere", "gain²/(out·prod(kernel))", XIAO),
    SchemeInfo("sparse", T.sparse, T._check_sparse, T._moments_sparse,
               "N(0, std²) with ceil(sparsity·rows) zeros per column", "std²·(1 − zeros/rows)", MARTENS),
    SchemeInfo("zero", T.zero, _NONE, _det_moments(T.zero), "ZerO: identity / scaled Hadamard (deterministic)",
               "deterministic", ZERO),
]
_BY_NAME: dict[str, SchemeInfo] = {e.name: e for e in _ENTRIES}
_ALIASES: dict[str, str] = {a: e.name for e in _ENTRIES for a in e.aliases}


def registry() -> dict[str, SchemeInfo]:
    """Every scheme by canonical name (aliases are listed in each entry).

    >>> registry()["xavier_uniform"].aliases
    ('glorot_uniform',)
    """
    return dict(_BY_NAME)


def schemes() -> list[str]:
    """The canonical scheme names.

    >>> "kaiming_normal" in schemes()
    True
    """
    return list(_BY_NAME)


def lookup(name: str) -> SchemeInfo:
    """The registry entry for a name or alias; unknown names get a suggestion.

    >>> lookup("he_normal").name
    'kaiming_normal'
    """
    if not isinstance(name, str):
        raise TypeError(f"The 'name' argument must be a scheme name (str); got {type(name).__name__} {name!r}.")
    key = _ALIASES.get(name, name)
    if key not in _BY_NAME:
        all_names = list(_BY_NAME) + list(_ALIASES)
        raise ValueError(
            f"The scheme name must be one of {', '.join(all_names)}; got {name!r}{suggest(name, all_names)}."
        )
    return _BY_NAME[key]


class Initializer:
    """A validated, callable initializer made from a spec (see :func:`get`).

    ``init(shape, *, rng=None, dtype=None, layout="torch", in_axis=None, out_axis=None,
    transposed=False, num_threads=None, out=None, **overrides)`` draws an array (float32 unless
    ``dtype`` says otherwise), or fills ``out`` in place and returns it; ``init.moments(shape)``
    gives the theoretical ``mean``, ``var`` (E|w − mean|² for complex), ``low`` and ``high``
    (None when unbounded) for that shape.

    >>> init = get("kaiming_normal(mode=fan_out, nonlinearity=relu)")
    >>> round(init.moments((300, 500))["var"] * 300, 12)
    2.0
    >>> init((2, 3), rng=0).shape
    (2, 3)
    >>> w = np.empty((2, 3), np.float32)
    >>> init((2, 3), rng=0, out=w) is w and bool((w == init((2, 3), rng=0)).all())
    True
    """

    __slots__ = ("spec", "info", "params")

    def __init__(self, spec: InitSpec, info: SchemeInfo, params: dict[str, Any]) -> None:
        self.spec = spec
        self.info = info
        self.params = params

    @property
    def name(self) -> str:
        """The canonical scheme name (an alias resolves to it)."""
        return self.info.name

    def __call__(self, shape: Any, *, rng: RngLike = None, dtype: Any = None, layout: str = "torch",
                 in_axis: int | None = None, out_axis: int | None = None, transposed: bool = False,
                 num_threads: int | None = None, out: np.ndarray | None = None, **overrides: Any) -> np.ndarray:
        kwargs = {**self.spec.kwargs, **overrides}
        if overrides:
            _checked(self.info, kwargs)  # an unknown parameter named as such, not a Python TypeError
        return self.info.fn(shape, rng=rng, dtype=dtype, layout=layout, in_axis=in_axis, out_axis=out_axis,
                            transposed=transposed, num_threads=num_threads, out=out, **kwargs)

    def moments(self, shape: Any, layout: str = "torch", transposed: bool = False, *,
                in_axis: int | None = None, out_axis: int | None = None, **overrides: Any) -> dict[str, Any]:
        """Theoretical ``{"mean", "var", "low", "high"}`` of the weights for ``shape``.

        ``var`` is NaN when the fan the formula divides by is 0 (a zero-element shape).
        """
        p = self.params if not overrides else _checked(self.info, {**self.spec.kwargs, **overrides})
        site = Site.make(shape, layout, in_axis, out_axis, transposed)
        return dict(self.info.moments(site, p))

    def to_dict(self) -> dict[str, Any]:
        return self.spec.to_dict()

    def __repr__(self) -> str:
        return f"Initializer({str(self.spec)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Initializer) and other.name == self.name and other.params == self.params

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted((k, repr(v)) for k, v in self.params.items()))))


@functools.lru_cache(maxsize=None)
def _param_names(check: Callable[..., Any]) -> tuple[str, ...]:
    """The parameter names of a scheme's ``check`` (inspect.signature once per scheme, not per
    :func:`get`: the report's explorer builds thousands of initializers)."""
    return tuple(inspect.signature(check).parameters)


def _checked(info: SchemeInfo, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    allowed = list(_param_names(info.check))
    for k in kwargs:
        if k not in allowed:
            raise ValueError(
                f"The scheme {info.name!r} takes the parameters {allowed if allowed else 'none'}; "
                f"got {k!r}{suggest(k, allowed)}."
            )
    return info.check(**kwargs)


def get(spec: Any) -> Initializer:
    """A validated :class:`Initializer` from a spec string, an InitSpec, a dict or an Initializer.

    Parameters are checked now (a bad ``mode`` fails here, not when the initializer runs).

    >>> get("he_normal").name
    'kaiming_normal'
    >>> get({"name": "normal", "params": {"std": 0.02}}).spec.kwargs
    {'std': 0.02}
    >>> get("xavier_unifrom")
    Traceback (most recent call last):
    ...
    ValueError: The scheme name must be one of ... got 'xavier_unifrom' (did you mean 'xavier_uniform'?).
    """
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        spec = parse_spec(spec)
    elif isinstance(spec, Mapping):
        spec = InitSpec.from_dict(spec)
    elif not isinstance(spec, InitSpec):
        raise TypeError(
            f"The 'spec' argument must be a spec string, an InitSpec, a dict or an Initializer; "
            f"got {type(spec).__name__} {spec!r}."
        )
    info = lookup(spec.name)
    return Initializer(spec, info, _checked(info, spec.kwargs))
