"""The torch probe on the networks practitioners build, made from torch alone: transformers,
embeddings + LSTM/GRU, CNNs with BatchNorm and pooling, ResNet-style blocks, residual MLPs,
functional activations and attention, several inputs and dict outputs.

For each: no crash; parameters, buffers, ``training`` flags and torch's RNG state bitwise unchanged;
row widths are feature dimensions; rows exist for attention, RNN layers, functional ops and adds;
``unexamined`` is empty; captured statistics equal the same quantities computed by hand here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import initlab

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


# -- helpers ---------------------------------------------------------------------------------------
def _seeded(model: Any, seed: int) -> Any:
    """Re-draw every parameter from a private generator (no global seeding): weights N(0, 1/fan_in)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            elif "norm" in name or "bn" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def _state(model: Any) -> tuple[list[tuple[str, Any]], list[bool], Any]:
    tensors = [(n, t.detach().clone()) for n, t in
               [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]]
    return tensors, [m.training for m in model.modules()], torch.get_rng_state().clone()


def _assert_same_state(model: Any, before: tuple[list[tuple[str, Any]], list[bool], Any]) -> None:
    tensors, flags, rng = before
    now = dict([*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)])
    for n, t in tensors:
        assert now[n].dtype == t.dtype and torch.equal(now[n], t), f"{n} changed"
    assert [m.training for m in model.modules()] == flags
    assert torch.equal(torch.get_rng_state(), rng)


def _probe_checked(model: Any, x: Any, **kw: Any) -> initlab.ProbeResult:
    """Probe in every mode, backward on and off; the model's state must not move; returns the
    default probe."""
    before = _state(model)
    res = initlab.probe(model, x, rng=0, **kw)
    _assert_same_state(model, before)
    for mode in ("train", "eval"):
        initlab.probe(model, x, rng=0, mode=mode, **kw)
        _assert_same_state(model, before)
    initlab.probe(model, x, rng=0, backward=False, **kw)
    _assert_same_state(model, before)
    assert res.unexamined == [], res.unexamined
    assert res.mode == "init"
    return res


def _rows(res: initlab.ProbeResult, kind: str) -> list[Any]:
    return [s for s in res.layers if s.kind == kind]


def _std(t: Any) -> float:
    return float(t.double().std(unbiased=False))


