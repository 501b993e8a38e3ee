"""The Network: a sequence of layers with every layer's forward and backward signal open.

``Network([2, 12, 6, 1], "relu", ...)`` is the shorthand for a stack of :class:`Dense` layers;
``Network([Conv2d(1, 16, 3, padding=1, activation="relu"), MaxPool2d(2), Flatten(), Dense(256, 10)],
input_shape=(1, 8, 8))`` builds any sequence of :mod:`initlab.nn` layers. Forward, backward,
capture, training, save/load, ``to_torch`` and the theory (:func:`initlab.theory.predict`) all
fold over the same ``net.layers``.

>>> import numpy as np
>>> net = Network([2, 3, 1], activation="tanh", output="sigmoid", init="xavier_normal", rng=0)
>>> [layer.weight.shape for layer in net.layers]
[(3, 2), (1, 3)]
>>> out, trace = net.forward(np.ones((5, 2), dtype=np.float32), capture=True)
>>> out.shape, trace[0].preact.shape, trace[1].act.shape
((5, 1), (5, 3), (5, 1))
>>> trace = net.backward(np.ones_like(out), trace)
>>> trace[0].grad_weight.shape, trace[1].grad_bias.shape
((3, 2), (1,))
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from initlab import activations as _activations
from initlab._rng import RngLike, as_generator, child_seeds, streams
from initlab._validation import bad_type, bad_value, check_int, resolve_dtype
from initlab.nn import losses as _losses
from initlab.nn import optimizers as _optimizers
from initlab.nn import training as _training
from initlab.nn.blocks import BatchNorm, LayerNorm, Residual
from initlab.nn.callbacks import Callback, ProgressBar
from initlab.nn.conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, GlobalAvgPool, MaxPool1d, MaxPool2d
from initlab.nn.layers import Activation, Dense, Dropout, Flatten, Layer
from initlab.nn.training import History, LayerTrace, backward_layers, forward_layers

__all__ = ["Network", "LayerTrace", "History"]

Array = np.ndarray
_FORMAT = "initlab.nn.Network/1"
_FORMAT2 = "initlab.nn.Network/2"
_CONFIG_KEYS = ("format", "sizes", "activation", "output", "init", "bias_init", "dtype")
_LAYER_TYPES: dict[str, Any] = {
    c.__name__: c for c in (Dense, Activation, Flatten, Dropout, Conv1d, Conv2d, MaxPool1d, MaxPool2d, AvgPool1d,
                            AvgPool2d, GlobalAvgPool, BatchNorm, LayerNorm, Residual)
}


def _per_layer(name: str, value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"The {name!r} argument must be one spec or a list of {n} ({what}); got {len(value)}.")
        return list(value)
    return [value] * n


def _layer_from_config(cfg: Any, dtype: Any) -> Layer:
    """A layer from its ``config()`` dict (no values drawn; the caller loads them)."""
    if not isinstance(cfg, dict) or cfg.get("type") not in _LAYER_TYPES:
        raise ValueError(f"unknown layer config {cfg!r} (types: {', '.join(_LAYER_TYPES)})")
    kw = {k: v for k, v in cfg.items() if k != "type"}
    t = cfg["type"]
    if t == "Dense":
        return Dense(kw["n_in"], kw["n_out"], kw["activation"], init=kw["init"], bias_init=kw["bias_init"], dtype=dtype)
    if t in ("Conv1d", "Conv2d"):
        return _LAYER_TYPES[t](kw.pop("in_channels"), kw.pop("out_channels"), kw.pop("kernel_size"), dtype=dtype, **kw)
    if t == "Residual":
        return Residual([_layer_from_config(c, dtype) for c in kw["branch"]], alpha=kw["alpha"], dtype=dtype)
    if t == "Activation":
        return Activation(kw["activation"], dtype=dtype)
    if t == "LayerNorm":
        return LayerNorm(tuple(kw["normalized_shape"]), eps=kw["eps"], dtype=dtype)
    if t == "BatchNorm":
        return BatchNorm(kw["num_features"], eps=kw["eps"], momentum=kw["momentum"], dtype=dtype)
    return _LAYER_TYPES[t](dtype=dtype, **kw)


def _walk(layers: Sequence[Layer], prefix: str = "layers") -> list[tuple[str, Layer]]:
    out = []
    for i, la in enumerate(layers):
        out.append((f"{prefix}.{i}", la))
        if la.children():
            out.extend(_walk(la.children(), f"{prefix}.{i}.branch"))
    return out


class Network:
    """A sequence of :mod:`initlab.nn` layers with one flat parameter vector.

    Args:
        sizes: a list of layers (``Dense``, ``Conv2d``, ``Residual``...) or, as a shorthand, layer
            widths, input first: ``[2, 12, 6, 1]`` is Dense 2 → 12 → 6 → 1.
        activation: (shorthand) hidden layers' activation (name, spec string, Activation) or a
            list, one per hidden layer.
        output: (shorthand) the last layer's activation (default ``"linear"``). With ``"sigmoid"``
            and loss ``"bce"`` the loss is computed stably from the last layer's pre-activation.
        init, bias_init: (shorthand) init specs (``initlab.init.get`` syntax) or a list, one per layer.
        input_shape: the per-sample input shape (e.g. ``(1, 8, 8)``); default: the first Dense
            layer's ``(n_in,)``.
        rng: seed or Generator. The network derives independent streams by purpose
            (:func:`initlab._rng.streams`): the initial weights (the seed's own stream), the dropout
            masks and the data order, so with the same seed a different init trains on the same
            mini-batches.
        dtype: float32 (default) or float64.

    All parameters live in one contiguous vector (``net.params``), the layers hold views.
    """

    def __init__(
        self,
        sizes: Sequence[Any],
        activation: Any = "relu",
        output: Any = None,
        init: Any = "he_normal",
        bias_init: Any = "zeros",
        *,
        input_shape: Sequence[int] | None = None,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        layers = sizes
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__"):
            bad_type("sizes", "a list of layer widths like [2, 12, 6, 1] or a list of layers", layers)
        self.dtype = resolve_dtype(dtype)
        if len(layers) and all(isinstance(la, Layer) for la in layers):
            self.shorthand = False
            built = list(layers)
            if input_shape is None:
                first = built[0]
                while first.children():  # a Residual: its branch's first layer
                    first = first.children()[0]
                if not isinstance(first, Dense):
                    bad_value("input_shape", "the per-sample input shape (e.g. (1, 8, 8)) when the first layer is not Dense", None)
                input_shape = (first.n_in,)
            for la in built:
                if la.dtype != self.dtype:
                    raise ValueError(f"The layers must all have the network's dtype {self.dtype.name}; {la!r} has {la.dtype.name}.")
        else:
            self.shorthand = True
            sizes = [check_int("sizes", w, low=1) for w in layers]
            if len(sizes) < 2:
                bad_value("sizes", "at least two widths (input and output)", sizes)
            n = len(sizes) - 1
            hidden = _per_layer("activation", activation, n - 1, "hidden layers") if n > 1 else []
            if n == 1 and isinstance(activation, (list, tuple)) and len(activation) > 0:
                raise ValueError(f"The 'activation' argument is for hidden layers; a {sizes} network has none, got {activation!r}.")
            acts = [_activations.get(a) for a in hidden] + [_activations.get("linear" if output is None else output)]
            inits = _per_layer("init", init, n, "layers")
            binits = _per_layer("bias_init", bias_init, n, "layers")
            built = [Dense(sizes[i], sizes[i + 1], acts[i], init=inits[i], bias_init=binits[i], dtype=self.dtype)
                     for i in range(n)]
            input_shape = (sizes[0],)
        self.input_shape: tuple[int, ...] = tuple(check_int("input_shape", s, low=1) for s in input_shape)
        self.layers: list[Layer] = built
        shapes = [self.input_shape]
        for la in self.layers:
            shapes.append(tuple(la.build(shapes[-1])))
        self.shapes = shapes
        #: flattened widths: the input's, then each layer's output
        self.sizes: list[int] = [int(np.prod(s)) for s in shapes]
        self.streams = streams(rng)
        flat_params = [(la, p) for la in self.layers for p in la.params]
        total = sum(int(np.prod(p.shape)) for _, p in flat_params)
        self._flat = np.zeros(total, dtype=self.dtype)
        for la, views in zip(self.layers, self.param_views(self._flat)):
            la.bind(views)
        self.reset_parameters()

    # -- parameters ----------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of scalar parameters."""
        return int(self._flat.size)

    def param_views(self, flat: Array) -> list[list[Array]]:
        """Per-layer lists of views of ``flat`` (a vector laid out like :attr:`params`), one per parameter."""
        out, k = [], 0
        for la in self.layers:
            views = []
            for p in la.params:
                size = int(np.prod(p.shape))
                views.append(flat[k : k + size].reshape(p.shape))
                k += size
            out.append(views)
        return out

    @property
    def params(self) -> Array:
        """All parameters as one vector ``[W0, b0, W1, b1, ...]`` (a view: writing changes the net)."""
        return self._flat

    def reset_parameters(self, rng: RngLike = None) -> None:
        """Draw every parameter from its init spec (from ``rng``, default the net's init stream)."""
        from initlab import init as _init

        gen = self.streams["init"] if rng is None else as_generator(rng)
        for _, la in _walk(self.layers):
            fan_in = la.fan_in()
            for p, arr in zip(la.params, la.arrays):
                if la.children() or p.init is None:
                    continue
                ini = _init.get(p.init)
                extra: dict[str, Any] = {}
                if "fan_in" in ini.params and ini.params["fan_in"] is None and fan_in is not None:
                    # a bias scheme that scales with the layer's fan in (torch_default_bias): the
                    # bias shape alone does not know it, the layer does
                    extra["fan_in"] = fan_in
                la.set_param(p.name, ini(p.shape, rng=gen, dtype=self.dtype, **extra))
                if isinstance(la, (Dense, Conv1d, Conv2d)) and p.name == "weight":
                    la.init_spec = ini.spec
                elif isinstance(la, Dense) and p.name == "bias":
                    la.bias_init_spec = ini.spec

    @property
    def output(self) -> _activations.Activation:
        """The last layer's activation (linear when it has none)."""
        act = self.layers[-1].activation
        return act if act is not None else _activations.get("linear")

    def default_loss(self) -> str:
        """``"bce"`` for a sigmoid output, ``"ce"`` for a linear output with ≥ 2 units, else ``"mse"``."""
        if self.output.name == "sigmoid":
            return "bce"
        if self.output.name == "linear" and self.sizes[-1] >= 2:
            return "ce"
        return "mse"

    def _loss(self, loss: Any) -> _losses.Loss:
        obj = _losses.get(self.default_loss() if loss is None else loss)
        if obj.outputs is not None and self.output.name not in obj.outputs:
            raise ValueError(
                f"Loss {obj.name!r} needs the output activation to be one of {', '.join(map(repr, obj.outputs))}; "
                f"this network's output is {self.output.spec!r}."
            )
        return obj

    def check_x(self, x: Any, name: str = "x") -> Array:
        """``x`` as a C-contiguous array ``[n, *input_shape]`` of the network's dtype (checked)."""
        arr = np.asarray(x)
        shp = self.input_shape
        if arr.ndim == len(shp) and arr.shape == shp:
            arr = arr[None]
        if arr.ndim != len(shp) + 1 or arr.shape[1:] != shp:
            want = ", ".join(str(s) for s in shp)
            raise ValueError(f"The {name!r} argument must have shape [n, {want}]; got shape {arr.shape}.")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            bad_type(name, "a real numeric array", x)
        return np.ascontiguousarray(arr, dtype=self.dtype)

    _check_x = check_x  # the name the diagnostics used before 0.2

    # -- forward / backward with capture ---------------------------------------------------------
    def forward(self, x: Any, capture: bool = False, train: bool = False) -> Any:
        """The network output for ``x``; with ``capture=True``, ``(out, trace)``.

        ``train=True`` runs the layers in training mode (batch statistics in BatchNorm, dropout
        masks from the network's dropout stream).
        """
        h = self.check_x(x)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            out, caches, trace = forward_layers(self.layers, h, train=train, rng=self.streams["dropout"], capture=capture)
        return (out, trace) if capture else out

    def backward(self, grad_out: Any, trace: list[LayerTrace]) -> list[LayerTrace]:
        """Fill every LayerTrace's gradients from ``grad_out = ∂L/∂(network output)`` (the trace of
        the last ``forward(capture=True)``)."""
        if len(trace) != len(self.layers):
            raise ValueError(f"The 'trace' argument must hold {len(self.layers)} LayerTrace; got {len(trace)}.")
        g = np.asarray(grad_out, dtype=self.dtype)
        if g.shape != trace[-1].act.shape:
            raise ValueError(f"The 'grad_out' argument must have the output's shape {trace[-1].act.shape}; got {g.shape}.")
        caches = [t.cache for t in trace]
        if any(c is None for c in caches) and any(la.params or la.activation is not None for la in self.layers):
            raise ValueError("The 'trace' argument must come from forward(x, capture=True) of this network.")
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            backward_layers(self.layers, caches, g, trace=trace)
        return trace

    def gradients(self, x: Any, y: Any, loss: Any = None) -> tuple[float, list[LayerTrace]]:
        """``(loss, trace)`` for one batch: forward with capture, the loss, and backward.

        With a logits loss (bce with a sigmoid output) the backward pass starts from ∂L/∂z of the
        last layer, computed stably; that layer's ``grad_act`` is then ∂L/∂z / σ′(z), NaN where
        σ′(z) is exactly 0 (see :class:`LayerTrace`).
        """
        lo = self._loss(loss)
        h = self.check_x(x)
        with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            out, caches, trace = forward_layers(self.layers, h, capture=True)
        yp = lo.prepare(y, self.sizes[-1], self.dtype)
        if yp.shape[0] != out.shape[0]:
            raise ValueError(f"The 'y' argument must have {out.shape[0]} rows like 'x'; got {yp.shape[0]}.")
        assert trace is not None
        with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            if lo.takes_logits and self.output.name != "linear":
                value, gz = lo.value_and_grad(trace[-1].preact, yp)
                backward_layers(self.layers, caches, gz, trace=trace, from_preact=True)
                d = self.output.derivative(trace[-1].preact, trace[-1].act)
                trace[-1].grad_act = np.divide(gz, d, out=np.full_like(gz, np.nan), where=d != 0)
            else:
                value, ga = lo.value_and_grad(out, yp)
                backward_layers(self.layers, caches, ga, trace=trace)
        return value, trace

    # -- inference -------------------------------------------------------------------------------
    def predict(self, x: Any) -> Array:
        """The network output (probabilities for a sigmoid output, logits for a linear one)."""
        return self.forward(x)

    def loss_target(self, x: Array, loss: Any) -> Array:
        """What the loss consumes for inputs ``x`` (checked): the last pre-activation for a logits loss, else the output."""
        lo = self._loss(loss)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            out, caches, _ = forward_layers(self.layers, self.check_x(x))
        return self.layers[-1].preact(out, caches[-1]) if lo.takes_logits else out

    def evaluate(self, x: Any, y: Any, loss: Any = None) -> dict[str, float]:
        """``{"loss": mean loss, "accuracy": fraction correct}`` on ``(x, y)`` (accuracy NaN for regression)."""
        lo = self._loss(loss)
        xa = self.check_x(x)
        yp = lo.prepare(y, self.sizes[-1], self.dtype)
        if yp.shape[0] != xa.shape[0]:
            raise ValueError(f"The 'y' argument must have {xa.shape[0]} rows like 'x'; got {yp.shape[0]}.")
        t = self.loss_target(xa, lo)
        with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            value = lo.value_and_grad(t, yp)[0]
            acc = lo.accuracy(t, yp)
        return {"loss": value, "accuracy": acc}

    # -- training --------------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        epochs: int = 1,
        batch_size: int | None = None,
        lr: float = 0.01,
        optimizer: Any = "sgd",
        loss: Any = None,
        X_val: Any = None,
        y_val: Any = None,
        *,
        shuffle: bool = True,
        progress: bool | None = None,
        val_every: int | None = None,
        rng: RngLike = None,
        threads: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        **optimizer_kwargs: Any,
    ) -> History:
        """Train with mini-batch gradient descent; returns a :class:`History`.

        Args:
            X, y: training inputs ``[n, *input_shape]`` and targets (float ``[n, out]`` or ``[n]``
                for bce/mse, integer labels ``[n]`` for ce).
            epochs: passes over the data. batch_size: None = full batch.
            lr, optimizer: ``"sgd"``, ``"momentum"``, ``"adam"`` (or an Optimizer); extra keyword
                arguments go to the optimizer (``momentum=0.9``, ``beta1=...``).
            loss: ``"bce"``, ``"ce"``, ``"mse"``; default from the output (:meth:`default_loss`).
            X_val, y_val: held-out split, evaluated every ``val_every`` epochs (default about 100
                times per run) and after the last epoch.
            shuffle: reshuffle the training set every epoch (mini-batch only; a full batch is
                order-free). progress: a rich progress bar on stderr; None = only when stderr is
                a terminal and the run has more than one step. rng: shuffling stream (default: the
                network's data stream, independent of its init stream).
            threads: BLAS threads during training (restored afterwards); None = one thread when
                the largest per-step product is small (< 2e6 multiply-adds), else the BLAS default.
            callbacks: :class:`~initlab.nn.callbacks.Callback` objects (on_step / on_epoch ...).

        Divergence: if a training loss is NaN or ±inf, training stops, ``History.diverged`` is set
        with the step and epoch, and the parameters are restored to the last epoch start whose
        loss was finite (so ``predict`` never returns NaN because of the divergence itself). The
        final update is checked too: after the loop the parameters must be finite and the training
        loss at them finite, else the run counts as diverged and the last epoch is rolled back.
        Ctrl-C: the run stops, ``History.interrupted`` is set (with the epoch and step), no
        exception escapes.
        """
        lo = self._loss(loss)
        Xa = self.check_x(X, "X")
        with np.errstate(invalid="ignore", over="ignore"):
            Ya = lo.prepare(y, self.sizes[-1], self.dtype)
        if Ya.shape[0] != Xa.shape[0]:
            raise ValueError(f"The 'y' argument must have {Xa.shape[0]} rows like 'X'; got {Ya.shape[0]}.")
        if Xa.shape[0] == 0:
            raise ValueError("The 'X' argument must hold at least one sample; got 0.")
        if not np.all(np.isfinite(Xa)):
            raise ValueError("The 'X' argument must be finite; it holds NaN or inf.")
        if np.issubdtype(Ya.dtype, np.floating) and not np.all(np.isfinite(Ya)):
            raise ValueError("The 'y' argument must be finite; it holds NaN or inf.")
        epochs = check_int("epochs", epochs, low=0)
        bs = Xa.shape[0] if batch_size is None else check_int("batch_size", batch_size, low=1)
        bs = min(bs, Xa.shape[0])
        opt = _optimizers.get(optimizer, lr=lr, **optimizer_kwargs)
        val = None
        if (X_val is None) != (y_val is None):
            raise ValueError("The 'X_val' and 'y_val' arguments must be given together.")
        if X_val is not None:
            Xv = self.check_x(X_val, "X_val")
            with np.errstate(invalid="ignore", over="ignore"):
                Yv = lo.prepare(y_val, self.sizes[-1], self.dtype, name="y_val")
            if Yv.shape[0] != Xv.shape[0]:
                raise ValueError(f"The 'y_val' argument must have {Xv.shape[0]} rows like 'X_val'; got {Yv.shape[0]}.")
            val = (Xv, Yv)
        if val_every is None:
            val_every = max(1, epochs // 100)
        val_every = check_int("val_every", val_every, low=1)
        gen = self.streams["data"] if rng is None else as_generator(rng)
        cbs = list(callbacks or [])
        for cb in cbs:
            if not isinstance(cb, Callback):
                bad_type("callbacks", "a list of initlab.nn.callbacks.Callback objects", cb)
        if progress is None:
            progress = bool(getattr(sys.stderr, "isatty", lambda: False)()) and epochs * math.ceil(Xa.shape[0] / bs) > 1
        if progress:
            cbs.insert(0, ProgressBar(_training._console()))
        return _training.train(
            self, Xa, Ya, lo, opt, epochs=epochs, batch_size=bs, shuffle=bool(shuffle), gen=gen,
            dropout_rng=self.streams["dropout"], callbacks=cbs, val=val, val_every=val_every,
            threads=None if threads is None else check_int("threads", threads, low=1),
        )

    # -- interop / persistence -----------------------------------------------------------------
    def to_torch(self) -> Any:
        """An equivalent ``torch.nn.Sequential`` (same layers, weights, buffers and dtype)."""
        import torch

        mods: list[Any] = []
        for i, layer in enumerate(self.layers):
            try:
                mods.extend(layer.torch_modules())
            except ValueError as e:
                raise ValueError(str(e).replace("the activation", f"layer {i}'s activation")) from None
        return torch.nn.Sequential(*mods)

    def config(self) -> dict[str, Any]:
        """The architecture as plain data (what :meth:`save` writes as JSON)."""
        if self.shorthand:
            return {
                "format": _FORMAT,
                "sizes": list(self.sizes),
                "activation": [la.activation.spec for la in self.layers[:-1]],  # type: ignore[union-attr]
                "output": self.output.spec,
                "init": [str(la.init_spec) for la in self.layers],  # type: ignore[attr-defined]
                "bias_init": [str(la.bias_init_spec) for la in self.layers],  # type: ignore[attr-defined]
                "dtype": self.dtype.name,
            }
        return {"format": _FORMAT2, "input_shape": list(self.input_shape), "dtype": self.dtype.name,
                "layers": [la.config() for la in self.layers]}

    def state(self) -> dict[str, Array]:
        """Every parameter and buffer by name (``layers.3.weight``, ``layers.1.running_mean``)."""
        out: dict[str, Array] = {}
        if self.shorthand:
            for i, la in enumerate(self.layers):
                out[f"weight_{i}"] = np.array(la.arrays[0])
                out[f"bias_{i}"] = np.array(la.arrays[1])
            return out
        for path, la in _walk(self.layers):
            if la.children():
                continue
            for p, arr in zip(la.params, la.arrays):
                out[f"{path}.{p.name}"] = np.array(arr)
            for name, buf in getattr(la, "buffers", lambda: {})().items():
                out[f"{path}.{name}"] = np.array(buf)
        return out

    def load_state(self, state: Any) -> None:
        """Copy the arrays of :meth:`state` (a mapping, e.g. an open .npz) into the network."""
        if self.shorthand:
            for i, la in enumerate(self.layers):
                la.set_param("weight", state[f"weight_{i}"])
                la.set_param("bias", state[f"bias_{i}"])
            return
        for path, la in _walk(self.layers):
            if la.children():
                continue
            for p in la.params:
                la.set_param(p.name, state[f"{path}.{p.name}"])
            for name, buf in getattr(la, "buffers", lambda: {})().items():
                val = np.asarray(state[f"{path}.{name}"])
                if val.shape != buf.shape:
                    raise ValueError(f"{path}.{name} has shape {val.shape}; the layer needs {buf.shape}")
                buf[...] = val

    @staticmethod
    def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
        p = Path(path)
        stem = p.with_suffix("") if p.suffix in (".json", ".npz") else p
        return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")

    def save(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<path>.json`` (the spec) and ``<path>.npz`` (the weights); returns both paths.

        Each file is written to a temporary name and renamed into place (atomic)."""
        jpath, npath = self._paths(path)
        tmp_j = jpath.with_name(f".{jpath.name}.tmp-{os.getpid()}")
        tmp_n = npath.with_name(f".{npath.name}.tmp-{os.getpid()}")
        try:
            tmp_j.write_text(json.dumps(self.config(), indent=2) + "\n", encoding="utf-8")
            with open(tmp_n, "wb") as fh:
                np.savez(fh, **self.state())
            os.replace(tmp_n, npath)
            os.replace(tmp_j, jpath)
        finally:
            for t in (tmp_j, tmp_n):
                if t.exists():
                    t.unlink()
        return jpath, npath

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Network":
        """Read a network written by :meth:`save` (no pickle: ``allow_pickle=False``)."""
        jpath, npath = cls._paths(path)
        for p, what in ((jpath, "the network spec (JSON)"), (npath, "the weights (.npz)")):
            if not p.is_file():
                raise FileNotFoundError(f"Network.load expected {what} at {str(p)!r}; no such file.")
        try:
            cfg = json.loads(jpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{str(jpath)!r} is not valid JSON ({e}); expected a spec written by Network.save.") from None
        if not isinstance(cfg, dict) or cfg.get("format") not in (_FORMAT, _FORMAT2):
            raise ValueError(f"{str(jpath)!r} is not a Network spec (expected format {_FORMAT!r} or {_FORMAT2!r}).")
        if cfg["format"] == _FORMAT2:
            try:
                layers = [_layer_from_config(c, cfg["dtype"]) for c in cfg["layers"]]
                net = cls(layers, input_shape=cfg["input_shape"], rng=0, dtype=cfg["dtype"])
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(f"{str(jpath)!r} holds an invalid Network spec: {e}") from None
        else:
            net = cls._load_v1(cfg, jpath)
        try:
            with np.load(npath, allow_pickle=False) as data:
                net.load_state(data)
        except (KeyError, OSError, ValueError) as e:
            raise ValueError(f"{str(npath)!r} does not hold this network's weights ({e}).") from None
        return net

    @classmethod
    def _load_v1(cls, cfg: dict[str, Any], jpath: Path) -> "Network":
        missing = [k for k in _CONFIG_KEYS if k not in cfg]
        if missing:
            raise ValueError(
                f"{str(jpath)!r} is not a complete Network spec: missing key(s) {', '.join(map(repr, missing))} "
                f"(Network.save writes {', '.join(map(repr, _CONFIG_KEYS))})."
            )
        for key in ("sizes", "activation", "init", "bias_init"):
            if not isinstance(cfg[key], list):
                raise ValueError(f"{str(jpath)!r}: the {key!r} entry must be a list; got {cfg[key]!r}.")
        n = len(cfg["sizes"]) - 1
        for key in ("init", "bias_init"):
            if len(cfg[key]) != n:
                raise ValueError(f"{str(jpath)!r}: the {key!r} entry must hold {n} specs (one per layer); got {len(cfg[key])}.")
        # build without drawing random weights: zeros, then the saved values and specs
        try:
            net = cls(cfg["sizes"], activation=cfg["activation"] if n > 1 else "relu", output=cfg["output"],
                      init="zeros", bias_init="zeros", rng=0, dtype=cfg["dtype"])
        except (ValueError, TypeError) as e:
            raise ValueError(f"{str(jpath)!r} holds an invalid Network spec: {e}") from None
        for layer, spec, bspec in zip(net.layers, cfg["init"], cfg["bias_init"]):
            layer.init_spec, layer.bias_init_spec = spec, bspec  # type: ignore[attr-defined]
        return net

    def copy(self) -> "Network":
        """A deep copy (same spec, weights and buffers; its streams continue from forks)."""
        if self.shorthand:
            new = Network(list(self.sizes), [la.activation for la in self.layers[:-1]] if len(self.layers) > 1 else "relu",
                          self.output, init=[la.init_spec for la in self.layers],  # type: ignore[attr-defined]
                          bias_init=[la.bias_init_spec for la in self.layers],  # type: ignore[attr-defined]
                          rng=0, dtype=self.dtype)
        else:
            new = Network([_layer_from_config(la.config(), self.dtype) for la in self.layers],
                          input_shape=self.input_shape, rng=0, dtype=self.dtype)
            new.load_state(self.state())
        new._flat[...] = self._flat
        new.streams = {k: np.random.default_rng(child_seeds(g, 1)[0]) for k, g in self.streams.items()}
        return new

    def __repr__(self) -> str:
        if self.shorthand:
            acts = ", ".join(la.activation.spec for la in self.layers)  # type: ignore[union-attr]
            return f"Network({self.sizes}, activations=[{acts}], dtype={self.dtype.name})"
        inner = ", ".join(repr(la) for la in self.layers)
        return f"Network([{inner}], input_shape={self.input_shape}, dtype={self.dtype.name})"

