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
from initlab.diagnostics._weight_init import excess_kurtosis, structure
from initlab.diagnostics._stats import HIST_SAMPLE, hist_edges, histogram, mean_pairwise_cosine, moments, subsample

__all__ = ["LOSSES", "bounded_range", "new_layer", "preact_stats", "act_stats", "weight_stats", "forward_stats", "backward_stats", "finish_histograms", "loss_gradient"]

LOSSES = ("mse", "ce", "sum")


def new_layer(index: int, name: str, kind: str, activation: Activation | None) -> LayerStats:
    """An empty LayerStats (forward fields filled by :func:`preact_stats` / :func:`act_stats`)."""
    return LayerStats(index=index, name=name, kind=kind, activation=None if activation is None else activation.spec,
                      width=0, mean=math.nan, std=math.nan, sq_mean=math.nan, chan_var=math.nan,
                      min=math.nan, max=math.nan)


def preact_stats(st: LayerStats, preact: np.ndarray, samples: dict[str, Any],
                 hist_sample: int | None = HIST_SAMPLE, per_sample: np.ndarray | None = None) -> None:
    """Pre-activation statistics (and the cosine of samples); keeps the per-unit maxima for the
    dead-unit test in ``samples["chan_max"]``.

    ``preact`` is laid out [rows, units, *rest] (units on axis 1: per-unit statistics are over the
    other axes); ``per_sample`` is the same values with the batch on axis 0, for the cosine between
    samples (default ``preact`` itself)."""
    mp = moments(preact)
    st.preact_mean, st.preact_std, st.preact_sq_mean = mp.mean, mp.std, mp.sq_mean
    st.preact_min, st.preact_max = mp.min, mp.max
    st.width = int(preact.shape[1]) if preact.ndim >= 2 else 1
    st.cosine = mean_pairwise_cosine(preact if per_sample is None else per_sample)
    samples["preact"] = subsample(preact, hist_sample)
    samples["chan_max"] = mp.chan_max
    samples["preact_moments"] = mp


def act_stats(st: LayerStats, act: np.ndarray, activation: Activation | None, preact: np.ndarray | None,
              samples: dict[str, Any], hist_sample: int | None = HIST_SAMPLE,
              per_sample: np.ndarray | None = None) -> None:
    """Activation-output statistics, fraction saturated (needs ``preact`` or a derivative from the
    output) and fraction of dead units (from the pre-activation maxima). Layout as in
    :func:`preact_stats` (``per_sample``: batch on axis 0, for the cosine)."""
    same = preact is act and "preact_moments" in samples
    ma = samples["preact_moments"] if same else moments(act)
    st.mean, st.std, st.sq_mean, st.chan_var, st.min, st.max = ma.mean, ma.std, ma.sq_mean, ma.chan_var, ma.min, ma.max
    samples["act_moments"] = ma
    st.width = int(act.shape[1]) if act.ndim >= 2 else 1
    st.activation = None if activation is None else activation.spec
    samples["act"] = samples["preact"] if same else subsample(act, hist_sample)
    # None where the quantity does not apply (no saturating side / cannot die / linear / unknown)
    st.saturated = None
    st.dead = None
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
        st.cosine = mean_pairwise_cosine(act if per_sample is None else per_sample)


