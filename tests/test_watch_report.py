"""Saved watches end to end: ``initlab train --watch every=N --save-watch RUN``, ``initlab
watch-report RUN --out DIR`` (good and bad input: exit 2 with one line), and the report's
``watch`` study (the dying layer and its step named; the He run has no verdict)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from initlab.cli import main
from initlab.diagnostics import Watch


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


_TRAIN = ("train", "--dataset", "moons", "--layers", "2,32,32,1", "--init", "normal(std=1)", "--optimizer", "adam",
          "--lr", "0.2", "--epochs", "6", "--batch-size", "40", "--watch", "every=2", "--no-progress")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from initlab.cli import main as cli_main

    run = tmp_path_factory.mktemp("watch") / "run"
    with pytest.raises(SystemExit) as e:
        cli_main([*_TRAIN, "--save-watch", str(run), "--json"])
    assert e.value.code in (0, None)
    return run.with_suffix(".json")


def test_train_save_watch_writes_a_loadable_watch(saved: Path) -> None:
    w = Watch.load(str(saved))
    assert w.every == 2 and w.model == "network" and w.layer_names == ["layers.0", "layers.1", "layers.2"]
    assert [s.step for s in w.steps] == list(range(0, 60, 2))  # 6 epochs × 10 batches of 40
    assert all(s.loss is not None and np.isfinite(s.loss) for s in w.steps)


def test_train_save_watch_json_and_the_same_verdicts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(capsys, *_TRAIN, "--save-watch", str(tmp_path / "w.json"), "--json")
    assert code == 0
    res = json.loads(out)
    assert res["save_watch"] == str(tmp_path / "w.json")
    assert [v["text"] for v in Watch.load(res["save_watch"]).to_dict()["verdicts"]] == \
           [v["text"] for v in res["watch"]["verdicts"]]


@pytest.mark.parametrize("args, needle", [
    (["--save-watch", "w.json"], "'--save-watch' option needs '--watch every=N'"),
    (["--watch", "every=2", "--save-watch", "/no/such/dir/w.json"], "'--save-watch' option must be inside an existing"),
    (["--watch", "every=2", "--save-watch", "w.png"], "'--save-watch' option must be a .json file"),
])
def test_train_save_watch_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code, _, err = _run(capsys, "train", "--epochs", "1", "--no-progress", *args)
    assert code == 2 and err.startswith("initlab: error:") and err.count("\n") == 1 and needle in err, err


def test_watch_report_writes_the_page(capsys: pytest.CaptureFixture[str], saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "page"
    code, stdout, err = _run(capsys, "watch-report", str(saved), "--out", str(out), "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    html = (out / "index.html").read_text(encoding="utf-8")
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    w = Watch.load(str(saved))
    assert summary["verdicts"] == [v.to_dict() for v in w.verdicts] and w.verdicts
    # every figure is a PNG on the page, drawn by the report's renderer (its legibility metadata)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["watch_colordim.png", "watch_curves.png"]
    assert sorted(re.findall(r'<img src="([^"]+)"', html)) == pngs
    from PIL import Image

    for name in pngs:
        with Image.open(out / name) as im:
            info = dict(im.info)
        assert float(info["initlab:min_font_pt"]) >= 8.5 and float(info["initlab:width_in"]) == 9.0
    # the verdicts over time: each with its first step, its layer and its fix, on the page
    table = next(t for t in data["studies"]["watch"]["tables"] if t["name"] == "verdicts")
    assert table["columns"][:3] == ["first step", "layer", "problem"] and "fix" in table["columns"]
    assert [(r[0], r[1], r[2]) for r in table["rows"]] == [(v.step, v.name, v.kind) for v in w.verdicts]
    from markupsafe import escape

    for v in w.verdicts:
        assert str(escape(v.recommendation)) in html
    assert "What each study teaches" not in html and "seed 0" not in html
    assert "Watch.load(" in html
    # the takeaway names the layer that died and its step
    from initlab.studies.watch import dying

    d = dying(w)
    assert d is not None and f"{d.name} is dead from step {d.step}" in data["studies"]["watch"]["takeaway"]


def test_watch_report_of_a_clean_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "he.json"
    code, _, _ = _run(capsys, "train", "--dataset", "moons", "--layers", "2,16,16,2", "--init", "he_normal",
                      "--epochs", "3", "--batch-size", "100", "--n-train", "400", "--lr", "0.01", "--watch", "every=1",
                      "--save-watch", str(run), "--no-progress")
    assert code == 0
    assert Watch.load(str(run)).verdicts == []
    code, out, err = _run(capsys, "watch-report", str(run), "--out", str(tmp_path / "page"))
    assert code == 0, err
    assert "no problem seen at any recorded step" in out
    html = (tmp_path / "page" / "index.html").read_text(encoding="utf-8")
    assert "No problem at any of the 12 recorded steps" in html


def test_watch_report_replaces_its_own_folder_not_others(capsys: pytest.CaptureFixture[str], saved: Path,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "page"
    assert _run(capsys, "watch-report", str(saved), "--out", str(out))[0] == 0
    assert _run(capsys, "watch-report", str(saved), "--out", str(out))[0] == 0  # a rerun replaces it
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    code, _, err = _run(capsys, "watch-report", str(saved), "--out", str(other))
    assert code == 2 and err.count("\n") == 1 and "'--out'" in err and (other / "notes.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "page"]  # no temporary folder left


@pytest.mark.parametrize("make, needle", [
    (None, "does not exist"),
    (b"", "is not an initlab watch file: it is empty"),
    (b"\x89PNG\r\n\x1a\n", "not JSON"),
    (b'{"rows": []}', "no \"format\": \"initlab-watch\" marker"),
    (b'{"format": "initlab-watch", "version": 1, "every": 2, "steps": []}', "recorded no step"),
    (b'{"format": "initlab-watch", "version": 7, "every": 2, "steps": []}', "newer initlab"),
])
def test_watch_report_bad_file_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                     make: bytes | None, needle: str) -> None:
    run = tmp_path / "run.json"
    if make is not None:
        run.write_bytes(make)
    code, out, err = _run(capsys, "watch-report", str(run), "--out", str(tmp_path / "page"))
    assert code == 2 and out == "" and err.startswith("initlab: error:") and err.count("\n") == 1, err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "page").exists()


@pytest.mark.parametrize("out, needle", [
    ("", "'--out' option must name a folder"),
    ("/no/such/dir/page", "'--out' option must be inside an existing folder"),
    ("FILE", "'--out' option must name a folder"),
])
def test_watch_report_bad_out_exits_2(capsys: pytest.CaptureFixture[str], saved: Path, tmp_path: Path,
                                      out: str, needle: str) -> None:
    if out == "FILE":
        out = str(tmp_path / "f.txt")
        Path(out).write_text("x")
    code, _, err = _run(capsys, "watch-report", str(saved), "--out", out)
    assert code == 2 and err.count("\n") == 1 and needle in err, err


# -- the report's watch study ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def study():
    from initlab.studies import run

    return run("watch", quick=True, seed=0)


def test_study_names_the_dying_layer_and_its_step(study) -> None:
    bad = study.numbers["runs"][0]
    assert bad["init"] == "normal(std=1)" and bad["lr"] == 0.2
    d = bad["dies"]
    assert d is not None and d["kind"] == "dead" and d["step"] > 0  # it died while training, not at init
    # the named layer is dead (> 10% of its units) at the named step and on most steps after it, and was
    # alive at the step before
    steps = bad["steps"]
    i = steps.index(d["step"])
    dead_text = [v for v in bad["verdicts"] if v["kind"] == "dead" and v["name"] == d["layer"]]
    assert dead_text and dead_text[0]["step"] == d["step"] and d["dead_fraction"] > 0.10
    assert d["n_steps"] >= (len(steps) - i) // 2
    assert f"lose {d['layer']} at step {d['step']}" in study.takeaway
    assert study.takeaway.count(". ") == 0 and study.takeaway.endswith(".")


def test_study_he_at_a_small_lr_has_no_verdict(study) -> None:
    good = study.numbers["runs"][-1]
    assert good["init"] == "he_normal" and good["lr"] == 1e-3
    assert good["verdicts"] == [] and good["dies"] is None
    assert good["max_dead_fraction"] <= 0.10 and good["test_accuracy"] > 0.85
    assert "He at lr 1e-3 stays clean" in study.takeaway


def test_study_update_ratio_tells_the_learning_rates_apart(study) -> None:
    """The first update's ‖ΔW‖/‖W‖: Adam's step is about lr per weight, so ~lr/std relative; the
    lr-0.2 runs move their weights by a large fraction, the lr-1e-3 run by well under 1%."""
    runs = study.numbers["runs"]
    assert runs[0]["first_update_ratio"] > 0.05 and runs[1]["first_update_ratio"] > 0.5
    assert runs[-1]["first_update_ratio"] < 0.01


def test_study_figures_render_legibly(study, tmp_path: Path) -> None:
    from initlab.report import plots

    assert study.headline == "colordim" and [f.kind for f in study.figures] == ["colordim", "curves"]
    for f in study.figures:
        plots.render(f, tmp_path / f"{f.name}.png")  # raises if a font < 8.5 pt or the width is not 9 in
    head = study.figures[0].data["panels"]
    marks = [m for p in head for m in p.get("marks", [])]
    d = study.numbers["runs"][0]["dies"]
    assert {"x": d["step"], "label": f"dead @ {d['step']}"} in marks
