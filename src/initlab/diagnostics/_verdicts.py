"""Verdicts: what is wrong with a probed network, from which layer, which init fixes it, and the fix
as data (``Verdict.fix``, an :func:`initlab.apply` rules dict or preset).

Each rule reads the per-layer statistics of a :class:`~initlab.diagnostics.ProbeResult` and uses
each row's ``kind`` to decide what it may compare; rows of kinds it does not know are skipped.

**Rows the rules compare.** Norm rows (a ``kind`` containing "norm": BatchNorm, LayerNorm…) have a
weight that is a gain, not an init scale: it is never read as "weight std". A row whose input the
probe did not see (``input_seen`` False), a row of a kind that changes what a tensor holds
(``SEGMENT_KINDS``: pooling, residual adds, attention, RNNs, embeddings, reshapes) and the step
from convolution rows to dense rows (a flatten or a pooling the hooks may not see) start a new
**segment**: rows are compared only with rows of the same segment.

**What is in place.** A weight row's init is named from what the probe measured on the tensor
(:mod:`initlab.diagnostics._weight_init`): an exact structure where it has one (zeros,
constant(value=c), orthogonal(gain=g) with W·Wᵀ = g²·I, eye, delta_orthogonal(gain=g) with zero
off-centre taps and an orthogonal centre, dirac); else σ_w² = fan_in·std(W)² is matched against
the variance-scaling schemes for the row's fans (lecun σ_w² = 1, He 2 with fan_in and
2·fan_in/fan_out with fan_out, He with the row's leaky slope, torch's default kaiming_uniform(a=√5)
1/3, Xavier 2·fan_in/(fan_in + fan_out), the recommended one) within 4 standard errors √(2/n) of a
variance estimate from n = fan_in·width weights, and named for the distribution its kurtosis fits
(kaiming_normal, kaiming_uniform, he_truncated_normal; "kaiming scale" when the sample is too
small to tell, or the kurtosis was not measured, as in a watch); an init that matches none is described by its measured std ("weight std
0.1 … normal-like"), never given a scheme's name. The message quotes the matched scheme's σ_w²
(2 for kaiming_normal, not the sample's 2.01) and a recommendation is never the init
already in place: where it is, the verdict says so and points at the cause that is left (biases,
the input, the architecture).

Rules:

* **vanishing** — (hidden rows, or all weight rows when fewer than two hidden) the last row's
  activation std is below ``VANISH`` (0.1) of the larger of the input's and the first row's; it
  starts at the first row whose std falls by more than ×``STEP`` (0.7) from the row before (the
  input for the first).
* **exploding** — the last row's std is above 1/``VANISH`` (10×) the INPUT's std (so one layer with
  huge weights is found); it starts at the first row that grows by more than ×1/STEP.
  The sentence gives the per-layer factor over the run of rows that keep falling (growing) from
  where it starts, so it agrees with the rows' numbers.
* **saturation** — more than ``SATURATED`` (20%) of a row's pre-activations sit where the
  activation is saturated.
* **dead** — more than ``DEAD`` (10%) of a row's units are inactive on the whole batch.
* **collapsed** — the mean pairwise cosine of the samples exceeds ``COLLAPSED`` (0.95) while the
  input's is below 0.9 (Poole et al. 2016, "Exponential expressivity in deep neural networks
  through transient chaos"). Not judged: rows whose input the probe did not see, rows whose
  cosine was taken on non-negative values, non-negative pooled features (a ``pool`` row with
  min ≥ 0 and the row after it) and the first dense row after convolution rows (pooled or
  flattened features): a mean over positions of non-negative features has a cosine near 1
  without any collapse.
* **vanishing_gradient / exploding_gradient** — per row the per-sample gradient norm per position,
  RMS·√width (RMS of g = ∂ℓ_b/∂(pre-activation); under a fan-in init this is multiplied by
  χ₁ = σ_w²·E[φ′²] per layer whatever the widths), is compared between consecutive rows of the
  same segment only (pooling, reshapes and other shape changes are left out); when the product
  of those factors from the last row to the first is below 1/``GRAD_RATIO`` (above ``GRAD_RATIO``)
  the gradient vanishes (explodes); in a model with residual blocks each segment (a branch beside
  the stream) is judged on its own, since the stream carries the gradient past it; it starts at the first step, walking from the output, that
  shrinks by more than ×STEP (grows by more than ×1/STEP). Rows whose gradient is exactly 0 (cut
  by a zero-initialised layer: Fixup, SkipInit) are not compared.
* **residual_growth** — the variance of a residual stream grows with depth because every branch
  grows with it (Signal Propagation Plots, Brock, De & Smith 2021, "Characterizing signal
  propagation to close the performance gap in unnormalized ResNets"): over a run of chained
  residual blocks the average channel variance grows by more than ``GROWTH`` (×4) from the run's
  start and the branch variance by more than ×2 (a normalised ResNet's stream grows linearly with
  a branch variance that stays put: not flagged); where the branch cannot be separated, the
  stream must grow by more than max(10, 2·blocks). Read from a
  :class:`~initlab.diagnostics._spp.SPP` or, in its absence, from rows of kind ``add``. The fix is
  the Fixup preset on those blocks. A forward ``exploding`` / ``exploding_gradient`` verdict is
  then the same problem and is not stated again.

The recommendation is for the activation the row feeds (a weight row followed by norm rows then an
activation feeds that activation; a linear read-out: lecun_normal, σ_w² = 1), or the model's main
activation where unknown, said so. It puts the activation at the edge of chaos with zero bias
(Schoenholz et al. 2017, "Deep Information Propagation"): σ_w² = ``initlab.init.gain(act,
"critical")²``; where that point is useless (no finite fixed point: gelu, silu, mish, softplus;
or more than ``SATURATED_AT_CRITICAL`` saturated there: sigmoid) the second-moment gain instead.
Each verdict's ``fix`` sets every weight row whose init is not the recommended one to it, and
every weight row's biases to zero.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import Any

import numpy as np

from initlab import activations as _activations
from initlab.diagnostics import _weight_init
from initlab.diagnostics._result import LayerStats, ProbeResult, Verdict

__all__ = ["verdicts", "recommend", "VANISH", "STEP", "SATURATED", "DEAD", "COLLAPSED", "GRAD_RATIO", "GROWTH",
           "SEGMENT_KINDS"]

VANISH = 0.1
STEP = 0.7
SATURATED = 0.2
DEAD = 0.1
COLLAPSED = 0.95
GRAD_RATIO = 100.0
GROWTH = 4.0
SEGMENT_KINDS = frozenset({"pool", "add", "attention", "rnn", "lstm", "gru", "embedding", "reshape", "flatten",
                           "concat", "cat", "view", "permute", "transpose", "mean", "sum"})

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


@functools.lru_cache(maxsize=256)
def _rec_spec(activation: str | None) -> tuple[str, str, float, str]:
    """(spec for apply, name in words, σ_w², why) of the recommended init for ``activation``
    ("linear" or None: lecun_normal, variance preserving)."""
    if activation in (None, "linear"):
        return "lecun_normal", "lecun_normal", 1.0, "variance preserving for a linear layer"
    act = _activations.get(activation)
    s2, why = _critical_sigma_w2(act)
    if abs(s2 - 1.0) < 0.01:
        return "lecun_normal", "lecun_normal", s2, why
    if act.name == "relu" and abs(s2 - 2.0) < 0.01:
        return "kaiming_normal(nonlinearity=relu)", "kaiming_normal", s2, why
    if act.name == "leaky_relu":
        name = f"kaiming_normal(a={act.param:g}, nonlinearity=leaky_relu)"
        return f"kaiming_normal(a={act.param!r}, nonlinearity=leaky_relu)", name, s2, why
    return (f"variance_scaling(scale={s2!r}, mode=fan_in, distribution=normal)",
            f"variance_scaling(scale={s2:.3g}, mode=fan_in, distribution=normal)", s2, why)


def recommend(activation: str | _activations.Activation) -> str:
    """The init that puts ``activation`` at the edge of chaos (or, where the theory has no usable
    critical point, preserves the second moment), as one phrase.

    >>> recommend("relu")
    'use kaiming_normal (σ_w² = 2, the edge of chaos for relu with zero bias)'
    >>> recommend("sigmoid").split(",")[0]
    'use variance_scaling(scale=3.41'
    """
    act = _activations.get(activation)
    _, name, s2, why = _rec_spec(act.spec)
    return f"use {name} (σ_w² = {s2:.3g}, {why})"


# -- what a row is ----------------------------------------------------------------------------
def _kind(st: LayerStats) -> str:
    return str(st.kind or "").lower()


def _is_norm(st: LayerStats) -> bool:
    return "norm" in _kind(st)


def _is_weight_row(st: LayerStats) -> bool:
    return bool(st.fan_in) and st.weight_std is not None and not _is_norm(st) and _kind(st) not in SEGMENT_KINDS - {
        "attention", "rnn", "lstm", "gru"}


def _family(st: LayerStats, prev: str) -> str:
    k = _kind(st)
    if k.startswith("conv"):
        return "conv"
    if k in ("linear", "dense"):
        return "dense"
    return prev


def _segments(layers: list[LayerStats]) -> list[int]:
    """A segment id per row (see the module docstring)."""
    seg, fam, out = 0, "", []
    for i, st in enumerate(layers):
        f = _family(st, fam)
        if i > 0 and (not st.input_seen or _kind(st) in SEGMENT_KINDS or (fam == "conv" and f == "dense")):
            seg += 1
        if _kind(st) in SEGMENT_KINDS:
            out.append(seg)
            seg += 1  # the row after a pool/add/... starts a new segment too
            fam = f
            continue
        out.append(seg)
        fam = f
    return out


# (σ_w² multiplier of the mode's fan, mode) → names for (normal, uniform, truncated_normal); None: the
# generic variance_scaling spec
_SCHEME_NAMES: dict[tuple[float, str], tuple[str, str | None, str | None, str | None]] = {
    (1.0, "fan_in"): ("lecun", "lecun_normal", "lecun_uniform", "lecun_truncated_normal"),
    (2.0, "fan_in"): ("kaiming", "kaiming_normal", "kaiming_uniform", "he_truncated_normal"),
    (2.0, "fan_out"): ("kaiming (fan_out)", "kaiming_normal(mode=fan_out)", "kaiming_uniform(mode=fan_out)", None),
    (1.0, "fan_avg"): ("xavier", "xavier_normal", "xavier_uniform", "glorot_truncated_normal"),
    (1.0 / 3.0, "fan_in"): ("torch's default", None, "torch's default kaiming_uniform(a=√5)", None),
}
_FAMILY_ORDER = ("normal", "uniform", "truncated_normal")


def _scheme_name(scale: float, mode: str, family: str | None, leaky: float | None = None) -> str:
    """The name of the variance-scaling init Var(W) = scale/fan(mode) with entries of ``family``;
    ``family=None`` (not known): the scheme's name without its distribution.

    >>> _scheme_name(2.0, "fan_in", "uniform"), _scheme_name(0.5, "fan_in", "normal"), _scheme_name(2.0, "fan_out", None)
    ('kaiming_uniform', 'variance_scaling(scale=0.5, mode=fan_in, distribution=normal)', 'kaiming (fan_out)')
    """
    if leaky is not None and family != "truncated_normal":
        return f"kaiming (a={leaky:g})" if family is None else f"kaiming_{family}(a={leaky:g}, nonlinearity=leaky_relu)"
    for (sc, md), names in _SCHEME_NAMES.items():
        if md == mode and abs(sc - scale) < 1e-9:
            name = names[0] if family is None else names[1 + _FAMILY_ORDER.index(family)]
            if name is not None:
                return name
    if family is None:
        return f"variance_scaling(scale={scale:.3g}, mode={mode})"
    return f"variance_scaling(scale={scale:.3g}, mode={mode}, distribution={family})"


def _in_place(st: LayerStats) -> tuple[float, str | None] | None:
    """(σ_w², name) of the init a weight row has; None for rows without a weight matrix (norm rows
    included).

    The name is the exact structure the probe recognised (``st.weight_init``: zeros, constant,
    orthogonal, eye, delta-orthogonal, dirac) with the measured σ_w² = fan_in·std²; else the
    variance-scaling scheme whose Var(W) for the row's fans is nearest the measured one, within
    4 standard errors √(2/n) of a variance estimate from n = fan_in·width weights, named for the
    distribution family its kurtosis fits (:func:`initlab.diagnostics._weight_init.families`;
    "kaiming scale" when several fit or the kurtosis was not measured), with that scheme's σ_w²
    (schemes of the same variance for these fans joined with "/": lecun_normal/
    kaiming_normal(mode=fan_out) where fan_out = 2·fan_in); else
    "std s (normal-like)" (the family when exactly one fits) with the measured σ_w²; the name is
    None when the std is not finite.
    """
    if not _is_weight_row(st):
        return None
    fan_in = int(st.fan_in or 0)
    std = float(st.weight_std or 0.0)
    s2 = fan_in * std * std
    if st.weight_init:
        return s2, st.weight_init
    if std == 0.0:
        return 0.0, "constant"
    if not math.isfinite(s2):
        return s2, None
    n = fan_in * max(int(st.width or 1), 1)
    fams = [f for f in _FAMILY_ORDER if f in _weight_init.families(st.weight_kurtosis, n)]
    tol = 4.0 * math.sqrt(2.0 / n)
    fan_out = st.fan_out or (st.width if _kind(st) in ("linear", "dense") else None)
    # (σ_w² = fan_in·Var(W), scale, mode, leaky slope)
    cands: list[tuple[float, float, str, float | None]] = [(1.0, 1.0, "fan_in", None), (2.0, 2.0, "fan_in", None),
                                                            (1.0 / 3.0, 1.0 / 3.0, "fan_in", None)]
    if fan_out:
        if fan_out != fan_in:  # else kaiming's mode changes nothing
            cands.append((2.0 * fan_in / fan_out, 2.0, "fan_out", None))
        cands.append((2.0 * fan_in / (fan_in + fan_out), 1.0, "fan_avg", None))
    if st.activation:
        try:
            act = _activations.get(st.activation)
            if act.name == "leaky_relu" and act.param:
                a2 = 2.0 / (1.0 + act.param ** 2)
                cands.append((a2, a2, "fan_in", float(act.param)))
            rs2 = _rec_spec(act.spec)[2]
            if not any(md == "fan_in" and abs(sc / rs2 - 1.0) < 1e-9 for _, sc, md, _ in cands):
                cands.append((rs2, rs2, "fan_in", None))
        except ValueError:
            pass
    best = min(cands, key=lambda c: abs(math.log(s2 / c[0])))
    if fams and abs(s2 / best[0] - 1.0) <= tol:
        same = [c for c in cands if abs(c[0] / best[0] - 1.0) < 1e-9]  # one variance, several schemes
        if len(fams) == 1:
            return best[0], "/".join(dict.fromkeys(_scheme_name(c[1], c[2], fams[0], c[3]) for c in same))
        # the distribution is not told (too few weights, or not measured): the scale alone
        return best[0], "/".join(dict.fromkeys(_scheme_name(c[1], c[2], None, c[3]) for c in same)) + " scale"
    shape = f" ({fams[0].replace('_', ' ')}-like)" if len(fams) == 1 else ""
    return s2, f"std {_num(std, 2)}{shape}"


def _same_init(a: float, b: float) -> bool:
    return b > 0 and abs(a / b - 1.0) <= 0.05


def _describe(st: LayerStats) -> str:
    if _is_norm(st):
        return f"{st.kind} {st.name} (a norm layer: its weight is a gain, not an init scale)"
    act = st.activation or "linear"
    ip = _in_place(st)
    if ip is None:
        return act
    s2, name = ip
    std = _num(float(st.weight_std or 0.0))
    if name is None:
        return f"{act} with weight std {std} (σ_w² = fan_in·Var(W) = {_num(s2)})"
    if name == "zeros":
        return f"{act} with all-zero weights (zeros, σ_w² = 0)"
    if name.endswith(" scale"):  # a scheme's variance, its distribution not told
        return f"{act} with weights at {name} (σ_w² = {_num(s2)})"
    if name.startswith("std "):  # no scheme: the measured std, and the distribution it looks like
        like = name.split(" (", 1)[1].rstrip(")") if " (" in name else None
        return f"{act} with weight std {std} (σ_w² = fan_in·std² = {_num(s2)}" + (f", {like})" if like else ")")
    return f"{act} with {name} weights (σ_w² = {_num(s2)})"


def _main_activation(layers: list[LayerStats]) -> str | None:
    names = [s.activation for s in layers if s.activation not in (None, "linear") and not _is_norm(s)]
    if not names:
        return None
    return Counter(names).most_common(1)[0][0]


def _feeds(layers: list[LayerStats], i: int, main: str | None) -> str | None:
    """The activation weight row ``i`` feeds: its own; else, through norm rows, the next
    activation row's; the main activation after a norm or where unknown (None); "linear" for a
    read-out or a linear layer feeding another weight row."""
    st = layers[i]
    if st.activation not in (None, "linear"):
        return st.activation
    j = i + 1
    while j < len(layers) and _is_norm(layers[j]) and layers[j].input_seen:
        j += 1
    if j < len(layers):
        nxt = layers[j]
        if (nxt.input_seen and not _is_weight_row(nxt) and not _is_norm(nxt)
                and nxt.activation not in (None, "linear")):
            return nxt.activation
    if j > i + 1 or st.activation is None:
        return main
    return "linear"


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
    geometric mean over the run of layers from ``i0`` that keep falling (growing), from the std
    before ``i0``; where the run ends before the last layer, the last layer's std is added.

    >>> _scale_message("vanishing", [0.5, 0.1, 0.02], [1.0, 0.5, 0.1], [1, 2, 3], 0)
    'activation std falls by a factor of ~3.7 per layer from layer 1 on (1 at the input → 0.02 at layer 3)'
    >>> _scale_message("vanishing", [0.5, 0.0, 0.0], [1.0, 0.5, 0.0], [1, 2, 3], 1)
    'activation std falls to 0 at layer 2 (0.5 at layer 1)'
    >>> _scale_message("exploding", [1.0, 1.1, 166.0], [1.0, 1.0, 1.1], [1, 2, 3], 2)
    'activation std grows by a factor of ~151 at layer 3 (1.1 at layer 2 → 166 at layer 3)'
    >>> _scale_message("vanishing", [0.004, 0.018, 0.02, 0.003], [1.0, 0.004, 0.018, 0.02], [1, 2, 3, 4], 0)
    'activation std falls by a factor of ~250 at layer 1 (1 at the input → 0.004 at layer 1), 0.003 at layer 4'
    """
    a, last = prev[i0], stds[-1]
    start = "the input" if i0 == 0 else f"layer {idx[i0 - 1]}"
    if kind == "vanishing" and last == 0:
        # the first layer from which every std is exactly 0
        j = max((i for i, v in enumerate(stds) if v != 0), default=-1) + 1
        j = max(j, i0)
        return f"activation std falls to 0 {'at' if j == i0 else 'by'} layer {idx[j]} ({_num(a)} at {start})"
    if kind == "exploding" and not math.isfinite(last):
        j = next((i for i, v in enumerate(stds) if not math.isfinite(v)), len(stds) - 1)
        return f"activation std overflows to {_num(stds[j])} by layer {idx[j]} ({_num(a)} at {start})"
    if kind == "exploding" and a == 0:
        return f"activation std grows from 0 at {start} to {_num(last)} at layer {idx[-1]}"
    down = kind == "vanishing"
    end = i0
    while end + 1 < len(stds) and (stds[end + 1] < stds[end] if down else stds[end + 1] > stds[end]):
        end += 1
    n = end - i0 + 1
    b = stds[end]
    f = (a / b if down else b / a) ** (1.0 / n) if b > 0 and a > 0 else math.inf
    verb = "falls" if down else "grows"
    if end == len(stds) - 1:
        where = f"at layer {idx[i0]}" if n == 1 else f"per layer from layer {idx[i0]} on"
        return f"activation std {verb} by a factor of ~{_factor(f)} {where} ({_num(a)} at {start} → {_num(b)} at layer {idx[end]})"
    where = f"at layer {idx[i0]}" if n == 1 else f"per layer from layer {idx[i0]} to layer {idx[end]}"
    return (f"activation std {verb} by a factor of ~{_factor(f)} {where} ({_num(a)} at {start} → {_num(b)} at layer "
            f"{idx[end]}), {_num(last)} at layer {idx[-1]}")


