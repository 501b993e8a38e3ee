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
  exception. The training is bitwise the same with and without the watch. A step that is not
  recorded runs two hooks on the root module and nothing else: the per-layer hooks exist only
  during a recorded forward pass and on its tensors (with ``every=1`` the module hooks stay
  between steps, and return at once on a forward in eval mode).

* **Which rows** (``capture``). ``"modules"`` (default, fast): one row per ``nn.Linear`` /
  ``ConvNd`` (an activation module that takes its output directly is merged into it, as the
  probe merges it), activation module and norm module (BatchNorm, InstanceNorm, LayerNorm,
  GroupNorm, RMSNorm), named, kinded and computed as the probe's rows of those modules (a
  module called twice gets ``name.1``, as in the probe). What runs in ``forward()`` outside
  such modules is not seen: a Linear followed by a functional ``F.relu`` is a pre-activation
  row (activation "linear") where the probe's row of that name has the ReLU merged in, and
  residual adds, pooling, attention internals and recurrent layers have no row.
  ``"ops"``: each recorded step runs the probe's own op-level capture (its TorchFunctionMode and
  module-path hooks, :mod:`initlab.diagnostics._probe_torch`), so the rows and their names are
  exactly :func:`initlab.probe`'s, computed by the probe's NumPy functions (slower per recorded
  step; on CUDA through CPU copies). Only the probe's handlers that re-run an operation in pieces
  are left out (multi-head attention step by step, an RNN layer by layer): they run as one
  operation and get no rows, so the training stays bitwise the same. Under ``"modules"`` the
  first recorded step also looks (a function mode that only observes) for the operations the
  probe has rows for that run outside the watched modules, and lists them in
  :attr:`Watch.notes`.
* **Cost** (``"modules"``). Two paths compute the same numbers.

  - *Kernels* (CPU tensors of float32/float64 whose channels are the last axis or axis 1:
    linear and conv layers, their activations and norms, the input; numba installed, as the
    ``torch`` extra installs it): the hook that sees a tensor reads it once with a fused kernel
    (:mod:`initlab.diagnostics._kernels`) that forms the probe's sums (channel sums, Σx²,
    channel maxima, minimum, in float64 accumulators), the near-zero count, the cosine sums of
    the first 64 samples (:func:`~initlab.diagnostics._stats.cosine_from_sums`) and the
    histogram on its fixed edges, from the tensor's own memory (no copy, unless the tensor is not
    contiguous): nothing is kept for later, so an in-place operation later in the step cannot
    change what was recorded. Each
    weight is copied and summed in one pass; when the step ends, one pass forms ‖ΔW‖ and (with
    ``every=1``) the copy and sums for the next step. The probe's centered float64 fallback
    (a variance below 1e-3 of E[x²], or not finite) is applied at once. From the second
    recorded step on, the hooks' Python work is traced once and later recorded steps replay it
    (:mod:`initlab.diagnostics._watch_plan`): each hook checks that the step is the traced one
    (modules, shapes, dtypes, which tensor feeds which, in-place writes) and runs the same
    kernels into one array of numbers per step; a step that departs from the trace (another
    batch size, a branch taken on some steps, a backward not run) goes on by the general path
    from where it departed, with the same rows. The step is kept as that array until the Watch
    is read (numbers the garbage collector does not visit).
  - *Torch operations* (other tensors: CUDA, float16/bfloat16, channels on another axis; or
    numba missing): the hook copies the tensor into its slot of a buffer
    that stacks the step's tensors of the same shape and role, kept between steps; when the
    step ends, each stack gets one set of torch operations on its device and dtype for all of
    its tensors (the same sums, counts and samples), all the step's histograms are binned in
    one bincount, and the small results are moved to NumPy together once per recorded step
    (one synchronisation on CUDA).

  The rows (the final scalars in float64, the histograms, the verdicts' inputs) are built from
  those numbers when the Watch is first read (:attr:`Watch.steps`, :meth:`Watch.rows`,
  verdicts, export, plots), not in the training loop. ‖ΔW‖ is the norm of the difference
  between the weight and its copy taken just before the recorded step (one copy of the watched
  weights, in buffers kept for the watch).
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
  the end bins. They bin a strided subsample of ``hist_sample`` values (4096 by default; the
  probe bins 65 536) with the probe's binning rule.
* Verdicts over time: the probe's verdict engine (:func:`initlab.diagnostics.verdicts`) is run on
  every recorded step. The first recorded step also measures each weight's structure and excess
  kurtosis as the probe does (``weight_init``, ``weight_kurtosis``: a one-time cost), so its
  verdicts name the init in place in the probe's words; later steps leave them out (the weights
  have moved) and their verdicts give the weights' scale. :attr:`Watch.verdicts` lists each
  problem once, with the layer and the first step where it appeared (a layer that dies at step 40
  is named with step 40).
"""

from __future__ import annotations

import csv
import functools
import os
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab import activations as _activations
from initlab._validation import bad_type, check_choice, check_int, check_number
from initlab.diagnostics._measure import bounded_range, new_layer
from initlab.diagnostics._result import LayerStats, ProbeResult, Verdict
from initlab.diagnostics._stats import (HIST_SAMPLE, Histogram, Moments, cosine_from_sums, hist_edges,
                                       histogram, mean_pairwise_cosine, moments)
from initlab.diagnostics._stats import near_zero as near_fraction
from initlab.nn.callbacks import Callback

__all__ = ["watch", "Watch", "WatchStep", "WatchVerdict", "WATCH_COLUMNS", "Probe"]

NEAR_ZERO = 0.05
WATCH_HIST_SAMPLE = 4096  # values per layer and step in the watch's histograms (the probe: HIST_SAMPLE)
CAPTURES = ("modules", "ops")

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
        self._steps: list[WatchStep] = []
        self._lazy: list[Any] = []  # recorded steps whose rows are built when the Watch is read
        self.notes: list[str] = []  # what the watch could not record (e.g. functional ops it does not see)
        self._verdicts: list[WatchVerdict] | None = None
        self._hooks: _TorchHooks | None = None

    @property
    def steps(self) -> list[WatchStep]:
        """The :class:`WatchStep` records, in step order. (A torch watch moves each recorded
        step's raw numbers to the host when the step ends and builds its rows here, on the first
        read after it: the training loop does not pay for them.)"""
        if self._lazy:
            self._build_lazy()
        return self._steps

    @steps.setter
    def steps(self, value: list[WatchStep]) -> None:
        self._lazy = []
        self._steps = value
        self._verdicts = None

    def _build_lazy(self) -> None:
        todo, self._lazy = self._lazy, []
        with np.errstate(all="ignore"):  # a diverging run gives inf/nan statistics, reported as diverged
            for build in todo:
                if type(build) is tuple:  # a step kept as numbers (_TorchHooks._freeze)
                    assert self._hooks is not None
                    self._hooks._thaw(build)
                else:
                    build()

    # -- filling ---------------------------------------------------------------------------------
    def add_step(self, step: int, layers: list[LayerStats], *, loss: float | None = None,
                 input_stats: tuple[float, float, float | None] = (0.0, 0.0, None), batch: int = 0,
                 backward: bool = False, near_zero: dict[str, float] | None = None,
                 update_ratio: dict[str, float | None] | None = None) -> None:
        """Append one recorded step (steps must increase)."""
        steps = self.steps
        if steps and step <= steps[-1].step:
            raise ValueError(f"The 'step' argument must increase; got {step} after {steps[-1].step}.")
        steps.append(WatchStep(step=int(step), layers=list(layers), loss=loss, input_mean=input_stats[0],
                                    input_std=input_stats[1], input_cosine=input_stats[2], batch=batch,
                                    backward=backward, near_zero=dict(near_zero or {}),
                                    update_ratio=dict(update_ratio or {})))
        self._verdicts = None

    def log_loss(self, loss: Any) -> None:
        """Record the training loss of the current step (a float or a 0-d tensor; read, not kept).

        Call it once per step, after the forward pass; steps that are not recorded ignore it."""
        h = self._hooks
        if h is not None:
            # an unrecorded step given a one-element tensor: nothing to keep (anything else is checked by
            # _loss_value, which raises for a bad argument on any step)
            if h.rp is None and h.pending is None and type(loss) is h.tensor_t and loss.numel() == 1:
                return
            h.log_loss(loss)
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
        """Plain data: every=..., ``rows`` (the tidy table), ``verdicts`` and ``notes``."""
        return {"every": self.every, "model": self.model, "steps": [r.step for r in self.steps],
                "rows": self.rows(), "verdicts": [v.to_dict() for v in self.verdicts], "notes": list(self.notes)}

    def to_pandas(self) -> Any:
        """The tidy table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Watch.to_pandas needs pandas (pip install pandas); "
                              "Watch.rows() gives the same table as a list of dicts.") from None
        return pd.DataFrame(self.rows(), columns=list(WATCH_COLUMNS))

    def to_csv(self, path: str) -> str:
        """Write the tidy table to ``path`` as CSV (atomically: :func:`initlab._io.atomic_write`)."""
        from initlab._io import atomic_write

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(WATCH_COLUMNS), lineterminator="\n")
                w.writeheader()
                for r in self.rows():
                    w.writerow({k: "" if v is None else v for k, v in r.items()})

        atomic_write(path, write)
        return path

    def to_parquet(self, path: str) -> str:
        """Write the tidy table to ``path`` as Parquet (needs pyarrow)."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError("Watch.to_parquet needs pyarrow (pip install pyarrow); use to_csv otherwise.") from None
        from initlab._io import atomic_write

        rows = self.rows()
        table = pa.Table.from_pylist(rows) if rows else pa.table({k: [] for k in WATCH_COLUMNS})
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
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
        for n in self.notes:
            lines.append(f"note: {n}")
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
#
# Speed. On the CPU (float32/float64, channels last) with numba, each recorded tensor is read once
# in its hook by a fused kernel (:meth:`_TorchHooks._fast_member`, :class:`_Fast`; the weights by
# :meth:`_TorchHooks._fast_snapshot` and :meth:`_TorchHooks._fast_update_norms`). Otherwise a
# recorded step copies each activation, input and delta into a stack of its shape and
# role (:class:`_Group`; float16/bfloat16 read as float32) and computes every statistic with a
# few torch operations per stack, on the tensors' own device and dtype (:meth:`_group_stats`),
# never through a float64 copy of a whole tensor; all histograms of the step are binned in one
# bincount when the step ends (:meth:`_bin_step`). Off the CPU (CUDA...) each torch operation is a
# kernel launch that costs the CPU 10-100+ µs, and a small model's step is launch-bound: there
# (:func:`_launch_bound`) the path takes no BLAS call and one reduction per quantity per stack
# (Σx² by one float64-accumulated vector_norm; a weight's and a gradient's moments by one
# var_mean, the weights' copies of one size stacked into one; the cosine by norms and a nansum),
# about 80 operations for a recorded step of the issue's 784-256×4-10 MLP, where the CPU path
# takes about 120 (benchmarks/watch_ops.py counts them). Each small result is kept on the device
# in a :class:`_Deferred`; when the step is complete they are concatenated and copied to NumPy
# ONCE (one synchronisation on CUDA). The final scalars (pooled mean and std, sq_mean, chan_var,
# cosine...) are formed in float64 from those few numbers when the Watch is read (Watch.steps
# builds the pending steps). A
# step that is not recorded costs two hook calls on the root module: the per-module forward
# hooks exist only during the forward pass of a recorded step (with every=1 they stay, every step
# being recorded), and the gradient hooks only on its tensors.

_COS_SAMPLES, _COS_FEATURES = 64, 4096  # mean_pairwise_cosine's defaults (k, max_features)
_NORM_OPS = {"LayerNorm": ("layer_norm", -1), "RMSNorm": ("rms_norm", -1), "GroupNorm": ("group_norm", 1)}
_ACT_OPS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "GELU": "gelu",
            "SiLU": "silu", "ELU": "elu", "SELU": "selu", "Mish": "mish", "Softplus": "softplus"}


class _Deferred:
    """The numbers of one recorded step, kept on the device until the step is complete, then
    concatenated (one concatenation per dtype, no conversion) and copied to NumPy at once; read
    back by (dtype, slice). On CUDA this is the step's one synchronisation."""

    def __init__(self) -> None:
        self.parts: dict[Any, list[Any]] = {}
        self.sizes: dict[Any, int] = {}
        self.host: dict[Any, np.ndarray] = {}
        self.lazy: list[tuple[Any, Any]] = []  # (_Sums, flat tensor): the device path's weights, done at the end

    def put(self, t: Any) -> tuple[Any, slice]:
        flat = t if t.ndim == 1 else t.reshape(-1)
        key = flat.dtype
        self.parts.setdefault(key, []).append(flat)
        start = self.sizes.get(key, 0)
        self.sizes[key] = start + flat.numel()
        return key, slice(start, start + flat.numel())

    def resolve(self) -> None:
        import torch

        if not self.parts:
            return
        dev = next(iter(self.parts.values()))[0].device
        groups, offsets, at = [], {}, 0
        for key, parts in self.parts.items():
            flat = torch.cat([q if q.device == dev else q.to(dev) for q in parts]) if len(parts) > 1 else parts[0]
            groups.append(flat.to(device=dev, dtype=torch.float64))  # exact for float32 and counts < 2⁵³
            offsets[key] = at
            at += flat.numel()
        host = (torch.cat(groups) if len(groups) > 1 else groups[0]).cpu().numpy()  # the one transfer
        self.host = {key: host[off:] for key, off in offsets.items()}
        self.parts = {}

    def __getitem__(self, ref: tuple[Any, slice]) -> np.ndarray:
        return self.host[ref[0]][ref[1]]


_KERNEL_TYPES: list[Any] = []  # torch.float32, torch.float64, torch.strided (torch is imported lazily)


_WP: list[Any] = []


def _watch_plan() -> Any:
    """:mod:`initlab.diagnostics._watch_plan` (imported on first use: it imports this module)."""
    if not _WP:
        from initlab.diagnostics import _watch_plan as wp

        _WP.append(wp)
    return _WP[0]


def _version(t: Any) -> float:
    """``t._version`` (bumped by every in-place write), NaN where the tensor keeps none (an
    inference tensor): then never equal, so nothing measured before is reused."""
    try:
        return float(t._version)
    except (AttributeError, RuntimeError):
        return math.nan


def _np_flat(t: Any) -> np.ndarray | None:
    """A flat NumPy view of a CPU float32/float64 tensor (contiguous; a copy when it is not),
    for the fused kernels; None for any other tensor (the torch path)."""
    if not _KERNEL_TYPES:
        import torch

        _KERNEL_TYPES[:] = [torch.float32, torch.float64, torch.strided]
    f32, f64, strided = _KERNEL_TYPES
    dt = t.dtype
    if (dt is not f32 and dt is not f64) or not t.is_cpu or t.layout is not strided:
        return None
    try:
        return t.detach().numpy().reshape(-1)
    except (RuntimeError, TypeError):  # a tensor subclass, a conjugate or negative view...
        return None



def _empty_like(t: Any) -> Any:
    import torch

    return torch.empty_like(t, memory_format=torch.contiguous_format).detach()


def _host_moments(chan: np.ndarray, scal: np.ndarray, per_chan: int,
                  exact: tuple[float, float, float, float] | None = None) -> Moments:
    """One tensor's numbers read back as the probe's :class:`~initlab.diagnostics._stats.Moments`,
    by the probe's own rule (:func:`~initlab.diagnostics._stats.moments`): ``chan`` holds the
    channel sums Σ_c x (and, for activations, the channel maxima), ``scal`` the sum of squares
    Σx² (and the minimum); mean = Σx/n, var = Σx²/n − mean², sq_mean = mean_c (Σ_c x/n_c)²,
    chan_var = Σx²/n − sq_mean, all in float64. ``exact`` (mean, var, sq_mean, chan_var) replaces
    them where the probe recomputes them centered in float64 (var below 1e-3 of E[x²]: see
    :meth:`_TorchHooks._settle_moments`). Deltas have no extremes (min, max NaN, no channel
    maxima)."""
    sums = chan[0]
    c = sums.size
    n = max(per_chan, 1) * c
    cm = sums / max(per_chan, 1)
    mean = float(sums.sum()) / n
    ex2 = float(scal[0]) / n
    sq_mean = float(np.dot(cm, cm)) / c
    var, chan_var = ex2 - mean * mean, ex2 - sq_mean
    if exact is not None:
        mean, var, sq_mean, chan_var = exact
    cmax = chan[1] if chan.shape[0] > 1 else np.empty(0)
    lo = float(scal[1]) if scal.size > 1 else math.nan
    hi = float(cmax.max()) if cmax.size else math.nan
    return Moments(n, mean, math.sqrt(max(var, 0.0)), sq_mean, max(chan_var, 0.0), lo, hi, cmax)


