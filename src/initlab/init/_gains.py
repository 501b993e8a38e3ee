"""Gains: torch's table (``calculate_gain``) and two stated criteria for any activation (``gain``).

* :func:`calculate_gain` reproduces ``torch.nn.init.calculate_gain`` value for value and error
  for error (its tanh 5/3 and selu 3/4 are heuristics, pytorch#24991, pytorch#50664).
* :func:`gain` derives a gain from the activation itself, for every activation in
  :mod:`initlab.activations`:

  - ``"second_moment"``: g = 1/√E[φ(z)²], z ~ N(0, 1): with Var(W) = g²/fan_in the
    pre-activation variance stays 1 layer after layer (relu √2, tanh ≈ 1.593, selu 1).
    He et al., "Delving Deep into Rectifiers", 2015 (the derivation generalised).
  - ``"critical"``: g = √σ_w²* with σ_b² = 0, the edge of chaos where χ₁ = 1
    (Poole et al., "Exponential expressivity in deep neural networks through transient chaos",
    2016; Schoenholz et al., "Deep Information Propagation", 2017). tanh 1, relu √2.
"""

from __future__ import annotations

import math
from typing import Any

from initlab._validation import check_choice
from initlab.theory._predict import critical_gain  # theory takes numbers and never imports init

__all__ = ["calculate_gain", "gain", "GAIN_METHODS", "TORCH_NONLINEARITIES"]

_LINEAR_FNS = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
TORCH_NONLINEARITIES = (*_LINEAR_FNS, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
GAIN_METHODS = ("second_moment", "critical")


def calculate_gain(nonlinearity: str, param: Any = None) -> float:
    """The recommended gain for ``nonlinearity``, identical to ``torch.nn.init.calculate_gain``.

    ================= ==================================
    nonlinearity      gain
    ================= ==================================
    linear / conv*    1
    sigmoid           1
    tanh              5/3
    relu              √2
    leaky_relu        √(2 / (1 + negative_slope²)), slope = param (default 0.01; int/float, not bool)
    selu              3/4
    ================= ==================================

    Other names (gelu, silu, ...) raise ValueError as torch does; use :func:`gain` for them.

    >>> calculate_gain("tanh")
    1.6666666666666667
    >>> round(calculate_gain("leaky_relu", 0.2), 5)
    1.38675
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(
                f"The 'param' argument (leaky_relu's negative_slope) must be an int or float, "
                f"not a bool; got {type(param).__name__} {param!r}: negative_slope {param} not a valid number."
            )
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    from initlab._validation import suggest

    raise ValueError(
        f"Unsupported nonlinearity {nonlinearity}: the 'nonlinearity' argument must be one of "
        f"{', '.join(TORCH_NONLINEARITIES)} (torch's table); got {nonlinearity!r}"
        f"{suggest(str(nonlinearity), TORCH_NONLINEARITIES)}. "
        "For other activations use initlab.init.gain(activation, method=...)."
    )


def gain(activation: Any, method: str = "second_moment", param: float | None = None) -> float:
    """A gain for any activation initlab knows, by a stated criterion.

    ``method="second_moment"``: g = 1/√E[φ(z)²], z ~ N(0, 1) (keeps Var(preactivation) = 1
    with Var(W) = g²/fan_in and zero bias). ``method="critical"``: g = √σ_w²* where
    χ₁ = σ_w² E[φ′(√q* z)²] = 1 at σ_b² = 0 (edge of chaos; Schoenholz et al., "Deep Information
    Propagation", 2017), computed by :func:`initlab.theory.critical_gain`.

    ``activation`` is a name (``"gelu"``, ``"leaky_relu(0.3)"``) or an
    :class:`initlab.activations.Activation`; ``param`` sets its parameter.

    >>> round(gain("relu"), 12) == round(math.sqrt(2), 12)
    True
    >>> round(gain("tanh"), 3)
    1.593
    """
    from initlab import activations

    check_choice("method", method, GAIN_METHODS)
    act = activations.get(activation, param)
    if method == "second_moment":
        m2 = float(act.second_moment(1.0))
        if not m2 > 0.0 or not math.isfinite(m2):
            raise ValueError(
                f"The 'activation' argument must have E[phi(z)^2] > 0 for the second_moment gain; "
                f"got {act.spec!r} with E[phi(z)^2] = {m2!r}."
            )
        return 1.0 / math.sqrt(m2)
    return critical_gain(act, 0.0)