# -- fixes ------------------------------------------------------------------------------------
def _init_fix(layers: list[LayerStats], main: str | None) -> dict[str, Any] | None:
    """Every weight row whose init is not the recommended one set to it; every weight row's
    biases to zero (an apply rules dict keyed by the rows' module names)."""
    fix: dict[str, Any] = {}
    for i, st in enumerate(layers):
        if not _is_weight_row(st) or not st.name or st.name in fix:
            continue
        spec, _, s2, _ = _rec_spec(_feeds(layers, i, main))
        ip = _in_place(st)
        if ip is not None and _same_init(ip[0], s2):
            fix[st.name] = {"*bias*": "zeros"}
        else:
            fix[st.name] = {"*weight*": spec, "*bias*": "zeros"}
    return fix or None


def _advice(kind: str, layers: list[LayerStats], i: int, main: str | None) -> str:
    """The recommendation for a verdict starting at row ``i``: the init for the activation it
    feeds, or, where that init is already in place, what is left to change."""
    st = layers[i]
    act = _feeds(layers, i, main) if _is_weight_row(st) else (
        st.activation if st.activation not in (None, "linear") and not _is_norm(st) else main)
    _, name, s2, why = _rec_spec(act)
    suffix = "" if act in (None, "linear") or act == st.activation else f" — for {act}, the activation this layer feeds"
    if act is not None and act == main and act != st.activation and not _is_weight_row(st):
        suffix = f" — for {main}, the model's main activation"
    ip = _in_place(st)
    if ip is not None and _same_init(ip[0], s2):
        left = {"dead": "set the biases to zero (a negative bias keeps units inactive); if they are zero, the input "
                        "itself leaves these units inactive (a low-dimensional input, or non-negative features)",
                "collapsed": "set the biases to zero (a large bias makes every input look alike)",
                "saturation": "set the biases to zero and check the input's scale"}.get(
            kind, "the change comes from elsewhere (biases, the input's scale, the architecture); "
                  "initlab.fix(model, x) (LSUV) sets each layer's scale from data")
        if ip[1] is not None and ip[1] != name:  # another init at the recommended scale (orthogonal...)
            return f"the weights ({ip[1]}) already have σ_w² = {_num(s2)}, as {name} ({why}); {left}"
        return f"the weights already have σ_w² = {_num(s2)} ({name}, {why}); {left}"
    rec = f"use {name} (σ_w² = {s2:.3g}, {why}){suffix}"
    if act is None:
        rec = "use a variance-preserving init (lecun_normal)"
    return rec + ("; keep biases at zero" if kind == "dead" else "")


