"""The verbs inits, sample and gain: JSON output, seed 000's verification table, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from initlab.cli import main

SEED_000 = [  # seed 000's table (torch on 300x500): spec -> theoretical (mean, var)
    ("uniform(a=0.0, b=1.0)", 0.5, 1 / 12),
    ("normal(mean=0.0, std=1.0)", 0.0, 1.0),
    ("xavier_uniform(gain=1.0)", 0.0, 2 / 800),
    ("kaiming_uniform(a=0, mode=fan_in, nonlinearity=relu)", 0.0, 2 / 500),
    ("xavier_normal(gain=1.0)", 0.0, 2 / 800),
    ("kaiming_normal(a=0, mode=fan_in, nonlinearity=relu)", 0.0, 2 / 500),
    ("kaiming_uniform(a=0.3, mode=fan_in, nonlinearity=leaky_relu)", 0.0, 2 / (1.09 * 500)),
    ("kaiming_normal(a=0.3, mode=fan_in, nonlinearity=leaky_relu)", 0.0, 2 / (1.09 * 500)),
    ("kaiming_uniform(mode=fan_out, nonlinearity=relu)", 0.0, 2 / 300),
    ("kaiming_normal(mode=fan_out, nonlinearity=relu)", 0.0, 2 / 300),
]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return int(e.value.code), out, err


def test_sample_reproduces_seed_000_table(capsys) -> None:
    code, out, _ = run(["sample", *[s for s, _, _ in SEED_000], "--shape", "300x500", "--seed", "0", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["fans"] == {"fan_in": 500, "fan_out": 300}
    n = 300 * 500
    for row, (spec, mean, var) in zip(data["results"], SEED_000):
        assert row["spec"] == spec
        assert row["theory"]["mean"] == pytest.approx(mean) and row["theory"]["var"] == pytest.approx(var)
        m = row["measured"]
        assert abs(m["mean"] - mean) < 5 * math.sqrt(var / n)
        # Var of the sample variance <= 2 var² / n for these laws (normal: 2var²/n; uniform: 0.8var²/n)
        assert abs(m["var"] - var) < 5 * math.sqrt(2 * var * var / n)
    # the human table shows measured and theoretical columns
    code, out, _ = run(["sample", "xavier_uniform", "--shape", "300x500"], capsys)
    assert code == 0 and "var (theory)" in out and "0.0025" in out


def test_sample_options_and_save(tmp_path, capsys) -> None:
    path = tmp_path / "w.npy"
    code, out, _ = run(["sample", "orthogonal", "--shape", "3x3x16x32", "--layout", "keras", "--dtype", "float64",
                        "--seed", "3", "--save", str(path), "--json"], capsys)
    assert code == 0
    w = np.load(path)
    assert w.shape == (3, 3, 16, 32) and w.dtype == np.float64
    assert json.loads(out)["fans"] == {"fan_in": 144, "fan_out": 288}
    code, out, _ = run(["sample", "kaiming_normal", "--shape", "16x32x3", "--transposed", "--json"], capsys)
    assert json.loads(out)["results"][0]["theory"]["var"] == pytest.approx(2 / 48)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["sample", "kaiming_normal(mode=fan_avg)", "--shape", "3x4"], "mode"),
        (["sample", "xavier_unifrom"], "did you mean"),
        (["sample", "normal", "--shape", "3xA"], "--shape"),
        (["sample", "normal", "--layout", "tf"], "layout"),
        (["sample", "uniform", "--dtype", "complex64"], "dtype"),
        (["sample", "normal", "xavier_normal", "--save", "w.npy"], "--save"),
        (["gain", "tanhh"], "activation"),
        (["gain", "tanh", "--method", "chaos"], "method"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, needle, capsys) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("initlab: error:") and err.count("\n") == 1 and needle in err
    assert "Traceback" not in err


def test_gain_json(capsys) -> None:
    code, out, _ = run(["gain", "tanh", "--json"], capsys)
    d = json.loads(out)
    assert d["torch"] == pytest.approx(5 / 3) and d["critical"] == pytest.approx(1.0)
    assert d["second_moment"] == pytest.approx(1.5925374, rel=1e-6)
    code, out, _ = run(["gain", "gelu", "--json"], capsys)
    d = json.loads(out)
    assert d["torch"] is None and d["second_moment"] > 1
    code, out, _ = run(["gain", "leaky_relu", "--param", "0.3", "--json"], capsys)
    d = json.loads(out)
    assert d["torch"] == pytest.approx(math.sqrt(2 / 1.09)) and d["second_moment"] == pytest.approx(math.sqrt(2 / 1.09))
    code, out, _ = run(["gain", "relu"], capsys)
    assert code == 0 and "second_moment" in out and "critical" in out


def test_inits_lists_registry(capsys) -> None:
    code, out, _ = run(["inits", "--json"], capsys)
    d = json.loads(out)
    names = {s["name"] for s in d["schemes"]}
    assert {"kaiming_normal", "he_truncated_normal", "orthogonal", "zero", "delta_orthogonal"} <= names
    km = next(s for s in d["schemes"] if s["name"] == "kaiming_normal")
    assert km["aliases"] == ["he_normal"] and km["paper"]["year"] == 2015
    code, out, _ = run(["inits"], capsys)
    assert code == 0 and "glorot_uniform" in out


def test_cli_verb_module_does_not_import_torch() -> None:
    code = "import sys, importlib; importlib.import_module('initlab.cli.inits'); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
