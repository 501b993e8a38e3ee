"""`initlab coord-check`: built-in families, a user factory from a file, bad input exits 2 with one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

from initlab.cli import main  # noqa: E402


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_standard_vs_mup_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["coord-check", "--widths", "64,128,256,512", "--json"], capsys)
    assert code == 0
    sp = json.loads(out)
    assert sp["summary"].startswith("not width-stable from step 1")
    readout = {(r["layer"], r["step"]): r["slope"] for r in sp["slopes"]}
    assert readout[("readout", 1)] > 0.5
    code, out, _ = _run(["coord-check", "--model", "mlp:mup", "--widths", "64,128,256,512", "--json"], capsys)
    mup = json.loads(out)
    assert code == 0 and mup["summary"].startswith("width-stable")


def test_user_factory_from_file_table_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "family.py"
    f.write_text(textwrap.dedent("""
        import torch
        def make(width):
            return torch.nn.Sequential(torch.nn.Linear(8, width), torch.nn.Tanh(), torch.nn.Linear(width, 2))
    """))
    png = tmp_path / "cc.png"
    code, out, _ = _run(["coord-check", "--model", f"{f}:make", "--widths", "16,32,64", "--steps", "2",
                         "--optimizer", "sgd", "--lr", "0.05", "--plot", str(png)], capsys)
    assert code == 0, out
    assert "step 1 slope" in out and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, needle", [
    (["--model", "mlp:bogus"], "'--model'"),
    (["--model", "no_such_module_xyz:f"], "'--model'"),
    (["--model", "/no/such/file.py:f"], "'--model'"),
    (["--widths", "64"], "'--widths'"),
    (["--widths", "128,64"], "'--widths'"),
    (["--steps", "0"], "'--steps'"),
    (["--lr", "-1"], "'--lr'"),
    (["--optimizer", "rmsprop"], "'--optimizer'"),
    (["--input-shape", "0"], "'--input-shape'"),
    (["--plot", "/no/such/dir/cc.png"], "'--plot'"),
    (["--plot", ""], "'--plot'"),
])
def test_bad_input_one_line(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["coord-check", *argv], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err


def test_model_rejecting_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "cnn.py"
    f.write_text(textwrap.dedent("""
        import torch
        def make(width):
            return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    """))
    code, _, err = _run(["coord-check", "--model", f"{f}:make", "--widths", "4,8", "--input-shape", "5"], capsys)
    assert code == 2 and "--input-shape" in err and len(err.strip().splitlines()) == 1


def test_train_watch_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "w.png"
    code, out, _ = _run(["train", "--dataset", "moons", "--layers", "2,16,16,1", "--epochs", "40", "--batch-size", "100",
                         "--watch", "every=5", "--plot-watch", str(png), "--json", "--no-progress"], capsys)
    assert code == 0
    d = json.loads(out)
    w = d["watch"]
    assert w["every"] == 5 and w["steps"] == list(range(0, 160, 5))
    names = {r["name"] for r in w["rows"]}
    assert names == {"layers.0", "layers.1", "layers.2"}
    assert all(r["update_ratio"] is not None and r["update_ratio"] > 0 for r in w["rows"] if r["name"] == "layers.0")
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("argv, needle", [
    (["--watch", "every=0"], "'--watch'"),
    (["--watch", "often"], "'--watch'"),
    (["--plot-watch", "w.png"], "'--plot-watch'"),
    (["--watch", "every=2", "--plot-watch", "/no/such/dir/w.png"], "'--plot-watch'"),
])
def test_train_watch_bad_input(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["train", "--epochs", "1", *argv], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
