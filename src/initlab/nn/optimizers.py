"""Optimizers acting on ONE flat parameter vector (all weights and biases fused).

The Network keeps every weight and bias as a view into one contiguous vector, and the trainer
writes every gradient into one contiguous vector of the same layout, so an update is a handful
of whole-vector NumPy operations, whatever the depth.

* sgd:      ``θ ← θ − η g``
* momentum: ``v ← μ v + g``, ``θ ← θ − η v`` (torch's SGD with momentum; Polyak, "Some methods
  of speeding up the convergence of iteration methods", 1964)
* adam:     ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``,
  ``θ ← θ − η m̂ / (√v̂ + ε)`` with bias corrections (Kingma & Ba, "Adam: A Method for
  Stochastic Optimization", 2015), as torch.optim.Adam computes it.

SGD folds η into the gradient: its :attr:`grad_scale` is η, so the trainer scales the loss
gradient once and the update is a single subtraction.

>>> import numpy as np
>>> p, g = np.array([1.0, 2.0]), np.array([0.5, -1.0])
>>> opt = get("sgd", lr=0.1); opt.bind(p)
>>> opt.step(p, g * opt.grad_scale); p.tolist()
[0.95, 2.1]
"""

from __future__ import annotations

import abc

import math
from typing import Any

import numpy as np

from initlab._validation import bad_type, check_choice, check_number

__all__ = ["Optimizer", "SGD", "Momentum", "Adam", "get", "names", "hyperparameters"]

Array = np.ndarray


class Optimizer(abc.ABC):
    """Base class: ``bind(params)`` allocates state, ``step(params, grads)`` updates in place.

    ``grads`` passed to :meth:`step` must already be multiplied by :attr:`grad_scale`; step may
    overwrite ``grads``.
    """

    name = ""

    def __init__(self, lr: float) -> None:
        self.lr = check_number("lr", lr, low=0.0, low_open=True)

    @property
    def grad_scale(self) -> float:
        """Factor the trainer applies to the loss gradient before backprop (1 unless sgd)."""
        return 1.0

    def bind(self, params: Array) -> None:
        """Allocate per-parameter state for a flat parameter vector."""

    @abc.abstractmethod
    def step(self, params: Array, grads: Array) -> None:
        """Update the flat parameter vector ``params`` in place from its gradient ``grads``."""

    def config(self) -> dict[str, Any]:
        """Hyperparameters as plain data."""
        return {"name": self.name, "lr": self.lr}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Plain gradient descent ``θ ← θ − η g`` (η folded into the gradient)."""

    name = "sgd"

    @property
    def grad_scale(self) -> float:
        return self.lr

    def step(self, params: Array, grads: Array) -> None:
        np.subtract(params, grads, out=params)


class Momentum(Optimizer):
    """Heavy-ball momentum, torch convention: ``v ← μv + g``, ``θ ← θ − ηv``."""

    name = "momentum"

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        super().__init__(lr)
        self.momentum = check_number("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self._v: Array | None = None

    def bind(self, params: Array) -> None:
        self._v = np.zeros_like(params)

    def step(self, params: Array, grads: Array) -> None:
        v = self._v
        if v is None:
            raise RuntimeError("Momentum.step called before bind(params).")
        v *= v.dtype.type(self.momentum)
        v += grads
        np.multiply(v, v.dtype.type(self.lr), out=grads)
        params -= grads

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "momentum": self.momentum}


class Adam(Optimizer):
    """Adam with bias correction, computed as torch.optim.Adam does."""

    name = "adam"

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1 = check_number("beta1", beta1, low=0.0, high=1.0, high_open=True)
        self.beta2 = check_number("beta2", beta2, low=0.0, high=1.0, high_open=True)
        self.eps = check_number("eps", eps, low=0.0, low_open=True)
        self._m: Array | None = None
        self._v: Array | None = None
        self._tmp: Array | None = None
        self.t = 0

    def bind(self, params: Array) -> None:
        self._m = np.zeros_like(params)
        self._v = np.zeros_like(params)
        self._tmp = np.zeros_like(params)
        self.t = 0

    def step(self, params: Array, grads: Array) -> None:
        m, v, tmp = self._m, self._v, self._tmp
        if m is None or v is None or tmp is None:
            raise RuntimeError("Adam.step called before bind(params).")
        f = params.dtype.type
        self.t += 1
        adam_direction(m, v, grads, tmp, beta1=self.beta1, beta2=self.beta2, eps=self.eps, t=self.t)
        tmp *= f(self.lr / (1 - self.beta1**self.t))
        params -= tmp

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


def adam_direction(m: Array, v: Array, grads: Array, tmp: Array, *, beta1: float, beta2: float, eps: float,
                   t: int) -> Array:
    """Adam's moment updates in place and its step direction in ``tmp`` (Kingma & Ba 2015):
    m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², tmp = m / (√v / √(1 − β₂ᵗ) + ε); the caller
    multiplies by lr / (1 − β₁ᵗ). Shared by :class:`Adam` and the stacked sweep (same arithmetic,
    in the dtype of ``m``).

    >>> m, v, tmp = np.zeros(1), np.zeros(1), np.zeros(1)
    >>> d = adam_direction(m, v, np.array([2.0]), tmp, beta1=0.9, beta2=0.999, eps=0.0, t=1)
    >>> round(float(d[0] / (1 - 0.9)), 6)      # the first step is sign(g)·lr
    1.0
    """
    f = m.dtype.type
    m *= f(beta1)
    np.multiply(grads, f(1 - beta1), out=tmp)
    m += tmp
    v *= f(beta2)
    np.multiply(grads, grads, out=tmp)
    tmp *= f(1 - beta2)
    v += tmp
    np.sqrt(v, out=tmp)
    tmp *= f(1 / math.sqrt(1 - beta2**t))
    tmp += f(eps)
    np.divide(m, tmp, out=tmp)
    return tmp


_OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def names() -> list[str]:
    """``['sgd', 'momentum', 'adam']``."""
    return list(_OPTIMIZERS)


def get(optimizer: str | Optimizer, lr: float = 0.01, **kwargs: Any) -> Optimizer:
    """An Optimizer from a name (with ``lr`` and hyperparameters) or an Optimizer instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if not isinstance(optimizer, str):
        bad_type("optimizer", "one of 'sgd', 'momentum', 'adam' or an Optimizer", optimizer)
    key = check_choice("optimizer", optimizer.lower(), names())
    cls = _OPTIMIZERS[key]
    allowed = hyperparameters(key)
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise TypeError(
            f"Optimizer {key!r} got unknown keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(map(repr, ['lr', *allowed]))}."
        )
    return cls(lr, **kwargs)


def hyperparameters(optimizer: str) -> list[str]:
    """The keyword hyperparameters an optimizer takes besides ``lr``.

    >>> hyperparameters("adam")
    ['beta1', 'beta2', 'eps']
    """
    import inspect

    key = check_choice("optimizer", str(optimizer).lower(), names())
    sig = inspect.signature(_OPTIMIZERS[key].__init__)
    return [p for p in sig.parameters if p not in ("self", "lr")]
