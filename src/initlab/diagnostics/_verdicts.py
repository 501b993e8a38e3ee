"""Verdicts: what is wrong with a probed network, from which layer, and which init fixes it.

Each rule reads the per-layer statistics of a :class:`~initlab.diagnostics.ProbeResult`:

* **vanishing** — (judged on the hidden layers, a linear read-out is left out, and so is a layer
  whose input hooks did not see — after a functional reshape, pooling or residual add it is not
  comparable with the layer before) the activation std
  of the last layer is below ``VANISH`` (0.1) of the larger of
  the input's and the first layer's; it starts at the first layer whose std falls by more than
  ``STEP`` (×0.7) from the layer before (the input for layer 1).
* **exploding** — the last layer's std is above ``1/VANISH`` (10×) that reference; it starts at
  the first layer that grows by more than ×1/STEP.
* **saturation** — more than ``SATURATED`` (20%) of a layer's pre-activations sit where the
  activation is saturated (|φ′| < threshold · max|φ′|, defined by the Activation object).
* **dead** — more than ``DEAD`` (10%) of a layer's units are inactive on the whole batch.
* **collapsed** — the mean pairwise cosine of the samples' pre-activations exceeds ``COLLAPSED``
  (0.95) while the input's is below 0.9 (layers whose input hooks did not see are not judged:
  pooling positive ReLU features raises the cosine without any collapse): every input is mapped to nearly the same direction
  (the ordered phase of Poole et al. 2016, "Exponential expressivity in deep neural networks through
  transient chaos").
* **vanishing_gradient / exploding_gradient** — the RMS √(mean g²) of the per-sample
  g = ∂ℓ/∂(pre-activation) at the first layer is below 1/100 (above 100×) of the last layer's
  (rows without a gradient are skipped); it starts at the first layer, walking from the output,
  whose gradient RMS changes by more than ×0.7 (×1/0.7) from the layer after it. The RMS, not the
  std: under ``loss="sum"`` ∂ℓ/∂output is all ones, whose std is 0.

The recommendation is for the activation of the layer where the problem starts, or, where that
layer has none (linear, unknown, a norm row), for the model's main activation (the most common
one), said so. It puts the activation at the edge of chaos with zero bias (Schoenholz et al.
2017, "Deep Information Propagation"): σ_w² = ``initlab.init.gain(act, "critical")²``
(= :func:`initlab.theory.critical_sigma_w2`), named as the matching scheme (lecun_normal for
σ_w² = 1, kaiming_normal for ReLU's 2, else variance_scaling with that scale). Where that point is
useless (no finite fixed point: gelu, silu, mish, softplus; or, for a saturating activation, more
than ``SATURATED_AT_CRITICAL`` of the units saturated there: sigmoid), it recommends the
second-moment-preserving gain g = 1/√E[φ(z)²] instead and says why.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter

import numpy as np

from initlab import activations as _activations
from initlab.diagnostics._result import LayerStats, ProbeResult, Verdict

__all__ = ["verdicts", "recommend", "VANISH", "STEP", "SATURATED", "DEAD", "COLLAPSED", "GRAD_RATIO"]

VANISH = 0.1
STEP = 0.7
SATURATED = 0.2
DEAD = 0.1
COLLAPSED = 0.95
GRAD_RATIO = 100.0


# More than this fraction of saturated units at the critical fixed point makes the edge of chaos
# useless as an init (sigmoid with zero bias: χ₁ = 1 only at σ_w² ≈ 103, where most units saturate).
SATURATED_AT_CRITICAL = 0.1


def _critical_sigma_w2(act: _activations.Activation) -> tuple[float, str]:
    """(σ_w², why) for ``act``: the edge of chaos with zero bias where it is usable, else the
    second-moment-preserving gain, with the reason in words."""
    from initlab import init as _init
    from initlab import theory as _theory

    try:
        s2 = float(_init.gain(act, method="critical")) ** 2
    except ValueError:  # no edge of chaos with a finite fixed point (gelu, silu, mish, softplus)
        g = float(_init.gain(act, method="second_moment"))
        return g * g, (f"the second-moment-preserving gain for {act.spec}, "
                       "which has no edge of chaos with zero bias and a finite fixed point")
    if act.saturating:
        q_star = float(_theory.fixed_point(act, s2, 0.0)[0])
        sat = (float(act.expect(lambda x: act.saturated_mask(x).astype(np.float64), q_star))
               if math.isfinite(q_star) else 1.0)
        if sat > SATURATED_AT_CRITICAL:
            g = float(_init.gain(act, method="second_moment"))
            return g * g, (
                f"the second-moment-preserving gain for {act.spec}: its edge of chaos with zero bias, "
                f"σ_w² ≈ {s2:.3g}, saturates {sat:.0%} of units"
            )
    return s2, f"the edge of chaos for {act.spec} with zero bias"


def recommend(activation: str | _activations.Activation) -> str:
    """The init that puts ``activation`` at the edge of chaos (or, where the theory has no usable
    critical point, preserves the second moment), as one phrase.

    >>> recommend("relu")
    'use kaiming_normal (σ_w² = 2, the edge of chaos for relu with zero bias)'
    >>> recommend("sigmoid").split(",")[0]
    'use variance_scaling(scale=3.41'
    """
    return _recommend_spec(_activations.get(activation).spec)


@functools.lru_cache(maxsize=256)
def _recommend_spec(spec: str) -> str:
    """:func:`recommend` for one activation spec, cached: the critical point is a root search
    (~0.2 s) and a pure function of the activation, asked for once per verdict."""
    act = _activations.get(spec)
    s2, why = _critical_sigma_w2(act)
    if abs(s2 - 1.0) < 0.01:
        scheme = "lecun_normal"
    elif act.name == "relu" and abs(s2 - 2.0) < 0.01:
        scheme = "kaiming_normal"
    elif act.name == "leaky_relu":
        scheme = f"kaiming_normal(a={act.param:g}, nonlinearity=leaky_relu)"
    else:
        scheme = f"variance_scaling(scale={s2:.3g}, mode=fan_in, distribution=normal)"
    return f"use {scheme} (σ_w² = {s2:.3g}, {why})"


def _describe(st: LayerStats) -> str:
    act = st.activation or "linear"
    if st.weight_std is None:
        return act
    if st.fan_in:
        return f"{act} with weight std {st.weight_std:.3g} (σ_w² = fan_in·Var(W) = {st.fan_in * st.weight_std ** 2:.3g})"
    return f"{act} with weight std {st.weight_std:.3g}"


def _main_activation(layers: list[LayerStats]) -> str | None:
    names = [s.activation for s in layers if s.activation not in (None, "linear")]
    if not names:
        return None
    return Counter(names).most_common(1)[0][0]


def _ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or not math.isfinite(a) or not math.isfinite(b):
        return math.nan
    if b == 0:
        return math.inf if a > 0 else 1.0
    return a / b


def _num(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures, exponents without padding (1e-09 → 1e-9)."""
    if not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), f"{x:.{digits}g}")


