"""Theory vs wide random networks (width 1000): q*, c*, χ₁ for tanh, relu, sigmoid, gelu.

Each statistic is averaged over the last layers of a deep random network (W ~ N(0, σ_w²/N),
b ~ N(0, σ_b²)), for R independent networks. Layers of one network are autocorrelated, so the
standard error comes from the R independent replicates, and the tolerance is the two-sided
99.9% Student-t quantile (R − 1 degrees of freedom) times that SE, plus an O(1/N) finite-width
allowance (the mean-field theory is exact only as N → ∞).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from initlab import activations as A
from initlab import theory as T

N = 1000  # width
DEPTH = 24  # layers run; statistics averaged over the last 12
LAST = 12
R = 8  # independent networks per case (t(0.9995, 7) = 5.4 SE)
CASES = [
    ("tanh", 0.9, 0.3),  # ordered
    ("tanh", 3.0, 0.1),  # chaotic: c* < 1
    ("relu", 1.6, 0.4),
    ("sigmoid", 12.0, 0.5),
    ("sigmoid", 160.0, 0.0),  # chaotic
    ("gelu", 1.5, 0.2),
]


def _simulate(name: str, sw2: float, sb2: float, seed: int) -> dict[str, np.ndarray]:
    """Per layer: q (mean h² of one input), c (correlation of two inputs), and the growth of an
    infinitesimal perturbation ‖δh^{l+1}‖²/‖δh^l‖² (whose mean is χ₁)."""
    act = A.get(name)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, N))
    x[1] = 0.5 * x[0] + np.sqrt(0.75) * x[1]  # two inputs with correlation ≈ 0.5
    v = rng.standard_normal(N)  # tangent direction at input 0
    h = x
    dh = v
    qs, cs, growth = [], [], []
    for _ in range(DEPTH):
        w = rng.standard_normal((N, N), dtype=np.float32) * np.float32(np.sqrt(sw2 / N))
        b = rng.standard_normal(N) * np.sqrt(sb2)
        a = act.fn(h)
        da = act.deriv(h[0]) * dh
        h_new = a @ w.T + b
        dh_new = w @ da
        growth.append(np.sum(dh_new**2) / np.sum(dh**2))
        h, dh = h_new, dh_new / np.linalg.norm(dh_new) * np.sqrt(N)  # keep the tangent O(1)
        q0, q1 = np.mean(h[0] ** 2), np.mean(h[1] ** 2)
        qs.append(q0)
        cs.append(np.mean(h[0] * h[1]) / np.sqrt(q0 * q1))
    return {"q": np.array(qs[-LAST:]), "c": np.array(cs[-LAST:]), "chi": np.array(growth[-LAST:])}


def _check(measured: np.ndarray, predicted: float, what: str) -> None:
    """``measured``: one value per independent replicate."""
    se = measured.std(ddof=1) / np.sqrt(measured.size)
    tol = stats.t.ppf(1 - 0.001 / 2, measured.size - 1) * se + 2.0 / N * max(abs(predicted), 1e-3) + 1e-9
    assert abs(measured.mean() - predicted) <= tol, f"{what}: measured {measured.mean():.5g} ± {se:.2g}, theory {predicted:.5g}"


@pytest.mark.parametrize("name, sw2, sb2", CASES)
def test_fixed_points_and_chi1_match_wide_networks(name: str, sw2: float, sb2: float) -> None:
    p = T.point(name, sw2, sb2)
    assert np.isfinite(p.q_star)
    sims = [_simulate(name, sw2, sb2, seed=1234 + r) for r in range(R)]
    for key, pred, what in [("q", p.q_star, "q*"), ("c", p.c_star, "c*"), ("chi", p.chi1, "chi1")]:
        _check(np.array([s[key].mean() for s in sims]), pred, what)


def test_chaotic_case_has_c_star_below_one() -> None:
    """The MC check above is only meaningful for c* if some case is chaotic."""
    assert T.point("tanh", 3.0, 0.1).c_star < 0.9
    assert T.point("sigmoid", 160.0, 0.0).c_star < 0.99
