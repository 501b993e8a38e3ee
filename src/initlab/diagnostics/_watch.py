"""Watching each layer while a network learns: :func:`watch` and the :class:`Watch` it returns.

Initialization decides the first steps of training, and that is where practitioners check it:
fastai's ``ActivationStats`` records every layer's mean, std and near-zero fraction on every batch
and draws the "colorful dimension" plot; this module does the same with the probe's own
definitions, so a row recorded at step 0 is the row :func:`initlab.probe` gives on that batch.

* :func:`watch` is a context manager around a user's own torch training loop::

      with initlab.watch(model, every=10) as w:
          for x, y in batches:
              opt.zero_grad()
              loss = loss_fn(model(x), y)
              loss.backward()
              opt.step()
              w.log_loss(loss)          # optional: the loss column
      w.verdicts, w.to_pandas(), w.plot("watch.png")

  A **step** is one forward call of ``model`` while ``model.training`` is True (forward calls in
  eval mode, e.g. a validation pass, are neither counted nor recorded). Every ``every``-th step
  (0, every, 2·every, ...) the forward hooks compute each layer's forward statistics from the
  tensors of that forward pass, tensor hooks collect the gradients its backward pass produces,
  and the weights are copied; at the next step (or when the block ends) the backward statistics
  and the relative update ‖ΔW‖_F/‖W‖_F of the optimizer step that followed are filled in.
  Nothing the model computes is changed: the hooks only read (they return None), no random
  number is drawn from torch, and every hook is removed when the block exits, also on an
  exception. The training is bitwise the same with and without the watch.

* The per-layer statistics are those of the probe (:mod:`initlab.diagnostics._measure`, same
  names and definitions), plus ``near_zero`` (fraction of activation values with
  |x| ≤ ``near_zero``, fastai's 0.05 by default) and ``update_ratio`` (‖W_{t+1} − W_t‖_F/‖W_t‖_F,
  the size of the optimizer's step relative to the weights; ~1e-3 per step is the usual healthy
  range, Karpathy's rule of thumb). Gradients: the probe's deltas are per-sample, ∂ℓ_b/∂h; the
  user's loss is usually the batch MEAN L = (1/B) Σ ℓ_b, so with ``loss_reduction="mean"`` (torch's
  default) the captured ∂L/∂h is multiplied by B, and with ``"sum"`` taken as is; the weight
  gradient statistics are those of the mean loss in both cases, as in the probe.
* Histograms use fixed edges per layer, chosen at the first recorded step as the probe chooses
  them (a bounded activation on its range; the others on the recorded range widened by
  ``hist_margin`` on each side), so the steps of one layer compare; values outside are counted in
  the end bins.
* Verdicts over time: the probe's verdict engine (:func:`initlab.diagnostics.verdicts`) is run on
  every recorded step; :attr:`Watch.verdicts` lists each problem once, with the layer and the
  first step where it appeared (a layer that dies at step 40 is named with step 40).
"""

from __future__ import annotations

import contextlib
import csv
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab import activations as _activations
from initlab._validation import bad_type, check_choice, check_int, check_number
from initlab.diagnostics._measure import act_stats, backward_stats, bounded_range, new_layer, preact_stats, weight_stats
from initlab.diagnostics._result import LayerStats, ProbeResult, Verdict
from initlab.diagnostics._stats import HIST_SAMPLE, histogram, mean_pairwise_cosine, moments
from initlab.nn.callbacks import Callback

__all__ = ["watch", "Watch", "WatchStep", "WatchVerdict", "WATCH_COLUMNS", "Probe"]

NEAR_ZERO = 0.05

# The columns of Watch.rows(), in order: the step, the layer, then the probe's statistics.
WATCH_COLUMNS = (
    "step", "loss", "index", "name", "kind", "activation", "width",
    "mean", "std", "near_zero", "sq_mean", "chan_var", "min", "max",
    "preact_mean", "preact_std", "saturated", "dead", "cosine", "weight_std",
    "grad_std", "grad_rms", "grad_act_std", "grad_weight_std", "grad_weight_ratio", "update_ratio",
)


