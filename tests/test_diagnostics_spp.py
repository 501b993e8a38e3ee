"""Signal Propagation Plots: residual blocks found, statistics equal to a hand computation, the model
left bitwise as it was; and LSUV over every parameterised operation with the model's state kept."""

from __future__ import annotations

import numpy as np
import pytest

import initlab
from initlab.diagnostics import find_residual_blocks, signal_propagation

torch = pytest.importorskip("torch")
nn = torch.nn


class MLPBlock(nn.Module):
    def __init__(self, d: int, h: int, p: float = 0.0) -> None:
        super().__init__()
        self.fc1, self.act, self.drop, self.fc2 = nn.Linear(d, h), nn.ReLU(), nn.Dropout(p), nn.Linear(h, d)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return x + self.fc2(self.drop(self.act(self.fc1(x))))


class ConvBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return x + self.conv2(torch.relu(self.bn1(self.conv1(x))))


def _state(m: "torch.nn.Module") -> tuple[dict[str, "torch.Tensor"], list[bool], "torch.Tensor"]:
    return ({k: v.detach().clone() for k, v in m.state_dict().items()}, [x.training for x in m.modules()],
            torch.get_rng_state())


def _assert_same(m: "torch.nn.Module", before: tuple) -> None:
    sd, flags, rng = before
    now = m.state_dict()
    assert sd.keys() == now.keys() and all(torch.equal(sd[k], now[k]) for k in sd)
    assert flags == [x.training for x in m.modules()]
    assert torch.equal(rng, torch.get_rng_state())


def test_stats_equal_a_hand_computation_dense() -> None:
    m = nn.Sequential(nn.Linear(8, 16), *[MLPBlock(16, 32) for _ in range(3)], nn.Linear(16, 2)).double()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((300, 8)))
    spp = signal_propagation(m, x)
    assert spp.names == ["input of 1", "1", "2", "3"] and spp.chained == [False, False, True, True]
    with torch.no_grad():
        h = m[0](x)
        exp_sq, exp_var, exp_res = [float((h.mean(0) ** 2).mean())], [float(h.var(0, unbiased=False).mean())], [None]
        for b in m[1:4]:
            f = b.fc2(b.act(b.fc1(h)))
            h = h + f
            exp_sq.append(float((h.mean(0) ** 2).mean()))
            exp_var.append(float(h.var(0, unbiased=False).mean()))
            exp_res.append(float(f.var(0, unbiased=False).mean()))
    np.testing.assert_allclose(spp.avg_sq_mean, exp_sq, rtol=1e-10)
    np.testing.assert_allclose(spp.avg_var, exp_var, rtol=1e-10)
    assert spp.res_avg_var[0] is None
    np.testing.assert_allclose(spp.res_avg_var[1:], exp_res[1:], rtol=1e-8)
    assert spp.skip_gain[1:] == [1.0, 1.0, 1.0]


def test_stats_per_channel_for_convolutions_and_model_unchanged() -> None:
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), ConvBlock(8), ConvBlock(8), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(8, 4)).double()
    m[2].eval()  # a mixed-mode model: the flags must come back as they were
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((16, 3, 10, 10)))
    before = _state(m)
    spp = signal_propagation(m, x)
    _assert_same(m, before)
    assert [b.name for b in find_residual_blocks(m, x)] == ["1", "2"]
    _assert_same(m, before)
    with torch.no_grad():
        h0 = m[0](x)
        b = m[1]
        f = b.conv2(torch.relu(torch.nn.functional.batch_norm(b.conv1(h0), None, None, b.bn1.weight, b.bn1.bias,
                                                              training=True)))
        y = h0 + f
    chan = y.permute(1, 0, 2, 3).reshape(8, -1)
    assert spp.avg_var[1] == pytest.approx(float(chan.var(1, unbiased=False).mean()), rel=1e-10)
    assert spp.avg_sq_mean[1] == pytest.approx(float((chan.mean(1) ** 2).mean()), rel=1e-10)
    fr = f.permute(1, 0, 2, 3).reshape(8, -1)
    assert spp.res_avg_var[1] == pytest.approx(float(fr.var(1, unbiased=False).mean()), rel=1e-8)