def _factor(x: float) -> str:
    """A growth factor for a sentence: 2 significant figures below 10, whole numbers up to 1e4."""
    if math.isfinite(x) and x < 10:
        return _num(x, 2)
    if math.isfinite(x) and x < 1e4:
        return f"{x:.0f}"
    return _num(x, 2)


def _scale_message(kind: str, stds: list[float], prev: list[float], idx: list[int], i0: int) -> str:
    """The vanishing/exploding sentence: how the activation std changes from where it starts.

    ``stds``: activation std per judged layer (numbered ``idx``); ``prev``: the std before each
    (the input's first); ``i0``: the layer where the change starts. The per-layer factor is the
    geometric mean over the layers from ``i0`` to the last, from the std before ``i0``.

    >>> _scale_message("vanishing", [0.5, 0.1, 0.02], [1.0, 0.5, 0.1], [1, 2, 3], 0)
    'activation std falls by a factor of ~3.7 per layer from layer 1 on (1 at the input → 0.02 at layer 3)'
    >>> _scale_message("vanishing", [0.5, 0.0, 0.0], [1.0, 0.5, 0.0], [1, 2, 3], 1)
    'activation std falls to 0 at layer 2 (0.5 at layer 1)'
    >>> _scale_message("exploding", [1.0, 1.1, 166.0], [1.0, 1.0, 1.1], [1, 2, 3], 2)
    'activation std grows by a factor of ~151 at layer 3 (1.1 at layer 2 → 166 at layer 3)'
    """
    a, last, n = prev[i0], stds[-1], len(stds) - i0
    start = "the input" if i0 == 0 else f"layer {idx[i0 - 1]}"
    span = f"({_num(a)} at {start} → {_num(last)} at layer {idx[-1]})"
    where = f"at layer {idx[i0]}" if n == 1 else f"per layer from layer {idx[i0]} on"
    if kind == "vanishing":
        if last == 0:
            # the first layer from which every std is exactly 0
            j = max((i for i, v in enumerate(stds) if v != 0), default=-1) + 1
            j = max(j, i0)
            return f"activation std falls to 0 {'at' if j == i0 else 'by'} layer {idx[j]} ({_num(a)} at {start})"
        return f"activation std falls by a factor of ~{_factor((a / last) ** (1.0 / n))} {where} {span}"
    if not math.isfinite(last):
        j = next((i for i, v in enumerate(stds) if not math.isfinite(v)), len(stds) - 1)
        return f"activation std overflows to {_num(stds[j])} by layer {idx[j]} ({_num(a)} at {start})"
    if a == 0:
        return f"activation std grows from 0 at {start} to {_num(last)} at layer {idx[-1]}"
    return f"activation std grows by a factor of ~{_factor((last / a) ** (1.0 / n))} {where} {span}"


