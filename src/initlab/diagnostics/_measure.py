"""Turning one layer's captured arrays into a :class:`LayerStats` (shared by both probes).

The NumPy probe and the torch probe hand the same arrays (pre-activation, activation, gradients,
weights; torch tensors as zero-copy NumPy views on the CPU) to these functions, so the two give
the same statistics for the same network.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from initlab._validation import check_choice
from initlab.activations import Activation
from initlab.init import compute_fans
from initlab.diagnostics._result import LayerStats
from initlab.diagnostics._stats import HIST_SAMPLE, histogram, mean_pairwise_cosine, moments, subsample

__all__ = ["LOSSES", "new_layer", "preact_stats", "act_stats", "weight_stats", "forward_stats", "backward_stats", "finish_histograms", "loss_gradient"]

LOSSES = ("mse", "ce", "sum")


def new_layer(index: int, name: str, kind: str, activation: Activation | None) -> LayerStats:
    """An empty LayerStats (forward fields filled by :func:`preact_stats` / :func:`act_stats`)."""
    return LayerStats(index=index, name=name, kind=kind, activation=None if activation is None else activation.spec,
                      width=0, mean=math.nan, std=math.nan, sq_mean=math.nan, chan_var=math.nan,
                      min=math.nan, max=math.nan)


def preact_stats(st: LayerStats, preact: np.ndarray, samples: dict[str, Any],
                 hist_sample: int | None = HIST_SAMPLE) -> None:
    """Pre-activation statistics (and the cosine of samples); keeps the per-unit maxima for the
    dead-unit test in ``samples["chan_max"]``."""
    mp = moments(preact)
    st.preact_mean, st.preact_std, st.preact_sq_mean = mp.mean, mp.std, mp.sq_mean
    st.preact_min, st.preact_max = mp.min, mp.max
    st.width = int(preact.shape[1]) if preact.ndim >= 2 else 1
    st.cosine = mean_pairwise_cosine(preact)
    samples["preact"] = subsample(preact, hist_sample)
    samples["chan_max"] = mp.chan_max
    samples["preact_moments"] = mp


def act_stats(st: LayerStats, act: np.ndarray, activation: Activation | None, preact: np.ndarray | None,
              samples: dict[str, Any], hist_sample: int | None = HIST_SAMPLE) -> None:
    """Activation-output statistics, fraction saturated (needs ``preact`` or a derivative from the
    output) and fraction of dead units (from the pre-activation maxima)."""
    same = preact is act and "preact_moments" in samples
    ma = samples["preact_moments"] if same else moments(act)
    st.mean, st.std, st.sq_mean, st.chan_var, st.min, st.max = ma.mean, ma.std, ma.sq_mean, ma.chan_var, ma.min, ma.max
    st.width = int(act.shape[1]) if act.ndim >= 2 else 1
    st.activation = None if activation is None else activation.spec
    samples["act"] = samples["preact"] if same else subsample(act, hist_sample)
    if activation is not None and activation.saturating:
        if preact is None and activation.deriv_from_output is None:
            st.saturated = math.nan
        else:
            x = act if preact is None else preact
            st.saturated = float(np.count_nonzero(activation.saturated_mask(x, act))) / act.size
    if activation is not None and activation.can_die and "chan_max" in samples:
        # the inactive set of the ReLU family is a half-line, so a unit is inactive on the whole
        # batch exactly when it is inactive at its largest pre-activation
        st.dead = float(np.mean(activation.inactive_mask(samples["chan_max"])))
    if st.cosine is None:
        st.cosine = mean_pairwise_cosine(act)


def weight_stats(st: LayerStats, weight: np.ndarray | None) -> None:
    """Std and fan-in of the layer's weight."""
    if weight is not None:
        w = np.ascontiguousarray(weight).reshape(-1)
        st.weight_std = moments(w).std
        st.fan_in = int(compute_fans(tuple(weight.shape))[0]) if weight.ndim >= 2 else None


def forward_stats(
    *,
    index: int,
    name: str,
    kind: str,
    activation: Activation | None,
    preact: np.ndarray | None,
    act: np.ndarray,
    weight: np.ndarray | None,
    samples: dict[str, Any],
    hist_sample: int | None = HIST_SAMPLE,
) -> LayerStats:
    """Forward statistics of one layer whose arrays are all at hand; stores histogram subsamples
    in ``samples``."""
    st = new_layer(index, name, kind, activation)
    if preact is not None:
        preact_stats(st, preact, samples, hist_sample)
    act_stats(st, act, activation, preact, samples, hist_sample)
    weight_stats(st, weight)
    return st


