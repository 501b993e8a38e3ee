"""initlab.apply: init specs onto a torch model, in place, with a record of what was set."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import initlab

torch = pytest.importorskip("torch")


def _model() -> "torch.nn.Module":
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(16 * 6 * 6, 200), torch.nn.Tanh(), torch.nn.Linear(200, 10),
    )


def test_single_spec_sets_every_weight_and_no_bias() -> None:
    m = _model()
    b_before = m[3].bias.detach().clone()
    rec = initlab.apply(m, "kaiming_normal(nonlinearity=relu)", rng=0)
    assert [(e["module"], e["param"]) for e in rec.entries] == [("0", "weight"), ("3", "weight"), ("5", "weight")]
    assert torch.equal(m[3].bias, b_before)
    # KS test of the Linear(576 -> 200) weights against N(0, 2/fan_in), alpha = 0.001
    w = m[3].weight.detach().numpy().ravel()
    assert stats.kstest(w, "norm", args=(0, np.sqrt(2 / 576))).pvalue > 1e-3
    conv = m[0].weight.detach().numpy().ravel()
    assert stats.kstest(conv, "norm", args=(0, np.sqrt(2 / 27))).pvalue > 1e-3


def test_rules_by_type_name_and_first_match_wins() -> None:
    m = _model()
    rules = {"5": {"weight": "zeros", "bias": "constant(value=0.5)"},
             torch.nn.Linear: {"weight": "xavier_uniform", "bias": "zeros"},
             "Conv2d": "orthogonal"}
    rec = initlab.apply(m, rules, rng=1)
    assert torch.count_nonzero(m[5].weight) == 0 and torch.all(m[5].bias == 0.5)
    assert torch.all(m[3].bias == 0)
    bound = np.sqrt(6 / (576 + 200))
    assert float(m[3].weight.detach().abs().max()) <= bound
    w = m[0].weight.detach().reshape(16, -1).double()
    np.testing.assert_allclose((w @ w.T).numpy(), np.eye(16), atol=1e-5)
    by = {(e["module"], e["param"]): e["rule"] for e in rec.entries}
    assert by[("5", "weight")] == "5" and by[("3", "weight")] == "Linear" and by[("0", "weight")] == "Conv2d"
    assert rec.unmatched == []


def test_unmatched_reported_and_bad_spec_writes_nothing() -> None:
    m = _model()
    rec = initlab.apply(m, {"Conv2d": "zeros"}, rng=0)
    assert rec.unmatched == ["3", "5"]
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(ValueError):
        initlab.apply(m, {"Linear": "xavier_unifrom"}, rng=0)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))
    with pytest.raises(TypeError, match="module"):
        initlab.apply(np.zeros(3), "zeros")


def test_seeded_apply_is_reproducible() -> None:
    a, b = _model(), _model()
    initlab.apply(a, "xavier_normal", rng=4)
    initlab.apply(b, "xavier_normal", rng=4)
    assert all(torch.equal(p, q) for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()) if "weight" in n)
