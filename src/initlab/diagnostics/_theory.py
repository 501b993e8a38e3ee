"""The theory columns of a probe: :func:`initlab.nn.predict_stack` for the probed stack."""

from __future__ import annotations

import math
from typing import Any

from initlab.diagnostics._result import LayerStats

__all__ = ["add_theory", "empirical_spec", "needs_fan_in"]


def empirical_spec(std: float) -> str:
    """An init spec whose variance is the measured one (for weights the probe did not draw)."""
    return f"normal(mean=0.0, std={float(std)!r})"


def needs_fan_in(initializer: Any) -> bool:
    """True for an Initializer with an unset ``fan_in`` parameter (``torch_default_bias``): a bias
    scheme that must be told the layer's fan-in."""
    return "fan_in" in initializer.params and initializer.params["fan_in"] is None


def add_theory(
    layers: list[LayerStats],
    sizes: list[int],
    activations: list[Any],
    inits: list[Any],
    bias_inits: list[Any],
    input_var: float,
    notes: list[str],
) -> bool:
    """Fill ``theory_std``, ``theory_preact_std`` and ``theory_grad_std`` of ``layers`` in place.

    ``theory_grad_std`` is predicted relative to the output layer's gradient, so it is scaled to
    the measured ``grad_rms`` of the last layer (its second moment is what propagates; its std is 0
    under ``loss="sum"``). The prediction's notes (e.g. layers it cannot
    predict) are appended to ``notes``. Returns True (theory columns were filled).
    """
    from initlab.nn import predict_stack

    pred = predict_stack(sizes, activations, inits, input_var=input_var, bias_inits=bias_inits)
    notes.extend(pred.notes)
    act_std = [float(v) for v in pred.act_std]
    preact_var = [float(v) for v in pred.preact_var]
    grad_var = [float(v) for v in pred.grad_var]
    for i, st in enumerate(layers):
        st.theory_std = act_std[i]
        st.theory_preact_std = math.sqrt(max(preact_var[i], 0.0))
    last = layers[-1]
    if last.grad_rms is not None and grad_var[-1] > 0:
        scale = last.grad_rms / math.sqrt(float(grad_var[-1]))
        for i, st in enumerate(layers):
            st.theory_grad_std = math.sqrt(max(grad_var[i], 0.0)) * scale
    return True
