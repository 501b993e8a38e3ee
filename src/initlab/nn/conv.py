"""Convolutions and pooling, channels first (torch's layout ``[batch, C, L]`` / ``[batch, C, H, W]``).

A convolution is a matrix product on patches (im2col): the input, padded with zeros or circularly
in a buffer the layer keeps, is copied into a patch matrix by one strided copy (stride and dilation
in the view's strides) and multiplied by the kernel on BLAS, one GEMM over the whole batch (per
group). The patches are laid out channels first ``[C·K, batch·P]`` or, when that gives longer
contiguous runs, channels last ``[batch·P, K·C]`` (see ``_ConvNd``). Backward: ∂L/∂W = g_zᵀ·cols,
∂L/∂cols = g_z·W, added back onto the input (col2im) with one strided add per kernel offset;
circular padding folds the wrapped border back. Max pooling is the running maximum of one strided
view per window offset; its gradient goes to each window's first maximum (torch's rule).

Mean field (Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of CNNs"): every output
is a sum over fan_in = C/groups·K taps, so with circular padding q = σ_w² E[x²] + σ_b² exactly as a
dense layer with σ_w² = fan_in·Var(W). With zero padding, border outputs see fewer taps; the
prediction scales σ_w² by the average fraction of in-bounds taps ρ (exact for the mean of q over
positions; the nonlinearity after it is evaluated at that mean q).

>>> import numpy as np
>>> conv = Conv1d(1, 1, 3, padding=1, activation="linear", weight=np.ones((1, 1, 3)), bias=np.zeros(1))
>>> conv.forward(np.array([[[1.0, 2.0, 3.0]]]))[0].tolist()
[[[3.0, 6.0, 5.0]]]
"""

from __future__ import annotations

import math
import threading
from typing import Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from initlab import activations as _activations
from initlab._validation import bad_value, check_choice, check_int
from initlab.nn.layers import Layer, _ActivationMixin, _WeightBiasMixin, spec_moments
from initlab.theory._predict import LayerMF, Signal, activation_record

__all__ = ["Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool"]

Array = np.ndarray
PADDING_MODES = ("zeros", "circular")
#: a convolution keeps its buffers for an input shape only up to this size (bytes)
_KEEP_BYTES = 32 * 2**20


