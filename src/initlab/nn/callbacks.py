"""Callbacks of :meth:`Network.fit`: a small protocol to watch (or stop) a network while it learns.

A callback subclasses :class:`Callback` and overrides any of

* ``on_train_begin(net, history, epochs, steps_per_epoch)`` / ``on_train_end(net, history)``;
* ``on_epoch_begin(net, epoch)`` / ``on_epoch(net, epoch, loss)`` (the epoch's mean step loss);
* ``on_step(net, step, loss, trace)``: after the step's backward pass, before its update;
  ``trace`` is the per-layer :class:`~initlab.nn.training.LayerTrace` list (inputs, pre-activations,
  outputs and their gradients) when the callback asks for it (``wants_trace`` True and
  ``wants_trace_at(step)``), else None. Returning :data:`STOP` ends training before the update.

The progress bar (:class:`ProgressBar`) and the divergence check (:class:`DivergenceCheck`, always
installed by ``fit``) are callbacks; so is :class:`initlab.diagnostics.Probe`, which records every
layer's probe statistics over training into a :class:`initlab.diagnostics.Watch`.

>>> import numpy as np
>>> from initlab.nn import Network
>>> from initlab.data import moons
>>> X, y, _, _ = moons(64, 0, 0.1, rng=0)
>>> class Losses(Callback):
...     def __init__(self): self.seen = []
...     def on_step(self, net, step, loss, trace): self.seen.append(step)
>>> cb = Losses()
>>> hist = Network([2, 8, 1], "tanh", "sigmoid", rng=0).fit(X, y, epochs=3, lr=0.1, callbacks=[cb])
>>> cb.seen
[0, 1, 2]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["STOP", "Callback", "DivergenceCheck", "ProgressBar"]

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