@dataclass
class WatchStep:
    """One recorded step: its index, the loss (when logged), the input's statistics and one
    :class:`~initlab.diagnostics.LayerStats` per layer (with ``near_zero`` and ``update_ratio``
    beside them, keyed by the layer's name)."""

    step: int
    layers: list[LayerStats]
    loss: float | None = None
    input_mean: float = 0.0
    input_std: float = 0.0
    input_cosine: float | None = None
    batch: int = 0
    backward: bool = False
    near_zero: dict[str, float] = field(default_factory=dict)
    update_ratio: dict[str, float | None] = field(default_factory=dict)

    def probe_result(self, model: str = "torch") -> ProbeResult:
        """This step as a :class:`~initlab.diagnostics.ProbeResult` (for the verdict engine)."""
        return ProbeResult(layers=self.layers, input_mean=self.input_mean, input_std=self.input_std,
                           input_cosine=self.input_cosine, loss="mse" if self.backward else None,
                           backward=self.backward, model=model, batch=self.batch)


@dataclass(frozen=True)
class WatchVerdict:
    """A problem seen while training: its kind, the layer (index and name) where it starts, the
    first recorded step at which the probe's verdict engine reported it, and how many recorded
    steps showed it."""

    kind: str
    layer: int
    name: str
    step: int
    n_steps: int
    message: str
    recommendation: str

    def __str__(self) -> str:
        text = f"step {self.step}: {self.message}"
        return f"{text}; {self.recommendation}" if self.recommendation else text

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layer": self.layer, "name": self.name, "step": self.step,
                "n_steps": self.n_steps, "message": self.message, "recommendation": self.recommendation,
                "text": str(self)}


