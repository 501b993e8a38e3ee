"""The explorer page (``initlab explore``): built by the CLI, opened from file:// with the network
off in headless Chromium, driven through its controls, and its numbers read back from the page and
recomputed with initlab's public API (``initlab.probe``, ``initlab.theory``).

Screenshots at 1400 px and 400 px go to ``$INITLAB_TEST_ARTIFACTS`` or, when that is not set, to
``<pytest's temporary base>/artifacts`` (``explore-1400.png``, ``explore-400.png``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _chromium import artifacts_dir, console_errors, driver

MAX_BYTES = 5_000_000


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("explore") / "ex"
    proc = subprocess.run([sys.executable, "-c", "from initlab.cli import main; main()", "explore", "--out", str(out),
                           "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    html = (out / "index.html").read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="initlab-data">(.*?)</script>', html, re.S)
    assert m is not None
    return {"out": out, "summary": summary, "html": html, "data": json.loads(m.group(1).replace("<\\/", "</"))}


def test_page_is_self_contained_and_small(page: dict[str, Any]) -> None:
    html = page["html"]
    size = (page["out"] / "index.html").stat().st_size
    assert size == page["summary"]["bytes"] and size <= MAX_BYTES
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "<link rel=\"stylesheet\"" not in html
    assert html.count("<script") == 2  # the embedded data and the inline script, nothing loaded
    assert "MIT license" in html  # the page's own JS/CSS says under which license it ships


def test_grid_is_complete(page: dict[str, Any]) -> None:
    from initlab.report import explore

    meta, settings = page["data"]["meta"], page["data"]["settings"]
    want = {explore.setting_key(a, i, d, w, s) for a in meta["activations"] for i in [x["key"] for x in meta["inits"]]
            for d in meta["depths"] for w in meta["widths"] for s in meta["sigma_b2"]}
    assert set(settings) == want
    assert meta["depths"] == list(explore.GRID["depth"]) and meta["quick"] is False
    assert page["summary"]["settings"] == len(want)
    for s in settings.values():
        assert len(s["std"]) == s["depth"] == len(s["hist"]["counts"])


def _read(drv: Any) -> dict[str, Any]:
    """The numbers the page shows for its current setting, read from the DOM."""
    return drv.execute_script("""
      var q = function (sel) { return Array.from(document.querySelectorAll(sel)); };
      var code = document.getElementById('how-code');
      return {
        key: document.body.getAttribute('data-key'),
        seeds: {net: code.getAttribute('data-net-seed'), x: code.getAttribute('data-x-seed'),
                probe: code.getAttribute('data-probe-seed'), spec: code.getAttribute('data-spec'),
                bias: code.getAttribute('data-bias-spec')},
        std: q('#layer-table td.c-std').map(e => [e.getAttribute('data-value'), e.textContent]),
        theory: q('#layer-table td.c-theory').map(e => [e.getAttribute('data-value'), e.textContent]),
        grad: q('#layer-table td.c-grad').map(e => [e.getAttribute('data-value'), e.textContent]),
        tgrad: q('#layer-table td.c-tgrad').map(e => [e.getAttribute('data-value'), e.textContent]),
        sw2: document.getElementById('f-sw2').getAttribute('data-value'),
        chi1: document.getElementById('f-chi1').getAttribute('data-value'),
        phase: document.getElementById('f-phase').textContent,
        verdicts: q('#verdicts li').map(e => e.textContent),
        figs: ['fig-std', 'fig-grad', 'fig-phase', 'hists'].map(id => document.getElementById(id).innerHTML),
        hists: q('#hists .hist').length,
      };""")


def _close(shown: str, want: float | None, rel: float = 1e-4) -> bool:
    """A stored value (5 significant digits) against the recomputed one."""
    if want is None:
        return shown == ""
    got = float(shown)
    if math.isnan(want):
        return math.isnan(got)
    if not math.isfinite(want):
        return got == want
    return abs(got - want) <= rel * abs(want) + 1e-300


def _recompute(act: str, depth: int, width: int, sb2: float, seeds: dict[str, str]) -> tuple[Any, Any, float]:
    from initlab import probe, theory
    from initlab.data import gaussian
    from initlab.nn import Network, predict_stack

    x = gaussian(64, width, rng=int(seeds["x"]))
    with np.errstate(all="ignore"):
        net = Network([width] * (depth + 1), activation=act, output=act, init=seeds["spec"], bias_init=seeds["bias"],
                      rng=int(seeds["net"]))
        res = probe(net, x, theory=True, rng=int(seeds["probe"]), bins=30)
    pred = predict_stack([width, width], act, seeds["spec"])
    sw2 = float(pred.layers[0].sigma_w2)
    return res, theory.point(act, sw2, sb2), sw2


def _select(drv: Any, sel_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element("id", sel_id)).select_by_value(value)


@pytest.mark.browser
def test_explorer_offline_controls_and_numbers(page: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    arts = artifacts_dir(tmp_path_factory)
    with driver(1400, 2200, offline=True) as drv:
        drv.get((page["out"] / "index.html").as_uri())
        assert "initlab explorer" in drv.title
        first = _read(drv)
        assert first["key"] == "tanh|xavier|10|100|0" and first["hists"] == 10
        # nothing but the file itself was loaded
        resources = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
        assert [r for r in resources if not r.startswith(("file:", "data:"))] == []
        drv.save_screenshot(str(arts / "explore-1400.png"))

        seen = [first]
        for sel_id, value in (("sel-init", "std1"), ("sel-act", "relu"), ("sel-depth", "30"), ("sel-width", "300"),
                              ("sel-sb2", "0.05")):
            _select(drv, sel_id, value)
            now = _read(drv)
            assert now["key"] != seen[-1]["key"]
            # the figures are redrawn with different content (the phase diagram's point does not move with depth)
            changed = [a != b for a, b in zip(now["figs"], seen[-1]["figs"])]
            assert changed == ([True, True, False, True] if sel_id == "sel-depth" else [True] * 4), sel_id
            seen.append(now)
        assert seen[-1]["key"] == "relu|std1|30|300|0.05" and seen[-1]["hists"] == 30

        # the numbers on the page are initlab's for that setting
        for state, (act, depth, width, sb2) in ((seen[0], ("tanh", 10, 100, 0.0)), (seen[-1], ("relu", 30, 300, 0.05))):
            res, pt, sw2 = _recompute(act, depth, width, sb2, state["seeds"])
            assert len(state["std"]) == depth
            for i, st in enumerate(res.layers):
                assert _close(state["std"][i][0], st.std), (act, i, state["std"][i], st.std)
                assert _close(state["theory"][i][0], st.theory_std), (act, i)
                assert _close(state["grad"][i][0], st.grad_rms), (act, i)
                assert _close(state["tgrad"][i][0], st.theory_grad_std), (act, i)
            assert _close(state["sw2"], sw2) and _close(state["chi1"], pt.chi1)
            assert state["phase"] == pt.phase
            shown = " ".join(state["verdicts"])
            for v in res.verdicts:
                assert v.message in shown
            if not res.verdicts:
                assert shown.startswith("no problem found")

        # the fix button applies the probe's recommendation for the activation
        drv.find_element("id", "btn-fix").click()
        fixed = _read(drv)
        assert fixed["key"] == "relu|fix|30|300|0.05" and fixed["seeds"]["spec"] == "kaiming_normal"
        assert console_errors(drv) == []

    with driver(400, 1600, offline=True) as drv:
        drv.get((page["out"] / "index.html").as_uri())
        width = drv.execute_script("return document.documentElement.scrollWidth;")
        inner = drv.execute_script("return window.innerWidth;")
        assert width <= inner  # nothing sticks out sideways on a phone
        drv.save_screenshot(str(arts / "explore-400.png"))
        assert console_errors(drv) == []
    for name in ("explore-1400.png", "explore-400.png"):
        assert (arts / name).stat().st_size > 10_000


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    proc = subprocess.run([sys.executable, "-c", "from initlab.cli import main; main()", "explore", "--out",
                           str(tmp_path / "f")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "'--out'" in proc.stderr and "Traceback" not in proc.stderr
