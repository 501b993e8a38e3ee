"""Normalisation layers (BatchNorm, LayerNorm) and the residual block ``x + α·branch(x)``.

BatchNorm (Ioffe & Szegedy 2015) normalises each channel over the batch (and positions) in
training, with running statistics for evaluation (momentum 0.1, unbiased running variance, as
torch); LayerNorm (Ba, Kiros & Hinton 2016) normalises each sample over ``normalized_shape`` (its
last dimensions). Both: ``y = γ·(x − μ)/√(σ² + ε) + β`` and the standard backward

    ∂L/∂x = γ/(M√(σ²+ε)) · (M·g − Σg − x̂·Σ(g·x̂))      (sums over the M normalised entries)

Residual block (He et al. 2016): ``y = x + α·branch(x)``; ∂L/∂x = g + ∂(α·branch)/∂x ᵀ g.
Mean field: with a branch ending in a zero-mean weight layer, E[y²] = E[x²] + α²·E[branch²]
(the cross term vanishes) and E[(∂L/∂x)²] = (1 + α²·χ_branch)·E[g²] (Yang & Schoenholz 2017,
"Mean Field Residual Networks").

>>> import numpy as np
>>> from initlab.nn.layers import Dense
>>> block = Residual([Dense(2, 2, "linear", weight=np.eye(2), bias=np.zeros(2))], alpha=0.5)
>>> block.forward(np.array([[1.0, 2.0]]))[0].tolist()
[[1.5, 3.0]]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from initlab._validation import bad_type, bad_value, check_number
from initlab.nn.layers import Layer, ParamSpec, _WeightBiasMixin, spec_moments
from initlab.theory._predict import LayerMF, Signal, backward_fold, fold

__all__ = ["BatchNorm", "LayerNorm", "Residual"]

Array = np.ndarray


def _norm_backward(g: Array, xhat: Array, inv: Array, gamma: Array, axes: tuple[int, ...]) -> Array:
    gh = g * gamma
    M = 1
    for a in axes:
        M *= g.shape[a]
    s1 = gh.sum(axis=axes, keepdims=True)
    s2 = (gh * xhat).sum(axis=axes, keepdims=True)
    return (inv / M) * (M * gh - s1 - xhat * s2)


def _affine_grads(g: Array, xhat: Array, axes: tuple[int, ...], out: Sequence[Array] | None) -> tuple[Array, Array]:
    """The gradients of a norm's gain and shift, Σ g·x̂ and Σ g over ``axes`` (into ``out`` when
    given: the Network's flat gradient views)."""
    gg = (g * xhat).sum(axis=axes)
    gb = g.sum(axis=axes)
    if out is not None:
        out[0][...] = gg
        out[1][...] = gb
        gg, gb = out[0], out[1]
    return gg, gb


class _Norm(_WeightBiasMixin, Layer):
    """A norm's affine gain (``weight``) and shift (``bias``): :class:`_WeightBiasMixin`."""

    def _affine_params(self, shape: tuple[int, ...]) -> None:
        self._add("weight", shape, "ones")
        self._add("bias", shape, "zeros")

    def propagate(self, s: Signal) -> LayerMF:
        g_mean, g_var = spec_moments(self.params[0].init, self.params[0].shape)
        b_mean, b_var = spec_moments(self.params[1].init, self.params[1].shape)
        v = s.var
        g2 = g_var + g_mean ** 2
        ratio = v / (v + self.eps) if v > 0 else 0.0
        out = Signal(b_mean, g2 * ratio + b_var + b_mean ** 2)
        return LayerMF(kind=self.kind, out=out, preact_mean=b_mean, preact_var=out.var, back=g2 / (v + self.eps),
                       width=int(np.prod(self.params[0].shape)),
                       note="normalised with the statistics of the normalised entries (training mode); "
                            "back ignores the O(1/M) projection terms")