# -- residual streams -------------------------------------------------------------------------
def _runs_from_spp(spp: Any) -> list[list[tuple[str, float, float | None]]]:
    runs: list[list[tuple[str, float, float | None]]] = []
    for k in range(1, len(spp.names)):
        point = (spp.names[k], float(spp.avg_var[k]), None if spp.res_avg_var[k] is None else float(spp.res_avg_var[k]))
        if k == 1:
            runs.append([(spp.names[0], float(spp.avg_var[0]), None), point])
        elif spp.chained[k]:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _block_path(st: LayerStats) -> str:
    """The module path of the block whose forward does an op row's add (the presets address
    modules): the row is named ``<module path>.<op>`` (``.k`` for the k-th repeat).

    >>> from initlab.diagnostics._measure import new_layer
    >>> st = new_layer(1, "enc.layers.2.add.1", "add", None); st.op = "add"
    >>> _block_path(st)
    'enc.layers.2'
    """
    parts = st.name.split(".")
    op = getattr(st, "op", None) or _kind(st)
    if len(parts) >= 2 and parts[-1].isdigit() and parts[-2] == op:
        parts = parts[:-2]
    elif parts and parts[-1] == op:
        parts = parts[:-1]
    return ".".join(parts) or st.name


def _runs_from_rows(layers: list[LayerStats]) -> list[list[tuple[str, float, float | None]]]:
    runs: list[list[tuple[str, float, float | None]]] = []
    last_w = None
    for st in layers:
        if _kind(st) != "add" or not math.isfinite(st.chan_var):
            continue
        pt = (_block_path(st), float(st.chan_var), getattr(st, "branch_var", None))
        if runs and st.width == last_w:
            runs[-1].append(pt)
        else:
            runs.append([pt])
        last_w = st.width
    return runs


