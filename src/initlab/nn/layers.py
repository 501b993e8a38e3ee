"""The layer protocol, and the dense, activation, flatten and dropout layers.

Every layer of :mod:`initlab.nn` has, side by side (micrograd's clarity, neural-tangents' one spec
for model and theory):

* ``params``: its parameters' :class:`ParamSpec` (name, shape, init spec) and ``arrays`` (values);
* ``forward(x, train=False, rng=None) -> (y, cache)``;
* ``backward(g, cache, out=None, need_input_grad=True, from_preact=False) -> (g_x, grads)``:
  ``g = ∂L/∂y``; ``grads`` are ∂L/∂(each parameter), written into ``out`` when given (the
  training loop passes views of one flat gradient vector);
* ``propagate(signal) -> LayerMF``: its mean-field variance map (:mod:`initlab.theory._predict`);
* ``output_shape(in_shape)`` (per-sample shapes), ``config()`` (JSON) and ``torch_modules()``.

A :class:`Dense` layer computes, for a batch ``x`` of shape ``[batch, in]``::

    z = x Wᵀ + b            (pre-activation, [batch, out]; W is [out, in], torch's layout)
    a = φ(z)                (activation, from :mod:`initlab.activations`)

and its backward pass, given ``g_a = ∂L/∂a``::

    g_z = g_a ⊙ φ′(z)       (φ′ from the output a when the activation has a cheap formula)
    ∂L/∂W = g_zᵀ x          ([out, in])
    ∂L/∂b = Σ_batch g_z     ([out])
    ∂L/∂x = g_z W           ([batch, in])

This is backpropagation as in "Learning representations by back-propagating errors"
(Rumelhart, Hinton, Williams, 1986).

>>> import numpy as np
>>> layer = Dense(2, 1, activation="linear", weight=np.array([[1.0, -2.0]]), bias=np.array([0.5]))
>>> y, cache = layer.forward(np.array([[3.0, 1.0]]))
>>> y.tolist()
[[1.5]]
>>> gx, (gw, gb) = layer.backward(np.array([[1.0]]), cache)
>>> gw.tolist(), gb.tolist(), gx.tolist()
([[3.0, 1.0]], [1.0], [[1.0, -2.0]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from initlab import activations as _activations
from initlab._validation import bad_type, bad_value, check_int, check_number, resolve_dtype
from initlab.theory._predict import LayerMF, Signal, activation_record

__all__ = ["ParamSpec", "Layer", "Dense", "Activation", "Flatten", "Dropout", "spec_moments"]

Array = np.ndarray


@dataclass(frozen=True)
class ParamSpec:
    """A parameter's name, shape and init spec (``initlab.init.get`` syntax; None = left as is)."""

    name: str
    shape: tuple[int, ...]
    init: Any


def spec_moments(spec: Any, shape: tuple[int, ...], fan_in: int | None = None) -> tuple[float, float]:
    """(mean, var) of init ``spec`` for ``shape`` from the registry (None or ``"zeros"``: (0, 0))."""
    from initlab import init as _init

    ini = _init.get("zeros" if spec is None else spec)
    params = getattr(ini, "params", {})
    if fan_in is not None and "fan_in" in params and params["fan_in"] is None:
        m = ini.moments(shape, fan_in=fan_in)
    else:
        m = ini.moments(shape)
    return float(m["mean"]), float(m["var"])


def _no_errors() -> Any:
    return np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore")


