"""The page and the plots in isolation: escaping, number formatting, figure kinds."""

from __future__ import annotations

from pathlib import Path

import pytest

from initlab.report import plots
from initlab.report.page import format_cell, render_page
from initlab.studies import FigureSpec, StudyResult, Table

EVIL = '<img src=x onerror="alert(1)"> & </td>'


def provenance() -> dict[str, object]:
    return {"date": "2026-01-01T00:00:00+00:00", "versions": {"initlab": "0", "numpy": "1", "torch": None},
            "seconds": 1.0, "command": f"initlab report {EVIL}", "git_commit": None, "git_dirty": None,
            "platform": "test"}


def test_every_string_is_escaped() -> None:
    r = StudyResult(
        study="seed001", title=f"title {EVIL}", summary=f"summary {EVIL}", verdict=f"verdict {EVIL}",
        explanation=[f"why {EVIL}"], corrections=[f"wrong {EVIL}"], command=f"cmd {EVIL}",
        tables=[Table("t", f"table {EVIL}", [f"col {EVIL}"], [[f"cell {EVIL}"]], note=f"note {EVIL}")],
        figures=[FigureSpec("f", f"fig {EVIL}", "curves", {}, caption=f"cap {EVIL}")],
        config={"k": EVIL},
    )
    page = render_page([r], provenance=provenance(), figure_files={("seed001", "f"): "seed001_f.png"},
                       figure_errors={}, quick=False, seed=0, full_command="initlab report")
    assert EVIL not in page
    assert "<img src=x" not in page  # the tag only ever appears as escaped text
    assert page.count("&lt;img src=x onerror=") >= 10
    assert "<script" not in page


def test_failed_study_renders_its_error_and_no_figures() -> None:
    r = StudyResult.failed("seed002", "Seed 002", ValueError(f"bad {EVIL}"), command="initlab report --only seed002")
    page = render_page([r], provenance=provenance(), figure_files={}, figure_errors={}, quick=True, seed=0,
                       full_command="initlab report")
    assert "This study failed" in page and "ValueError: bad &lt;img" in page
    assert 'id="quick-banner"' in page and "<img" not in page


def test_format_cell() -> None:
    assert format_cell(0.0036697247706422, ".6f") == "0.003670"
    assert format_cell(1.5e-7, None) == "1.500e-07"
    assert format_cell(12, None) == "12"
    assert format_cell(True, None) == "yes"
    assert format_cell(float("nan"), None) == "nan"
    assert format_cell("x", ".2f") == "x"


@pytest.mark.parametrize("kind", ["histograms", "curves", "decision", "ridges"])
def test_each_plot_kind_writes_a_legible_png(tmp_path: Path, kind: str) -> None:
    data = {
        "histograms": {"rows": [{"label": "a", "panels": [{"title": "t", "edges": [0, 1, 2], "density": [0.5, 0.5]}]}]},
        "curves": {"panels": [{"title": "t", "xlabel": "x", "ylabel": "y", "logy": True,
                               "series": [{"label": "s", "x": [1, 2], "y": [1.0, 0.1], "style": "markers"}]}]},
        "decision": {"panels": [{"title": "t", "x_range": [0, 1], "y_range": [0, 1], "grid": [[0.0, 1.0], [1.0, 0.0]],
                                 "points": [[0.5, 0.5]], "labels": [1]}]},
        "ridges": {"panels": [{"title": "t", "layers": [{"label": "1", "edges": [0, 1, 2], "density": [0.5, 0.5],
                                                       "note": "std 1"}]}]},
    }[kind]
    path = plots.render(FigureSpec("f", "F", kind, data), tmp_path / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    from PIL import Image

    with Image.open(path) as im:
        # the figure is WIDTH_IN wide and no text is smaller than MIN_PT: ≥ 11 CSS px at column width
        assert im.width == round(plots.WIDTH_IN * plots.DPI)
        assert float(im.text["initlab:min_font_pt"]) >= plots.MIN_PT
        assert float(im.text["initlab:min_font_pt"]) / 72 * plots.COLUMN_PX / plots.WIDTH_IN >= 11


def test_an_illegible_figure_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plots, "MIN_PT", 30.0)  # every real figure has smaller text than this
    spec = FigureSpec("f", "F", "curves", {"panels": [{"title": "t", "series": [{"label": "s", "x": [1], "y": [1]}]}]})
    with pytest.raises(ValueError, match="illegible"):
        plots.render(spec, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_page_layout_takeaway_headline_and_fixes_once() -> None:
    figs = [FigureSpec("a", "A", "curves", {}, caption="cap a"), FigureSpec("b", "B", "curves", {}, caption="cap b")]
    rec = "use lecun_normal (σ_w² = 1)"
    rs = [StudyResult("seed001", "One", takeaway="First sentence.", headline="b", figures=figs, fixes={"tanh": rec},
                      tables=[Table("probe", "P", ["case", "verdict"], [["x", "falls"]])]),
          StudyResult("seed003", "Three", takeaway="Second sentence.", fixes={"tanh": rec})]
    page = render_page(rs, provenance=provenance(), figure_files={("seed001", "a"): "a.png", ("seed001", "b"): "b.png"},
                       figure_errors={}, quick=False, seed=0, full_command="initlab report", explore_href="explore/index.html")
    assert page.count("use lecun_normal (σ_w² = 1)") == 1
    sec = page[page.index('<section id="seed001"'):]
    assert sec.index("First sentence.") < sec.index('src="b.png"') < sec.index("<details") < sec.index('src="a.png"')
    assert 'href="explore/index.html"' in page and "cap a" in page and "cap b" in page


def test_unknown_plot_kind() -> None:
    with pytest.raises(ValueError, match="figure kind must be one of"):
        plots.render(FigureSpec("f", "F", "pie", {}), "/nonexistent/f.png")
