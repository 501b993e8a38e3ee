"""Callbacks of :meth:`Network.fit`: a small protocol to watch (or stop) a network while it learns.

A callback subclasses :class:`Callback` and overrides any of

* ``on_train_begin(net, history, epochs, steps_per_epoch)`` / ``on_train_end(net, history)``;
* ``on_epoch_begin(net, epoch)`` / ``on_epoch(net, epoch, loss)`` (the epoch's mean step loss);
* ``on_step(net, step, loss, trace)``: after the step's backward pass, before its update;
  ``trace`` is the per-layer :class:`~initlab.nn.training.LayerTrace` list (inputs, pre-activations,
  outputs and their gradients) when the callback asks for it (``wants_trace`` True and
  ``wants_trace_at(step)``), else None. Returning :data:`STOP` ends training before the update.

The progress bar (:class:`ProgressBar`), the divergence check (:class:`DivergenceCheck`, always
installed by ``fit``) and :class:`Probe` (per-layer statistics over training with fixed histogram
edges, from the probe's own statistics kernels) are callbacks.

>>> import numpy as np
>>> from initlab.nn import Network
>>> from initlab.data import moons
>>> X, y, _, _ = moons(64, 0, 0.1, rng=0)
>>> probe = Probe(every=5, edges=np.linspace(-3, 3, 13))
>>> hist = Network([2, 8, 1], "tanh", "sigmoid", rng=0).fit(X, y, epochs=10, lr=0.1, callbacks=[probe])
>>> probe.steps, len(probe.records[0]), probe.records[0][0]["act_hist"].shape
([0, 5], 2, (12,))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["STOP", "Callback", "DivergenceCheck", "ProgressBar", "Probe"]

#: returned by ``on_step`` to end training before that step's update
STOP = object()


class Callback:
    """Base class: every hook does nothing (see the module docstring for the protocol)."""

    #: True when ``on_step`` wants the per-layer trace (costs one LayerTrace per layer per step)
    wants_trace: bool = False

    def wants_trace_at(self, step: int) -> bool:
        return self.wants_trace

    def on_train_begin(self, net: Any, history: Any, epochs: int, steps_per_epoch: int) -> None:
        pass

    def on_epoch_begin(self, net: Any, epoch: int) -> None:
        pass

    def on_step(self, net: Any, step: int, loss: float, trace: list[Any] | None) -> Any:
        return None

    def on_epoch(self, net: Any, epoch: int, loss: float) -> None:
        pass

    def on_train_end(self, net: Any, history: Any) -> None:
        pass


class DivergenceCheck(Callback):
    """Stops at a non-finite loss and rolls the parameters back to the last epoch start whose loss
    was finite; :meth:`check_final` checks the last update (finite parameters, finite loss)."""

    def on_train_begin(self, net: Any, history: Any, epochs: int, steps_per_epoch: int) -> None:
        self.hist = history
        self.flat = net.params
        self.prev = self.flat.copy()
        self.cur = self.flat.copy()
        self.epoch = 0
        self.in_epoch = 0

    def on_epoch_begin(self, net: Any, epoch: int) -> None:
        self.prev, self.cur = self.cur, self.prev
        np.copyto(self.cur, self.flat)
        self.epoch = epoch
        self.in_epoch = 0

    def on_step(self, net: Any, step: int, loss: float, trace: list[Any] | None) -> Any:
        if math.isfinite(loss):
            self.in_epoch += 1
            return None
        h = self.hist
        h.diverged, h.diverged_step, h.diverged_epoch = True, step, self.epoch
        if self.in_epoch == 0:
            if self.epoch > 0:  # the epoch's starting weights already fail: back one more epoch
                np.copyto(self.flat, self.prev)
        else:
            np.copyto(self.flat, self.cur)
        return STOP

    def check_final(self, net: Any, X: np.ndarray, Y: np.ndarray, loss: Any) -> None:
        ok = bool(np.isfinite(self.flat).all())
        if ok:
            t = net.loss_target(X, loss)
            ok = math.isfinite(loss.value_and_grad(t, Y)[0])
        if not ok:
            h = self.hist
            h.diverged, h.diverged_step, h.diverged_epoch = True, len(h.step_loss), h.epochs_run - 1
            np.copyto(self.flat, self.cur)


class ProgressBar(Callback):
    """A rich progress bar over epochs with the last epoch's loss (drawn on ``console``)."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.prog: Any = None

    def on_train_begin(self, net: Any, history: Any, epochs: int, steps_per_epoch: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.epochs = epochs
        self.tick = max(1, epochs // 200)
        self.prog = Progress(
            TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(), console=self.console, transient=True,
        )
        self.prog.start()
        self.prog.add_task("train", total=epochs, loss="-")

    def on_epoch(self, net: Any, epoch: int, loss: float) -> None:
        if (epoch + 1) % self.tick == 0 or epoch + 1 == self.epochs:
            self.prog.update(self.prog.task_ids[0], completed=epoch + 1, loss=f"{loss:.4g}")

    def on_train_end(self, net: Any, history: Any) -> None:
        if self.prog is not None:
            self.prog.stop()


class Probe(Callback):
    """Per-layer statistics over training, every ``every`` steps, on fixed histogram edges.

    Each record (``records[layer][k]`` for step ``steps[k]``) holds the moments of the layer's
    output and of the gradient with respect to its pre-activation, from the probe's statistics
    kernel (:func:`initlab.diagnostics._stats.moments`: ``act_mean``, ``act_std``, ``preact_std``,
    ``grad_std``), and ``act_hist`` / ``grad_hist`` counts on the SAME ``edges`` /
    ``grad_edges`` at every step (:func:`initlab.diagnostics._stats.histogram`), so steps compare.
    Default edges: [−3, 3] and [−1e-2, 1e-2] in 40 bins.
    """

    wants_trace = True

    def __init__(self, every: int = 1, edges: Any = None, grad_edges: Any = None, hist_sample: int | None = 65536) -> None:
        from initlab._validation import check_int

        self.every = check_int("every", every, low=1)
        self.edges = np.linspace(-3.0, 3.0, 41) if edges is None else np.asarray(edges, dtype=np.float64)
        self.grad_edges = np.linspace(-1e-2, 1e-2, 41) if grad_edges is None else np.asarray(grad_edges, dtype=np.float64)
        self.hist_sample = hist_sample
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.records: list[list[dict[str, Any]]] = []

    def wants_trace_at(self, step: int) -> bool:
        return step % self.every == 0

    def on_step(self, net: Any, step: int, loss: float, trace: list[Any] | None) -> Any:
        from initlab.diagnostics._stats import histogram, moments, subsample

        if trace is None:
            return None
        if not self.records:
            self.records = [[] for _ in trace]
        self.steps.append(step)
        self.losses.append(float(loss))
        for rows, t in zip(self.records, trace):
            ma = moments(t.act)
            mp = ma if t.preact is t.act else moments(t.preact)
            row: dict[str, Any] = {"act_mean": ma.mean, "act_std": ma.std, "preact_std": mp.std,
                                   "act_hist": histogram(subsample(t.act, self.hist_sample), self.edges).counts}
            if t.grad_preact is not None:
                mg = moments(t.grad_preact)
                row["grad_std"] = mg.std
                row["grad_hist"] = histogram(subsample(t.grad_preact, self.hist_sample), self.grad_edges).counts
            rows.append(row)
        return None

    def series(self, key: str) -> np.ndarray:
        """``[layers, recorded steps]`` array of one scalar statistic (``"act_std"``...)."""
        return np.array([[r[key] for r in rows] for rows in self.records], dtype=np.float64)
