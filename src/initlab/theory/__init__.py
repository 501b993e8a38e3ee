"""Mean-field theory of wide random networks, and its prediction for a concrete stack.

* :func:`length_map`, :func:`correlation_map`, :func:`fixed_point` (q*, c*), :func:`chi1`,
  :func:`depth_scales` (ξ_q, ξ_c), :func:`critical_sigma_w2` (edge of chaos),
  :func:`trainable_depth` (≈ 6 ξ_c), :func:`phase`, :func:`point` — Poole et al. 2016,
  "Exponential expressivity in deep neural networks through transient chaos"; Schoenholz et al.
  2017, "Deep Information Propagation"; Pennington, Schoenholz & Ganguli 2017, "Resurrecting the
  sigmoid in deep learning through dynamical isometry".
* :func:`predict`: per-layer prediction for any :class:`initlab.nn.Network` (dense, conv,
  residual, norm layers) by folding each layer's ``propagate``; :func:`critical_gain`.
* The theory takes numbers: it imports neither :mod:`initlab.init` nor :mod:`initlab.nn` (each
  layer turns its init spec into Var(W) itself; ``init.gain(..., "critical")`` calls
  :func:`critical_gain`). The init-spec convenience ``predict_stack(sizes, activations, inits)``
  lives in :mod:`initlab.nn` (:func:`initlab.nn.predict_stack`), beside the Dense layers it builds.
* :func:`phase_diagram` / :func:`plot_phase_diagram`: χ₁ = 1 line and ξ_c heat map over (σ_w², σ_b²).

Gaussian expectations come from :mod:`initlab.activations` (closed forms for the ReLU family —
the arc-cosine kernel of Cho & Saul 2009, "Kernel Methods for Deep Learning" — and erf;
adaptive quadrature otherwise).

>>> from initlab import theory
>>> theory.critical_sigma_w2("tanh"), theory.critical_sigma_w2("relu")
(1.0, 2.0)
"""

from initlab.theory._maps import (
    MeanFieldPoint,
    chi1,
    correlation_map,
    critical_sigma_w2,
    depth_scales,
    fixed_point,
    length_map,
    phase,
    point,
    trainable_depth,
)
from initlab.theory._phase import PhaseDiagram, phase_diagram, plot_phase_diagram
from initlab.theory._predict import LayerMF, Prediction, Signal, critical_gain, predict

__all__ = [
    "MeanFieldPoint",
    "length_map",
    "correlation_map",
    "fixed_point",
    "chi1",
    "depth_scales",
    "critical_sigma_w2",
    "trainable_depth",
    "phase",
    "point",
    "predict",
    "Prediction",
    "LayerMF",
    "Signal",
    "critical_gain",
    "PhaseDiagram",
    "phase_diagram",
    "plot_phase_diagram",
]