class BatchNorm(_Norm):
    """Batch normalisation over axis 1 (features or channels) of ``[N, C]`` or ``[N, C, *S]``."""

    kind = "batchnorm"

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1, dtype: Any = np.float32) -> None:
        super().__init__(dtype)
        from initlab._validation import check_int

        self.num_features = check_int("num_features", num_features, low=1)
        self.eps = check_number("eps", eps, low=0.0)
        self.momentum = check_number("momentum", momentum, low=0.0)
        self._affine_params((self.num_features,))
        #: running statistics (buffers, not trained; saved with the weights)
        self.running_mean = np.zeros(self.num_features, dtype=self.dtype)
        self.running_var = np.ones(self.num_features, dtype=self.dtype)

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(in_shape) < 1 or in_shape[0] != self.num_features:
            bad_value("input shape", f"[{self.num_features}, ...] for BatchNorm({self.num_features})", list(in_shape))
        return tuple(in_shape)

    def _shape(self, x: Array) -> tuple[int, ...]:
        return (1, self.num_features) + (1,) * (x.ndim - 2)

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        axes = (0, *range(2, x.ndim))
        sh = self._shape(x)
        if train:
            mu = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
            M = x.size // self.num_features
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mu.reshape(-1)
            self.running_var *= 1 - m
            self.running_var += m * var.reshape(-1) * (M / max(M - 1, 1))
        else:
            mu = self.running_mean.reshape(sh)
            var = self.running_var.reshape(sh)
        inv = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mu) * inv
        y = xhat * self.weight.reshape(sh) + self.bias.reshape(sh)
        return y, (xhat, inv.astype(x.dtype), train)

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        xhat, inv, train = cache
        axes = (0, *range(2, g.ndim))
        sh = self._shape(g)
        gg, gb = _affine_grads(g, xhat, axes, out)
        if not need_input_grad:
            return None, [gg, gb]
        gamma = self.weight.reshape(sh)
        gx = _norm_backward(g, xhat, inv, gamma, axes) if train else g * gamma * inv
        return gx, [gg, gb]

    def config(self) -> dict[str, Any]:
        return {"type": "BatchNorm", "num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}

    def buffers(self) -> dict[str, Array]:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def torch_modules(self) -> list[Any]:
        import torch

        return [_torch_bn(self, torch)]


def _torch_bn(layer: BatchNorm, torch: Any) -> Any:
    tdtype = torch.float32 if layer.dtype == np.float32 else torch.float64
    # BatchNorm1d accepts [N, C] and [N, C, L]; BatchNorm2d [N, C, H, W]: the input rank decides, so
    # a small wrapper picks the functional form for any rank
    m = torch.nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum, dtype=tdtype)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(np.array(layer.weight)))
        m.bias.copy_(torch.from_numpy(np.array(layer.bias)))
        m.running_mean.copy_(torch.from_numpy(np.array(layer.running_mean)))
        m.running_var.copy_(torch.from_numpy(np.array(layer.running_var)))
    m._check_input_dim = lambda x: None  # any rank: BatchNorm over axis 1
    return m


