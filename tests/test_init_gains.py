"""calculate_gain is torch's, value for value and error for error; gain() by two criteria."""

from __future__ import annotations

import math

import pytest
import torch

import initlab.init as ii
from initlab import activations

TORCH_NAMES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]


@pytest.mark.parametrize("name", TORCH_NAMES)
@pytest.mark.parametrize("param", [None, 0, 1, 0.2, -0.5, 3.0])
def test_calculate_gain_identical_to_torch(name: str, param) -> None:
    assert ii.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


@pytest.mark.parametrize("name,param", [("leaky_relu", True), ("leaky_relu", False), ("leaky_relu", "0.1"),
                                        ("gelu", None), ("silu", None), ("Tanh", None), ("", None)])
def test_calculate_gain_errors_like_torch(name: str, param) -> None:
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(name, param)
    with pytest.raises(ValueError, match="nonlinearity|negative_slope"):
        ii.calculate_gain(name, param)


def test_second_moment_gain_known_values() -> None:
    assert ii.gain("relu") == pytest.approx(math.sqrt(2), rel=1e-12)
    assert ii.gain("linear") == pytest.approx(1.0, rel=1e-12)
    assert ii.gain("tanh") == pytest.approx(1.5925374, rel=1e-6)
    assert ii.gain("selu") == pytest.approx(1.0, abs=1e-6)  # SELU is self-normalising
    assert ii.gain("leaky_relu", param=0.3) == pytest.approx(math.sqrt(2 / 1.09), rel=1e-12)


@pytest.mark.parametrize("name", activations.names())
def test_second_moment_gain_keeps_unit_preactivation_variance(name: str) -> None:
    # Monte Carlo: z ~ N(0,1), Var(W) = g²/n -> E[(Σ w φ(z))²] = g² E[φ(z)²] = 1
    import numpy as np

    act = activations.get(name)
    g = ii.gain(act, "second_moment")
    z = np.random.default_rng(0).standard_normal(400_000)
    m2 = float(np.mean(act.forward(z) ** 2))
    se = float(np.std(act.forward(z) ** 2)) / math.sqrt(z.size)
    assert abs(g * g * m2 - 1.0) < 5 * g * g * se


def test_critical_gain_known_values() -> None:
    assert ii.gain("tanh", method="critical") == pytest.approx(1.0, rel=1e-6)
    assert ii.gain("relu", method="critical") == pytest.approx(math.sqrt(2), rel=1e-6)
    assert ii.gain("linear", method="critical") == pytest.approx(1.0, rel=1e-6)
    assert ii.gain("leaky_relu", method="critical", param=0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-6)


def test_critical_gain_closed_forms_independent_of_theory() -> None:
    # With sigma_b = 0 the fixed point is q* = 0 and chi_1 = sigma_w^2 E[phi'(z)^2] as q -> 0, where
    # z ~ N(0, q) lands on either side of 0 with probability 1/2: sigma_w^2 = 2 / (phi'(0-)^2 + phi'(0+)^2).
    # elu(alpha): phi'(0-) = alpha, phi'(0+) = 1; selu: lambda·alpha and lambda (Klambauer et al. 2017).
    assert ii.gain("elu", method="critical") == pytest.approx(1.0, rel=1e-6)
    assert ii.gain("elu", method="critical", param=0.5) == pytest.approx(math.sqrt(2 / 1.25), rel=1e-6)
    lam, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    selu = math.sqrt(2 / (lam * lam * (1 + alpha * alpha)))
    assert selu == pytest.approx(0.6905, abs=1e-4)
    assert ii.gain("selu", method="critical") == pytest.approx(selu, rel=1e-6)


@pytest.mark.parametrize("name", activations.names())
def test_critical_gain_is_sqrt_of_theory_or_a_clear_error(name: str) -> None:
    from initlab import theory

    try:
        expected = math.sqrt(theory.critical_sigma_w2(name, 0.0))
    except ValueError as e:  # no edge of chaos with a finite fixed point (gelu, silu, mish, ...)
        with pytest.raises(ValueError, match=str(e)[:20]):
            ii.gain(name, method="critical")
        return
    g = ii.gain(name, method="critical")
    assert g == expected and math.isfinite(g) and g > 0


def test_gain_bad_input() -> None:
    with pytest.raises(ValueError, match="method"):
        ii.gain("tanh", method="chaos")
    with pytest.raises(ValueError, match="activation"):
        ii.gain("tanhh")
