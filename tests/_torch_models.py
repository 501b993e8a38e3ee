"""Small torch models the watch tests train (shared by the watch and explorer tests)."""

from __future__ import annotations

import math
from typing import Any


def mlp(std: float | None, *, width: int = 64, depth: int = 3, d_in: int = 10, seed: int = 0,
        dropout: float = 0.0, norm: bool = False) -> Any:
    """A ReLU MLP d_in → width × depth → 1, weights N(0, std²) (He's std when None), biases 0,
    drawn from a torch Generator seeded with ``seed`` (torch's global RNG is not touched);
    optionally a BatchNorm1d before each ReLU and a Dropout after it."""
    import torch

    g = torch.Generator().manual_seed(seed)
    layers: list[Any] = []
    d = d_in
    for _ in range(depth):
        layers += [torch.nn.Linear(d, width)]
        if norm:
            layers += [torch.nn.BatchNorm1d(width)]
        layers += [torch.nn.ReLU()]
        if dropout:
            layers += [torch.nn.Dropout(dropout)]
        d = width
    m = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
    with torch.no_grad():
        for mod in m:
            if isinstance(mod, torch.nn.Linear):
                mod.weight.normal_(0, std if std is not None else math.sqrt(2 / mod.in_features), generator=g)
                mod.bias.zero_()
    return m


def hook_count(model: Any) -> int:
    """The forward, forward-pre and backward hooks on ``model``'s modules and the gradient hooks on
    its parameters (what a watch adds and must take out again)."""
    n = 0
    for m in model.modules():
        n += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
    for p in model.parameters():
        n += len(p._backward_hooks or {})
    return n


def chunked(seed: int = 0) -> Any:
    """A Linear's output chunked in two: one half through a ReLU whose output reaches no loss, the
    other to the readout (Linear 4 → 3). torch calls the gradient hook of the unused half with
    None. Its weights drawn after ``torch.manual_seed(seed)``."""
    import torch

    class Chunked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(6, 8)
            self.act = torch.nn.ReLU()
            self.out = torch.nn.Linear(4, 3)

        def forward(self, x: Any) -> Any:
            a, b = self.fc(x).chunk(2, dim=1)
            self.act(a)  # (a side branch left unused, as a gate computed and not applied would be)
            return self.out(b)

    torch.manual_seed(seed)
    return Chunked()


def train_mse(model: Any, opt: Any, x: Any, y: Any, steps: int, w: Any = None) -> None:
    """``steps`` steps of the batch-mean squared error on the one batch (x, y), the loss given to
    the watch ``w`` when there is one."""
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        if w is not None:
            w.log_loss(loss)
