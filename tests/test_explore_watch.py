"""The explorer's Training view (``initlab explore --watch RUN``): saved watches of real torch
training runs embedded in the page, their numbers checked against the Watch's own, bad files
refused with one line, and the page driven in headless Chromium (offline, from file://): the
step slider, the layer and run pickers, play, clicking a verdict.

Screenshots at 1400 px and 400 px go to ``$INITLAB_TEST_ARTIFACTS`` or, when that is not set, to
``<pytest's temporary base>/artifacts`` (``explore-watch-1400.png``, ``explore-watch-400.png``,
``explore-watch-grid-1400.png``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _chromium import artifacts_dir, console_errors, driver
from _torch_models import mlp  # noqa: E402

torch = pytest.importorskip("torch")

from initlab.diagnostics import Watch, watch  # noqa: E402
from initlab.report import explore  # noqa: E402

REL = 1e-4  # the page stores 5 significant digits


_mlp = mlp


def _train(std: float | None, lr: float, steps: int, every: int, optimizer: str = "adam") -> Watch:
    """A ReLU MLP trained by Adam (or SGD) on fixed gaussian data (seed 0), watched every ``every`` steps."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((512, 10)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((512, 1)).astype(np.float32))
    model = _mlp(std)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    with watch(model, every=every) as w:
        for s in range(steps):
            i = (s * 64) % 512
            opt.zero_grad()
            loss = ((model(x[i:i + 64]) - y[i:i + 64]) ** 2).mean()
            loss.backward()
            opt.step()
            w.log_loss(loss)
    return w


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from initlab.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=timeout)