class Layer:
    """Base class: a layer with no parameters that passes its input through (see the module doc)."""

    kind = "layer"
    #: the fused activation, for the layers that have one (Dense, Conv)
    activation: _activations.Activation | None = None

    def __init__(self, dtype: Any = np.float32) -> None:
        self.dtype = resolve_dtype(dtype)
        self.params: list[ParamSpec] = []
        self.arrays: list[Array] = []

    # -- parameters ----------------------------------------------------------------------------
    def _add(self, name: str, shape: tuple[int, ...], init: Any, value: Any = None) -> None:
        self.params.append(ParamSpec(name, tuple(int(s) for s in shape), init))
        arr = np.zeros(shape, dtype=self.dtype)
        self.arrays.append(arr)
        if value is not None:
            self.set_param(name, value)

    def _index(self, name: str) -> int:
        for i, p in enumerate(self.params):
            if p.name == name:
                return i
        raise KeyError(name)

    def get_param(self, name: str) -> Array:
        return self.arrays[self._index(name)]

    def set_param(self, name: str, value: Any) -> None:
        """Copy ``value`` into the parameter's storage (shape- and type-checked)."""
        dst = self.get_param(name)
        try:
            arr = np.asarray(value)
        except Exception:  # noqa: BLE001 - anything not array-like
            bad_type(name, "an array", value)
        if arr.shape != dst.shape:
            raise ValueError(f"The {name!r} must have shape {dst.shape}; got shape {arr.shape}.")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            bad_type(name, "a real numeric array", value)
        dst[...] = arr

    def bind(self, storage: Sequence[Array]) -> None:
        """Move the parameter values into ``storage`` (one array per parameter, e.g. views of a
        network's flat vector); the layer then reads and writes there."""
        for i, dst in enumerate(storage):
            dst[...] = self.arrays[i]
            self.arrays[i] = dst

    def fan_in(self) -> int | None:
        """The fan-in a bias scheme such as ``torch_default_bias`` needs (None: no weight)."""
        return None

    # -- protocol ------------------------------------------------------------------------------
    #: the per-sample input shape, set by :meth:`build` (a Network builds its layers)
    in_shape: tuple[int, ...] | None = None

    def build(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Record the per-sample input shape and return the output shape (checks it fits)."""
        out = self.output_shape(tuple(in_shape))
        self.in_shape = tuple(in_shape)
        return out

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(in_shape)

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        return x, None

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        return g, []

    def preact(self, y: Array, cache: Any) -> Array:
        """The pre-activation of this forward pass (the output itself when the layer has no activation)."""
        return y

    def preact_grad(self, g: Array, cache: Any) -> Array:
        """∂L/∂preact from ``g = ∂L/∂y`` (``g`` itself when the layer has no activation)."""
        return g

    def propagate(self, s: Signal) -> LayerMF:
        return LayerMF(kind=self.kind, out=s, preact_mean=s.mean, preact_var=s.var)

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__}

    def torch_modules(self) -> list[Any]:
        return []

    def children(self) -> list["Layer"]:
        """Sub-layers (a Residual's branch); empty for plain layers."""
        return []

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class _WeightBiasMixin:
    """``weight`` and ``bias`` of a layer whose first parameter is ``"weight"`` and whose second,
    when it has one, is ``"bias"`` (Dense, Conv, the norms' gain and shift), with their init specs.

    Reading gives a view of the layer's storage; assigning copies the values into it
    (:meth:`Layer.set_param`: shape- and type-checked), so a Network's fused parameter buffer stays
    valid. ``bias`` and ``bias_init_spec`` are None for a layer without a bias.
    """

    params: list[ParamSpec]
    arrays: list[Array]
    set_param: Any

    @property
    def weight(self) -> Array:
        """The weight (a view of the layer's storage; Dense: ``[out, in]``, Conv: ``[out, in/groups, *kernel]``)."""
        return self.arrays[0]

    @weight.setter
    def weight(self, value: Any) -> None:
        self.set_param("weight", value)

    @property
    def bias(self) -> Array | None:
        """The bias vector ``[out]`` (None for a layer without a bias)."""
        return self.arrays[1] if len(self.arrays) > 1 else None

    @bias.setter
    def bias(self, value: Any) -> None:
        self.set_param("bias", value)

    @property
    def init_spec(self) -> Any:
        """The weight's init spec (``initlab.init.get`` syntax)."""
        return self.params[0].init

    @init_spec.setter
    def init_spec(self, spec: Any) -> None:
        self.params[0] = ParamSpec("weight", self.params[0].shape, spec)

    @property
    def bias_init_spec(self) -> Any:
        """The bias's init spec (None for a layer without a bias)."""
        return self.params[1].init if len(self.params) > 1 else None

    @bias_init_spec.setter
    def bias_init_spec(self, spec: Any) -> None:
        if len(self.params) < 2:
            raise ValueError(f"The 'bias_init_spec' cannot be set: this {type(self).__name__} has no bias; got {spec!r}.")
        self.params[1] = ParamSpec("bias", self.params[1].shape, spec)


class _ActivationMixin:
    """A fused activation φ after a linear map: preact z, output a = φ(z)."""

    activation: _activations.Activation

    def _act_forward(self, z: Array) -> Array:
        act = self.activation
        return z if act.name == "linear" else act.fn(z)

    def _act_backward(self, g: Array, z: Array, a: Array) -> Array:
        act = self.activation
        if act.name == "linear":
            return g
        return g * act.derivative(z, a)

    def _torch_activation(self) -> list[Any]:
        import torch

        act = self.activation
        if act.name == "linear":
            return []
        cls = getattr(torch.nn, act.torch_module, None) if act.torch_module else None
        if cls is None:
            supported = [n for n in _activations.names()
                         if _activations.get(n).torch_module and hasattr(torch.nn, _activations.get(n).torch_module)]
            raise ValueError(
                f"Network.to_torch cannot convert the activation {act.spec!r}: it has no torch.nn module. "
                f"Supported activations: {', '.join(supported)}."
            )
        if act.name == "leaky_relu":
            return [cls(negative_slope=act.param)]
        if act.name == "elu":
            return [cls(alpha=act.param)]
        return [cls()]


class Dense(_WeightBiasMixin, _ActivationMixin, Layer):
    """A fully connected layer ``a = φ(x Wᵀ + b)`` with W stored ``[out, in]`` (torch layout).

    Args:
        n_in, n_out: input and output widths.
        activation: a name/spec (``"relu"``, ``"leaky_relu(0.2)"``) or an Activation.
        init, bias_init: init specs (``initlab.init.get`` syntax); the Network draws the values.
            ``weight``/``bias`` set the values directly.
        dtype: float32 (default) or float64.

    ``layer.weight`` and ``layer.bias`` are readable and writable; assigning copies the values
    into the layer's storage (shape-checked), so a Network's fused parameter buffer stays valid.
    """

    kind = "dense"

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: str | _activations.Activation = "linear",
        *,
        init: Any = "he_normal",
        bias_init: Any = "zeros",
        weight: Array | None = None,
        bias: Array | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(dtype)
        self.n_in = check_int("n_in", n_in, low=1)
        self.n_out = check_int("n_out", n_out, low=1)
        self.activation = _activations.get(activation)
        self._add("weight", (self.n_out, self.n_in), init, weight)
        self._add("bias", (self.n_out,), bias_init, bias)
        self._ones: dict[int, Array] = {}  # [1, batch] ones for the bias gradient, by batch size

    # -- parameters (weight, bias, init_spec, bias_init_spec: _WeightBiasMixin) ----------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)``."""
        return (self.n_out, self.n_in)

    def fan_in(self) -> int:
        return self.n_in

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(in_shape) != (self.n_in,):
            raise ValueError(f"Dense({self.n_in}, {self.n_out}) needs inputs of shape [{self.n_in}]; got {list(in_shape)}.")
        return (self.n_out,)

    # -- forward / backward --------------------------------------------------------------------
    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        """``(a, cache)`` with ``z = x Wᵀ + b``, ``a = φ(z)``; x is ``[batch, in]``, cache ``(x, z, a)``."""
        w, b = self.arrays
        z = np.matmul(x, w.T)
        z += b
        act = self.activation
        a = z if act.name == "linear" else act.fn(z)
        return a, (x, z, a)

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        """``(∂L/∂x, [∂L/∂W, ∂L/∂b])`` from ``g = ∂L/∂a`` (or ∂L/∂z with ``from_preact``)."""
        x, z, a = cache
        if from_preact or self.activation.name == "linear":
            gz = g
        else:
            gz = g * self.activation.derivative(z, a)
        m = gz.shape[0]
        ones = self._ones.get(m)
        if ones is None or ones.dtype != gz.dtype:
            ones = self._ones[m] = np.ones((1, m), dtype=gz.dtype)
        # Σ_batch g_z as a [1, m] @ [m, out] product: one BLAS call, ~10x faster than a reduction
        # along axis 0 on small batches
        if out is None:
            gw = gz.T @ x
            gb = (ones @ gz)[0]
        else:
            gw, gb = out
            np.matmul(gz.T, x, out=gw)
            np.matmul(ones, gz, out=gb[None, :])
        gx = gz @ self.arrays[0] if need_input_grad else None
        return gx, [gw, gb]

    def preact(self, y: Array, cache: Any) -> Array:
        return cache[1]

    def preact_grad(self, g: Array, cache: Any) -> Array:
        return self._act_backward(g, cache[1], cache[2])

    # -- theory --------------------------------------------------------------------------------
    def propagate(self, s: Signal) -> LayerMF:
        """q = σ_w² E[x²] + σ_b² with σ_w² = n_in·Var(W); a = φ(h), h ~ N(E[b], q); back = n_out·Var(W)."""
        w_mean, w_var = spec_moments(self.init_spec, self.shape)
        b_mean, b_var = spec_moments(self.bias_init_spec, (self.n_out,), fan_in=self.n_in)
        sw2 = w_var * self.n_in
        note = ""
        q = sw2 * s.sq + b_var
        if w_mean != 0.0:
            note = f"weights have mean {w_mean:g}; the theory assumes zero-mean weights (not predicted)"
            q = math.nan
        return activation_record(self.kind, self.activation, b_mean if math.isfinite(q) else math.nan, q,
                                 back=self.n_out * w_var, sigma_w2=sw2, sigma_b2=b_var, width=self.n_out, note=note)

    def config(self) -> dict[str, Any]:
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "activation": self.activation.spec,
                "init": str(self.init_spec), "bias_init": str(self.bias_init_spec)}

    def torch_modules(self) -> list[Any]:
        import torch

        tdtype = torch.float32 if self.dtype == np.float32 else torch.float64
        lin = torch.nn.Linear(self.n_in, self.n_out, dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(self.weight)))
            lin.bias.copy_(torch.from_numpy(np.array(self.bias)))
        return [lin] + self._torch_activation()

    def __repr__(self) -> str:
        return (
            f"Dense({self.n_in}, {self.n_out}, activation={self.activation.spec!r}, "
            f"init={str(self.init_spec)!r}, dtype={self.dtype.name})"
        )


