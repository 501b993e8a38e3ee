"""What a probe returns: :class:`LayerStats` per layer and the :class:`ProbeResult` around them.

A ProbeResult renders as a rich table (``rich.print(result)`` or ``str(result)``), serialises to
plain data (:meth:`ProbeResult.to_dict`, :meth:`ProbeResult.to_json`) and draws the seeds' figures
(:meth:`ProbeResult.plot_histograms`, :meth:`ProbeResult.plot_stats`,
:meth:`ProbeResult.plot_gradients`, or all three with :meth:`ProbeResult.plot`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab.diagnostics._stats import Histogram

__all__ = ["LayerStats", "ProbeResult", "Verdict"]


@dataclass
class LayerStats:
    """Statistics of one probed layer on one batch.

    Forward (pooled over batch, units and spatial positions, ddof = 0, as the seeds' tables):
    ``mean``, ``std``, ``sq_mean`` (average channel squared mean, Signal Propagation Plots),
    ``chan_var`` (average channel variance), ``min``, ``max`` of the activation output, and the
    same with ``preact_`` of the pre-activation (the layer's affine output). ``saturated``: the
    fraction of pre-activation values where the activation is saturated
    (|φ′| < threshold · max|φ′|, :meth:`initlab.activations.Activation.saturated_mask`), None
    where it does not apply (the activation does not saturate, is linear or unknown, norm rows);
    ``dead``: the fraction of units (channels) inactive on the whole batch (ReLU family only,
    :attr:`~initlab.activations.Activation.can_die`; None for the others); ``cosine``: mean
    pairwise cosine of the pre-activations of distinct samples (→ 1: correlations collapsed).
    ``input_seen``: False when the layer's input was made by an operation the torch probe's hooks
    cannot see (a functional call, a residual add, pooling, a reshape): the rules that compare a
    layer with the one before it do not judge such a layer.

    Backward: ``grad_std`` and ``grad_rms`` = std and root mean square √(mean g²) of
    g = ∂ℓ_b/∂(pre-activation) of each sample's own loss ℓ_b (the seeds' "deltas"; a norm row:
    of its output), ``grad_act_std`` of ∂ℓ_b/∂(activation). The verdicts read ``grad_rms``: the
    std is 0 where the gradient is constant (the output layer under ``loss="sum"``).
    ``grad_weight_std`` and ``grad_weight_ratio`` = ‖∂L/∂W‖_F / ‖W‖_F are those of the MEAN loss
    L = (1/B) Σ_b ℓ_b over the batch of B samples, so they estimate the population gradient and do
    not grow with the batch size (the per-sample sum would grow ∝ B).

    Torch models (op-level capture, :mod:`initlab.diagnostics._probe_torch`): ``name`` is the
    module path (``enc.layers.2.self_attn.q_proj``; a functional op inside a module is named
    ``<module path>.<op>``, e.g. ``block.add``, repeats get ``.1``, ``.2``), ``kind`` one of

    * ``"linear"`` (``F.linear``/``nn.Linear``, the q/k/v/out projections of attention, a matmul
      with a parameter), ``"conv"``, ``"embedding"``, ``"rnn"`` (one row per LSTM/GRU/RNN layer:
      its output over all time steps), whose ``preact_*`` is the op's output and ``mean``/``std``
      the activation after it when an activation takes that output directly (else the same);
    * ``"activation"`` (an activation not fused with the op before it), ``"norm"``
      (LayerNorm/BatchNorm/GroupNorm/InstanceNorm/RMSNorm), ``"pool"`` (max/avg/adaptive/lp
      pooling, a mean over the spatial axes), ``"add"`` (a residual add of two same-shape
      tensors, or an add with a parameter such as a positional embedding), ``"scale"`` (a product
      with a parameter, e.g. a ReZero/SkipInit scalar);
    * ``"attention_logits"`` (the scaled q·kᵀ + mask of an attention: ``logit_std``, the std of
      the finite logits, and ``softmax_entropy``, the mean over queries of −Σ p log p in nats, at
      most log(width) with width = number of keys), ``"attention"`` (the attention-weighted values
      before the output projection, width = heads × head dim).

    ``op`` names the torch operation (``linear``, ``conv2d``, ``relu``, ``layer_norm``,
    ``scaled_dot_product_attention``, ``lstm``...) and ``module`` the type of the innermost module
    it ran in. The row's ``width`` is the feature dimension: channels (axis 1) for conv, norms over
    channels and pooling; the last axis for linear, attention, RNN, embedding, LayerNorm/RMSNorm;
    elementwise rows inherit it from the tensor they read. Per-unit statistics (``dead``,
    ``sq_mean``, ``chan_var``) are over every other axis (batch, tokens, positions); ``cosine`` is
    between samples (the batch axis). Norm rows: ``gain_mean`` / ``gain_std`` of the affine weight
    (the norm's gain, not a weight std: ``weight_std`` is None); ``"scale"`` rows the same for
    their parameter. Add rows: ``skip_std`` and ``branch_std`` of the operand produced first
    (the skip) and last (the residual branch), ``branch_var`` the branch's average channel
    variance (Signal Propagation Plots, Brock, De & Smith 2021). RNN rows: ``grad_time_ratio`` =
    RMS of ∂ℓ/∂h_t at the first time step over that at the last (≪ 1: the gradient through time
    vanishes, ≫ 1: explodes).

    Weight rows: ``weight_std``, ``fan_in`` and ``fan_out`` (:func:`initlab.init.compute_fans`),
    ``weight_init`` the init recognised exactly from the weight's structure (``zeros``,
    ``constant(value=c)``, ``orthogonal(gain=g)``, ``eye(gain=g)``, ``delta_orthogonal(gain=g)``,
    ``dirac``; None where there is none: :mod:`initlab.diagnostics._weight_init`) and
    ``weight_kurtosis`` the excess kurtosis of its entries (0 normal, −1.2 uniform), from which the
    verdicts name a random init.

    Theory (plain stacks with ``theory=True``): ``theory_std`` (predicted activation std),
    ``theory_preact_std`` and ``theory_grad_std`` (predicted pre-activation gradient std, scaled
    to the measured one at the last layer) from :func:`initlab.nn.predict_stack`.
    """

    index: int
    name: str
    kind: str
    activation: str | None
    width: int
    mean: float
    std: float
    sq_mean: float
    chan_var: float
    min: float
    max: float
    preact_mean: float | None = None
    preact_std: float | None = None
    preact_sq_mean: float | None = None
    preact_min: float | None = None
    preact_max: float | None = None
    saturated: float | None = None
    dead: float | None = None
    cosine: float | None = None
    weight_std: float | None = None
    fan_in: int | None = None
    fan_out: int | None = None
    weight_init: str | None = None
    weight_kurtosis: float | None = None
    input_seen: bool = True
    grad_std: float | None = None
    grad_rms: float | None = None
    grad_act_std: float | None = None
    grad_weight_std: float | None = None
    grad_weight_ratio: float | None = None
    op: str | None = None
    module: str | None = None
    logit_std: float | None = None
    softmax_entropy: float | None = None
    grad_time_ratio: float | None = None
    skip_std: float | None = None
    branch_std: float | None = None
    branch_var: float | None = None
    gain_mean: float | None = None
    gain_std: float | None = None
    theory_std: float | None = None
    theory_preact_std: float | None = None
    theory_grad_std: float | None = None
    hist: Histogram | None = field(default=None, repr=False)
    preact_hist: Histogram | None = field(default=None, repr=False)
    grad_hist: Histogram | None = field(default=None, repr=False)

    def to_dict(self, *, histograms: bool = False) -> dict[str, Any]:
        """Plain data; histograms (edges, counts, n_sampled) only when asked for."""
        out: dict[str, Any] = {}
        for key, val in self.__dict__.items():
            if key in ("hist", "preact_hist", "grad_hist"):
                if histograms and val is not None:
                    out[key] = {
                        "edges": val.edges.tolist(),
                        "counts": val.counts.tolist(),
                        "n_sampled": val.n_sampled,
                    }
                continue
            out[key] = val
        return out


@dataclass(frozen=True)
class Verdict:
    """One problem found by the probe: what, from which layer, and what to do about it.

    ``fix`` is plain data (JSON-serialisable): an :func:`initlab.apply` rules dict (or a preset,
    ``{"preset": "fixup", ...}``) such that ``initlab.apply(model, verdict.fix, rng=0)`` followed
    by a new probe no longer shows this problem; None where no init change fixes it.
    """

    kind: str  # vanishing | exploding | saturation | dead | collapsed | vanishing_gradient | exploding_gradient | residual_growth
    layer: int
    message: str
    recommendation: str
    fix: dict[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.message}; {self.recommendation}" if self.recommendation else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layer": self.layer, "message": self.message,
                "recommendation": self.recommendation, "fix": self.fix, "text": str(self)}


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    ax = abs(x)
    if 1e-3 <= ax < 1e4:
        return f"{x:.{digits}f}" if ax < 10 else f"{x:.{max(digits - 2, 1)}f}"
    return f"{x:.2e}"


def _pct(x: float | None) -> str:
    """A fraction as a percentage for the table; "—" where it does not apply (None) or is unknown.

    >>> _pct(0.125), _pct(None)
    ('12.5', '—')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{100 * x:.1f}"


@dataclass
class ProbeResult:
    """Per-layer statistics of one probe, with verdicts and notes.

    Attributes:
        layers: one :class:`LayerStats` per probed layer, input side first.
        verdicts: problems found (:mod:`initlab.diagnostics._verdicts`), each with the layer where it
            starts and a recommended init.
        input_mean, input_std, input_cosine: the same statistics of the input batch.
        loss: "mse" | "ce" | "sum", or None without backward.
        backward: whether the backward statistics were measured.
        theory: whether the theory columns were computed.
        notes: caveats (functional activations hooks cannot see, theory not applicable, ...).
        model: "network" (initlab NumPy Network) or "torch".
        batch: the batch size.
        mode: torch models: the mode the probe ran in, "init" (every module in training mode, so
            BatchNorm normalises with the batch's statistics, but every dropout off), "train"
            (dropout on) or "eval" (``model.eval()``: running statistics); None for a Network.
        unexamined: every module or operation with parameters that got no row (module path,
            type, parameters and why); the summary never says "no problem found" while it is
            not empty.
    """

    layers: list[LayerStats]
    verdicts: list[Verdict] = field(default_factory=list)
    input_mean: float = 0.0
    input_std: float = 0.0
    input_cosine: float | None = None
    loss: str | None = None
    backward: bool = True
    theory: bool = False
    notes: list[str] = field(default_factory=list)
    model: str = "network"
    batch: int = 0
    mode: str | None = None
    unexamined: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> LayerStats:
        return self.layers[i]

    def column(self, key: str) -> np.ndarray:
        """One statistic over the layers as a float array (None → nan).

        >>> ProbeResult(layers=[]).column("std").shape
        (0,)
        """
        return np.array([np.nan if getattr(s, key) is None else getattr(s, key) for s in self.layers], dtype=float)

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self, *, histograms: bool = False) -> dict[str, Any]:
        """Plain data: ``layers`` (list of dicts with ``index``, ``mean``, ``std``, ``preact_std``,
        ``saturated``, ``dead`` (None where they do not apply), ``grad_std``, ``grad_rms``,
        ``theory_std``...), ``verdicts`` (one line each),
        ``verdict_details``, the input statistics and the notes. Backward keys are omitted when the
        backward pass was not run, theory keys when theory was not asked for."""
        drop = set()
        if not self.backward:
            drop |= {"grad_std", "grad_rms", "grad_act_std", "grad_weight_std", "grad_weight_ratio", "theory_grad_std"}
        if not self.theory:
            drop |= {"theory_std", "theory_preact_std", "theory_grad_std"}
        layers = []
        for s in self.layers:
            d = s.to_dict(histograms=histograms)
            for k in drop:
                d.pop(k, None)
            layers.append(d)
        return {
            "model": self.model,
            "batch": self.batch,
            "mode": self.mode,
            "loss": self.loss,
            "backward": self.backward,
            "theory": self.theory,
            "input": {"mean": self.input_mean, "std": self.input_std, "cosine": self.input_cosine},
            "layers": layers,
            "verdicts": [str(v) for v in self.verdicts],
            "verdict_details": [v.to_dict() for v in self.verdicts],
            "notes": list(self.notes),
            "unexamined": list(self.unexamined),
        }

    def to_json(self, *, histograms: bool = False, indent: int | None = 2) -> str:
        """Strict JSON (NaN and ±inf become null)."""
        from initlab._json import to_jsonable

        return json.dumps(to_jsonable(self.to_dict(histograms=histograms)), indent=indent, allow_nan=False)

    # -- display ---------------------------------------------------------------------------------
    def table(self) -> Any:
        """A rich Table: one row per layer (measurement, theory beside it, backward)."""
        from rich.table import Table

        mode = f", mode {self.mode}" if self.mode else ""
        t = Table(title=f"initlab probe ({self.model}, batch {self.batch}{mode})", title_justify="left")
        show_kind = len({s.kind for s in self.layers}) > 1
        show_name = any(s.name and s.name != f"layers.{s.index - 1}" for s in self.layers)
        cols = (["layer"] + (["name"] if show_name else []) + (["kind"] if show_kind else [])
                + ["act", "width", "preact std", "mean", "std"])
        if self.theory:
            cols += ["theory std"]
        cols += ["sat %", "dead %", "cos"]
        if self.backward:
            cols += ["grad std", "grad rms", "|∇W|/|W|"]
        for c in cols:
            t.add_column(c, justify="left" if c in ("name", "kind", "act") else "right", no_wrap=c == "name")
        for s in self.layers:
            row = ([str(s.index)] + ([s.name] if show_name else []) + ([s.kind] if show_kind else [])
                   + [s.activation or "—", str(s.width), _fmt(s.preact_std), _fmt(s.mean, 6), _fmt(s.std, 6)])
            if self.theory:
                row.append(_fmt(s.theory_std, 6))
            row += [_pct(s.saturated), _pct(s.dead), _fmt(s.cosine, 3)]
            if self.backward:
                row += [_fmt(s.grad_std), _fmt(s.grad_rms), _fmt(s.grad_weight_ratio)]
            t.add_row(*row)
        return t

    def summary(self) -> str:
        """One line: how many problems were found, and whether anything went unexamined. Never
        "no problem found" while ``unexamined`` is not empty.

        >>> ProbeResult(layers=[]).summary()
        'no problem found: signal and gradient propagate at a stable scale'
        >>> ProbeResult(layers=[], unexamined=["lstm (LSTM): weight_ih_l0"]).summary()
        'no problem found in the rows above, but 1 module/operation with parameters was not examined (listed below)'
        """
        n = len(self.unexamined)
        gap = (f"{n} module{'s' if n > 1 else ''}/operation{'s' if n > 1 else ''} with parameters "
               f"{'were' if n > 1 else 'was'} not examined (listed below)")
        if self.verdicts:
            k = len(self.verdicts)
            head = f"{k} problem{'s' if k > 1 else ''} found"
            return f"{head}; {gap}" if n else head
        if n:
            return f"no problem found in the rows above, but {gap}"
        return "no problem found: signal and gradient propagate at a stable scale"

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        parts: list[Any] = [self.table()]
        import json as _json

        for v in self.verdicts:
            parts.append(Text(f"! {v}"))
            if v.fix is not None:  # machine-readable: initlab.apply(model, fix, rng=0)
                parts.append(Text(f"  fix: {_json.dumps(v.fix, ensure_ascii=False)}"))
        parts.append(Text(self.summary()))
        for n in self.notes:
            parts.append(Text(f"note: {n}"))
        for u in self.unexamined:
            parts.append(Text(f"unexamined: {u}"))
        return Group(*parts)

    def __str__(self) -> str:
        import io

        from rich.console import Console

        con = Console(width=160, record=True, file=io.StringIO())
        con.print(self)
        return con.export_text()

    # -- plots -----------------------------------------------------------------------------------
    def plot_histograms(self, path: str | None = None, *, which: str = "act") -> Any:
        """Seed-style row of histograms, one panel per layer (``which``: act | preact | grad)."""
        from initlab.diagnostics import _plots

        return _plots.histograms(self, path, which=which)

    def plot_stats(self, path: str | None = None) -> Any:
        """Mean and std per layer (with the theory's std when computed)."""
        from initlab.diagnostics import _plots

        return _plots.stats(self, path)

    def plot_gradients(self, path: str | None = None) -> Any:
        """RMS of the per-sample ∂ℓ/∂(pre-activation) and std of the mean-loss ∂L/∂W per layer, log scale."""
        from initlab.diagnostics import _plots

        return _plots.gradients(self, path)

    def plot(self, path: str) -> Any:
        """All of the above in one figure saved to ``path``."""
        from initlab.diagnostics import _plots

        return _plots.summary(self, path)
