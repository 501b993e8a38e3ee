"""Seed 002: the histograms and the MNIST-style comparison (digits and MNIST-1D stand in for MNIST).

Only what the data decides is asserted: std 0.01 stays at ln 10 and learns nothing in 2000
iterations; He ends lowest in both variants; in the all-ReLU variant He < Xavier < std 0.01; in the
seed's variant Xavier with sigmoid ends far above He. The order of Xavier+sigmoid and std 0.01
(both near ln 10) is reported, not asserted.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from initlab.studies import StudyResult, seed002
from initlab.studies.seed002 import Seed002Config

LN10 = math.log(10)


@pytest.fixture(scope="module")
def result() -> StudyResult:
    return seed002(Seed002Config.make(seed=0))  # 2000 iterations, batch 128, lr 0.01


def runs(result: StudyResult, dataset: str) -> dict[str, Any]:
    return result.numbers["training"][dataset]["runs"]


def test_without_mnist_uses_digits_and_mnist1d(result: StudyResult) -> None:
    assert result.numbers["data"]["used"] == ["digits", "mnist1d"]
    assert "digits" in result.numbers["data"]["note"] and "MNIST-1D" in result.numbers["data"]["note"]


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_std001_stays_at_ln10(result: StudyResult, dataset: str) -> None:
    r = runs(result, dataset)["std001_relu"]
    assert abs(r["final_train_loss"] - LN10) < 0.01
    assert abs(r["first_loss"] - LN10) < 0.01
    assert r["test_accuracy"] < 0.2  # chance is 0.1: nothing learned


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_he_lowest_in_both_variants(result: StudyResult, dataset: str) -> None:
    order = result.numbers["training"][dataset]["order"]
    assert order["seed_text"][0] == "he_relu"
    assert order["book"][0] == "he_relu"


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_book_variant_order(result: StudyResult, dataset: str) -> None:
    r = runs(result, dataset)
    assert r["he_relu"]["final_train_loss"] < r["xavier_relu"]["final_train_loss"] < r["std001_relu"]["final_train_loss"]


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_xavier_sigmoid_learns_far_slower_than_he(result: StudyResult, dataset: str) -> None:
    r = runs(result, dataset)
    assert r["he_relu"]["final_train_loss"] < 0.75 * r["xavier_sigmoid"]["final_train_loss"]


def test_histograms_show_saturation_and_collapse(result: StudyResult) -> None:
    h = result.numbers["histograms"]
    assert min(h["std10_sigmoid"]["saturated"]) > 0.8  # sigmoid at 0/1
    assert h["std0_sigmoid"]["act_std"] == [0.0] * 5  # every unit exactly 0.5
    assert h["std0_sigmoid"]["act_mean"] == [0.5] * 5


def test_missing_mnist_folder_falls_back_and_says_so(tmp_path: Path) -> None:
    cfg = Seed002Config.make(quick=True, mnist=str(tmp_path), iterations=5, mnist1d_samples=200, n_inputs=50)
    r = seed002(cfg)
    assert r.ok and r.numbers["data"]["used"] == ["digits", "mnist1d"]
    assert str(tmp_path) in r.numbers["data"]["note"]


def test_mnist_folder_is_used_when_it_has_the_files(tmp_path: Path) -> None:
    import numpy as np

    gen = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz",
             x_train=gen.integers(0, 256, (300, 28, 28), dtype=np.uint8), y_train=gen.integers(0, 10, 300),
             x_test=gen.integers(0, 256, (100, 28, 28), dtype=np.uint8), y_test=gen.integers(0, 10, 100))
    cfg = Seed002Config.make(quick=True, mnist=str(tmp_path), iterations=5, n_inputs=50)
    r = seed002(cfg)
    assert r.ok and r.numbers["data"]["used"] == ["mnist"]
    assert "MNIST read from" in r.numbers["data"]["note"]
    assert set(r.numbers["training"]) == {"mnist"}


def test_ranks_show_ties_the_data_does_not_decide() -> None:
    from initlab.studies.seed002 import TIE_FLOOR, ranks

    runs_ = {"a": {"final_train_loss": 2.3017, "last_batches_se": 0.001},
             "b": {"final_train_loss": 2.3021, "last_batches_se": 0.001},
             "c": {"final_train_loss": 0.25, "last_batches_se": 0.001}}
    assert ranks(runs_, ["a", "b", "c"]) == {"c": "1", "a": "2=", "b": "2="}
    runs_["b"]["final_train_loss"] = 2.3017 + 2 * TIE_FLOOR  # now beyond the floor and the noise
    assert ranks(runs_, ["a", "b", "c"]) == {"c": "1", "a": "2", "b": "3"}
    runs_["b"]["last_batches_se"] = 0.05  # noisy runs: the same gap is a tie again
    assert ranks(runs_, ["a", "b", "c"])["b"] == "2="


def test_training_table_ranks_and_precision(result: StudyResult) -> None:
    from initlab.studies.seed002 import tie_threshold

    t = result.table("training")
    assert t.formats[t.columns.index("final train loss")] == ".4f"
    for dkey, d in result.numbers["training"].items():
        r = d["runs"]
        xs, s01 = r["xavier_sigmoid"], r["std001_relu"]
        tied = abs(xs["final_train_loss"] - s01["final_train_loss"]) < tie_threshold(xs, s01)
        rk = d["ranks"]["seed_text"]
        assert (rk["xavier_sigmoid"] == rk["std001_relu"]) == tied
        assert ("=" in rk["xavier_sigmoid"]) == tied


def test_training_networks_are_probed_at_init(result: StudyResult) -> None:
    t = result.table("training_init")
    assert len(t.rows) == 4 * len(result.numbers["training"])
    for d in result.numbers["training"].values():
        for r in d["runs"].values():
            assert r["probe_verdicts"] and len(r["predicted_init_act_std"]) == 5
            assert all(p is not None and p > 0 for p in r["predicted_init_act_std"][:4])
