"""Seed 000: the variance table (theory vs initlab vs torch) and the histogram study's numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initlab.studies import StudyResult, seed000
from initlab.studies.seed000 import Seed000Config

K = 4.0  # standard errors allowed for a sample variance (two-sided p ≈ 6e-5 per row)


@pytest.fixture(scope="module")
def result() -> StudyResult:
    return seed000(Seed000Config.make(seed=0))


def expected_theory() -> dict[str, float]:
    """The variances recomputed here from the formulas for a 300x500 torch-layout tensor."""
    fi, fo, a2 = 500, 300, 0.09
    return {
        "uniform": 1 / 12, "normal": 1.0, "xavier_uniform": 2 / 800, "xavier_normal": 2 / 800,
        "kaiming_uniform": 2 / fi, "kaiming_normal": 2 / fi,
        "kaiming_uniform_leaky": 2 / (1.09 * fi), "kaiming_normal_leaky": 2 / ((1 + a2) * fi),
        "kaiming_normal_fan_out": 2 / fo, "kaiming_uniform_leaky_fan_out": 2 / ((1 + a2) * fo),
        "he_seed": 4 / 800, "he_seed_leaky": 4 / (1.09 * 800),
    }


def test_theory_column_is_the_formula(result: StudyResult) -> None:
    v = result.numbers["variance"]
    for key, want in expected_theory().items():
        assert v[key]["theory"] == pytest.approx(want, rel=1e-12), key


def test_initlab_matches_theory_within_sampling_error(result: StudyResult) -> None:
    n = 300 * 500
    for key, row in result.numbers["variance"].items():
        # SE of a sample variance: sqrt((mu4 - sigma^4) / n); normal mu4 = 3 sigma^4, uniform 1.8 sigma^4
        excess = 0.8 if ("uniform" in key) else 2.0
        se = row["theory"] * math.sqrt(excess / n)
        assert abs(row["initlab"] - row["theory"]) < K * se, (key, row)


def test_torch_matches_theory_within_sampling_error(result: StudyResult) -> None:
    pytest.importorskip("torch", reason="torch is an optional dependency; the column says 'not installed' without it")
    n = 300 * 500
    compared = 0
    for key, row in result.numbers["variance"].items():
        if key.startswith("he_seed"):
            assert row["torch"] is None  # torch has no fan_avg He: the column stays empty
            continue
        excess = 0.8 if ("uniform" in key) else 2.0
        se = row["theory"] * math.sqrt(excess / n)
        assert abs(row["torch"] - row["theory"]) < K * se, (key, row)
        compared += 1
    assert compared == 10


def test_seed_kaiming_theory_is_corrected(result: StudyResult) -> None:
    v = result.numbers["variance"]
    # the seed printed 0.005 / 0.004587 (fan_avg); torch uses fan_in = 500
    assert v["kaiming_normal"]["seed_theory"] == pytest.approx(0.005)
    assert v["kaiming_normal"]["theory"] == pytest.approx(0.004)
    assert v["kaiming_normal_leaky"]["theory"] == pytest.approx(0.00366972477, rel=1e-8)
    # ...and the seed's own torch measurement agrees with the corrected value, not with its theory
    assert abs(v["kaiming_normal"]["seed_torch"] - 0.004) < abs(v["kaiming_normal"]["seed_torch"] - 0.005)
    assert any("0.004" in c and "fan_in" in c for c in result.corrections)


def test_zeros_pass_nothing(result: StudyResult) -> None:
    c = result.numbers["cases"]["zeros_tanh"]
    assert c["act_std"] == [0.0] * 5
    assert c["delta_std"][:4] == [0.0] * 4 and c["delta_std"][4] > 0  # only the output layer gets a delta


def test_small_init_vanishes_and_large_saturates(result: StudyResult) -> None:
    small = result.numbers["cases"]["std001_tanh"]["act_std"]
    assert all(b < a for a, b in zip(small[:4], small[1:4]))  # shrinks through the hidden layers
    big = result.numbers["cases"]["std1_tanh"]
    assert min(big["saturated"][1:4]) > 0.5


def test_he_keeps_relu_scale_while_xavier_halves_it(result: StudyResult) -> None:
    cases = result.numbers["cases"]
    he = cases["he_torch_relu"]["act_std"]
    xr = cases["xavier_relu"]["act_std"]
    # hidden layers 1..4 (wide): Xavier+ReLU loses a factor ~sqrt(2)·... per layer, He keeps it
    assert xr[3] / xr[0] < 0.5
    assert 0.8 < he[3] / he[0] < 1.25


def test_every_case_has_a_figure_with_forward_and_backward_rows(result: StudyResult) -> None:
    assert len(result.figures) == 14
    for f in result.figures:
        rows = f.data["rows"]
        assert [r["label"] for r in rows] == ["forward", "backward"]
        assert all(len(r["panels"]) == 5 for r in rows)
        for p in rows[0]["panels"]:
            widths = np.diff(p["edges"])
            assert float(np.sum(np.asarray(p["density"]) * widths)) == pytest.approx(1.0, abs=1e-9)


def test_deterministic() -> None:
    cfg = Seed000Config.make(quick=True, seed=3)
    a, b = seed000(cfg), seed000(cfg)
    assert a.numbers == b.numbers
