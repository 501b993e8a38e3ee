"""Verdicts: one line per problem, the layer where it starts, and an edge-of-chaos recommendation."""

from __future__ import annotations

import numpy as np

import initlab
from initlab import init
from initlab.diagnostics import recommend
from initlab.nn import Network


def _x(n: int = 500, d: int = 100, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _kinds(res: initlab.ProbeResult) -> dict[str, object]:
    return {v.kind: v for v in res.verdicts}


def test_recommendation_numbers_come_from_the_theory() -> None:
    for act, scheme in [("tanh", "lecun_normal"), ("relu", "kaiming_normal")]:
        s2 = init.gain(act, method="critical") ** 2
        text = recommend(act)
        assert scheme in text and f"σ_w² = {s2:.4g}" in text and "edge of chaos" in text


def test_relu_exploding_and_xavier_vanishing_and_he_clean() -> None:
    big = initlab.probe(Network([100] + [200] * 8, "relu", output="relu", init="normal(std=1.0)", rng=0), _x(), rng=0)
    v = _kinds(big)["exploding"]
    assert v.layer == 1 and "kaiming_normal" in str(v)
    small = initlab.probe(Network([100] + [200] * 12, "relu", output="relu", init="normal(std=0.02)", rng=0), _x(), rng=0)
    assert _kinds(small)["vanishing"].layer == 1
    he = initlab.probe(Network([100] + [200] * 8, "relu", output="relu", init="kaiming_normal", rng=0), _x(), rng=0)
    assert not {"vanishing", "exploding", "saturation", "dead"} & set(_kinds(he))


def test_dead_units_start_where_the_bias_kills_them() -> None:
    net = Network([100, 200, 200, 200, 10], "relu", init="kaiming_normal", rng=0)
    net.layers[1].bias = np.where(np.arange(200) < 80, -50.0, 0.0).astype(np.float32)  # 40% dead at layer 2
    res = initlab.probe(net, _x(), rng=0)
    assert res.layers[0].dead == 0.0
    assert abs(res.layers[1].dead - 0.4) < 1e-12
    v = _kinds(res)["dead"]
    assert v.layer == 2 and "40%" in v.message


def test_saturation_sigmoid_and_collapse_tanh_ordered_phase() -> None:
    sat = initlab.probe(Network([100, 300, 300, 1], "sigmoid", init="normal(std=1.0)", rng=0), _x(), rng=0)
    assert _kinds(sat)["saturation"].layer == 1
    # ordered phase: small σ_w, large bias -> every input maps to the same point (c* = 1)
    col = initlab.probe(Network([100] + [300] * 10, "tanh", output="tanh", init="normal(std=0.03)",
                                bias_init="normal(std=1.0)", rng=0), _x(), rng=0)
    v = _kinds(col)["collapsed"]
    assert v.layer >= 1 and "cosine" in v.message
    assert col.layers[-1].cosine > 0.95 and col.input_cosine < 0.1


def test_verdicts_serialise_as_lines() -> None:
    res = initlab.probe(Network([100] + [200] * 5, "tanh", output="tanh", init="normal(std=1.0)", rng=0), _x(), rng=0)
    d = res.to_dict()
    assert d["verdicts"] and all(isinstance(s, str) and "\n" not in s for s in d["verdicts"])
    assert d["verdicts"][0].startswith("tanh with weight std")


def test_sigmoid_recommendation_avoids_its_saturated_edge_of_chaos() -> None:
    """Sigmoid's χ₁ = 1 point with zero bias (σ_w² ≈ 103) saturates most units: the recommendation
    must fall back to the second-moment gain, whose σ_w² is 1/E[σ(z)²], and say why."""
    from initlab import activations, theory
    from initlab.diagnostics import recommend

    act = activations.get("sigmoid")
    crit = theory.critical_sigma_w2(act, 0.0)
    q_star = theory.fixed_point(act, crit, 0.0)[0]
    saturated = act.expect(lambda x: act.saturated_mask(x).astype(float), q_star)
    assert saturated > 0.1  # the premise: the edge of chaos is unusable for sigmoid
    text = recommend("sigmoid")
    expected = 1.0 / act.second_moment(1.0)
    assert f"scale={expected:.3g}" in text
    assert "saturates" in text and f"{crit:.3g}" in text
    # tanh's edge of chaos is usable and stays the recommendation
    assert recommend("tanh").startswith("use lecun_normal (σ_w² = 1, the edge of chaos")