# -- transformers ----------------------------------------------------------------------------------
def test_transformer_encoder_rows_widths_and_hand_statistics() -> None:
    d, heads, ff, T, B = 16, 4, 24, 7, 5
    enc = _seeded(nn.TransformerEncoder(nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, batch_first=True), 2,
                                        enable_nested_tensor=False), 0)
    x = np.random.default_rng(0).standard_normal((B, T, d)).astype(np.float32)
    res = _probe_checked(enc, x)
    names = [s.name for s in res.layers]
    for i in range(2):
        p = f"layers.{i}"
        for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.logits", "self_attn.context",
                  "self_attn.out_proj", "add", "norm1", "linear1", "linear2", "add.1", "norm2"):
            assert f"{p}.{n}" in names, (p, n, names)
    by = {s.name: s for s in res.layers}
    for s in res.layers:  # widths are feature dimensions, never the batch or the sequence length
        want = {"attention_logits": T}.get(s.kind, ff if s.name.endswith("linear1") else d)
        assert s.width == want, (s.name, s.width)
    assert by["layers.0.linear1"].activation == "relu" and by["layers.0.add"].kind == "add"
    # by hand: q projection, logits and softmax entropy of the first layer (dropout is off in mode "init")
    layer = enc.layers[0]
    xt = torch.from_numpy(x)
    with torch.no_grad():
        w, b = layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias
        q = F.linear(xt, w[:d], b[:d])
        k = F.linear(xt, w[d:2 * d], b[d:2 * d])
        qh = q.view(B, T, heads, d // heads).transpose(1, 2)
        kh = k.view(B, T, heads, d // heads).transpose(1, 2)
        logits = (qh @ kh.transpose(-2, -1)) / math.sqrt(d // heads)
        p_att = torch.softmax(logits, -1)
        entropy = float(-(p_att * p_att.log()).sum(-1).double().mean())
        layer.self_attn.eval()  # no attention dropout, as the probe's "init" mode
        sa = layer.self_attn(xt, xt, xt, need_weights=False)[0]
        layer.self_attn.train()
        h1 = layer.norm1(xt + sa)
    assert by["layers.0.self_attn.q_proj"].preact_std == pytest.approx(_std(q), rel=1e-5)
    assert by["layers.0.self_attn.q_proj"].dead is None
    lg = by["layers.0.self_attn.logits"]
    assert lg.logit_std == pytest.approx(_std(logits), rel=1e-4) and lg.std == lg.logit_std
    assert lg.softmax_entropy == pytest.approx(entropy, rel=1e-4)
    assert 0 < lg.softmax_entropy <= math.log(T) + 1e-9
    add = by["layers.0.add"]
    assert add.std == pytest.approx(_std(xt + sa), rel=1e-4)
    assert add.skip_std == pytest.approx(_std(xt), rel=1e-5) and add.branch_std == pytest.approx(_std(sa), rel=1e-4)
    assert by["layers.0.norm1"].std == pytest.approx(_std(h1), rel=1e-4)
    assert by["layers.0.norm1"].gain_std is not None and by["layers.0.norm1"].weight_std is None
    # gradients reach every projection
    for s in res.layers:
        if s.kind == "linear":
            assert s.grad_rms is not None and s.grad_rms > 0 and s.grad_weight_std is not None, s.name


def test_transformer_decoder_sequence_first_two_inputs() -> None:
    d, T, S, B = 12, 6, 9, 4
    dec = _seeded(nn.TransformerDecoder(nn.TransformerDecoderLayer(d, 3, 20), 2), 1)  # [seq, batch, d]
    rng = np.random.default_rng(1)
    tgt = rng.standard_normal((T, B, d)).astype(np.float32)
    mem = rng.standard_normal((S, B, d)).astype(np.float32)
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)  # True: not allowed (a bool mask; -inf in x is refused)
    res = _probe_checked(dec, (tgt, mem), )
    res_kw = initlab.probe(dec, {"tgt": tgt, "memory": mem, "tgt_mask": mask.numpy()}, rng=0)
    assert res_kw.unexamined == []
    for r in (res, res_kw):
        names = {s.name for s in r.layers}
        assert {"layers.0.self_attn.logits", "layers.0.multihead_attn.logits", "layers.1.multihead_attn.k_proj"} <= names
        for s in r.layers:
            if s.kind == "attention_logits":
                assert s.width in (T, S)
            else:
                assert s.width in (d, 20), (s.name, s.width)
    # the causal mask lowers the self-attention entropy (fewer keys per query)
    ent = {s.name: s.softmax_entropy for s in res.layers if s.kind == "attention_logits"}
    ent_m = {s.name: s.softmax_entropy for s in res_kw.layers if s.kind == "attention_logits"}
    assert ent_m["layers.0.self_attn.logits"] < ent["layers.0.self_attn.logits"]
    # sequence-first: cross-attention keys come from memory [S, B, d]
    with torch.no_grad():
        mha = dec.layers[0].multihead_attn
        k = F.linear(torch.from_numpy(mem), mha.in_proj_weight[d:2 * d], mha.in_proj_bias[d:2 * d])
    k_row = next(s for s in res.layers if s.name == "layers.0.multihead_attn.k_proj")
    assert k_row.preact_std == pytest.approx(_std(k), rel=1e-5)


def test_multihead_attention_module_matches_torch() -> None:
    d, B, T = 8, 3, 5
    mha = _seeded(nn.MultiheadAttention(d, 2, batch_first=True), 2)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = mha

        def forward(self, x: Any) -> Any:
            out, w = self.attn(x, x, x, average_attn_weights=False)
            return {"out": out, "weights": w}

    net = Net()
    x = np.random.default_rng(3).standard_normal((B, T, d)).astype(np.float32)
    res = _probe_checked(net, x, output="out")
    with torch.no_grad():
        out, w = mha(torch.from_numpy(x), torch.from_numpy(x), torch.from_numpy(x), average_attn_weights=False)
    lg = next(s for s in res.layers if s.kind == "attention_logits")
    assert lg.name == "attn.logits"
    assert lg.softmax_entropy == pytest.approx(float(-(w * w.log()).sum(-1).double().mean()), rel=1e-5)
    op = next(s for s in res.layers if s.name == "attn.out_proj")
    assert op.preact_std == pytest.approx(_std(out), rel=1e-5)


def test_functional_sdpa_and_activations_hand_checked() -> None:
    class Attn(nn.Module):
        def __init__(self, d: int) -> None:
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.mlp = nn.Linear(d, 2 * d)

        def forward(self, x: Any) -> Any:
            B, T, d = x.shape
            split = (lambda t: t.view(B, T, 2, d // 2).transpose(1, 2))
            a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True)
            h = x + self.o(a.transpose(1, 2).reshape(B, T, d))
            return F.gelu(self.mlp(h)).sum(-1) + torch.tanh(h).mean(-1)

    net = _seeded(Attn(8), 4)
    x = np.random.default_rng(4).standard_normal((6, 5, 8)).astype(np.float32)
    res = _probe_checked(net, x)
    by = {s.name: s for s in res.layers}
    assert {"q", "k", "v", "logits", "context", "o", "add", "mlp", "tanh"} <= set(by), list(by)
    assert by["mlp"].activation == "gelu" and by["tanh"].kind == "activation" and by["tanh"].activation == "tanh"
    assert by["context"].kind == "attention" and by["context"].width == 8 and by["logits"].width == 5
    xt = torch.from_numpy(x)
    with torch.no_grad():
        B, T, d = xt.shape
        q = net.q(xt).view(B, T, 2, 4).transpose(1, 2)
        k = net.k(xt).view(B, T, 2, 4).transpose(1, 2)
        v = net.v(xt).view(B, T, 2, 4).transpose(1, 2)
        lg = (q @ k.transpose(-2, -1)) / 2.0
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        finite = lg[causal.expand_as(lg)]
        p = torch.softmax(lg.masked_fill(~causal, float("-inf")), -1)
        ent = -torch.special.xlogy(p, p).sum(-1)
        ctx = p @ v
        h = xt + net.o(ctx.transpose(1, 2).reshape(B, T, d))
        z = net.mlp(h)
    assert by["logits"].logit_std == pytest.approx(_std(finite), rel=1e-5)
    assert by["logits"].softmax_entropy == pytest.approx(float(ent.double().mean()), rel=1e-5)
    assert by["context"].std == pytest.approx(_std(ctx), rel=1e-5)
    assert by["add"].std == pytest.approx(_std(h), rel=1e-5)
    assert by["mlp"].preact_std == pytest.approx(_std(z), rel=1e-5)
    assert by["mlp"].std == pytest.approx(_std(F.gelu(z)), rel=1e-5)
    assert by["tanh"].std == pytest.approx(_std(torch.tanh(h)), rel=1e-5)
    # long batches: the logits are measured on whole samples from the batch's start (here the first 2)
    from initlab.diagnostics import _probe_torch

    old = _probe_torch.LOGITS_SAMPLE
    _probe_torch.LOGITS_SAMPLE = 2 * 2 * T * T
    try:
        sub = {s.name: s for s in initlab.probe(net, x, rng=0).layers}["logits"]
    finally:
        _probe_torch.LOGITS_SAMPLE = old
    assert sub.logit_std == pytest.approx(_std(lg[:2][causal.expand_as(lg[:2])]), rel=1e-5)
    assert sub.softmax_entropy == pytest.approx(float(ent[:2].double().mean()), rel=1e-5)
    # per-unit (last axis) channel statistics of the mlp row: over batch and tokens
    cm = z.double().reshape(-1, 16).mean(0)
    assert by["mlp"].preact_sq_mean == pytest.approx(float((cm ** 2).mean()), rel=1e-5)


# -- recurrent ---------------------------------------------------------------------------------------
class _EmbedRNN(nn.Module):
    def __init__(self, cell: str, bidirectional: bool = False) -> None:
        super().__init__()
        self.emb = nn.Embedding(30, 10)
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_cls(10, 12, num_layers=2, batch_first=True, dropout=0.2, bidirectional=bidirectional)
        self.head = nn.Linear(12 * (2 if bidirectional else 1), 4)

    def forward(self, tokens: Any) -> Any:
        out, _ = self.rnn(self.emb(tokens))
        return self.head(out[:, -1])


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("gru", True)])
def test_embedding_rnn_rows_per_layer(cell: str, bidirectional: bool) -> None:
    net = _seeded(_EmbedRNN(cell, bidirectional), 5)
    tokens = np.random.default_rng(5).integers(0, 30, size=(8, 11))
    res = _probe_checked(net, tokens)
    assert [s.name for s in res.layers] == ["emb", "rnn.l0", "rnn.l1", "head"]
    emb, l0, l1, head = res.layers
    D = 2 if bidirectional else 1
    assert emb.kind == "embedding" and emb.width == 10 and l0.kind == "rnn" and l0.width == 12 * D
    assert l1.width == 12 * D and head.width == 4
    for s in (l0, l1):
        assert s.grad_rms is not None and s.grad_rms > 0 and s.grad_time_ratio is not None
        assert s.grad_weight_std is not None
    # the head reads the last step only: the top layer's output at t = 0 gets no gradient, layer 0's
    # output at t = 0 gets one through layer 1's recurrence (the gradient through time)
    assert l1.grad_time_ratio == 0.0 and l0.grad_time_ratio > 0
    # by hand: layer 0 alone (an RNN of one layer with layer 0's weights), then the full two-layer output
    one = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](10, 12, num_layers=1, batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for name, p in one.named_parameters():
            p.copy_(getattr(net.rnn, name))  # the *_l0 parameters
        e = net.emb(torch.from_numpy(tokens))
        o0 = one(e)[0]
        o1 = net.rnn.eval()(e)[0]  # eval: no inter-layer dropout, as the probe's "init" mode
        net.rnn.train()
    assert emb.std == pytest.approx(_std(e), rel=1e-5)
    assert l0.std == pytest.approx(_std(o0), rel=1e-5) and l1.std == pytest.approx(_std(o1), rel=1e-5)


def test_packed_sequence_lstm_is_one_row() -> None:
    class Packed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(3, 5, num_layers=2)

        def forward(self, x: Any, lengths: Any) -> Any:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            out, _ = self.rnn(packed)
            return nn.utils.rnn.pad_packed_sequence(out)[0]

    net = _seeded(Packed(), 13)
    x = np.random.default_rng(13).standard_normal((6, 4, 3)).astype(np.float32)
    res = _probe_checked(net, (x, np.array([6, 3, 5, 2])))
    assert [(s.name, s.kind, s.width) for s in res.layers] == [("rnn", "rnn", 5)]


# -- CNNs and ResNets --------------------------------------------------------------------------------
def _cnn() -> Any:
    return _seeded(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.Dropout(0.3),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5)), 6)


