"""Seed 003: per-layer std of the 10 x 500 tanh network against the seed's table and the theory."""

from __future__ import annotations

import math

import pytest

from initlab.studies import StudyResult, seed003
from initlab.studies.seed003 import SEED_STD, Seed003Config

K = 4.0


@pytest.fixture(scope="module")
def result() -> StudyResult:
    return seed003(Seed003Config.make(seed=0))


def rel_se_std(layer: int, width: int = 500, fan_in: int = 500, n_inputs: int = 1000) -> float:
    """Relative standard error of one network's layer-``layer`` activation std.

    Each layer's weights are one random draw: for w ~ N(0, s^2 I) the unit's pre-activation variance
    w^T C w (C the input covariance) has relative variance 2 tr(C^2)/tr(C)^2 ~ 2(1 + d/B)/d
    (Marchenko-Pastur: tr(C^2) = d(1 + d/B) for B samples of dimension d). Averaged over ``width``
    units and accumulated over ``layer`` independent layers, halved for a std.
    """
    per_layer_var = 2 * (1 + fan_in / n_inputs) / (fan_in * width)
    return 0.5 * math.sqrt(layer * per_layer_var)


def test_std_matches_the_seed_within_sampling_error(result: StudyResult) -> None:
    for key in ("small", "big", "xavier"):
        ours = result.numbers["inits"][key]["std"]
        for layer, (a, b) in enumerate(zip(ours, SEED_STD[key]), start=1):
            # two independent networks (ours and the seed's): sqrt(2) SE; the seed printed 6 decimals
            tol = K * math.sqrt(2) * rel_se_std(layer) * b + 5e-7
            assert abs(a - b) <= tol, (key, layer, a, b, tol)


def test_std_matches_mean_field_prediction(result: StudyResult) -> None:
    for key in ("small", "big", "xavier"):
        d = result.numbers["inits"][key]
        for layer, (a, p) in enumerate(zip(d["std"], d["predicted_std"]), start=1):
            assert abs(a - p) <= K * rel_se_std(layer) * p, (key, layer, a, p)


def test_every_table_row_has_prediction_beside_measurement(result: StudyResult) -> None:
    for key in ("small", "big", "xavier"):
        t = result.table(f"layers_{key}")
        assert t.column("layer") == list(range(1, 11))
        assert all(v is not None and v >= 0 for v in t.column("predicted std"))


def test_quick_config_is_labelled() -> None:
    cfg = Seed003Config.make(quick=True)
    assert cfg.quick and cfg.n_inputs < Seed003Config().n_inputs
