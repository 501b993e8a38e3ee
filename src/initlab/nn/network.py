"""The Network: a stack of Dense layers with every layer's forward and backward signal open.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from initlab import activations as _activations
from initlab._rng import RngLike, as_generator
from initlab._validation import bad_type, bad_value, check_int, resolve_dtype
from initlab.nn import losses as _losses
from initlab.nn import optimizers as _optimizers
from initlab.nn.layers import Dense

__all__ = ["Network", "LayerTrace", "History"]

Array = np.ndarray
_FORMAT = "initlab.nn.Network/1"
_CONFIG_KEYS = ("format", "sizes", "activation", "output", "init", "bias_init", "dtype")


@dataclass
class LayerTrace:
    """One layer's signals for one batch: forward (filled by ``forward(capture=True)``) and
    backward (filled by ``backward``).

    ``grad_act`` is ∂L/∂act, ``grad_preact`` ∂L/∂preact. One special case: when
    :meth:`Network.gradients` starts from a logits loss (bce with a sigmoid output), the last
    layer's ``grad_preact`` is computed stably from the logits, and its ``grad_act`` is
    ``grad_preact / φ′(preact)``, i.e. ``(σ − y) / (n σ(1 − σ))`` for bce: genuinely unbounded as
    σ saturates. Where φ′ is exactly 0 in floating point (a fully saturated sigmoid) that entry is
    NaN (undefined), never ±inf from a division by zero; every other entry is finite or overflows
    honestly.
    """

    inputs: Array
    preact: Array
    act: Array
    grad_act: Array | None = None
    grad_preact: Array | None = None
    grad_weight: Array | None = None
    grad_bias: Array | None = None


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
        }


def _per_layer(name: str, value: Any, n: int, what: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"The {name!r} argument must be one spec or a list of {n} ({what}); got {len(value)}.")
        return list(value)
    return [value] * n


def _has_torch_module(name: str, torch: Any) -> bool:
    """Whether activation ``name`` has a torch.nn module form (what :meth:`Network.to_torch` needs)."""
    mod = _activations.get(name).torch_module
    return bool(mod) and hasattr(torch.nn, mod)


class Network:
    """A multilayer perceptron of :class:`~initlab.nn.layers.Dense` layers.

    Args:
        sizes: layer widths, input first: ``[2, 12, 6, 1]`` is 2 → 12 → 6 → 1.
        activation: hidden layers' activation (name, spec string, Activation) or a list, one per
            hidden layer.
        output: the last layer's activation (default ``"linear"``). With ``"sigmoid"`` and loss
            ``"bce"`` the loss is computed stably from the last layer's pre-activation (logits).
        init, bias_init: init specs (``initlab.init.get`` syntax) or a list, one per layer.
        rng: seed or Generator for the initial weights; also the default shuffling stream of
            :meth:`fit`.
        dtype: float32 (default) or float64.

    All weights and biases live in one contiguous vector (``net.params``), the layers hold views.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: Any = "relu",
        output: Any = None,
        init: Any = "he_normal",
        bias_init: Any = "zeros",
        *,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ) -> None:
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            bad_type("sizes", "a list of layer widths like [2, 12, 6, 1]", sizes)
        sizes = [check_int("sizes", s, low=1) for s in sizes]
        if len(sizes) < 2:
            bad_value("sizes", "at least two widths (input and output)", sizes)
        self.sizes: list[int] = sizes
        self.dtype = resolve_dtype(dtype)
        n = len(sizes) - 1
        hidden = _per_layer("activation", activation, n - 1, "hidden layers") if n > 1 else []
        if n == 1 and isinstance(activation, (list, tuple)) and len(activation) > 0:
            raise ValueError(f"The 'activation' argument is for hidden layers; a {sizes} network has none, got {activation!r}.")
        if n == 1 and not isinstance(activation, (list, tuple)):
            _activations.get(activation)  # unused without hidden layers, but a typo is still an error
        acts = [_activations.get(a) for a in hidden] + [_activations.get("linear" if output is None else output)]
        inits = _per_layer("init", init, n, "layers")
        binits = _per_layer("bias_init", bias_init, n, "layers")
        self._rng = as_generator(rng)
        self.layers: list[Dense] = [
            Dense(sizes[i], sizes[i + 1], acts[i], init=inits[i], bias_init=binits[i], dtype=self.dtype)
            for i in range(n)
        ]
        self._flat = np.zeros(self.n_params, dtype=self.dtype)
        for layer, (w, b) in zip(self.layers, self._views(self._flat)):
            layer._bind(w, b)
        self.reset_parameters()

    # -- parameters ----------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of scalar parameters."""
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def _views(self, flat: Array) -> list[tuple[Array, Array]]:
        out, k = [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = flat[k : k + n_in * n_out].reshape(n_out, n_in)
            k += n_in * n_out
            b = flat[k : k + n_out]
            k += n_out
            out.append((w, b))
        return out

    @property
    def params(self) -> Array:
        """All parameters as one vector ``[W0, b0, W1, b1, ...]`` (a view: writing changes the net)."""
        return self._flat

    def reset_parameters(self, rng: RngLike = None) -> None:
        """Draw every weight and bias from its init spec (from ``rng``, default the net's stream)."""
        from initlab import init as _init

        gen = self._rng if rng is None else as_generator(rng)
        for layer in self.layers:
            w_init = _init.get(layer.init_spec)
            b_init = _init.get(layer.bias_init_spec)
            layer.init_spec = w_init.spec
            layer.bias_init_spec = b_init.spec
            layer.weight = w_init(layer.shape, rng=gen, dtype=self.dtype)
            extra: dict[str, Any] = {}
            if "fan_in" in b_init.params and b_init.params["fan_in"] is None:
                # a bias scheme that scales with the layer's fan in (torch_default_bias): the
                # bias shape [out] alone does not know it, the layer does
                extra["fan_in"] = _init.compute_fans(layer.shape)[0]
            layer.bias = b_init((layer.n_out,), rng=gen, dtype=self.dtype, **extra)

    @property
    def output(self) -> _activations.Activation:
        """The last layer's activation."""
        return self.layers[-1].activation

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

    def _check_x(self, x: Any, name: str = "x") -> Array:
        arr = np.asarray(x)
        if arr.ndim == 1 and self.sizes[0] == arr.shape[0]:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.sizes[0]:
            raise ValueError(f"The {name!r} argument must have shape [n, {self.sizes[0]}]; got shape {arr.shape}.")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
            bad_type(name, "a real numeric array", x)
        return np.ascontiguousarray(arr, dtype=self.dtype)

    # -- forward / backward with capture ---------------------------------------------------------
    def forward(self, x: Any, capture: bool = False) -> Any:
        """The network output for ``x`` ([batch, in]); with ``capture=True``, ``(out, trace)``."""
        h = self._check_x(x)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            if not capture:
                for layer in self.layers:
                    h = layer.forward(h)[1]
                return h
            trace = []
            for layer in self.layers:
                z, a = layer.forward(h)
                trace.append(LayerTrace(inputs=h, preact=z, act=a))
                h = a
        return h, trace

    def backward(self, grad_out: Any, trace: list[LayerTrace]) -> list[LayerTrace]:
        """Fill every LayerTrace's gradients from ``grad_out = ∂L/∂(network output)``."""
        if len(trace) != len(self.layers):
            raise ValueError(f"The 'trace' argument must hold {len(self.layers)} LayerTrace; got {len(trace)}.")
        g = np.asarray(grad_out, dtype=self.dtype)
        if g.shape != trace[-1].act.shape:
            raise ValueError(f"The 'grad_out' argument must have the output's shape {trace[-1].act.shape}; got {g.shape}.")
        self._backward_from(trace, g, None)
        return trace

    def _backward_from(self, trace: list[LayerTrace], grad_act: Array | None, grad_preact: Array | None) -> None:
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for i in range(len(self.layers) - 1, -1, -1):
                t = trace[i]
                r = self.layers[i].backward(
                    grad_act, t.inputs, t.preact, t.act, grad_preact=grad_preact, need_input_grad=i > 0
                )
                t.grad_act = grad_act
                t.grad_preact, t.grad_weight, t.grad_bias = r.grad_preact, r.grad_weight, r.grad_bias
                grad_act, grad_preact = r.grad_input, None

    def gradients(self, x: Any, y: Any, loss: Any = None) -> tuple[float, list[LayerTrace]]:
        """``(loss, trace)`` for one batch: forward with capture, the loss, and backward.

        With a logits loss (bce with a sigmoid output) the backward pass starts from ∂L/∂z of the
        last layer, computed stably; that layer's ``grad_act`` is then ∂L/∂z / σ′(z), NaN where
        σ′(z) is exactly 0 (see :class:`LayerTrace`).
        """
        lo = self._loss(loss)
        out, trace = self.forward(x, capture=True)
        yp = lo.prepare(y, self.sizes[-1], self.dtype)
        if yp.shape[0] != out.shape[0]:
            raise ValueError(f"The 'y' argument must have {out.shape[0]} rows like 'x'; got {yp.shape[0]}.")
        with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
            if lo.takes_logits and self.output.name != "linear":
                value, gz = lo.value_and_grad(trace[-1].preact, yp)
                self._backward_from(trace, None, gz)
                d = self.output.derivative(trace[-1].preact, trace[-1].act)
                trace[-1].grad_act = np.divide(gz, d, out=np.full_like(gz, np.nan), where=d != 0)
            else:
                value, ga = lo.value_and_grad(out, yp)
                self._backward_from(trace, ga, None)
        return value, trace

    # -- inference -------------------------------------------------------------------------------
    def predict(self, x: Any) -> Array:
        """The network output (probabilities for a sigmoid output, logits for a linear one)."""
        return self.forward(x)

    def _loss_target(self, x: Array, lo: _losses.Loss) -> Array:
        """What the loss consumes: the last pre-activation for a logits loss, else the output."""
        h = x
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            for layer in self.layers[:-1]:
                h = layer.forward(h)[1]
            z, a = self.layers[-1].forward(h)
        return z if lo.takes_logits else a

    def evaluate(self, x: Any, y: Any, loss: Any = None) -> dict[str, float]:
        """``{"loss": mean loss, "accuracy": fraction correct}`` on ``(x, y)`` (accuracy NaN for regression)."""
        lo = self._loss(loss)
        xa = self._check_x(x)
        yp = lo.prepare(y, self.sizes[-1], self.dtype)
        if yp.shape[0] != xa.shape[0]:
            raise ValueError(f"The 'y' argument must have {xa.shape[0]} rows like 'x'; got {yp.shape[0]}.")
        t = self._loss_target(xa, lo)
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
        **optimizer_kwargs: Any,
    ) -> History:
        """Train with mini-batch gradient descent; returns a :class:`History`.

        Args:
            X, y: training inputs ``[n, in]`` and targets (float ``[n, out]`` or ``[n]`` for bce/mse,
                integer labels ``[n]`` for ce).
            epochs: passes over the data. batch_size: None = full batch.
            lr, optimizer: ``"sgd"``, ``"momentum"``, ``"adam"`` (or an Optimizer); extra keyword
                arguments go to the optimizer (``momentum=0.9``, ``beta1=...``).
            loss: ``"bce"``, ``"ce"``, ``"mse"``; default from the output (:meth:`default_loss`).
            X_val, y_val: held-out split, evaluated every ``val_every`` epochs (default about 100
                times per run) and after the last epoch.
            shuffle: reshuffle the training set every epoch (mini-batch only; a full batch is
                order-free). progress: a rich progress bar on stderr; None = only when stderr is
                a terminal and the run has more than one step. rng: shuffling stream (default: the
                network's own, so a seeded network trains deterministically).
            threads: BLAS threads during training (restored afterwards); None = one thread when
                the largest per-step matmul is small (< 2e6 multiply-adds), else the BLAS default.

        Divergence: if a training loss is NaN or ±inf, training stops, ``History.diverged`` is set
        with the step and epoch, and the parameters are restored to the last epoch start whose
        loss was finite (so ``predict`` never returns NaN because of the divergence itself). The
        final update is checked too: after the loop the parameters must be finite and the training
        loss at them finite, else the run counts as diverged and the last epoch is rolled back.
        """
        from initlab.nn.training import train

        lo = self._loss(loss)
        Xa = self._check_x(X, "X")
        Ya = lo.prepare(y, self.sizes[-1], self.dtype)
        if Ya.shape[0] != Xa.shape[0]:
            raise ValueError(f"The 'y' argument must have {Xa.shape[0]} rows like 'X'; got {Ya.shape[0]}.")
        if Xa.shape[0] == 0:
            raise ValueError("The 'X' argument must hold at least one sample; got 0.")
        if not np.all(np.isfinite(Xa)):
            raise ValueError("The 'X' argument must be finite; it holds NaN or inf.")
        epochs = check_int("epochs", epochs, low=0)
        bs = Xa.shape[0] if batch_size is None else check_int("batch_size", batch_size, low=1)
        bs = min(bs, Xa.shape[0])
        opt = _optimizers.get(optimizer, lr=lr, **optimizer_kwargs)
        val = None
        if (X_val is None) != (y_val is None):
            raise ValueError("The 'X_val' and 'y_val' arguments must be given together.")
        if X_val is not None:
            Xv = self._check_x(X_val, "X_val")
            Yv = lo.prepare(y_val, self.sizes[-1], self.dtype, name="y_val")
            if Yv.shape[0] != Xv.shape[0]:
                raise ValueError(f"The 'y_val' argument must have {Xv.shape[0]} rows like 'X_val'; got {Yv.shape[0]}.")
            val = (Xv, Yv)
        if val_every is None:
            val_every = max(1, epochs // 100)
        val_every = check_int("val_every", val_every, low=1)
        gen = self._rng if rng is None else as_generator(rng)
        if progress is None:
            progress = bool(getattr(sys.stderr, "isatty", lambda: False)()) and epochs * math.ceil(Xa.shape[0] / bs) > 1
        return train(
            self, Xa, Ya, lo, opt, epochs=epochs, batch_size=bs, shuffle=bool(shuffle), gen=gen,
            progress=bool(progress), val=val, val_every=val_every,
            threads=None if threads is None else check_int("threads", threads, low=1),
        )

    # -- interop / persistence -----------------------------------------------------------------
    def to_torch(self) -> Any:
        """An equivalent ``torch.nn.Sequential`` (Linear + activation modules), same weights and dtype."""
        import torch

        tdtype = torch.float32 if self.dtype == np.float32 else torch.float64
        mods: list[Any] = []
        for layer in self.layers:
            lin = torch.nn.Linear(layer.n_in, layer.n_out, dtype=tdtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.array(layer.weight)))
                lin.bias.copy_(torch.from_numpy(np.array(layer.bias)))
            mods.append(lin)
            act = layer.activation
            if act.name == "linear":
                continue
            cls = getattr(torch.nn, act.torch_module, None) if act.torch_module else None
            if cls is None:
                supported = [n for n in _activations.names() if _has_torch_module(n, torch)]
                raise ValueError(
                    f"Network.to_torch cannot convert layer {self.layers.index(layer)}'s activation "
                    f"{act.spec!r}: it has no torch.nn module. Supported activations: {', '.join(supported)}."
                )
            if act.name == "leaky_relu":
                mods.append(cls(negative_slope=act.param))
            elif act.name == "elu":
                mods.append(cls(alpha=act.param))
            else:
                mods.append(cls())
        return torch.nn.Sequential(*mods)

    def config(self) -> dict[str, Any]:
        """The architecture as plain data (what :meth:`save` writes as JSON)."""
        return {
            "format": _FORMAT,
            "sizes": list(self.sizes),
            "activation": [layer.activation.spec for layer in self.layers[:-1]],
            "output": self.output.spec,
            "init": [str(layer.init_spec) for layer in self.layers],
            "bias_init": [str(layer.bias_init_spec) for layer in self.layers],
            "dtype": self.dtype.name,
        }

    @staticmethod
    def _paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
        p = Path(path)
        stem = p.with_suffix("") if p.suffix in (".json", ".npz") else p
        return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")

    def save(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<path>.json`` (the spec) and ``<path>.npz`` (the weights); returns both paths."""
        jpath, npath = self._paths(path)
        jpath.write_text(json.dumps(self.config(), indent=2) + "\n", encoding="utf-8")
        arrays = {}
        for i, layer in enumerate(self.layers):
            arrays[f"weight_{i}"] = np.array(layer.weight)
            arrays[f"bias_{i}"] = np.array(layer.bias)
        with open(npath, "wb") as fh:
            np.savez(fh, **arrays)
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
        if not isinstance(cfg, dict) or cfg.get("format") != _FORMAT:
            raise ValueError(f"{str(jpath)!r} is not a Network spec (expected format {_FORMAT!r}).")
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
        net = cls.__new__(cls)
        # build without drawing random weights: zeros, then load the saved values
        try:
            cls.__init__(
                net, cfg["sizes"], activation=cfg["activation"] if n > 1 else "relu", output=cfg["output"],
                init="zeros", bias_init="zeros", rng=0, dtype=cfg["dtype"],
            )
        except (ValueError, TypeError) as e:
            raise ValueError(f"{str(jpath)!r} holds an invalid Network spec: {e}") from None
        try:
            with np.load(npath, allow_pickle=False) as data:
                for i, layer in enumerate(net.layers):
                    layer.weight = data[f"weight_{i}"]
                    layer.bias = data[f"bias_{i}"]
        except (KeyError, OSError, ValueError) as e:
            raise ValueError(f"{str(npath)!r} does not hold this network's weights ({e}).") from None
        for layer, spec, bspec in zip(net.layers, cfg["init"], cfg["bias_init"]):
            layer.init_spec, layer.bias_init_spec = spec, bspec
        return net

    def copy(self) -> "Network":
        """A deep copy (same spec and weights; its own random stream continues from a fork)."""
        new = Network.__new__(Network)
        new.sizes = list(self.sizes)
        new.dtype = self.dtype
        new._rng = self._rng.spawn(1)[0]
        new.layers = [
            Dense(l.n_in, l.n_out, l.activation, init=l.init_spec, bias_init=l.bias_init_spec, dtype=self.dtype)
            for l in self.layers
        ]
        new._flat = self._flat.copy()
        for layer, (w, b) in zip(new.layers, new._views(new._flat)):
            layer._w, layer._b = w, b
        return new

    def __repr__(self) -> str:
        acts = ", ".join(layer.activation.spec for layer in self.layers)
        return f"Network({self.sizes}, activations=[{acts}], dtype={self.dtype.name})"