class Activation(_ActivationMixin, Layer):
    """An elementwise activation ``y = φ(x)`` as a layer of its own."""

    kind = "activation"

    def __init__(self, activation: str | _activations.Activation, *, dtype: Any = np.float32) -> None:
        super().__init__(dtype)
        self.activation = _activations.get(activation)

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        y = self._act_forward(x)
        return y, (x, y)

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        return (g if from_preact else self._act_backward(g, cache[0], cache[1])), []

    def preact(self, y: Array, cache: Any) -> Array:
        return cache[0]

    def preact_grad(self, g: Array, cache: Any) -> Array:
        return self._act_backward(g, cache[0], cache[1])

    def propagate(self, s: Signal) -> LayerMF:
        """φ of a Gaussian input N(E[x], Var(x)) (exact after a dense or conv layer)."""
        return activation_record(self.kind, self.activation, s.mean, s.var)

    def config(self) -> dict[str, Any]:
        return {"type": "Activation", "activation": self.activation.spec}

    def torch_modules(self) -> list[Any]:
        return self._torch_activation()


class Flatten(Layer):
    """``[batch, *shape] -> [batch, prod(shape)]``."""

    kind = "flatten"

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(in_shape)),)

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        return g.reshape(cache), []

    def config(self) -> dict[str, Any]:
        return {"type": "Flatten"}

    def torch_modules(self) -> list[Any]:
        import torch

        return [torch.nn.Flatten()]


