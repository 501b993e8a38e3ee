"""initlab.coord_check: mup's coordinate check on a standard and a width-scaled MLP."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from initlab.diagnostics import coord_check  # noqa: E402

WIDTHS = [64, 128, 256, 512, 1024]
BASE = 64


class Readout(torch.nn.Linear):
    """A read-out with a fixed output multiplier (mup's MuReadout: BASE / width under muP)."""

    def __init__(self, n: int, mult: float) -> None:
        super().__init__(n, 1)
        self.mult = mult

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return super().forward(x) * self.mult


class MLP(torch.nn.Module):
    def __init__(self, n: int, mup: bool, d: int = 16) -> None:
        super().__init__()
        self.fc1, self.act1 = torch.nn.Linear(d, n), torch.nn.ReLU()
        self.fc2, self.act2 = torch.nn.Linear(n, n), torch.nn.ReLU()
        self.out = Readout(n, BASE / n if mup else 1.0)
        with torch.no_grad():
            for lin in (self.fc1, self.fc2, self.out):
                lin.weight.normal_(0, math.sqrt(1 / lin.in_features))
                lin.bias.zero_()
            if mup:
                self.out.weight.zero_()

    def forward(self, x: "torch.Tensor") -> "torch.Tensor":
        return self.out(self.act2(self.fc2(self.act1(self.fc1(x)))))


def mup_adam(model: MLP, n: int, lr: float = 1e-2) -> "torch.optim.Optimizer":
    """muP for Adam (Yang et al. 2021, Table 3): hidden (matrix-like) weights at lr·BASE/n, the
    input weights, biases and the (multiplied) read-out at lr."""
    hidden = [model.fc2.weight]
    rest = [p for p in model.parameters() if all(p is not h for h in hidden)]
    return torch.optim.Adam([{"params": rest, "lr": lr}, {"params": hidden, "lr": lr * BASE / n}])


def test_standard_parametrization_with_adam_blows_up_with_width():
    """SP + Adam: each weight moves by ~lr whatever the width, so after one update the hidden
    layer's output grows ∝ width^(~1/2) and the read-out's ∝ width (mup's documented failure)."""
    cc = coord_check(lambda n: MLP(n, False), WIDTHS, steps=3, optimizer="adam", lr=1e-2, rng=0)
    assert cc.layers == ["fc1", "act1", "fc2", "act2", "out"]
    # at initialization every layer is width-stable (1/fan_in variances)
    assert all(abs(cc.slope(layer, 0)) < 0.15 for layer in cc.layers)
    # after one update the width-dependent layers grow; the input layer (fixed fan-in) does not
    assert cc.slope("fc2", 1) > 0.3
    assert cc.slope("out", 1) > 0.7
    assert abs(cc.slope("fc1", 1)) < 0.15
    assert "not width-stable from step 1" in cc.summary()


def test_width_scaled_readout_and_lr_stay_flat():
    cc = coord_check(lambda n: MLP(n, True), WIDTHS, steps=3, optimizer=mup_adam, rng=0)
    for r in cc.slopes():
        assert abs(r["slope"]) < 0.2, r
    assert cc.summary().startswith("width-stable")
    # the read-out starts at exactly zero (zero init) and then moves by O(1) at every width
    assert np.all(cc.l1("out", 0) == 0) and np.all(cc.l1("out", 1) > 0)


def test_rng_state_and_determinism(tmp_path):
    before = torch.random.get_rng_state().clone()
    a = coord_check(lambda n: MLP(n, False), [32, 64], steps=2, optimizer="sgd", lr=0.05, rng=3)
    b = coord_check(lambda n: MLP(n, False), [32, 64], steps=2, optimizer="sgd", lr=0.05, rng=3)
    assert torch.equal(before, torch.random.get_rng_state())
    assert a.records == b.records
    a.plot(str(tmp_path / "cc.png"))
    assert (tmp_path / "cc.png").stat().st_size > 5000
    d = a.to_dict()
    assert set(d) >= {"widths", "records", "slopes", "summary"}


def test_functional_readout_gets_an_output_row():
    def factory(n: int) -> torch.nn.Module:
        class M(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.fc = torch.nn.Linear(4, n)

            def forward(self, x):
                return torch.tanh(self.fc(x)).sum(dim=1, keepdim=True)
        return M()

    cc = coord_check(factory, [8, 16], steps=1, optimizer="sgd", lr=0.1, rng=0)
    assert cc.layers == ["fc", "output"]


def test_bad_arguments():
    mlp = lambda n: MLP(n, False)  # noqa: E731
    with pytest.raises(ValueError, match="'widths'"):
        coord_check(mlp, [64])
    with pytest.raises(ValueError, match="'widths'"):
        coord_check(mlp, [128, 64])
    with pytest.raises(ValueError, match="'optimizer'.*sgd"):
        coord_check(mlp, [8, 16], optimizer="rmsprop")
    with pytest.raises(ValueError, match="'lr'"):
        coord_check(mlp, [8, 16], lr=0)
    with pytest.raises(TypeError, match="'factory'"):
        coord_check(lambda n: "not a model", [8, 16])
    with pytest.raises(ValueError, match="same layers"):
        coord_check(lambda n: torch.nn.Sequential(*[torch.nn.Linear(16, 16) for _ in range(n // 8)]), [8, 16])
    with pytest.raises(ValueError, match="diverged.*lr"):
        coord_check(lambda n: MLP(n, False), [8, 16], steps=3, optimizer="sgd", lr=1e30)
