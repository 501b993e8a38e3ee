"""Stacked training: K networks in one batched computation give each network's own numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.nn import Network
from initlab.sweep.spec import parse_spec
from initlab.sweep.stacked import init_specs, load_data, network_sizes, train_stack


def cells_of(model: dict, grid: dict, train: dict) -> list[dict]:
    return parse_spec({"model": model, "grid": grid, "train": train}).cells()


def strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_stacked_equals_each_cell_alone_bitwise(optimizer: str) -> None:
    cells = cells_of(
        {"activation": "tanh", "width": 12, "depth": 3, "sigma_b2": 0.05},
        {"sigma_w2": [0.7, 1.5, 3.0], "seed": [0, 5], "init": ["gaussian", "orthogonal"], "lr": [0.01, 0.05]},
        {"dataset": "moons", "optimizer": optimizer, "batch_size": 64, "steps": 25},
    )
    stacked = strip(train_stack(cells))
    alone = [strip(train_stack([c]))[0] for c in cells]
    assert stacked == alone
    # and in another grouping and order
    half = strip(train_stack(cells[::-2]))
    assert half == alone[::-2]
    assert len({r["train_loss"] for r in stacked}) == len(cells)  # the cells really differ


def test_binary_output_full_batch_stacked_equals_alone() -> None:
    cells = cells_of(
        {"activation": "relu", "hidden": [12, 6], "output": "sigmoid"},
        {"sigma_w2": [1.0, 2.0], "seed": [0, 1, 2]},
        {"dataset": "moons", "optimizer": "sgd", "lr": 0.5, "batch_size": 100000, "steps": 30},
    )
    assert strip(train_stack(cells)) == [strip(train_stack([c]))[0] for c in cells]


@pytest.mark.parametrize("optimizer, kw", [("sgd", {}), ("adam", {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})])
def test_matches_initlab_network_training(optimizer: str, kw: dict) -> None:
    """The same cell trained by initlab.nn.Network.fit (same weights, same shuffles) gives the
    same losses to float32 rounding (Network folds SGD's lr into the gradient: different rounding)."""
    cells = cells_of(
        {"activation": "tanh", "width": 16, "depth": 2, "sigma_b2": 0.1},
        {"sigma_w2": [1.2, 2.5], "seed": [3]},
        {"dataset": "digits", "optimizer": optimizer, "lr": 0.02, "batch_size": 128, "steps": 3 * 12},
    )
    rows = train_stack(cells)
    X, y, Xt, yt = load_data(cells[0])
    for c, r in zip(cells, rows):
        sizes = network_sizes(c, X.shape[1], 10)
        specs = [init_specs(c, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        net = Network(sizes, activation="tanh", output="linear", init=[w for w, _ in specs],
                      bias_init=[b for _, b in specs], rng=c["seed"])
        assert math.ceil(len(X) / 128) == 12  # 36 steps = 3 epochs
        net.fit(X, y, epochs=3, batch_size=128, lr=0.02, optimizer=optimizer, loss="ce", progress=False, **kw)
        ev, evt = net.evaluate(X, y, "ce"), net.evaluate(Xt, yt, "ce")
        assert r["train_loss"] == pytest.approx(ev["loss"], rel=2e-5)
        assert r["test_loss"] == pytest.approx(evt["loss"], rel=2e-5)
        assert abs(r["train_accuracy"] - ev["accuracy"]) <= 2 / len(X)


def test_divergence_is_per_network_and_never_nan() -> None:
    cells = cells_of(
        {"activation": "relu", "width": 32, "depth": 4},
        {"lr": [0.01, 1e4], "seed": [0, 1]},
        {"dataset": "moons", "optimizer": "sgd", "batch_size": 50, "steps": 40},
    )
    rows = train_stack(cells)
    div = [r["diverged"] for r in rows]
    assert div == [False, False, True, True]
    for r in rows:
        for k, v in r.items():
            assert not (isinstance(v, float) and math.isnan(v)), (k, v)
    for r in rows[2:]:
        assert 0 <= r["diverged_step"] < 40 and r["train_loss"] is None and r["test_loss"] is None
        assert 0.0 <= r["train_accuracy"] <= 1.0
    # the healthy networks are unaffected by their diverging stack-mates
    assert strip(rows[:2]) == strip(train_stack(cells[:2]))
    assert strip(rows[2:]) == strip(train_stack(cells[2:]))
    assert rows[0]["train_accuracy"] > 0.75


def test_theory_columns() -> None:
    from initlab import theory

    cells = cells_of({"activation": "tanh", "width": 4, "depth": 1, "sigma_b2": 0.05},
                     {"sigma_w2": [1.0, 2.5]}, {"dataset": "moons", "steps": 1})
    rows = train_stack(cells)
    for c, r in zip(cells, rows):
        assert r["chi1"] == pytest.approx(theory.chi1("tanh", c["sigma_w2"], 0.05), rel=1e-12)
        assert r["xi_c"] == pytest.approx(theory.depth_scales("tanh", c["sigma_w2"], 0.05)[1], rel=1e-12)
        assert r["q_star"] == pytest.approx(theory.fixed_point("tanh", c["sigma_w2"], 0.05)[0], rel=1e-12)


def test_weights_have_the_requested_variance() -> None:
    """Var(W) = σ_w²/fan_in for every init (orthogonal rescaled), b ~ N(0, σ_b²)."""
    from initlab import init

    for kind in ("gaussian", "uniform", "truncated_normal", "orthogonal"):
        w_spec, b_spec = init_specs({"init": kind, "sigma_w2": 2.0, "sigma_b2": 0.25}, 300, 400)
        W = init.get(w_spec)((400, 300), rng=0, dtype=np.float64)
        n = W.size
        assert abs(W.var() * 300 / 2.0 - 1) < 6 * math.sqrt(2 / n), kind
        b = init.get(b_spec)((20000,), rng=1, dtype=np.float64)
        assert abs(b.var() / 0.25 - 1) < 6 * math.sqrt(2 / 20000)