class LayerNorm(_Norm):
    """Layer normalisation over the last dimensions ``normalized_shape`` of each sample (torch's semantics)."""

    kind = "layernorm"

    def __init__(self, normalized_shape: Any, *, eps: float = 1e-5, dtype: Any = np.float32) -> None:
        super().__init__(dtype)
        shp = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        if not shp or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shp):
            bad_value("normalized_shape", "a positive int or a tuple of positive ints", normalized_shape)
        self.normalized_shape = tuple(int(s) for s in shp)
        self.eps = check_number("eps", eps, low=0.0)
        self._affine_params(self.normalized_shape)

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        k = len(self.normalized_shape)
        if tuple(in_shape[-k:]) != self.normalized_shape:
            bad_value("input shape", f"one ending in {list(self.normalized_shape)} for LayerNorm", list(in_shape))
        return tuple(in_shape)

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        axes = tuple(range(x.ndim - len(self.normalized_shape), x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        inv = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        xhat = (x - mu) * inv
        return xhat * self.weight + self.bias, (xhat, inv)

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        xhat, inv = cache
        k = len(self.normalized_shape)
        axes = tuple(range(g.ndim - k, g.ndim))
        batch_axes = tuple(range(g.ndim - k))
        gg, gb = _affine_grads(g, xhat, batch_axes, out)
        if not need_input_grad:
            return None, [gg, gb]
        return _norm_backward(g, xhat, inv, self.weight, axes), [gg, gb]

    def config(self) -> dict[str, Any]:
        return {"type": "LayerNorm", "normalized_shape": list(self.normalized_shape), "eps": self.eps}

    def torch_modules(self) -> list[Any]:
        import torch

        tdtype = torch.float32 if self.dtype == np.float32 else torch.float64
        m = torch.nn.LayerNorm(self.normalized_shape, eps=self.eps, dtype=tdtype)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(np.array(self.weight)))
            m.bias.copy_(torch.from_numpy(np.array(self.bias)))
        return [m]


class Residual(Layer):
    """``y = x + α·branch(x)`` with any layers in the branch (its output shape must equal its input's)."""

    kind = "residual"

    def __init__(self, branch: Sequence[Layer], alpha: float = 1.0, *, dtype: Any = None) -> None:
        branch = list(branch) if not isinstance(branch, Layer) else [branch]
        if not branch or not all(isinstance(b, Layer) for b in branch):
            bad_type("branch", "a non-empty list of initlab.nn layers", branch)
        super().__init__(branch[0].dtype if dtype is None else dtype)
        self.branch = branch
        self.alpha = check_number("alpha", alpha)

    # parameters are the branch's, in order
    @property  # type: ignore[override]
    def params(self) -> list[ParamSpec]:
        return [ParamSpec(f"branch.{i}.{p.name}", p.shape, p.init) for i, la in enumerate(self.branch) for p in la.params]

    @params.setter
    def params(self, value: Any) -> None:  # the base class initialises an empty list
        pass

    @property  # type: ignore[override]
    def arrays(self) -> list[Array]:
        return [a for la in self.branch for a in la.arrays]

    @arrays.setter
    def arrays(self, value: Any) -> None:
        pass

    def _split(self, seq: Sequence[Any]) -> list[Sequence[Any]]:
        out, k = [], 0
        for la in self.branch:
            n = len(la.params)
            out.append(seq[k : k + n])
            k += n
        return out

    def bind(self, storage: Sequence[Array]) -> None:
        for la, part in zip(self.branch, self._split(list(storage))):
            la.bind(part)

    def set_param(self, name: str, value: Any) -> None:
        _, i, rest = name.split(".", 2)
        self.branch[int(i)].set_param(rest, value)

    def get_param(self, name: str) -> Array:
        _, i, rest = name.split(".", 2)
        return self.branch[int(i)].get_param(rest)

    def children(self) -> list[Layer]:
        return list(self.branch)

    def build(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        self.in_shape = tuple(in_shape)
        s = self.in_shape
        for la in self.branch:
            s = la.build(s)
        if tuple(s) != self.in_shape:
            raise ValueError(f"Residual: the branch maps shape {list(in_shape)} to {list(s)}; x + α·branch(x) needs them equal.")
        return s

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        s = tuple(in_shape)
        for la in self.branch:
            s = la.output_shape(s)
        if tuple(s) != tuple(in_shape):
            raise ValueError(f"Residual: the branch maps shape {list(in_shape)} to {list(s)}; x + α·branch(x) needs them equal.")
        return s

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        h = x
        caches = []
        for la in self.branch:
            h, c = la.forward(h, train, rng)
            caches.append(c)
        return (x + h if self.alpha == 1.0 else x + self.alpha * h), caches

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        gb = g if self.alpha == 1.0 else self.alpha * g
        outs = self._split(list(out)) if out is not None else [None] * len(self.branch)
        grads: list[list[Array]] = []
        for la, c, o in zip(reversed(self.branch), reversed(cache), reversed(outs)):
            gb, gr = la.backward(gb, c, out=o, need_input_grad=True)
            grads.append(gr)
        flat = [a for gr in reversed(grads) for a in gr]
        return (g + gb) if need_input_grad else None, flat

    def propagate(self, s: Signal) -> LayerMF:
        recs, sb = fold(self.branch, s)
        chi = backward_fold(recs, 1.0)
        a = self.alpha
        out = Signal(s.mean + a * sb.mean, s.sq + a * a * sb.sq + 2 * a * s.mean * sb.mean)
        return LayerMF(kind=self.kind, out=out, preact_mean=out.mean, preact_var=out.var, back=1.0 + a * a * chi,
                       branch=recs, branch_scale=a * a,
                       note="" if _zero_mean_end(self.branch) else
                       "the branch does not end in a zero-mean weight layer: the cross term E[x·branch(x)] is taken as E[x]·E[branch]")

    def config(self) -> dict[str, Any]:
        return {"type": "Residual", "alpha": self.alpha, "branch": [la.config() for la in self.branch]}

    def torch_modules(self) -> list[Any]:
        import torch

        mods = [m for la in self.branch for m in la.torch_modules()]
        alpha = self.alpha

        class Residual(torch.nn.Module):
            """``x + α·branch(x)``."""

            def __init__(self) -> None:
                super().__init__()
                self.branch = torch.nn.Sequential(*mods)
                self.alpha = alpha

            def forward(self, x: Any) -> Any:
                return x + self.alpha * self.branch(x)

        return [Residual()]


def _zero_mean_end(branch: Sequence[Layer]) -> bool:
    for la in reversed(branch):
        if la.params and la.params[0].name == "weight" and la.kind in ("dense", "conv1d", "conv2d"):
            try:
                return spec_moments(la.params[0].init, la.params[0].shape)[0] == 0.0
            except (ValueError, TypeError):
                return False
        if la.params:
            return False
    return False

