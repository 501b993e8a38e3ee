"""The forward and backward folds over a layer list, and the training loop behind :meth:`Network.fit`.

One forward (:func:`forward_layers`) and one backward (:func:`backward_layers`) serve inference,
capture (every layer's :class:`LayerTrace`), the probe and training: they call each layer's
``forward(x, train, rng) -> (y, cache)`` and ``backward(g, cache, out=...) -> (g_x, grads)``. In
training, the gradients are written straight into views of one flat gradient vector laid out like
the network's flat parameter vector, so the optimizer updates every parameter with a few
whole-vector operations; the first layer's input gradient is never computed. SGD's learning rate
is folded into the loss gradient (one subtraction per update).

The loop calls its callbacks (:mod:`initlab.nn.callbacks`) after every step's backward pass and
before its update; the divergence check is one of them. Ctrl-C (KeyboardInterrupt) ends the run
cleanly: the History says where it stopped (``interrupted``, ``epochs_run``, ``step_loss``).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from initlab.nn.callbacks import STOP, Callback, DivergenceCheck

__all__ = ["LayerTrace", "History", "forward_layers", "backward_layers", "train", "SMALL_MATMUL"]

Array = np.ndarray


@dataclass
class LayerTrace:
    """One layer's signals for one batch: forward (filled by ``forward(capture=True)``) and
    backward (filled by ``backward``).

    ``grad_act`` is ∂L/∂act (the gradient with respect to the layer's output), ``grad_preact``
    ∂L/∂preact; for a layer without an activation ``preact`` is its output and the two gradients
    are the same array. One special case: when :meth:`Network.gradients` starts from a logits loss
    (bce with a sigmoid output), the last layer's ``grad_preact`` is computed stably from the
    logits, and its ``grad_act`` is ``grad_preact / φ′(preact)``, i.e. ``(σ − y) / (n σ(1 − σ))``
    for bce: genuinely unbounded as σ saturates. Where φ′ is exactly 0 in floating point (a fully
    saturated sigmoid) that entry is NaN (undefined), never ±inf from a division by zero.
    ``grads`` holds the gradient of each of the layer's parameters (in ``layer.params`` order);
    ``grad_weight`` and ``grad_bias`` name the first two when the layer has them.
    """

    inputs: Array
    preact: Array
    act: Array
    grad_act: Array | None = None
    grad_preact: Array | None = None
    grads: list[Array] = field(default_factory=list)
    #: the layer's forward cache (what its backward needs)
    cache: Any = field(default=None, repr=False)

    @property
    def grad_weight(self) -> Array | None:
        return self.grads[0] if self.grads else None

    @property
    def grad_bias(self) -> Array | None:
        return self.grads[1] if len(self.grads) > 1 else None


@dataclass
class History:
    """What a training run recorded.

    ``step_loss[k]`` is the training loss of mini-batch step k, computed before that step's update;
    ``epoch_loss[e]`` the sample-weighted mean of epoch e's step losses (for full-batch training, the
    cost of the seeds' plots). ``val_*`` are filled every ``val_every`` epochs and at the end.
    If a loss became non-finite, ``diverged`` is True, ``diverged_step``/``diverged_epoch`` say
    where, the non-finite value is not recorded, and training stopped. The last update is checked
    after the loop (finite parameters and a finite training loss at them); if it blew up,
    ``diverged_step`` is the number of steps run and ``diverged_epoch`` the last epoch.
    ``interrupted`` is True when Ctrl-C ended the run (``interrupted_epoch``, ``interrupted_step``).
    """

    step_loss: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    val_epochs: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    diverged: bool = False
    diverged_step: int | None = None
    diverged_epoch: int | None = None
    train_seconds: float = 0.0
    epochs_run: int = 0
    loss: str = ""
    optimizer: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    interrupted_epoch: int | None = None
    interrupted_step: int | None = None
    #: the factor the loss gradients in a step's trace carry (the optimizer's grad_scale: η for sgd)
    grad_scale: float = 1.0

    @property
    def last_loss(self) -> float | None:
        """The last recorded step loss (None before the first step)."""
        return self.step_loss[-1] if self.step_loss else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, floats, bools)."""
        return {
            "step_loss": list(self.step_loss),
            "epoch_loss": list(self.epoch_loss),
            "val_epochs": list(self.val_epochs),
            "val_loss": list(self.val_loss),
            "val_accuracy": list(self.val_accuracy),
            "diverged": self.diverged,
            "diverged_step": self.diverged_step,
            "diverged_epoch": self.diverged_epoch,
            "train_seconds": self.train_seconds,
            "epochs_run": self.epochs_run,
            "loss": self.loss,
            "optimizer": dict(self.optimizer),
            "interrupted": self.interrupted,
            "interrupted_epoch": self.interrupted_epoch,
            "interrupted_step": self.interrupted_step,
        }


def forward_layers(layers: Sequence[Any], x: Array, *, train: bool = False, rng: np.random.Generator | None = None,
                   capture: bool = False) -> tuple[Array, list[Any], list[LayerTrace] | None]:
    """Fold ``forward`` over ``layers``: ``(output, caches, trace or None)``."""
    caches = []
    trace: list[LayerTrace] | None = [] if capture else None
    h = x
    for layer in layers:
        y, c = layer.forward(h, train, rng)
        caches.append(c)
        if trace is not None:
            trace.append(LayerTrace(inputs=h, preact=layer.preact(y, c), act=y, cache=c))
        h = y
    return h, caches, trace


def backward_layers(layers: Sequence[Any], caches: Sequence[Any], g: Array, *, out: Sequence[Sequence[Array]] | None = None,
                    trace: list[LayerTrace] | None = None, from_preact: bool = False) -> Array | None:
    """Fold ``backward`` over ``layers`` from ``g = ∂L/∂output`` (∂L/∂preact of the last layer with
    ``from_preact``); gradients go into ``out[i]`` when given, and into ``trace`` when given.
    Returns ∂L/∂input when ``trace`` is given (else the first layer's input gradient is skipped)."""
    n = len(layers)
    for i in range(n - 1, -1, -1):
        layer = layers[i]
        fp = from_preact and i == n - 1
        need = i > 0 or trace is not None
        if trace is not None:
            t = trace[i]
            if fp:
                t.grad_preact = g
            else:
                t.grad_act = g
                t.grad_preact = layer.preact_grad(g, caches[i]) if layer.activation is not None else g
            g, grads = layer.backward(t.grad_preact, caches[i], out=None if out is None else out[i],
                                      need_input_grad=need, from_preact=True)
            t.grads = grads
        else:
            g, _ = layer.backward(g, caches[i], out=None if out is None else out[i], need_input_grad=need, from_preact=fp)
    return g


def _console() -> Any:
    """The rich console the progress bar draws on: stderr (a separate function so tests can redirect it)."""
    from rich.console import Console

    return Console(stderr=True)


#: below this many multiply-adds in the largest layer's product, BLAS runs single-threaded: thread
#: start-up costs more than it saves on small matrices, and on a busy machine OpenBLAS's spinning
#: threads can make small products 50x slower.
SMALL_MATMUL = 2_000_000


def _macs(layer: Any, batch: int) -> int:
    """Multiply-adds of the layer's largest product for one batch (weights × output positions)."""
    best = 0
    for child in layer.children():
        best = max(best, _macs(child, batch))
    if layer.params and layer.in_shape is not None:
        out = layer.output_shape(layer.in_shape)
        positions = int(np.prod(out[1:])) if len(out) > 1 else 1
        best = max(best, batch * int(np.prod(layer.params[0].shape)) * positions)
    return best


def blas_threads(layers: Sequence[Any], batch: int, threads: int | None) -> Any:
    """A context limiting BLAS threads during training (threadpoolctl; restored on exit)."""
    if threads is None:
        work = max((_macs(la, batch) for la in layers), default=0)
        if work >= SMALL_MATMUL:
            return contextlib.nullcontext()
        threads = 1
    ctl = _blas_controller()
    if ctl is None:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return ctl.limit(limits=threads, user_api="blas")


_CONTROLLER: list[Any] = []  # [(len(sys.modules) when made, ThreadpoolController)]


def _blas_controller() -> Any:
    """threadpoolctl's controller of the loaded thread pools, kept between runs: making one scans
    every loaded library (about 1 ms with torch loaded, twice per fit), so it is made again only
    when modules were imported since (a new module may have loaded a new BLAS)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return None
    n = len(sys.modules)
    if not _CONTROLLER or _CONTROLLER[0][0] != n:
        _CONTROLLER[:] = [(n, ThreadpoolController())]
    return _CONTROLLER[0][1]


def train(
    net: Any,
    X: Array,
    Y: Array,
    loss: Any,
    opt: Any,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    gen: np.random.Generator,
    dropout_rng: np.random.Generator,
    callbacks: Sequence[Callback],
    val: tuple[Array, Array] | None,
    val_every: int,
    threads: int | None = None,
) -> History:
    """Run the loop; inputs are validated and converted by :meth:`Network.fit`.

    ``net`` gives ``layers``, ``params`` (the flat vector), ``param_views(flat)`` (per-layer views
    of a vector laid out like it), ``loss_target`` and ``evaluate``.
    """
    hist = History(loss=loss.name, optimizer=opt.config())
    layers = list(net.layers)
    n = X.shape[0]
    flat = net.params
    gflat = np.zeros_like(flat)
    gviews = net.param_views(gflat)
    last = layers[-1]
    from_logits = bool(loss.takes_logits) and last.activation is not None and last.activation.name != "linear"
    opt.bind(flat)
    scale = opt.grad_scale
    hist.grad_scale = float(scale)
    step_fn = opt.step
    lossfn = loss.value_and_grad
    full_batch = batch_size >= n
    if full_batch or not shuffle:
        Xs, Ys = X, Y
    else:
        Xs, Ys = np.empty_like(X), np.empty_like(Y)
    div = DivergenceCheck()
    cbs = [div, *callbacks]
    trace_cbs = [cb for cb in cbs if cb.wants_trace]
    plain_cbs = [cb for cb in cbs if not cb.wants_trace]
    step_loss = hist.step_loss
    isfinite = math.isfinite
    step = 0
    epoch = 0
    gbuf: dict[int, Array] = {}
    t0 = time.perf_counter()
    for cb in cbs:
        cb.on_train_begin(net, hist, epochs=epochs, steps_per_epoch=math.ceil(n / batch_size))
    try:
        with blas_threads(layers, batch_size, threads), np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            for epoch in range(epochs):
                for cb in cbs:
                    cb.on_epoch_begin(net, epoch)
                if not full_batch and shuffle:
                    perm = gen.permutation(n)
                    np.take(X, perm, axis=0, out=Xs)
                    np.take(Y, perm, axis=0, out=Ys)
                total = 0.0
                stop = False
                for start in range(0, n, batch_size):
                    xb = Xs[start : start + batch_size] if not full_batch else Xs
                    yb = Ys[start : start + batch_size] if not full_batch else Ys
                    m = xb.shape[0]
                    want = [cb for cb in trace_cbs if cb.wants_trace_at(step)] if trace_cbs else trace_cbs
                    if want:
                        h, caches, trace = forward_layers(layers, xb, train=True, rng=dropout_rng, capture=True)
                    else:  # the same fold, without the trace (the per-step hot path)
                        h, trace, caches = xb, None, []
                        for layer in layers:
                            h, c = layer.forward(h, True, dropout_rng)
                            caches.append(c)
                    target = last.preact(h, caches[-1]) if from_logits else h
                    gl = gbuf.get(m)
                    if gl is None or gl.shape != target.shape:
                        gl = gbuf[m] = np.empty_like(target)
                    value, g = lossfn(target, yb, gl, scale)
                    if isfinite(value):
                        backward_layers(layers, caches, g, out=gviews, trace=trace, from_preact=from_logits)
                    for cb in plain_cbs:
                        if cb.on_step(net, step, value, None) is STOP:
                            stop = True
                    for cb in trace_cbs:  # every step; the trace only where the callback asked for it
                        if cb.on_step(net, step, value, trace if cb in want else None) is STOP:
                            stop = True
                    if stop:
                        break
                    step_loss.append(value)
                    total += value * m
                    step_fn(flat, gflat)
                    step += 1
                if stop:
                    break
                ep_loss = total / n
                hist.epoch_loss.append(ep_loss)
                hist.epochs_run = epoch + 1
                if val is not None and ((epoch + 1) % val_every == 0 or epoch + 1 == epochs):
                    hist.val_epochs.append(epoch + 1)
                    r = net.evaluate(val[0], val[1], loss)
                    hist.val_loss.append(r["loss"])
                    hist.val_accuracy.append(r["accuracy"])
                for cb in cbs:
                    cb.on_epoch(net, epoch, ep_loss)
            # The loop measures each step's loss before its update, so the last update is never
            # checked by it: check the final parameters and, if finite, the loss on one batch.
            if not hist.diverged and step > 0:
                div.check_final(net, X[:batch_size], Y[:batch_size], loss)
    except KeyboardInterrupt:
        hist.interrupted = True
        hist.interrupted_epoch = epoch
        hist.interrupted_step = step
    finally:
        hist.train_seconds = time.perf_counter() - t0
        for cb in cbs:
            cb.on_train_end(net, hist)
    return hist