def backward_stats(
    st: LayerStats,
    *,
    grad_preact: np.ndarray | None,
    grad_act: np.ndarray | None,
    grad_weight: np.ndarray | None,
    weight: np.ndarray | None,
    samples: dict[str, Any],
    hist_sample: int | None = HIST_SAMPLE,
) -> None:
    """Fill the backward statistics of ``st`` in place."""
    if grad_preact is not None:
        st.grad_std = moments(grad_preact).std
        samples["grad"] = subsample(grad_preact, hist_sample)
    if grad_act is not None:
        st.grad_act_std = st.grad_std if grad_act is grad_preact else moments(grad_act).std
    if grad_weight is not None:
        gw = np.ascontiguousarray(grad_weight).reshape(-1)
        st.grad_weight_std = moments(gw).std
        if weight is not None:
            w = np.ascontiguousarray(weight).reshape(-1)
            wn = float(np.linalg.norm(w.astype(np.float64)))
            gn = float(np.linalg.norm(gw.astype(np.float64)))
            st.grad_weight_ratio = gn / wn if wn > 0 else math.inf


def _edges(values: list[np.ndarray], bins: int, bounded: tuple[float, float] | None) -> np.ndarray:
    finite = [v[np.isfinite(v)] for v in values if v.size]
    lo = min((float(v.min()) for v in finite if v.size), default=-1.0)
    hi = max((float(v.max()) for v in finite if v.size), default=1.0)
    if bounded is not None:
        lo, hi = min(lo, bounded[0]), max(hi, bounded[1])
    if not hi > lo:
        c = lo
        lo, hi = c - 1.0, c + 1.0
    return np.linspace(lo, hi, bins + 1)


def finish_histograms(
    layers: list[LayerStats],
    samples: list[dict[str, Any]],
    activations: list[Activation | None],
    bins: int,
) -> None:
    """Histograms with ONE binning per quantity for all layers (so the rows compare, as the
    seeds' ``sharex`` plots): equal-width bins from the smallest to the largest sampled value over
    all layers, widened to the activation's range when every layer's activation is bounded
    (tanh: [−1, 1], sigmoid: [0, 1])."""
    bounded = None
    acts = [a for a in activations if a is not None]
    if acts and all(a.saturating for a in acts):
        ends = [a.forward(np.array([-60.0, 60.0])) for a in acts]
        bounded = (min(float(e[0]) for e in ends), max(float(e[1]) for e in ends))
    for key, attr, bnd in (("act", "hist", bounded), ("preact", "preact_hist", None), ("grad", "grad_hist", None)):
        vals = [s[key] for s in samples if key in s]
        if not vals:
            continue
        edges = _edges(vals, bins, bnd)
        for st, s in zip(layers, samples):
            if key in s:
                setattr(st, attr, histogram(s[key], edges))


def loss_gradient(out: np.ndarray, y: Any, loss: str, rng: np.random.Generator) -> np.ndarray:
    """∂L/∂(output) for the per-sample loss summed over the batch (independent of batch size).

    * ``"mse"``: ℓ = ½‖o − y‖², gradient o − y; with ``y=None`` the targets are N(0, 1) draws from
      ``rng`` (the same shape as the output).
    * ``"ce"``: ℓ = −log softmax(o)[y], gradient softmax(o) − onehot(y); ``y`` integer labels, or
      uniform random labels from ``rng`` when None.
    * ``"sum"``: ℓ = Σ_j o_j, gradient 1.

    >>> import numpy as np
    >>> loss_gradient(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]), "mse", np.random.default_rng(0)).tolist()
    [[1.0, 2.0]]
    """
    check_choice("loss", loss, LOSSES)
    o = np.asarray(out, dtype=np.float64)
    batch = o.shape[0]
    o2 = o.reshape(batch, -1)
    if loss == "sum":
        g = np.ones_like(o2)
    elif loss == "mse":
        if y is None:
            t = rng.standard_normal(o2.shape)
        else:
            t = np.asarray(y, dtype=np.float64)
            if t.size != o2.size:
                raise ValueError(
                    f"The 'y' argument must have one target per output value for loss='mse' "
                    f"(shape {tuple(o.shape)}); got shape {t.shape}."
                )
            t = t.reshape(o2.shape)
        g = o2 - t
    else:
        k = o2.shape[1]
        if y is None:
            lab = rng.integers(0, k, size=batch)
        else:
            lab = np.asarray(y).reshape(-1)
            if lab.shape[0] != batch or not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0 or lab.max() >= k:
                raise ValueError(
                    f"The 'y' argument must be {batch} integer labels in [0, {k}) for loss='ce'; "
                    f"got {lab.dtype} array of shape {np.shape(y)}."
                )
        z = o2 - o2.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(batch), lab] -= 1.0
        g = p
    return g.reshape(o.shape).astype(np.asarray(out).dtype, copy=False)
