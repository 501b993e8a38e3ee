"""Probing an :class:`initlab.nn.Network`: one captured forward pass and one backward pass."""

from __future__ import annotations

from typing import Any

import numpy as np

from initlab.diagnostics._measure import (
    act_stats,
    backward_stats,
    finish_histograms,
    loss_gradient,
    new_layer,
    preact_stats,
    weight_stats,
)
from initlab.diagnostics._result import LayerStats, ProbeResult
from initlab.diagnostics._stats import HIST_SAMPLE, mean_pairwise_cosine, moments
from initlab.diagnostics._theory import add_theory, empirical_spec, needs_fan_in
from initlab.init import compute_fans

__all__ = ["probe_network", "forward_trace_stats", "backward_trace_stats", "layer_weight"]


def probe_network(
    net: Any,
    x: Any,
    *,
    y: Any,
    loss: str,
    backward: bool,
    theory: bool,
    rng: np.random.Generator,
    bins: int,
    hist_sample: int | None = HIST_SAMPLE,
) -> ProbeResult:
    """Statistics of every layer of ``net`` on the batch ``x`` (see :func:`initlab.probe`): one row
    per entry of ``net.layers`` (a Residual block is one row, its output)."""
    out, trace = net.forward(x, capture=True)
    xin = trace[0].inputs
    mi = moments(xin)
    layers, samples = forward_trace_stats(net, trace, hist_sample)
    if backward:
        g = loss_gradient(out, y, loss, rng)
        net.backward(g, trace)
        backward_trace_stats(net, trace, layers, samples, hist_sample)
    finish_histograms(layers, samples, [la.activation for la in net.layers], bins)
    result = ProbeResult(
        layers=layers, input_mean=mi.mean, input_std=mi.std, input_cosine=mean_pairwise_cosine(xin),
        loss=loss if backward else None, backward=backward, theory=False, model="network", batch=int(xin.shape[0]),
    )
    dense = all(getattr(la, "kind", "") == "dense" for la in net.layers)
    if theory and not dense:
        result.theory = _general_theory(net, layers, mi.std ** 2 + mi.mean ** 2, mi.mean, result.notes)
    if theory and dense:
        inits = [_spec_or_empirical(la.init_spec, la.weight, "weight", i + 1, result.notes)
                 for i, la in enumerate(net.layers)]
        binits = [_spec_or_empirical(la.bias_init_spec, la.bias, "bias", i + 1, result.notes,
                                     fan_in=int(compute_fans(la.weight.shape)[0]))
                  for i, la in enumerate(net.layers)]
        result.theory = add_theory(layers, list(net.sizes), [la.activation for la in net.layers], inits, binits,
                                   mi.std ** 2 + mi.mean ** 2, result.notes)
    return result


def forward_trace_stats(net: Any, trace: list[Any], hist_sample: int | None = HIST_SAMPLE,
                        ) -> tuple[list[LayerStats], list[dict[str, Any]]]:
    """One :class:`LayerStats` per layer of ``net`` from a captured forward ``trace`` (rows named
    ``layers.i``), and each row's histogram subsamples. Shared by the probe and the
    :class:`~initlab.diagnostics.Probe` training callback, so both measure the same way."""
    layers, samples = [], []
    for i, (layer, tr) in enumerate(zip(net.layers, trace)):
        s: dict[str, Any] = {}
        st = new_layer(i + 1, f"layers.{i}", layer.kind, layer.activation)
        preact_stats(st, tr.preact, s, hist_sample)
        act_stats(st, tr.act, layer.activation, tr.preact, s, hist_sample)
        weight_stats(st, _weight(layer))
        layers.append(st)
        samples.append(s)
    return layers, samples