def test_cnn_batchnorm_pooling_rows_and_buffers() -> None:
    net = _cnn()
    x = np.random.default_rng(6).standard_normal((16, 3, 8, 8)).astype(np.float32)
    res = _probe_checked(net, x)
    assert [s.kind for s in res.layers] == ["conv", "norm", "activation", "pool", "conv", "norm", "activation",
                                            "pool", "linear"]
    assert [s.width for s in res.layers] == [8, 8, 8, 8, 16, 16, 16, 16, 5]
    assert [s.name for s in res.layers][:4] == ["0", "1", "2", "3"]
    assert int(net[1].num_batches_tracked) == 0 and float(net[1].running_var.mean()) == 1.0
    xt = torch.from_numpy(x)
    with torch.no_grad():
        z = net[0](xt)
        zn = F.batch_norm(z, None, None, net[1].weight, net[1].bias, training=True)  # batch statistics
        pooled = F.max_pool2d(torch.relu(zn), 2)
    assert res.layers[1].std == pytest.approx(_std(zn), rel=1e-4)
    assert res.layers[3].std == pytest.approx(_std(pooled), rel=1e-4)
    cm = pooled.double().mean((0, 2, 3))
    assert res.layers[3].sq_mean == pytest.approx(float((cm ** 2).mean()), rel=1e-4)
    # dead units of the in-place ReLU row: channels whose input is ≤ 0 on the whole batch
    assert res.layers[6].dead is not None and res.layers[1].gain_std == pytest.approx(_std(net[1].weight.detach()), rel=1e-5)
    # gradients by hand: mse against N(0, 1) targets drawn from rng=0; the per-sample delta at the
    # output is out - y, and at the pooled features (after Flatten) it is (out - y) @ W
    with torch.no_grad():
        h = F.adaptive_avg_pool2d(torch.relu(F.batch_norm(net[4](pooled), None, None, net[5].weight, net[5].bias,
                                                          training=True)), 1).flatten(1)
        out = net[10](h).double()
    g = out - torch.from_numpy(np.random.default_rng(0).standard_normal((16, 5)))
    assert res.layers[8].grad_rms == pytest.approx(float(g.pow(2).mean().sqrt()), rel=1e-5)
    gh = g @ net[10].weight.detach().double()
    assert res.layers[7].grad_rms == pytest.approx(float(gh.pow(2).mean().sqrt()), rel=1e-5)
    gw = g.T @ h.double() / 16  # the weight gradient of the batch-mean loss
    assert res.layers[8].grad_weight_std == pytest.approx(float(gw.std(unbiased=False)), rel=1e-5)
    # eval mode reads the running statistics (mean 0, var 1 at init): the norm row then equals its input scaled
    ev = initlab.probe(net, x, rng=0, mode="eval")
    assert ev.mode == "eval" and ev.layers[1].std != pytest.approx(res.layers[1].std, rel=1e-3)