def weight_stats(st: LayerStats, weight: np.ndarray | None) -> None:
    """Std, fans, exact structure and excess kurtosis of the layer's weight (torch layout)."""
    if weight is not None:
        w = np.ascontiguousarray(weight)
        st.weight_std = moments(w.reshape(-1)).std
        if weight.ndim >= 2:
            fan_in, fan_out = compute_fans(tuple(weight.shape))
            st.fan_in, st.fan_out = int(fan_in), int(fan_out)
        else:
            st.fan_in = st.fan_out = None
        st.weight_init = structure(w)
        st.weight_kurtosis = excess_kurtosis(w)


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
    batch: int,
    hist_sample: int | None = HIST_SAMPLE,
) -> None:
    """Fill the backward statistics of ``st`` in place.

    ``grad_preact`` / ``grad_act`` are the per-sample deltas (the gradient of the per-sample loss
    summed over the batch, row b = ∂ℓ_b/∂·): ``grad_std`` and ``grad_rms`` = √(mean g²).
    ``grad_weight`` is Σ_b ∂ℓ_b/∂W; it is divided by ``batch`` so ``grad_weight_std`` and
    ``grad_weight_ratio`` are those of the mean loss (1/B) Σ_b ℓ_b and do not grow with B.
    """
    if grad_preact is not None:
        mg = moments(grad_preact)
        st.grad_std = mg.std
        st.grad_rms = math.sqrt(max(mg.std * mg.std + mg.mean * mg.mean, 0.0))
        samples["grad"] = subsample(grad_preact, hist_sample)
    if grad_act is not None:
        st.grad_act_std = st.grad_std if grad_act is grad_preact else moments(grad_act).std
    if grad_weight is not None:
        gw = np.ascontiguousarray(grad_weight).reshape(-1).astype(np.float64) / max(int(batch), 1)
        st.grad_weight_std = moments(gw).std
        if weight is not None:
            w = np.ascontiguousarray(weight).reshape(-1)
            wn = float(np.linalg.norm(w.astype(np.float64)))
            gn = float(np.linalg.norm(gw))
            st.grad_weight_ratio = gn / wn if wn > 0 else math.inf


def bounded_range(activation: Activation | None) -> tuple[float, float] | None:
    """The output range (lo, hi) of an activation bounded on both sides, read off the activation
    itself: φ(∓1e3) when φ has levelled off there (|φ(±1e6) − φ(±1e3)| < 1e-2); else None.

    >>> from initlab.activations import get
    >>> bounded_range(get("tanh")), bounded_range(get("sigmoid")), bounded_range(get("relu"))
    ((-1.0, 1.0), (0.0, 1.0), None)
    """
    if activation is None:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        near = np.asarray(activation.forward(np.array([-1e3, 1e3])), dtype=np.float64)
        far = np.asarray(activation.forward(np.array([-1e6, 1e6])), dtype=np.float64)
    if not (np.all(np.isfinite(near)) and np.all(np.isfinite(far))) or np.any(np.abs(far - near) >= 1e-2):
        return None
    lo, hi = float(min(near)), float(max(near))
    return (lo, hi) if hi > lo else None


def finish_histograms(
    layers: list[LayerStats],
    samples: list[dict[str, Any]],
    activations: list[Activation | None],
    bins: int,
) -> None:
    """Histograms with fixed binning per group of layers, so the rows of a group compare (as the
    seeds' ``sharex`` plots):

    * activation outputs of a layer with a bounded activation (tanh: [−1, 1], sigmoid: [0, 1],
      :func:`bounded_range`) are binned on that range, so saturation shows as peaks in the end
      bins whatever the other layers do; layers with the same range share the binning;
    * every other layer's activation output (linear read-out, ReLU, norm rows...) shares one
      binning from the smallest to the largest sampled value over those layers;
    * pre-activations and gradients: one binning per quantity over all layers.
    """
    ranges = [bounded_range(a) for a in activations]
    for key, attr in (("act", "hist"), ("preact", "preact_hist"), ("grad", "grad_hist")):
        groups: dict[tuple[float, float] | None, list[int]] = {}
        for i, s in enumerate(samples):
            if key in s:
                groups.setdefault(ranges[i] if key == "act" else None, []).append(i)
        for rng_, members in groups.items():
            edges = hist_edges([samples[i][key] for i in members], bins, bounds=rng_)
            for i in members:
                setattr(layers[i], attr, histogram(samples[i][key], edges))


def loss_gradient(out: np.ndarray, y: Any, loss: str, rng: np.random.Generator) -> np.ndarray:
    """∂L/∂(output) for the per-sample loss summed over the batch: row b is ∂ℓ_b/∂o_b, sample b's
    own gradient, independent of the batch size (the probe divides ∂L/∂W by the batch size).

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
