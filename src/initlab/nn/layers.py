"""Dense layers: the forward pass and its backward pass side by side.

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
>>> z, a = layer.forward(np.array([[3.0, 1.0]]))
>>> a.tolist()
[[1.5]]
>>> g = layer.backward(np.array([[1.0]]), np.array([[3.0, 1.0]]), z, a)
>>> g.grad_weight.tolist(), g.grad_bias.tolist(), g.grad_input.tolist()
([[3.0, 1.0]], [1.0], [[1.0, -2.0]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from initlab import activations as _activations
from initlab._validation import bad_type, check_int, resolve_dtype

__all__ = ["Dense", "DenseGrads"]

Array = np.ndarray


@dataclass
class DenseGrads:
    """Gradients of one Dense layer's backward pass."""

    grad_preact: Array
    grad_weight: Array
    grad_bias: Array
    grad_input: Array | None


class Dense:
    """A fully connected layer ``a = φ(x Wᵀ + b)`` with W stored ``[out, in]`` (torch layout).

    Args:
        n_in, n_out: input and output widths.
        activation: a name/spec (``"relu"``, ``"leaky_relu(0.2)"``) or an Activation.
        init, bias_init: init specs recorded with the layer (``initlab.init.get`` parses them);
            the Network draws the values. ``weight``/``bias`` set the values directly.
        dtype: float32 (default) or float64.

    ``layer.weight`` and ``layer.bias`` are readable and writable; assigning copies the values
    into the layer's storage (shape-checked), so a Network's fused parameter buffer stays valid.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        activation: str | _activations.Activation = "linear",
        *,
        init: Any = None,
        bias_init: Any = "zeros",
        weight: Array | None = None,
        bias: Array | None = None,
        dtype: Any = np.float32,
    ) -> None:
        self.n_in = check_int("n_in", n_in, low=1)
        self.n_out = check_int("n_out", n_out, low=1)
        self.activation: _activations.Activation = _activations.get(activation)
        self.init_spec: Any = init
        self.bias_init_spec: Any = bias_init
        self.dtype = resolve_dtype(dtype)
        self._w = np.zeros((self.n_out, self.n_in), dtype=self.dtype)
        self._b = np.zeros((self.n_out,), dtype=self.dtype)
        if weight is not None:
            self.weight = weight
        if bias is not None:
            self.bias = bias

    # -- parameters ----------------------------------------------------------------------------
    @property
    def weight(self) -> Array:
        """The weight matrix, shape ``[out, in]`` (a view of the layer's storage)."""
        return self._w

    @weight.setter
    def weight(self, value: Any) -> None:
        self._assign(self._w, value, "weight")

    @property
    def bias(self) -> Array:
        """The bias vector, shape ``[out]``."""
        return self._b

    @bias.setter
    def bias(self, value: Any) -> None:
        self._assign(self._b, value, "bias")

    @staticmethod
    def _assign(dst: Array, value: Any, name: str) -> None:
        try:
            arr = np.asarray(value)
        except Exception:  # noqa: BLE001 - anything not array-like
            bad_type(name, "an array", value)
        if arr.shape != dst.shape:
            raise ValueError(f"The {name!r} must have shape {dst.shape}; got shape {arr.shape}.")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            bad_type(name, "a real numeric array", value)
        dst[...] = arr

    def _bind(self, w: Array, b: Array) -> None:
        """Move the parameters into the given views (used by Network's flat buffer)."""
        w[...] = self._w
        b[...] = self._b
        self._w, self._b = w, b

    @property
    def shape(self) -> tuple[int, int]:
        """``(out, in)``."""
        return (self.n_out, self.n_in)

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x: Array) -> tuple[Array, Array]:
        """``(z, a)`` with ``z = x Wᵀ + b`` and ``a = φ(z)``; x is ``[batch, in]``."""
        z = x @ self._w.T
        z += self._b
        return z, self.activation.forward(z)

    # -- backward ------------------------------------------------------------------------------
    def backward(
        self,
        grad_act: Array | None,
        inputs: Array,
        preact: Array,
        act: Array,
        *,
        grad_preact: Array | None = None,
        need_input_grad: bool = True,
    ) -> DenseGrads:
        """Backward pass from ``grad_act = ∂L/∂a`` (or directly from ``grad_preact = ∂L/∂z``).

        Returns ∂L/∂z, ∂L/∂W (``[out, in]``), ∂L/∂b and ∂L/∂x (None if not ``need_input_grad``).
        """
        if grad_preact is None:
            if grad_act is None:
                raise ValueError("Dense.backward needs 'grad_act' or 'grad_preact'; got neither.")
            grad_preact = grad_act * self.activation.derivative(preact, act)
        gw = grad_preact.T @ inputs
        gb = grad_preact.sum(axis=0)
        gx = grad_preact @ self._w if need_input_grad else None
        return DenseGrads(grad_preact, gw, gb, gx)

    def __repr__(self) -> str:
        return (
            f"Dense({self.n_in}, {self.n_out}, activation={self.activation.spec!r}, "
            f"init={str(self.init_spec)!r}, dtype={self.dtype.name})"
        )