def _residual_verdict(result: ProbeResult, spp: Any) -> Verdict | None:
    runs = _runs_from_spp(spp) if spp is not None else _runs_from_rows(result.layers)
    for run in runs:
        if len(run) < 3:
            continue
        n_blocks = len(run) - 1
        v0, v1 = run[0][1], run[-1][1]
        grow = v1 / v0 if v0 > 0 and math.isfinite(v1) else (math.inf if v1 > 0 or not math.isfinite(v1) else 1.0)
        block_pts = [p for p in run if not p[0].startswith("input of ")]
        res = [p[2] for p in block_pts]
        if len(res) >= 2 and all(r is not None for r in res):
            branch = _ratio(res[-1], res[0])
            hit = grow > GROWTH and branch > 2.0
            how = (f", and each residual branch grows with it (branch variance {_num(float(res[0] or 0))} → "
                   f"{_num(float(res[-1] or 0))}): the blocks' outputs add up exponentially")
        else:
            hit = grow > max(10.0, 2.0 * n_blocks)
            how = ""
        if not hit:
            continue
        per = grow ** (1.0 / n_blocks) if math.isfinite(grow) else math.inf
        first_block = block_pts[0][0]
        layer = next((s.index for s in result.layers if s.name == first_block or s.name.startswith(first_block + ".")),
                     result.layers[0].index if result.layers else 0)
        msg = (f"residual stream variance grows by a factor of ~{_factor(per)} per block over {n_blocks} blocks "
               f"({_num(v0)} at {run[0][0]} → {_num(v1)} after {run[-1][0]}){how} "
               "(Signal Propagation Plots, Brock, De & Smith 2021)")
        rec = ("use a residual init: Fixup (the last layer of each branch and the classifier at zero, the other branch "
               "layers scaled by L^(-1/(2m-2))), or SkipInit/ReZero (a zero scalar on each branch)")
        blocks = list(spp.blocks) if spp is not None else [p[0] for p in block_pts]
        return Verdict("residual_growth", layer, msg, rec, {"preset": "fixup", "blocks": blocks})
    return None