def _launch_bound(t: Any) -> bool:
    """Whether each torch operation on ``t`` is a kernel launch the CPU issues (CUDA, MPS, XPU...:
    every device but the CPU). There the watch's cost is the NUMBER of operations (each 10-100+ µs
    of the CPU's time on CUDA), and a one-launch reduction (:func:`torch.var_mean`,
    :func:`torch.linalg.vector_norm` with float64 accumulation) replaces a BLAS dot (cuBLAS's
    is expensive to launch) or a chain of operations; on the CPU the dot and the sums stay (one
    read each, no temporary: faster there)."""
    return t.device.type != "cpu"


_STACK_MAX = 1 << 24  # values in one stack of same-size weight copies (Sums.lazy_moments)
_SU_HOST = 1 << 14  # a stack's cosine sums Σ_i x_i/‖x_i‖ up to this many values go to the host as they are


def _acc_dtype(t: Any) -> Any:
    """The dtype the device path accumulates its sums of squares and cosine sums in: float64,
    except on MPS (no float64 there)."""
    import torch

    return torch.float32 if t.device.type == "mps" else torch.float64


@dataclass
class _Sums:
    """Σx and Σx² of one large tensor (a weight or its gradient), put in the step's
    :class:`_Deferred`. On the CPU by one sum and one BLAS dot (a read each, no temporary), with
    the tensor kept when it may be read again (a weight's copy) for the probe's centered
    fallback (:meth:`settle`). A weight gradient is not kept (AccumulateGrad would then copy it
    instead of taking it): its sums are taken of x − c, with c the mean of its first 1,024
    values, so that a mean large beside the spread does not cancel (the probe's centered values,
    without keeping the gradient); on the CPU (nothing to wait for) its sums are read at once
    and the fallback applied in its hook (by :meth:`_HostSums.of`, ``host``). Off the CPU
    (:func:`_launch_bound`) by ONE
    :func:`torch.var_mean` (Welford's centered mean and variance: the probe's centered values
    directly, no cancellation to fall back from), ``mv`` their places in the step's numbers."""

    n: int
    s: Any = None
    q: Any = None
    ref: Any = None
    exact: tuple[float, float, float, float] | None = None
    shift: Any = None  # a gradient's sums are of x − c: c's place in the step's numbers
    mv: tuple[Any, Any] | None = None  # the device path: (mean, var)'s places in the step's numbers
    host: tuple[float, float] | None = None  # a CPU gradient's (Σx, Σx²), read in its hook

    @classmethod
    def of(cls, d: _Deferred, x: Any, keep: bool) -> "_Sums":
        import torch

        flat = x.detach().reshape(-1)
        if flat.dtype in (torch.float16, torch.bfloat16):
            flat = flat.float()
        if _launch_bound(flat) and flat.numel():  # one launch: the centered mean and variance
            if keep:  # a weight's copy (kept until the step ends): with the step's others (_lazy_moments)
                sums = cls(int(flat.numel()))
                d.lazy.append((sums, flat))
                return sums
            v, m = torch.var_mean(flat, correction=0)
            return cls(int(flat.numel()), mv=(d.put(m), d.put(v)))
        if not keep and flat.is_cpu:  # a gradient on the CPU: its sums read at once (no device to wait for), the
            # probe's centered fallback then applied from it while its hook runs (as the kernels' path does)
            h = _HostSums.of(int(flat.numel()), float(flat.sum()), float(torch.dot(flat, flat)), ref=flat)
            return cls(h.n, exact=h.exact, host=(h.s, h.q))  # (a _Sums: a step holding one is not frozen)
        if not keep:  # a gradient, not kept: sums of x − c, c the mean of its first values (no cancellation)
            c = flat[:1024].mean()
            dev = flat - c
            return cls(int(flat.numel()), d.put(dev.sum()), d.put(torch.dot(dev, dev)), shift=d.put(c))
        return cls(int(flat.numel()), d.put(flat.sum()), d.put(torch.dot(flat, flat)), flat)

    @staticmethod
    def lazy_moments(d: _Deferred) -> None:
        """The device path's weight copies of the step (``d.lazy``), their var_mean put in ``d``:
        the copies of one size (the layers of one width...) stacked and reduced in one var_mean
        (two launches for any number of them), up to :data:`_STACK_MAX` values a stack (larger
        weights one var_mean each: their kernels, not their launches, take the time)."""
        import torch

        if not d.lazy:
            return
        same: dict[Any, list[tuple[_Sums, Any]]] = {}
        for sums, flat in d.lazy:
            same.setdefault((flat.numel(), flat.dtype, flat.device), []).append((sums, flat))
        d.lazy = []
        for (n, _, _), items in same.items():
            if len(items) > 1 and n * len(items) <= _STACK_MAX:
                v, m = torch.var_mean(torch.stack([f for _, f in items]), dim=1, correction=0)
                (km, sm), (kv, sv) = d.put(m), d.put(v)
                for j, (sums, _) in enumerate(items):
                    sums.mv = ((km, slice(sm.start + j, sm.start + j + 1)), (kv, slice(sv.start + j, sv.start + j + 1)))
            else:
                for sums, flat in items:
                    v, m = torch.var_mean(flat, correction=0)
                    sums.mv = (d.put(m), d.put(v))

    def settle(self, d: _Deferred) -> None:
        """The probe's centered float64 recomputation when Σx²/n − mean² < 1e-3·E[x²] (or is not
        finite), from the kept tensor, before its buffer is written again; then the tensor is
        let go. (A gradient's sums are shifted: its mean and variance follow from them; the
        device path's are the centered mean and variance themselves; a CPU gradient's were settled
        in its hook.)"""
        if self.host is not None:
            return
        if self.mv is not None:
            m, v = float(d[self.mv[0]][0]), float(d[self.mv[1]][0])
            self.exact = (m, v, m * m, v)
            return
        if self.shift is not None:
            n = max(self.n, 1)
            md, c = float(d[self.s][0]) / n, float(d[self.shift][0])
            v, m = float(d[self.q][0]) / n - md * md, md + c
            self.exact = (m, v, m * m, v)
            return
        if self.ref is not None:
            n = max(self.n, 1)
            mean, ex2 = float(d[self.s][0]) / n, float(d[self.q][0]) / n
            var = ex2 - mean * mean
            if not math.isfinite(var) or var < 1e-3 * ex2:
                self.exact = _centered_flat(self.ref)
        self.ref = None

    def moments(self, d: _Deferred) -> Moments:
        if self.host is not None:
            return _host_moments(np.array([[self.host[0]]]), np.array([self.host[1]]), self.n, self.exact)
        if (self.shift is not None or self.mv is not None) and self.exact is None:
            self.settle(d)
        if self.mv is not None:
            assert self.exact is not None
            n, m, v = self.n, self.exact[0], self.exact[1]
            return _host_moments(np.array([[m * n]]), np.array([(v + m * m) * n]), n, self.exact)
        return _host_moments(d[self.s].reshape(1, 1), d[self.q], self.n, self.exact)


@dataclass
class _HostSums:
    """Σx and Σx² of one large tensor computed on the host by a fused kernel
    (:mod:`~initlab.diagnostics._kernels`), the interface of :class:`_Sums`; the probe's
    centered fallback (see :meth:`_Sums.settle`) is applied at once from ``ref`` when it is
    given (a weight's copy)."""

    n: int
    s: float
    q: float
    exact: tuple[float, float, float, float] | None = None

    @classmethod
    def of(cls, n: int, s: float, q: float, ref: Any = None) -> "_HostSums":
        out = cls(n, s, q)
        if ref is not None:
            mean, ex2 = s / max(n, 1), q / max(n, 1)
            var = ex2 - mean * mean
            if not math.isfinite(var) or var < 1e-3 * ex2:
                out.exact = _centered_flat(ref)
        return out

    def settle(self, d: _Deferred) -> None:
        pass

    def moments(self, d: _Deferred) -> Moments:
        return _host_moments(np.array([[self.s]]), np.array([self.q]), self.n, self.exact)


def _centered_flat(x: Any) -> tuple[float, float, float, float]:
    """The probe's centered float64 moments of a flat tensor (one channel): (mean, var, mean²,
    var)."""
    import torch

    x64 = x.reshape(-1).to(torch.float64)
    m = float(x64.mean())
    v = float(((x64 - m) ** 2).mean())
    return m, v, m * m, v


def _centered_chan(cv: Any, dims: Any) -> tuple[float, float, float, float]:
    """The probe's centered float64 moments (mean, var, sq_mean, chan_var) of one tensor viewed
    per channel (``cv`` [1, rows, C] reduced over ``dims``, or [1, batch, C, positions])."""
    import torch

    x64 = cv.to(torch.float64)
    m = float(x64.mean())
    cm = x64.mean(dims, keepdim=True)
    return m, float(((x64 - m) ** 2).mean()), float((cm * cm).mean()), float(((x64 - cm) ** 2).mean())


class _Fast:
    """One recorded tensor's numbers, computed in the hook that sees it by the fused kernels
    (CPU, float32/float64, channels on the last axis or on axis 1:
    :meth:`_TorchHooks._fast_member`): ``out`` the
    per-channel sums (activations: [Σx, max, Σx², min, near-zero count]; the input and deltas:
    [Σx, Σx²]), ``sq`` the total Σx², ``near`` the near-zero count, ``n2``/``q`` the cosine sums;
    ``t`` is the tensor's flat NumPy view while its hook (for activations: its forward pass)
    runs, for the histograms, then let go. The probe's moments are formed from these when
    the step's rows are built."""

    __slots__ = ("role", "per_chan", "chans", "out", "sq", "near", "finite", "t", "n2", "q", "scale", "exact", "hist")

    def __init__(self, role: str, per_chan: int, chans: int, out: np.ndarray, sq: float, near: float,
                 t: Any) -> None:
        self.role, self.per_chan, self.chans, self.out, self.sq, self.near = role, per_chan, chans, out, sq, near
        self.finite = math.isfinite(sq)
        self.t = t
        self.n2: np.ndarray | None = None
        self.q = math.nan
        self.scale = 1.0
        self.exact: tuple[float, float, float, float] | None = None
        self.hist: _FastHist | None = None  # its histogram, when the kernel counted it in the same call

    def moments(self) -> Moments:
        out = self.out
        if self.role != "fw":
            return _host_moments(out[:1], np.array([self.sq]), self.per_chan, self.exact)
        chan = out[:2]
        nan = np.isnan(out[2])  # a channel holding NaN: its maximum is NaN (torch's amax), and the minimum
        lo = float(out[3].min()) if self.chans else math.nan
        if nan.any():
            chan = chan.copy()
            chan[1][nan] = math.nan
            lo = math.nan
        return _host_moments(chan, np.array([self.sq, lo]), self.per_chan, self.exact)


@dataclass
class _FastHist:
    """A histogram of a :class:`_Fast` member: counted on known edges, or the sample kept for a
    first histogram (its edges are chosen from it when the step's rows are built)."""

    key: tuple[str, str]  # its fixed edges' (row name, quantity)
    hist: Histogram | None = None
    values: np.ndarray | None = None


def _update_norms(d: _Deferred, snapshots: dict[int, tuple[Any, Any]]) -> dict[int, Any]:
    """‖W − W_before‖_F of every snapshotted weight, put in ``d``: one foreach subtraction and
    one foreach norm for all the weights (per tensor as ``torch.dist``), keyed as ``snapshots``."""
    import torch

    if not snapshots:
        return {}
    keys = list(snapshots)
    ws = [snapshots[k][0].detach() for k in keys]
    snaps = [snapshots[k][1] for k in keys]
    if len({(w.device, w.dtype) for w in ws}) == 1:
        norms = torch._foreach_norm(torch._foreach_sub(ws, snaps))
    else:
        norms = [torch.dist(w, s_) for w, s_ in zip(ws, snaps)]
    return {k: d.put(n) for k, n in zip(keys, norms)}


def _update_norms_in_place(snapshots: dict[int, tuple[Any, Any]]) -> dict[int, float]:
    """‖W − W_before‖_F of every snapshotted weight (CPU tensors), computed in the snapshot
    buffers (overwritten with W_before − W): one foreach subtraction in place, then a BLAS dot
    per weight (a read each; torch's vector norm is several times slower on the CPU)."""
    import torch

    if not snapshots:
        return {}
    keys = list(snapshots)
    ws = [snapshots[k][0].detach() for k in keys]
    snaps = [snapshots[k][1] for k in keys]
    with torch.no_grad():
        if len({w.dtype for w in ws}) == 1:
            torch._foreach_sub_(snaps, ws)
        else:
            for w, s_ in zip(ws, snaps):
                s_.sub_(w)
        sq = [torch.dot(f, f) for f in (s_.reshape(-1) for s_ in snaps)]
    return {k: math.sqrt(max(float(q), 0.0)) for k, q in zip(keys, sq)}


def _torch_histogram(values: Any, edges: np.ndarray) -> Any:
    """Counts of ``values`` on fixed equal-width ``edges`` by torch ops on the values' device:
    :func:`_bin_values` of one histogram (the rule of
    :func:`initlab.diagnostics._stats.histogram`, so the counts are the same). Returns an int64
    tensor of len(edges) − 1 counts (their sum is the number binned: non-finite values are
    dropped)."""
    lo, k = _bin_params(edges)
    return _bin_values(values.detach().reshape(-1), lo, k, None, 0, 1, int(edges.size) - 1)[0]


def _bin_params(edges: np.ndarray) -> tuple[float, float]:
    """(lo, bins/(hi − lo)) of equal-width ``edges``; the scale is 0 when hi ≤ lo (finite values
    then land in bin 0, as :func:`~initlab.diagnostics._stats.histogram` puts them)."""
    lo, hi = float(edges[0]), float(edges[-1])
    return lo, ((int(edges.size) - 1) / (hi - lo) if hi > lo else 0.0)


def _bin_values(v: Any, lo: Any, k: Any, scale: Any, offsets: Any, rows: int, nb: int, *,
                ones: Any = None, full: bool = False) -> Any:
    """Histograms of values laid end to end (``v`` 1-D), each value on its own histogram's
    equal-width edges, in one bincount on bins offset per histogram: with the per-value (or
    common) lo, k = bins/(hi − lo), multiplier ``scale`` (None: 1; the deltas' factor to the
    probe's per-sample values) and offset (histogram index × (nb + 1)), bin = ⌊(scale·v − lo)·k⌋
    in float64, clipped into the end bins, non-finite values dropped: the rule of
    :func:`initlab.diagnostics._stats.histogram`. Returns counts [rows, nb]: int64, or in the
    dtype of ``ones`` (a vector of v.numel() ones, for the scatter-add of :func:`_count`; kept by
    the caller); ``full``: [rows, nb + 1], each row's last count the dropped values' (contiguous:
    no copy to keep it)."""
    import torch

    pos = v.to(dtype=torch.float64, copy=True)
    if scale is not None:
        pos.mul_(scale)
    idx = pos.sub_(lo).mul_(k).add_(v - v).clamp_(0, nb - 1).nan_to_num_(nan=float(nb)).long().add_(offsets)
    counts = _count(idx, rows * (nb + 1), scatter=_launch_bound(idx), ones=ones).reshape(rows, nb + 1)
    return counts if full else counts[:, :nb]


