"""initlab.apply presets against their papers' formulas: Fixup, SkipInit, ReZero, T-Fixup, DeepNet.

Variances are checked on the sampled weights with a tolerance of 5 standard errors of a variance
estimate from n values: √(2/n) relative for a Gaussian, √(0.8/n) for a uniform (Var(u²)/E[u²]²
= 4/5 for u uniform on ±b)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import initlab

torch = pytest.importorskip("torch")
nn = torch.nn


def _var(ts: list["torch.Tensor"]) -> tuple[float, int]:
    v = torch.cat([t.detach().double().reshape(-1) for t in ts])
    return float((v * v).mean()), v.numel()


def _check_var(ts: list["torch.Tensor"], expected: float, gaussian: bool = True) -> None:
    got, n = _var(ts)
    se = math.sqrt((2.0 if gaussian else 0.8) / n)
    assert abs(got / expected - 1.0) <= 5 * se, (got, expected, n)


class MLPBlock(nn.Module):
    def __init__(self, d: int, h: int, scalars: bool = False) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, h), nn.ReLU(), nn.Linear(h, d)
        if scalars:
            self.bias1 = nn.Parameter(torch.tensor(0.7))
            self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        if hasattr(self, "scale"):
            return x + self.scale * self.fc2(self.act(self.fc1(x + self.bias1)))
        return x + self.fc2(self.act(self.fc1(x)))


def _resmlp(n: int = 8, d: int = 64, h: int = 128, scalars: bool = False) -> "torch.nn.Module":
    return nn.Sequential(nn.Linear(32, d), *[MLPBlock(d, h, scalars) for _ in range(n)], nn.Linear(d, 10))


def _x(shape: tuple[int, ...] = (256, 32)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def test_fixup_formula_on_found_blocks() -> None:
    """L = 8 branches of m = 2 layers: first layer He × L^(-1/(2m-2)) = He/√8; last layer, classifier 0."""
    m = _resmlp()
    rec = initlab.apply(m, "fixup", rng=0, x=_x())
    L, d, h = 8, 64, 128
    blocks = [m[i] for i in range(1, 9)]
    _check_var([b.fc1.weight for b in blocks], 2.0 / d * L ** (-1.0))
    assert all(torch.count_nonzero(b.fc2.weight) == 0 and torch.count_nonzero(b.fc2.bias) == 0 for b in blocks)
    assert all(torch.count_nonzero(b.fc1.bias) == 0 for b in blocks)
    assert torch.count_nonzero(m[9].weight) == 0 and torch.count_nonzero(m[9].bias) == 0  # the classifier
    _check_var([m[0].weight], 2.0 / 32)  # the stem: He
    assert rec.preset["L"] == 8 and rec.preset["m"] == [2] * 8 and rec.preset["classifier"] == "9"
    assert rec.preset["scale"][0] == pytest.approx(8 ** -0.5)
    assert any("no" in n and "scalar" in n for n in rec.notes)  # says the model has no scalar biases/multipliers
    # the branches output 0: the stream is the stem's output through every block
    spp = initlab.diagnostics.signal_propagation(m, _x())
    assert all(r == 0.0 for r in spp.res_avg_var[1:])
    assert max(spp.avg_var) == pytest.approx(min(spp.avg_var), rel=1e-12)


def test_fixup_by_block_names_sets_scalars_and_m3_scale() -> None:
    class Deep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            return x + self.c(torch.relu(self.b(torch.relu(self.a(x)))))

    m = nn.Sequential(*[Deep() for _ in range(5)], nn.Linear(16, 3))
    rec = initlab.apply(m, {"preset": "fixup", "blocks": ["[0-4]"]}, rng=1)
    # m = 3: scale L^(-1/4) on the first two layers of each branch
    _check_var([m[i].a.weight for i in range(5)] + [m[i].b.weight for i in range(5)], 2.0 / 16 * 5 ** (-0.5))
    assert rec.preset["m"] == [3] * 5
    s = _resmlp(n=3, scalars=True)
    rec = initlab.apply(s, {"preset": "fixup", "blocks": ["1", "2", "3"]}, rng=0)
    assert all(s[i].scale.item() == 1.0 and s[i].bias1.item() == 0.0 for i in (1, 2, 3))
    assert not any("scalar" in n for n in rec.notes)


def test_fixup_refuses_a_model_without_residual_branches() -> None:
    cnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    before = [p.detach().clone() for p in cnn.parameters()]
    with pytest.raises(ValueError, match="needs residual branches"):
        initlab.apply(cnn, "fixup", rng=0, x=_x((4, 3, 8, 8)))
    with pytest.raises(ValueError, match="needs residual branches"):
        initlab.apply(cnn, "fixup", rng=0)
    with pytest.raises(ValueError, match="matches no module"):
        initlab.apply(cnn, {"preset": "fixup", "blocks": ["block*"]}, rng=0)
    assert all(torch.equal(a, b) for a, b in zip(before, cnn.parameters()))


@pytest.mark.parametrize("preset", ["skipinit", "rezero"])
def test_skipinit_rezero_zero_the_branch_scalar(preset: str) -> None:
    m = _resmlp(n=3, scalars=True)
    initlab.apply(m, {"preset": preset, "blocks": ["1", "2", "3"]}, rng=0)
    # the scalars the block owns are set to 0 (here both 1-element parameters)
    assert all(m[i].scale.item() == 0.0 for i in (1, 2, 3))
    x = torch.from_numpy(_x((8, 32)))
    with torch.no_grad():
        h = m[0](x)
        assert torch.equal(m[1](h), h + 0.0 * m[1].fc2(m[1].act(m[1].fc1(h))))


@pytest.mark.parametrize("preset", ["skipinit", "rezero"])
def test_skipinit_without_a_scalar_refuses_or_inserts(preset: str) -> None:
    m = _resmlp(n=3)
    with pytest.raises(ValueError, match="learnable scalar"):
        initlab.apply(m, {"preset": preset, "blocks": ["1", "2", "3"]}, rng=0)
    rec = initlab.apply(m, {"preset": preset, "blocks": ["1", "2", "3"], "insert": True}, rng=0)
    assert any("inserted" in n for n in rec.notes)
    assert "1.fc2.alpha" in m.state_dict() and "1.fc2.inner.weight" in m.state_dict()
    x = torch.from_numpy(_x((8, 32)))
    with torch.no_grad():
        h = m[0](x)
        assert torch.equal(m[2](m[1](h)), h)  # every branch outputs α·f = 0


class _Seq2Seq(nn.Module):
    def __init__(self, d: int = 32, n_enc: int = 2, n_dec: int = 3) -> None:
        super().__init__()
        self.src_emb, self.tgt_emb = nn.Embedding(100, d), nn.Embedding(120, d)
        self.transformer = nn.Transformer(d, 4, n_enc, n_dec, 64, dropout=0.0, batch_first=True)


def _attn(layers: list[Any], which: str = "self_attn") -> dict[str, list["torch.Tensor"]]:
    out: dict[str, list[Any]] = {"q": [], "k": [], "v": [], "out": []}
    for lay in layers:
        a = getattr(lay, which)
        E = a.embed_dim
        out["q"].append(a.in_proj_weight[:E])
        out["k"].append(a.in_proj_weight[E:2 * E])
        out["v"].append(a.in_proj_weight[2 * E:])
        out["out"].append(a.out_proj.weight)
    return out



def test_t_fixup_formulas() -> None:
    m = _Seq2Seq()
    rec = initlab.apply(m, "t_fixup", rng=0)
    N, M, d = 2, 3, 32
    enc, dec = list(m.transformer.encoder.layers), list(m.transformer.decoder.layers)
    se, sd = 0.67 * N ** -0.25, (9 * M) ** -0.25
    xav_sq = 2.0 / (d + d)  # Xavier variance (gain 1) of a d×d block
    xav_ff = 2.0 / (d + 64)
    a = _attn(enc)
    _check_var(a["q"] + a["k"], 0.5 * xav_sq, gaussian=False)  # fairseq's gain 1/√2
    _check_var(a["v"], 0.5 * xav_sq * (se * math.sqrt(2)) ** 2, gaussian=False)  # = Xavier(gain 1) · se
    _check_var(a["out"], xav_sq * se ** 2, gaussian=False)
    _check_var([lay.linear1.weight for lay in enc] + [lay.linear2.weight for lay in enc], xav_ff * se ** 2, gaussian=False)
    for which in ("self_attn", "multihead_attn"):
        a = _attn(dec, which)
        _check_var(a["v"], 0.5 * xav_sq * 2 * sd ** 2, gaussian=False)
        _check_var(a["out"], xav_sq * sd ** 2, gaussian=False)
        _check_var(a["q"] + a["k"], 0.5 * xav_sq, gaussian=False)
    _check_var([lay.linear1.weight for lay in dec] + [lay.linear2.weight for lay in dec], xav_ff * sd ** 2, gaussian=False)
    _check_var([m.src_emb.weight], d ** -1.0 * (9 * N) ** -0.5)
    _check_var([m.tgt_emb.weight], d ** -1.0 * (9 * M) ** -0.5)
    for lay in enc + dec:
        assert torch.count_nonzero(lay.self_attn.in_proj_bias) == 0 and torch.count_nonzero(lay.linear1.bias) == 0
    assert rec.preset["N"] == 2 and rec.preset["M"] == 3
    assert any("LayerNorm" in n for n in rec.notes)


def test_deepnet_encoder_only_and_encoder_decoder() -> None:
    N, d = 6, 32
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 4, 64, batch_first=True), N, enable_nested_tensor=False)
    rec = initlab.apply(enc, "deepnorm", rng=0)
    beta, alpha = (8 * N) ** -0.25, (2 * N) ** 0.25
    assert rec.preset["architecture"] == "encoder"
    assert rec.preset["encoder_alpha"] == pytest.approx(alpha) and rec.preset["encoder_beta"] == pytest.approx(beta)
    layers = list(enc.layers)
    a = _attn(layers)
    _check_var(a["q"] + a["k"], 2.0 / (2 * d))  # Xavier-normal gain 1
    _check_var(a["v"] + a["out"], beta ** 2 * 2.0 / (2 * d))
    _check_var([lay.linear1.weight for lay in layers] + [lay.linear2.weight for lay in layers], beta ** 2 * 2.0 / (d + 64))
    assert any("alpha" in n and "architecture" not in n for n in rec.notes)
    m = _Seq2Seq(n_enc=2, n_dec=3)
    rec = initlab.apply(m, {"preset": "deepnet"}, rng=0)
    Ne, Md = 2, 3
    assert rec.preset["architecture"] == "encoder-decoder"
    assert rec.preset["encoder_alpha"] == pytest.approx(0.81 * (Ne ** 4 * Md) ** (1 / 16))
    assert rec.preset["encoder_beta"] == pytest.approx(0.87 * (Ne ** 4 * Md) ** (-1 / 16))
    assert rec.preset["decoder_alpha"] == pytest.approx((3 * Md) ** 0.25)
    assert rec.preset["decoder_beta"] == pytest.approx((12 * Md) ** -0.25)
    dec = list(m.transformer.decoder.layers)
    bd = (12 * Md) ** -0.25
    a = _attn(dec, "multihead_attn")
    _check_var(a["v"] + a["out"], bd ** 2 * 2.0 / (2 * d))
    be = 0.87 * (Ne ** 4 * Md) ** (-1 / 16)
    _check_var([lay.linear2.weight for lay in m.transformer.encoder.layers], be ** 2 * 2.0 / (d + 64))


def test_transformer_presets_refuse_a_model_without_transformer_layers() -> None:
    with pytest.raises(ValueError, match="TransformerEncoderLayer"):
        initlab.apply(nn.Sequential(nn.Linear(4, 4)), "t_fixup", rng=0)
    with pytest.raises(ValueError, match="preset"):
        initlab.apply(nn.Sequential(nn.Linear(4, 4)), {"preset": "fixupp"}, rng=0)
    with pytest.raises(ValueError, match="options"):
        initlab.apply(nn.Sequential(nn.Linear(4, 4)), {"preset": "fixup", "depth": 3}, rng=0)


def test_fixup_never_zeroes_a_stem_as_the_classifier() -> None:
    m = nn.Sequential(nn.Linear(32, 64), *[MLPBlock(64, 128) for _ in range(3)])
    rec = initlab.apply(m, {"preset": "fixup", "blocks": ["1", "2", "3"]}, rng=0)
    assert rec.preset["classifier"] is None and any("no Linear after" in n for n in rec.notes)
    _check_var([m[0].weight], 2.0 / 32)
