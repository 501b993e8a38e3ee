"""The training loop behind :meth:`Network.fit`, written for speed.

Per step it runs the same forward/backward equations as :class:`~initlab.nn.layers.Dense`, but
into preallocated buffers (``np.matmul(..., out=)``), with all gradients written into one flat
vector laid out like the network's flat parameter vector, so the optimizer updates every
parameter with a few whole-vector operations. The first layer's input gradient is never computed.
SGD's learning rate is folded into the loss gradient (one subtraction per update).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from initlab.nn.losses import Loss
    from initlab.nn.network import History, Network
    from initlab.nn.optimizers import Optimizer

Array = np.ndarray


class _Buffers:
    """Per-batch-size work arrays: pre-activations, input gradients, the loss gradient."""

    def __init__(self, sizes: list[int], batch: int, dtype: np.dtype) -> None:
        self.z = [np.empty((batch, n), dtype=dtype) for n in sizes[1:]]
        # gx[i] = dL/d(input of layer i), for i >= 1
        self.gx = [None] + [np.empty((batch, n), dtype=dtype) for n in sizes[1:-1]]
        self.gl = np.empty((batch, sizes[-1]), dtype=dtype)
        self.ones = np.ones((1, batch), dtype=dtype)


def _console() -> Any:
    """The rich console the progress bar draws on: stderr (a separate function so tests can redirect it)."""
    from rich.console import Console

    return Console(stderr=True)


def _progress(enabled: bool, epochs: int) -> Any:
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(), console=_console(), transient=True,
    )
    prog.start()
    prog.add_task("train", total=epochs, loss="-")
    return prog


#: below this many multiply-adds in the largest layer's matmul, BLAS runs single-threaded: thread
#: start-up costs more than it saves on small matrices, and on a busy machine OpenBLAS's spinning
#: threads can make small products 50x slower.
SMALL_MATMUL = 2_000_000


def _blas_threads(net: "Network", batch: int, threads: int | None) -> Any:
    """A context limiting BLAS threads during training (threadpoolctl; restored on exit)."""
    import contextlib

    if threads is None:
        work = max(batch * a * b for a, b in zip(net.sizes[:-1], net.sizes[1:]))
        if work >= SMALL_MATMUL:
            return contextlib.nullcontext()
        threads = 1
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def _final_ok(
    net: "Network", X: Array, Y: Array, loss: "Loss", bufs: dict[int, "_Buffers"], batch_size: int, scale: float
) -> bool:
    """True when the parameters are finite and the loss at them on one batch is finite.

    The loop has checked every step's loss before its update, so only the last update is
    unchecked: a blow-up there makes the parameters non-finite or the loss of any batch
    non-finite. One batch (the first ``batch_size`` rows) costs one step, not an epoch. Runs
    inside the loop's ``np.errstate``, in the loop's buffers.
    """
    if not np.isfinite(net._flat).all():
        return False
    layers = net.layers
    L = len(layers)
    xb, yb = X[:batch_size], Y[:batch_size]
    m = xb.shape[0]
    buf = bufs.get(m)
    if buf is None:
        buf = bufs[m] = _Buffers(net.sizes, m, net.dtype)
    h = xb
    for i, layer in enumerate(layers):
        z = buf.z[i]
        np.matmul(h, layer._w.T, out=z)
        z += layer._b
        h = layer.activation.fn(z)
    value, _ = loss.value_and_grad(buf.z[L - 1] if loss.takes_logits else h, yb, buf.gl, scale)
    return math.isfinite(value)


def train(
    net: "Network",
    X: Array,
    Y: Array,
    loss: "Loss",
    opt: "Optimizer",
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    gen: np.random.Generator,
    progress: bool,
    val: tuple[Array, Array] | None,
    val_every: int,
    threads: int | None = None,
) -> "History":
    """Run the loop; inputs are validated and converted by :meth:`Network.fit`."""
    from initlab.nn.network import History

    hist = History(loss=loss.name, optimizer=opt.config())
    layers = net.layers
    L = len(layers)
    dtype = net.dtype
    n = X.shape[0]
    flat = net._flat
    gflat = np.zeros_like(flat)
    gviews = net._views(gflat)
    gW = [w for w, _ in gviews]
    gB = [b for _, b in gviews]
    W = [layer._w for layer in layers]
    WT = [w.T for w in W]
    B = [layer._b for layer in layers]
    fns = [layer.activation.fn for layer in layers]
    derivs = [layer.activation.derivative for layer in layers]
    linear = [layer.activation.name == "linear" for layer in layers]
    # a logits loss consumes the last pre-activation and returns dL/dz (no output derivative)
    from_logits = loss.takes_logits
    opt.bind(flat)
    scale = opt.grad_scale
    step_fn = opt.step
    lossfn = loss.value_and_grad
    bufs: dict[int, _Buffers] = {}
    sizes = net.sizes
    full_batch = batch_size >= n
    if full_batch or not shuffle:
        Xs, Ys = X, Y
    else:
        Xs, Ys = np.empty_like(X), np.empty_like(Y)
    snap_prev = flat.copy()
    snap_cur = flat.copy()
    step_loss = hist.step_loss
    epoch_loss = hist.epoch_loss
    isfinite = math.isfinite
    prog = _progress(progress, epochs)
    tick = max(1, epochs // 200)
    step = 0
    acts: list[Array] = [X] * L
    t0 = time.perf_counter()
    try:
        with _blas_threads(net, batch_size, threads), np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            for epoch in range(epochs):
                snap_prev, snap_cur = snap_cur, snap_prev
                np.copyto(snap_cur, flat)
                if not full_batch and shuffle:
                    perm = gen.permutation(n)
                    np.take(X, perm, axis=0, out=Xs)
                    np.take(Y, perm, axis=0, out=Ys)
                total = 0.0
                first = True
                for start in range(0, n, batch_size):
                    xb = Xs[start : start + batch_size] if not full_batch else Xs
                    yb = Ys[start : start + batch_size] if not full_batch else Ys
                    m = xb.shape[0]
                    buf = bufs.get(m)
                    if buf is None:
                        buf = bufs[m] = _Buffers(sizes, m, dtype)
                    Z = buf.z
                    # forward
                    h = xb
                    for i in range(L):
                        z = Z[i]
                        np.matmul(h, WT[i], out=z)
                        z += B[i]
                        h = fns[i](z)
                        acts[i] = h
                    # loss and its gradient (scaled by the optimizer's grad_scale)
                    value, g = lossfn(Z[L - 1] if from_logits else h, yb, buf.gl, scale)
                    if not isfinite(value):
                        hist.diverged = True
                        hist.diverged_step = step
                        hist.diverged_epoch = epoch
                        if first:
                            if epoch > 0:
                                np.copyto(flat, snap_prev)
                        else:
                            np.copyto(flat, snap_cur)
                        break
                    step_loss.append(value)
                    total += value * m
                    # backward
                    for i in range(L - 1, -1, -1):
                        if not linear[i] and not (from_logits and i == L - 1):
                            g *= derivs[i](Z[i], acts[i])
                        inp = acts[i - 1] if i > 0 else xb
                        np.matmul(g.T, inp, out=gW[i])
                        np.matmul(buf.ones, g, out=gB[i][None, :])
                        if i > 0:
                            gx = buf.gx[i]
                            np.matmul(g, W[i], out=gx)
                            g = gx
                    step_fn(flat, gflat)
                    step += 1
                    first = False
                if hist.diverged:
                    break
                epoch_loss.append(total / n)
                hist.epochs_run = epoch + 1
                if val is not None and ((epoch + 1) % val_every == 0 or epoch + 1 == epochs):
                    hist.val_epochs.append(epoch + 1)
                    r = net.evaluate(val[0], val[1], loss)
                    hist.val_loss.append(r["loss"])
                    hist.val_accuracy.append(r["accuracy"])
                if prog is not None and ((epoch + 1) % tick == 0 or epoch + 1 == epochs):
                    prog.update(prog.task_ids[0], completed=epoch + 1, loss=f"{total / n:.4g}")
            # The loop measures each step's loss before its update, so the last update is never
            # checked by it: check the final parameters (one isfinite pass) and, if they are
            # finite, the loss on one batch (one forward pass of a batch).
            if not hist.diverged and step > 0 and not _final_ok(net, X, Y, loss, bufs, batch_size, scale):
                hist.diverged = True
                hist.diverged_step = step
                hist.diverged_epoch = hist.epochs_run - 1
                np.copyto(flat, snap_cur)
    finally:
        hist.train_seconds = time.perf_counter() - t0
        if prog is not None:
            prog.stop()
    return hist