# -- the rules ----------------------------------------------------------------------------------
def verdicts(result: ProbeResult, *, spp: Any = None) -> list[Verdict]:
    """Every problem the rules above find, in the order of the layer where it starts.

    ``spp``: the model's :class:`~initlab.diagnostics._spp.SPP` (residual blocks), if measured.
    """
    layers = result.layers
    if not layers:
        return []
    main = _main_activation(layers)
    out: list[Verdict] = []
    fix_all = _init_fix(layers, main)
    pos = {id(s): i for i, s in enumerate(layers)}

    def verdict(kind: str, st: LayerStats, message: str) -> Verdict:
        i = pos[id(st)]
        return Verdict(kind, st.index, f"{_describe(st)}: {message}", _advice(kind, layers, i, main), fix_all)

    residual = _residual_verdict(result, spp)

    # forward scale, over the hidden rows (a linear read-out is not judged), leaving out rows whose
    # input hooks did not see, norm rows and rows of kinds that change what a tensor holds
    chain = [s for s in layers if s.input_seen and not _is_norm(s) and _kind(s) not in SEGMENT_KINDS]
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
            out.append(verdict("vanishing", scale_layers[i0], _scale_message("vanishing", stds, prev, idx, i0)))
        elif (result.input_std > 0 and last > result.input_std / VANISH) or not math.isfinite(last):
            i0 = next((i for i, (a, b) in enumerate(zip(stds, prev)) if _ratio(a, b) > 1 / STEP), 0)
            if residual is None:
                out.append(verdict("exploding", scale_layers[i0], _scale_message("exploding", stds, prev, idx, i0)))

    # saturation (None: the layer's activation cannot saturate)
    sat = [s for s in layers if s.saturated is not None and s.saturated > SATURATED]
    if sat:
        run = [float(s.saturated or 0.0) for s in sat]
        where = f"from layer {sat[0].index} on" if len(sat) > 1 else f"at layer {sat[0].index}"
        out.append(verdict("saturation", sat[0], f"{100 * sum(run) / len(run):.0f}% of units saturated {where}"))

    # dead units (None: the layer's units cannot die)
    dead = [s for s in layers if s.dead is not None and s.dead > DEAD]
    if dead:
        worst = max(float(s.dead or 0.0) for s in dead)
        out.append(verdict("dead", dead[0], f"{100 * float(dead[0].dead or 0.0):.0f}% of units dead (inactive on the "
                                            f"whole batch) from layer {dead[0].index} (up to {100 * worst:.0f}%)"))

    # collapsed correlations
    cin = result.input_cosine
    seg = _segments(layers)
    cos: list[float | None] = []
    for i, s in enumerate(layers):
        c = s.cosine if s.input_seen else None
        on_nonneg = (s.preact_min is not None and s.preact_min >= 0) or (s.preact_std is None and s.min >= 0)
        pooled = _kind(s) == "pool" and s.min >= 0
        after_pool = i > 0 and _kind(layers[i - 1]) == "pool" and layers[i - 1].min >= 0
        conv_to_dense = (i > 0 and _family(s, "") == "dense" and seg[i] != seg[i - 1]
                         and any(_family(t, "") == "conv" for t in layers[:i]))
        if on_nonneg or pooled or after_pool or conv_to_dense or _is_norm(s):
            c = None
        cos.append(c)
    if (cin is None or not cin > 0.9) and any(c is not None and c > COLLAPSED for c in cos):
        i0 = next(i for i, c in enumerate(cos) if c is not None and c > COLLAPSED)
        cin_txt = "—" if cin is None else f"{cin:.2f}"
        out.append(verdict("collapsed", layers[i0],
                           f"representations of different inputs collapse from layer {layers[i0].index} "
                           f"(mean pairwise cosine {cos[i0]:.3f}, input {cin_txt})"))

    # gradients: per-sample norm per position (RMS·√width), compared within segments. In a model
    # with residual blocks each segment is a branch beside the stream, not a step after the one
    # before: each is judged on its own; otherwise the segments are chained.
    if result.backward:
        g = [(i, float(s.grad_rms) * math.sqrt(max(int(s.width or 1), 1)))
             for i, s in enumerate(layers) if s.grad_rms is not None and math.isfinite(s.grad_rms) and s.grad_rms > 0]
        steps = [(i, j, gi / gj) for (i, gi), (j, gj) in zip(g, g[1:]) if seg[i] == seg[j]]
        parallel = spp is not None or any(_kind(s) == "add" for s in layers)
        groups = ([[st for st in steps if seg[st[0]] == k] for k in sorted({seg[st[0]] for st in steps})]
                  if parallel else ([steps] if steps else []))
        found = None
        for grp in reversed(groups):  # the group nearest the output first
            total = math.exp(sum(math.log(r) for _, _, r in grp))
            if total < 1 / GRAD_RATIO or total > GRAD_RATIO:
                found = (grp, total)
                break
        if found is not None:
            grp, total = found
            first, final = layers[grp[0][0]].index, layers[grp[-1][1]].index
            down = total < 1 / GRAD_RATIO
            i0 = next((i for i, _, r in reversed(grp) if (r < STEP if down else r > 1 / STEP)), grp[0][0])
            st = layers[i0]
            kind = "vanishing_gradient" if down else "exploding_gradient"
            word = "shrinks" if down else "grows"
            fac = 1 / total if down else total
            if not (kind == "exploding_gradient" and residual is not None):
                out.append(verdict(kind, st,
                                   f"gradient {word} towards the input from layer {st.index}: its per-sample norm "
                                   f"(RMS × √width) {'falls' if down else 'rises'} by a factor of ~{_factor(fac)} "
                                   f"from layer {final} to layer {first}"
                                   + (" (steps across pooling, reshapes and other shape changes left out)"
                                      if len(set(seg)) > 1 and not parallel else "")))
    if residual is not None:
        out.append(residual)
    out.sort(key=lambda v: v.layer)
    return out