class Watch:
    """Per-layer statistics recorded over training steps (see the module docstring).

    Built by :func:`watch` for a torch training loop, or filled step by step with
    :meth:`add_step` (initlab's own engine). ``steps`` holds the :class:`WatchStep` records in
    order.

    >>> import numpy as np
    >>> from initlab.diagnostics._measure import forward_stats
    >>> from initlab.activations import get
    >>> w = Watch(every=1)
    >>> a = np.maximum(np.random.default_rng(0).standard_normal((64, 8)), 0)
    >>> st = forward_stats(index=1, name="fc", kind="linear", activation=get("relu"), preact=None, act=a,
    ...                    weight=None, samples={})
    >>> w.add_step(0, [st], loss=1.5)
    >>> [(r["step"], r["name"], r["loss"]) for r in w.rows()]
    [(0, 'fc', 1.5)]
    """

    def __init__(self, *, every: int = 1, model: str = "torch") -> None:
        self.every = check_int("every", every, low=1)
        self.model = model
        self.steps: list[WatchStep] = []
        self._verdicts: list[WatchVerdict] | None = None
        self._hooks: _TorchHooks | None = None

    # -- filling ---------------------------------------------------------------------------------
    def add_step(self, step: int, layers: list[LayerStats], *, loss: float | None = None,
                 input_stats: tuple[float, float, float | None] = (0.0, 0.0, None), batch: int = 0,
                 backward: bool = False, near_zero: dict[str, float] | None = None,
                 update_ratio: dict[str, float | None] | None = None) -> None:
        """Append one recorded step (steps must increase)."""
        if self.steps and step <= self.steps[-1].step:
            raise ValueError(f"The 'step' argument must increase; got {step} after {self.steps[-1].step}.")
        self.steps.append(WatchStep(step=int(step), layers=list(layers), loss=loss, input_mean=input_stats[0],
                                    input_std=input_stats[1], input_cosine=input_stats[2], batch=batch,
                                    backward=backward, near_zero=dict(near_zero or {}),
                                    update_ratio=dict(update_ratio or {})))
        self._verdicts = None

    def log_loss(self, loss: Any) -> None:
        """Record the training loss of the current step (a float or a 0-d tensor; read, not kept).

        Call it once per step, after the forward pass; steps that are not recorded ignore it."""
        if self._hooks is not None:
            self._hooks.log_loss(loss)
        elif self.steps:
            self.steps[-1].loss = _as_float(loss)

    # -- the context manager (torch) ------------------------------------------------------------
    def __enter__(self) -> "Watch":
        if self._hooks is None:
            raise RuntimeError("This Watch is not attached to a model; use initlab.watch(model, ...).")
        self._hooks.install()
        return self

    def __exit__(self, *exc: Any) -> None:
        hooks = self._hooks
        if hooks is None:
            return
        try:
            if exc[0] is None:
                hooks.finish()
        finally:
            hooks.remove()
            hooks.pending = None  # a half-finished step of a failed block is not recorded

    # -- reading ---------------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        """Names of the layers, in forward order (from the first recorded step)."""
        return [s.name for s in self.steps[0].layers] if self.steps else []

    def rows(self) -> list[dict[str, Any]]:
        """The tidy table: one dict per (recorded step, layer) with the :data:`WATCH_COLUMNS`."""
        out = []
        for rec in self.steps:
            for st in rec.layers:
                d = {k: getattr(st, k, None) for k in WATCH_COLUMNS if hasattr(st, k)}
                d["step"], d["loss"] = rec.step, rec.loss
                d["near_zero"] = rec.near_zero.get(st.name)
                d["update_ratio"] = rec.update_ratio.get(st.name)
                out.append({k: d.get(k) for k in WATCH_COLUMNS})
        return out

    def series(self, name: str, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of one statistic ``key`` (a column) of the layer called ``name``."""
        check_choice("key", key, [c for c in WATCH_COLUMNS if c not in ("step", "name", "kind", "activation")])
        check_choice("name", name, self.layer_names)
        steps, vals = [], []
        for r in self.rows():
            if r["name"] == name:
                steps.append(r["step"])
                v = r[key]
                vals.append(np.nan if v is None else float(v))
        return np.array(steps, dtype=int), np.array(vals, dtype=float)

    def histograms(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps, edges, counts[step, bin]) of the activation histograms of layer ``name``."""
        check_choice("name", name, self.layer_names)
        steps, counts, edges = [], [], None
        for rec in self.steps:
            for st in rec.layers:
                if st.name == name and st.hist is not None:
                    steps.append(rec.step)
                    counts.append(st.hist.counts)
                    edges = st.hist.edges
        if edges is None:
            return np.zeros(0, int), np.zeros(0), np.zeros((0, 0))
        return np.array(steps), edges, np.array(counts)

    def probe_result(self, step: int) -> ProbeResult:
        """The recorded ``step`` as a ProbeResult, with the verdicts of that step."""
        from initlab.diagnostics._verdicts import verdicts

        recorded = [r.step for r in self.steps]
        if step not in recorded:
            raise ValueError(f"The 'step' argument must be a recorded step ({_brief(recorded)}); got {step!r}.")
        res = self.steps[recorded.index(step)].probe_result(self.model)
        res.verdicts = verdicts(res)
        return res

    @property
    def verdicts(self) -> list[WatchVerdict]:
        """Each problem of the probe's verdict engine once, with the first recorded step showing it."""
        if self._verdicts is None:
            from initlab.diagnostics._verdicts import verdicts

            first: dict[tuple[str, int], tuple[int, Verdict, str]] = {}
            count: dict[tuple[str, int], int] = {}
            for rec in self.steps:
                names = {s.index: s.name for s in rec.layers}
                bad = next((s for s in rec.layers if not (math.isfinite(s.mean) and math.isfinite(s.std))), None)
                loss_bad = rec.loss is not None and not math.isfinite(rec.loss)
                if bad is not None or loss_bad:
                    # the run diverged: later steps only repeat it, and their statistics mean nothing
                    where = (f"non-finite activations from layer {bad.index} ({bad.name})" if bad is not None
                             else "non-finite loss")
                    loss_txt = "" if rec.loss is None else f", loss {rec.loss}"
                    v = Verdict("diverged", bad.index if bad is not None else 0,
                                f"training diverged: {where}{loss_txt}",
                                "lower the learning rate, or fix the init flagged before it")
                    first[("diverged", v.layer)] = (rec.step, v, bad.name if bad is not None else "loss")
                    count[("diverged", v.layer)] = 1
                    break
                for v in verdicts(rec.probe_result(self.model)):
                    key = (v.kind, v.layer)
                    count[key] = count.get(key, 0) + 1
                    if key not in first:
                        first[key] = (rec.step, v, names.get(v.layer, str(v.layer)))
            self._verdicts = sorted(
                (WatchVerdict(kind=v.kind, layer=v.layer, name=name, step=step, n_steps=count[key],
                              message=v.message, recommendation=v.recommendation)
                 for key, (step, v, name) in first.items()),
                key=lambda w: (w.step, w.layer))
        return list(self._verdicts)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: every=..., ``rows`` (the tidy table) and ``verdicts``."""
        return {"every": self.every, "model": self.model, "steps": [r.step for r in self.steps],
                "rows": self.rows(), "verdicts": [v.to_dict() for v in self.verdicts]}

    def to_pandas(self) -> Any:
        """The tidy table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Watch.to_pandas needs pandas (pip install pandas); "
                              "Watch.rows() gives the same table as a list of dicts.") from None
        return pd.DataFrame(self.rows(), columns=list(WATCH_COLUMNS))

    def to_csv(self, path: str) -> str:
        """Write the tidy table to ``path`` as CSV (written to a temporary file, then renamed)."""
        import os
        import tempfile

        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".watch-", suffix=".csv", dir=folder)
        try:
            with os.fdopen(fd, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(WATCH_COLUMNS), lineterminator="\n")
                w.writeheader()
                for r in self.rows():
                    w.writerow({k: "" if v is None else v for k, v in r.items()})
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def to_parquet(self, path: str) -> str:
        """Write the tidy table to ``path`` as Parquet (needs pyarrow)."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("Watch.to_parquet needs pyarrow (pip install pyarrow); use to_csv otherwise.") from None
        rows = self.rows()
        table = pa.Table.from_pylist(rows) if rows else pa.table({k: [] for k in WATCH_COLUMNS})
        pq.write_table(table, path)
        return path

    def save(self, path: str) -> str:
        """Write this Watch to the JSON file ``path`` (atomically, no pickle); :meth:`load` reads
        it back with the same rows, histograms and verdicts (:mod:`initlab.diagnostics._watch_io`)."""
        from initlab.diagnostics._watch_io import save_watch

        return save_watch(self, path)

    @classmethod
    def load(cls, path: str) -> "Watch":
        """The Watch saved in ``path`` by :meth:`save`; ValueError saying why for a file that is
        not an initlab watch file or is damaged, FileNotFoundError for a missing one."""
        from initlab.diagnostics._watch_io import load_watch

        return load_watch(path)

    def plot(self, path: str | None = None) -> Any:
        """The colorful-dimension plot (per layer, the activation histogram over the recorded
        steps, log counts) with each layer's mean, std and near-zero fraction over time below."""
        from initlab.diagnostics import _plots

        return _plots.watch_summary(self, path)

    def __repr__(self) -> str:
        steps = [r.step for r in self.steps]
        return f"Watch(every={self.every}, steps={_brief(steps)}, layers={len(self.layer_names)})"

    def __str__(self) -> str:
        lines = [repr(self)]
        if self.steps:
            last = self.steps[-1]
            lines.append(f"last recorded step {last.step}" + ("" if last.loss is None else f", loss {last.loss:.4g}"))
        for v in self.verdicts:
            lines.append(f"! {v}")
        if self.steps and not self.verdicts:
            lines.append("no problem seen at any recorded step")
        return "\n".join(lines)


