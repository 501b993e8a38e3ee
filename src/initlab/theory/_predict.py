"""Mean-field prediction folded over a network's own layer list (one description for model and theory).

Every layer of :mod:`initlab.nn` has a ``propagate(signal)`` method beside its forward and backward
passes (the idea of neural-tangents' ``stax``: one spec gives the model and its theory). It maps
the moments of its input signal to a :class:`LayerMF` record: the moments of its output, its
pre-activation moments where it has one, and two backward factors. :func:`predict` folds those
records forward over the layers, then folds the gradient factors backward:

    forward:   s₀ = (E[x], E[x²]) of the inputs,  rec_l = layer_l.propagate(s_{l−1}),  s_l = rec_l.out
    backward:  g = 1 (E[(∂L/∂output)²]),  grad_var_l = rec_l.d2 · g,  g ← rec_l.back · grad_var_l

(Poole et al. 2016, "Exponential expressivity in deep neural networks through transient chaos";
Schoenholz et al. 2017, "Deep Information Propagation" for the backward pass under the
gradient-independence assumption; Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of
CNNs" for convolutions.) The theory takes numbers: each layer turns its init spec into a weight
variance itself (σ_w² = Var(W)·fan_in); nothing here imports :mod:`initlab.init`.

>>> from initlab.nn import Network
>>> p = predict(Network([4, 3, 2], "relu", init=["normal(std=0.5)", "lecun_normal"], rng=0))
>>> [round(v, 6) for v in p.preact_var]          # q1 = 4·0.25·1, q2 = 3·(1/3)·(1/2)
[1.0, 0.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from initlab import activations as _acts
from initlab._validation import bad_type, check_number
from initlab.theory._maps import critical_sigma_w2

__all__ = ["Signal", "LayerMF", "Prediction", "predict", "critical_gain", "gaussian_moments", "activation_record",
           "std_of"]


def std_of(var: float) -> float:
    """√var, nan for a negative or nan variance (a layer the theory does not predict).

    >>> std_of(4.0), std_of(-1.0)
    (2.0, nan)
    """
    return math.sqrt(var) if var >= 0 else math.nan


@dataclass(frozen=True)
class Signal:
    """Moments of a signal between layers, pooled over units (and positions): E[x] and E[x²]."""

    mean: float
    sq: float

    @property
    def var(self) -> float:
        return self.sq - self.mean * self.mean


@dataclass
class LayerMF:
    """One layer's mean-field record (what ``propagate`` returns).

    ``preact_*`` describe the layer's pre-activation (for a layer without an activation, its
    output); ``act_*`` its output. Backward: ``d2`` maps E[(∂L/∂out)²] to E[(∂L/∂preact)²]
    (E[φ′(h)²] for a layer with an activation, 1 otherwise) and ``back`` maps E[(∂L/∂preact)²]
    to E[(∂L/∂input)²] (n_out·Var(W) for a dense layer). ``note`` states an approximation.
    """

    kind: str
    out: Signal
    preact_mean: float
    preact_var: float
    d2: float = 1.0
    back: float = 1.0
    sigma_w2: float = math.nan
    sigma_b2: float = math.nan
    width: int = 0
    activation: str = ""
    note: str = ""
    grad_var: float = math.nan
    weight_grad_var: float = math.nan
    in_sq: float = math.nan
    #: a residual block's branch records and α² (their gradients are refilled by the backward fold)
    branch: list["LayerMF"] = field(default_factory=list)
    branch_scale: float = 1.0

    @property
    def act_mean(self) -> float:
        return self.out.mean

    @property
    def act_second_moment(self) -> float:
        return self.out.sq

    @property
    def act_std(self) -> float:
        v = self.out.var
        return math.sqrt(max(v, 0.0)) if math.isfinite(v) else math.nan

    @property
    def preact_std(self) -> float:
        return std_of(self.preact_var)

    @property
    def grad_std(self) -> float:
        return std_of(self.grad_var)


@dataclass
class Prediction:
    """Per-layer records of :func:`predict`, one per top-level layer; columns as lists."""

    layers: list[LayerMF]
    input: Signal
    notes: list[str] = field(default_factory=list)

    def _col(self, name: str) -> list[float]:
        return [float(getattr(r, name)) for r in self.layers]

    @property
    def preact_var(self) -> list[float]:
        return self._col("preact_var")

    @property
    def preact_mean(self) -> list[float]:
        return self._col("preact_mean")

    @property
    def act_mean(self) -> list[float]:
        return self._col("act_mean")

    @property
    def act_std(self) -> list[float]:
        return self._col("act_std")

    @property
    def grad_var(self) -> list[float]:
        return self._col("grad_var")

    def __len__(self) -> int:
        return len(self.layers)


def gaussian_moments(act: _acts.Activation, mu: float, q: float) -> tuple[float, float, float]:
    """(E[φ(h)], E[φ(h)²], E[φ′(h)²]) for h ~ N(μ, q)."""
    if not (math.isfinite(q) and math.isfinite(mu)):
        return math.nan, math.nan, math.nan
    if q <= 0.0:
        f = float(act.fn(np.array([mu]))[0])
        d = float(act.derivative(np.array([mu]))[0])
        return f, f * f, d * d
    if mu == 0.0:
        return float(act.mean(q)), float(act.second_moment(q)), float(act.deriv_second_moment(q))
    x, w = _acts.gaussian_nodes(q, scale=act.scale)
    f = act.fn(x + mu)
    d = act.derivative(x + mu, f)
    return float(np.sum(w * f)), float(np.sum(w * f * f)), float(np.sum(w * d * d))


def activation_record(kind: str, act: _acts.Activation, mu: float, q: float, **kw: Any) -> LayerMF:
    """The record of a layer whose pre-activation is N(μ, q) followed by ``act``."""
    m, s2, d2 = gaussian_moments(act, mu, q)
    return LayerMF(kind=kind, out=Signal(m, s2), preact_mean=mu, preact_var=q, d2=d2, activation=act.spec, **kw)


def fold(layers: Sequence[Any], s: Signal) -> tuple[list[LayerMF], Signal]:
    """Forward fold of ``propagate`` over ``layers`` from the signal ``s``."""
    recs = []
    for layer in layers:
        r = layer.propagate(s)
        r.in_sq = s.sq
        recs.append(r)
        s = r.out
    return recs, s


def backward_fold(recs: Sequence[LayerMF], g: float = 1.0) -> float:
    """Fill ``grad_var`` (E[(∂L/∂preact)²] relative to the output's) backward; returns E[(∂L/∂input)²]."""
    for r in reversed(recs):
        r.grad_var = r.d2 * g
        r.weight_grad_var = r.grad_var * r.in_sq
        if r.branch:
            backward_fold(r.branch, r.branch_scale * r.grad_var)
        g = r.back * r.grad_var
    return g


def predict(network_or_layers: Any, input_var: float = 1.0, input_mean: float = 0.0) -> Prediction:
    """Each layer's predicted pre-activation variance, activation mean/std and gradient variance.

    Args:
        network_or_layers: an :class:`initlab.nn.Network` or a list of its layers (anything with a
            ``propagate(Signal) -> LayerMF`` method).
        input_var: E[x²] of the inputs per coordinate (second moment). input_mean: E[x].

    Exact in the wide limit for dense layers, convolutions with circular padding and residual
    blocks whose branch ends in a zero-mean weight layer; zero padding, pooling and norms state
    their approximation in the record's ``note`` (collected in ``Prediction.notes``).
    """
    layers = getattr(network_or_layers, "layers", network_or_layers)
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        bad_type("network_or_layers", "an initlab.nn.Network or a list of its layers", network_or_layers)
    layers = list(layers)
    for i, layer in enumerate(layers):
        if not callable(getattr(layer, "propagate", None)):
            bad_type("network_or_layers", f"layers with a propagate() method (item {i})", layer)
    q0 = check_number("input_var", input_var, low=0.0)
    m0 = check_number("input_mean", input_mean)
    s0 = Signal(m0, q0)
    recs, _ = fold(layers, s0)
    backward_fold(recs)
    notes = []
    for i, r in enumerate(recs):
        if r.note:
            notes.append(f"layer {i + 1} ({r.kind}): {r.note}")
    return Prediction(layers=recs, input=s0, notes=notes)


def critical_gain(activation: Any, sigma_b2: float = 0.0) -> float:
    """g = √σ_w²* at the edge of chaos (χ₁ = 1) for ``activation`` and bias variance ``sigma_b2``.

    Schoenholz et al. 2017, "Deep Information Propagation". tanh 1, relu √2.

    >>> critical_gain("tanh"), round(critical_gain("relu") ** 2, 12)
    (1.0, 2.0)
    """
    return math.sqrt(float(critical_sigma_w2(_acts.get(activation), sigma_b2)))