def _embedded(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="initlab-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1).replace("<\\/", "</"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Saved torch runs: N(0, 1) weights with Adam at lr 0.2 (a layer dies), He at lr 1e-3 (clean), and
    N(0, 1) with SGD at lr 1e-2 (diverges: inf and NaN statistics)."""
    folder = tmp_path_factory.mktemp("watches")
    _train(1.0, 0.2, 40, 1).save(str(folder / "bad.json"))
    _train(None, 1e-3, 40, 2).save(str(folder / "good.json"))
    _train(1.0, 1e-2, 8, 1, optimizer="sgd").save(str(folder / "diverged.json"))
    return {"folder": folder, **{k: Watch.load(str(folder / f"{k}.json")) for k in ("bad", "good", "diverged")}}


@pytest.fixture(scope="module")
def page(runs: dict[str, Any]) -> dict[str, Any]:
    out = runs["folder"] / "page"
    # "good" without its .json: what 'initlab train --save-watch good' prints and writes
    proc = _cli("explore", "--watch", str(runs["folder"] / "bad.json"), "--watch", str(runs["folder"] / "good"),
                "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    html = (out / "index.html").read_text(encoding="utf-8")
    return {"out": out, "summary": json.loads(proc.stdout), "html": html, "data": _embedded(html)}


def test_the_runs_are_what_the_page_is_about(runs: dict[str, Any]) -> None:
    from initlab.studies.watch import dying

    d = dying(runs["bad"])
    assert d is not None and d.kind == "dead" and d.step > 0  # a layer dies while training, not at init
    assert runs["good"].verdicts == []
    assert "diverged" in [v.kind for v in runs["diverged"].verdicts]


def test_a_diverged_run_is_strict_json_and_named(runs: dict[str, Any], tmp_path: Path) -> None:
    w = runs["diverged"]
    explore.build_explorer(tmp_path / "d", watches=[runs["folder"] / "diverged.json"])
    data = _embedded((tmp_path / "d" / "index.html").read_text(encoding="utf-8"))["watches"][0]
    d = next(v for v in w.verdicts if v.kind == "diverged")
    assert data["verdicts"][data["dying"]]["kind"] == "diverged" and data["verdicts"][data["dying"]]["step"] == d.step
    # non-finite statistics travel as the strings JavaScript's Number() reads, not as invalid JSON
    flat = [x for lay in data["layers"] for x in lay["mean"] + lay["std"]] + data["loss"]
    assert {"NaN", "Infinity"} & set(x for x in flat if isinstance(x, str))
    assert all(x in ("NaN", "Infinity", "-Infinity") or isinstance(x, (int, float)) for x in flat)


def _close(shown: Any, want: Any) -> bool:
    """A number on the page (5 significant digits; non-finite as "NaN"/"Infinity") against the watch's."""
    if want is None:
        return shown is None
    got, want = float(shown), float(want)  # float() reads "NaN" and "Infinity" as JavaScript's Number() does
    if not math.isfinite(want):
        return got == want or (math.isnan(got) and math.isnan(want))
    return abs(got - want) <= REL * abs(want) + 1e-300


def test_embedded_numbers_are_the_watchs(page: dict[str, Any], runs: dict[str, Any]) -> None:
    from initlab.studies.watch import dying

    data = page["data"]
    assert data["meta"]["grid"] is False and data["settings"] == {}  # --watch alone: no grid computed
    assert [w["label"] for w in data["watches"]] == ["bad.json", "good.json"]
    assert page["summary"]["watches"] == 2 and page["summary"]["settings"] == 0 and page["summary"]["thinned"] == []
    for shown, w in zip(data["watches"], (runs["bad"], runs["good"])):
        recorded = [s.step for s in w.steps]
        assert shown["recorded"] == len(recorded) and shown["every"] == w.every
        assert shown["steps"] == recorded and shown["hist_steps"] == recorded  # short runs: every step
        assert [x["name"] for x in shown["layers"]] == w.layer_names
        assert all(_close(a, b.loss) for a, b in zip(shown["loss"], w.steps))
        for lay in shown["layers"]:
            steps, edges, counts = w.histograms(lay["name"])
            assert list(steps) == recorded
            assert len(lay["edges"]) == len(edges) and all(_close(a, b) for a, b in zip(lay["edges"], edges))
            assert lay["counts"] == counts.tolist()  # counts exactly
            for key in explore.WATCH_CURVES:
                s, v = w.series(lay["name"], key)
                if np.all(np.isnan(v)):
                    assert lay[key] is None, (lay["name"], key)
                else:
                    assert list(s) == recorded and all(_close(a, b) for a, b in zip(lay[key], v)), (lay["name"], key)
        # the verdicts over time are Watch.verdicts, as it reports them
        assert [{k: v for k, v in x.items() if k != "short"} for x in shown["verdicts"]] == [v.to_dict() for v in w.verdicts]
        d = dying(w)
        assert shown["dying"] == (None if d is None else w.verdicts.index(d))


def test_page_is_self_contained_and_small(page: dict[str, Any]) -> None:
    html = page["html"]
    size = (page["out"] / "index.html").stat().st_size
    assert size == page["summary"]["bytes"] and size < 400_000  # two 40-step runs of 4 layers
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "<link rel=\"stylesheet\"" not in html
    assert html.count("<script") == 2


def _long_watch(steps: int, layers: int, base: Watch) -> Watch:
    """A ``steps`` × ``layers`` watch made of ``base``'s real records (cycled, renamed), for the size check."""
    from initlab.diagnostics._watch_io import watch_from_data, watch_to_data

    data = watch_to_data(base)
    recs = data["steps"]
    out = []
    for s in range(steps):
        r = json.loads(json.dumps(recs[s % len(recs)]))
        src = r["layers"]
        lays, nz, upd = [], {}, {}
        for j in range(layers):
            lay = json.loads(json.dumps(src[j % len(src)]))
            old, lay["name"], lay["index"] = lay["name"], f"l{j}", j + 1
            lays.append(lay)
            nz[lay["name"]] = r["near_zero"].get(old)
            upd[lay["name"]] = r["update_ratio"].get(old)
        r.update(step=s, layers=lays, near_zero=nz, update_ratio=upd)
        out.append(r)
    data["steps"], data["every"] = out, 1
    return watch_from_data(data)


def test_a_1000_step_10_layer_watch_is_thinned_and_stays_small(runs: dict[str, Any], tmp_path: Path) -> None:
    w = _long_watch(1000, 10, runs["bad"])
    s = explore.build_explorer(tmp_path / "p", watches=[w])
    data = _embedded((tmp_path / "p" / "index.html").read_text(encoding="utf-8"))["watches"][0]
    assert s.bytes < 1_500_000, s.bytes
    assert s.thinned == ("watch 1",)
    hs = data["hist_steps"]
    assert len(hs) == explore.WATCH_HIST_STEPS and data["steps"] == list(range(1000))  # curves: every step
    assert hs[0] == 0 and hs[-1] == 999 and {v.step for v in w.verdicts} <= set(hs)
    gaps = np.diff(hs)
    assert gaps.max() <= 2 * math.ceil(1000 / explore.WATCH_HIST_STEPS)  # evenly spread
    lay = data["layers"][3]
    _, _, counts = w.histograms(lay["name"])
    assert lay["counts"] == [counts[k].tolist() for k in hs]


def test_thin_steps_keeps_the_problems_and_is_bounded() -> None:
    steps = list(range(0, 5000, 5))
    got = explore.thin_steps(steps, 50, keep=[35, 4995, 12])  # 12 was not recorded
    assert len(got) == 50 and got == sorted(set(got)) and {0, 35, 4995} <= set(got) and 12 not in got
    assert explore.thin_steps([3, 4], 10) == [3, 4]
    many = explore.thin_steps(range(1000), 10, keep=range(1, 999, 2))  # more problems than room
    assert len(many) == 10 and many[0] == 0 and many[-1] == 999 and all(k % 2 == 1 for k in many[1:-1])


def test_python_api(runs: dict[str, Any], tmp_path: Path) -> None:
    s = explore.build_explorer(tmp_path / "a", watches=[runs["folder"] / "bad.json", runs["bad"]])
    data = _embedded((tmp_path / "a" / "index.html").read_text(encoding="utf-8"))
    assert [w["label"] for w in data["watches"]] == ["bad.json", "watch 2"] and s.settings == 0
    # the same file twice: told apart by its path, then by its position
    s = explore.build_explorer(tmp_path / "b", watches=[runs["folder"] / "bad.json"] * 2)
    data = _embedded((tmp_path / "b" / "index.html").read_text(encoding="utf-8"))
    labels = [w["label"] for w in data["watches"]]
    assert len(set(labels)) == 2
    with pytest.raises(ValueError, match="'grid' argument is False and no watch"):
        explore.build_explorer(tmp_path / "c", grid=False)
    with pytest.raises(TypeError, match="'watches' argument"):
        explore.build_explorer(tmp_path / "c", watches=str(runs["folder"] / "bad.json"))  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="'watches' argument: the watch file .*nope.json' does not exist"):
        explore.build_explorer(tmp_path / "c", watches=[tmp_path / "nope.json"])
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("make, needle", [
    (None, "does not exist"),
    (b"", "is not an initlab watch file: it is empty"),
    (b"\x89PNG\r\n\x1a\n", "not JSON"),
    (b'{"rows": []}', "no \"format\": \"initlab-watch\" marker"),
    (b'{"format": "initlab-watch", "version": 7, "every": 2, "steps": []}', "newer initlab"),
    (b'{"format": "initlab-watch", "version": 1, "every": 2, "steps": [{"step": 0}]}', "damaged"),
    (b'{"format": "initlab-watch", "version": 1, "every": 2, "steps": []}', "recorded no step"),
])
def test_bad_watch_file_exits_2_with_one_line(tmp_path: Path, make: bytes | None, needle: str) -> None:
    run = tmp_path / "run.json"
    if make is not None:
        run.write_bytes(make)
    proc = _cli("explore", "--watch", str(run), "--out", str(tmp_path / "page"), timeout=120)
    err = proc.stderr
    assert proc.returncode == 2 and proc.stdout == "" and err.startswith("initlab: error:") and err.count("\n") == 1, err
    assert "'--watch'" in err and str(run) in err and needle in err and "Traceback" not in err
    assert not (tmp_path / "page").exists()


