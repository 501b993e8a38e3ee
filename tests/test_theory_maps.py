"""Mean-field maps: closed forms, fixed points, edge of chaos, phases, vectorisation, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab import activations as A
from initlab import theory as T


def test_critical_values() -> None:
    assert T.critical_sigma_w2("tanh") == 1.0
    assert T.critical_sigma_w2("relu") == 2.0
    assert T.critical_sigma_w2("linear") == 1.0
    assert T.critical_sigma_w2("leaky_relu(0.2)") == pytest.approx(2 / 1.04)
    assert T.critical_sigma_w2("erf") == pytest.approx(math.pi / 4)


@pytest.mark.parametrize("name, sb2", [("tanh", 0.05), ("tanh", 0.3), ("sigmoid", 0.0), ("erf", 0.1), ("elu", 0.0)])
def test_critical_point_has_chi1_one(name: str, sb2: float) -> None:
    sw2 = T.critical_sigma_w2(name, sb2)
    assert T.chi1(name, sw2, sb2) == pytest.approx(1.0, abs=1e-9)
    assert T.phase(name, sw2, sb2) == "critical"
    assert T.phase(name, sw2 * 0.9, sb2) == "ordered"
    assert T.phase(name, sw2 * 1.1, sb2) == "chaotic"


def test_no_edge_when_the_length_map_diverges_first() -> None:
    with pytest.raises(ValueError, match="diverge"):
        T.critical_sigma_w2("gelu", 0.1)


def test_sigmoid_edge_of_chaos_by_definition() -> None:
    """σ_b = 0 sigmoid: χ₁ = σ_w² E[φ′(√q* z)²] = 1 at q* = σ_w² E[φ(√q* z)²]."""
    act = A.get("sigmoid")
    sw2 = T.critical_sigma_w2(act, 0.0)
    q, _ = T.fixed_point(act, sw2, 0.0)
    assert q == pytest.approx(sw2 * act.second_moment(q), rel=1e-10)
    assert sw2 * act.deriv_second_moment(q) == pytest.approx(1.0, rel=1e-9)


def test_relu_closed_forms() -> None:
    q, c = T.fixed_point("relu", 1.5, 0.5)
    assert q == pytest.approx(0.5 / (1 - 0.75))
    assert c == 1.0
    assert T.chi1("relu", 1.5, 0.5) == pytest.approx(0.75)
    xi_q, xi_c = T.depth_scales("relu", 1.5, 0.5)
    assert xi_q == pytest.approx(-1 / math.log(0.75)) and xi_c == pytest.approx(-1 / math.log(0.75))
    assert T.length_map("relu", 3.0, 2.0, 0.1) == pytest.approx(3.1)
    # c-map is the normalised arc-cosine kernel (Cho & Saul 2009)
    cin = 0.3
    theta = math.acos(cin)
    expected = (math.sin(theta) + (math.pi - theta) * cin) / math.pi
    assert T.correlation_map("relu", cin, 2.0, 0.0, q=1.0) == pytest.approx(expected)


def test_divergence_and_zero_fixed_points() -> None:
    q, c = T.fixed_point("relu", 3.0, 0.1)
    assert q == math.inf and math.isnan(c)
    p = T.point("relu", 3.0, 0.1)
    assert p.phase == "chaotic" and p.chi1 == pytest.approx(1.5)
    assert any("diverges" in n for n in p.notes())
    assert T.fixed_point("tanh", 0.7, 0.0)[0] == 0.0
    assert T.fixed_point("relu", 2.0, 0.0, q0=3.0)[0] == 3.0  # every q is fixed
    assert T.fixed_point("gelu", 8.0, 0.0)[0] == math.inf
    xi_q, xi_c = T.depth_scales("tanh", 1.0, 0.0)
    assert xi_q == math.inf and xi_c == math.inf
    assert T.trainable_depth("tanh", 1.0, 0.0) == math.inf


@pytest.mark.parametrize("name, sw2, sb2", [("tanh", 1.3, 0.05), ("tanh", 3.0, 0.2), ("sigmoid", 20.0, 0.1), ("gelu", 1.2, 0.3)])
def test_fixed_points_are_fixed(name: str, sw2: float, sb2: float) -> None:
    q, c = T.fixed_point(name, sw2, sb2)
    assert T.length_map(name, q, sw2, sb2) == pytest.approx(q, rel=1e-10)
    assert T.correlation_map(name, c, sw2, sb2, q=q) == pytest.approx(c, abs=1e-8)
    # c* is the stable fixed point: iterating the c-map from 0.2 lands on it
    ci = 0.2
    for _ in range(400):
        ci = T.correlation_map(name, ci, sw2, sb2, q=q)
    assert ci == pytest.approx(c, abs=1e-6)


def test_xi_q_formula() -> None:
    act = A.get("tanh")
    sw2, sb2 = 1.3, 0.1
    q, _ = T.fixed_point(act, sw2, sb2)
    slope = sw2 * (act.deriv_second_moment(q) + act.expect(lambda x: act.fn(x) * act.deriv2(x), q))
    # the slope of the length map at q*, by finite differences
    h = 1e-5
    fd = (T.length_map(act, q + h, sw2, sb2) - T.length_map(act, q - h, sw2, sb2)) / (2 * h)
    assert slope == pytest.approx(fd, rel=1e-6)
    assert T.depth_scales(act, sw2, sb2)[0] == pytest.approx(-1 / math.log(slope), rel=1e-9)


def test_vectorised_equals_scalar() -> None:
    sw = np.array([0.5, 1.0, 1.8, 3.0])
    sb = np.array([0.0, 0.05, 0.05, 0.2])
    q, c = T.fixed_point("tanh", sw, sb)
    chi = T.chi1("tanh", sw, sb)
    for i in range(sw.size):
        qs, cs = T.fixed_point("tanh", float(sw[i]), float(sb[i]))
        assert q[i] == pytest.approx(qs, rel=1e-12, abs=1e-300)
        assert c[i] == pytest.approx(cs, abs=1e-10)
        assert chi[i] == pytest.approx(T.chi1("tanh", float(sw[i]), float(sb[i])), rel=1e-12)


def test_phase_diagram_matches_pointwise() -> None:
    sw = np.linspace(0.5, 3.0, 6)
    sb = np.array([0.0, 0.1, 0.3])
    d = T.phase_diagram("tanh", sw, sb)
    assert d.xi_c.shape == (3, 6)
    for i, j in [(0, 1), (1, 4), (2, 5), (2, 0)]:
        p = T.point("tanh", float(sw[j]), float(sb[i]))
        assert d.chi1[i, j] == pytest.approx(p.chi1, rel=1e-6)
        assert d.xi_c[i, j] == pytest.approx(p.xi_c, rel=1e-3)
        assert ("ordered", "critical", "chaotic")[d.phase[i, j]] == p.phase
    for i in range(3):  # the interpolated χ₁ = 1 line is near the exact edge
        assert d.critical_line[i] == pytest.approx(T.critical_sigma_w2("tanh", float(sb[i])), rel=0.05)
    assert d.to_dict()["phase"][0][0] == "ordered"


def test_plot_phase_diagram(tmp_path) -> None:
    d = T.phase_diagram("relu", np.linspace(0.5, 3.0, 8), np.linspace(0.0, 0.5, 5))
    out = T.plot_phase_diagram(d, tmp_path / "phase.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="png"):
        T.plot_phase_diagram(d, tmp_path / "phase.jpg")


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: T.fixed_point("tanh", -1.0, 0.0), "sigma_w2"),
        (lambda: T.chi1("tanh", 1.0, float("nan")), "sigma_b2"),
        (lambda: T.critical_sigma_w2("tanh", -0.1), "sigma_b2"),
        (lambda: T.point("nope", 1.0, 0.0), "activation"),
        (lambda: T.phase_diagram("tanh", [1.0], [0.0, 1.0]), "sigma_w2_grid"),
        (lambda: T.phase_diagram("tanh", [2.0, 1.0], [0.0, 1.0]), "increasing"),
        (lambda: T.correlation_map("tanh", 0.5, 0.5, 0.0), "q"),
    ],
)
def test_bad_input_raises_value_error(call, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        call()


@pytest.mark.parametrize("name, sb2", [("softplus", 0.0), ("softplus", 0.5)])
def test_no_edge_where_chi1_reaches_one_only_at_q_star_inf(name: str, sb2: float) -> None:
    """softplus behaves like ReLU for large q: χ₁ → σ_w²/2 = 1 at σ_w² = 2
    only as q* → inf, which is not an edge of chaos."""
    assert T.fixed_point(name, 2.01, sb2)[0] == math.inf and T.chi1(name, 1.99, sb2) < 1
    with pytest.raises(ValueError, match="length map diverges"):
        T.critical_sigma_w2(name, sb2)


def test_callers_of_critical_sigma_w2_cope_with_no_edge() -> None:
    from initlab import init
    from initlab.diagnostics import recommend

    with pytest.raises(ValueError, match="diverges"):
        init.gain("softplus", method="critical")
    text = recommend("softplus")  # falls back to the second-moment gain, and says so
    assert "second-moment" in text and f"{init.gain('softplus') ** 2:.3g}" in text
    d = T.phase_diagram("softplus", np.linspace(0.5, 4.0, 8), [0.0, 0.5])
    assert np.all(np.isnan(d.critical_line))  # the χ₁ = 1 crossing into q* = inf is not an edge


def test_length_map_validates_q_for_closed_forms_too() -> None:
    for name in ("relu", "leaky_relu(0.2)", "linear", "tanh"):
        with pytest.raises(ValueError, match="'q'"):
            T.length_map(name, -1.0, 2.0, 0.0)
        with pytest.raises(ValueError, match="'q'"):
            T.length_map(name, math.inf, 2.0, 0.0)


@pytest.mark.parametrize("call", [
    lambda: T.phase("tanh", "1", 0.0),
    lambda: T.phase("tanh", 1.0, "0"),
    lambda: T.length_map("relu", 1.0, "2", 0.0),
    lambda: T.chi1("tanh", ["1", "2"], 0.0),
    lambda: T.fixed_point("tanh", True, 0.0),
])
def test_strings_and_booleans_are_not_numbers(call) -> None:
    with pytest.raises(TypeError, match="sigma_"):
        call()


def test_shape_mismatch_names_both_arguments_and_shapes() -> None:
    with pytest.raises(ValueError, match=r"'sigma_w2' and 'sigma_b2'.*\(2,\) and \(3,\)"):
        T.chi1("tanh", [1.0, 2.0], [0.0, 0.1, 0.2])


def test_edge_below_a_return_to_the_large_q_limit() -> None:
    """elu with σ_b² = 0.5: χ₁ crosses 1 near σ_w² ≈ 1.77 (finite q*), then falls back towards its
    large-q limit σ_w²/2 as q* → inf at σ_w² = 2; the edge is the first crossing."""
    s = T.critical_sigma_w2("elu", 0.5)
    assert 1.5 < s < 1.9 and math.isfinite(T.fixed_point("elu", s, 0.5)[0])
    assert T.chi1("elu", s, 0.5) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", ["tanh", "selu", "erf", "sigmoid"])
def test_phase_diagram_critical_line_is_critical_sigma_w2(name: str) -> None:
    """One definition of the edge of chaos: the phase diagram's line is critical_sigma_w2's root."""
    hi = 2.0 * T.critical_sigma_w2(name, 0.4)
    sb = np.linspace(0.0, 0.4, 5)
    d = T.phase_diagram(name, np.linspace(hi / 40, hi, 40), sb)
    for i, b in enumerate(sb):
        assert d.critical_line[i] == pytest.approx(T.critical_sigma_w2(name, float(b)), abs=1e-8)
        assert d.critical_note[i] == ""


def test_phase_diagram_says_why_a_row_has_no_edge() -> None:
    d = T.phase_diagram("tanh", np.linspace(0.1, 0.9, 5), [0.0, 0.1])
    assert np.all(np.isnan(d.critical_line)) and all("outside the grid" in n for n in d.critical_note)
    d = T.phase_diagram("gelu", np.linspace(0.1, 3.0, 20), [0.0, 0.01])
    assert math.isnan(d.critical_line[0]) and "diverge" in d.critical_note[0]
    d = T.phase_diagram("linear", np.linspace(2.0, 3.0, 4), [0.0, 0.1])
    assert np.all(np.isnan(d.critical_line)) and "sigma_w2 = 1" in d.critical_note[0]
