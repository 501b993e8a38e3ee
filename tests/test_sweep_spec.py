"""Sweep specs: parsing, TOML, grid expansion and validation with clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from initlab.sweep.spec import cell_key, load_spec, parse_spec

BASE = {"model": {"width": 8}, "train": {"dataset": "moons", "steps": 5}}


def spec_with(**grid: object) -> dict:
    return {**BASE, "grid": grid}


def test_toml_spec_of_the_issue(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text(
        """
[model]
activation = "tanh"
width = 300
sigma_b2 = 0.05
[grid]
sigma_w2 = {start = 1.0, stop = 4.0, num = 30}
depth = {start = 10, stop = 100, num = 10}
seed = [0, 1]
[train]
dataset = "mnist1d"
optimizer = "sgd"
lr = 1e-3
batch_size = 256
steps = 200
""",
        encoding="utf-8",
    )
    sp = load_spec(p)
    assert sp.n_cells == 600 == len(sp.cells())
    assert sp.axes["depth"] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert sp.axes["sigma_w2"][0] == 1.0 and sp.axes["sigma_w2"][-1] == 4.0
    c = sp.cells()
    # the last axis varies fastest
    assert (c[0]["sigma_w2"], c[0]["depth"], c[0]["seed"]) == (1.0, 10, 0)
    assert (c[1]["sigma_w2"], c[1]["depth"], c[1]["seed"]) == (1.0, 10, 1)
    assert c[0]["width"] == 300 and c[0]["sigma_b2"] == 0.05 and c[0]["lr"] == 1e-3
    assert len({cell_key(x) for x in c}) == 600
    # the stored form parses back to the same spec
    assert parse_spec(sp.to_dict()) == sp


def test_log_range_lists_scalars_and_model_keys_as_axes() -> None:
    sp = parse_spec(spec_with(lr={"start": 1e-3, "stop": 1e-1, "num": 3, "scale": "log"},
                              activation=["tanh", "relu"], init="orthogonal"))
    assert [round(v, 12) for v in sp.axes["lr"]] == [0.001, 0.01, 0.1]
    assert sp.axes["activation"] == ["tanh", "relu"] and sp.axes["init"] == ["orthogonal"]
    assert sp.n_cells == 6


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"modle": {}}, ["'modle'", "did you mean 'model'"]),
        ({**BASE, "model": {"widht": 3}, "grid": {"seed": [0]}}, ["'model.widht'", "did you mean 'width'"]),
        ({**BASE, "train": {"optimiser": "sgd"}, "grid": {"seed": [0]}}, ["'train.optimiser'", "did you mean 'optimizer'"]),
        (spec_with(sigma_w3=[1.0]), ["'grid.sigma_w3'", "did you mean 'sigma_w2'"]),
        (spec_with(sigma_w2={"start": 1, "stop": 2, "nun": 3}), ["'grid.sigma_w2.nun'", "did you mean 'num'"]),
        ({**BASE, "grid": {}}, ["'grid' is empty"]),
        (BASE, ["'grid' is empty"]),
        (spec_with(sigma_w2=[]), ["'grid.sigma_w2'", "empty"]),
        (spec_with(sigma_w2={"start": 1.0, "stop": 2.0, "num": 0}), ["'grid.sigma_w2.num'", ">= 1"]),
        (spec_with(sigma_w2={"start": 1.0, "stop": 2.0}), ["'grid.sigma_w2'", "'num' is missing"]),
        (spec_with(sigma_w2={"start": -1.0, "stop": 2.0, "num": 3, "scale": "log"}), ["'grid.sigma_w2'", "> 0"]),
        (spec_with(sigma_w2={"start": 1.0, "stop": 2.0, "num": 3, "scale": "cubic"}), ["'grid.sigma_w2.scale'", "'log'"]),
        (spec_with(sigma_w2={"start": 2.0, "stop": 2.0, "num": 3}), ["'grid.sigma_w2'", "start == stop"]),
        (spec_with(depth={"start": 1, "stop": 3, "num": 10}), ["'grid.depth'", "repeated values"]),
        (spec_with(sigma_w2=[-1.0]), ["'grid.sigma_w2'", "> 0.0"]),
        (spec_with(sigma_w2=[1.0, 1.0]), ["'grid.sigma_w2'", "repeats"]),
        (spec_with(activation=["tanhh"]), ["'grid.activation'", "tanh"]),
        (spec_with(optimizer=["rmsprop"]), ["'grid.optimizer'", "'sgd'"]),
        (spec_with(width=[8]), ["'width'", "both fixed"]),
        ({**BASE, "train": {"dataset": "mnist"}, "grid": {"seed": [0]}}, ["mnist_dir", "--mnist"]),
        ({**BASE, "model": {"hidden": [3], "width": 4}, "grid": {"seed": [0]}}, ["'model.hidden'", "width"]),
        ({**BASE, "model": {"output": "sigmoid"}, "train": {"dataset": "digits"}, "grid": {"seed": [0]}}, ["'sigmoid'", "moons"]),
    ],
)
def test_bad_specs_name_the_key(raw: dict, words: list[str]) -> None:
    with pytest.raises((ValueError, TypeError)) as e:
        parse_spec(raw)
    for w in words:
        assert w in str(e.value), str(e.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("[model\nwidth = 3", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_spec(p)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_cli_bad_spec_exits_2_with_one_line(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text('[grid]\nsigma_w2 = []\n[train]\ndataset = "moons"\n', encoding="utf-8")
    r = subprocess.run([sys.executable, "-c", "from initlab.cli import main; main()", "sweep", "run", str(p), "--store", str(tmp_path / "s.db")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "'grid.sigma_w2'" in lines[0] and "empty" in lines[0]
    assert not (tmp_path / "s.db").exists()