def _brief(xs: list[int]) -> str:
    if len(xs) <= 6:
        return str(xs)
    return f"[{xs[0]}, {xs[1]}, ..., {xs[-1]}] ({len(xs)} steps)"


def _as_float(loss: Any) -> float:
    if hasattr(loss, "detach"):
        loss = loss.detach()
        if getattr(loss, "numel", lambda: 1)() != 1:
            raise ValueError(f"The 'loss' argument must be a scalar; got a tensor of shape {tuple(loss.shape)}.")
        loss = loss.item()
    try:
        return float(loss)
    except (TypeError, ValueError):
        bad_type("loss", "a number or a 0-d tensor", loss)


# ------------------------------------------------------------------------------------------------
# The torch side: hooks that read, never write.


@dataclass
class _Row:
    st: LayerStats
    module: Any
    kind: str  # param | act | norm
    activation: _activations.Activation | None
    samples: dict[str, Any]
    out: Any = None
    paired: bool = False
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    near_zero: float | None = None


class _Pending:
    """The step being recorded: rows from its forward pass, gradients as its backward runs."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.rows: list[_Row] = []
        self.loss: float | None = None
        self.input_stats: tuple[float, float, float | None] = (0.0, 0.0, None)
        self.batch = 0
        self.snapshots: dict[int, Any] = {}
        self.weight_grads: dict[int, np.ndarray] = {}
        self.grad_handles: list[Any] = []


class _TorchHooks:
    def __init__(self, watch: Watch, model: Any, *, loss_reduction: str, bins: int, hist_margin: float,
                 near_zero: float, hist_sample: int | None) -> None:
        self.watch = watch
        self.model = model
        self.loss_reduction = loss_reduction
        self.bins = bins
        self.hist_margin = hist_margin
        self.near_zero = near_zero
        self.hist_sample = hist_sample
        self.handles: list[Any] = []
        self.names: dict[Any, str] = {}
        self.kinds: dict[Any, str] = {}
        self.step = -1
        self.pending: _Pending | None = None
        self.in_forward = 0
        self.active = False  # inside the root forward of a recorded training step
        self.edges = _Edges(bins, hist_margin)

    # hooks ---------------------------------------------------------------------------------------
    def install(self) -> None:

        if self.handles:
            raise RuntimeError("This watch is already active; a Watch can be entered once.")
        for name, mod in self.model.named_modules():
            kind = _module_kind(mod)
            if kind in ("param", "act", "norm"):
                self.names[mod] = name or type(mod).__name__
                self.kinds[mod] = kind
                self.handles.append(mod.register_forward_hook(self._module_hook))
        if not self.names:
            self.remove()
            raise ValueError(f"The 'model' argument has no module to watch (Linear, ConvNd, activation or norm "
                             f"modules); got {type(self.model).__name__}.")
        self.handles.append(self.model.register_forward_pre_hook(self._root_pre, with_kwargs=True))
        self.handles.append(self.model.register_forward_hook(self._root_post, always_call=True))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        if self.pending is not None:
            for h in self.pending.grad_handles:
                h.remove()
            self.pending.grad_handles = []

    def _root_pre(self, mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.in_forward += 1
        if self.in_forward > 1 or not mod.training:
            return
        self.finish()
        self.step += 1
        if self.step % self.watch.every:
            return
        import torch

        p = _Pending(self.step)
        self.active = True
        x = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        if x is not None and x.is_floating_point() and x.numel():
            xn = _np(x)
            with np.errstate(all="ignore"):
                m = moments(xn)
                p.input_stats = (m.mean, m.std, mean_pairwise_cosine(xn))
            p.batch = int(x.shape[0]) if x.ndim else 1
        for m_, kind in self.kinds.items():
            w = getattr(m_, "weight", None)
            if kind == "param" and isinstance(w, torch.Tensor):
                p.snapshots[id(m_)] = w.detach().clone()
                if w.requires_grad:
                    p.grad_handles.append(w.register_hook(self._weight_grad(p, id(m_))))
        self.pending = p

    def _root_post(self, mod: Any, args: Any, out: Any) -> None:
        self.in_forward = max(self.in_forward - 1, 0)
        if self.in_forward == 0:
            self.active = False

    def _weight_grad(self, p: _Pending, key: int) -> Any:
        def fn(g: Any) -> None:
            p.weight_grads[key] = _np(g).copy()
        return fn

    def _grad(self, row: _Row, key: str) -> Any:
        def fn(g: Any) -> None:
            row.grads[key] = _np(g).copy()
        return fn

    def _module_hook(self, mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        if self.pending is None or not self.active:
            return
        with np.errstate(all="ignore"):  # a diverging run gives inf/nan statistics, reported as diverged
            self._record(mod, inp, out)

    def _record(self, mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        p = self.pending
        if p is None:
            return
        import torch

        if not isinstance(out, torch.Tensor) or not out.is_floating_point():
            return
        kind = self.kinds[mod]
        name = self.names[mod]
        o = _np(out)
        xin = inp[0] if inp and isinstance(inp[0], torch.Tensor) else None
        if kind == "act":
            act = _activations.from_torch(mod)
            prev = p.rows[-1] if p.rows else None
            if prev is not None and prev.kind == "param" and not prev.paired and xin is prev.out:
                pre = None if xin is out else _np(xin)
                prev.samples.pop("preact_moments", None)
                act_stats(prev.st, o, act, pre, prev.samples, self.hist_sample)
                prev.activation, prev.paired, prev.out = act, True, out
                prev.near_zero = _near_zero(o, self.near_zero)
                if out.requires_grad:
                    out.register_hook(self._grad(prev, "act"))
                return
            row = _Row(new_layer(len(p.rows) + 1, name, "activation", act), mod, "act", act, {}, out)
            if xin is not None and xin is not out:
                pi = _np(xin)
                preact_stats(row.st, pi, row.samples, self.hist_sample)
                row.samples.pop("preact_moments", None)
                act_stats(row.st, o, act, pi, row.samples, self.hist_sample)
                if xin.requires_grad:
                    xin.register_hook(self._grad(row, "preact"))
            else:
                act_stats(row.st, o, act, None, row.samples, self.hist_sample)
        elif kind == "param":
            linear = _activations.get("linear")
            row = _Row(new_layer(len(p.rows) + 1, name, type(mod).__name__.lower(), linear), mod, "param", linear, {}, out)
            preact_stats(row.st, o, row.samples, self.hist_sample)
            act_stats(row.st, o, linear, o, row.samples, self.hist_sample)
            weight_stats(row.st, _np(mod.weight))
        else:
            row = _Row(new_layer(len(p.rows) + 1, name, type(mod).__name__.lower(), None), mod, "norm", None, {}, out)
            act_stats(row.st, o, None, None, row.samples, self.hist_sample)
            w = getattr(mod, "weight", None)
            if isinstance(w, torch.Tensor):
                weight_stats(row.st, _np(w))
        row.near_zero = _near_zero(o, self.near_zero)
        if out.requires_grad:
            out.register_hook(self._grad(row, "act" if kind != "param" else "preact"))
        p.rows.append(row)

    def log_loss(self, loss: Any) -> None:
        value = _as_float(loss)
        if self.pending is not None and self.pending.step == self.step:
            self.pending.loss = value

    # finishing a step ----------------------------------------------------------------------------
    def finish(self) -> None:
        """Fill the backward statistics and update sizes of the pending step and record it."""
        with np.errstate(all="ignore"):  # a diverging run gives inf/nan statistics, reported as diverged
            self._finish()

    def _finish(self) -> None:
        p, self.pending = self.pending, None
        if p is None:
            return
        import torch

        for h in p.grad_handles:
            h.remove()
        backward = any(r.grads for r in p.rows)
        scale = float(p.batch) if self.loss_reduction == "mean" else 1.0
        layers, near, upd = [], {}, {}
        for r in p.rows:
            st = r.st
            gpre = r.grads.get("act") if r.kind == "norm" else r.grads.get("preact")
            gact = r.grads.get("act", gpre if r.kind == "param" and not r.paired else None)
            gw = p.weight_grads.get(id(r.module)) if r.kind == "param" else None
            if backward:
                w = getattr(r.module, "weight", None) if r.kind == "param" else None
                backward_stats(st, grad_preact=None if gpre is None else gpre * scale,
                               grad_act=None if gact is None else (gpre * scale if gact is gpre else gact * scale),
                               grad_weight=None if gw is None else gw * scale,
                               weight=None if w is None else _np(p.snapshots.get(id(r.module), w)),
                               samples=r.samples, batch=max(p.batch, 1), hist_sample=self.hist_sample)
            snap = p.snapshots.get(id(r.module))
            if snap is not None:
                with torch.no_grad():
                    now = r.module.weight.detach()
                    n0 = float(torch.linalg.vector_norm(snap.double()))
                    d = float(torch.linalg.vector_norm((now - snap).double()))
                upd[st.name] = d / n0 if n0 > 0 else math.inf
            near[st.name] = r.near_zero
            layers.append(st)
        self._histograms(p.rows)
        self.watch.add_step(p.step, layers, loss=p.loss, input_stats=p.input_stats, batch=p.batch,
                            backward=backward, near_zero=near, update_ratio=upd)

    def _histograms(self, rows: list[_Row]) -> None:
        self.edges.apply([r.st for r in rows], [r.samples for r in rows], [r.activation for r in rows])


class _Edges:
    """Fixed histogram edges per (layer, quantity), chosen at the first recorded step (see the
    module docstring), and the histograms of later steps on them."""

    def __init__(self, bins: int, margin: float) -> None:
        self.bins = bins
        self.margin = margin
        self.edges: dict[tuple[str, str], np.ndarray] = {}

    def apply(self, layers: list[LayerStats], samples: list[dict[str, Any]],
              activations: list[_activations.Activation | None]) -> None:
        for key, attr in (("act", "hist"), ("preact", "preact_hist"), ("grad", "grad_hist")):
            for st, s, act in zip(layers, samples, activations):
                vals = s.get(key)
                if vals is None:
                    continue
                ek = (st.name, key)
                if ek not in self.edges:
                    self.edges[ek] = _fixed_edges(vals, self.bins, bounded_range(act) if key == "act" else None,
                                                  self.margin)
                setattr(st, attr, histogram(vals, self.edges[ek]))


def _module_kind(module: Any) -> str | None:
    """What the watch records of a module: "param" (Linear, ConvNd: its output is a
    pre-activation), "act" (a leaf activation module :func:`initlab.activations.from_torch`
    knows), "norm" (BatchNorm, LayerNorm, GroupNorm), else None. The watch records modules (its
    hooks run inside the user's own forward); the probe's op-level capture also sees functional
    calls, attention and recurrent internals."""
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.conv import _ConvNd

    if isinstance(module, (nn.Linear, _ConvNd)):
        return "param"
    if isinstance(module, (_NormBase, nn.LayerNorm, nn.GroupNorm)):
        return "norm"
    if not list(module.children()) and _activations.from_torch(module) is not None:
        return "act"
    return None


def _fixed_edges(values: np.ndarray, bins: int, bounded: tuple[float, float] | None, margin: float) -> np.ndarray:
    if bounded is not None:
        return np.linspace(bounded[0], bounded[1], bins + 1)
    v = values[np.isfinite(values)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (-1.0, 1.0)
    if not hi > lo:
        lo, hi = lo - 1.0, hi + 1.0
    span = hi - lo
    return np.linspace(lo - margin * span, hi + margin * span, bins + 1)


def _near_zero(a: np.ndarray, t: float) -> float:
    flat = a.reshape(-1)
    return float(np.count_nonzero((flat <= t) & (flat >= -t))) / max(flat.size, 1)


def _np(t: Any) -> np.ndarray:
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.numpy()


def watch(
    model: Any,
    *,
    every: int = 1,
    loss_reduction: str = "mean",
    bins: int = 40,
    hist_margin: float = 0.5,
    near_zero: float = NEAR_ZERO,
    hist_sample: int | None = HIST_SAMPLE,
) -> Watch:
    """Watch every layer of a torch ``model`` while a training loop runs (a context manager).

    Records, every ``every`` training steps (a step = one forward call of ``model`` in training
    mode), each layer's forward and gradient statistics as :func:`initlab.probe` defines them,
    the fraction of near-zero activations (|x| ≤ ``near_zero``), the relative weight update
    ‖ΔW‖_F/‖W‖_F of the optimizer step that follows, and the loss given to
    :meth:`Watch.log_loss`. The model and the training are not changed (bitwise); the hooks are
    removed when the block exits, also on an exception. See the module docstring for the
    definitions, and fastai's ActivationStats (Howard & Gugger 2020, "Fastai: a layered API for
    deep learning") for the colorful-dimension plot that :meth:`Watch.plot` draws.

    Args:
        model: a ``torch.nn.Module``.
        every: record every ``every``-th step (0, every, 2·every, ...).
        loss_reduction: "mean" (the loss is the batch mean, torch's default: the deltas are
            multiplied by the batch size to give the probe's per-sample ∂ℓ_b/∂h) or "sum".
        bins: histogram bins; hist_margin: widening of unbounded histogram ranges on each side,
            as a fraction of the range seen at the first recorded step.
        near_zero: the threshold of the near-zero fraction (fastai: 0.05).
        hist_sample: values per layer binned into the histograms (None: all).

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x, y = torch.ones(16, 4), torch.zeros(16, 1)
    >>> with watch(model, every=2) as w:
    ...     for _ in range(5):
    ...         opt.zero_grad(); loss = ((model(x) - y) ** 2).mean(); loss.backward(); opt.step()
    ...         w.log_loss(loss)
    >>> [r.step for r in w.steps], w.layer_names
    ([0, 2, 4], ['0', '2'])
    """
    from initlab.diagnostics._probe_torch import is_torch_module

    if not is_torch_module(model):
        bad_type("model", "a torch.nn.Module (for initlab's own engine use the Probe callback of fit)", model)
    check_choice("loss_reduction", loss_reduction, ["mean", "sum"])
    bins = check_int("bins", bins, low=1)
    hist_margin = check_number("hist_margin", hist_margin, low=0.0)
    near_zero = check_number("near_zero", near_zero, low=0.0)
    if hist_sample is not None:
        hist_sample = check_int("hist_sample", hist_sample, low=1)
    w = Watch(every=every, model="torch")
    w._hooks = _TorchHooks(w, model, loss_reduction=loss_reduction, bins=bins, hist_margin=hist_margin,
                           near_zero=near_zero, hist_sample=hist_sample)
    return w


# ------------------------------------------------------------------------------------------------
# initlab's own engine: the Probe callback of Network.fit.


class Probe(Callback):
    """Watch an :class:`initlab.nn.Network` while :meth:`~initlab.nn.Network.fit` trains it.

    Every ``every`` steps the callback turns the step's trace (taken after its backward pass,
    before its update) into the probe's per-layer statistics (the same function as
    :func:`initlab.probe` on a Network: rows ``layers.i``), with ``near_zero``, the relative update
    ‖ΔW‖/‖W‖ of that step's update, the step's loss, and fixed histogram edges; the result is a
    :class:`Watch` in :attr:`watch` (the same object a torch :func:`watch` gives). The deltas are
    the per-sample ∂ℓ_b/∂h of the engine's loss (the trace holds the gradient of the batch mean
    times the optimizer's grad_scale; it is rescaled by batch/grad_scale).

    >>> import numpy as np
    >>> from initlab.nn import Network
    >>> from initlab.data import moons
    >>> X, y, _, _ = moons(64, 0, 0.1, rng=0)
    >>> probe = Probe(every=5)
    >>> hist = Network([2, 8, 1], "tanh", "sigmoid", rng=0).fit(X, y, epochs=10, lr=0.1, callbacks=[probe])
    >>> probe.steps, probe.watch.layer_names, probe.series("std").shape
    ([0, 5], ['layers.0', 'layers.1'], (2, 2))
    """

    wants_trace = True

    def __init__(self, every: int = 1, *, bins: int = 40, hist_margin: float = 0.5, near_zero: float = NEAR_ZERO,
                 hist_sample: int | None = HIST_SAMPLE) -> None:
        self.watch = Watch(every=every, model="network")
        self.every = self.watch.every
        bins = check_int("bins", bins, low=1)
        self._edges = _Edges(bins, check_number("hist_margin", hist_margin, low=0.0))
        self._near = check_number("near_zero", near_zero, low=0.0)
        self._hist_sample = None if hist_sample is None else check_int("hist_sample", hist_sample, low=1)
        self._grad_scale = 1.0
        self._pending: dict[str, Any] | None = None

    @property
    def steps(self) -> list[int]:
        """The recorded steps (complete ones: a step is added once its update is known)."""
        return [r.step for r in self.watch.steps]

    def series(self, key: str) -> np.ndarray:
        """``[layers, recorded steps]`` array of one statistic (a :data:`WATCH_COLUMNS` name)."""
        return np.array([self.watch.series(name, key)[1] for name in self.watch.layer_names])

    def wants_trace_at(self, step: int) -> bool:
        return step % self.every == 0

    def on_train_begin(self, net: Any, history: Any, epochs: int, steps_per_epoch: int) -> None:
        self._grad_scale = float(getattr(history, "grad_scale", 1.0)) or 1.0
        self._pending = None

    def on_step(self, net: Any, step: int, loss: float, trace: list[Any] | None) -> Any:
        with np.errstate(all="ignore"):  # a diverging run gives inf/nan statistics, reported as diverged
            self._finish(net)
            if trace is not None:
                self._record(net, step, loss, trace)
        return None

    def on_train_end(self, net: Any, history: Any) -> None:
        with np.errstate(all="ignore"):
            self._finish(net)

    def _record(self, net: Any, step: int, loss: float, trace: list[Any]) -> None:
        from initlab.diagnostics._probe_numpy import backward_trace_stats, forward_trace_stats, layer_weight

        layers, samples = forward_trace_stats(net, trace, self._hist_sample)
        batch = int(trace[0].inputs.shape[0])
        backward = any(tr.grad_preact is not None for tr in trace)
        if backward:
            backward_trace_stats(net, trace, layers, samples, self._hist_sample, scale=batch / self._grad_scale)
        self._edges.apply(layers, samples, [la.activation for la in net.layers])
        xin = trace[0].inputs
        m = moments(xin)
        weights = [layer_weight(la) for la in net.layers]
        self._pending = {
            "step": step, "layers": layers, "loss": float(loss), "batch": batch, "backward": backward,
            "input": (m.mean, m.std, mean_pairwise_cosine(xin)),
            "near": {st.name: _near_zero(tr.act, self._near) for st, tr in zip(layers, trace)},
            "snap": [None if w is None else w.copy() for w in weights],
        }

    def _finish(self, net: Any) -> None:
        from initlab.diagnostics._probe_numpy import layer_weight

        p, self._pending = self._pending, None
        if p is None:
            return
        upd: dict[str, float | None] = {}
        for st, la, snap in zip(p["layers"], net.layers, p["snap"]):
            if snap is not None:
                now = layer_weight(la)
                n0 = float(np.linalg.norm(snap.astype(np.float64)))
                d = float(np.linalg.norm((now - snap).astype(np.float64)))
                upd[st.name] = d / n0 if n0 > 0 else math.inf
        self.watch.add_step(p["step"], p["layers"], loss=p["loss"], input_stats=p["input"], batch=p["batch"],
                            backward=p["backward"], near_zero=p["near"], update_ratio=upd)
