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
    rows, cols = Seed000Config().table_shape
    fan_in, fan_avg = cols, (rows + cols) / 2  # torch layout [out, in]: fan_in is the second axis
    # the seed's "theory" is the fan_avg value; the corrected one is torch's fan_in formula
    assert v["kaiming_normal"]["seed_theory"] == pytest.approx(2 / fan_avg)
    assert v["kaiming_normal"]["theory"] == pytest.approx(2 / fan_in)
    assert v["kaiming_normal_leaky"]["theory"] == pytest.approx(2 / ((1 + 0.3**2) * fan_in), rel=1e-12)
    # ...and the seed's own torch measurement agrees with the corrected value, not with its theory
    assert abs(v["kaiming_normal"]["seed_torch"] - 2 / fan_in) < abs(v["kaiming_normal"]["seed_torch"] - 2 / fan_avg)
    # the correction quotes the values computed here
    want = [f"{2 / fan_in:.3g}", f"{2 / ((1 + 0.3**2) * fan_in):.3g}", f"fan_in = {fan_in}"]
    assert any(all(w in c for w in want) for c in result.corrections), result.corrections


def test_leaky_slope_is_used_in_the_activation_and_the_init(result: StudyResult) -> None:
    from initlab import activations

    cases = result.numbers["cases"]
    for key in ("he_seed_leaky", "he_torch_leaky"):
        act = activations.get(cases[key]["activation"])
        assert float(act.forward(np.array([-1.0]))[0]) == pytest.approx(-0.3)
        assert "0.3" in cases[key]["init"] or "1.8348" in cases[key]["init"]
    assert "a=0.3" in cases["he_torch_leaky"]["init"]


def test_the_seeds_fan_avg_he_is_present(result: StudyResult) -> None:
    from initlab import init

    case = result.numbers["cases"]["he_seed_relu"]
    shape = (300, 200)  # a hidden layer of the seed's network, torch layout [out, in]
    assert init.get(case["init"]).moments(shape)["var"] == pytest.approx(4 / (200 + 300))


def test_probe_table_shows_every_finding_and_each_fix_once(result: StudyResult) -> None:
    t = result.table("probe")
    fixes = set(result.fixes.values())
    for row, case in zip(t.rows, result.numbers["cases"].values()):
        for line in case["probe_verdicts"]:
            if line == "no problem found":
                assert row[-1] == line
                continue
            message, rec = line.split("; ", 1)  # "<finding>; <what to do>"
            assert message in row[-1]  # every finding is shown ...
            assert rec.split("; keep biases")[0] in fixes  # ... and its fix is stated once, for the study
        assert "; use " not in row[-1] and "more)" not in row[-1]


def test_delta_story_is_built_from_the_measured_numbers(result: StudyResult) -> None:
    from initlab.studies._common import sig

    d = result.numbers["cases"]["std1_tanh"]["delta_std"]
    text = " ".join(result.explanation)
    assert all(sig(v) in text for v in d)
    assert "vanish too" not in text
    grows = d[0] > d[1] > d[2]
    assert ("grow from layer" in text) == grows


@pytest.mark.parametrize("how", ["config", "missing"])
def test_without_torch_the_page_says_so_and_claims_nothing(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    import sys

    if how == "missing":
        monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    cfg = Seed000Config.make(quick=True, seed=1, torch=(how == "missing"))
    r = seed000(cfg)
    cells = r.table("variance").column("torch.nn.init")
    word = "not installed" if how == "missing" else "not compared"
    assert sum(c == word for c in cells) == 10  # every row with a torch scheme
    assert all(v["torch"] is None for v in r.numbers["variance"].values())
    for text in (r.verdict, r.summary):
        assert "torch.nn.init too" not in text and "was not compared" in text


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


def test_every_case_has_a_histogram_panel_and_std_curves(result: StudyResult) -> None:
    figs = {f.name: f for f in result.figures}
    assert result.headline == "std_per_layer" and result.takeaway
    panels = [p for name in ("hist_tanh", "hist_sigmoid", "hist_relu") for p in figs[name].data["panels"]]
    assert len(panels) == 14  # one panel per case, grouped by activation (3 figures instead of 14 grids)
    for p in panels:
        assert [la["label"] for la in p["layers"]] == ["1", "2", "3", "4", "5"]
        for la in p["layers"]:
            widths = np.diff(la["edges"])
            assert float(np.sum(np.asarray(la["density"]) * widths)) == pytest.approx(1.0, abs=1e-9)
    # the headline's measured series are the forward table's stds, case by case
    measured = [s["y"] for p in figs["std_per_layer"].data["panels"] for s in p["series"] if s["style"] == "markers"]
    cases = [c["act_std"] for c in result.numbers["cases"].values() if max(c["act_std"]) > 0]
    assert sorted(map(tuple, measured)) == sorted(map(tuple, cases))


def test_deterministic() -> None:
    cfg = Seed000Config.make(quick=True, seed=3)
    a, b = seed000(cfg), seed000(cfg)
    assert a.numbers == b.numbers
