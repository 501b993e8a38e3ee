"""`initlab probe`: JSON keys, the torch --model path, bad input exits 2 with one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from initlab.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def test_json_keys_and_theory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["probe", "--layers", "2,200,300,400,300,2", "--activation", "tanh", "--init", "xavier_normal",
                         "--batch", "500", "--theory", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert len(d["layers"]) == 5 and isinstance(d["verdicts"], list)
    for layer in d["layers"]:
        assert {"index", "mean", "std", "preact_std", "saturated", "dead", "grad_std", "theory_std"} <= set(layer)
    code, out, _ = _run(["probe", "--layers", "64,100,10", "--input", "digits", "--loss", "ce", "--no-backward",
                         "--json"], capsys)
    d = json.loads(out)
    assert code == 0 and "grad_std" not in d["layers"][0] and "theory_std" not in d["layers"][0]


def test_table_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "p.png"
    code, out, _ = _run(["probe", "--layers", "2,50,2", "--input", "moons", "--batch", "200", "--plot", str(png)], capsys)
    assert code == 0 and "preact std" in out and png.read_bytes()[:4] == b"\x89PNG"


def test_model_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    (tmp_path / "probe_factory_mod.py").write_text(textwrap.dedent("""
        import torch
        def make():
            return torch.nn.Sequential(torch.nn.Linear(10, 30), torch.nn.ReLU(), torch.nn.Linear(30, 3))
        not_a_model = 3
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = _run(["probe", "--model", "probe_factory_mod:make", "--batch", "64", "--theory", "--json"], capsys)
    d = json.loads(out)
    assert code == 0 and d["model"] == "torch" and len(d["layers"]) == 2 and d["layers"][0]["activation"] == "relu"
    assert d["layers"][0]["theory_std"] is not None
    for bad in ["probe_factory_mod:missing", "no_such_module_xyz:make", "probe_factory_mod", "probe_factory_mod:not_a_model"]:
        code, out, err = _run(["probe", "--model", bad], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("initlab: error:"), (bad, err)


@pytest.mark.parametrize("argv", [
    ["probe", "--layers", "2,x,3"],
    ["probe", "--layers", "2,10", "--loss", "hinge"],
    ["probe", "--layers", "2,10,3", "--activation", "tanhh"],
    ["probe", "--layers", "2,10", "--init", "xavier_unifrom"],
    ["probe", "--layers", "3,10", "--input", "moons"],
    ["probe", "--layers", "2,10", "--input", "nothing.npy"],
    ["probe", "--layers", "2,10", "--batch", "0"],
    ["probe"],
])
def test_bad_input_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("initlab: error:"), err
