"""End to end: ``initlab report --quick`` into a temporary folder, then the page, the JSON and the
figures checked against each other, and the page opened in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from initlab.report.page import format_cell
from _chromium import artifacts_dir, console_errors, driver

@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("e2e") / "report"
    proc = subprocess.run(
        [sys.executable, "-c", "from initlab.cli import main; main()", "report", "--quick", "--seed", "0",
         "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return {
        "out": out,
        "stdout": json.loads(proc.stdout),
        "html": (out / "index.html").read_text(encoding="utf-8"),
        "json": json.loads((out / "results.json").read_text(encoding="utf-8")),
    }


def test_cli_json_summary(report: dict[str, Any]) -> None:
    s = report["stdout"]
    assert [x["study"] for x in s["studies"]] == ["seed000", "seed001", "seed002", "seed003", "trainability",
                                                      "cnn", "watch"]
    assert all(x["status"] == "ok" for x in s["studies"]) and s["failed"] == []
    assert s["quick"] is True and Path(s["index"]) == report["out"] / "index.html"


def test_every_figure_exists_is_png_and_is_on_the_page(report: dict[str, Any]) -> None:
    out, page, data = report["out"], report["html"], report["json"]
    n = 0
    for name, study in data["studies"].items():
        assert study["status"] == "ok", (name, study["error"])
        assert study["figures"], name
        for fig in study["figures"]:
            fname = study["figure_files"][fig["name"]]
            assert fname == f"{name}_{fig['name']}.png"
            raw = (out / fname).read_bytes()
            assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 5000
            assert f'src="{fname}"' in page
            n += 1
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == n  # nothing extra, nothing missing
    assert sorted(re.findall(r'<img src="([^"]+)"', page)) == pngs


def test_every_table_cell_in_the_json_is_on_the_page(report: dict[str, Any]) -> None:
    page, data = report["html"], report["json"]
    for name, study in data["studies"].items():
        section = page[page.index(f'<section id="{name}"'):]
        section = section[: section.index("</section>")]
        for table in study["tables"]:
            formats = (table["formats"] or [None] * len(table["columns"]))
            for row in table["rows"]:
                for value, spec in zip(row, formats):
                    cell = str(escape(format_cell(value, spec)))
                    assert f">{cell}</td>" in section, (name, table["name"], value, cell)


def test_provenance(report: dict[str, Any]) -> None:
    prov = report["json"]["provenance"]
    assert prov["tool"] == "initlab-report"
    assert prov["command"].startswith("initlab report --quick")
    assert prov["seed"] == 0 and prov["quick"] is True
    assert prov["versions"]["initlab"] and prov["versions"]["numpy"]
    assert "torch" in prov["versions"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", prov["date"])
    assert "git_commit" in prov and "git_dirty" in prov  # None outside a git checkout
    for name, study in report["json"]["studies"].items():
        assert study["config"]["seed"] == 0 and study["config"]["quick"] is True
        assert study["command"] in report["html"]


def test_page_is_self_contained_and_labelled_quick(report: dict[str, Any]) -> None:
    page = report["html"]
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "@import" not in page and "url(" not in page
    assert 'id="quick-banner"' in page
    assert page.index('id="summary"') < page.index('id="seed000"')
    for study in report["json"]["studies"].values():
        for corr in study["corrections"]:
            assert str(escape(corr)) in page


def test_no_temporary_folders_left(report: dict[str, Any]) -> None:
    parent = report["out"].parent
    assert sorted(p.name for p in parent.iterdir()) == ["report"]


class _Prose(HTMLParser):
    """The page's prose: every text outside tables, code, the provenance and the head."""

    SKIP = ("table", "pre", "code", "script", "style", "title")

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.chunks: list[str] = []
        self.captions: list[str] = []
        self._cap: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.depth += 1
        if tag == "figcaption":
            self._cap = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.depth -= 1
        if tag == "figcaption" and self._cap is not None:
            self.captions.append(" ".join("".join(self._cap).split()))
            self._cap = None

    def handle_data(self, data: str) -> None:
        if self.depth == 0:
            self.chunks.append(data)
            if self._cap is not None:
                self._cap.append(data)


def prose(html: str) -> _Prose:
    p = _Prose()
    p.feed(html)
    return p