def verdicts(result: ProbeResult) -> list[Verdict]:
    """Every problem the rules above find, in the order of the layer where it starts."""
    layers = result.layers
    if not layers:
        return []
    main = _main_activation(layers)
    main_rec = (f"{recommend(main)} — for {main}, the model's main activation" if main is not None
                else "use a variance-preserving init (lecun_normal)")
    out: list[Verdict] = []

    def rec_for(st: LayerStats) -> str:
        if st.activation not in (None, "linear"):
            return recommend(st.activation)
        return main_rec

    def at(i: int) -> LayerStats:
        return layers[i]

    # forward scale, over the hidden layers (a linear read-out layer is not judged), leaving out
    # layers whose input hooks did not see (not comparable with the layer before)
    chain = [s for s in layers if s.input_seen]
    hidden = [s for s in chain if s.activation not in (None, "linear")]
    scale_layers = hidden if len(hidden) >= 2 else chain
    if scale_layers:
        stds = [s.std for s in scale_layers]
        ref = max(result.input_std, stds[0])
        last = stds[-1]
        prev = [result.input_std] + stds[:-1]
        idx = [s.index for s in scale_layers]
        if ref > 0 and last < VANISH * ref:
            i0 = next((i for i, (a, b) in enumerate(zip(stds, prev)) if _ratio(a, b) < STEP), len(stds) - 1)
            st = scale_layers[i0]
            out.append(Verdict("vanishing", st.index,
                               f"{_describe(st)}: {_scale_message('vanishing', stds, prev, idx, i0)}", rec_for(st)))
        elif ref > 0 and last > ref / VANISH:
            i0 = next((i for i, (a, b) in enumerate(zip(stds, prev)) if _ratio(a, b) > 1 / STEP), 0)
            st = scale_layers[i0]
            out.append(Verdict("exploding", st.index,
                               f"{_describe(st)}: {_scale_message('exploding', stds, prev, idx, i0)}", rec_for(st)))

    # saturation (None: the layer's activation cannot saturate)
    sat = [i for i, s in enumerate(layers) if s.saturated is not None and s.saturated > SATURATED]
    if sat:
        i0 = sat[0]
        run = [float(layers[i].saturated or 0.0) for i in sat]
        where = f"from layer {at(i0).index} on" if len(sat) > 1 else f"at layer {at(i0).index}"
        out.append(Verdict("saturation", at(i0).index,
                           f"{_describe(at(i0))}: {100 * sum(run) / len(run):.0f}% of units saturated {where}",
                           rec_for(at(i0))))

    # dead units (None: the layer's units cannot die)
    dead = [i for i, s in enumerate(layers) if s.dead is not None and s.dead > DEAD]
    if dead:
        i0 = dead[0]
        worst = max(float(layers[i].dead or 0.0) for i in dead)
        out.append(Verdict("dead", at(i0).index,
                           f"{_describe(at(i0))}: {100 * float(at(i0).dead or 0.0):.0f}% of units dead (inactive on "
                           f"the whole batch) from layer {at(i0).index} (up to {100 * worst:.0f}%)",
                           rec_for(at(i0)) + "; keep biases at zero"))

    # collapsed correlations (not judged where hooks did not see the layer's input)
    cin = result.input_cosine
    cos = [s.cosine if s.input_seen else None for s in layers]
    if (cin is None or not cin > 0.9) and any(c is not None and c > COLLAPSED for c in cos):
        i0 = next(i for i, c in enumerate(cos) if c is not None and c > COLLAPSED)
        cin_txt = "—" if cin is None else f"{cin:.2f}"
        out.append(Verdict("collapsed", at(i0).index,
                           f"{_describe(at(i0))}: representations of different inputs collapse from layer {at(i0).index} "
                           f"(mean pairwise cosine {cos[i0]:.3f}, input {cin_txt})", rec_for(at(i0))))

    # gradients: the RMS of the per-sample deltas, over the rows that have one
    glayers = [s for s in layers if s.grad_rms is not None and math.isfinite(s.grad_rms)]
    if result.backward and len(glayers) > 1:
        g = [float(s.grad_rms) for s in glayers]  # type: ignore[arg-type]
        g_last, g_first = g[-1], g[0]
        r = _ratio(g_first, g_last)
        nxt: list[float | None] = [*g[1:], None]
        first, final = glayers[0].index, glayers[-1].index
        if r < 1 / GRAD_RATIO:
            i0 = next((i for i in range(len(g) - 2, -1, -1) if _ratio(g[i], nxt[i]) < STEP), 0)
            st = glayers[i0]
            out.append(Verdict("vanishing_gradient", st.index,
                               f"{_describe(st)}: gradient RMS shrinks towards the input from layer {st.index} "
                               f"(layer {first}: {g_first:.3g}, layer {final}: {g_last:.3g})", rec_for(st)))
        elif r > GRAD_RATIO:
            i0 = next((i for i in range(len(g) - 2, -1, -1) if _ratio(g[i], nxt[i]) > 1 / STEP), 0)
            st = glayers[i0]
            out.append(Verdict("exploding_gradient", st.index,
                               f"{_describe(st)}: gradient RMS grows towards the input from layer {st.index} "
                               f"(layer {first}: {g_first:.3g}, layer {final}: {g_last:.3g})", rec_for(st)))
    out.sort(key=lambda v: v.layer)
    return out
