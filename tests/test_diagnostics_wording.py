"""The vanishing/exploding verdict reads as English with sensible numbers in every case."""

from __future__ import annotations

import math
import re

from initlab.diagnostics import verdicts
from initlab.diagnostics._measure import new_layer
from initlab.diagnostics._result import ProbeResult
from initlab.activations import get


def _result(stds: list[float], input_std: float = 1.0, act: str = "tanh") -> ProbeResult:
    layers = []
    for i, s in enumerate(stds):
        st = new_layer(i + 1, f"layer{i + 1}", "dense", get(act))
        st.std = s
        st.saturated = 0.0
        st.dead = 0.0
        layers.append(st)
    return ProbeResult(layers=layers, input_std=input_std, backward=False)


def _message(stds: list[float], kind: str, **kw: float) -> str:
    found = {v.kind: v for v in verdicts(_result(stds, **kw))}
    assert kind in found, found
    msg = found[kind].message
    # no broken phrases of the old builder
    assert not re.search(r"by (to|×)|\bby\s+per\b|  ", msg), msg
    return msg


def test_geometric_fall_reports_the_factor_and_the_span() -> None:
    stds = [0.21 / 4.5**k for k in range(10)]  # 0.21 at layer 1 → 2.78e-7 at layer 10
    msg = _message(stds, "vanishing")
    # from the input's 1 to 2.78e-7 over 10 layers: (1 / 2.78e-7) ** (1/10) = 4.5 per layer
    assert msg.endswith("activation std falls by a factor of ~4.5 per layer from layer 1 on "
                        "(1 at the input → 2.78e-7 at layer 10)"), msg


def test_fall_to_exactly_zero_names_the_layer() -> None:
    msg = _message([0.5, 0.3, 0.1, 0.05, 0.01, 0.001, 0.0, 0.0, 0.0, 0.0], "vanishing")
    assert msg.endswith("activation std falls to 0 by layer 7 (1 at the input)"), msg


def test_sudden_fall_at_the_last_layer_is_one_step() -> None:
    # a tiny output layer: flat, then a drop at layer 3 only
    msg = _message([1.0, 1.0, 0.003], "vanishing")
    assert msg.endswith("activation std falls by a factor of ~333 at layer 3 (1 at layer 2 → 0.003 at layer 3)"), msg
    msg = _message([166.0, 166.0, 0.0], "vanishing", input_std=166.0)
    assert msg.endswith("activation std falls to 0 at layer 3 (166 at layer 2)"), msg


def test_exploding_per_layer_and_overflow() -> None:
    msg = _message([2.0 * 3.0**k for k in range(6)], "exploding")
    # from the input (1) to 486 over 6 layers: 486 ** (1/6) = 2.8
    assert msg.endswith("activation std grows by a factor of ~2.8 per layer from layer 1 on (1 at the input → 486 at layer 6)"), msg
    msg = _message([1.0, 1e10, math.inf, math.inf], "exploding")
    assert "overflows to inf by layer 3" in msg, msg
