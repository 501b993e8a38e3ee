"""The ``initlab`` command as a user meets it: version, help, one-line errors, fast start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from initlab import __version__
from initlab.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from initlab.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"initlab {__version__}"


def test_unknown_option_is_one_line_exit_2() -> None:
    r = run_cli("--no-such-option")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("initlab: error:") and "--no-such-option" in lines[0]
    assert "Traceback" not in r.stderr


def test_unknown_verb_is_one_line_exit_2() -> None:
    r = run_cli("frobnicate")
    assert r.returncode == 2
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1


def test_help_lists_every_verb() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for verb in ("inits", "sample", "gain", "train", "probe", "theory", "report", "explore", "sweep", "coord-check",
                 "watch-report"):
        assert verb in r.stdout, verb


def test_report_help_names_every_study() -> None:
    """``report --only`` takes any registered study; its help (kept static for a fast start) names them all."""
    from initlab.studies import registry

    r = run_cli("report", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.replace("│", " ").split())
    for s in registry():
        assert s.name in text, s.name


def test_cli_start_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from initlab.cli import app\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'scipy', 'sklearn', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"imported at CLI start: {r.stdout.strip()}"
