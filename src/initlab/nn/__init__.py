"""initlab.nn: a small NumPy network engine with every layer's forward and backward signal open.

* :class:`Dense` (layers.py): ``a = φ(x Wᵀ + b)`` with W ``[out, in]`` (torch layout), its
  backward pass beside its forward pass.
* :mod:`losses`: ``"bce"`` (on logits, stable), ``"ce"`` (softmax cross-entropy), ``"mse"``.
* :mod:`optimizers`: ``"sgd"``, ``"momentum"``, ``"adam"`` on one fused parameter vector.
* :class:`Network`: sizes + activations + init specs; ``forward(x, capture=True)`` returns every
  layer's :class:`LayerTrace`; ``backward(grad_out, trace)`` fills its gradients; ``fit`` returns a
  :class:`History`; ``evaluate``, ``predict``, ``to_torch``, ``save``/``load``.

Design note, "sigmoid output + cross-entropy" (seed 001): build ``Network(..., output="sigmoid")``
and train with loss ``"bce"`` (the default for a sigmoid output). The loss is computed from the
last layer's pre-activation z as ``max(z,0) − zy + log(1+e^{−|z|})`` and backprop starts from
``∂L/∂z = σ(z) − y``, so it is exact and never takes log(0); ``predict`` returns σ(z).
"""

from __future__ import annotations

from initlab.nn import losses, optimizers
from initlab.nn.layers import Dense
from initlab.nn.network import History, LayerTrace, Network

__all__ = ["Network", "Dense", "LayerTrace", "History", "losses", "optimizers"]
