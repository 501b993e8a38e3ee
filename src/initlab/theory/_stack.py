"""Mean-field prediction for one concrete, finite stack of dense layers (what a probe measures).

The per-layer version of the length map (Poole et al. 2016, "Exponential expressivity in deep
neural networks through transient chaos") with the actual widths, activations and init schemes:

    q¹ = n₀ · Var(W¹) · E[x²] + σ_b,1²,      q^l = n_{l−1} · Var(W^l) · E[φ_{l−1}(h^{l−1})²] + σ_b,l²,

h^l ~ N(μ_b,l, q^l) across units (a sum of many independent terms), so the activation moments are
Gaussian expectations E[φ(h)], E[φ(h)²]. Backward, with the gradient-independence assumption of
Schoenholz et al. 2017 ("Deep Information Propagation"), the variance of δ^l = ∂L/∂h^l relative
to the output gradient's follows the χ recursion weighted by fan-out:

    E[(δ^L)²] = E[φ_L′(h^L)²] · E[g_out²],   E[(δ^l)²] = E[φ_l′(h^l)²] · n_{l+1} Var(W^{l+1}) · E[(δ^{l+1})²].

Weight variances come from the init registry: ``initlab.init.get(spec).moments((out, in))["var"]``
(torch layout), so σ_w,l² = Var(W^l) · n_{l−1}.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from initlab import activations as _acts
from initlab._validation import bad_type, bad_value, check_number

__all__ = ["LayerPrediction", "StackPrediction", "predict_stack"]

Activation = _acts.Activation


@dataclass(frozen=True)
class LayerPrediction:
    """The mean-field prediction for one dense layer (index from 1, like the seeds' tables)."""

    index: int
    fan_in: int
    fan_out: int
    activation: str
    init: str
    bias_init: str
    sigma_w2: float  #: Var(W) · fan_in
    sigma_b2: float  #: Var(b)
    preact_mean: float
    preact_var: float  #: q^l
    act_mean: float
    act_second_moment: float
    act_std: float  #: sqrt(E[φ²] − E[φ]²), pooled over batch and units
    grad_var: float  #: E[(∂L/∂h^l)²] / E[(∂L/∂output)²]
    weight_grad_var: float  #: E[(∂L/∂W^l)²] / E[(∂L/∂output)²] = grad_var · E[a_{l−1}²]

    @property
    def preact_std(self) -> float:
        """√q^l."""
        return math.sqrt(self.preact_var) if self.preact_var >= 0 else math.nan

    @property
    def grad_std(self) -> float:
        """√grad_var (the seeds' "delta" std relative to the output gradient's)."""
        return math.sqrt(self.grad_var) if self.grad_var >= 0 else math.nan


@dataclass(frozen=True)
class StackPrediction:
    """Per-layer mean-field predictions for a stack; the array attributes are indexed by layer − 1.

    >>> p = predict_stack([4, 3, 2], "relu", ["normal(std=0.5)", "lecun_normal"])
    >>> [round(float(v), 6) for v in p.preact_var]     # q1 = 4·0.25·1, q2 = 3·(1/3)·(1/2)
    [1.0, 0.5]
    """

    layers: list[LayerPrediction]
    input_second_moment: float
    notes: list[str] = field(default_factory=list)

    def _col(self, name: str) -> np.ndarray:
        return np.array([getattr(layer, name) for layer in self.layers], dtype=np.float64)

    @property
    def preact_var(self) -> np.ndarray:
        return self._col("preact_var")

    @property
    def preact_std(self) -> np.ndarray:
        return self._col("preact_std")

    @property
    def preact_mean(self) -> np.ndarray:
        return self._col("preact_mean")

    @property
    def act_mean(self) -> np.ndarray:
        return self._col("act_mean")

    @property
    def act_std(self) -> np.ndarray:
        return self._col("act_std")

    @property
    def act_second_moment(self) -> np.ndarray:
        return self._col("act_second_moment")

    @property
    def grad_var(self) -> np.ndarray:
        return self._col("grad_var")

    @property
    def grad_std(self) -> np.ndarray:
        return self._col("grad_std")

    @property
    def weight_grad_var(self) -> np.ndarray:
        return self._col("weight_grad_var")

    def __len__(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"input_second_moment", "notes", "layers": [ {...per layer...} ]}``."""
        layers = []
        for layer in self.layers:
            d = asdict(layer)
            d["preact_std"] = layer.preact_std
            d["grad_std"] = layer.grad_std
            layers.append(d)
        return {"input_second_moment": self.input_second_moment, "notes": list(self.notes), "layers": layers}


def _per_layer(name: str, value: Any, n: int) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            bad_value(name, f"one entry per layer ({n} layers) or a single value", value)
        return list(value)
    return [value] * n


def _resolve_init(spec: Any) -> Any:
    """The registry's Initializer for ``spec`` (None: no bias, the same as ``"zeros"``)."""
    from initlab import init as _init

    return _init.get("zeros" if spec is None else spec)


def _spec_str(init: Any) -> str:
    return str(init.spec)


def _moments(init: Any, shape: tuple[int, ...], what: str, fan_in: int | None = None) -> tuple[float, float]:
    """(mean, var) of ``init`` for ``shape``; a bias scheme that needs the layer's fan-in
    (``torch_default_bias``) gets ``fan_in`` when its spec leaves it unset."""
    params = getattr(init, "params", {})
    if fan_in is not None and "fan_in" in params and params["fan_in"] is None:
        m = init.moments(shape, fan_in=fan_in)
    else:
        m = init.moments(shape)
    mean, var = float(m["mean"]), float(m["var"])
    if not (math.isfinite(mean) and math.isfinite(var)) or var < 0:
        bad_value(what, "an init with finite moments", _spec_str(init))
    return mean, var


def _gauss(act: Activation, mu: float, q: float) -> tuple[float, float, float]:
    """(E[φ(h)], E[φ(h)²], E[φ′(h)²]) for h ~ N(μ, q)."""
    if mu == 0.0:
        return float(act.mean(q)), float(act.second_moment(q)), float(act.deriv_second_moment(q))
    x, w = _acts.gaussian_nodes(q, scale=act.scale)
    f = act.fn(x + mu)
    d = act.derivative(x + mu, f)
    return float(np.sum(w * f)), float(np.sum(w * f * f)), float(np.sum(w * d * d))


def predict_stack(
    sizes: Sequence[int],
    activations: str | Activation | Sequence[str | Activation],
    inits: Any,
    input_var: float = 1.0,
    bias_inits: Any = "zeros",
) -> StackPrediction:
    """Predict each layer's pre-activation variance, activation mean/std and gradient variance.

    Args:
        sizes: widths ``[n_in, n_1, ..., n_L]`` (as :class:`initlab.nn.Network`).
        activations: one activation (name or Activation) for every layer, or a list of L.
        inits: one weight init spec (string, InitSpec, dict, Initializer) or a list of L.
            Weights must have zero mean (the theory assumes it); Var(W) per layer comes from
            ``initlab.init.get(spec).moments((out, in))["var"]``.
        input_var: E[x²] of the inputs (second moment per input coordinate).
        bias_inits: bias init spec(s); ``"zeros"`` (or None) gives σ_b² = 0. A nonzero bias mean
            shifts the pre-activations; their variance is ``moments((out,))["var"]`` (a scheme
            that needs the layer's fan-in, ``torch_default_bias``, gets it).

    Returns:
        A :class:`StackPrediction`; ``grad_var[l]`` is E[(∂L/∂h^l)²] relative to the variance of
        the gradient with respect to the network output.

    Example (seed 003's Xavier stack: tanh, 10 × 500, layer-1 std ≈ 0.627 as measured):

    >>> p = predict_stack([500] * 11, "tanh", "xavier_normal")   # Var(W) = 2/(500 + 500)
    >>> round(float(p.act_std[0]), 3), round(float(p.act_std[-1]), 3)
    (0.628, 0.228)
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        bad_type("sizes", "a list of layer widths like [784, 256, 10]", sizes)
    widths = []
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            bad_value("sizes", "a list of at least two positive ints", list(sizes))
        widths.append(int(s))
    if len(widths) < 2:
        bad_value("sizes", "a list of at least two positive ints", list(sizes))
    n = len(widths) - 1
    acts = [_acts.get(a) for a in _per_layer("activations", activations, n)]
    w_inits = [_resolve_init(s) for s in _per_layer("inits", inits, n)]
    b_inits = [_resolve_init(s) for s in _per_layer("bias_inits", bias_inits, n)]
    ex2 = check_number("input_var", input_var, low=0.0)

    notes: list[str] = []
    fwd: list[dict[str, Any]] = []
    prev_m2 = ex2
    for i in range(n):
        fan_in, fan_out = widths[i], widths[i + 1]
        w_mean, w_var = _moments(w_inits[i], (fan_out, fan_in), "inits")
        b_mean, b_var = _moments(b_inits[i], (fan_out,), "bias_inits", fan_in=fan_in)
        sw2 = w_var * fan_in
        if w_mean != 0.0:
            notes.append(
                f"layer {i + 1}: weights have mean {w_mean:g} (init {_spec_str(w_inits[i])}); the mean-field "
                "theory assumes zero-mean weights, so this layer and the ones after it are not predicted (nan)."
            )
            q = math.nan
        else:
            q = sw2 * prev_m2 + b_var
        if math.isfinite(q):
            mu_a, m2_a, d2 = _gauss(acts[i], b_mean, q)
        else:
            mu_a = m2_a = d2 = math.nan
        fwd.append(
            dict(
                index=i + 1, fan_in=fan_in, fan_out=fan_out, activation=acts[i].spec,
                init=_spec_str(w_inits[i]), bias_init=_spec_str(b_inits[i]), sigma_w2=sw2, sigma_b2=b_var,
                preact_mean=b_mean if math.isfinite(q) else math.nan, preact_var=q, act_mean=mu_a,
                act_second_moment=m2_a, act_std=math.sqrt(max(m2_a - mu_a * mu_a, 0.0)) if math.isfinite(m2_a) else math.nan,
                _d2=d2, _w_var=w_var, _in_m2=prev_m2,
            )
        )
        prev_m2 = m2_a
    # backward: δ^L = φ_L′ ⊙ g_out;  δ^l = φ_l′ ⊙ (W^{l+1})ᵀ δ^{l+1}
    g = 1.0
    for i in reversed(range(n)):
        row = fwd[i]
        if i < n - 1:
            nxt = fwd[i + 1]
            g = g * nxt["_w_var"] * nxt["fan_out"]
        g = row["_d2"] * g
        row["grad_var"] = g
        row["weight_grad_var"] = g * row["_in_m2"]
    layers = [LayerPrediction(**{k: v for k, v in row.items() if not k.startswith("_")}) for row in fwd]
    return StackPrediction(layers=layers, input_second_moment=ex2, notes=notes)
