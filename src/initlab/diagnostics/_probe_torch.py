"""Probing a ``torch.nn.Module`` at the level of tensor operations (torch optional).

**How the forward pass is seen.** The model runs once under a
``torch.overrides.TorchFunctionMode`` (:class:`_Capture`): every torch function call made during
the forward — ``F.linear``, ``F.conv2d``, ``F.relu`` and ``torch.tanh``, ``x + y`` and
``x += y``, ``F.layer_norm``/``F.batch_norm``/``F.group_norm``/``F.rms_norm``, pooling,
``F.embedding``, ``F.scaled_dot_product_attention``, ``F.multi_head_attention_forward`` (what
``nn.MultiheadAttention`` calls), ``torch.lstm``/``torch.gru`` (what ``nn.LSTM``/``nn.GRU``
call) — reaches the probe whether it was made by a module or by ``forward()`` itself, with any
Python control flow (the model's own code runs eagerly: nothing is traced, so nothing can fail to
trace). Forward pre-/post-hooks on every module keep the stack of module paths, so each row is
named by where it ran (``enc.layers.2.self_attn.q_proj``). torch.fx (symbolic tracing fails on
data-dependent control flow and cannot see inside leaf modules) and ``torch.export`` (a
graph-capture step that rejects much ordinary Python and takes seconds) were not chosen; a
dispatch mode would see aten ops below the level practitioners think in (``addmm``, not linear).

**What becomes a row** (``LayerStats.kind``): linear, conv, embedding, RNN layers, activations,
norms, pooling, residual adds, products with a parameter, attention logits and attention outputs
(see :class:`~initlab.diagnostics.LayerStats`). An activation whose input is exactly the output
of the linear/conv/embedding/RNN row before it is merged into that row (pre-activation →
activation, as in a Network). ``nn.MultiheadAttention``'s packed forward is evaluated step by step
(q, k, v projections, logits, softmax, weighted values, output projection — the same arithmetic
as torch's, not bitwise: three projections instead of one packed matmul) so each step gets a row;
a multi-layer LSTM/GRU/RNN is run one layer at a time (the same kernel, one layer each) so each
layer's output over time gets a row and its gradient through time. Statistics are computed in
the function mode, on zero-copy NumPy views (CPU) of each tensor, by the same functions as the
NumPy probe; in-place ops (``ReLU(inplace=True)``, ``x += y``) are measured before they write.
Every parameter that feeds no row is listed in ``ProbeResult.unexamined`` with the operation that
used it (or "not used in the forward pass").

**Modes**: ``"init"`` (default) puts every module in training mode — BatchNorm normalises with the
batch's statistics, as in the first training steps — and turns every dropout off (``F.dropout``,
attention dropout, RNN inter-layer dropout), so the probe measures the initialization without
noise; ``"train"`` is training mode with dropout on; ``"eval"`` is ``model.eval()`` (BatchNorm with
its running statistics). Whatever the mode, parameters, buffers, every module's ``training``
flag and torch's RNG state are restored bitwise afterwards
(:func:`~initlab.diagnostics._torch_state.preserved_state`).

Gradients come from ``torch.autograd.grad`` (the modules' ``.grad`` are left untouched), with
tensor hooks on each row's tensors; everything runs on the model's device (statistics on a CPU
copy when it is not the CPU).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from initlab import activations as _activations
from initlab._validation import bad_value
from initlab.diagnostics._measure import (
    act_stats,
    backward_stats,
    finish_histograms,
    loss_gradient,
    new_layer,
    preact_stats,
    weight_stats,
)
from initlab.diagnostics._result import LayerStats, ProbeResult
from initlab.diagnostics._stats import HIST_SAMPLE, mean_pairwise_cosine, moments, subsample
from initlab.diagnostics._theory import add_theory, empirical_spec

__all__ = ["probe_torch", "is_torch_module", "to_numpy", "MODES", "ModelInputError"]


class ModelInputError(ValueError):
    """The model raised on the probe's input (wrong shape, dtype or number of inputs); ``shapes``
    are the input shapes it was given."""

    def __init__(self, message: str, shapes: list[tuple[int, ...]]) -> None:
        super().__init__(message)
        self.shapes = shapes

MODES = ("init", "train", "eval")
LOGITS_SAMPLE = 1 << 18  # attention logits measured per row, at most (whole samples from the batch's start)

_LINEAR_KINDS = ("linear", "conv", "embedding", "rnn")
_DROPOUTS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
             "feature_dropout"}
_POOLS = ({f"{p}{d}d" for p in ("max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "lp_pool",
                                 "_max_pool", "fractional_max_pool") for d in (1, 2, 3)}
          | {f"{p}{d}d_with_indices" for p in ("max_pool", "adaptive_max_pool", "fractional_max_pool")
             for d in (1, 2, 3)})
_ADDS = {"add", "__add__", "__radd__", "add_", "__iadd__"}
_MULS = {"mul", "__mul__", "__rmul__", "mul_", "__imul__"}
_MATMULS = {"matmul", "__matmul__", "mm"}
_NORMS = {"layer_norm": (-1, 2), "rms_norm": (-1, 2), "batch_norm": (1, 3), "group_norm": (1, 2),
          "instance_norm": (1, 3)}  # name: (feature axis, position of the weight argument)
_CONVS = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
_RNNS = {"lstm", "gru", "rnn_tanh", "rnn_relu"}
_VIEWS = {"__getitem__", "view", "reshape", "t", "transpose", "permute", "expand", "expand_as", "unsqueeze",
          "squeeze", "flatten", "unflatten", "contiguous", "narrow", "select", "repeat", "to", "type_as", "view_as",
          "reshape_as", "movedim", "swapaxes", "mT", "T"}
_SKIP = {"__get__", "__set__", "size", "dim", "numel", "is_floating_point", "is_contiguous", "_set_grad_enabled",
         "__len__", "__bool__", "__index__", "__format__", "__repr__", "__eq__", "__hash__", "stride", "__iter__"}


def is_torch_module(obj: Any) -> bool:
    """True for a torch.nn.Module (without importing torch when it is not loaded)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def to_numpy(t: Any) -> np.ndarray:
    """A NumPy view (CPU) or copy (other devices) of a tensor, detached."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.dtype.is_floating_point and t.dtype not in _NUMPY_FLOATS():
        t = t.float()  # bfloat16 / float16 have no (fast) NumPy reductions
    return t.numpy()


def _NUMPY_FLOATS() -> tuple[Any, ...]:
    import torch

    return (torch.float32, torch.float64)


def _activation_for(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _activations.Activation | None:
    """The initlab Activation of a functional activation call, or None when initlab has none."""
    base = name.rstrip("_")
    try:
        if base in ("relu", "tanh", "sigmoid", "selu", "silu", "mish"):
            return _activations.get(base)
        if base == "leaky_relu":
            slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
            return _activations.get("leaky_relu", float(slope))
        if base == "elu":
            alpha = kwargs.get("alpha", args[1] if len(args) > 1 else 1.0)
            return _activations.get("elu", float(alpha))
        if base == "gelu":
            approx = kwargs.get("approximate", args[1] if len(args) > 1 else "none")
            return _activations.get("gelu") if approx == "none" else None
        if base == "softplus":
            beta = kwargs.get("beta", args[1] if len(args) > 1 else 1.0)
            return _activations.get("softplus") if float(beta) == 1.0 else None
    except (ValueError, KeyError):
        return None
    return None


_ACTIVATION_NAMES = {"relu", "relu_", "tanh", "tanh_", "sigmoid", "sigmoid_", "selu", "selu_", "silu", "mish",
                     "leaky_relu", "leaky_relu_", "elu", "elu_", "gelu", "softplus", "celu", "relu6", "hardtanh",
                     "hardtanh_", "hardswish", "hardsigmoid", "softsign", "logsigmoid", "tanhshrink", "prelu",
                     "rrelu", "glu"}


def _is_inplace(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    if name.endswith("_") and not name.endswith("__"):
        return True
    if name.startswith("__i"):
        return True
    return bool(kwargs.get("inplace", False))


@dataclass
class _Row:
    st: LayerStats
    samples: dict[str, Any]
    kind: str
    axis: int  # feature axis of the row's tensors
    out: Any  # the tensor the row ends with
    activation: _activations.Activation | None
    weight: Any = None  # (parameter, row slice or None) whose gradient the row reports
    paired: bool = False
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    time_axis: int | None = None
    grad_time: tuple[float, float] | None = None
    out_version: int = -1  # the output's version counter when measured (an in-place write moves it)


class _Capture:
    """The function mode and module hooks of one probe run (see the module docstring)."""

    def __init__(self, model: Any, mode: str, backward: bool, hist_sample: int | None, batch: int) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.mode = mode
        self.backward = backward
        self.hist_sample = hist_sample
        self.batch = batch
        self.rows: list[_Row] = []
        self.origin: dict[int, tuple[Any, int, int | None]] = {}  # id -> (tensor, row index | -1, axis)
        self.stack: list[list[Any]] = []  # [path, module, rows made in this call]
        self.counts: dict[str, int] = {}
        self.params: dict[int, str] = {id(p): n for n, p in model.named_parameters(remove_duplicate=True)}
        self.param_objs: dict[int, Any] = {id(p): p for p in model.parameters()}
        self.examined: set[int] = set()
        self.derived: dict[int, tuple[Any, Any]] = {}  # id -> (tensor, the parameter it was derived from)
        self.used_by: dict[int, set[str]] = {}
        self.notes: list[str] = []
        self.linear = _activations.get("linear")
        self.handlers: dict[str, Callable[..., Any]] = {}
        for n in ("linear",):
            self.handlers[n] = self._linear
        for n in _CONVS:
            self.handlers[n] = self._conv
        self.handlers["embedding"] = self._embedding
        for n in _NORMS:
            self.handlers[n] = self._norm
        for n in _ACTIVATION_NAMES:
            self.handlers[n] = self._act
        for n in _ADDS:
            self.handlers[n] = self._add
        for n in _MULS:
            self.handlers[n] = self._mul
        for n in _MATMULS:
            self.handlers[n] = self._matmul
        for n in _POOLS:
            self.handlers[n] = self._pool
        self.handlers["mean"] = self._mean
        for n in _DROPOUTS:
            self.handlers[n] = self._dropout
        for n in ("softmax",):
            self.handlers[n] = self._softmax
        self.handlers["scaled_dot_product_attention"] = self._sdpa
        self.handlers["multi_head_attention_forward"] = self._mha
        for n in _RNNS:
            self.handlers[n] = self._rnn

    # -- the function mode -------------------------------------------------------------------------
    def mode_object(self) -> Any:
        from torch.overrides import TorchFunctionMode

        cap = self

        class _Mode(TorchFunctionMode):
            def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                                   kwargs: dict[str, Any] | None = None) -> Any:
                return cap.dispatch(func, args, kwargs or {})

        return _Mode()

    def dispatch(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        name = getattr(func, "__name__", "")
        if name in _SKIP:
            return func(*args, **kwargs)
        h = self.handlers.get(name)
        if h is not None:
            def call(*a: Any, **k: Any) -> Any:
                try:
                    if name in _RNNS:  # run layer by layer on the module's weights: cuDNN warns they are not one chunk
                        with warnings.catch_warnings():
                            warnings.filterwarnings("ignore", message="RNN module weights are not part of single")
                            return func(*a, **k)
                    return func(*a, **k)
                except Exception as e:  # the model's operation failed: tag it as the model's error
                    e._initlab_model = True  # type: ignore[attr-defined]
                    raise
            try:
                return h(call, name, args, kwargs)
            except Exception as e:
                if not getattr(e, "_initlab_model", False):
                    e._initlab_probe = True  # type: ignore[attr-defined]  # a fault of the probe itself
                raise
        out = func(*args, **kwargs)
        self._note_params(name, args, kwargs)
        self._propagate(args, out)
        if name in _VIEWS:
            self._derive(args, out)
        return out

    def _derive(self, args: tuple[Any, ...], out: Any) -> None:
        """A slice, view, transpose or expansion of a parameter (``self.pos[:, :T]``, ``W.t()``)
        stands for that parameter in the rows that use it (not a function of it: ``exp(p)``)."""
        if args and isinstance(out, self.torch.Tensor):
            p = self._param_of(args[0])
            if p is not None:
                self.derived[id(out)] = (out, p)

    def _param_of(self, t: Any) -> Any:
        """The model parameter ``t`` is, or was derived from by a shape-only op; else None."""
        if not isinstance(t, self.torch.Tensor):
            return None
        if id(t) in self.params:
            return t
        d = self.derived.get(id(t))
        return d[1] if d is not None and d[0] is t else None

    # -- module paths ------------------------------------------------------------------------------
    def install_hooks(self) -> list[Any]:
        names = {m: n for n, m in self.model.named_modules()}

        def pre(mod: Any, inp: Any) -> None:
            self.stack.append([names.get(mod, type(mod).__name__), mod, 0])

        def post(mod: Any, inp: Any, out: Any) -> None:
            if self.stack:
                self.stack.pop()

        handles = []
        for m in self.model.modules():
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post, always_call=True))
        return handles

    def _name(self, label: str, own: bool = True) -> str:
        """Row name: the module path when the innermost module is a leaf whose first row this is,
        else ``<path>.<label>``; repeats get ``.1``, ``.2``."""
        if self.stack:
            path, mod, made = self.stack[-1]
            leaf = next(iter(mod.children()), None) is None
            base = path if (own and leaf and made == 0 and path) else (f"{path}.{label}" if path else label)
            self.stack[-1][2] += 1
        else:
            base = label
        n = self.counts.get(base, 0)
        self.counts[base] = n + 1
        return base if n == 0 else f"{base}.{n}"

    def _module_type(self) -> str | None:
        return type(self.stack[-1][1]).__name__ if self.stack else None

    # -- tensors -----------------------------------------------------------------------------------
    def _is_float(self, t: Any) -> bool:
        return isinstance(t, self.torch.Tensor) and t.is_floating_point()

    def _origin(self, t: Any) -> tuple[int, int | None] | None:
        o = self.origin.get(id(t))
        if o is None or o[0] is not t:
            return None
        return o[1], o[2]

    def _mark(self, t: Any, row: int, axis: int | None) -> None:
        if isinstance(t, self.torch.Tensor):
            self.origin[id(t)] = (t, row, axis)

    def mark_input(self, t: Any) -> None:
        if isinstance(t, self.torch.Tensor):
            self._mark(t, -1, None)

    def _propagate(self, args: tuple[Any, ...], out: Any) -> None:
        """Shape-only ops (view, reshape, permute, flatten, transpose, contiguous, clone, a bias add
        ...) keep the origin of their one tensor input."""
        if not args or not isinstance(out, self.torch.Tensor):
            return
        a = args[0]
        if isinstance(a, self.torch.Tensor) and a is not out and a.numel() == out.numel():
            o = self._origin(a)
            if o is not None:
                axis = o[1] if (o[1] is None or a.ndim == out.ndim) else None
                self._mark(out, o[0], axis)

    def _axis_of(self, t: Any, default: int | None = None) -> int:
        o = self._origin(t)
        if o is not None and o[1] is not None:
            return o[1]
        if default is not None:
            return default
        return 1 if t.ndim >= 4 else -1

    def _fview(self, t: Any, axis: int) -> np.ndarray:
        """The tensor as [rows, units] (feature axis last) or [batch, channels, *rest] (axis 1)."""
        a = to_numpy(t)
        if a.ndim <= 2:
            return a
        if axis in (-1, a.ndim - 1):
            return a.reshape(-1, a.shape[-1])
        if axis == 1:
            return a
        return np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis])

    def _per_sample(self, t: Any) -> np.ndarray:
        """Batch on axis 0 (a sequence-first tensor [T, B, ...] is read with its axes swapped)."""
        a = to_numpy(t)
        if a.ndim >= 2 and a.shape[0] != self.batch and a.shape[1] == self.batch:
            return np.swapaxes(a, 0, 1)
        return a

    def _note_params(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for v in (*args, *kwargs.values()):
            if isinstance(v, self.torch.Tensor) and id(v) in self.params:
                self.used_by.setdefault(id(v), set()).add(name)
            elif isinstance(v, (list, tuple)):
                for w in v:
                    if isinstance(w, self.torch.Tensor) and id(w) in self.params:
                        self.used_by.setdefault(id(w), set()).add(name)

    def _examine(self, *params: Any) -> None:
        for p in params:
            q = self._param_of(p)
            if q is not None:
                self.examined.add(id(q))

    def _hook(self, row: _Row, key: str, t: Any) -> None:
        if not (self.backward and isinstance(t, self.torch.Tensor) and t.requires_grad):
            return
        axis = row.axis

        def fn(g: Any) -> None:
            if g is None:  # (an output of a multi-output node, a chunk or a split, on no path to the loss)
                return
            row.grads[key] = self._fview(g, axis)
            if row.time_axis is not None and key == "preact" and g.ndim == 3:
                gd = g.detach().double()
                first = float(gd.select(row.time_axis, 0).pow(2).mean().sqrt())
                last = float(gd.select(row.time_axis, g.shape[row.time_axis] - 1).pow(2).mean().sqrt())
                row.grad_time = (first, last)

        t.register_hook(fn)

    def _new_row(self, kind: str, op: str, name: str, activation: _activations.Activation | None, axis: int,
                 inp: Any) -> _Row:
        st = new_layer(len(self.rows) + 1, name, kind, activation)
        st.op, st.module = op, self._module_type()
        st.input_seen = inp is None or self._origin(inp) is not None
        return _Row(st, {}, kind, axis, None, activation)

    def _finish(self, row: _Row, out: Any) -> None:
        row.out = out
        row.out_version = out._version
        self.rows.append(row)
        self._mark(out, len(self.rows) - 1, row.axis)

    # -- layer-like rows: linear, conv, embedding, matmul, rnn -------------------------------------
    def _layer_row(self, kind: str, op: str, name: str, inp: Any, out: Any, axis: int, weight: Any,
                   wslice: Any = None, fan_in: int | None | bool = True) -> _Row:
        act = self.linear if kind in ("linear", "conv") else None  # embeddings, RNN outputs: no activation
        row = self._new_row(kind, op, name, act, axis, inp)
        o = self._fview(out, axis)
        ps = self._per_sample(out)
        preact_stats(row.st, o, row.samples, self.hist_sample, per_sample=ps)
        act_stats(row.st, o, act, o, row.samples, self.hist_sample, per_sample=ps)
        if weight is not None:
            w = weight if wslice is None else weight[wslice]
            wn = to_numpy(w)
            weight_stats(row.st, wn)
            if fan_in is False:
                row.st.fan_in = row.st.fan_out = None
            elif isinstance(fan_in, int) and not isinstance(fan_in, bool) and fan_in != row.st.fan_in:
                # another layout (x @ W with W [in, out], a transposed conv): fan_out per input unit
                row.st.fan_in = fan_in
                row.st.fan_out = int(wn.size) // fan_in if wn.ndim == 2 and fan_in else None
            row.weight = (weight, wslice)
        self._hook(row, "preact", out)
        self._finish(row, out)
        return row

    def _linear(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        inp = args[0] if args else kwargs.get("input")
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        if not self._is_float(out):
            return out
        self._layer_row("linear", "linear", self._name("linear"), inp, out, -1, weight)
        self._examine(weight, bias)
        return out

    def _conv(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        inp = args[0] if args else kwargs.get("input")
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        if not self._is_float(out) or out.ndim < 3:
            return out
        fan: int | bool = True
        if "transpose" in name and isinstance(weight, self.torch.Tensor):
            fan = int(weight.shape[0] * math.prod(weight.shape[2:]))  # [in, out/groups, *k]: per output unit
        self._layer_row("conv", name, self._name(name), inp, out, 1, weight, fan_in=fan)
        self._examine(weight, bias)
        return out

    def _embedding(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        inp = args[0] if args else kwargs.get("input")
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        if not self._is_float(out):
            return out
        self._layer_row("embedding", "embedding", self._name("embedding"), inp, out, -1, weight, fan_in=False)
        self._examine(weight)
        return out

    def _matmul(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        if len(args) < 2:
            return out
        a, w = args[0], args[1]
        pw = self._param_of(w)
        if (pw is not None and w.ndim == 2 and self._is_float(out) and isinstance(a, self.torch.Tensor)
                and self._param_of(a) is None):
            # x @ W with W [in, out]: a linear layer in the transposed layout
            self._layer_row("linear", "matmul", self._name("matmul"), a, out, -1, w, fan_in=int(w.shape[0]))
            self._examine(pw)
        else:
            self._note_params(name, args, kwargs)
            self._propagate(args, out)
        return out

    # -- activations -------------------------------------------------------------------------------
    def _act(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        xin = args[0] if args else kwargs.get("input")
        if not self._is_float(xin):
            return func(*args, **kwargs)
        act = _activation_for(name, args, kwargs)
        inplace = _is_inplace(name, args, kwargs)
        o = self._origin(xin)
        prev = self.rows[o[0]] if o is not None and o[0] >= 0 else None
        merge = (prev is not None and prev.kind in _LINEAR_KINDS and not prev.paired and prev.out is xin
                 and act is not None)
        if merge:
            assert prev is not None
            pre = None if inplace else self._fview(xin, prev.axis)
            out = func(*args, **kwargs)
            a = self._fview(out, prev.axis)
            prev.samples.pop("preact_moments", None)  # act differs from preact now
            act_stats(prev.st, a, act, pre, prev.samples, self.hist_sample, per_sample=self._per_sample(out))
            prev.activation, prev.paired, prev.out = act, True, out
            self._hook(prev, "act", out)
            self._mark(out, self.rows.index(prev), prev.axis)
            self._examine(*[v for v in args[1:] if isinstance(v, self.torch.Tensor)])
            return out
        axis = self._axis_of(xin)
        row = self._new_row("activation", name.rstrip("_"), self._name(name.rstrip("_")), act, axis, xin)
        pi = self._fview(xin, axis)
        if (prev is not None and prev.out is xin and prev.axis == axis and "act_moments" in prev.samples
                and xin._version == prev.out_version):
            # the input is the previous row's output (a norm, an add): its statistics are at hand
            m = prev.samples["act_moments"]
            st = row.st
            st.preact_mean, st.preact_std, st.preact_sq_mean = m.mean, m.std, m.sq_mean
            st.preact_min, st.preact_max, st.width, st.cosine = m.min, m.max, prev.st.width, prev.st.cosine
            row.samples["preact"], row.samples["chan_max"] = prev.samples["act"], m.chan_max
        else:
            preact_stats(row.st, pi, row.samples, self.hist_sample, per_sample=self._per_sample(xin))
            row.samples.pop("preact_moments", None)
        self._hook(row, "preact", xin)
        out = func(*args, **kwargs)  # after the input was read: an in-place op may overwrite it
        if not self._is_float(out):
            return out
        a = self._fview(out, axis)
        act_stats(row.st, a, act, None if inplace else pi, row.samples, self.hist_sample,
                  per_sample=self._per_sample(out))
        if act is None:
            row.st.saturated, row.st.dead = None, None
        prelu = [v for v in args[1:] if isinstance(v, self.torch.Tensor) and id(v) in self.params]
        if prelu:
            self._gain(row, prelu[0])
        self._hook(row, "act", out)
        self._finish(row, out)
        return out

    def _gain(self, row: _Row, p: Any) -> None:
        g = to_numpy(p).astype(np.float64).reshape(-1)
        row.st.gain_mean, row.st.gain_std = float(g.mean()), float(g.std())
        row.weight = (p, None)
        self._examine(p)

    # -- output-only rows: norm, pool, add, scale --------------------------------------------------
    def _out_row(self, kind: str, op: str, name: str, inp: Any, out: Any, axis: int) -> _Row:
        row = self._new_row(kind, op, name, None, axis, inp)
        act_stats(row.st, self._fview(out, axis), None, None, row.samples, self.hist_sample,
                  per_sample=self._per_sample(out))
        self._hook(row, "act", out)
        self._finish(row, out)
        return row

    def _norm(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        inp = args[0] if args else kwargs.get("input")
        if not self._is_float(out):
            return out
        axis, wpos = _NORMS[name]
        weight = args[wpos] if len(args) > wpos else kwargs.get("weight")
        bias = kwargs.get("bias", args[wpos + 1] if len(args) > wpos + 1 and name != "rms_norm" else None)
        if out.ndim < 2:
            axis = -1
        row = self._out_row("norm", name, self._name(name), inp, out, axis)
        if isinstance(weight, self.torch.Tensor):
            self._gain(row, weight)
        self._examine(bias)
        return out

    def _pool(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        inp = args[0] if args else kwargs.get("input")
        t = out[0] if isinstance(out, tuple) else out
        if self._is_float(t) and t.ndim >= 2:
            op = name.lstrip("_").replace("_with_indices", "")
            self._out_row("pool", op, self._name(op), inp, t, 1)
        return out

    def _mean(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        inp = args[0] if args else kwargs.get("input")
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if (self._is_float(out) and isinstance(inp, self.torch.Tensor) and inp.ndim >= 3 and dim is not None
                and self._origin(inp) is not None):
            f = self._axis_of(inp) % inp.ndim
            dims = {d % inp.ndim for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
            if dims and 0 not in dims and f not in dims and out.ndim >= 2:
                # a mean over positions or tokens: global average pooling (features kept)
                axis = 1 if (f == 1 and out.ndim > 2 and out.shape[1] == inp.shape[1]) else -1
                self._out_row("pool", "mean", self._name("mean"), inp, out, axis)
                return out
        self._propagate(args, out)
        return out

    def _add(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a = args[0] if args else kwargs.get("input")
        b = args[1] if len(args) > 1 else kwargs.get("other")
        if name == "__radd__":
            a, b = b, a
        both = self._is_float(a) and self._is_float(b)
        pa, pb = (self._param_of(a), self._param_of(b)) if both else (None, None)
        with_param = (pa is not None) != (pb is not None)
        residual = both and a.shape == b.shape and a.ndim >= 2 and not with_param
        if not (residual or (with_param and max(a.ndim, b.ndim) >= 2)):
            out = func(*args, **kwargs)
            self._note_params(name, args, kwargs)
            self._propagate(args if a is args[0] else (a,), out)
            if isinstance(out, self.torch.Tensor) and self._origin(out) is None and isinstance(b, self.torch.Tensor):
                self._propagate((b,), out)
            return out
        # the skip is the operand produced first, the branch the one produced last
        oa, ob = self._origin(a), self._origin(b)
        ra = oa[0] if oa is not None else -2
        rb = ob[0] if ob is not None else -2
        skip, branch = (a, b) if ra <= rb else (b, a)
        if self._param_of(skip) is not None:
            skip, branch = branch, skip
        ms = moments(self._fview(skip, self._axis_of(skip)))
        axis = self._axis_of(branch if self._param_of(branch) is None else skip)
        mb = moments(self._fview(branch, axis)) if branch.shape == skip.shape else moments(to_numpy(branch).reshape(1, -1))
        out = func(*args, **kwargs)  # after reading the operands: x += y writes x
        row = self._out_row("add", "add", self._name("add"), skip, out, axis)
        row.st.input_seen = oa is not None and ob is not None if not with_param else row.st.input_seen
        row.st.skip_std, row.st.branch_std, row.st.branch_var = ms.std, mb.std, mb.chan_var
        if with_param:
            p = pa if pa is not None else pb
            self._gain(row, p)
            row.weight = (p, None)
        return out

    def _mul(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        a = args[0] if args else kwargs.get("input")
        b = args[1] if len(args) > 1 else kwargs.get("other")
        out = func(*args, **kwargs)
        qa, qb = self._param_of(a), self._param_of(b)
        if (qa is None) != (qb is None) and self._is_float(out) and out.ndim >= 2:
            p, x = (qa, b) if qa is not None else (qb, a)
            if isinstance(x, self.torch.Tensor) and x.shape == out.shape:
                row = self._out_row("scale", "mul", self._name("mul"), x, out, self._axis_of(x))
                self._gain(row, p)
                return out
        self._note_params(name, args, kwargs)
        self._propagate(args, out)
        return out

    def _dropout(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.mode == "init":
            x = args[0] if args else kwargs.get("input")
            if isinstance(x, self.torch.Tensor):
                return x
        out = func(*args, **kwargs)
        self._propagate(args, out)
        return out

    # -- attention ---------------------------------------------------------------------------------
    def _logits_row(self, name: str, logits: Any, probs: Any, inp: Any, masked: bool = True) -> _Row:
        """Row of the attention logits [..., queries, keys] (masked entries −inf) and their softmax:
        moments of the finite logits, and the mean over queries of the entropy −Σ p log p =
        logsumexp(l) − Σ p·l (over the finite logits)."""
        # NumPy on a CPU copy: a few passes over at most LOGITS_SAMPLE values, no thread-pool round trips
        lg = to_numpy(logits).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.isfinite(lg) if masked else None
            z = np.where(finite, lg, 0.0) if masked else lg
            n = int(finite.sum()) if masked else lg.size
            s1, s2 = float(z.sum()), float(np.dot(z.reshape(-1), z.reshape(-1)))
            lo = float(np.where(finite, lg, np.inf).min()) if masked else float(lg.min())
            hi = float(np.where(finite, lg, -np.inf).max()) if masked else float(lg.max())
            mx = np.max(np.where(finite, lg, -np.inf) if masked else lg, axis=-1, keepdims=True)
            lse = mx + np.log(np.sum(np.exp(lg - mx), axis=-1, keepdims=True))
            p = np.exp(lg - lse) if probs is None else to_numpy(probs).astype(np.float64)
            ent = lse[..., 0] - np.sum(p * z, axis=-1)  # logsumexp(l) − Σ p·l = −Σ p log p
            ent = ent[np.isfinite(ent)]
        flat = lg.reshape(-1)
        sample = flat[np.isfinite(flat)] if masked else flat
        sample = subsample(sample, self.hist_sample)
        row = self._new_row("attention_logits", "softmax", name, None, -1, inp)
        st = row.st
        if n:
            mean = s1 / n
            var = max(s2 / n - mean * mean, 0.0)
            st.mean, st.std, st.sq_mean, st.chan_var, st.min, st.max = mean, math.sqrt(var), mean * mean, var, lo, hi
            row.samples["act"] = sample
        st.width = int(lg.shape[-1])
        st.logit_std = st.std
        st.softmax_entropy = float(ent.mean()) if ent.size else math.nan
        row.out = probs if probs is not None else logits
        self.rows.append(row)
        return row

    def _attention_stats(self, name: str, q: Any, k: Any, mask: Any, is_causal: bool, scale: float | None,
                         inp: Any) -> None:
        """The logits row of an attention whose logits the forward does not materialise (SDPA):
        q·kᵀ·scale (+ mask) recomputed without gradient on the first samples of the batch, at most
        ``LOGITS_SAMPLE`` (262 144) logits (the samples are i.i.d., so this estimates the batch's
        values; the small batches of the tests are measured whole)."""
        torch = self.torch
        with torch.no_grad():
            per = max(1, q[:1].numel() // q.shape[-1] * k.shape[-2])
            kb = max(1, min(int(q.shape[0]), LOGITS_SAMPLE // per))
            qq, kk = q[:kb].detach(), k[:kb].detach()
            if kk.ndim == qq.ndim and kk.ndim >= 3 and kk.shape[-3] != qq.shape[-3] and qq.shape[-3] % kk.shape[-3] == 0:
                kk = kk.repeat_interleave(qq.shape[-3] // kk.shape[-3], dim=-3)  # grouped-query attention
            s = (1.0 / math.sqrt(qq.shape[-1])) if scale is None else float(scale)
            logits = (qq @ kk.transpose(-2, -1)) * s
            masked = mask is not None or is_causal
            if is_causal:
                L, S = logits.shape[-2], logits.shape[-1]
                causal = torch.ones(L, S, dtype=torch.bool, device=logits.device).tril()
                logits = logits.masked_fill(~causal, float("-inf"))
            if mask is not None:
                m = mask if mask.ndim < logits.ndim or mask.shape[0] == 1 else mask[:kb]
                if m.dtype == torch.bool:
                    logits = logits.masked_fill(~m, float("-inf"))
                else:
                    logits = logits + m
        self._logits_row(name, logits, None, inp, masked=masked)

    def _softmax(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        x = args[0] if args else kwargs.get("input")
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if self._is_float(x) and x.ndim >= 3 and dim is not None and dim % x.ndim == x.ndim - 1:
            # a softmax over the last axis of a [batch, (heads,) queries, keys] tensor: attention
            self._logits_row(self._name("logits", own=False), x, out, x)
        else:
            self._propagate(args, out)
        return out

    def _sdpa(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        names = ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"]
        bound = dict(zip(names, args))
        bound.update(kwargs)
        if self.mode != "train" and bound.get("dropout_p", 0.0):
            bound["dropout_p"] = 0.0
        out = func(**bound)
        q, k = bound["query"], bound["key"]
        if not (self._is_float(out) and out.ndim >= 3):
            return out
        self._attention_stats(self._name("logits", own=False), q, k, bound.get("attn_mask"),
                              bool(bound.get("is_causal")), bound.get("scale"), q)
        # the attention-weighted values [batch, heads, queries, head dim]: units are (head, dim)
        ctx = out
        name_ctx = self._name("context", own=False)
        row = self._new_row("attention", "scaled_dot_product_attention", name_ctx, None, -1, q)
        view = ctx.transpose(-3, -2) if ctx.ndim == 4 else ctx
        flat = to_numpy(view).reshape(-1, (view.shape[-2] * view.shape[-1]) if ctx.ndim == 4 else view.shape[-1])
        act_stats(row.st, flat, None, None, row.samples, self.hist_sample, per_sample=self._per_sample(ctx))
        if self.backward and ctx.requires_grad:
            def fn(g: Any, row: _Row = row) -> None:
                if g is None:
                    return
                gv = g.transpose(-3, -2) if g.ndim == 4 else g
                row.grads["act"] = to_numpy(gv).reshape(flat.shape)
            ctx.register_hook(fn)
        row.out = ctx
        self.rows.append(row)
        return out

    def _mha(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``F.multi_head_attention_forward`` step by step (q/k/v projections, logits, softmax,
        weighted values, output projection), each step a row; falls back to torch's own function
        (and lists the module as unexamined) for bias_k/bias_v, add_zero_attn, static k/v or an
        unbatched input."""
        import inspect

        torch = self.torch
        F = torch.nn.functional
        sig = inspect.signature(F.multi_head_attention_forward)
        ba = sig.bind(*args, **kwargs)
        ba.apply_defaults()
        a = ba.arguments
        query, key, value = a["query"], a["key"], a["value"]
        if (a["bias_k"] is not None or a["bias_v"] is not None or a["add_zero_attn"] or a["static_k"] is not None
                or a["static_v"] is not None or query.dim() != 3):
            self.notes.append(f"{self.stack[-1][0] if self.stack else 'attention'}: multi-head attention with "
                              "bias_k/bias_v, add_zero_attn, static keys/values or an unbatched input is run as one "
                              "operation (no rows for its projections)")
            self._note_params(name, args, kwargs)
            return func(*args, **kwargs)
        L, B, E = query.shape
        h = int(a["num_heads"])
        d = E // h
        if a["use_separate_proj_weight"]:
            ws = (a["q_proj_weight"], a["k_proj_weight"], a["v_proj_weight"])
            wslices: list[Any] = [None, None, None]
            wparams = list(ws)
        else:
            w = a["in_proj_weight"]
            wslices = [slice(0, E), slice(E, 2 * E), slice(2 * E, 3 * E)]
            ws = tuple(w[sl] for sl in wslices)
            wparams = [w, w, w]
        b = a["in_proj_bias"]
        bs = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        proj = []
        for label, x, wi, bi, wp, sl in zip(("q_proj", "k_proj", "v_proj"), (query, key, value), ws, bs, wparams,
                                            wslices):
            t = F.linear(x, wi, bi)
            self._layer_row("linear", "linear", self._name(label, own=False), x, t, -1, wp, wslice=sl,
                            fan_in=int(x.shape[-1]))
            proj.append(t)
        self._examine(*wparams, b)
        q, k, v = proj
        S = k.shape[0]
        kpm = F._canonical_mask(mask=a["key_padding_mask"], mask_name="key_padding_mask",
                                other_type=F._none_or_dtype(a["attn_mask"]), other_name="attn_mask",
                                target_type=q.dtype)
        am = F._canonical_mask(mask=a["attn_mask"], mask_name="attn_mask", other_type=None, other_name="",
                               target_type=q.dtype, check_other=False)
        if am is not None and am.dim() == 2:
            am = am.unsqueeze(0)
        if kpm is not None:
            kpm = kpm.view(B, 1, 1, S).expand(-1, h, -1, -1).reshape(B * h, 1, S)
            am = kpm if am is None else am + kpm
        qh = q.reshape(L, B * h, d).transpose(0, 1)
        kh = k.reshape(S, B * h, d).transpose(0, 1)
        vh = v.reshape(S, B * h, d).transpose(0, 1)
        p_drop = float(a["dropout_p"]) if (a["training"] and self.mode == "train") else 0.0
        lname = self._name("logits", own=False)
        probs = None
        if a["need_weights"]:  # torch's explicit path: the logits and weights are materialised
            qs = qh * math.sqrt(1.0 / float(d))
            logits = torch.baddbmm(am, qs, kh.transpose(-2, -1)) if am is not None else torch.bmm(qs, kh.transpose(-2, -1))
            probs = torch.softmax(logits, dim=-1)
            kb = max(1, min(B, LOGITS_SAMPLE // (h * L * S)))
            self._logits_row(lname, logits.view(B, h, L, S)[:kb], probs.view(B, h, L, S)[:kb], q,
                             masked=am is not None)
            pd = F.dropout(probs, p=p_drop) if p_drop > 0.0 else probs
            ctx = torch.bmm(pd, vh).transpose(0, 1).contiguous().view(L * B, E)
        else:  # torch's fused path (scaled_dot_product_attention), as nn.MultiheadAttention runs it
            m4 = None
            if am is not None:
                m4 = am.unsqueeze(0) if (am.size(0) == 1 and am.dim() == 3) else am.view(B, h, -1, S)
            q4, k4, v4 = qh.view(B, h, L, d), kh.view(B, h, S, d), vh.view(B, h, S, d)
            self._attention_stats(lname, q4, k4, m4, False, None, q)
            o4 = F.scaled_dot_product_attention(q4, k4, v4, m4, p_drop, False)
            ctx = o4.permute(2, 0, 1, 3).contiguous().view(B * L, E)
        row = self._new_row("attention", "multi_head_attention", self._name("context", own=False), None, -1, q)
        act_stats(row.st, to_numpy(ctx), None, None, row.samples, self.hist_sample,
                  per_sample=self._per_sample(ctx.view(L, B, E)))
        self._hook(row, "act", ctx)
        self._finish(row, ctx)
        ow, ob = a["out_proj_weight"], a["out_proj_bias"]
        out = F.linear(ctx, ow, ob)
        self._layer_row("linear", "linear", self._name("out_proj", own=False), ctx, out, -1, ow)
        self._examine(ow, ob)
        out = out.view(L, B, E)
        self._mark(out, len(self.rows) - 1, -1)
        if probs is None:
            return out, None
        weights = probs.view(B, h, L, S)
        return out, (weights.mean(dim=1) if a["average_attn_weights"] else weights)

    # -- recurrent layers --------------------------------------------------------------------------
    def _rnn(self, func: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        torch = self.torch
        if kwargs or len(args) != 9 or not isinstance(args[3], bool):  # a packed sequence: one op
            out = func(*args, **kwargs)
            params = next((v for v in args if isinstance(v, (list, tuple)) and v and
                           all(isinstance(w, torch.Tensor) for w in v) and id(v[0]) in self.params), [])
            data = out[0]
            if self._is_float(data):
                self._layer_row("rnn", name, self._name(name), args[0], data, -1, params[0] if params else None)
                self._examine(*params)
            return out
        inp, hx, params, has_b, nl, p, train, bidir, bf = args
        nl = int(nl)
        D = 2 if bidir else 1
        per = len(params) // nl
        time_axis = 1 if bf else 0
        is_lstm = name == "lstm"
        x = inp
        hs, cs = [], []
        res: Any = None
        for layer in range(nl):
            w = list(params[layer * per:(layer + 1) * per])
            if is_lstm:
                hl: Any = (hx[0][layer * D:(layer + 1) * D], hx[1][layer * D:(layer + 1) * D])
            else:
                hl = hx[layer * D:(layer + 1) * D]
            res = func(x, hl, w, has_b, 1, 0.0, train, bidir, bf)
            o = res[0]
            label = f"l{layer}" if nl > 1 else name
            row = self._layer_row("rnn", name, self._name(label, own=nl == 1), x, o, -1, w[0],
                                  fan_in=int(w[0].shape[1]))
            row.time_axis = time_axis
            self._examine(*w)
            hs.append(res[1])
            if is_lstm:
                cs.append(res[2])
            x = o
            if layer < nl - 1 and float(p) > 0 and train and self.mode == "train":
                x = torch.nn.functional.dropout(o, float(p), True)
        if nl == 1:
            return res
        if is_lstm:
            return res[0], torch.cat(hs, 0), torch.cat(cs, 0)
        return res[0], torch.cat(hs, 0)

    # -- what went unexamined ----------------------------------------------------------------------
    def unexamined(self) -> list[str]:
        owners: dict[str, list[tuple[str, int]]] = {}
        for full, pid in ((n, id(p)) for n, p in self.model.named_parameters(remove_duplicate=True)):
            if pid in self.examined:
                continue
            mod, _, pname = full.rpartition(".")
            owners.setdefault(mod, []).append((pname, pid))
        mods = dict(self.model.named_modules())
        out = []
        for mod, plist in owners.items():
            typ = type(mods.get(mod, self.model)).__name__
            ops = sorted({o for _, pid in plist for o in self.used_by.get(pid, set())})
            why = (f"used by {', '.join(ops)}, which the probe does not measure" if ops
                   else "not used by any measured operation in the forward pass")
            out.append(f"{mod or '(model)'} ({typ}): parameter{'s' if len(plist) > 1 else ''} "
                       f"{', '.join(n for n, _ in plist)} — {why}")
        return out


def finish_rows(rows: list[_Row], wg: dict[int, Any] | None, batch: int, hist_sample: int | None,
                scale: float = 1.0, weights: dict[int, Any] | None = None) -> None:
    """The backward statistics of captured rows (``wg``: parameter id → its gradient Σ_b ∂ℓ_b/∂p;
    None: forward only), and the probe's clean-up of fan-in fields of gain rows. ``scale``
    multiplies the captured deltas and weight gradients (the watch: a batch-mean loss's gradient
    times the batch size is the per-sample sum the probe uses); ``weights`` maps a parameter id to
    the value to report (the watch: the weight before the optimizer step)."""
    for r in rows:
        if wg is not None:
            has_pre = r.kind in _LINEAR_KINDS
            gpre = r.grads.get("preact") if has_pre else r.grads.get("act", r.grads.get("preact"))
            gact = r.grads.get("act", gpre if has_pre and not r.paired else None)
            if r.kind == "activation":
                gpre, gact = r.grads.get("preact"), r.grads.get("act")
            gw = None
            wnp = None
            if r.weight is not None:
                p, sl = r.weight
                full = wg.get(id(p))
                if full is not None:
                    pv = p if weights is None else weights.get(id(p), p)
                    gw = to_numpy(full if sl is None else full[sl])
                    wnp = to_numpy(pv if sl is None else pv[sl])
            if scale != 1.0:
                gw = None if gw is None else gw * scale
                sg = {id(g): g * scale for g in (gpre, gact) if g is not None}
                gpre = None if gpre is None else sg[id(gpre)]
                gact = None if gact is None else sg[id(gact)]
            backward_stats(r.st, grad_preact=gpre, grad_act=gact, grad_weight=gw, weight=wnp, samples=r.samples,
                           batch=batch, hist_sample=hist_sample)
            if r.grad_time is not None:
                first, last = r.grad_time
                r.st.grad_time_ratio = first / last if last > 0 else (math.inf if first > 0 else math.nan)
        if r.kind in ("norm", "scale", "add"):  # gains and embeddings are not fan-in weights
            r.st.weight_std, r.st.fan_in, r.st.fan_out = None, None, None
            r.st.weight_init = r.st.weight_kurtosis = None
            r.st.grad_weight_std = r.st.grad_weight_std if r.weight is not None else None


def _set_mode(model: Any, mode: str) -> None:
    if mode == "eval":
        model.eval()
    else:
        model.train()


def _flatten_outputs(out: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(path, tensor) of every tensor in a nested tuple/list/dict output; paths "0", "1.h", "logits"."""
    import torch

    if isinstance(out, torch.Tensor):
        return [(prefix, out)]
    items: list[tuple[str, Any]] = []
    if isinstance(out, dict):
        for k, v in out.items():
            items += _flatten_outputs(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(out, (tuple, list)):
        for i, v in enumerate(out):
            items += _flatten_outputs(v, f"{prefix}.{i}" if prefix else str(i))
    elif hasattr(out, "__dataclass_fields__"):
        for k in out.__dataclass_fields__:
            items += _flatten_outputs(getattr(out, k), f"{prefix}.{k}" if prefix else k)
    return items


def _select_outputs(out: Any, output: str | int | None, backward: bool) -> list[tuple[str, Any]]:
    flat = _flatten_outputs(out)
    floats = [(p, t) for p, t in flat if t.is_floating_point()]
    if output is not None:
        key = str(output)
        chosen = [(p, t) for p, t in floats if p == key]
        if not chosen:
            bad_value("output", "the path of one floating output of the model: "
                      + (", ".join(repr(p or "(the output)") for p, _ in floats) or "(none)"), output)
        return chosen
    if not floats:
        raise TypeError(f"The 'model' must return at least one floating tensor (nested in tuples/lists/dicts); "
                        f"it returned {type(out).__name__}.")
    if backward:
        with_grad = [(p, t) for p, t in floats if t.requires_grad]
        if with_grad:
            return with_grad
    return floats


def probe_torch(
    model: Any,
    x: Any,
    *,
    y: Any,
    loss: str,
    backward: bool,
    theory: bool,
    rng: np.random.Generator,
    bins: int,
    hist_sample: int | None = HIST_SAMPLE,
    mode: str = "init",
    output: str | int | None = None,
) -> ProbeResult:
    """Statistics of every operation of ``model`` on the batch ``x`` (see :func:`initlab.probe`)."""
    import torch

    from initlab.diagnostics._torch_state import prepare_inputs, preserved_state

    args, kwargs, batch = prepare_inputs(model, x, name="x")
    cap = _Capture(model, mode, backward, hist_sample, batch)
    for t in (*args, *kwargs.values()):
        cap.mark_input(t)
    wg: dict[int, Any] = {}
    with preserved_state(model, parameters=True):
        _set_mode(model, mode)
        handles = cap.install_hooks()
        try:
            with torch.enable_grad() if backward else torch.no_grad():
                with cap.mode_object():
                    try:
                        out = model(*args, **kwargs)
                    except Exception as e:
                        if getattr(e, "_initlab_probe", False):
                            raise
                        shapes = [tuple(t.shape) for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
                        first = (str(e).strip().splitlines() or [""])[0]
                        raise ModelInputError(
                            f"The 'x' argument was rejected by the model (inputs of shape "
                            f"{', '.join(str(s) for s in shapes)}): {type(e).__name__}: {first}", shapes) from e
        finally:
            for hd in handles:
                hd.remove()
        outs = _select_outputs(out, output, backward)
        if y is not None and len(outs) > 1:
            raise ValueError(f"The 'y' argument gives targets for one output, but the model returns "
                             f"{len(outs)} floating outputs ({', '.join(p for p, _ in outs)}); name one with 'output'.")
        if isinstance(y, torch.Tensor):  # (on any device, requiring grad or not, any float dtype: as x)
            y = to_numpy(y)
        if backward:
            outs = [(p, t) for p, t in outs if t.requires_grad]
            if not outs:
                raise ValueError("The 'model' output does not require grad (frozen parameters?); use backward=False.")
            grads_out = []
            for _, t in outs:
                g = loss_gradient(to_numpy(t), y, loss, rng)
                grads_out.append(torch.from_numpy(np.ascontiguousarray(g)).to(device=t.device, dtype=t.dtype))
            params = [p for p in model.parameters() if p.requires_grad]
            if params:
                wgrads = torch.autograd.grad([t for _, t in outs], params, grad_outputs=grads_out, allow_unused=True)
                wg = {id(p): gw for p, gw in zip(params, wgrads)}
    rows = cap.rows
    layers = [r.st for r in rows]
    if not layers:
        raise ValueError(
            f"The 'model' argument ran no operation the probe measures (linear, conv, embedding, RNN, "
            f"activation, norm, pooling, residual add, attention); got {type(model).__name__}."
        )
    finish_rows(rows, wg if backward else None, batch, hist_sample)
    finish_histograms(layers, [r.samples for r in rows], [r.activation for r in rows], bins)
    first_in = next(t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor))
    if first_in.is_floating_point():
        xin = to_numpy(first_in)
        mi = moments(xin)
        in_mean, in_std, in_cos = mi.mean, mi.std, mean_pairwise_cosine(xin)
    else:  # token ids: the input statistics are those of the first row (the embedding)
        in_mean, in_std, in_cos = layers[0].mean, layers[0].std, layers[0].cosine
        mi = None
    result = ProbeResult(
        layers=layers, input_mean=in_mean, input_std=in_std, input_cosine=in_cos,
        loss=loss if backward else None, backward=backward, theory=False, notes=cap.notes, model="torch",
        batch=batch, mode=mode, unexamined=cap.unexamined(),
    )
    if theory:
        plain = _plain_stack(model, rows, first_in)
        if plain is None or mi is None:
            cap.notes.append("theory column only for plain stacks of Linear + activation modules; not computed")
        else:
            sizes, acts, inits, binits = plain
            result.theory = add_theory(layers, sizes, acts, inits, binits, mi.std ** 2 + mi.mean ** 2, cap.notes)
    return result


def _plain_stack(model: Any, rows: list[_Row], xt: Any) -> tuple[list[int], list[Any], list[str], list[str]] | None:
    """(sizes, activations, init specs, bias specs) if the rows form Linear → act → … from the input."""
    import torch.nn as nn

    mods = dict(model.named_modules())
    linears = []
    for r in rows:
        m = mods.get(r.st.name)
        if r.kind != "linear" or r.st.op != "linear" or not isinstance(m, nn.Linear) or not r.st.input_seen:
            return None
        linears.append(m)
    if not linears or xt.ndim != 2:
        return None
    sizes = [linears[0].in_features]
    acts, inits, binits = [], [], []
    for i, (r, m) in enumerate(zip(rows, linears)):
        if m.in_features != sizes[-1]:
            return None
        sizes.append(m.out_features)
        acts.append(r.activation)
        w = to_numpy(m.weight).astype(np.float64)
        inits.append(empirical_spec(float(np.sqrt(np.mean(w * w)))))
        if m.bias is None:
            binits.append("zeros")
        else:
            b = to_numpy(m.bias).astype(np.float64)
            binits.append(empirical_spec(float(np.sqrt(np.mean(b * b)))))
    return sizes, acts, inits, binits
