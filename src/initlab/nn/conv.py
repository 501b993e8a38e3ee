"""Convolutions and pooling, channels first (torch's layout ``[batch, C, L]`` / ``[batch, C, H, W]``).

A convolution is a matrix product on patches (im2col): the input, padded with zeros or circularly,
is copied into a patch matrix ``[C·K, batch·P]`` (one strided copy per kernel offset, stride and
dilation in the slice) and multiplied by the kernel ``[out/groups, C/groups·K]`` on BLAS, one GEMM
per group. Backward: ∂L/∂W = g_zᵀ·cols, ∂L/∂cols = g_z·W, scattered back onto the input (col2im)
with one strided add per kernel offset; circular padding folds the wrapped border back.

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
    def _pad(self, x: Array) -> Array:
        if not any(self.padding):
            return x
        pw = [(0, 0), (0, 0)] + [(p, p) for p in self.padding]
        if self.padding_mode == "circular":
            return np.pad(x, pw, mode="wrap")
        return np.pad(x, pw)

    def _slices(self, off: tuple[int, ...], out_sp: tuple[int, ...]) -> tuple[slice, ...]:
        """The input positions (padded) that kernel offset ``off`` reads for every output position."""
        return tuple(
            slice(off[i] * self.dilation[i], off[i] * self.dilation[i] + self.stride[i] * (out_sp[i] - 1) + 1, self.stride[i])
            for i in range(self.d)
        )

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        """im2col with the patch axis first: cols ``[C·K, N·P]`` (one strided copy per kernel offset,
        rows of the image copied whole), then one GEMM ``W [O, C·K] @ cols`` per group."""
        d, G, C, O = self.d, self.groups, self.in_channels, self.out_channels
        N = x.shape[0]
        out_sp = self.output_shape(x.shape[1:])[1:]
        P = int(np.prod(out_sp))
        K = self.taps
        xp = self._pad(x)
        if self._flat_path:
            # stride 1: on the flattened padded image, kernel offset `off` reads one contiguous run
            # of length Pe per (channel, sample), computing outputs on a grid as wide as the padded
            # rows (the extra columns are dropped); long runs keep NumPy's inner loops efficient
            sp = xp.shape[2:]
            Fp = int(np.prod(sp))
            extra = (self.kernel_size[-1] - 1) * self.dilation[-1]
            xf = np.zeros((C, N, Fp + extra), dtype=x.dtype)
            xf[:, :, :Fp] = xp.reshape(N, C, Fp).swapaxes(0, 1)
            Pe = out_sp[0] * sp[-1] if d == 2 else out_sp[0]
            cols = np.empty((C, *self.kernel_size, N, Pe), dtype=x.dtype)
            for off in np.ndindex(*self.kernel_size):
                fo = self._flat_offset(off, sp)
                cols[(slice(None), *off)] = xf[:, :, fo : fo + Pe]
            P = Pe
        else:
            xt = xp.swapaxes(0, 1)  # [C, N, *padded] (a view)
            cols = np.empty((C, *self.kernel_size, N, *out_sp), dtype=x.dtype)
            for off in np.ndindex(*self.kernel_size):
                cols[(slice(None), *off)] = xt[(slice(None), slice(None), *self._slices(off, out_sp))]
        cols2 = cols.reshape(C * K, N * P)
        W = self.arrays[0]
        if G == 1:
            z2 = W.reshape(O, C * K) @ cols2  # [O, N*P]
        else:
            z2 = np.matmul(W.reshape(G, O // G, -1), cols2.reshape(G, (C // G) * K, N * P)).reshape(O, N * P)
        if self.has_bias:
            z2 += self.arrays[1][:, None]
        if self._flat_path and d == 2:
            z = np.ascontiguousarray(z2.reshape(O, N, out_sp[0], -1)[..., : out_sp[1]].swapaxes(0, 1))
        else:
            z = np.ascontiguousarray(z2.reshape(O, N, *out_sp).swapaxes(0, 1))
        a = self._act_forward(z)
        return a, (x.shape, cols2, z, a, out_sp)

    @property
    def _flat_path(self) -> bool:
        return all(st == 1 for st in self.stride)

    def _flat_offset(self, off: tuple[int, ...], sp: tuple[int, ...]) -> int:
        if self.d == 1:
            return off[0] * self.dilation[0]
        return off[0] * self.dilation[0] * sp[1] + off[1] * self.dilation[1]

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        """∂L/∂W = g_z·colsᵀ, ∂L/∂b = Σ g_z, ∂L/∂cols = Wᵀ·g_z scattered back (one strided add per offset)."""
        in_shape, cols2, z, a, out_sp = cache
        d, G, C, O = self.d, self.groups, self.in_channels, self.out_channels
        N = in_shape[0]
        P = int(np.prod(out_sp))
        K = self.taps
        gz = g if from_preact else self._act_backward(g, z, a)
        flat = self._flat_path
        sp = tuple(in_shape[2 + i] + 2 * self.padding[i] for i in range(d))
        if flat and d == 2:
            gze = np.zeros((O, N, out_sp[0], sp[1]), dtype=gz.dtype)
            gze[..., : out_sp[1]] = gz.swapaxes(0, 1)
            P = out_sp[0] * sp[1]
            gz2 = gze.reshape(O, N * P)
        else:
            gz2 = np.ascontiguousarray(gz.swapaxes(0, 1)).reshape(O, N * P)  # [O, N*P]
        W = self.arrays[0]
        gw = out[0] if out is not None else np.empty_like(W)
        if G == 1:
            np.matmul(gz2, cols2.T, out=gw.reshape(O, C * K))
        else:
            gw[...] = np.matmul(gz2.reshape(G, O // G, N * P),
                                cols2.reshape(G, (C // G) * K, N * P).transpose(0, 2, 1)).reshape(W.shape)
        grads = [gw]
        if self.has_bias:
            gb = out[1] if out is not None else np.empty(O, dtype=gz.dtype)
            np.sum(gz2, axis=1, out=gb)
            grads.append(gb)
        if not need_input_grad:
            return None, grads
        if G == 1:
            gcols = W.reshape(O, C * K).T @ gz2  # [C*K, N*P]
        else:
            gcols = np.matmul(W.reshape(G, O // G, -1).transpose(0, 2, 1), gz2.reshape(G, O // G, N * P))
        if flat:
            Fp = int(np.prod(sp))
            gcols = gcols.reshape(C, *self.kernel_size, N, P)
            gxf = np.zeros((C, N, Fp + (self.kernel_size[-1] - 1) * self.dilation[-1]), dtype=gz.dtype)
            for off in np.ndindex(*self.kernel_size):
                fo = self._flat_offset(off, sp)
                gxf[:, :, fo : fo + P] += gcols[(slice(None), *off)]
            gxt = gxf[:, :, :Fp].reshape(C, N, *sp)
        else:
            gcols = gcols.reshape(C, *self.kernel_size, N, *out_sp)
            gxt = np.zeros((C, N, *sp), dtype=gz.dtype)
            for off in np.ndindex(*self.kernel_size):
                gxt[(slice(None), slice(None), *self._slices(off, out_sp))] += gcols[(slice(None), *off)]
        return np.ascontiguousarray(self._unpad(gxt.swapaxes(0, 1), in_shape)), grads

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
        return np.ascontiguousarray(gxp[(slice(None), slice(None), *sl)])

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

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        out_sp = self.output_shape(x.shape[1:])[1:]
        win = _windows(x, out_sp, self.kernel_size, self.stride, (1,) * self.d)  # [N, C, *out, *k]
        axes = tuple(range(2 + self.d, 2 + 2 * self.d))
        if self.op == "max":
            flat = win.reshape(*win.shape[: 2 + self.d], -1)
            idx = flat.argmax(axis=-1)
            y = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
            return y, (x.shape, out_sp, idx)
        y = win.mean(axis=axes, dtype=x.dtype)
        return y, (x.shape, out_sp, None)

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        in_shape, out_sp, idx = cache
        d = self.d
        gx = np.zeros(in_shape, dtype=g.dtype)
        K = int(np.prod(self.kernel_size))
        for j, off in enumerate(np.ndindex(*self.kernel_size)):
            sl = tuple(slice(off[i], off[i] + self.stride[i] * (out_sp[i] - 1) + 1, self.stride[i]) for i in range(d))
            contrib = g * (idx == j) if self.op == "max" else g / K
            gx[(slice(None), slice(None), *sl)] += contrib
        return gx, []

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
