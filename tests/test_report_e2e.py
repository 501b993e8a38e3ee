"""End to end: ``initlab report --quick`` into a temporary folder, then the page, the JSON and the
figures checked against each other, and the page opened in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from initlab.report.page import format_cell

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)


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
    assert [x["study"] for x in s["studies"]] == ["seed000", "seed001", "seed002", "seed003"]
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


@pytest.mark.browser
def test_page_renders_in_headless_chromium(report: dict[str, Any]) -> None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Chromium or chromedriver is not installed (.ci/run installs the Debian packages chromium "
                    "and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,2000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.get((report["out"] / "index.html").as_uri())
        assert "initlab report" in driver.title
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
        assert len(images) == len(list(report["out"].glob("*.png")))
        broken = [src for src, complete, width in images if not complete or width <= 0]
        assert broken == []
        errors = [e for e in driver.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
        assert errors == []
        driver.save_screenshot(str(report["out"].parent / "screenshot.png"))
    finally:
        driver.quit()
    assert (report["out"].parent / "screenshot.png").stat().st_size > 10_000