class _Block(nn.Module):
    def __init__(self, c: int, norm: bool) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c) if norm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(c) if norm else nn.Identity()

    def forward(self, x: Any) -> Any:
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


@pytest.mark.parametrize("norm", [True, False])
def test_resnet_blocks_add_rows(norm: bool) -> None:
    net = _seeded(nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), _Block(6, norm), _Block(6, norm),
                                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)), 7)
    x = np.random.default_rng(7).standard_normal((8, 3, 6, 6)).astype(np.float32)
    res = _probe_checked(net, x)
    adds = _rows(res, "add")
    assert [s.name for s in adds] == ["1.add", "2.add"] and all(s.width == 6 for s in adds)
    # without norms the inner F.relu reads the conv's output directly: merged into the conv's row
    want = ["1.relu", "1.relu.1", "2.relu", "2.relu.1"] if norm else ["1.relu", "2.relu"]
    assert [s.name for s in _rows(res, "activation")] == want
    if not norm:
        assert [s.activation for s in _rows(res, "conv")] == ["linear", "relu", "linear", "relu", "linear"]
    xt = torch.from_numpy(x)
    with torch.no_grad():
        h0 = net[0](xt)
        blk = net[1]
        branch = blk.bn2(blk.conv2(F.relu(blk.bn1(blk.conv1(h0)))))
    a = adds[0]
    assert a.skip_std == pytest.approx(_std(h0), rel=1e-5) and a.branch_std == pytest.approx(_std(branch), rel=1e-4)
    assert a.std == pytest.approx(_std(h0 + branch), rel=1e-4)
    cm = branch.double().mean((0, 2, 3))
    assert a.branch_var == pytest.approx(float((branch.double() ** 2).mean() - (cm ** 2).mean()), rel=1e-4)
    assert len(_rows(res, "norm")) == (4 if norm else 0)