class Dropout(Layer):
    """Inverted dropout: in training, ``y = x ⊙ m / (1 − p)`` with ``m ~ Bernoulli(1 − p)``; identity in eval.

    The mask comes from the ``rng`` the network passes (its dropout stream), never a global one.
    """

    kind = "dropout"

    def __init__(self, p: float = 0.5, *, dtype: Any = np.float32) -> None:
        super().__init__(dtype)
        self.p = check_number("p", p, low=0.0)
        if not self.p < 1.0:
            bad_value("p", "a drop probability in [0, 1)", p)

    def forward(self, x: Array, train: bool = False, rng: np.random.Generator | None = None) -> tuple[Array, Any]:
        if not train or self.p == 0.0:
            return x, None
        if rng is None:
            raise ValueError("Dropout.forward in training needs an 'rng' (the network's dropout stream); got None.")
        keep = (rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64) >= self.p)
        m = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * m, m

    def backward(self, g: Array, cache: Any, out: Sequence[Array] | None = None, need_input_grad: bool = True,
                 from_preact: bool = False) -> tuple[Array | None, list[Array]]:
        return (g if cache is None else g * cache), []

    def propagate(self, s: Signal) -> LayerMF:
        """Evaluation mode (identity): what a probe at initialisation measures."""
        return LayerMF(kind=self.kind, out=s, preact_mean=s.mean, preact_var=s.var,
                       note="dropout predicted in evaluation mode (identity); in training E[y²] = E[x²]/(1 − p)")

    def config(self) -> dict[str, Any]:
        return {"type": "Dropout", "p": self.p}

    def torch_modules(self) -> list[Any]:
        import torch

        return [torch.nn.Dropout(self.p)]
