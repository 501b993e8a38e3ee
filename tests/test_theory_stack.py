"""predict_stack: the per-layer prediction for a finite stack vs a Monte-Carlo measurement."""

from __future__ import annotations

import numpy as np
import pytest

from initlab import activations as A
from initlab.nn import predict_stack

SEED003_INITS = {
    "small 0.01*N(0,1)": "normal(std=0.01)",
    "big N(0,1)": "normal(std=1)",
    "xavier N(0,1)/sqrt(fan_in)": "lecun_normal",
}


def _seed003_measure(spec: str, seed: int = 3) -> np.ndarray:
    """Seed 003: tanh, 10 layers of 500, x ~ N(0,1) of shape 1000×500; std per layer."""
    from initlab import init

    rng = np.random.default_rng(seed)
    h = rng.standard_normal((1000, 500))
    stds = []
    for _ in range(10):
        w = init.get(spec)((500, 500), rng=rng, dtype=np.float64)  # torch layout [out, in]
        h = np.tanh(h @ w.T)
        stds.append(h.std())
    return np.array(stds)


@pytest.mark.parametrize("label", list(SEED003_INITS))
def test_seed003_prediction_within_3_percent(label: str) -> None:
    spec = SEED003_INITS[label]
    pred = predict_stack([500] * 11, "tanh", spec, input_var=1.0).act_std
    meas = _seed003_measure(spec)
    ok = meas > 1e-3
    assert ok[0]
    # 3% per layer where the measured std is above 1e-3: the stated acceptance criterion
    np.testing.assert_allclose(pred[ok], meas[ok], rtol=0.03)


def test_seed003_tables_reproduced() -> None:
    """The seed's published numbers are predicted (layer 1 and 10 of Xavier, big init ≈ 0.98).

    The tables are one measurement each, so the criterion is the issue's for theory against a
    measurement: within 3% per layer (where the measured std is above 1e-3)."""
    xav = predict_stack([500] * 11, "tanh", "lecun_normal").act_std
    assert xav[0] == pytest.approx(0.627422, rel=0.03)
    assert xav[-1] == pytest.approx(0.230877, rel=0.03)
    big = predict_stack([500] * 11, "tanh", "normal(std=1)").act_std
    np.testing.assert_allclose(big, 0.9817, rtol=0.03)
    small = predict_stack([500] * 11, "tanh", "normal(std=0.01)").act_std
    assert small[0] == pytest.approx(0.213260, rel=0.03)


def test_mixed_stack_forward_and_backward_vs_monte_carlo() -> None:
    """Varying widths, activations, a bias; the backward δ variances too (width ≥ 1000).

    Tolerance per layer: 5·√(2/N_eff) relative, N_eff the number of units in the layer (the
    chi-square fluctuation of a mean of squares over that many roughly independent units).
    """
    from initlab import init

    sizes = [300, 1500, 1200, 1000, 1000]
    acts = ["tanh", "relu", "gelu", "linear"]
    inits = ["xavier_normal", "he_normal", "lecun_normal", "lecun_normal"]
    bias = ["zeros", "normal(std=0.2)", "zeros", "zeros"]
    pred = predict_stack(sizes, acts, inits, input_var=2.0, bias_inits=bias)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((400, sizes[0])) * np.sqrt(2.0)
    ws, bs, hs, as_ = [], [], [], [x]
    for i, (a, wi, bi) in enumerate(zip(acts, inits, bias)):
        w = init.get(wi)((sizes[i + 1], sizes[i]), rng=rng, dtype=np.float64)
        b = init.get(bi)((sizes[i + 1],), rng=rng, dtype=np.float64)
        h = as_[-1] @ w.T + b
        ws.append(w)
        hs.append(h)
        as_.append(A.get(a).fn(h))
    g = rng.standard_normal(as_[-1].shape)  # dL/d output
    deltas = [None] * 4
    for i in reversed(range(4)):
        d = A.get(acts[i]).deriv(hs[i]) * g
        deltas[i] = d
        g = d @ ws[i]
    for i in range(4):
        tol = 5 * np.sqrt(2 / sizes[i + 1])
        assert pred.preact_var[i] == pytest.approx(hs[i].var() + hs[i].mean() ** 2, rel=tol)
        assert pred.act_std[i] == pytest.approx(as_[i + 1].std(), rel=tol)
        assert pred.act_mean[i] == pytest.approx(as_[i + 1].mean(), abs=tol * pred.act_std[i])
        assert pred.grad_var[i] == pytest.approx(np.mean(deltas[i] ** 2), rel=tol)


def test_prediction_structure_and_errors() -> None:
    p = predict_stack([8, 4, 2], ["relu", "linear"], "he_normal")
    assert len(p) == 2 and p.layers[0].index == 1
    d = p.to_dict()
    assert set(d["layers"][0]) >= {"preact_var", "act_std", "act_mean", "grad_var", "preact_std"}
    assert p.preact_var[0] == pytest.approx(2.0)  # He: σ_w² = 2, E[x²] = 1
    assert p.grad_var[1] == pytest.approx(1.0)  # linear output
    assert p.grad_var[0] == pytest.approx(0.5 * 2 * (1 / 4) * 2)  # E[relu′²]·n_out·Var(W₂)
    ones = predict_stack([8, 4], "tanh", "ones")
    assert np.isnan(ones.act_std[0]) and "zero-mean" in ones.notes[0]
    with pytest.raises(ValueError, match="sizes"):
        predict_stack([8], "tanh", "he_normal")
    with pytest.raises(ValueError, match="inits"):
        predict_stack([8, 4, 2], "tanh", ["he_normal"])
    with pytest.raises(ValueError, match="input_var"):
        predict_stack([8, 4], "tanh", "he_normal", input_var=-1.0)
    with pytest.raises(TypeError, match="sizes"):
        predict_stack("8,4", "tanh", "he_normal")