def test_residual_mlp_stream_grows() -> None:
    class ResMLP(nn.Module):
        def __init__(self, d: int, depth: int) -> None:
            super().__init__()
            self.inp = nn.Linear(10, d)
            self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d)) for _ in range(depth))
            self.out = nn.Linear(d, 1)

        def forward(self, x: Any) -> Any:
            h = self.inp(x)
            for b in self.blocks:
                h = h + b(h)
            return self.out(h)

    net = _seeded(ResMLP(32, 6), 8)
    x = np.random.default_rng(8).standard_normal((64, 10)).astype(np.float32)
    res = _probe_checked(net, x)
    adds = _rows(res, "add")
    assert [s.name for s in adds] == ["add", "add.1", "add.2", "add.3", "add.4", "add.5"]
    stream = [s.sq_mean + s.chan_var for s in adds]
    assert all(b > a for a, b in zip(stream, stream[1:]))  # no normalisation: the stream's variance grows
    with torch.no_grad():
        h = net.inp(torch.from_numpy(x))
        for b in net.blocks:
            h = h + b(h)
    assert adds[-1].std == pytest.approx(_std(h), rel=1e-4)


# -- inputs and outputs --------------------------------------------------------------------------------
class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(12, 6)
        self.num = nn.Linear(4, 6)
        self.head = nn.Linear(6, 3)
        self.aux = nn.Linear(6, 2)

    def forward(self, tokens: Any, feats: Any, *, scale: float = 1.0) -> Any:
        h = self.emb(tokens).mean(1) + torch.tanh(self.num(feats)) * scale
        return {"logits": self.head(h), "aux": (self.aux(h), tokens)}