def _tuple(name: str, v: Any, d: int, low: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        if len(v) != d:
            bad_value(name, f"an int or {d} ints", v)
        return tuple(check_int(name, x, low=low) for x in v)
    return (check_int(name, v, low=low),) * d


def _windows(xp: Array, out: tuple[int, ...], k: tuple[int, ...], stride: tuple[int, ...], dil: tuple[int, ...]) -> Array:
    """A read-only view ``[N, C, *out, *k]`` of the padded input's windows."""
    d = len(k)
    s = xp.strides
    shape = xp.shape[:2] + tuple(out) + tuple(k)
    strides = s[:2] + tuple(s[2 + i] * stride[i] for i in range(d)) + tuple(s[2 + i] * dil[i] for i in range(d))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


class _ConvNd(_WeightBiasMixin, _ActivationMixin, Layer):
    d = 2
    kind = "conv"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, *, stride: Any = 1, padding: Any = 0,
                 padding_mode: str = "zeros", dilation: Any = 1, groups: int = 1,
                 activation: str | _activations.Activation = "linear", init: Any = "he_normal",
                 bias_init: Any = "zeros", bias: Any = True, weight: Array | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__(dtype)
        d = self.d
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.out_channels = check_int("out_channels", out_channels, low=1)
        self.groups = check_int("groups", groups, low=1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            bad_value("groups", f"a divisor of in_channels ({in_channels}) and out_channels ({out_channels})", groups)
        self.kernel_size = _tuple("kernel_size", kernel_size, d, 1)
        self.stride = _tuple("stride", stride, d, 1)
        self.padding = _tuple("padding", padding, d, 0)
        self.dilation = _tuple("dilation", dilation, d, 1)
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
        self.activation = _activations.get(activation)
        wshape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self._add("weight", wshape, init, weight)
        self.has_bias = not (bias is False or bias is None)
        if self.has_bias:
            self._add("bias", (self.out_channels,), bias_init, None if isinstance(bias, bool) else bias)

    # -- parameters (weight, bias, init_spec, bias_init_spec: _WeightBiasMixin) ----------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.params[0].shape

    @property
    def taps(self) -> int:
        return int(np.prod(self.kernel_size))

    def fan_in(self) -> int:
        return self.in_channels // self.groups * self.taps

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        d = self.d
        if len(in_shape) != d + 1 or in_shape[0] != self.in_channels:
            want = "[C, L]" if d == 1 else "[C, H, W]"
            raise ValueError(f"{type(self).__name__} needs inputs of shape {want} with C = {self.in_channels}; "
                             f"got {list(in_shape)}.")
        out = []
        for i in range(d):
            n = in_shape[1 + i] + 2 * self.padding[i] - self.dilation[i] * (self.kernel_size[i] - 1) - 1
            if n < 0:
                raise ValueError(f"{type(self).__name__}: the input size {in_shape[1 + i]} is smaller than the "
                                 f"dilated kernel {self.dilation[i] * (self.kernel_size[i] - 1) + 1} (padding {self.padding[i]}).")
            if self.padding_mode == "circular" and self.padding[i] > in_shape[1 + i]:
                bad_value("padding", f"at most the input size {in_shape[1 + i]} for circular padding", self.padding[i])
            out.append(n // self.stride[i] + 1)
        return (self.out_channels, *out)

    # -- forward / backward --------------------------------------------------------------------
    # Two layouts for the patch matrix, chosen by which gives the longer contiguous runs to copy
    # (both compute exactly the output positions, one GEMM over the whole batch; on small images the
    # copies, not the GEMM, decide the speed):
    #
    # * channels first (any groups): the padded batch sits in a buffer [C, N, *padded]; the patches
    #   are one strided view ``[C, *k, N, *out]`` copied in one call (runs: one output row),
    #   ``z = W [O, C·K] @ cols`` (one GEMM per group); backward scatters ∂L/∂cols = Wᵀ·g_z back with
    #   one strided add per kernel offset (col2im);
    # * channels last (groups = 1, when C·kw is longer than an output row): the padded batch sits in
    #   a buffer [N, *padded, C]; the patches are one strided view ``[N, *out, *k, C]`` whose runs
    #   are C·kw long (a whole kernel row of every channel), ``z = cols @ Wᵀ`` with W reordered
    #   ``[O, *k, C]``; backward computes ∂L/∂cols tap by tap as K small products g_z·W_t
    #   (``[N·P, C]`` each, contiguous) and adds each onto its shifted window of the input gradient.
    #
    # The padded buffers, the patch view and the col2im windows are made once per input shape
    # (``_ConvPlan``) and kept by the layer (per thread; their zero border stays written); they never
    # leave it: the cache holds the patch matrix, a fresh array, and every result is a fresh array.

    def _plans(self) -> dict[Any, Any]:
        plans = self.__dict__.get("_plan_cache")
        if plans is None:
            plans = self.__dict__["_plan_cache"] = {}
        return plans

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_plan_cache", None)  # scratch buffers and views, not state
        return state

    def _channels_last(self, C: int, out_sp: tuple[int, ...]) -> bool:
        """Whether the channels-last patch layout gives longer copy runs (groups = 1 only)."""
        if self.groups != 1:
            return False
        run = C * self.kernel_size[-1] if self.dilation[-1] == 1 else C
        return run > out_sp[-1]

    def _plan(self, kind: str, in_shape: tuple[int, ...], dtype: Any) -> "_ConvPlan":
        """The layer's buffers and views for inputs of ``in_shape`` (per thread and dtype), made once."""
        plans = self._plans()
        key = (threading.get_ident(), kind, in_shape, np.dtype(dtype).str)
        plan = plans.get(key)
        if plan is None:
            plan = _ConvPlan(self, kind, in_shape, np.dtype(dtype))
            if plan.nbytes <= _KEEP_BYTES:  # a big one-off batch (an evaluation) is not kept
                if len(plans) >= 16:  # many batch sizes or input shapes: start over rather than grow
                    plans.clear()
                plans[key] = plan
        return plan

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        """im2col (one strided copy) and one GEMM over the whole batch (see the comment above)."""
        pl = self._plan("f", x.shape, x.dtype)
        N, O, P = x.shape[0], self.out_channels, pl.P
        pl.x_dst[...] = np.moveaxis(x, 1, -1) if pl.last else x.swapaxes(0, 1)
        for dst, src in pl.wraps:
            dst[...] = src
        cols = np.empty(pl.cols_shape, dtype=x.dtype)
        np.copyto(cols, pl.patches)
        W = self.arrays[0]
        z = np.empty((N, O, *pl.out_sp), dtype=np.result_type(x.dtype, W.dtype))
        z3 = z.reshape(N, O, P)
        if pl.last:
            cols2 = cols.reshape(N * P, -1)
            zt = cols2 @ np.moveaxis(W, 1, -1).reshape(O, -1).T  # [N·P, O]
            zt3 = zt.reshape(N, P, O).swapaxes(1, 2)
        else:
            cols2 = cols.reshape(-1, N * P)
            zt = self._gemm(cols2)  # [O, N·P]
            zt3 = zt.reshape(O, N, P).swapaxes(0, 1)
        if self.has_bias:
            np.add(zt3, self.arrays[1][None, :, None], out=z3)
        else:
            z3[...] = zt3
        a = self._act_forward(z)
        return a, (x.shape, cols2, z, a, pl.out_sp)

    def _act_backward(self, g: Array, z: Array, a: Array) -> Array:
        if self.activation.name == "relu":  # g·[a > 0] in one pass (the same values as g·φ′)
            return np.multiply(g, a > 0)
        return super()._act_backward(g, z, a)

    def _gemm(self, cols2: Array) -> Array:
        """``W [O, C·K] @ cols [C·K, L]`` (one GEMM per group): ``[O, L]``."""
        G, O = self.groups, self.out_channels
        W = self.arrays[0]
        if G == 1:
            return W.reshape(O, -1) @ cols2
        L = cols2.shape[1]
        return np.matmul(W.reshape(G, O // G, -1), cols2.reshape(G, -1, L)).reshape(O, L)

    def _window(self, off: tuple[int, ...], out_sp: tuple[int, ...]) -> tuple[slice, ...]:
        """The (padded) input positions kernel offset ``off`` reads for every output position."""
        return tuple(
            slice(off[i] * self.dilation[i], off[i] * self.dilation[i] + self.stride[i] * (out_sp[i] - 1) + 1, self.stride[i])
            for i in range(self.d)
        )

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        """∂L/∂W = g_z·cols, ∂L/∂b = Σ g_z, ∂L/∂cols = g_z·W added back onto the input (col2im)."""
        in_shape, cols2, z, a, out_sp = cache
        G, C, O = self.groups, self.in_channels, self.out_channels
        gz = g if from_preact else self._act_backward(g, z, a)
        pl = self._plan("b", in_shape, gz.dtype)
        k = self.kernel_size
        N, P, K = in_shape[0], pl.P, math.prod(k)
        W = self.arrays[0]
        gw = out[0] if out is not None else np.empty_like(W)
        grads = [gw]
        gb = None
        if self.has_bias:
            gb = out[1] if out is not None else np.empty(O, dtype=gz.dtype)
            grads.append(gb)
        if pl.last:
            gzt = np.empty((N * P, O), dtype=gz.dtype)  # g_z channels last
            gzt.reshape(N, P, O)[...] = gz.reshape(N, O, P).swapaxes(1, 2)
            # ∂L/∂W in the patch order [O, *k, C], moved back to W's [O, C, *k]
            np.copyto(gw, np.moveaxis((gzt.T @ cols2).reshape(O, *k, C), -1, 1))
            if gb is not None:
                np.matmul(pl.ones, gzt, out=gb)
            if not need_input_grad:
                return None, grads
            Wt = np.ascontiguousarray(W.reshape(O, C, K).transpose(2, 0, 1))  # [K, O, C]
            gcols = np.matmul(gzt, Wt)  # [K, N·P, C]: the patch gradient tap by tap
            pl.gx_buf[...] = 0
            for t, win in enumerate(pl.gx_windows):
                win += gcols[t].reshape(pl.tap_shape)
        else:
            gz2 = np.empty((O, N * P), dtype=gz.dtype)
            gz2.reshape(O, N, P)[...] = gz.reshape(N, O, P).swapaxes(0, 1)
            if G == 1:
                np.matmul(gz2, cols2.T, out=gw.reshape(O, -1))
            else:
                gw[...] = np.matmul(gz2.reshape(G, O // G, N * P), cols2.reshape(G, -1, N * P).transpose(0, 2, 1)).reshape(W.shape)
            if gb is not None:
                np.matmul(gz2, pl.ones, out=gb)
            if not need_input_grad:
                return None, grads
            if G == 1:
                gcols = W.reshape(O, -1).T @ gz2  # [C·K, N·P]
            else:
                gcols = np.matmul(W.reshape(G, O // G, -1).transpose(0, 2, 1), gz2.reshape(G, O // G, N * P))
            gcols = gcols.reshape(C, K, *pl.tap_shape)
            pl.gx_buf[...] = 0
            for t, win in enumerate(pl.gx_windows):
                win += gcols[:, t]
        gx = np.empty(in_shape, dtype=gz.dtype)  # a fresh array: the buffer stays the layer's
        gx[...] = self._unpad(pl.gx_first, in_shape)
        return gx, grads

    def _unpad(self, gxp: Array, in_shape: tuple[int, ...]) -> Array:
        d = self.d
        if not any(self.padding):
            return gxp
        if self.padding_mode == "circular":
            for i in range(d):
                p, n = self.padding[i], in_shape[2 + i]
                if p == 0:
                    continue
                ax = 2 + i
                core = np.take(gxp, np.arange(p, p + n), axis=ax)
                left = np.take(gxp, np.arange(0, p), axis=ax)
                right = np.take(gxp, np.arange(p + n, 2 * p + n), axis=ax)
                idx_l = [slice(None)] * gxp.ndim
                idx_l[ax] = slice(n - p, n)
                core[tuple(idx_l)] += left
                idx_r = [slice(None)] * gxp.ndim
                idx_r[ax] = slice(0, p)
                core[tuple(idx_r)] += right
                gxp = core
            return gxp
        sl = tuple(slice(p, p + in_shape[2 + i]) for i, p in enumerate(self.padding))
        return gxp[(slice(None), slice(None), *sl)]

    def preact(self, y: Array, cache: Any) -> Array:
        return cache[2]

    def preact_grad(self, g: Array, cache: Any) -> Array:
        return self._act_backward(g, cache[2], cache[3])

    # -- theory --------------------------------------------------------------------------------
    def coverage(self, in_spatial: Sequence[int] | None) -> float:
        """ρ: the average fraction of a kernel's taps that fall inside the input (1 with circular
        or no padding)."""
        if self.padding_mode == "circular" or not any(self.padding) or in_spatial is None:
            return 1.0
        rho = 1.0
        for i in range(self.d):
            n, p, k, s, dl = in_spatial[i], self.padding[i], self.kernel_size[i], self.stride[i], self.dilation[i]
            n_out = (n + 2 * p - dl * (k - 1) - 1) // s + 1
            inside = 0
            for o in range(n_out):
                for t in range(k):
                    pos = o * s + t * dl - p
                    inside += 0 <= pos < n
            rho *= inside / (n_out * k)
        return rho

    @property
    def in_spatial(self) -> tuple[int, ...] | None:
        """The input's spatial size, known once the layer is built (for zero padding's coverage)."""
        return None if self.in_shape is None else tuple(self.in_shape[1:])

    def propagate(self, s: Signal) -> LayerMF:
        """q = ρ·σ_w² E[x²] + σ_b², σ_w² = (C/groups)·K·Var(W); back = ρ·(O/groups)·K·Var(W)·P_out/P_in."""
        w_mean, w_var = spec_moments(self.init_spec, self.shape)
        b_mean, b_var = spec_moments(self.bias_init_spec, (self.out_channels,), fan_in=self.fan_in()) if self.has_bias else (0.0, 0.0)
        rho = self.coverage(self.in_spatial)
        sw2 = w_var * self.fan_in()
        q = rho * sw2 * s.sq + b_var
        note = ""
        if rho < 1.0:
            note = (f"zero padding: border outputs see fewer taps; q uses the average in-bounds fraction ρ = {rho:.4f} "
                    "(exact for the mean of q over positions, approximate through the nonlinearity)")
        if w_mean != 0.0:
            note = f"weights have mean {w_mean:g}; the theory assumes zero-mean weights (not predicted)"
            q = math.nan
        ratio = 1.0
        if self.in_spatial is not None:
            out_sp = self.output_shape((self.in_channels, *self.in_spatial))[1:]
            ratio = float(np.prod(out_sp)) / float(np.prod(self.in_spatial))
        back = rho * (self.out_channels // self.groups) * self.taps * w_var * ratio
        return activation_record(self.kind, self.activation, b_mean if math.isfinite(q) else math.nan, q, back=back,
                                 sigma_w2=sw2, sigma_b2=b_var, width=self.out_channels, note=note)

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding),
                "padding_mode": self.padding_mode, "dilation": list(self.dilation), "groups": self.groups,
                "activation": self.activation.spec, "init": str(self.init_spec),
                "bias_init": str(self.bias_init_spec), "bias": self.has_bias}

    def torch_modules(self) -> list[Any]:
        import torch

        tdtype = torch.float32 if self.dtype == np.float32 else torch.float64
        cls = torch.nn.Conv1d if self.d == 1 else torch.nn.Conv2d
        m = cls(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride, padding=self.padding,
                dilation=self.dilation, groups=self.groups, bias=self.has_bias, padding_mode=self.padding_mode,
                dtype=tdtype)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.array(self.weight)))
            if self.has_bias:
                m.bias.copy_(torch.from_numpy(np.array(self.bias)))
        return [m] + self._torch_activation()


class _ConvPlan:
    """A convolution's buffers and views for one input shape and dtype (see ``_ConvNd``'s comment):
    forward (``kind="f"``): the padded input buffer, where the input goes in it, the circular
    wraps, the patch view; backward (``"b"``): the padded input-gradient buffer and its window per
    kernel offset, the ones for the bias gradient."""

    def __init__(self, conv: "_ConvNd", kind: str, in_shape: tuple[int, ...], dtype: np.dtype) -> None:
        d, C = conv.d, conv.in_channels
        N = in_shape[0]
        self.out_sp = out_sp = tuple(conv.output_shape(tuple(in_shape[1:]))[1:])
        self.P = P = math.prod(out_sp)
        self.last = last = conv._channels_last(C, out_sp)
        k, st, dl = conv.kernel_size, conv.stride, conv.dilation
        sp = tuple(in_shape[2 + i] + 2 * conv.padding[i] for i in range(d))
        inner = tuple(slice(p, p + in_shape[2 + i]) for i, p in enumerate(conv.padding))
        # channels last: [N, *sp, C] (spatial axes from 1); channels first: [C, N, *sp] (from 2)
        buf = np.zeros((N, *sp, C) if last else (C, N, *sp), dtype=dtype)
        a0 = 1 if last else 2
        full = [slice(None)] * buf.ndim
        if kind == "f":
            self.x_dst = buf[(slice(None), *inner, slice(None))] if last else buf[(slice(None), slice(None), *inner)]
            self.wraps: list[tuple[Array, Array]] = []
            if conv.padding_mode == "circular":
                for i in range(d):  # wrap axis by axis (later axes copy the corners, as np.pad does)
                    p, n = conv.padding[i], in_shape[2 + i]
                    if p:
                        for dst, src in ((slice(0, p), slice(n, n + p)), (slice(p + n, 2 * p + n), slice(p, 2 * p))):
                            lo, hi = list(full), list(full)
                            lo[a0 + i], hi[a0 + i] = dst, src
                            self.wraps.append((buf[tuple(lo)], buf[tuple(hi)]))
            s = buf.strides
            if last:  # [N, *out, *k, C]
                shape = (N, *out_sp, *k, C)
                strides = (s[0], *(s[1 + i] * st[i] for i in range(d)), *(s[1 + i] * dl[i] for i in range(d)), s[-1])
            else:  # [C, *k, N, *out]
                shape = (C, *k, N, *out_sp)
                strides = (s[0], *(s[2 + i] * dl[i] for i in range(d)), s[1], *(s[2 + i] * st[i] for i in range(d)))
            self.cols_shape = shape
            self.patches = as_strided(buf, shape=shape, strides=strides, writeable=False)
        else:
            self.gx_buf = buf
            wins = [conv._window(off, out_sp) for off in np.ndindex(*k)]
            if last:
                self.gx_windows = [buf[(slice(None), *w, slice(None))] for w in wins]
                self.tap_shape = (N, *out_sp, C)
                self.gx_first = np.moveaxis(buf, -1, 1)  # [N, C, *sp]
            else:
                self.gx_windows = [buf[(slice(None), slice(None), *w)] for w in wins]
                self.tap_shape = (N, *out_sp)
                self.gx_first = buf.swapaxes(0, 1)
            self.ones = np.ones(N * P, dtype=dtype)
        self.nbytes = buf.nbytes + (self.ones.nbytes if kind == "b" else 0)


class Conv1d(_ConvNd):
    """1-D convolution ``[batch, C, L] -> [batch, O, L']`` with an optional fused activation (see module doc)."""

    d = 1
    kind = "conv1d"


class Conv2d(_ConvNd):
    """2-D convolution ``[batch, C, H, W] -> [batch, O, H', W']`` with an optional fused activation."""

    d = 2
    kind = "conv2d"


class _PoolNd(Layer):
    d = 2
    op = "max"

    def __init__(self, kernel_size: Any, stride: Any = None, *, dtype: Any = np.float32) -> None:
        super().__init__(dtype)
        self.kernel_size = _tuple("kernel_size", kernel_size, self.d, 1)
        self.stride = self.kernel_size if stride is None else _tuple("stride", stride, self.d, 1)

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(in_shape) != self.d + 1:
            bad_value("input shape", f"[C, {'L' if self.d == 1 else 'H, W'}] for {type(self).__name__}", list(in_shape))
        out = []
        for i in range(self.d):
            n = (in_shape[1 + i] - self.kernel_size[i]) // self.stride[i] + 1
            if n < 1:
                raise ValueError(f"{type(self).__name__}: input size {in_shape[1 + i]} is smaller than the kernel {self.kernel_size[i]}.")
            out.append(n)
        return (in_shape[0], *out)

    def _geometry(self, in_shape: tuple[int, ...]) -> tuple[tuple[int, ...], list[tuple[slice, ...]], bool, bool]:
        """``(out spatial size, one index per kernel offset (row-major) selecting what it reads at
        every output position, overlapping windows, windows tile the input)`` for a sample shape
        (made once per shape: the hot loop only indexes)."""
        geo = self.__dict__.setdefault("_geo", {})
        got = geo.get(in_shape)
        if got is None:
            out_sp = tuple(self.output_shape(in_shape)[1:])
            k, st = self.kernel_size, self.stride
            sls = [(slice(None), slice(None), *(slice(off[i], off[i] + st[i] * (out_sp[i] - 1) + 1, st[i]) for i in range(self.d)))
                   for off in np.ndindex(*k)]
            overlap = any(s < kk for s, kk in zip(st, k))
            tiled = not overlap and all(in_shape[1 + i] == out_sp[i] * k[i] for i in range(self.d))
            if len(geo) >= 16:
                geo.clear()
            got = geo[in_shape] = (out_sp, sls, overlap, tiled)
        return got

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        """Max: the running ``np.maximum`` of the K strided views (one per kernel offset); the
        backward pass finds the winners from them. Average: the mean over the window view."""
        out_sp, sls, _, _ = self._geometry(x.shape[1:])
        if self.op == "max":
            if len(sls) == 1:
                return x[sls[0]].copy(), (x.shape, out_sp, x, None)
            y = np.maximum(x[sls[0]], x[sls[1]])
            for sl in sls[2:]:
                np.maximum(y, x[sl], out=y)
            return y, (x.shape, out_sp, x, y)
        win = _windows(x, out_sp, self.kernel_size, self.stride, (1,) * self.d)  # [N, C, *out, *k]
        axes = tuple(range(2 + self.d, 2 + 2 * self.d))
        y = win.mean(axis=axes, dtype=x.dtype)
        return y, (x.shape, out_sp, None, None)

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        """Max: the gradient goes to the first maximum of each window in row-major order (torch's
        and ``argmax``'s choice on ties), found by comparing each offset's view with the output.
        Average: g/K onto every window position."""
        in_shape, out_sp, x, y = cache
        _, sls, add, tiled = self._geometry(in_shape[1:])
        if self.op != "max":
            gx = np.zeros(in_shape, dtype=g.dtype)
            K = len(sls)
            for sl in sls:
                gx[sl] += g / K
            return gx, []
        gx = np.empty(in_shape, dtype=g.dtype) if tiled else np.zeros(in_shape, dtype=g.dtype)
        if y is None:  # a 1-tap window: every input it reads wins
            if tiled:
                gx[sls[0]] = g
            else:
                gx[sls[0]] += g
            return gx, []
        taken = None
        for sl in sls:
            win = np.equal(x[sl], y)
            if taken is None:
                taken = win
            else:
                np.greater(win, taken, out=win)  # a maximum, and no earlier offset won
                np.logical_or(taken, win, out=taken)
            if add:
                gx[sl] += g * win
            else:
                np.multiply(g, win, out=gx[sl])
        if not taken.all():  # a NaN window (NaN ≠ NaN): the first NaN wins, as argmax decides
            return self._backward_argmax(g, cache), []
        return gx, []

    def _backward_argmax(self, g: Array, cache: Any) -> Array:
        """The general max-pool backward: the window's ``argmax`` (first maximum, NaN first) gets g."""
        in_shape, out_sp, x, _ = cache
        win = _windows(x, out_sp, self.kernel_size, self.stride, (1,) * self.d)
        idx = win.reshape(*win.shape[: 2 + self.d], -1).argmax(axis=-1)
        gx = np.zeros(in_shape, dtype=g.dtype)
        for j, sl in enumerate(self._geometry(in_shape[1:])[1]):
            gx[sl] += g * (idx == j)
        return gx

    def propagate(self, s: Signal) -> LayerMF:
        if self.op == "avg":
            K = int(np.prod(self.kernel_size))
            sq = s.mean ** 2 + s.var / K
            return LayerMF(kind=self.kind, out=Signal(s.mean, sq), preact_mean=s.mean, preact_var=sq - s.mean ** 2,
                           back=1.0 / K,
                           note="average pooling assumes independent positions (a lower bound on E[y²] when they correlate)")
        return LayerMF(kind=self.kind, out=Signal(math.nan, math.nan), preact_mean=math.nan, preact_var=math.nan,
                       back=math.nan, note="max pooling is not predicted")

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def torch_modules(self) -> list[Any]:
        import torch

        name = f"{'Max' if self.op == 'max' else 'Avg'}Pool{self.d}d"
        return [getattr(torch.nn, name)(self.kernel_size, stride=self.stride)]


class MaxPool1d(_PoolNd):
    """Max over windows of ``kernel_size`` (stride defaults to the kernel), ``[N, C, L]``."""

    d, op, kind = 1, "max", "maxpool1d"


class MaxPool2d(_PoolNd):
    """Max over windows of ``kernel_size`` (stride defaults to the kernel), ``[N, C, H, W]``."""

    d, op, kind = 2, "max", "maxpool2d"


class AvgPool1d(_PoolNd):
    """Mean over windows of ``kernel_size``, ``[N, C, L]``."""

    d, op, kind = 1, "avg", "avgpool1d"


class AvgPool2d(_PoolNd):
    """Mean over windows of ``kernel_size``, ``[N, C, H, W]``."""

    d, op, kind = 2, "avg", "avgpool2d"


class GlobalAvgPool(Layer):
    """Mean over all spatial positions: ``[N, C, *S] -> [N, C]``."""

    kind = "globalavgpool"

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(in_shape) < 2:
            bad_value("input shape", "[C, *spatial] for GlobalAvgPool", list(in_shape))
        return (in_shape[0],)

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        return x.reshape(x.shape[0], x.shape[1], -1).mean(axis=-1, dtype=x.dtype), x.shape

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        P = int(np.prod(cache[2:]))
        gx = np.broadcast_to((g / P).reshape(*g.shape, *([1] * (len(cache) - 2))), cache)
        return np.ascontiguousarray(gx), []

    def propagate(self, s: Signal) -> LayerMF:
        return LayerMF(kind=self.kind, out=Signal(s.mean, s.sq), preact_mean=s.mean, preact_var=s.var, back=math.nan,
                       note="global average pooling: E[y²] depends on the spatial correlation (not tracked); "
                            "the prediction keeps E[x²], exact only for perfectly correlated positions")

    def config(self) -> dict[str, Any]:
        return {"type": "GlobalAvgPool"}

    def torch_modules(self) -> list[Any]:
        import torch

        class GlobalAvgPool(torch.nn.Module):
            """``x.flatten(2).mean(-1)``."""

            def forward(self, x: Any) -> Any:
                return x.flatten(2).mean(-1)

        return [GlobalAvgPool()]
