"""Mean-field prediction for one concrete, finite stack of dense layers (what a probe measures).

The per-layer version of the length map (Poole et al. 2016, "Exponential expressivity in deep
neural networks through transient chaos") with the actual widths, activations and init schemes:

    q¹ = n₀ · Var(W¹) · E[x²] + σ_b,1²,      q^l = n_{l−1} · Var(W^l) · E[φ_{l−1}(h^{l−1})²] + σ_b,l²,

h^l ~ N(μ_b,l, q^l) across units (a sum of many independent terms), so the activation moments are
Gaussian expectations E[φ(h)], E[φ(h)²]. Backward, with the gradient-independence assumption of
Schoenholz et al. 2017 ("Deep Information Propagation"), the variance of δ^l = ∂L/∂h^l relative
to the output gradient's follows the χ recursion weighted by fan-out:

    E[(δ^L)²] = E[φ_L′(h^L)²] · E[g_out²],   E[(δ^l)²] = E[φ_l′(h^l)²] · n_{l+1} Var(W^{l+1}) · E[(δ^{l+1})²].

A thin wrapper: it builds the :class:`initlab.nn.Dense` layers of the stack and folds their
``propagate`` with :func:`initlab.theory.predict` (each layer reads Var(W) from its init spec,
torch layout, so σ_w,l² = Var(W^l) · n_{l−1}). It lives in :mod:`initlab.nn`, beside the layers it
builds: :mod:`initlab.theory` takes numbers and imports neither :mod:`initlab.init` nor
:mod:`initlab.nn`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from initlab import activations as _acts
from initlab._validation import bad_type, bad_value, check_number
from initlab.nn.layers import Dense
from initlab.theory._predict import predict, std_of

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
        return std_of(self.preact_var)

    @property
    def grad_std(self) -> float:
        """√grad_var (the seeds' "delta" std relative to the output gradient's)."""
        return std_of(self.grad_var)


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
    w_specs = _per_layer("inits", inits, n)
    b_specs = _per_layer("bias_inits", bias_inits, n)
    ex2 = check_number("input_var", input_var, low=0.0)

    layers = []
    for i in range(n):
        try:
            layers.append(Dense(widths[i], widths[i + 1], acts[i], init=w_specs[i] if w_specs[i] is not None else "zeros",
                                bias_init="zeros" if b_specs[i] is None else b_specs[i], dtype=np.float64))
        except (ValueError, TypeError) as e:
            raise ValueError(f"predict_stack: layer {i + 1}: {e}") from None
    try:
        pred = predict(layers, input_var=ex2)
    except (ValueError, TypeError) as e:
        bad_value("inits", f"init specs with finite moments ({e})", list(w_specs))
    out = []
    notes = []
    for i, (layer, r) in enumerate(zip(layers, pred.layers)):
        if r.note:
            notes.append(f"layer {i + 1}: {r.note}; this layer and the ones after it are not predicted (nan).")
        out.append(LayerPrediction(
            index=i + 1, fan_in=widths[i], fan_out=widths[i + 1], activation=acts[i].spec,
            init=str(layer.init_spec), bias_init=str(layer.bias_init_spec), sigma_w2=r.sigma_w2, sigma_b2=r.sigma_b2,
            preact_mean=r.preact_mean, preact_var=r.preact_var, act_mean=r.act_mean, act_second_moment=r.act_second_moment,
            act_std=r.act_std, grad_var=r.grad_var, weight_grad_var=r.weight_grad_var,
        ))
    return StackPrediction(layers=out, input_second_moment=ex2, notes=notes)