def test_multi_input_dict_output_and_integer_tokens() -> None:
    net = _seeded(_TwoInputs(), 9)
    rng = np.random.default_rng(9)
    tokens, feats = rng.integers(0, 12, size=(10, 5)), rng.standard_normal((10, 4)).astype(np.float32)
    res = _probe_checked(net, (tokens, feats))
    kw = initlab.probe(net, {"tokens": tokens, "feats": feats, "scale": 2.0}, rng=0)
    names = [s.name for s in res.layers]
    assert names == ["emb", "mean", "num", "add", "head", "aux"] and res.layers[2].activation == "tanh"
    assert res.layers[1].kind == "pool" and res.layers[1].width == 6  # the mean over tokens
    assert kw.layers[2].std == pytest.approx(res.layers[2].std, rel=1e-6)  # the tanh row is before the scale
    # the loss is over every floating output by default, or over the one named: aux gets no gradient then
    only = initlab.probe(net, (tokens, feats), rng=0, output="logits")
    assert only.layers[5].grad_rms is None and res.layers[5].grad_rms is not None
    nested = initlab.probe(net, (tokens, feats), rng=0, output="aux.0")
    assert nested.layers[4].grad_rms is None and nested.layers[5].grad_rms is not None
    with pytest.raises(ValueError, match="'output'.*'logits'"):
        initlab.probe(net, (tokens, feats), rng=0, output="nope")
    with pytest.raises(ValueError, match="'y'.*'output'"):
        initlab.probe(net, (tokens, feats), y=np.zeros((10, 3)), rng=0)
    with torch.no_grad():
        e = net.emb(torch.from_numpy(tokens))
    assert res.layers[0].std == pytest.approx(_std(e), rel=1e-5)


