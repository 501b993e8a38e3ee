"""Robustness of the report: atomic replacement, interrupted runs, a failing study, bad input."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from initlab.report import build
from initlab.studies import StudyResult, Table

# the package attribute initlab.studies.seed001 is the study function; its module is here
seed001_module = importlib.import_module("initlab.studies.seed001")
seed003_module = importlib.import_module("initlab.studies.seed003")


def fake_seed001(config: Any = None) -> StudyResult:
    """A fast stand-in for seed 001 (the real one trains for seconds)."""
    return StudyResult(study="seed001", title="fake seed 001", summary="fake", verdict="fake",
                       tables=[Table("t", "T", ["a"], [[1.5]])], config={"seed": 0})


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.fixture()
def previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A previous report (seed 001 faked to keep it fast)."""
    monkeypatch.setattr(seed001_module, "seed001", fake_seed001)
    out = tmp_path / "rep"
    build(out, quick=True, only="seed001", progress=False, jobs=1, command="initlab report (test)")
    return out


def test_interrupt_mid_run_keeps_previous_report(previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(previous)
    calls: list[str] = []

    def interrupted(config: Any = None) -> StudyResult:
        calls.append("seed003")
        raise KeyboardInterrupt

    monkeypatch.setattr(seed003_module, "seed003", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(previous, quick=True, only="seed001,seed003", progress=False, jobs=1)
    assert calls == ["seed003"]  # seed 001 had run: the interrupt came mid-run
    assert snapshot(previous) == before
    assert leftovers(previous.parent, previous.name) == []


def test_failing_study_is_shown_failed_while_others_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(config: Any = None) -> StudyResult:
        raise RuntimeError("boom <script>alert(1)</script> & more")

    monkeypatch.setattr(seed001_module, "seed001", boom)
    out = tmp_path / "rep"
    summary = build(out, quick=True, only="seed001,seed003", progress=False, jobs=1)
    assert summary.failed == ["seed001"]
    data = json.loads((out / "results.json").read_text())
    assert data["studies"]["seed001"]["status"] == "failed"
    assert data["studies"]["seed001"]["error"] == "RuntimeError: boom <script>alert(1)</script> & more"
    assert data["studies"]["seed003"]["status"] == "ok"
    page = (out / "index.html").read_text()
    assert "<script>" not in page  # escaped
    assert "boom &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert 'src="seed003_mean_std.png"' in page and (out / "seed003_mean_std.png").exists()


def test_rerun_replaces_the_report(previous: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = json.loads((previous / "results.json").read_text())
    monkeypatch.setattr(seed001_module, "seed001", fake_seed001)
    build(previous, quick=True, seed=5, only="seed001", progress=False, jobs=1)
    new = json.loads((previous / "results.json").read_text())
    assert old["provenance"]["seed"] == 0 and new["provenance"]["seed"] == 5
    assert leftovers(previous.parent, previous.name) == []


def test_refuses_to_replace_a_folder_that_is_not_a_report(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="will not replace"):
        build(out, quick=True, only="seed003", progress=False, jobs=1)
    assert (out / "precious.txt").read_text() == "keep me"
    assert leftovers(tmp_path, "mine") == []


def test_sigterm_mid_run_keeps_previous_report(previous: Path) -> None:
    before = snapshot(previous)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from initlab.cli import main; main()", "report", "--quick", "--only", "seed002",
         "--out", str(previous), "--jobs", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not leftovers(previous.parent, previous.name) and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until the run has made its temporary folder
    assert leftovers(previous.parent, previous.name), "the run never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert snapshot(previous) == before
    assert leftovers(previous.parent, previous.name) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--only", "seed999"], "'--only' option must be one of"),
        (["--seed", "-1"], "'--seed' option"),
        (["--mnist", "/nonexistent/folder"], "'--mnist' option"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from initlab.cli import main; main()", "report", "--out", str(tmp_path / "r"), *args],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initlab: error:") and needle in lines[0], proc.stderr
    assert not (tmp_path / "r").exists()


def test_parse_only_accepts_short_forms() -> None:
    from initlab.report import parse_only

    assert parse_only("3, seed000,1") == ["seed000", "seed001", "seed003"]
    with pytest.raises(ValueError, match="seed000"):
        parse_only("")
    with pytest.raises(TypeError):
        parse_only(3)  # type: ignore[arg-type]


def test_bad_jobs_and_seed_in_python() -> None:
    with pytest.raises(ValueError, match="'jobs'"):
        build(os.devnull + "-never", only="seed003", jobs=0, progress=False)
    with pytest.raises(TypeError, match="'seed'"):
        build(os.devnull + "-never", only="seed003", seed=1.5, progress=False)  # type: ignore[arg-type]
