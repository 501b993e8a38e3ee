"""The CNN study on a tiny configuration: a StudyResult like the seed studies, strict JSON, numbers
consistent with its tables, the theory beside every weight layer it can predict."""

from __future__ import annotations

import json
import math

import pytest

from initlab.studies.cnn import INITS, MNIST1D_PAPER_CNN_ACCURACY, CNNConfig, cnn_study


@pytest.fixture(scope="module")
def result():
    cfg = CNNConfig.make(quick=True, digits_epochs=1, mnist1d_epochs=1, deep_depth=4, deep_channels=4, deep_steps=6,
                         deep_every=3, n_probe=64, batch_size=128)
    return cnn_study(cfg)


def test_result_is_plain_data_with_every_init(result) -> None:
    json.dumps(result.to_dict(), allow_nan=False)
    assert result.ok and result.study == "cnn"
    for ds in ("digits", "mnist1d"):
        assert set(result.numbers[ds]) == {k for k, *_ in INITS}
    assert result.numbers["mnist1d_paper_cnn_accuracy"] == MNIST1D_PAPER_CNN_ACCURACY
    assert {f.name for f in result.figures} >= {"digits_hist", "digits_curves", "mnist1d_curves", "deep"}


def test_zero_init_outputs_zero_and_the_theory_says_so(result) -> None:
    rows = result.numbers["digits"]["zeros"]["layers"]
    assert all(r["std"] == 0.0 for r in rows)
    assert rows[0]["predicted_std"] == 0.0


def test_he_first_layer_matches_the_prediction_loosely(result) -> None:
    # the first conv layer sees the real input: the mean-field std is within 40% (digits are not Gaussian)
    r = result.numbers["mnist1d"]["he_in"]["layers"][0]
    assert r["std"] == pytest.approx(r["predicted_std"], rel=0.4)


def test_deep_numbers(result) -> None:
    deep = result.numbers["deep"]
    for kind in ("gaussian", "delta_orthogonal"):
        r = deep[kind]
        assert len(r["grad_rms"]) == 4 and len(r["step_loss"]) == 6
        assert all(math.isfinite(v) for v in r["measured_preact_sq"])
        # the same sigma_w2 for both kernel families: the same prediction
    assert deep["gaussian"]["predicted_preact_var"] == pytest.approx(deep["delta_orthogonal"]["predicted_preact_var"])
    assert str(round(deep["sigma_w2"], 4)) in result.table("deep").note
