"""The torch probe agrees with the NumPy probe on the same weights; torch-only cases."""

from __future__ import annotations

import numpy as np
import pytest

import initlab
from initlab.nn import Network

torch = pytest.importorskip("torch")

KEYS = ["mean", "std", "sq_mean", "chan_var", "min", "max", "preact_mean", "preact_std", "saturated", "dead",
        "cosine", "weight_std", "grad_std", "grad_act_std", "grad_weight_std", "grad_weight_ratio"]


def _torch_copy(net: Network) -> "torch.nn.Sequential":
    """Built here (not with Network.to_torch) so the test does not depend on the code it checks."""
    dt = torch.float64 if net.dtype == np.float64 else torch.float32
    mods = []
    for layer in net.layers:
        lin = torch.nn.Linear(layer.n_in, layer.n_out, dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(layer.weight)))
            lin.bias.copy_(torch.from_numpy(np.array(layer.bias)))
        mods.append(lin)
        name = layer.activation.name
        if name != "linear":
            mods.append({"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}[name]())
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("act", ["tanh", "relu", "sigmoid"])
@pytest.mark.parametrize("loss", ["mse", "ce", "sum"])
def test_torch_and_numpy_probe_agree_float64(act: str, loss: str) -> None:
    net = Network([20, 64, 48, 32, 5], activation=act, init="xavier_normal", bias_init="normal(std=0.2)",
                  rng=1, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((300, 20))
    a = initlab.probe(net, x, loss=loss, rng=5)
    b = initlab.probe(_torch_copy(net), x, loss=loss, rng=5)
    assert len(a.layers) == len(b.layers) == 4
    for k in KEYS:
        np.testing.assert_allclose(b.column(k), a.column(k), rtol=1e-9, atol=1e-12, err_msg=k)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.hist.counts, lb.hist.counts)
        np.testing.assert_array_equal(la.grad_hist.counts, lb.grad_hist.counts)
    assert [str(v) for v in a.verdicts] == [str(v) for v in b.verdicts]


def test_torch_and_numpy_probe_agree_float32_with_theory() -> None:
    net = Network([30, 100, 100, 3], activation="tanh", init="lecun_normal", rng=2)
    x = np.random.default_rng(1).standard_normal((256, 30)).astype(np.float32)
    a = initlab.probe(net, x, rng=0, theory=True)
    b = initlab.probe(_torch_copy(net), x, rng=0, theory=True)
    for k in KEYS:
        np.testing.assert_allclose(b.column(k), a.column(k), rtol=2e-4, atol=1e-7, err_msg=k)
    assert b.theory and a.theory
    # theory from the spec (numpy) and from the measured weight variance (torch): same to sampling error
    np.testing.assert_allclose(b.column("theory_std"), a.column("theory_std"), rtol=0.05)


def test_inplace_relu_gives_same_stats() -> None:
    g = torch.Generator().manual_seed(0)
    lin1, lin2 = torch.nn.Linear(10, 40), torch.nn.Linear(40, 3)
    with torch.no_grad():
        for p in (*lin1.parameters(), *lin2.parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    plain = torch.nn.Sequential(lin1, torch.nn.ReLU(), lin2)
    inplace = torch.nn.Sequential(lin1, torch.nn.ReLU(inplace=True), lin2)
    x = np.random.default_rng(0).standard_normal((128, 10)).astype(np.float32)
    a, b = initlab.probe(plain, x, rng=1), initlab.probe(inplace, x, rng=1)
    for k in ["std", "preact_std", "dead", "grad_std", "grad_weight_std"]:
        np.testing.assert_allclose(b.column(k), a.column(k), rtol=1e-6, err_msg=k)


def test_conv_per_channel_and_functional_relu_row() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)
            self.act = torch.nn.Tanh()
            self.fc = torch.nn.Linear(8 * 6 * 6, 4)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            return self.fc(torch.relu(self.act(self.conv(x))).flatten(1))

    model = Net()
    x = np.random.default_rng(0).standard_normal((16, 3, 8, 8)).astype(np.float32)
    res = initlab.probe(model, x, rng=0, theory=True)
    conv = res.layers[0]
    assert conv.kind == "conv" and conv.op == "conv2d" and conv.width == 8 and conv.activation == "tanh"
    with torch.no_grad():
        z = model.conv(torch.from_numpy(x)).double()
    chan_mean = z.mean(dim=(0, 2, 3))
    assert conv.preact_sq_mean == pytest.approx(float((chan_mean**2).mean()), rel=1e-5)
    assert conv.preact_std == pytest.approx(float(z.std(unbiased=False)), rel=1e-5)
    # torch.relu after the Tanh module is a row of its own, read by the fc through flatten(1)
    relu, fc = res.layers[1], res.layers[2]
    assert relu.kind == "activation" and relu.activation == "relu" and relu.name == "relu" and relu.width == 8
    assert fc.input_seen and fc.name == "fc"
    assert not res.theory and any("plain stacks" in n for n in res.notes)
    assert fc.grad_weight_std > 0


def test_probe_leaves_param_grads_untouched() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    initlab.probe(model, np.ones((4, 5), dtype=np.float32), rng=0)
    assert all(p.grad is None for p in model.parameters())


def test_probe_of_an_output_on_no_path_to_the_loss():
    """A Linear's output chunked in two, one half through a ReLU whose output is left unused:
    torch calls that half's gradient hook with None. The probe measures the ReLU's forward and
    gives it no delta, instead of raising from inside backward."""

    from _torch_models import chunked

    model = chunked()
    x = torch.randn(32, 6)
    res = initlab.probe(model, x)
    rows = {layer.name: layer for layer in res.layers}
    assert rows["act"].std > 0
    assert rows["act"].grad_std is None or np.isnan(rows["act"].grad_std)
    assert rows["out"].grad_std > 0


@pytest.mark.parametrize("kind", ["requires_grad", "bfloat16", "ce_labels"])
def test_targets_given_as_a_tensor_are_read_as_the_input_is(kind):
    """``y`` as a torch tensor — on the model's device (a GPU: NumPy cannot read it), requiring
    grad, or bfloat16 — gives the same statistics as the same targets as a NumPy array."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 4))
    x = torch.randn(32, 6)
    if kind == "ce_labels":
        y_np = np.arange(32) % 4
        y = torch.from_numpy(y_np)
        loss = "ce"
    else:
        y = torch.randn(32, 4)
        if kind == "bfloat16":
            y = y.to(torch.bfloat16)
        y_np = y.float().numpy().copy()
        if kind == "requires_grad":
            y.requires_grad_(True)
        loss = "mse"
    ref = initlab.probe(model, x, y=y_np, loss=loss, rng=0)
    got = initlab.probe(model, x, y=y, loss=loss, rng=0)
    assert [r.grad_std for r in got.layers] == [r.grad_std for r in ref.layers]
    assert [r.grad_weight_ratio for r in got.layers] == [r.grad_weight_ratio for r in ref.layers]