def backward_trace_stats(net: Any, trace: list[Any], layers: list[LayerStats], samples: list[dict[str, Any]],
                         hist_sample: int | None = HIST_SAMPLE, *, scale: float = 1.0,
                         weights: list[Any] | None = None) -> None:
    """Fill the backward statistics of ``layers`` from the gradients in ``trace`` (after
    ``net.backward``). The trace must hold the per-sample deltas Σ_b ∂ℓ_b/∂·; gradients of another
    normalisation are multiplied by ``scale`` first. ``weights``: the weights the gradients were
    taken at (default: the layers' current ones)."""
    batch = int(trace[0].inputs.shape[0])
    for k, (st, layer, tr, s) in enumerate(zip(layers, net.layers, trace, samples)):
        gp, ga, gw = tr.grad_preact, tr.grad_act, tr.grad_weight
        if scale != 1.0:
            same = ga is gp
            gp = None if gp is None else gp * scale
            ga = gp if same else (None if ga is None else ga * scale)
            gw = None if gw is None else gw * scale
        w = _weight(layer) if weights is None else weights[k]
        backward_stats(st, grad_preact=gp, grad_act=ga, grad_weight=gw, weight=w, samples=s, batch=batch,
                       hist_sample=hist_sample)


def layer_weight(layer: Any) -> np.ndarray | None:
    """The layer's weight array (None for a layer without one, or a block)."""
    return _weight(layer)


def _general_theory(net: Any, layers: list[Any], input_sq: float, input_mean: float, notes: list[str]) -> bool:
    """Theory columns for any layer list: :func:`initlab.theory.predict` from the layers' init specs
    (values set by hand are not detected here, unlike the Dense path); non-finite predictions
    (max pooling and after) are left empty. Gradients are scaled to the last layer's measured rms."""
    import math

    from initlab.theory import predict

    pred = predict(net, input_var=input_sq, input_mean=input_mean)
    notes.extend(pred.notes)

    def fin(v: float) -> float | None:
        return v if math.isfinite(v) else None

    for st, r in zip(layers, pred.layers):
        st.theory_std = fin(r.act_std)
        st.theory_preact_std = fin(r.preact_std) if r.preact_var >= 0 else None
    last, g_last = layers[-1], pred.layers[-1].grad_var
    if last.grad_rms is not None and math.isfinite(g_last) and g_last > 0:
        scale = last.grad_rms / math.sqrt(g_last)
        for st, r in zip(layers, pred.layers):
            st.theory_grad_std = fin(math.sqrt(r.grad_var) * scale) if r.grad_var >= 0 else None
    return True


def _weight(layer: Any) -> np.ndarray | None:
    """The layer's weight array (None for a layer without one, or a block)."""
    if layer.params and layer.params[0].name == "weight" and not layer.children():
        return layer.arrays[0]
    return None


def _spec_or_empirical(spec: Any, values: np.ndarray, what: str, index: int, notes: list[str],
                       fan_in: int | None = None) -> Any:
    """The layer's init spec if its theoretical second moment matches the actual values (within
    6 standard errors of a Gaussian's mean square, √(2/n), and at least 5%), else a normal spec
    with the measured second moment (the values were set by hand)."""
    m2 = float(np.mean(np.square(values, dtype=np.float64)))
    if spec is not None:
        try:
            from initlab import init as _init

            initializer = _init.get(spec)
            if what == "bias" and fan_in is not None and needs_fan_in(initializer):
                mom = initializer.moments(values.shape, fan_in=fan_in)
            else:
                mom = initializer.moments(values.shape)
            want = float(mom["var"]) + float(mom["mean"]) ** 2
            if (want == 0 and m2 == 0) or (want > 0 and abs(m2 / want - 1) < max(0.05, 6.0 * (2.0 / values.size) ** 0.5)):
                return spec
        except (ImportError, AttributeError, ValueError, TypeError, KeyError):
            pass
        notes.append(f"layer {index}: {what} values do not follow their spec {spec!s}; "
                     "theory uses their measured second moment")
    return empirical_spec(float(np.sqrt(m2)))