def test_dropout_in_a_block_consumes_no_rng_and_plain_models_have_no_block(tmp_path: object) -> None:
    m = nn.Sequential(nn.Linear(8, 16), MLPBlock(16, 32, p=0.5), MLPBlock(16, 32, p=0.5))
    x = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
    before = _state(m)
    a = signal_propagation(m, x)
    b = signal_propagation(m, x)
    _assert_same(m, before)
    assert a.avg_var == b.avg_var  # dropout is off: two runs agree
    path = str(tmp_path) + "/spp.png"  # type: ignore[operator]
    assert a.plot(path) == path
    with open(path, "rb") as fh:
        assert fh.read(4) == b"\x89PNG"
    plain = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    with pytest.raises(ValueError, match="no residual block"):
        signal_propagation(plain, x)
    with pytest.raises(TypeError, match="model"):
        signal_propagation(object(), x)


class _SeqModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.lstm = nn.LSTM(32, 32, batch_first=True)
        self.bn = nn.BatchNorm1d(32)
        self.head = nn.Linear(32, 5)

        g = torch.Generator().manual_seed(0)  # the same model whatever torch's global RNG did before
        with torch.no_grad():
            for name, p in self.named_parameters():  # norm gains keep their constant 1
                if p.ndim >= 2:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
                elif "bias" in name:
                    p.zero_()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        h, _ = self.lstm(self.enc(self.emb(x)))
        return self.head(self.bn(h[:, -1]))


def test_lsuv_over_attention_ffn_lstm_and_head_in_forward_order() -> None:
    m = _SeqModel()
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 50, (32, 12)))
    emb = m.emb.weight.detach().clone()
    sd0, flags, rng = _state(m)
    rec = initlab.fix(m, x, rng=0)
    assert [r["name"] for r in rec.layers] == ["enc.layers.0.self_attn", "enc.layers.0.linear1", "enc.layers.0.linear2",
                                                "enc.layers.1.self_attn", "enc.layers.1.linear1", "enc.layers.1.linear2",
                                                "lstm", "head"]
    assert rec.converged and rec.layers[6]["converged"] is None
    # buffers (BatchNorm running stats, num_batches_tracked), flags and RNG as they were; embedding untouched
    now = m.state_dict()
    for k, v in sd0.items():
        if "running" in k or "num_batches" in k:
            assert torch.equal(v, now[k]), k
    assert flags == [x.training for x in m.modules()] and torch.equal(rng, torch.get_rng_state())
    assert torch.equal(m.emb.weight, emb)
    # each LSTM gate block is orthogonal (the pre-init) and each rescaled op's output has unit variance
    w = m.lstm.weight_hh_l0.detach().double()
    for k in range(4):
        blk = w[32 * k:32 * (k + 1)]
        np.testing.assert_allclose((blk @ blk.T).numpy(), np.eye(32), atol=1e-5)
    got: dict[str, float] = {}

    def hook(n: str) -> object:
        def fn(mod: object, i: object, o: object) -> None:
            t = o[0] if isinstance(o, tuple) else o
            got.setdefault(n, float(t.double().var(unbiased=False)))  # type: ignore[union-attr]
        return fn

    hooks = [mod.register_forward_hook(hook(n))
             for n, mod in m.named_modules() if n in {r["name"] for r in rec.layers if r["var"] is not None}]
    drops = [d for d in m.modules() if isinstance(d, nn.Dropout)]
    attns = [a for a in m.modules() if isinstance(a, nn.MultiheadAttention)]
    assert all(a.dropout == 0.1 for a in attns)  # LSUV switched attention dropout off and back on
    for d in drops:
        d.eval()
    for a in attns:
        a.dropout = 0.0
    with torch.no_grad():
        m(x)
    for d in drops:
        d.train()
    for h in hooks:
        h.remove()
    recorded = {r["name"]: r["var"] for r in rec.layers if r["var"] is not None}
    assert got.keys() == recorded.keys() and all(abs(v - 1) <= 0.1 for v in recorded.values()), recorded
    for n, v in got.items():  # a later op's rescaling does not move an earlier op's output
        assert v == pytest.approx(recorded[n], rel=1e-5), (n, v, recorded[n])