def test_probe_is_deterministic_and_rng_untouched_with_dropout_in_train_mode() -> None:
    net = _cnn()
    x = np.random.default_rng(10).standard_normal((8, 3, 8, 8)).astype(np.float32)
    a = initlab.probe(net, x, rng=0, mode="train")
    b = initlab.probe(net, x, rng=0, mode="train")
    np.testing.assert_array_equal(a.column("grad_rms"), b.column("grad_rms"))  # same dropout masks: RNG restored
    c, d = initlab.probe(net, x, rng=0), initlab.probe(net, x, rng=0)
    np.testing.assert_array_equal(c.column("std"), d.column("std"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_input_is_refused_by_probe_and_fix(bad: float) -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x = np.ones((5, 3), dtype=np.float32)
    x[2, 1] = bad
    with pytest.raises(ValueError, match="'x'.*finite"):
        initlab.probe(net, x, rng=0)
    with pytest.raises(ValueError, match="'x'.*finite"):
        initlab.fix(net, x, rng=0)
    with pytest.raises(ValueError, match="'x'.*finite"):
        initlab.probe(net, (x,), rng=0)
    big = np.full((5, 3), 1e300)  # finite in float64, inf once cast to the model's float32
    with pytest.raises(ValueError, match="'x'.*finite.*float32"):
        initlab.probe(net, big, rng=0)


def test_fix_leaves_buffers_flags_and_rng() -> None:
    net = _cnn()
    net[4].eval()  # a mixed set of flags must come back as it was
    x = np.random.default_rng(11).standard_normal((16, 3, 8, 8)).astype(np.float32)
    tensors, flags, rng = _state(net)
    initlab.fix(net, x, rng=0)
    assert [m.training for m in net.modules()] == flags and torch.equal(torch.get_rng_state(), rng)
    bufs = dict(net.named_buffers())
    for n, t in tensors:
        if n in bufs:
            assert torch.equal(bufs[n], t), n
    assert any(not torch.equal(p, dict(tensors)[n]) for n, p in net.named_parameters())  # LSUV did change weights


def test_parameter_slices_and_matmul_weights_are_rows() -> None:
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.pos = nn.Parameter(torch.randn(1, 16, 8, generator=torch.Generator().manual_seed(0)))
            self.w = nn.Parameter(torch.randn(8, 5, generator=torch.Generator().manual_seed(1)) / 8 ** 0.5)
            self.gate = nn.Parameter(torch.full((8,), 0.5))

        def forward(self, t: Any) -> Any:
            h = self.emb(t) + self.pos[:, : t.shape[1]]
            return (h * self.gate) @ self.w

    net = Tiny()
    t = np.random.default_rng(12).integers(0, 20, size=(4, 10))
    res = _probe_checked(net, t)
    assert [(s.name, s.kind) for s in res.layers] == [("emb", "embedding"), ("add", "add"), ("mul", "scale"),
                                                      ("matmul", "linear")]
    assert res.layers[2].gain_mean == 0.5 and res.layers[3].fan_in == 8 and res.layers[3].width == 5
    with torch.no_grad():
        h = net.emb(torch.from_numpy(t)) + net.pos[:, :10]
    assert res.layers[1].std == pytest.approx(_std(h), rel=1e-5)


# -- nothing skipped silently ---------------------------------------------------------------------------
def test_unexamined_lists_parameters_without_a_row() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.log_scale = nn.Parameter(torch.zeros(4))
            self.unused = nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            return self.fc(x) * torch.exp(self.log_scale)

    res = initlab.probe(Odd(), np.ones((6, 4), dtype=np.float32) + np.arange(4, dtype=np.float32), rng=0)
    assert len(res.unexamined) == 2, res.unexamined
    assert res.unexamined[0].startswith("(model) (Odd): parameter log_scale") and "exp" in res.unexamined[0]
    assert res.unexamined[1].startswith("unused (Linear): parameters weight, bias") and "not used" in res.unexamined[1]
    text = str(res)
    assert "unexamined: unused (Linear)" in text and "no problem found:" not in text
    assert res.summary().endswith("2 modules/operations with parameters were not examined (listed below)")
    assert res.to_dict()["unexamined"] == res.unexamined


def test_model_that_raises_is_a_value_error_and_leaves_the_state() -> None:
    class Fails(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm1d(4)
            self.fc = nn.Linear(5, 2)

        def forward(self, x: Any) -> Any:
            return self.fc(self.bn(x))  # BatchNorm runs (and would move its statistics), then the shapes clash

    net = Fails().eval()
    before = _state(net)
    with pytest.raises(ValueError, match=r"'x' argument was rejected by the model \(inputs of shape \(8, 4\)\)"):
        initlab.probe(net, np.ones((8, 4), dtype=np.float32) * np.arange(8, dtype=np.float32)[:, None], rng=0)
    _assert_same_state(net, before)
