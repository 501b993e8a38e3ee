"""initlab.nn: a small NumPy network engine with every layer's forward and backward signal open.

* One layer protocol (layers.py): each layer has its parameters' shapes and init specs,
  ``forward(x) -> (y, cache)``, ``backward(g, cache) -> (g_x, grads)`` and its mean-field map
  ``propagate(signal)`` side by side. Layers: :class:`Dense`, :class:`Conv1d`, :class:`Conv2d`
  (stride, zeros/circular padding, groups, dilation), :class:`MaxPool1d`/``2d``,
  :class:`AvgPool1d`/``2d``, :class:`GlobalAvgPool`, :class:`Flatten`, :class:`BatchNorm`,
  :class:`LayerNorm`, :class:`Dropout`, :class:`Activation` and :class:`Residual`
  (``x + α·branch(x)``).
* :mod:`losses`: ``"bce"`` (on logits, stable), ``"ce"`` (softmax cross-entropy), ``"mse"``.
* :mod:`optimizers`: ``"sgd"``, ``"momentum"``, ``"adam"`` on one fused parameter vector.
* :mod:`callbacks`: ``fit(..., callbacks=[...])`` (:class:`initlab.diagnostics.Probe` records
  per-layer statistics over training).
* :class:`Network`: a sequence of layers (or the shorthand ``Network([2, 12, 6, 1], "relu")``);
  ``forward(x, capture=True)`` returns every layer's :class:`LayerTrace`; ``backward(grad_out,
  trace)`` fills its gradients; ``fit`` returns a :class:`History`; ``evaluate``, ``predict``,
  ``to_torch``, ``save``/``load``.

Design note, "sigmoid output + cross-entropy" (seed 001): build ``Network(..., output="sigmoid")``
and train with loss ``"bce"`` (the default for a sigmoid output). The loss is computed from the
last layer's pre-activation z as ``max(z,0) − zy + log(1+e^{−|z|})`` and backprop starts from
``∂L/∂z = σ(z) − y``, so it is exact and never takes log(0); ``predict`` returns σ(z).
"""

from __future__ import annotations

from initlab.nn import callbacks, losses, optimizers
from initlab.nn.blocks import BatchNorm, LayerNorm, Residual
from initlab.nn.callbacks import Callback
from initlab.nn.conv import AvgPool1d, AvgPool2d, Conv1d, Conv2d, GlobalAvgPool, MaxPool1d, MaxPool2d
from initlab.nn.layers import Activation, Dense, Dropout, Flatten, Layer, ParamSpec
from initlab.nn.network import Network
from initlab.nn._stack import LayerPrediction, StackPrediction, predict_stack
from initlab.nn.training import History, LayerTrace

__all__ = [
    "Network", "Layer", "ParamSpec", "Dense", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "GlobalAvgPool", "Flatten", "BatchNorm", "LayerNorm", "Dropout", "Activation", "Residual", "LayerTrace",
    "History", "Callback", "callbacks", "losses", "optimizers", "predict_stack", "StackPrediction", "LayerPrediction",
]
