"""The `initlab theory` verbs: text, strict JSON (null for non-finite values), errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from initlab import theory as T
from initlab.cli import main


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_point_json(capsys) -> None:
    code, out, _ = _run(["theory", "point", "--activation", "tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert {"q_star", "c_star", "chi1", "xi_q", "xi_c", "phase"} <= set(d)
    assert d["phase"] == "ordered" and d["chi1"] == pytest.approx(T.chi1("tanh", 1.5, 0.05), rel=1e-12)


def test_point_critical_gives_null_and_explains(capsys) -> None:
    code, out, _ = _run(["theory", "point", "-a", "tanh", "--sigma-w2", "1", "--json"], capsys)
    d = json.loads(out)
    assert d["xi_c"] is None and d["phase"] == "critical"
    code, out, _ = _run(["theory", "point", "-a", "tanh", "--sigma-w2", "1"], capsys)
    assert code == 0 and "xi = inf" in out
    code, out, _ = _run(["theory", "point", "-a", "leaky_relu", "--param", "0.2", "--sigma-w2", "3", "--sigma-b2", "0.1"], capsys)
    assert "diverges" in out


def test_critical_json(capsys) -> None:
    code, out, _ = _run(["theory", "critical", "--activation", "relu", "--json"], capsys)
    assert code == 0 and json.loads(out)["sigma_w2"] == 2.0
    code, out, _ = _run(["theory", "critical", "--activation", "tanh", "--sigma-b2", "0.05"], capsys)
    assert "edge of chaos" in out


def test_phase_plot_and_json(tmp_path, capsys) -> None:
    png = tmp_path / "phase.png"
    code, out, _ = _run(["theory", "phase", "-a", "tanh", "--n", "12", "--plot", str(png), "--json"], capsys)
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"
    d = json.loads(out)
    assert len(d["xi_c"]) == 12 and len(d["critical_line"]) == 12


@pytest.mark.parametrize(
    "args",
    [
        ["theory", "point", "-a", "tanhh", "--sigma-w2", "1"],
        ["theory", "point", "-a", "tanh", "--sigma-w2", "-1"],
        ["theory", "critical", "-a", "gelu", "--sigma-b2", "0.1"],
        ["theory", "phase", "-a", "tanh", "--n", "1"],
        ["theory", "phase", "-a", "tanh", "--plot", "x.jpg"],
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], capsys) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2
    assert err.startswith("initlab: error:") and err.count("\n") == 1


def test_cli_module_imports_no_numpy() -> None:
    code = "import sys, initlab.cli.theory; print('numpy' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == "False"


@pytest.mark.parametrize("args, option", [
    (["theory", "point", "-a", "tanh", "--sigma-w2", "-1"], "'--sigma-w2'"),
    (["theory", "point", "-a", "tanh", "--sigma-w2", "1", "--sigma-b2", "nan"], "'--sigma-b2'"),
    (["theory", "critical", "-a", "tanh", "--sigma-b2", "-0.5"], "'--sigma-b2'"),
])
def test_errors_name_the_option(args: list[str], option: str, capsys) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2 and option in err and "'sigma_" not in err, err


def test_softplus_has_no_edge_but_a_phase_diagram(capsys) -> None:
    code, _, err = _run(["theory", "critical", "-a", "softplus"], capsys)
    assert code == 2 and "diverges" in err and err.count("\n") == 1
    code, out, _ = _run(["theory", "phase", "-a", "softplus", "--n", "8", "--json"], capsys)
    d = json.loads(out)
    assert code == 0 and d["critical_line"] == [None] * 8


@pytest.mark.parametrize("args, option", [
    (["theory", "phase", "--n", "3"], "'--n'"),
    (["theory", "phase", "--n", "100000"], "'--n'"),
    (["theory", "phase", "--sigma-w2-max", "1e300"], "'--sigma-w2-max'"),
    (["theory", "phase", "--sigma-b2-max", "1e300"], "'--sigma-b2-max'"),
])
def test_phase_refuses_nonsense_ranges(args: list[str], option: str, capsys) -> None:
    code, out, err = _run(args, capsys)
    assert code == 2 and option in err and err.count("\n") == 1 and out == "", err


def test_phase_huge_grid_is_refused_by_its_memory_estimate(capsys) -> None:
    code, _, err = _run(["theory", "phase", "--n", "100000"], capsys)
    assert code == 2 and "GiB" in err and "available" in err


@pytest.mark.parametrize("act, why", [("gelu", "diverge"), ("softplus", "diverge")])
def test_phase_explains_every_nan_row(act: str, why: str, capsys) -> None:
    code, out, _ = _run(["theory", "phase", "-a", act, "--n", "10"], capsys)
    assert code == 0
    rows = [line for line in out.splitlines() if "sigma_w2 = nan" in line]
    assert rows and all("(" in line and why in line for line in rows), out


def test_phase_edge_at_zero_bias_is_critical_sigma_w2(capsys) -> None:
    code, out, _ = _run(["theory", "phase", "-a", "tanh", "--n", "20", "--json"], capsys)
    d = json.loads(out)
    assert d["critical_line"][0] == T.critical_sigma_w2("tanh", 0.0) == 1.0
    for i in (5, 19):
        assert d["critical_line"][i] == pytest.approx(T.critical_sigma_w2("tanh", d["sigma_b2"][i]), abs=1e-8)
    assert d["critical_note"] == [""] * 20
