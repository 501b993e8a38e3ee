"""Seed 001: the moons accuracy table (zeros 50 %/50 %, He >= 93 % test) at the seed's settings."""

from __future__ import annotations

import math

import pytest

from initlab.studies import StudyResult, seed001
from initlab.studies.seed001 import Seed001Config


@pytest.fixture(scope="module")
def result() -> StudyResult:
    return seed001(Seed001Config.make(seed=0))  # 15000 epochs, as the seed


def test_zeros_learn_nothing(result: StudyResult) -> None:
    z = result.numbers["runs"]["zeros"]
    assert z["train_accuracy"] == 0.5 and z["test_accuracy"] == 0.5
    assert z["first_cost"] == pytest.approx(math.log(2), abs=1e-6)
    assert z["final_cost"] == pytest.approx(math.log(2), abs=1e-6)
    # the seed's printed cost is reproduced exactly by its formula (1e-5 inside the logs)
    assert z["final_cost_seed_formula"] == pytest.approx(0.6931271807599427, abs=1e-12)


def test_he_reaches_the_seeds_accuracy(result: StudyResult) -> None:
    he = result.numbers["runs"]["he"]
    assert he["test_accuracy"] >= 0.93
    assert he["train_accuracy"] >= 0.93
    assert he["final_cost"] < 0.2


def test_large_init_starts_with_a_huge_cost(result: StudyResult) -> None:
    large = result.numbers["runs"]["large"]
    he = result.numbers["runs"]["he"]
    assert large["first_cost"] > 10 * he["first_cost"]
    # the seed's capped formula can never exceed -ln(1e-5)
    assert large["first_cost_seed_formula"] <= -math.log(1e-5) + 1e-9


def test_table_and_figures(result: StudyResult) -> None:
    t = result.table("accuracy")
    assert t.column("init")[0] == "Zeros" and len(t.rows) == 3
    assert t.column("seed: test") == pytest.approx([0.5, 0.829904410614862, 0.9400148816395938])
    kinds = {f.name: f.kind for f in result.figures}
    assert kinds == {"cost": "curves", "decision": "decision"}
    curves = result.figures[0].data["panels"][0]["series"]
    assert all(s["x"][-1] == result.config["epochs"] - 1 for s in curves)


def test_deterministic() -> None:
    cfg = Seed001Config.make(quick=True, seed=1, epochs=300)
    assert seed001(cfg).numbers == seed001(cfg).numbers
