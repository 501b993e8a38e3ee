"""What every study shares: a probe verdict table, and the page shows a figure that fails to draw."""

from __future__ import annotations

from pathlib import Path

import pytest

from initlab import studies


@pytest.mark.parametrize("name", [n for n in studies.names() if n.startswith("seed")])
def test_every_seed_study_has_a_probe_verdict_table(name: str) -> None:
    small = {"seed000": {"n_inputs": 60}, "seed001": {"epochs": 3, "grid": 10},
             "seed002": {"iterations": 3, "mnist1d_samples": 200, "n_inputs": 50},
             "seed003": {}}[name]
    r = studies.run(name, quick=True, seed=0, **small)
    assert r.ok, r.error
    t = r.table("probe")
    assert "verdict" in t.columns[-1] and t.rows
    assert all(isinstance(row[-1], str) and row[-1] for row in t.rows)


def test_a_figure_that_fails_to_draw_is_shown_and_the_page_is_written(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from initlab.report import build, plots

    def boom(spec: object) -> object:
        raise RuntimeError("drawing exploded")

    monkeypatch.setitem(plots.KINDS, "ridges", boom)
    out = tmp_path / "rep"
    s = build(out, quick=True, only="seed003", progress=False, jobs=1, command="test")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert s.results[0].ok
    assert "This figure could not be drawn: RuntimeError: drawing exploded" in html
    assert (out / "seed003_mean_std.png").exists()  # the other figure is drawn
    assert not (out / "seed003_histograms.png").exists()