def _count(idx: Any, total: int, *, scatter: bool, ones: Any = None) -> Any:
    """How many times each of 0 … total − 1 occurs in ``idx``: one bincount on the CPU; on other
    devices a scatter-add into ``total`` zeros (bincount sizes its output from the data there,
    a synchronisation), of ``ones`` when given (a kept vector of idx.numel() ones: the counts in
    its dtype, one operation fewer), else of int64 ones."""
    import torch

    if not scatter:
        return torch.bincount(idx, minlength=total)
    if ones is None:
        ones = torch.ones_like(idx)
    return torch.zeros(total, dtype=ones.dtype, device=idx.device).scatter_add_(0, idx, ones)


def _sample_step(n: int, chans: int, k: int | None) -> int:
    """The stride of :func:`~initlab.diagnostics._stats.subsample`: every ``step``-th of ``n``
    values so that at most ``k`` are read, the stride made coprime with the channel count (every
    channel is visited)."""
    if k is None or n <= k:
        return 1
    step = -(-n // k)
    while math.gcd(step, chans) != 1:
        step += 1
    return step


def _channels(x: Any, shape: tuple[int, ...], axis: int) -> tuple[Any, Any]:
    """Stacked tensors ``x`` [L, *shape] viewed per channel as the probe views one tensor
    (``_Capture._fview``, then [batch, channels, rest]): [L, rows, units] with the reduction
    axis 1, or [L, batch, channels, positions] (channel axis 1 of a tensor of more than two
    dimensions) with the reduction axes (1, 3)."""
    n = int(x.shape[0])
    nd = len(shape)
    if nd == 0:
        return x.reshape(n, 1, 1), 1
    if nd == 1:
        return x.reshape(n, -1, 1), 1
    if nd == 2:
        return x, 1
    if axis in (-1, nd - 1):
        return x.reshape(n, -1, shape[-1]), 1
    if axis == 1:
        return x.reshape(n, shape[0], shape[1], -1), (1, 3)
    return x.movedim(axis + 1, -1).reshape(n, -1, shape[axis]), 1


def _spaced(idx: list[int]) -> bool:
    """Whether the sorted indices ``idx`` are evenly spaced (a view of them is a slice)."""
    step = idx[1] - idx[0] if len(idx) > 1 else 1
    return step > 0 and idx == list(range(idx[0], idx[-1] + 1, step))


def _rows(t: Any, idx: list[int], cache: dict[Any, Any] | None = None) -> Any:
    """The rows ``idx`` (sorted) of ``t``: a view when they are evenly spaced (all of them, every
    other one...), else a copy (by an index tensor kept in ``cache`` per rows and device when it
    is given: the same rows every recorded step, no host-to-device copy per step)."""
    n = int(t.shape[0])
    if idx == list(range(n)):
        return t
    if _spaced(idx):
        return t[idx[0]:idx[-1] + 1:idx[1] - idx[0] if len(idx) > 1 else 1]
    import torch

    if cache is None:
        return t.index_select(0, torch.tensor(idx, device=t.device))
    key = (tuple(idx), t.device)
    ix = cache.get(key)
    if ix is None:
        if len(cache) > 64:
            cache.clear()
        ix = cache[key] = torch.tensor(idx, device=t.device)
    return t.index_select(0, ix)


def _heads(x: Any, shape: tuple[int, ...], seq_first: bool) -> Any:
    """The first samples of each stacked tensor (batch on axis 0, or axis 1 for a
    sequence-first tensor), flattened per sample and read on the strided feature subset of
    :func:`~initlab.diagnostics._stats.mean_pairwise_cosine`: [L, k, features]."""
    if not shape:
        return None
    if seq_first:
        x = x.transpose(1, 2)
    h = x[:, :_COS_SAMPLES]
    r = h.reshape(h.shape[0], h.shape[1], -1)
    if r.shape[2] > _COS_FEATURES:
        r = r[:, :, ::-(-r.shape[2] // _COS_FEATURES)]
    return r if r.shape[1] >= 2 else None


class _Group:
    """The tensors of one role ("fw": activations; "in": the input; "grad": deltas) and one layout
    (shape, feature axis, batch axis, dtype, device) recorded in a step. Each is copied, when
    its hook runs, into its slot of a stacked buffer [L, *shape] kept between steps — a copy, so
    an in-place operation that writes the tensor later in the step does not change what was
    recorded — and the statistics of all of them are computed by one set of torch operations
    (:meth:`_TorchHooks._group_stats`) when the forward pass ends (activations, the input at
    once) or the step ends (deltas). A step with more tensors of the
    layout than the buffer holds grows it."""

    def __init__(self, role: str, shape: tuple[int, ...], axis: int, seq_first: bool, dtype: Any) -> None:
        self.role, self.shape, self.axis, self.seq_first = role, shape, axis, seq_first
        self.dtype = dtype
        self.buf: Any = None
        self.views: list[Any] = []  # the slots of buf
        self.extra: list[Any] = []  # copies beyond the buffer's slots (the first step, a longer step)
        self.n = 0
        self.step = -1
        self.hist: list[tuple[int, tuple[str, str]]] = []  # the step's histograms: (member, edge key)

    def reset(self, step: int) -> None:
        self.n, self.step, self.hist = 0, step, []

    def release(self) -> None:
        """Let the buffer go (the step's numbers were read out of it)."""
        self.buf, self.views, self.extra = None, [], []

    def add(self, t: Any) -> int:
        import torch

        i = self.n
        self.n += 1
        if i < len(self.views):
            self.views[i].copy_(t)
        else:
            self.extra.append(t.to(dtype=self.dtype, memory_format=torch.contiguous_format, copy=True))
        return i

    def stacked(self) -> Any:
        import torch

        if self.extra:
            kept = [self.buf[:len(self.views)]] if self.buf is not None else []
            self.buf = torch.cat([*kept, torch.stack(self.extra)]) if kept else torch.stack(self.extra)
            self.views, self.extra = list(self.buf.unbind(0)), []
        return self.buf if self.n == len(self.views) else self.buf[:self.n]


@dataclass
class _GroupOut:
    """A group's numbers for one step: where they sit in the step's :class:`_Deferred`."""

    members: int
    per_chan: int
    chans: int
    csum: Any  # [members, chans]: the channel sums
    sq: Any  # [members]: Σx² (``sq_norm``: its square root, √Σx², the device path's one norm)
    cmax: Any = None  # activations: [members, chans] the channel maxima
    mn: Any = None  # activations: [members] the minima (``mn_chan``: [members, chans] the channel minima)
    mn_chan: bool = False
    sq_norm: bool = False
    scale: float = 1.0  # deltas: the factor to the probe's per-sample ∂ℓ_b/∂h
    k: int = 0  # samples read for the cosine
    n2: Any = None  # [members, k] their norms ‖x_i‖ (squared on the host)
    q: Any = None  # [members] ‖Σ_i x_i/‖x_i‖‖ (squared on the host), or (``q_feats``) the sums [members, q_feats]
    q_feats: int = 0
    cos: dict[int, int] = field(default_factory=dict)  # member -> its row in n2 and q
    near: Any = None  # near-zero counts of the members in near_at
    near_at: dict[int, int] = field(default_factory=dict)  # member -> its place in near
    sample: Any = None  # [members, samples] the histogram samples (a first histogram: edges chosen from them)
    samples: int = 0  # values per tensor in the histogram sample
    pairs: list[tuple[int, tuple[str, str]]] = field(default_factory=list)  # histogram j: (member, edge key)
    hv: Any = None  # [histograms, samples] the values to bin on known edges (until _bin_step)
    counts: Any = None  # the counts of its histograms' binning (with other groups': rows first, first + 1...)
    first: int = 0
    exact: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)  # member -> centered moments

    def sqs(self, d: _Deferred) -> np.ndarray:
        """Σx² of every member (float64, on the host)."""
        sq = d[self.sq]
        return sq * sq if self.sq_norm else sq

    def moments(self, d: _Deferred, i: int) -> Moments:
        c = self.chans
        sums = d[self.csum].reshape(self.members, c)[i]
        sq = float(self.sqs(d)[i])
        if self.cmax is None:
            return _host_moments(sums.reshape(1, c), np.array([sq]), self.per_chan, self.exact.get(i))
        chan = np.stack([sums, d[self.cmax].reshape(self.members, c)[i]])
        lo = float(d[self.mn].reshape(self.members, c)[i].min()) if self.mn_chan else float(d[self.mn][i])
        return _host_moments(chan, np.array([sq, lo]), self.per_chan, self.exact.get(i))


def _width(shape: tuple[int, ...], axis: int) -> int:
    """The number of units of a tensor of ``shape`` with feature ``axis`` (the probe's width: the
    last axis of a [rows, units] view, the channel axis of a conv's output)."""
    if len(shape) < 2:
        return 1
    return int(shape[1]) if len(shape) == 2 else int(shape[axis])


@dataclass
class _Row:
    st: LayerStats
    module: Any
    kind: str  # the probe's kinds: linear | conv | activation | norm
    activation: _activations.Activation | None
    axis: int
    out: Any = None
    paired: bool = False
    version: float = math.nan  # out._version when its statistics were taken (an in-place write after: a new row)
    fw: dict[str, Any] = field(default_factory=dict)  # "pre"/"act"/"cos": members; "weight"/"gain": _Sums
    grads: dict[str, Any] = field(default_factory=dict)  # "preact"/"act": members of a "grad" group
    hist: dict[str, Any] = field(default_factory=dict)  # key -> (group, index of the group's histogram)
    weight: Any = None  # the parameter whose gradient and update the row reports
    wkey: int | None = None  # its id, for a row made again from a kept step (the weight itself not kept)

    def wid(self) -> int | None:
        """The key of the row's weight in the step's dicts (its id when the step was taken)."""
        return self.wkey if self.wkey is not None else (None if self.weight is None else id(self.weight))


class _Unfrozen(Exception):
    """A member :meth:`_TorchHooks._freeze` cannot keep as numbers."""


class _Pending:
    """The step being recorded: rows from its forward pass, gradients as its backward runs."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.d = _Deferred()
        self.rows: list[_Row] = []
        self.loss: Any = None
        self.input: Any = None  # modules: the input's member; ops: (mean, std, cosine)
        self.batch = 0
        self.snapshots: dict[int, tuple[Any, Any]] = {}  # id(param) -> (param, its copy before the step)
        self.weight_grads: dict[int, _Sums] = {}
        self.weights: dict[int, _Sums] = {}
        self.grad_handles: list[Any] = []
        self.names: dict[str, int] = {}
        self.inplace: dict[int, _Row] = {}  # id(in-place activation module) -> its row, begun by its pre-hook
        self.init_guess: dict[int, tuple[str | None, float]] = {}  # id(weight) -> (structure, excess kurtosis)
        self.cap: Any = None  # capture="ops": the probe's op-level capture of this step
        self.cap_handles: list[Any] = []
        self.mode: Any = None
        self.param_grads: dict[int, Any] = {}
        self.near: dict[str, float] = {}
        self.groups: list[_Group] = []  # the groups this step's tensors were copied into
        self.outs: dict[_Group, _GroupOut] = {}  # their numbers, when the step ends
        self.fast: list[_Fast] = []  # the forward's members computed by the kernels (their views let go at its end)
        self.pair_inplace: set[int] = set()  # in-place activation modules whose pre-hook found their input unchanged
        self.first_hist = False  # a kernel-path histogram kept its sample: edges chosen when the step is built


class _TorchHooks:
    def __init__(self, watch: Watch, model: Any, *, loss_reduction: str, bins: int, hist_margin: float,
                 near_zero: float, hist_sample: int | None, capture: str = "modules") -> None:
        self.watch = watch
        self.model = model
        self.capture = capture
        self.loss_reduction = loss_reduction
        self.bins = bins
        self.hist_margin = hist_margin
        self.near_zero = near_zero
        self.hist_sample = hist_sample
        self.handles: list[Any] = []
        self.module_handles: list[Any] = []
        self.mod_hooks: tuple[Any, ...] | None = None  # (root, (module, its hook) pairs, in-place activations, key, pre-hook) (_register_module_hooks)
        self.recording = False  # inside the forward pass of a recorded step (capture="modules")
        self.buffers: dict[int, Any] = {}  # id(weight) -> the buffer of its snapshot
        self.observed = False  # the first recorded forward was looked at for unseen functional ops
        self.observer: Any = None
        self.observer_handles: list[Any] = []
        self.depth = 0
        self.unseen: set[str] = set()
        self.names: dict[Any, str] = {}
        self.kinds: dict[Any, str] = {}
        self.acts: dict[Any, _activations.Activation | None] = {}
        self.step = -1
        self.pending: _Pending | None = None
        self.in_forward = 0
        self.edges = _Edges(bins, hist_margin)
        self.groups: dict[Any, _Group] = {}  # the stacked buffers, by role and layout (kept between steps)
        self.hist_cache: dict[Any, Any] = {}  # _bin_step's per-value vectors
        self.row_index: dict[Any, Any] = {}  # _rows's index tensors, per (rows, device)
        self.fans: dict[Any, tuple[Any, int | None, int | None]] = {}  # module -> (weight shape, fan-in, fan-out)
        self.guessed = False  # the weights' init was named (first recorded step)
        self.linear_act = _activations.get("linear")
        from initlab.diagnostics import _kernels

        self.kernels = _kernels.load() if capture == "modules" else None  # None: torch operations only
        self.presnap: dict[int, tuple[Any, float, float]] = {}  # id(weight) -> (it, the sums of the copy finish() left)
        self.weight_handles: dict[int, Any] = {}  # every=1: the weights' gradient hooks, kept between steps
        self.made: dict[int, Any] = {}  # id -> a weight whose hooks' dict the watch made (_reset_hook_dicts)
        self.idx: np.ndarray = np.empty(0, dtype=np.int32)  # the histogram kernel's scratch
        self.hist_params: dict[tuple[str, str], tuple[np.ndarray, int, float, float]] = {}  # edges, bins, lo, k
        self.strides: dict[tuple[int, int], int] = {}  # (values, channels) -> the histogram sample's stride
        self.views: dict[int, tuple[Any, int, Any, np.ndarray | None]] = {}  # id -> (tensor, data_ptr, shape, view)
        import torch

        self.torch = torch
        self.tensor_t = torch.Tensor
        self.trace: Any = None  # the recorded step being traced (_watch_plan.Trace)
        self.plan: Any = None  # the plan the recorded steps replay (_watch_plan.Plan)
        self.rp: Any = None  # the recorded step being replayed (_watch_plan.Replay)
        self.departures = 0  # replayed steps handed back to the general path
        self.misses = 0  # recorded steps in a row the plan did not take to the end
        self.traces = 0  # recorded steps traced
        self.replayed = 0  # recorded steps replayed to the end
        self.plans: list[Any] = []  # the plans of the kept replayed steps (by index)
        self.replay = os.environ.get("INITLAB_WATCH_REPLAY", "1") != "0"  # (off: every step by the general path)
        self.interned: list[Any] = []  # the parameters and activations of frozen steps (_freeze)
        self.intern_ids: dict[int, int] = {}
        self.geo: dict[Any, tuple[Any, ...] | None] = {}  # the kernels' view of a shape (_geometry)
        self.near_t: dict[Any, Any] = {}  # dtype -> the near-zero threshold in it
        self.no_h: dict[Any, np.ndarray] = {}  # dtype -> an empty [0, 1] array (no cosine)
        self.no_n2 = np.empty(0)
        self.no_counts = np.zeros(0, dtype=np.int64)

    # hooks ---------------------------------------------------------------------------------------
    def install(self) -> None:
        if self.handles:
            raise RuntimeError("This watch is already active; a Watch can be entered once.")
        mha = _mha_class()
        inner = {id(m.out_proj) for m in self.model.modules() if isinstance(m, mha)}
        for name, mod in self.model.named_modules():
            if id(mod) in inner:  # (never called: its attention module has its row, by a hook on the attention)
                continue
            kind = _module_kind(mod)
            if kind is not None:
                self.names[mod] = (f"{name}.out_proj" if name else "out_proj") if isinstance(mod, mha) \
                    else (name or type(mod).__name__)
                self.kinds[mod] = kind
                self.acts[mod] = _activations.from_torch(mod) if kind == "activation" else None
        import torch
        from torch.nn.parameter import is_lazy

        self.is_lazy = is_lazy
        self.wmods = [m for m in self.kinds if isinstance(_plain_weight(m), torch.Tensor)]
        self.wmods_set = set(self.wmods)
        if not self.names and self.capture == "modules":
            raise ValueError(f"The 'model' argument has no module to watch (Linear, ConvNd, MultiheadAttention, "
                             f"activation or norm modules); got {type(self.model).__name__}.")
        self.handles.append(self.model.register_forward_pre_hook(self._root_pre, with_kwargs=True))
        self.handles.append(self.model.register_forward_hook(self._root_post, always_call=True))

    def remove(self) -> None:
        for h in (*self.handles, *self.module_handles):
            h.remove()
        for h in self.weight_handles.values():
            h.remove()
        self.handles, self.module_handles, self.weight_handles = [], [], {}
        self.buffers, self.presnap, self.hist_params, self.views = {}, {}, {}, {}
        for g in self.groups.values():  # the stacks' copies are not needed once the block has ended
            g.release()
        self.groups, self.hist_cache = {}, {}
        self.trace = self.plan = None
        if self.rp is not None:
            for h in self.rp.handles:
                h.remove()
            self.rp = None
        if self.observer is not None:
            self._observe_end()
        if self.pending is not None:
            if self.pending.mode is not None:  # an exception inside a recorded forward (ops capture)
                self._ops_end(self.pending)
            for h in self.pending.grad_handles:
                h.remove()
            self.pending.grad_handles = []
        self._reset_hook_dicts()
        self.made = {}

    def _reset_hook_dicts(self) -> None:
        """The hooks' dict a weight had none of before the watch registered a gradient hook on it,
        set back to None once its hooks are out: an empty dict is still called by the autograd
        engine at each backward (into Python for every weight, on the steps not recorded too)."""
        keep = {}
        for key, w in self.made.items():
            bh = w._backward_hooks
            if bh is not None and not bh:
                w._backward_hooks = None
            elif bh:  # (hooks still in it: every = 1's, kept between steps, or the user's)
                keep[key] = w
        self.made = keep  # (a weight no longer in the model is not kept alive)

    def _root_pre(self, mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.in_forward += 1
        if self.in_forward > 1 or not mod.training:
            return
        if self.pending is not None or self.rp is not None:
            self.finish(fuse=(self.step + 1) % self.watch.every == 0)
        self.step += 1
        if self.step % self.watch.every:
            return
        import torch

        if self.plan is not None and self.kernels is not None:  # a replayed step (_watch_plan)
            try:
                rp = _watch_plan().begin(self, mod, args, kwargs)
            except Exception as exc:  # (the general path, by torch operations)
                self._kernels_failed(exc)
                rp = None
            if rp is not None:
                self.rp = rp
                if not self.module_handles:
                    self._register_module_hooks(mod)
                self.recording = True
                return
            _watch_plan().missed(self)  # (this step by the general path; the plan kept unless it keeps missing)
        p = _Pending(self.step)
        if self.capture == "ops":
            self._ops_begin(p, mod, args, kwargs)
            return
        x = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        self.trace = None
        if self.kernels is not None and self.guessed and self.plan is None \
                and self.traces < _watch_plan().MAX_TRACES and x is not None and self.replay:
            self.traces += 1
            self.trace = _watch_plan().Trace()
            self.trace.input_sig = _watch_plan()._input_sig(x)
        if x is not None:
            p.batch = int(x.shape[0]) if x.ndim else 1
            if x.is_floating_point() and x.numel():
                with torch.no_grad():  # one row per sample (the input's pooled moments do not depend on the view)
                    p.input = self._member(p, "in", x.reshape(p.batch, -1) if x.ndim >= 2 else x, -1, cos=True)
                    if isinstance(p.input, _Fast):
                        p.input.t = None
                    self._settle_groups(p)  # now, while the input is in cache
        is_lazy = self.is_lazy  # (a LazyLinear's weight before its first forward: no copy yet)
        with torch.no_grad():
            tr = self.trace
            for m_ in self.wmods:
                w = _plain_weight(m_)
                if tr is not None:  # (the weights the plan expects to find at each step)
                    tr.wcheck.append((m_, w, w.shape if isinstance(w, torch.Tensor) else None,
                                      bool(getattr(w, "requires_grad", False))))
                if isinstance(w, torch.Tensor) and not is_lazy(w) and w.is_floating_point() and id(w) not in p.snapshots:
                    snap, sums = self._fast_snapshot(w)  # W before this step's update
                    if snap is None:
                        snap = self._snapshot(w)
                        sums = _Sums.of(p.d, snap, keep=True)
                    p.snapshots[id(w)] = (w, snap)
                    p.weights[id(w)] = sums
                    if not self.guessed and w.ndim >= 2:  # the init in place, named as the probe names it
                        from initlab.diagnostics._weight_init import excess_kurtosis, structure

                        wt = snap.detach()
                        if wt.dtype not in (torch.float32, torch.float64):
                            wt = wt.float()  # (float16, bfloat16: NumPy has no bfloat16)
                        with np.errstate(all="ignore"):  # (non-finite weights: no structure, NaN kurtosis)
                            wn = wt.cpu().numpy()
                            p.init_guess[id(w)] = (structure(wn), excess_kurtosis(wn))
                    if not w.requires_grad:
                        continue
                    if w._backward_hooks is None:  # (the dict the watch makes goes with its hooks)
                        self.made[id(w)] = w
                    if self.watch.every > 1:
                        p.grad_handles.append(w.register_hook(self._weight_grad(p, id(w))))
                    elif id(w) not in self.weight_handles:  # every=1: every step is recorded, the hook stays
                        self.weight_handles[id(w)] = w.register_hook(self._weight_grad(None, id(w)))
        self.guessed = True
        self.presnap.clear()  # (what the loop did not take is stale: a weight replaced, a parametrized weight)
        if len(self.buffers) > len(p.snapshots):  # the copies of weights no longer in the model
            self.buffers = {k: b for k, b in self.buffers.items() if k in p.snapshots}
        if len(self.views) > 2 * len(p.snapshots):  # (views of weights and buffers no longer watched)
            self.views = {}
        self.pending = p
        # (the root's own row, when the model is one watched module, is taken by _root_post: a hook
        # removed from the root while torch iterates its hooks after a failed forward would break it)
        if not self.module_handles:  # (with every=1 they stay from the step before)
            self._register_module_hooks(mod)
        self.recording = True
        if not self.observed:
            self._observe_begin(mod)

    def _register_module_hooks(self, root: Any) -> None:
        """The forward hooks of the watched modules (and the pre-hooks of in-place activations)
        for one recorded forward pass (every > 1; every = 1: kept): put straight into the modules'
        hook dicts under one key (:class:`_watch_plan.ModuleHooks`, one handle of all, a few
        µs less than a handle per hook), or by torch's methods where its internals differ."""
        mh = self.mod_hooks
        if mh is None or mh[0] is not root:
            mods = [m_ for m_ in self.kinds if m_ is not root]
            acts = [m_ for m_ in mods if self.kinds[m_] == "activation"]
            key = _watch_plan().reserve_key()
            if key is not None and not all(isinstance(getattr(m_, "_forward_hooks", None), dict)
                                           and isinstance(getattr(m_, "_forward_pre_hooks", None), dict) for m_ in mods):
                key = None
            mha = _mha_class()  # (an attention's hook records its first output)
            fwds = [(m_, self._attention_hook if isinstance(m_, mha) else self._module_hook) for m_ in mods]
            mh = self.mod_hooks = (root, fwds, acts, key, self._inplace_pre)
        _, fwds, acts, key, pre = mh
        if key is None:
            self.module_handles = [m_.register_forward_hook(fwd) for m_, fwd in fwds]
            self.module_handles += [m_.register_forward_pre_hook(pre) for m_ in acts if getattr(m_, "inplace", False)]
            return
        hs = _watch_plan().ModuleHooks(key)
        self.module_handles = [hs]
        for m_, fwd in fwds:
            hs.put(m_._forward_hooks, fwd)
        for m_ in acts:
            if getattr(m_, "inplace", False):
                hs.put(m_._forward_pre_hooks, pre)

    # capture="modules": what the module hooks cannot see ----------------------------------------
    def _observe_begin(self, root: Any) -> None:
        """At the first recorded step, a function mode that only looks (each call runs as is)
        notes the operations the probe makes rows of that run outside every watched module
        (functional activations, residual adds, pooling, attention, embeddings, RNNs): the
        rows :func:`watch`'s ``capture="ops"`` would add. Written to :attr:`Watch.notes`."""
        from torch.overrides import TorchFunctionMode

        from initlab.diagnostics._probe_torch import _ACTIVATION_NAMES, _ADDS, _CONVS, _NORMS, _POOLS, _RNNS

        hooks = self
        rowful = (set(_ACTIVATION_NAMES) | set(_CONVS) | set(_NORMS) | set(_POOLS) | set(_RNNS)
                  | {"linear", "embedding", "scaled_dot_product_attention", "multi_head_attention_forward"})

        class _Observer(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                                   kwargs: dict[str, Any] | None = None) -> Any:
                kwargs = kwargs or {}
                if hooks.depth == 0:
                    hooks._note_op(getattr(func, "__name__", ""), args, rowful, _ADDS)
                return func(*args, **kwargs)

        mha = _mha_class()

        def inc(mod: Any, inp: Any) -> None:
            self.depth += 1
            if isinstance(mod, mha):  # (its row is out_proj's: the probe has rows for what comes before)
                self.unseen.add("multi_head_attention_forward's q/k/v projections and attention")

        def dec(mod: Any, inp: Any, out: Any) -> None:
            self.depth -= 1

        for m_ in self.kinds:
            if m_ is not root:
                self.observer_handles += [m_.register_forward_pre_hook(inc),
                                          m_.register_forward_hook(dec, always_call=True)]
        self.depth = 0
        self.observer = _Observer()
        self.observer.__enter__()

    def _note_op(self, name: str, args: tuple[Any, ...], rowful: set[str], adds: set[str]) -> None:
        import torch

        if name in adds:
            a, b = (args + (None, None))[:2]
            if (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.is_floating_point()
                    and a.shape == b.shape and a.ndim >= 2):
                self.unseen.add("residual add")
        elif name in rowful:
            x = args[0] if args else None
            if not isinstance(x, torch.Tensor) or x.is_floating_point() or name == "embedding":
                self.unseen.add(name.rstrip("_"))

    def _observe_end(self) -> None:
        obs, self.observer = self.observer, None
        if obs is not None:
            obs.__exit__(None, None, None)
        for h in self.observer_handles:
            h.remove()
        self.observer_handles = []
        self.observed = True
        if self.unseen:
            from initlab.diagnostics._probe_torch import _RNNS

            whole = sorted(u for u in self.unseen if u in _RNNS or u.startswith("multi_head_attention_forward"))
            ops = "watch(model, capture=\"ops\") records the probe's rows" + (
                f" except those of {', '.join(whole)}, which a watch runs as one operation either way (step by step, "
                "as the probe runs them, the training would not be bitwise the same)" if whole else "")
            self.watch.notes.append(
                f"forward() runs {', '.join(sorted(self.unseen))} outside the watched modules: the probe has rows "
                "for these that capture=\"modules\" does not record (a Linear/Conv whose activation is functional "
                f"is recorded as its pre-activation); {ops}")

    def _snap_buffer(self, w: Any) -> Any:
        """The buffer of ``w``'s copy, kept for the watch's lifetime (one copy of the watched
        weights): a fresh allocation per recorded step costs page faults on the CPU."""
        buf = self.buffers.get(id(w))
        if buf is None or buf.shape != w.shape or buf.dtype != w.dtype or buf.device != w.device:
            self.presnap.pop(id(w), None)
            buf = self.buffers[id(w)] = _empty_like(w)
        return buf

    def _snapshot(self, w: Any) -> Any:
        """A copy of ``w`` in its buffer (:meth:`_snap_buffer`)."""
        return self._snap_buffer(w).copy_(w.detach())

    def _fast_snapshot(self, w: Any) -> tuple[Any, Any]:
        """With the kernels, on the CPU: ``w`` copied into its buffer and its sums in the same
        pass (or, right after :meth:`finish` fused them with the last step's update, the copy and
        sums it left); (None, None) when the torch path applies."""
        k = self.kernels
        wn = self._view(w) if k is not None else None
        if wn is None:
            return None, None
        buf = self._snap_buffer(w)
        pre = self.presnap.pop(id(w), None)
        if pre is None or pre[0] is not w:
            try:
                s, q = k.snap_sums(wn, self._view(buf))
            except Exception as exc:
                self._kernels_failed(exc)
                return None, None
        else:
            s, q = pre[1], pre[2]
        return buf, _HostSums.of(int(wn.size), float(s), float(q), ref=buf)

    def _root_post(self, mod: Any, args: Any, out: Any) -> None:
        n = self.in_forward - 1
        self.in_forward = n if n > 0 else 0
        if n > 0 or not self.recording and self.observer is None and self.pending is None:
            return  # (nested, or a forward that records nothing: the steps not recorded)
        if self.in_forward == 0 and self.pending is not None and self.pending.mode is not None:
            self._ops_end(self.pending)
        if self.in_forward == 0 and self.observer is not None:
            self._observe_end()
        if self.in_forward == 0 and self.recording and mod in self.kinds:  # the model is itself one watched module
            (self._attention_hook if isinstance(mod, _mha_class()) else self._module_hook)(mod, args, out)
        if self.in_forward == 0 and self.recording:
            if self.rp is not None:
                _watch_plan().post(self, self.rp)
            self.recording = False
            if self.watch.every > 1:  # every=1: the next training forward is recorded too, they stay
                for h in self.module_handles:
                    h.remove()
                self.module_handles = []
            p = self.pending
            if p is not None:
                for r in p.rows:
                    r.out = None  # the forward is over: no more pairing, keep no tensor alive
                for m in p.fast:
                    m.t = None
                p.fast = []
                self._settle_groups(p)  # the activations' statistics now, while their copies are in cache

    def _weight_grad(self, pending: _Pending | None, key: int) -> Any:
        """The hook of a weight's gradient for the step ``pending`` (None: the step pending when
        it runs, for a hook kept between steps)."""
        torch = self.torch

        def fn(g: Any) -> None:
            if g is None:  # (torch passes None for an output of a multi-output node that reached no loss)
                return
            if pending is None and self.rp is not None:  # (a replayed step: _watch_plan.wgrad)
                _watch_plan().wgrad(self, None, key, None, g)
                return
            p = self.pending if pending is None else pending
            if p is None or p.cap is not None:
                return
            gn = _np_flat(g) if self.kernels is not None else None
            if gn is not None:
                try:
                    s, q = self.kernels.flat_sums(gn)
                    p.weight_grads[key] = _HostSums.of(int(gn.size), float(s), float(q), ref=g)
                    return
                except Exception as exc:
                    self._kernels_failed(exc)
            with torch.no_grad():
                p.weight_grads[key] = _Sums.of(p.d, g, keep=False)
        return fn

    def _reg(self, p: _Pending, row: _Row, key: str, t: Any) -> None:
        """The gradient hook of ``t`` for the row's ``key`` ("preact" or "act")."""
        t.register_hook(self._grad(p, row, key))
        if self.trace is not None:
            self.trace.register(t, row, key)

    def _grad(self, p: _Pending, row: _Row, key: str) -> Any:
        torch = self.torch

        def fn(g: Any) -> None:
            if self.pending is not p or g is None:  # a later backward through a kept graph: not this step's;
                return  # None: an output of a multi-output node (a chunk, a split) on no path to the loss
            if self.kernels is not None:  # (NumPy and detached tensors: nothing to keep out of the graph)
                hist = key == "preact" or (key == "act" and row.kind == "norm")
                m = row.grads[key] = self._member(p, "grad", g, row.axis, ek=(row.st.name, "grad") if hist else None)
                if hist:
                    self._hist(row, "grad", m)
                if isinstance(m, _Fast):
                    m.t = None
                return
            with torch.no_grad():
                m = row.grads[key] = self._member(p, "grad", g, row.axis)
                if key == "preact" or (key == "act" and row.kind == "norm"):
                    self._hist(row, "grad", m)
        return fn

    def _member(self, p: _Pending, role: str, t: Any, axis: int, cos: bool = False,
                ek: tuple[str, str] | None = None) -> Any:
        """The statistics of ``t`` in its role ("fw", "in", "grad"): with the kernels, on the
        CPU, computed now (:meth:`_fast_member`, the cosine sums when ``cos``); else ``t`` is
        copied into its slot of the step's group of its role and layout (see :class:`_Group`)
        and (group, index) returned."""
        if self.kernels is not None:
            try:
                fast = self._fast_member(p, role, t, axis, cos, ek)  # (kernels and Python floats: no NumPy warning)
            except Exception as exc:  # a kernel that does not compile here: the torch path, from now on
                self._kernels_failed(exc)
                fast = None
            if fast is not None:
                return fast
        import torch

        dtype = torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else t.dtype
        shape = tuple(t.shape)
        nd = len(shape)
        ax = -1 if nd <= 2 or axis % nd == nd - 1 else axis % nd
        seq_first = nd >= 2 and shape[0] != p.batch and shape[1] == p.batch
        key = (role, shape, ax, seq_first, dtype, t.device)
        g = self.groups.get(key)
        if g is None:
            g = self.groups[key] = _Group(role, shape, ax, seq_first, dtype)
        if g.step != p.step:
            g.reset(p.step)
            p.groups.append(g)
        return g, g.add(t.detach())

    def _kernels_failed(self, exc: BaseException) -> None:
        """Stop using the kernels (the torch path computes the same numbers) and say why in
        :attr:`Watch.notes`: the user's training goes on."""
        self.kernels = None
        self.plan = None
        if self.trace is not None:
            self.trace.fail("the kernels failed")
        self.watch.notes.append(f"the numba kernels failed ({type(exc).__name__}: {exc}); the watch computed its "
                                "statistics with torch operations from then on")

    def _geometry(self, p: _Pending, t: Any, axis: int, cos: bool) -> tuple[Any, ...] | None:
        return self._geometry_for(p.batch, t, axis, cos)

    @staticmethod
    def _flat(t: Any) -> np.ndarray | None:
        return _np_flat(t)

    def _geometry_for(self, batch: int, t: Any, axis: int, cos: bool = False) -> tuple[Any, ...] | None:
        """How the kernels view a tensor of ``t``'s shape (cached per shape, channel axis, cosine
        and batch): (channels on axis 1, the kernel's view shape, channels, rows per channel,
        cosine rows (0: none), cosine features, their stride, the histogram's stride, its sample
        size); None where the torch path applies (channels on another axis; a cosine of a
        sequence-first tensor)."""
        key = (t.shape, axis, cos, batch)
        if key in self.geo:
            return self.geo[key]
        shape = tuple(int(d) for d in t.shape)
        nd = len(shape)
        geo: tuple[Any, ...] | None = None
        mid = nd > 2 and axis % nd == 1  # channels on axis 1 (a conv's output): [batch, C, positions]
        seq_first = not mid and nd >= 2 and shape[0] != batch and shape[1] == batch
        if (nd <= 2 or mid or axis % nd == nd - 1) and not (cos and seq_first):
            n = math.prod(shape)
            if mid:
                chans = shape[1]
                view: tuple[int, ...] = (shape[0], chans, n // max(shape[0] * chans, 1))
                rows = shape[0] * view[2]
            else:
                chans = shape[-1] if nd >= 2 else 1
                view = (n // chans, chans) if chans else (0, 1)
                rows = view[0]
            hrows = feats = fstep = 0
            if cos and nd >= 1 and rows and min(shape[0], _COS_SAMPLES) >= 2:
                hrows, feats = min(shape[0], _COS_SAMPLES), n // shape[0]
                fstep = -(-feats // _COS_FEATURES) if feats > _COS_FEATURES else 1
            hs = self.hist_sample
            hstep = 1 if hs is None or n <= hs else _sample_step(n, chans, hs)
            geo = (mid, view, chans, rows, hrows, feats, fstep, hstep, -(-n // hstep), shape[0] if nd else 1)
        self.geo[key] = geo
        return geo

    def _fast_member(self, p: _Pending, role: str, t: Any, axis: int, cos: bool,
                     ek: tuple[str, str] | None = None) -> _Fast | None:
        """The statistics of a CPU float32/float64 tensor whose channels are its last axis (the
        probe's [rows, units] view) or its axis 1 (a conv's output, viewed [batch, channels,
        positions]) by the fused kernels, now, in one kernel call: the channel sums, Σx², and
        for activations the channel maxima, the minimum and the near-zero count (compared in the
        tensor's dtype, as the probe); the cosine sums of the first 64 samples when ``cos``; the
        histogram on the fixed edges ``ek`` when they are known (else :meth:`_fast_hist` keeps
        the sample). None (the torch path) for other tensors. The probe's centered fallback is
        applied at once when the variance cancels."""
        geo = self._geometry(p, t, axis, cos)
        if geo is None:
            return None
        flat = _np_flat(t)
        if flat is None:
            return None
        mid, view, chans, rows, hrows, feats, fstep, hstep, need, batch = geo
        x = flat.reshape(view)
        k = self.kernels
        scale = float(p.batch) if role == "grad" and self.loss_reduction == "mean" else 1.0
        hp = None
        if ek is not None:
            hp = self.hist_params.get(ek)
            if hp is None:
                edges = self.edges.edges.get(ek)
                if edges is not None:
                    hp = self.hist_params[ek] = (edges, int(edges.size) - 1, *_bin_params(edges))
        if hp is not None:
            edges, nb, lo, kk = hp
            counts = np.zeros(nb, dtype=np.int64)
            if self.idx.size < need:
                self.idx = np.empty(need, dtype=np.int32)
        else:
            nb, lo, kk, counts = 0, 0.0, 0.0, self.no_counts
        if role == "fw":
            out = np.empty((5, chans))
            dt = flat.dtype
            near_t = self.near_t.get(dt)
            if near_t is None:
                near_t = self.near_t[dt] = dt.type(self.near_zero)
            if hrows:
                h = flat.reshape(batch, feats)[:hrows]
                n2 = np.empty(hrows)
            else:
                h = self.no_h.get(dt)
                if h is None:
                    h = self.no_h[dt] = np.empty((0, 1), dtype=dt)
                n2 = self.no_n2
            s, sq, near, q, counted = (k.fw_all_mid if mid else k.fw_all)(
                x, near_t, out, h, fstep, n2, flat, hstep, scale, lo, kk, nb, self.idx, counts)
            m = _Fast(role, rows, chans, out, sq, near, flat)
            if hrows:
                m.n2, m.q = n2, float(q)
        else:
            out = np.empty((2, chans))
            s, sq, counted = (k.grad_all_mid if mid else k.grad_all)(
                x, out, flat, hstep, scale, lo, kk, nb, self.idx, counts)
            m = _Fast(role, rows, chans, out, sq, math.nan, flat)
            m.scale = scale
            if hrows:  # (the input)
                m.n2 = np.empty(hrows)
                m.q = float(k.cos_sums(flat.reshape(batch, feats)[:hrows], fstep, m.n2))
        n = max(rows * chans, 1)
        mean = s / n
        var = sq / n - mean * mean
        if not math.isfinite(var) or var < 1e-3 * sq / n:  # the probe's rule
            import torch

            xt = torch.from_numpy(x).unsqueeze(0)
            m.exact = _centered_chan(xt, (1, 3) if mid else 1)
        if ek is not None:
            m.hist = _FastHist(ek, hist=Histogram(hp[0], counts, need)) if counted else self._fast_hist(ek, m)
        if role != "grad":
            p.fast.append(m)
        if self.trace is not None:
            self.trace.member(t, m, role, geo, ek, scale)
        return m

    def _hist(self, row: _Row, key: str, member: Any) -> None:
        """The row's histogram ``key`` ("act", "preact", "grad") is of this member's values, on
        the fixed edges of (row name, key), chosen at the first step that has it."""
        if isinstance(member, _Fast):
            ek = (row.st.name, key)
            h = member.hist
            if h is not None and h.key == ek:
                row.hist[key] = h
            else:
                row.hist[key] = self._fast_hist(ek, member)
                if self.trace is not None:
                    self.trace.hist(member, ek, row.hist[key])
            return
        g, i = member
        g.hist.append((i, (row.st.name, key)))
        row.hist[key] = (g, len(g.hist) - 1)

    def _fast_hist(self, ek: tuple[str, str], m: _Fast) -> _FastHist:
        """A :class:`_Fast` member's histogram on the fixed edges ``ek``: its strided sample
        (:func:`_sample_step`) binned by the kernel (finite values) or by the probe's
        :func:`~initlab.diagnostics._stats.histogram`; at the first step with these edges, the
        sample itself (the edges are chosen from it when the rows are built)."""
        flat = m.t.reshape(-1)
        n = int(flat.size)
        hs = self.hist_sample
        step = 1 if hs is None or n <= hs else self.strides.get((n, m.chans)) or self.strides.setdefault(
            (n, m.chans), _sample_step(n, m.chans, hs))
        hp = self.hist_params.get(ek)
        if hp is None:
            edges = self.edges.edges.get(ek)
            if edges is None:
                if self.pending is not None:
                    self.pending.first_hist = True
                with np.errstate(all="ignore"):
                    return _FastHist(ek, values=flat[::step].astype(np.float64) * m.scale)
            hp = self.hist_params[ek] = (edges, int(edges.size) - 1, *_bin_params(edges))
        edges, nb, lo, kk = hp
        if not m.finite:
            with np.errstate(all="ignore"):
                return _FastHist(ek, hist=histogram(flat[::step].astype(np.float64) * m.scale, edges))
        need = -(-n // step)
        if self.idx.size < need:
            self.idx = np.empty(need, dtype=np.int32)
        counts = np.zeros(nb, dtype=np.int64)
        k = self.kernels
        try:
            if k is None:
                raise RuntimeError("the kernels were turned off during this step")
            k.hist_counts(flat, step, m.scale, lo, kk, nb, self.idx, counts)
        except Exception as exc:  # the probe's own function on the sample
            if k is not None:
                self._kernels_failed(exc)
            return _FastHist(ek, hist=histogram(flat[::step].astype(np.float64) * m.scale, edges))
        return _FastHist(ek, hist=Histogram(edges, counts, need))

    def _module_hook(self, mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        rp = self.rp
        if rp is not None:
            if not self.recording or _WP[0].forward(self, rp, "fw", mod, inp, out):  # (a replay: _WP is loaded)
                return
            _watch_plan()._depart(self, rp)  # (this hook call by the general path, from where the replay got)
        p = self.pending
        if p is None or not self.recording:
            return
        if self.kernels is not None:  # (NumPy and detached tensors: nothing to keep out of the graph)
            tr = self.trace
            if tr is None:
                self._record(p, mod, inp, out)
                return
            tr.begin("fw", mod, out, inp[0] if inp else None, self.wmods_set)
            try:
                self._record(p, mod, inp, out)
            finally:
                tr.end(p)
            return
        import torch

        with torch.no_grad():  # the statistics are not part of the model's graph
            self._record(p, mod, inp, out)

    def _attention_hook(self, mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        """The forward hook of an ``nn.MultiheadAttention``: its first output (the attention's
        output, ``out_proj``'s) is recorded as the output of a Linear with ``out_proj``'s weight."""
        self._module_hook(mod, inp, out[0] if isinstance(out, tuple) and out else out)

    def _record(self, p: _Pending, mod: Any, inp: tuple[Any, ...], out: Any) -> None:
        torch = self.torch

        if not isinstance(out, torch.Tensor) or not out.is_floating_point() or not out.numel():
            return
        xin = inp[0] if inp and isinstance(inp[0], torch.Tensor) else None
        prev = p.rows[-1] if p.rows else None
        kind = self.kinds[mod]
        if kind == "activation" and prev is not None and prev.kind in ("linear", "conv") and not prev.paired \
                and xin is not None and xin is prev.out \
                and (_version(xin) == prev.version or id(mod) in p.pair_inplace):
            p.pair_inplace.discard(id(mod))
            self._pair(p, prev, mod, xin, out)
            return
        name = ""
        if id(mod) not in p.inplace:  # (an in-place activation's row was named by its pre-hook)
            base = self.names[mod]
            n_seen = p.names.get(base, 0)  # a module called again in one forward: .1, .2 (as the probe)
            p.names[base] = n_seen + 1
            name = base if n_seen == 0 else f"{base}.{n_seen}"
        if kind in ("linear", "conv"):
            axis = -1 if kind == "linear" else 1
            if kind == "conv" and out.ndim < 3:
                return
            lin = self.linear_act
            row = _Row(new_layer(len(p.rows) + 1, name, kind, lin), mod, kind, lin, axis, out, version=_version(out))
            row.st.op = _conv_op(mod) if kind == "conv" else "linear"
            m = row.fw["pre"] = row.fw["act"] = row.fw["cos"] = self._member(p, "fw", out, axis, cos=True,
                                                                               ek=(name, "preact"))
            row.fw["width"] = _width(tuple(out.shape), axis)
            self._hist(row, "preact", m)
            w = _plain_weight(mod)
            if isinstance(w, torch.Tensor):  # (not a parametrized weight: see _plain_weight)
                row.fw["weight"] = p.weights.get(id(w))
                fan = self.fans.get(mod)
                if fan is None or fan[0] != w.shape:  # computed once per module (and weight shape)
                    fan = self.fans[mod] = (w.shape, _fan_in(w, mod), _fan_out(w))
                row.st.fan_in, row.st.fan_out = fan[1], fan[2]
                row.weight = w
            if out.requires_grad:
                self._reg(p, row, "preact", out)
        elif kind == "activation":
            act = self.acts[mod]
            row = p.inplace.pop(id(mod), None)  # an in-place activation: its input was read before it wrote
            if row is None:
                row = self._act_row(p, mod, name, xin, out)
            row.out, row.version = out, _version(out)
            m = row.fw["act"] = self._member(p, "fw", out, row.axis, cos="cos" not in row.fw,
                                               ek=(row.st.name, "act"))
            row.fw.setdefault("cos", m)
            row.fw["width"] = _width(tuple(out.shape), row.axis)
            self._saturation(row, act, row.fw.get("pre") if xin is not out else None, m, xin, out)
            if self.trace is not None and act is not None and act.saturating:
                self.trace.saturation(row, act)
            self._hist(row, "act", m)
            if out.requires_grad:
                self._reg(p, row, "act", out)
        else:  # norm
            op, axis = _norm_op(mod)
            if out.ndim < 2:
                axis = -1
            row = _Row(new_layer(len(p.rows) + 1, name, "norm", None), mod, "norm", None, axis, out,
                       version=_version(out))
            row.st.op = op
            m = row.fw["act"] = row.fw["cos"] = self._member(p, "fw", out, axis, cos=True, ek=(name, "act"))
            row.fw["width"] = _width(tuple(out.shape), axis)
            self._hist(row, "act", m)
            w = _plain_weight(mod)
            if isinstance(w, torch.Tensor):
                row.fw["gain"] = p.weights.get(id(w))
                row.weight = w
            if out.requires_grad:
                self._reg(p, row, "act", out)
        row.st.module = type(mod).__name__
        p.rows.append(row)

    def _act_row(self, p: _Pending, mod: Any, name: str, xin: Any, out: Any) -> _Row:
        """A row for an activation module that is not merged into the row before it, with its
        input's (pre-activation) statistics: those of the row before when the input is that row's
        output (as the probe reuses them), else measured."""
        act = self.acts[mod]
        prev = p.rows[-1] if p.rows else None
        ref = out if out is not None else xin
        axis = prev.axis if (prev is not None and xin is prev.out) else (1 if ref.ndim >= 4 else -1)
        row = _Row(new_layer(len(p.rows) + 1, name, "activation", act), mod, "activation", act, axis)
        row.st.op = _ACT_OPS.get(type(mod).__name__, type(mod).__name__.lower())
        if xin is not None and xin is not out and xin.is_floating_point():
            if prev is not None and xin is prev.out and _version(xin) == prev.version and prev.axis == axis \
                    and "act" in prev.fw:
                m = row.fw["pre"] = prev.fw["act"]  # measured just before (and not written since)
                row.fw["cos"] = prev.fw["cos"]
            else:
                m = row.fw["pre"] = row.fw["cos"] = self._member(p, "fw", xin, axis, cos=True,
                                                                   ek=(name, "preact"))
            self._hist(row, "preact", m)
            if xin.requires_grad:
                self._reg(p, row, "preact", xin)
        return row

    def _inplace_pre(self, mod: Any, inp: tuple[Any, ...]) -> None:
        """Forward pre-hook of an in-place activation module (``ReLU(inplace=True)``): its input
        is copied before the module overwrites it, as the probe measures in-place ops before they
        write (unless it is merged into the linear/conv row before it, which copied it)."""

        rp = self.rp
        if rp is not None:
            if not self.recording or _watch_plan().forward(self, rp, "pre", mod, inp, None):
                return
            _watch_plan()._depart(self, rp)
        tr = self.trace
        if tr is not None and self.pending is not None and self.recording:
            tr.begin("pre", mod, None, inp[0] if inp else None, self.wmods_set)
            try:
                self._inplace_pre_general(mod, inp)
            finally:
                tr.end(self.pending)
            return
        self._inplace_pre_general(mod, inp)

    def _inplace_pre_general(self, mod: Any, inp: tuple[Any, ...]) -> None:
        import torch

        p = self.pending
        xin = inp[0] if inp and isinstance(inp[0], torch.Tensor) else None
        if p is None or not self.recording or xin is None or not xin.is_floating_point() or not xin.numel():
            return
        prev = p.rows[-1] if p.rows else None
        if prev is not None and prev.kind in ("linear", "conv") and not prev.paired and xin is prev.out \
                and _version(xin) == prev.version:
            p.pair_inplace.add(id(mod))  # merged into that row by the forward hook, after the write
            return
        with torch.no_grad():
            base = self.names[mod]
            n_seen = p.names.get(base, 0)
            p.names[base] = n_seen + 1
            name = base if n_seen == 0 else f"{base}.{n_seen}"
            p.inplace[id(mod)] = self._act_row(p, mod, name, xin, None)

    def _pair(self, p: _Pending, prev: _Row, mod: Any, xin: Any, out: Any) -> None:
        """An activation module taking the linear/conv row's output directly: merged into that row
        (pre-activation → activation), as the probe merges it."""
        act = self.acts[mod]
        m = prev.fw["act"] = self._member(p, "fw", out, prev.axis, ek=(prev.st.name, "act"))
        self._saturation(prev, act, prev.fw["pre"], m, xin, out)  # (the pre-activation was copied before an in-place write)
        if self.trace is not None and act is not None and act.saturating:
            self.trace.saturation(prev, act)
        self._hist(prev, "act", m)
        prev.activation, prev.paired, prev.out, prev.version = act, True, out, _version(out)
        prev.st.activation = None if act is None else act.spec
        if out.requires_grad:
            self._reg(p, prev, "act", out)

    @staticmethod
    def _saturation(row: _Row, act: _activations.Activation | None, pre: Any, a: Any, xin: Any, out: Any) -> None:
        """The count of saturated values (:meth:`Activation.saturated_mask`): where φ′ has a
        formula in y = φ(x) (tanh, sigmoid), by torch ops on the copies when the step ends (the
        members ``pre`` and ``a``); else now, on NumPy copies of the input and output."""
        if act is None or not act.saturating:
            return
        if act.deriv_from_output is not None and (isinstance(a, _Fast) or isinstance(pre, _Fast)):  # counted now
            y = out.detach()
            dv = act.deriv_from_output(xin.detach() if xin is not None and xin is not out else y, y)
            row.fw["sat_host"] = float((dv.abs() < act.saturation_threshold * act.max_deriv).sum())
        elif act.deriv_from_output is not None:
            row.fw["sat"] = (act, pre, a)
        elif xin is None or xin is out:  # in place: the input is gone
            row.fw["sat_host"] = math.nan
        else:
            from initlab.diagnostics._probe_torch import to_numpy

            row.fw["sat_host"] = float(np.count_nonzero(act.saturated_mask(to_numpy(xin), to_numpy(out))))

    def log_loss(self, loss: Any) -> None:
        value = _loss_value(loss)  # checked on every step; read (a sync on CUDA) only when recorded
        rp = self.rp
        if rp is not None and rp.step == self.step:
            rp.loss = value
            return
        p = self.pending
        if p is not None and p.step == self.step:
            p.loss = value

    # finishing a step ----------------------------------------------------------------------------
    def finish(self, fuse: bool = False) -> None:
        """Fill the backward statistics and update sizes of the pending step and record it.
        ``fuse``: the next forward (in the same call of the root's pre-hook) is recorded, so the
        kernels leave the weights' copies for it (:meth:`_fast_snapshot`)."""
        rp = self.rp
        if rp is not None:  # (a replayed step: kernels and Python floats, no NumPy arithmetic outside errstate)
            self.rp = None
            self._replay_finish(rp, fuse)
            return
        with np.errstate(all="ignore"):  # a diverging run gives inf/nan statistics, reported as diverged
            self._finish(fuse)

    def _finish(self, fuse: bool = False) -> None:
        rp, self.rp = self.rp, None
        if rp is not None:
            self._replay_finish(rp, fuse)
            return
        p, self.pending = self.pending, None
        if p is None:
            return
        import torch

        for h in p.grad_handles:
            h.remove()
        if self.made and self.watch.every > 1:  # (every = 1: the next step registers them again; reset on exit)
            self._reset_hook_dicts()
        if p.cap is not None:
            self._ops_finish(p)
            return
        d = p.d
        self._settle_groups(p, final=True)  # the deltas' (the activations' when the forward ended); the histograms
        with torch.no_grad():
            on_cpu = not any(_launch_bound(w) for w, _ in p.snapshots.values())
            upd_sl = {} if on_cpu else _update_norms(d, p.snapshots)
            _Sums.lazy_moments(d)  # (the weights' copies are not written before the next recorded step)
        if isinstance(p.loss, torch.Tensor) and p.loss.is_cpu:  # read now: no device to wait for
            p.loss = float(p.loss.item())
        loss_sl = d.put(p.loss) if isinstance(p.loss, torch.Tensor) else None
        d.resolve()
        for g, o in p.outs.items():
            self._settle_moments(g, o, d)  # (before the copies are written again)
        for ws in p.weights.values():
            ws.settle(d)
        for r in p.rows:
            r.module = None
        if on_cpu:  # in the snapshot buffers, now that the weights' sums are settled: no allocation
            upd = self._fast_update_norms(p.snapshots, fuse)
            rest = {key: v for key, v in p.snapshots.items() if key not in upd}
            upd.update(_update_norms_in_place(rest))
        else:
            upd = {k: float(d[sl][0]) for k, sl in upd_sl.items()}
        snaps = p.snapshots
        p.snapshots, p.grad_handles, p.inplace, p.groups = {}, [], {}, []
        tr, self.trace = self.trace, None
        if p.first_hist or any(o.sample is not None for o in p.outs.values()):
            self._build(p, d, upd, loss_sl)  # a first histogram: the edges come from this step
        else:  # built when the Watch is read (Watch.steps)
            ids: dict[int, int] = {}
            frozen = self._freeze(p, d, upd, loss_sl, ids)
            if frozen is not None and tr is not None and self.kernels is not None:
                self.plan = _watch_plan().build(self, tr, p, frozen, ids, snaps)
            self.watch._lazy.append(frozen if frozen is not None else (lambda: self._build(p, d, upd, loss_sl)))
            self.watch._verdicts = None

    def _replay_finish(self, rp: Any, fuse: bool) -> None:
        """The end of a replayed step: the weights' update sizes, then the step kept as its
        numbers (:func:`_watch_plan.frozen`); a step whose backward did not run every gradient
        hook of the plan is finished by the general path (:func:`_watch_plan.materialize`)."""
        wp = _watch_plan()
        pl = rp.plan
        for h in rp.handles:
            h.remove()
        rp.handles = []
        if self.made and self.watch.every > 1:
            self._reset_hook_dicts()
        ends = pl.ends
        if ends is None:  # (the gradient hooks that take a member, the weights' gradients: fixed by the plan)
            ends = pl.ends = (sum(1 for g in pl.grads if g[2] is not None), frozenset(pl.wgi))
        # (all the plan's gradient hooks registered, each once: those that take a member all ran)
        complete = rp.mat is None and len(rp.gregs) == len(pl.grads) and len(rp.done) == ends[0] \
            and rp.wdone == ends[1]
        if not complete:
            with np.errstate(all="ignore"):
                if rp.mat is None:
                    wp._depart(self, rp)
                self.rp, self.pending = None, rp.mat
                self._finish(fuse)
            return
        if isinstance(rp.loss, self.torch.Tensor):
            rp.loss = float(rp.loss.item()) if rp.loss.is_cpu else float(rp.loss.detach().cpu().item())
        upd = self._replay_update_norms(pl, fuse)
        if upd is None:
            snaps = {key: (w, self._snap_buffer(w)) for w, key, *_ in pl.weights}
            with np.errstate(all="ignore"):
                upd = self._fast_update_norms(snaps, fuse)
                rest = {key: v for key, v in snaps.items() if key not in upd}
                upd.update(_update_norms_in_place(rest))
        if pl.kept_index is None:  # (what reading its steps needs, without the trace's objects)
            pl.kept_index = len(self.plans)
            self.plans.append(wp.KeptPlan(pl))
        self.watch._lazy.append(wp.kept(rp, pl.kept_index, upd))
        self.watch._verdicts = None
        self.replayed += 1
        self.misses = 0

    def _intern(self, obj: Any) -> int:
        """The index of a parameter or activation in :attr:`interned` (kept for the watch's life)."""
        i = self.intern_ids.get(id(obj))
        if i is None or self.interned[i] is not obj:
            i = self.intern_ids[id(obj)] = len(self.interned)
            self.interned.append(obj)
        return i

    def _freeze(self, p: _Pending, d: _Deferred, upd: dict[int, float], loss_sl: Any,
                ids: dict[int, int] | None = None) -> tuple[Any, ...] | None:
        """A finished step of the kernel path kept until the Watch is read as one tuple of numbers,
        strings, NumPy arrays and tuples of them (parameters and activations by their index in
        :attr:`interned`), which Python's garbage collector stops tracking after its first look:
        the members, rows and sums of a step kept as objects cost every later full collection a
        visit each, about 0.2 ms a recorded step in a long run. :meth:`_thaw` makes the same
        objects again for :meth:`_build`. None (kept as objects) for a step with anything else
        (the torch path's groups, a first histogram, the first step's init names)."""
        if p.groups or p.outs or p.init_guess or p.first_hist or d.parts or loss_sl is not None \
                or not (p.loss is None or type(p.loss) is float):
            return None
        ids = {} if ids is None else ids
        mems: list[tuple[Any, ...]] = []

        def mem(m: Any) -> int:
            i = ids.get(id(m))
            if i is not None:
                return i
            if type(m) is _Fast:
                ex = m.exact
                rec: tuple[Any, ...] = ("F", m.role, m.per_chan, m.chans, m.out, m.sq, m.near, m.n2, m.q, m.scale,
                                        None if ex is None else tuple(float(v) for v in ex))
            elif type(m) is _HostSums:
                rec = ("H", m.n, m.s, m.q, None if m.exact is None else tuple(float(v) for v in m.exact))
            else:
                raise _Unfrozen
            i = ids[id(m)] = len(mems)
            mems.append(rec)
            return i

        try:
            rows = []
            for r in p.rows:
                st = tuple(r.st.__dict__.items())  # (its values as the row's hooks left them)
                if r.module is not None or r.out is not None:
                    return None
                fw = []
                for k, v in r.fw.items():
                    if k in ("pre", "act", "cos", "weight", "gain"):
                        fw.append((k, -1 if v is None else mem(v)))
                    elif k in ("width", "sat_host"):
                        fw.append((k, v))
                    else:
                        return None
                hist = []
                for k, h in r.hist.items():
                    if type(h) is not _FastHist or h.hist is None:
                        return None
                    hist.append((k, h.key, h.hist.edges, h.hist.counts, int(h.hist.n_sampled)))
                rows.append((st, r.kind, -1 if r.activation is None else self._intern(r.activation), r.axis,
                             bool(r.paired), -1 if r.weight is None else id(r.weight), tuple(fw),
                             tuple((k, mem(v)) for k, v in r.grads.items()), tuple(hist)))
            wg = tuple((k, mem(v)) for k, v in p.weight_grads.items())
            inp = -1 if p.input is None else mem(p.input)
        except _Unfrozen:
            return None
        return ("step", p.step, p.batch, p.loss, tuple(mems), tuple(rows), wg, inp,
                tuple((int(k), float(v)) for k, v in upd.items()))

    def _thaw(self, frozen: tuple[Any, ...]) -> None:
        """The step :meth:`_freeze` kept, built (:meth:`_build`) from the same objects again."""
        from initlab.diagnostics._result import LayerStats

        if frozen[0] == "replay":
            frozen = _watch_plan().frozen(self.plans[frozen[1]], frozen)
        _, step, batch, loss, mrecs, rows, wg, inp, upd = frozen
        mems: list[Any] = []
        for rec in mrecs:
            if rec[0] == "F":
                _, role, per_chan, chans, out, sq, near, n2, q, scale, exact = rec
                m = _Fast(role, per_chan, chans, out, sq, near, None)
                m.n2, m.q, m.scale, m.exact = n2, q, scale, exact
            else:
                m = _HostSums(rec[1], rec[2], rec[3], rec[4])
            mems.append(m)
        p = _Pending(step)
        p.batch, p.loss = batch, loss
        for st_items, kind, act, axis, paired, weight, fw, grads, hist in rows:
            st = LayerStats.__new__(LayerStats)
            st.__dict__.update(st_items)
            r = _Row(st, None, kind, None if act < 0 else self.interned[act], axis, paired=paired)
            r.wkey = None if weight < 0 else weight  # (the weight's id in the step's dicts; the weight is not kept)
            for k, v in fw:
                r.fw[k] = (None if v < 0 else mems[v]) if k in ("pre", "act", "cos", "weight", "gain") else v
            for k, v in grads:
                r.grads[k] = mems[v]
            for k, key, edges, counts, n in hist:
                r.hist[k] = _FastHist(key, hist=Histogram(edges, counts, n))
            p.rows.append(r)
        p.weight_grads = {k: mems[v] for k, v in wg}
        p.input = None if inp < 0 else mems[inp]
        self._build(p, _Deferred(), dict(upd), None)

    def _view(self, t: Any) -> np.ndarray | None:
        """:func:`_np_flat` of a tensor that lives across steps (a weight, a snapshot's buffer),
        kept while its memory and shape are the same."""
        v = self.views.get(id(t))
        if v is not None and v[0] is t and v[1] == t.data_ptr() and v[2] == t.shape:
            return v[3]
        flat = _np_flat(t)
        self.views[id(t)] = (t, t.data_ptr(), t.shape, flat)
        return flat

    def _weight_batch(self, pl: Any) -> tuple[Any, ...] | None:
        """A replayed plan's weights for one kernel call over all of them: (their data pointers,
        their views, their snapshot buffers' views, the buffers, and the kernels' output arrays),
        kept with the plan while the weights' memory and buffers are the same; None where that
        does not apply (no kernels, weights of several dtypes or not viewable)."""
        if self.kernels is None or pl.wbatch is False:
            return None
        weights = pl.wlist
        if weights is None:
            weights = pl.wlist = [w for w, *_ in pl.weights]
        ptrs = tuple([w.data_ptr() for w in weights])
        wb = pl.wbatch
        same = wb is not None and wb[0] == ptrs
        if same:
            buffers = self.buffers
            for w, b in zip(weights, wb[3]):
                if buffers.get(id(w)) is not b:
                    same = False
                    break
        if not same:
            bufs = [self._snap_buffer(w) for w in weights]
            ws = tuple(self._view(w) for w in weights)
            ss = tuple(self._view(b) for b in bufs)
            if not ws or any(v is None for v in (*ws, *ss)) or len({v.dtype for v in (*ws, *ss)}) != 1 \
                    or any(a.size != b.size for a, b in zip(ws, ss)):
                pl.wbatch = False
                return None
            n = len(ws)
            wb = pl.wbatch = (ptrs, ws, ss, bufs, np.empty((n, 4)), np.empty((n, 3)), np.empty(n))
        return wb

    def _replay_update_norms(self, pl: Any, fuse: bool = True) -> dict[int, float] | None:
        """:meth:`_fast_update_norms` of a replayed step's weights in one kernel call over all of
        them (:meth:`_weight_batch`; ``fuse``: with the next step's copies and sums, left in
        :attr:`presnap`); None where that does not apply (then weight by weight)."""
        wb = self._weight_batch(pl)
        if wb is None:
            return None
        k = self.kernels
        sqrt = math.sqrt
        upd = {}
        if not fuse:
            try:
                k.diff_all(wb[1], wb[2], wb[6])
            except Exception as exc:
                self._kernels_failed(exc)
                return None
            for (w, key, *_), d2 in zip(pl.weights, wb[6].tolist()):
                upd[key] = sqrt(max(d2, 0.0))
            return upd
        out = wb[4]
        try:
            k.diff_snap_all(wb[1], wb[2], out)
        except Exception as exc:
            self._kernels_failed(exc)
            return None
        presnap = self.presnap
        for (w, key, *_), (d2, s_, q, cancel) in zip(pl.weights, out.tolist()):
            upd[key] = sqrt(max(d2, 0.0))
            presnap[key] = (w, s_, q, cancel != 0.0)  # (the next step's copy, its sums, the variance rule)
        return upd

    def _fast_update_norms(self, snapshots: dict[int, tuple[Any, Any]], fuse: bool) -> dict[int, float]:
        """‖W − W_before‖_F of the snapshotted CPU weights the kernels read (one pass over W and
        its copy); with ``fuse``, the same pass copies W into the buffer and sums it for the next
        recorded step (:attr:`presnap`)."""
        k = self.kernels
        out: dict[int, float] = {}
        if k is None:
            return out
        for key, (w, snap) in snapshots.items():
            wn = self._view(w)
            if wn is None or snap.dtype != w.dtype or snap.shape != w.shape:
                continue
            sn = self._view(snap)
            try:
                if fuse:
                    d2, s, q = k.diff_snap_sums(wn, sn)
                    self.presnap[key] = (w, float(s), float(q))
                else:
                    d2 = k.diff_sq(wn, sn)
            except Exception as exc:  # (the rest by torch operations, in place)
                self._kernels_failed(exc)
                break
            out[key] = math.sqrt(max(float(d2), 0.0))
        return out

    def _group_stats(self, g: _Group, d: _Deferred, scale: float, cos: list[int] | None = None,
                     near: list[int] | None = None) -> _GroupOut:
        """All the statistics of a group's tensors in one set of torch operations on their
        device and dtype, put in ``d``: the probe's sums (the channel sums and Σx²; for
        activations the channel maxima and the minimum: :func:`_host_moments`); for activations
        and the input the cosine sums of :func:`~initlab.diagnostics._stats.cosine_from_sums`
        (in float64); for activations the near-zero counts; the histograms, binned on their
        fixed edges by :meth:`_bin_step` with the step's others when the step ends, or the
        samples themselves at the first step (the edges are chosen from them). The cosine and
        the near-zero count are computed for the members ``cos`` and ``near`` only (the rows'
        that report them; None: all). Each is one operation for the whole group, except Σx² on
        the CPU (a BLAS dot per tensor there: one read, no temporary); off the CPU
        (:func:`_launch_bound`) Σx² is one :func:`torch.linalg.vector_norm` accumulated in
        float64 (its square taken on the host)."""
        import torch

        x = g.stacked()
        n = g.n
        cv, dims = _channels(x, g.shape, g.axis)
        chans = int(cv.shape[2])
        per_chan = int(cv.shape[1]) * (int(cv.shape[3]) if cv.ndim == 4 else 1)
        flat = cv.reshape(n, -1)
        step = _sample_step(int(flat.shape[1]), chans, self.hist_sample)
        sample = flat[:, ::step] if step > 1 else flat  # the histogram sample (a strided subsample)
        device = _launch_bound(x)
        if device:  # √Σx²: one reduction for the group, accumulated in float64
            sq = torch.linalg.vector_norm(flat, dim=1, dtype=_acc_dtype(x))
        else:  # Σx²: a BLAS dot per tensor (one read, no temporary)
            sq = torch.stack([torch.dot(r, r) for r in flat])
        out = _GroupOut(n, per_chan, chans, d.put(cv.sum(dims)), d.put(sq), sq_norm=device, scale=scale,
                        samples=int(sample.shape[1]))
        if g.role == "fw" and device and cv.ndim == 3:  # the channel minima and maxima in one reduction
            mn, mx = torch.aminmax(cv, dim=1)
            out.cmax, out.mn, out.mn_chan = d.put(mx), d.put(mn), True
        elif g.role == "fw":  # the channel maxima and the minimum
            out.cmax, out.mn = d.put(cv.amax(dims)), d.put(flat.amin(1))
        every = list(range(n))
        cos = every if cos is None or (device and cos and not _spaced(cos)) else cos
        near = every if near is None or (device and near and not _spaced(near)) else near
        # (off the CPU, members not evenly spaced are all read rather than copied out: a launch fewer)
        if g.role in ("fw", "in") and cos:
            h = _heads(_rows(x, cos, self.row_index), g.shape, g.seq_first)
            if h is not None:  # cosine_from_sums' ‖x_i‖, ‖Σ_i x_i/‖x_i‖‖ in float64 (x² of a float32 may overflow)
                nrm = torch.linalg.vector_norm(h, dim=2, dtype=_acc_dtype(h))
                # Σ_i x_i/‖x_i‖: a zero row gives 0/0 = NaN, which nansum leaves out (as cosine_from_sums
                # leaves it out); any other NaN comes of a non-finite row, whose norm makes the cosine NaN
                su = (h / nrm.unsqueeze(2)).nansum(1)
                if su.numel() > _SU_HOST:  # ‖Σ_i x_i/‖x_i‖‖ here; a few values: the sums, squared on the host
                    su = torch.linalg.vector_norm(su, dim=1)
                out.k, out.n2, out.q = int(h.shape[1]), d.put(nrm), d.put(su)
                out.q_feats = int(su.shape[1]) if su.ndim == 2 else 0
                out.cos = {i: j for j, i in enumerate(cos)}
        if g.role == "fw" and near:  # |x| ≤ near_zero as 0/1 in place, summed exactly: float32 up to 2²⁴ values
            flags = _rows(flat, near, self.row_index).abs().le_(self.near_zero)
            exact = flags.shape[1] < 2 ** 24 and flags.dtype == torch.float32
            out.near = d.put(flags.sum(1) if exact else flags.sum(1, dtype=torch.float64))
            out.near_at = {i: j for j, i in enumerate(near)}
        if g.hist:
            out.pairs = list(g.hist)
            edges = [self.edges.edges.get(ek) for _, ek in out.pairs]
            if any(e is None for e in edges):  # a first histogram: binned on the host, edges chosen there
                out.sample = d.put(sample)
            else:  # binned with the step's other histograms (_bin_step)
                out.hv = _rows(sample, [i for i, _ in out.pairs], self.row_index)
        return out

    def _settle_groups(self, p: _Pending, final: bool = False) -> None:
        """The statistics of the step's groups not done yet (:meth:`_group_stats`): the input's
        when the forward pass begins, the activations' when it ends, the deltas' when the step
        ends; and, when the step ends (``final``), all the step's histograms on known edges
        binned together (:meth:`_bin_step`: one binning per step)."""
        import torch

        todo = [g for g in p.groups if g not in p.outs]
        with torch.no_grad():
            if todo:
                self._group_all(p, todo)
            if final:
                outs = [o for o in p.outs.values() if o.hv is not None]
                if outs:
                    self._bin_step(outs, p.d)

    def _group_all(self, p: _Pending, todo: list[_Group]) -> None:
        """:meth:`_group_stats` of the groups ``todo``; the saturated counts of the rows that have
        their copies."""
        torch = self.torch
        scale = float(p.batch) if self.loss_reduction == "mean" else 1.0
        cos: dict[_Group, set[int]] = {}  # the members whose cosine or near-zero count a row reports
        near: dict[_Group, set[int]] = {}
        for r in p.rows:
            for key, want in (("cos", cos), ("act", near)):
                m = r.fw.get(key)
                if m is not None and not isinstance(m, _Fast):
                    want.setdefault(m[0], set()).add(m[1])
        if p.input is not None and not isinstance(p.input, _Fast):
            cos.setdefault(p.input[0], set()).add(p.input[1])
        for g in todo:
            p.outs[g] = self._group_stats(g, p.d, scale if g.role == "grad" else 1.0,
                                          sorted(cos.get(g, ())), sorted(near.get(g, ())))
        for r in p.rows:
            if "sat" in r.fw:  # the saturated count, from the copies of the input and output
                act, pre, a = r.fw.pop("sat")
                y = a[0].stacked()[a[1]]
                x = y if pre is None else pre[0].stacked()[pre[1]]
                dv = act.deriv_from_output(x, y)
                sat = dv.abs() < act.saturation_threshold * act.max_deriv  # counted exactly in float64, with
                r.fw["sat_ref"] = p.d.put(sat.sum(dtype=torch.float64))  # the step's float64 numbers (one copy)

    def _bin_step(self, outs: list[_GroupOut], d: _Deferred) -> None:
        """The groups' histograms on known edges in one :func:`_bin_values` (one concatenation,
        one bincount or scatter-add): each group's sample rows, each on its own edges, the
        deltas scaled to the probe's per-sample values. The per-value vectors (and, off the
        CPU, the scatter-add's ones: float64 counts, exact, in the step's float64 numbers) are
        built once per layout (the same layers every recorded step) and kept."""
        import torch

        if not outs:
            return
        key = tuple((tuple(o.pairs), tuple(o.hv.shape), o.scale) for o in outs)
        cached = self.hist_cache.get(key)
        if cached is None:
            dev = outs[0].hv.device
            lo, k, sc, sizes = [], [], [], []
            for o in outs:
                for _, ek in o.pairs:
                    a, b = _bin_params(self.edges.edges[ek])
                    lo.append(a)
                    k.append(b)
                    sc.append(o.scale)
                    sizes.append(int(o.hv.shape[1]))
            rep = torch.tensor(sizes, device=dev)
            total = int(sum(sizes))
            vec = [torch.repeat_interleave(torch.tensor(v, dtype=torch.float64, device=dev), rep, output_size=total)
                   for v in (lo, k, sc)]
            off = torch.repeat_interleave(torch.arange(0, len(sizes) * (self.bins + 1), self.bins + 1, device=dev),
                                          rep, output_size=total)
            ones = torch.ones(total, dtype=torch.float64, device=dev) if _launch_bound(outs[0].hv) else None
            cached = (vec[0], vec[1], vec[2] if any(v != 1.0 for v in sc) else None, off, len(sizes), ones)
            if len(self.hist_cache) > 8:
                self.hist_cache.clear()
            self.hist_cache[key] = cached
        at = 0
        for o in outs:
            o.first = at
            at += len(o.pairs)
        v = torch.cat([o.hv.reshape(-1) for o in outs]) if len(outs) > 1 else outs[0].hv.reshape(-1)
        for o in outs:
            o.hv = None
        lo_v, k_v, s_v, off, rows, ones = cached
        ref = d.put(_bin_values(v, lo_v, k_v, s_v, off, rows, self.bins, ones=ones, full=True))
        for o in outs:
            o.counts = ref

    @staticmethod
    def _settle_moments(g: _Group, o: _GroupOut, d: _Deferred) -> None:
        """The probe's centered fallback, for the members whose variance Σx²/n − mean² falls
        below 1e-3 of E[x²] (a tiny spread beside the mean, where the sums cancel): their mean,
        variance, sq_mean and chan_var recomputed in float64 from the group's copy, now, before
        the next recorded step writes the buffer again (as :func:`~initlab.diagnostics._stats.moments`)."""
        n = max(o.per_chan, 1) * o.chans
        mean = d[o.csum].reshape(o.members, o.chans).sum(axis=1) / n
        ex2 = o.sqs(d) / n
        var = ex2 - mean * mean
        for i in np.flatnonzero(~np.isfinite(var) | (var < 1e-3 * ex2)):
            o.exact[int(i)] = _centered_chan(*_channels(g.stacked()[int(i)].unsqueeze(0), g.shape, g.axis))

    def _moments(self, p: _Pending, d: _Deferred, member: tuple[_Group, int]) -> Moments:
        if isinstance(member, (_Sums, _HostSums)):
            return member.moments(d)
        if isinstance(member, _Fast):
            return member.moments()
        g, i = member
        return p.outs[g].moments(d, i)

    def _cosine(self, p: _Pending, d: _Deferred, member: tuple[_Group, int] | None) -> float:
        if member is None:
            return math.nan
        if isinstance(member, _Fast):
            return cosine_from_sums(member.n2, member.q) if member.n2 is not None else math.nan
        g, i = member
        o = p.outs[g]
        j = o.cos.get(i)
        if j is None:
            return math.nan
        nrm = d[o.n2].reshape(len(o.cos), o.k)[j]
        if o.q_feats:  # the sums Σ_i x_i/‖x_i‖ themselves
            su = d[o.q].reshape(len(o.cos), o.q_feats)[j]
            return cosine_from_sums(nrm * nrm, float(np.dot(su, su)))
        q = float(d[o.q][j])
        return cosine_from_sums(nrm * nrm, q * q)  # (the norms' squares: n2 and q)

    def _build(self, p: _Pending, d: _Deferred, upd_norms: dict[int, float], loss_sl: Any) -> None:
        """The step's rows (the probe's statistics) from its numbers on the host; Watch.add_step."""
        backward = any(r.grads for r in p.rows)
        scale = float(p.batch) if self.loss_reduction == "mean" else 1.0
        wscale = scale / max(p.batch, 1)  # the probe's ∂L/∂W of the mean loss
        layers, near, upd = [], {}, {}
        for r in p.rows:
            st = r.st
            wid = r.wid()
            self._fill_forward(p, d, r)
            w_norm = None
            wm = r.fw.get("weight") or r.fw.get("gain")
            if wm is not None:
                ws = self._moments(p, d, wm)
                w_norm = math.sqrt(max(ws.n * (ws.std * ws.std + ws.mean * ws.mean), 0.0))
                if r.fw.get("weight") is not None:
                    st.weight_std = ws.std
                else:
                    st.gain_mean, st.gain_std = ws.mean, ws.std
            if backward:
                has_pre = r.kind in ("linear", "conv")
                gpre = r.grads.get("preact") if r.kind != "norm" else r.grads.get("act")
                gact = r.grads.get("act", gpre if has_pre and not r.paired else None)
                if r.kind == "norm":
                    gact = gpre
                if gpre is not None:
                    gm = self._moments(p, d, gpre)
                    st.grad_std = gm.std * scale
                    st.grad_rms = math.sqrt(max(gm.std * gm.std + gm.mean * gm.mean, 0.0)) * scale
                if gact is not None:
                    st.grad_act_std = st.grad_std if gact is gpre else self._moments(p, d, gact).std * scale
                gw = p.weight_grads.get(wid) if wid is not None else None
                if gw is not None:
                    gs = self._moments(p, d, gw)
                    st.grad_weight_std = gs.std * wscale
                    if w_norm is not None:
                        gn = math.sqrt(max(gs.n * (gs.std * gs.std + gs.mean * gs.mean), 0.0)) * wscale
                        st.grad_weight_ratio = gn / w_norm if w_norm > 0 else math.inf
            guess = p.init_guess.get(wid) if wid is not None and r.kind != "norm" else None
            if guess is not None:
                st.weight_init, st.weight_kurtosis = guess
            if wid is not None and wid in upd_norms and w_norm is not None:
                dn = upd_norms[wid]
                upd[st.name] = dn / w_norm if w_norm > 0 else math.inf
            m = r.fw["act"]
            if isinstance(m, _Fast):
                near[st.name] = m.near / max(m.per_chan * m.chans, 1)
            else:
                g, i = m
                o = p.outs[g]
                near[st.name] = float(d[o.near][o.near_at[i]]) / max(o.per_chan * o.chans, 1)
            layers.append(st)
        self._histograms(d, p.rows, p)
        inp = (0.0, 0.0, None)
        if p.input is not None:
            hi = self._moments(p, d, p.input)
            inp = (hi.mean, hi.std, self._cosine(p, d, p.input))
        loss = float(d[loss_sl][0]) if loss_sl is not None else p.loss
        self.watch.add_step(p.step, layers, loss=loss, input_stats=inp, batch=p.batch,
                            backward=backward, near_zero=near, update_ratio=upd)

    def _fill_forward(self, p: _Pending, d: _Deferred, r: _Row) -> None:
        """The probe's forward statistics (preact_stats / act_stats) from the step's numbers."""
        st = r.st
        st.width = r.fw.get("width", 0)
        pre = self._moments(p, d, r.fw["pre"]) if "pre" in r.fw else None
        act = self._moments(p, d, r.fw["act"])
        if pre is not None:
            st.preact_mean, st.preact_std, st.preact_sq_mean = pre.mean, pre.std, pre.sq_mean
            st.preact_min, st.preact_max = pre.min, pre.max
        st.mean, st.std, st.sq_mean, st.chan_var, st.min, st.max = (act.mean, act.std, act.sq_mean, act.chan_var,
                                                                    act.min, act.max)
        st.cosine = self._cosine(p, d, r.fw.get("cos"))
        n = act.n  # values in the layer's output
        a = r.activation
        st.saturated, st.dead = None, None
        if a is not None and a.saturating:
            if "sat_ref" in r.fw:
                st.saturated = float(d[r.fw["sat_ref"]][0]) / n
            else:
                sh = r.fw.get("sat_host", math.nan)
                st.saturated = sh / n if math.isfinite(sh) else math.nan
        if a is not None and a.can_die and pre is not None and pre.chan_max.size:
            st.dead = float(np.mean(a.inactive_mask(pre.chan_max)))

    # capture="ops": the probe's op-level capture on recorded steps -----------------------------
    def _ops_begin(self, p: _Pending, root: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Start the probe's capture (:class:`~initlab.diagnostics._probe_torch._Capture`, its
        function mode and module-path hooks) for this forward pass; snapshot the parameters and
        hook their gradients."""
        import torch

        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        x = tensors[0] if tensors else None
        p.batch = (int(x.shape[0]) if x.ndim else 1) if x is not None else 0
        if x is not None and x.is_floating_point() and x.numel():
            from initlab.diagnostics._probe_torch import to_numpy

            xn = to_numpy(x)
            with np.errstate(all="ignore"):
                m = moments(xn)
                p.input = (m.mean, m.std, mean_pairwise_cosine(xn))  # type: ignore[assignment]
        from torch.nn.parameter import is_lazy

        with torch.no_grad():
            for prm in self.model.parameters():
                if not is_lazy(prm) and prm.is_floating_point() and id(prm) not in p.snapshots:
                    p.snapshots[id(prm)] = (prm, self._snapshot(prm))
                    if prm.requires_grad:
                        if prm._backward_hooks is None:  # (the dict the watch makes goes with its hooks)
                            self.made[id(prm)] = prm
                        p.grad_handles.append(prm.register_hook(self._param_grad(p, id(prm))))
        cap = _watch_capture(self.model, self.hist_sample, p.batch)
        for t in tensors:
            cap.mark_input(t)
        p.cap = cap
        handles = cap.install_hooks()
        # the root's pair of path hooks (the first two): removed at once, its stack entry pushed and
        # popped here (torch iterates the root's hooks while they run, and after a failed forward)
        handles[0].remove()
        handles[1].remove()
        p.cap_handles = handles[2:]
        cap.stack.append(["", root, 0])
        p.mode = cap.mode_object()
        p.mode.__enter__()
        self.pending = p

    def _ops_end(self, p: _Pending) -> None:
        """The recorded forward is over (or failed): leave the function mode, remove the capture's
        hooks, read the near-zero fraction of each row's output."""
        mode, p.mode = p.mode, None
        if mode is not None:
            mode.__exit__(None, None, None)
        for h in p.cap_handles:
            h.remove()
        p.cap_handles = []
        if p.cap is not None:
            from initlab.diagnostics._probe_torch import to_numpy

            p.cap.stack.clear()

            with np.errstate(all="ignore"):
                for r in p.cap.rows:
                    if r.out is not None and r.kind != "attention_logits":
                        p.near[r.st.name] = near_fraction(to_numpy(r.out), self.near_zero)

    def _param_grad(self, p: _Pending, key: int) -> Any:
        def fn(g: Any) -> None:
            if g is not None:
                p.param_grads[key] = g.detach().clone()
        return fn

    def _ops_finish(self, p: _Pending) -> None:
        import torch

        from initlab.diagnostics._probe_torch import finish_rows

        cap = p.cap
        rows = cap.rows
        backward = any(r.grads for r in rows)
        scale = float(p.batch) if self.loss_reduction == "mean" else 1.0
        snaps = {k: snap for k, (_, snap) in p.snapshots.items()}
        finish_rows(rows, p.param_grads if backward else None, max(p.batch, 1), self.hist_sample, scale=scale,
                    weights=snaps)
        upd: dict[str, float | None] = {}
        with torch.no_grad():
            for r in rows:
                if r.weight is None or id(r.weight[0]) not in p.snapshots:
                    continue
                prm, snap = p.snapshots[id(r.weight[0])]
                sl = r.weight[1]
                now, before = (prm, snap) if sl is None else (prm[sl], snap[sl])
                n0 = float(torch.linalg.vector_norm(before))
                upd[r.st.name] = float(torch.dist(now.detach(), before)) / n0 if n0 > 0 else math.inf
        if not self.observed:  # (the first recorded step: what got no row, as the probe lists it)
            self.observed = True
            missed = [m.replace("which the probe does not measure", "which a watch runs as one operation (step by "
                                "step, as the probe runs it, the training would not be bitwise the same)")
                      for m in cap.unexamined()]
            if missed:
                self.watch.notes.append("parameters that feed no row: " + "; ".join(missed))
        layers = [r.st for r in rows]
        self.edges.apply(layers, [r.samples for r in rows], [r.activation for r in rows])
        loss = p.loss
        if loss is not None and not isinstance(loss, float):
            loss = float(loss)
        inp = p.input if p.input is not None else (0.0, 0.0, None)
        self.watch.add_step(p.step, layers, loss=loss, input_stats=inp, batch=p.batch, backward=backward,
                            near_zero=dict(p.near), update_ratio=upd)

    def _histograms(self, d: _Deferred, rows: list[_Row], p: _Pending) -> None:
        for r in rows:
            if not r.paired and r.kind in ("linear", "conv") and "preact" in r.hist:
                r.hist["act"] = r.hist["preact"]  # the layer's output is its pre-activation
            for key, attr in (("act", "hist"), ("preact", "preact_hist"), ("grad", "grad_hist")):
                h = r.hist.get(key)
                if h is None:
                    continue
                if isinstance(h, _FastHist):
                    if h.hist is None:
                        ek = h.key
                        if ek not in self.edges.edges:
                            bounded = bounded_range(r.activation) if ek[1] == "act" else None
                            self.edges.edges[ek] = hist_edges(h.values, self.bins, bounds=bounded,
                                                              margin=self.hist_margin)
                        h.hist, h.values = histogram(h.values, self.edges.edges[ek]), None
                    setattr(r.st, attr, h.hist)
                    continue
                g, j = h
                o = p.outs[g]
                i, ek = o.pairs[j]
                if o.sample is None:
                    counts = d[o.counts].reshape(-1, self.bins + 1)[o.first + j, :self.bins].astype(np.int64)
                    setattr(r.st, attr, Histogram(self.edges.edges[ek], counts, int(counts.sum())))
                    continue
                values = d[o.sample].reshape(o.members, o.samples)[i] * o.scale
                if ek not in self.edges.edges:
                    bounded = bounded_range(r.activation) if ek[1] == "act" else None
                    self.edges.edges[ek] = hist_edges(values, self.bins, bounds=bounded, margin=self.hist_margin)
                setattr(r.st, attr, histogram(values, self.edges.edges[ek]))


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
                    self.edges[ek] = hist_edges(vals, self.bins, margin=self.margin,
                                                bounds=bounded_range(act) if key == "act" else None)
                setattr(st, attr, histogram(vals, self.edges[ek]))


def _watch_capture(model: Any, hist_sample: int | None, batch: int) -> Any:
    """The probe's op-level capture (``_probe_torch._Capture``, mode "train": dropout as in
    training) for one recorded training step. Its handlers that re-run an operation in pieces —
    ``nn.MultiheadAttention``'s packed forward step by step, an LSTM/GRU/RNN layer by layer — are
    not used (the training would not be bitwise the same): those run as one operation and get no
    rows, as the probe's fallback."""
    from initlab.diagnostics._probe_torch import _RNNS, _Capture

    cap = _Capture(model, "train", True, hist_sample, batch)
    for n in ("multi_head_attention_forward", *_RNNS):
        cap.handlers.pop(n, None)
    return cap


def _module_kind(module: Any) -> str | None:
    """The probe's row kind for a module the watch records: "linear" (nn.Linear; and
    nn.MultiheadAttention, whose output is its ``out_proj``'s, a Linear it uses through its weight
    and never calls: the row is the probe's ``<path>.out_proj``), "conv" (ConvNd,
    ConvTransposeNd), "activation" (a leaf activation module
    :func:`initlab.activations.from_torch` knows), "norm" (BatchNorm, InstanceNorm, LayerNorm,
    GroupNorm, RMSNorm), else None. The watch's hooks run on modules; the probe's op-level
    capture also sees functional calls, residual adds, attention and recurrent internals (see
    :func:`watch`)."""
    import torch.nn as nn
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.conv import _ConvNd

    if isinstance(module, (nn.Linear, nn.MultiheadAttention)):  # (attention: its out_proj's row)
        return "linear"
    if isinstance(module, _ConvNd):
        return "conv"
    norms: tuple[Any, ...] = (_NormBase, nn.LayerNorm, nn.GroupNorm) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
    if isinstance(module, norms):
        return "norm"
    if not list(module.children()) and _activations.from_torch(module) is not None:
        return "activation"
    return None


def _conv_op(module: Any) -> str:
    """The functional op of a conv module, as the probe names it (conv2d, conv_transpose1d...)."""
    dims = len(module.kernel_size)
    return f"conv_transpose{dims}d" if getattr(module, "transposed", False) else f"conv{dims}d"


def _fan_out(w: Any) -> int | None:
    """The probe's fan-out of a weight (:func:`initlab.init.compute_fans`); None below 2-D."""
    from initlab.init import compute_fans

    return int(compute_fans(tuple(w.shape))[1]) if w.ndim >= 2 else None


def _plain_weight(module: Any) -> Any:
    """``module.weight``, unless a parametrization computes it (``torch.nn.utils.parametrize``:
    weight_norm, spectral_norm, orthogonal): reading that runs the parametrization, and
    spectral_norm's power iteration then updates the module's buffers in training mode, so the
    watch would change the training. Such a weight is not read (None): its row reports no
    weight statistics, fans or update size. An ``nn.MultiheadAttention``'s weight is its
    ``out_proj``'s (the attention's row is that projection's)."""
    mods = module.__dict__.get("_modules")
    if mods and "out_proj" in mods and isinstance(module, _mha_class()):  # (attention: its out_proj's weight)
        module = mods["out_proj"]
        mods = module.__dict__.get("_modules")
    pz = mods.get("parametrizations") if mods else None
    if pz is not None and "weight" in pz:
        return None
    return getattr(module, "weight", None)


@functools.lru_cache(maxsize=1)
def _mha_class() -> Any:
    import torch

    return torch.nn.MultiheadAttention


def _fan_in(w: Any, module: Any) -> int | None:
    """The probe's fan-in of a linear/conv weight ``w`` of ``module`` (a transposed conv: per output unit)."""
    from initlab.init import compute_fans

    if w.ndim < 2:
        return None
    if getattr(module, "transposed", False):
        return int(w.shape[0] * math.prod(w.shape[2:]))
    return int(compute_fans(tuple(w.shape))[0])


def _norm_op(module: Any) -> tuple[str, int]:
    """(the probe's op name, feature axis) of a norm module."""
    name = type(module).__name__
    if name in _NORM_OPS:
        return _NORM_OPS[name]
    return ("instance_norm", 1) if name.startswith("InstanceNorm") else ("batch_norm", 1)


def _loss_value(loss: Any) -> Any:
    """A logged loss, checked: a one-element tensor is kept detached (read at the end of the
    step, with the step's other numbers), anything else converted to float."""
    if hasattr(loss, "detach") and hasattr(loss, "numel"):
        if loss.numel() != 1:
            raise ValueError(f"The 'loss' argument must be a scalar; got a tensor of shape {tuple(loss.shape)}.")
        return loss.detach()
    try:
        return float(loss)
    except (TypeError, ValueError):
        bad_type("loss", "a number or a 0-d tensor", loss)


def watch(
    model: Any,
    *,
    every: int = 1,
    loss_reduction: str = "mean",
    bins: int = 40,
    hist_margin: float = 0.5,
    near_zero: float = NEAR_ZERO,
    hist_sample: int | None = WATCH_HIST_SAMPLE,
    capture: str = "modules",
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
        hist_sample: values per layer and step binned into the histograms (a strided subsample,
            as the probe's; None: all). 4096 by default, so the histograms cost little beside a
            training step (the probe bins 65 536).
        capture: which rows are recorded. ``"modules"`` (default, fast): one row per
            ``nn.Linear``/``ConvNd`` (with the activation module that takes its output directly
            merged in, as the probe merges it), activation module and norm module, and one per
            ``nn.MultiheadAttention`` (the probe's ``<path>.out_proj`` row: the attention's output
            is its out_proj's), from module hooks; functional calls in ``forward()``
            (``F.relu(x)``, ``x + y``, attention logits) are not seen, and the first recorded step
            lists them in :attr:`Watch.notes`. ``"ops"``: the probe's op-level capture (a TorchFunctionMode) on each
            recorded step, so the rows and their names are exactly :func:`initlab.probe`'s
            (functional activations, residual adds, pooling, attention logits...), computed by
            the probe's NumPy statistics (slower per recorded step; on CUDA through CPU copies).
            Multi-head attention and LSTM/GRU/RNN layers then run as one operation (no rows
            for them, their parameters listed in :attr:`Watch.notes`), so the training stays
            bitwise the same.

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
    check_choice("capture", capture, list(CAPTURES))
    w = Watch(every=every, model="torch")
    w._hooks = _TorchHooks(w, model, loss_reduction=loss_reduction, bins=bins, hist_margin=hist_margin,
                           near_zero=near_zero, hist_sample=hist_sample, capture=capture)
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
            "near": {st.name: near_fraction(tr.act, self._near) for st, tr in zip(layers, trace)},
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
