"""initlab.apply rules: parameter-name patterns, LSTM/GRU/attention weights, rules that set nothing."""

from __future__ import annotations

import numpy as np
import pytest

import initlab
from initlab.nn import Network

torch = pytest.importorskip("torch")
nn = torch.nn


class _RNNModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 24, num_layers=2, batch_first=True)
        self.gru = nn.GRU(24, 24, batch_first=True)
        self.attn = nn.MultiheadAttention(24, 4, batch_first=True)
        self.head = nn.Linear(24, 5, bias=False)


def _snapshot(m: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def _same(a: dict[str, "torch.Tensor"], b: dict[str, "torch.Tensor"]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_parameter_patterns_address_lstm_gru_and_attention() -> None:
    m = _RNNModel()
    before = _snapshot(m)
    rec = initlab.apply(m, {"*.weight_hh_*": "orthogonal", "*.in_proj_weight": "xavier_uniform",
                            "*.in_proj_bias": "zeros", "lstm.bias_*": "zeros"}, rng=0)
    for name in ("weight_hh_l0", "weight_hh_l1"):
        w = getattr(m.lstm, name).detach().double()  # [4H, H], orthogonal columns
        np.testing.assert_allclose((w.T @ w).numpy(), np.eye(24), atol=1e-5)
    w = m.gru.weight_hh_l0.detach().double()
    np.testing.assert_allclose((w.T @ w).numpy(), np.eye(24), atol=1e-5)
    bound = np.sqrt(6 / (24 + 72))  # xavier_uniform on the stacked [3E, E] matrix, as torch's own init
    assert m.attn.in_proj_weight.abs().max().item() <= bound and torch.count_nonzero(m.attn.in_proj_bias) == 0
    assert all(torch.count_nonzero(getattr(m.lstm, f"bias_{k}_l{i}")) == 0 for k in ("ih", "hh") for i in (0, 1))
    # what no rule addresses is untouched
    after = _snapshot(m)
    for k in ("lstm.weight_ih_l0", "gru.weight_ih_l0", "emb.weight", "head.weight", "attn.out_proj.weight", "gru.bias_hh_l0"):
        assert torch.equal(before[k], after[k]), k
    set_names = {f"{e['module']}.{e['param']}" for e in rec.entries}
    assert {"lstm.weight_hh_l0", "gru.weight_hh_l0", "attn.in_proj_weight", "lstm.bias_ih_l1"} <= set_names
    assert "head" in rec.unmatched and "emb" in rec.unmatched


def test_type_rules_with_local_patterns_and_a_full_name_pattern() -> None:
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 3, enable_nested_tensor=False)
    lin1 = [lay.linear1.weight.detach().clone() for lay in enc.layers]
    initlab.apply(enc, {"layers.*.linear2.weight": "zeros", "MultiheadAttention": {"in_proj_*": "zeros"}}, rng=0)
    for lay, w in zip(enc.layers, lin1):
        assert torch.count_nonzero(lay.linear2.weight) == 0 and torch.equal(lay.linear1.weight, w)
        assert torch.count_nonzero(lay.self_attn.in_proj_weight) == 0 and torch.count_nonzero(lay.self_attn.in_proj_bias) == 0
    m = _RNNModel()
    rec = initlab.apply(m, {"LSTM": {"weight_hh_*": "orthogonal", "bias_*": "zeros"}}, rng=0)
    assert {e["param"] for e in rec.entries} == {"weight_hh_l0", "weight_hh_l1", "bias_ih_l0", "bias_hh_l0",
                                                  "bias_ih_l1", "bias_hh_l1"}


def test_one_spec_reaches_every_weight_matrix_but_not_embeddings() -> None:
    m = _RNNModel()
    emb = m.emb.weight.detach().clone()
    rec = initlab.apply(m, "xavier_normal", rng=0)
    got = {(e["module"], e["param"]) for e in rec.entries}
    assert {("lstm", "weight_ih_l0"), ("lstm", "weight_hh_l1"), ("gru", "weight_ih_l0"), ("attn", "in_proj_weight"),
            ("attn.out_proj", "weight"), ("head", "weight")} <= got
    assert not any(p.startswith("bias") or p.endswith("bias") for _, p in got)
    assert torch.equal(m.emb.weight, emb) and "emb" in rec.unmatched


@pytest.mark.parametrize("rules, match", [
    ({"Linaer": "zeros"}, r"'Linaer'.*sets nothing.*Did you mean 'Linear'"),
    ({"*.weight_hx*": "zeros"}, r"sets nothing.*Did you mean .*weight_hh_l0"),
    ({"LSTM": {"wieght_hh_*": "zeros"}}, r"'wieght_hh_\*'.*did you mean 'weight_hh_l"),
    ({"Linear": "zeros", "head": "ones"}, r"'head'.*set by an earlier rule"),
    ({"encoder.*": "zeros"}, r"'encoder\.\*'.*sets nothing"),
])
def test_a_rule_that_sets_nothing_is_an_error_and_writes_nothing(rules: dict, match: str) -> None:
    m = _RNNModel()
    before = _snapshot(m)
    with pytest.raises(ValueError, match=match):
        initlab.apply(m, rules, rng=0)
    assert _same(before, _snapshot(m))


def test_bias_entry_on_a_bias_free_layer_is_not_an_error() -> None:
    m = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 2))
    rec = initlab.apply(m, {"Linear": {"weight": "zeros", "bias": "zeros"}}, rng=0)
    assert [(e["module"], e["param"]) for e in rec.entries] == [("0", "weight"), ("2", "weight"), ("2", "bias")]


def test_apply_on_an_initlab_network() -> None:
    net = Network([10, 20, 20, 3], "tanh", init="normal(std=1.0)", rng=0)
    rec = initlab.apply(net, {"layers.1": {"weight": "zeros", "bias": "constant(value=0.5)"}, "Dense": "lecun_normal"}, rng=0)
    assert np.count_nonzero(net.layers[1].weight) == 0 and np.all(net.layers[1].bias == 0.5)
    w = net.layers[0].weight.astype(np.float64)
    assert abs(float(np.mean(w * w)) * 10 - 1.0) < 5 * np.sqrt(2 / w.size)
    assert [e["module"] for e in rec.entries] == ["layers.0", "layers.1", "layers.1", "layers.2"]
    with pytest.raises(ValueError, match="residual"):
        initlab.apply(net, "fixup")