@pytest.mark.parametrize("args, needle", [
    (["--quick"], "'--quick' option sets up the grid"),
    (["--seed", "3"], "'--seed' option sets up the grid"),
    (["--with-grid", "NOWATCH"], "'--with-grid' option adds the grid to a '--watch' page"),
])
def test_grid_options_without_the_grid_exit_2(runs: dict[str, Any], tmp_path: Path, args: list[str], needle: str) -> None:
    watch_args = [] if "NOWATCH" in args else ["--watch", str(runs["folder"] / "bad.json")]
    proc = _cli("explore", *watch_args, *[a for a in args if a != "NOWATCH"], "--out", str(tmp_path / "p"), timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr


# -- the page in a browser -------------------------------------------------------------------------

def _state(drv: Any) -> dict[str, Any]:
    return drv.execute_script("""
      var q = function (s) { return Array.from(document.querySelectorAll(s)); };
      var v = function (id) { return document.getElementById(id).getAttribute('data-value'); };
      return {
        key: document.body.getAttribute('data-train-key'),
        run: document.getElementById('t-run').value, layer: document.getElementById('t-layer').value,
        slider: document.getElementById('t-step').value,
        facts: {step: v('t-f-step'), loss: v('t-f-loss'), mean: v('t-f-mean'), std: v('t-f-std'),
                near_zero: v('t-f-near_zero'), dead: v('t-f-dead'), update_ratio: v('t-f-update_ratio')},
        counts: document.getElementById('t-hist').getAttribute('data-counts'),
        hist_step: document.getElementById('t-hist').getAttribute('data-step'),
        curve_steps: ['t-loss', 't-mean', 't-std', 't-frac', 't-update', 't-colordim'].map(
            id => document.getElementById(id).getAttribute('data-step')),
        headline: document.getElementById('t-headline').textContent,
        verdicts: q('#t-verdicts li').map(e => [e.textContent, e.className]),
        figs: ['t-hist', 't-colordim', 't-std'].map(id => document.getElementById(id).innerHTML),
        visible: {train: !document.getElementById('view-train').hidden, grid: !document.getElementById('view-grid').hidden,
                  nav: !document.getElementById('views').hidden},
        thin: document.getElementById('t-thin').hidden,
      };""")


def _check_facts(state: dict[str, Any], w: Watch) -> None:
    """The facts shown for (layer, step) are the watch's row for them."""
    _, name, step = state["key"].split("|")
    step_i = int(step)
    assert state["facts"]["step"] == step and state["hist_step"] == step
    assert state["curve_steps"] == [step] * 6
    row = next(r for r in w.rows() if r["name"] == name and r["step"] == step_i)
    for k, shown in state["facts"].items():
        if k == "step":
            continue
        want = row[k]
        assert (shown == "" and want is None) or _close(shown, want), (k, shown, want)
    _, _, counts = w.histograms(name)
    recorded = [s.step for s in w.steps]
    assert state["counts"] == ",".join(str(int(c)) for c in counts[recorded.index(step_i)])


@pytest.mark.browser
def test_training_view_in_the_browser(page: dict[str, Any], runs: dict[str, Any],
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    from initlab.studies.watch import dying

    arts = artifacts_dir(tmp_path_factory)
    bad, good = runs["bad"], runs["good"]
    d = dying(bad)
    with driver(1400, 2200, offline=True) as drv:
        drv.get((page["out"] / "index.html").as_uri())
        assert "watching training" in drv.title
        resources = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
        assert [r for r in resources if not r.startswith(("file:", "data:"))] == []
        first = _state(drv)
        assert first["visible"] == {"train": True, "grid": False, "nav": False} and first["thin"] is True
        # it opens on the problem: the layer that died, at the step it died, named with its step and its fix
        assert first["key"] == f"0|{d.name}|{d.step}"
        assert f"is dead from step {d.step}" in first["headline"] and d.recommendation in first["headline"]
        _check_facts(first, bad)
        texts = [t for t, _ in first["verdicts"]]
        assert len(texts) == len(bad.verdicts)
        for v, (t, cls) in zip(bad.verdicts, first["verdicts"]):
            assert t.startswith(f"step {v.step} · ") and v.message in t and v.recommendation in t
            assert ("later" in cls) == (v.step > d.step)  # not yet seen at the chosen step
        drv.save_screenshot(str(arts / "explore-watch-1400.png"))

        # the step slider (keyboard, as a user moves it): the histogram, the facts and every marker follow
        slider = drv.find_element("id", "t-step")
        slider.send_keys(Keys.ARROW_RIGHT)
        slider.send_keys(Keys.ARROW_RIGHT)
        moved = _state(drv)
        assert moved["key"] == f"0|{d.name}|{d.step + 2}" and moved["counts"] != first["counts"]
        assert moved["facts"] != first["facts"]
        _check_facts(moved, bad)
        slider.send_keys(Keys.HOME)
        at0 = _state(drv)
        assert at0["key"] == f"0|{d.name}|0"
        assert all("later" in cls for t, cls in at0["verdicts"] if not t.startswith("step 0 "))
        _check_facts(at0, bad)

        # another layer
        other = next(n for n in bad.layer_names if n != d.name)
        Select(drv.find_element("id", "t-layer")).select_by_index(bad.layer_names.index(other))
        picked = _state(drv)
        assert picked["key"] == f"0|{other}|0" and picked["figs"][0] != at0["figs"][0] and picked["figs"][1] != at0["figs"][1]
        _check_facts(picked, bad)

        # play runs through the steps, and stops on a second press
        drv.find_element("id", "t-play").click()
        time.sleep(1.0)
        drv.find_element("id", "t-play").click()
        played = _state(drv)
        assert int(played["slider"]) > 0 and played["key"].startswith(f"0|{other}|")
        _check_facts(played, bad)

        # clicking a verdict shows its layer at its step
        last = bad.verdicts[-1]
        drv.find_elements("css selector", "#t-verdicts li")[-1].click()
        assert _state(drv)["key"] == f"0|{last.name}|{last.step}"

        # the other run: clean, every 2 steps
        Select(drv.find_element("id", "t-run")).select_by_index(1)
        clean = _state(drv)
        assert clean["key"] == f"1|{good.layer_names[0]}|0" and clean["headline"].startswith("No problem at any of the 20")
        _check_facts(clean, good)
        slider.send_keys(Keys.END)
        end = _state(drv)
        assert end["key"] == f"1|{good.layer_names[0]}|38"
        _check_facts(end, good)
        assert console_errors(drv) == []

        # a diverged run: named with its step, its non-finite steps drawn without a script error
        div = runs["diverged"]
        explore.build_explorer(page["out"].parent / "div", watches=[runs["folder"] / "diverged.json"])
        drv.get((page["out"].parent / "div" / "index.html").as_uri())
        d2 = next(v for v in div.verdicts if v.kind == "diverged")
        s = _state(drv)
        assert s["headline"].startswith(f"The run diverged at step {d2.step}.") and s["key"] == f"0|{d2.name}|{d2.step}"
        drv.find_element("id", "t-step").send_keys(Keys.END)
        s = _state(drv)
        assert s["key"].endswith(f"|{div.steps[-1].step}") and s["facts"]["loss"] in ("NaN", "Infinity")
        _check_facts(s, div)
        assert console_errors(drv) == []

    with driver(400, 1600, offline=True) as drv:
        drv.get((page["out"] / "index.html").as_uri())
        assert drv.execute_script("return document.documentElement.scrollWidth;") <= \
            drv.execute_script("return window.innerWidth;")  # nothing sticks out sideways on a phone
        # the colorful-dimension plot is drawn narrow, so its labels stay legible
        assert drv.execute_script("return document.getElementById('t-colordim').getAttribute('viewBox');") == "0 0 440 290"
        drv.save_screenshot(str(arts / "explore-watch-400.png"))
        assert console_errors(drv) == []
    for name in ("explore-watch-1400.png", "explore-watch-400.png"):
        assert (arts / name).stat().st_size > 10_000


@pytest.mark.browser
def test_watch_with_the_grid(runs: dict[str, Any], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """--with-grid: both views on one page, the training view first, the grid one click away."""
    out = tmp_path / "both"
    proc = _cli("explore", "--watch", str(runs["folder"] / "bad.json"), "--with-grid", "--quick", "--jobs", "1",
                "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["watches"] == 1 and summary["settings"] > 0
    with driver(1400, 1600, offline=True) as drv:
        drv.get((out / "index.html").as_uri())
        s = _state(drv)
        assert s["visible"] == {"train": True, "grid": False, "nav": True}
        _check_facts(s, runs["bad"])
        drv.find_element("id", "view-btn-grid").click()
        assert _state(drv)["visible"] == {"train": False, "grid": True, "nav": True}
        assert drv.execute_script("return document.body.getAttribute('data-key');") == "tanh|xavier|10|100|0"
        assert len(drv.find_elements("css selector", "#hists .hist")) == 10
        drv.save_screenshot(str(artifacts_dir(tmp_path_factory) / "explore-watch-grid-1400.png"))
        drv.find_element("id", "view-btn-train").click()
        assert _state(drv)["visible"]["train"] is True
        assert console_errors(drv) == []