def test_prose_is_short_and_says_nothing_twice(report: dict[str, Any]) -> None:
    p = prose(report["html"])
    words = " ".join(p.chunks).split()
    assert len(words) < 3000, len(words)
    assert len(p.captions) == len(set(p.captions))  # each caption once
    # no sentence of more than six words appears twice anywhere in the prose
    sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", " ".join(p.chunks))]
    long = [s for s in sentences if len(s.split()) > 6]
    takeaways = {" ".join(st["takeaway"].split()) for st in report["json"]["studies"].values()}
    # the takeaways are the only sentences said twice: in the summary at the top and opening their section
    assert {s for s in set(long) if long.count(s) > 1} <= takeaways
    joined = " ".join(" ".join(p.chunks).split())
    assert all(joined.count(t) == 2 for t in takeaways)


def test_each_recommendation_is_stated_once(report: dict[str, Any]) -> None:
    page = report["html"]
    recs = {rec for study in report["json"]["studies"].values() for rec in study["fixes"].values()}
    assert recs  # the probe recommends something somewhere (zeros, N(0, 1), ...)
    for rec in recs:
        assert page.count(str(escape(rec))) == 1, rec
    # and no table cell repeats a recommendation: the findings are shown without it
    for study in report["json"]["studies"].values():
        probe = next((t for t in study["tables"] if t["name"] == "probe"), None)
        if probe is not None:  # the seed studies; the trainability study probes nothing
            assert all("; use " not in str(row[-1]) for row in probe["rows"])


def test_every_study_opens_with_its_takeaway_and_headline(report: dict[str, Any]) -> None:
    page = report["html"]
    for name, study in report["json"]["studies"].items():
        take = str(escape(study["takeaway"]))
        assert study["takeaway"].count(". ") == 0 and study["takeaway"].endswith(".")  # one sentence
        section = page[page.index(f'<section id="{name}"'):]
        section = section[: section.index("</section>")]
        first_p = re.search(r"<p[^>]*>(.*?)</p>", section, re.S)
        assert first_p is not None and first_p.group(1) == take
        head = study["figure_files"][study["headline"]]
        # the headline figure comes right after the takeaway, outside any collapsible section
        after = section[section.index(take):]
        assert after.index(f'src="{head}"') < after.index("<details")
        assert take in page[page.index('id="summary"'):page.index('id="seed000"')]


def test_explorer_is_written_beside_the_report_and_linked(report: dict[str, Any]) -> None:
    page = report["html"]
    assert 'href="explore/index.html"' in page
    html = (report["out"] / "explore" / "index.html").read_text(encoding="utf-8")
    assert '"quick":true' in html  # the quick report writes the quick grid, and says so


def _figure_checks(drv: Any) -> list[dict[str, Any]]:
    """Per image: its rendered CSS width, the column's width, and its natural size."""
    return drv.execute_script("""
      document.querySelectorAll('details').forEach(d => d.open = true);
      var col = document.querySelector('main');
      var cs = getComputedStyle(col);
      var colw = col.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      return Array.from(document.images).map(i => ({src: i.getAttribute('src'), css: i.getBoundingClientRect().width,
        col: colw, nat: i.naturalWidth, ok: i.complete}));""")


@pytest.mark.browser
def test_page_renders_in_headless_chromium(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    from PIL import Image

    from initlab.report import plots

    arts = artifacts_dir(tmp_path_factory)
    with driver(1400, 2400) as drv:
        drv.get((report["out"] / "index.html").as_uri())
        assert "initlab report" in drv.title
        figs = _figure_checks(drv)
        assert len(figs) == len(list(report["out"].glob("*.png")))
        for f in figs:
            assert f["ok"] and f["nat"] > 0, f
            # at column width, never narrower
            assert f["css"] >= f["col"] - 1 and f["col"] >= plots.COLUMN_PX - 1, f
            with Image.open(report["out"] / f["src"]) as im:
                width_in = float(im.text["initlab:width_in"])
                min_pt = float(im.text["initlab:min_font_pt"])
                dpi = im.info["dpi"][0]
                assert abs(im.width / dpi - width_in) < 0.02
            # a font of min_pt points drawn on a width_in-inch figure shown f["css"] pixels wide
            assert min_pt / 72 * f["css"] / width_in >= 11, (f, min_pt)
        drv.execute_script("window.scrollTo(0, 0);")
        drv.save_screenshot(str(arts / "report-1400.png"))
        assert console_errors(drv) == []
    with driver(400, 1600) as drv:
        drv.get((report["out"] / "index.html").as_uri())
        assert drv.execute_script("return document.documentElement.scrollWidth;") <= drv.execute_script(
            "return window.innerWidth;")
        drv.save_screenshot(str(arts / "report-400.png"))
        assert console_errors(drv) == []
    assert (arts / "report-1400.png").stat().st_size > 10_000
