"""`initlab probe` and the probe's helpers on bad input: one line naming the option, no traceback,
no leaked figure; bias schemes that need the layer's fan-in (torch_default_bias)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

import initlab
from initlab.cli import main
from initlab.nn import Network


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def _one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("initlab: error:"), err
    for w in words:
        assert w in err, (w, err)


def test_model_factory_that_raises_or_returns_no_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    (tmp_path / "probe_bad_factories.py").write_text(textwrap.dedent("""
        def boom():
            raise RuntimeError("no GPU here")
        def number():
            return 3
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    _one_line_error(*_run(["probe", "--model", "probe_bad_factories:boom"], capsys),
                    "'--model'", "RuntimeError", "no GPU here")
    _one_line_error(*_run(["probe", "--model", "probe_bad_factories:number"], capsys),
                    "'--model'", "torch.nn.Module", "int")


def test_plot_to_a_missing_folder_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = str(tmp_path / "no_such_dir" / "x.png")
    _one_line_error(*_run(["probe", "--layers", "4,8,2", "--batch", "16", "--plot", bad], capsys), "'--plot'", bad)


def test_failed_save_closes_the_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = initlab.probe(Network([4, 8, 2], "tanh", rng=0), np.random.default_rng(0).standard_normal((16, 4)), rng=0)
    before = set(plt.get_fignums())
    for save in (res.plot, res.plot_stats, res.plot_gradients, res.plot_histograms):
        with pytest.raises(OSError):
            save(str(tmp_path / "no_such_dir" / "x.png"))
    assert set(plt.get_fignums()) == before


@pytest.mark.parametrize("make, words", [
    (lambda: np.array([[0.0, np.nan], [1.0, 2.0]]), "finite"),
    (lambda: np.array([[0.0, np.inf], [1.0, 2.0]]), "finite"),
    (lambda: np.array([[0.0, 1e300], [1.0, 2.0]]), "finite"),  # overflows float32
    (lambda: np.ones((3, 2), dtype=np.complex128), "real"),
    (lambda: np.array([[object(), 1]], dtype=object), ".npy"),  # needs pickle: refused
    (lambda: np.array([b"ab", b"cd"]).reshape(2, 1), "real"),
])
def test_bad_npy_input_names_the_option(make, words: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.npy"
    np.save(path, make(), allow_pickle=True)
    _one_line_error(*_run(["probe", "--layers", "2,8", "--batch", "4", "--input", str(path)], capsys),
                    "'--input'", str(path), words)


def test_corrupt_npy_names_the_option_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "junk.npy"
    path.write_bytes(b"this is not a numpy file")
    _one_line_error(*_run(["probe", "--layers", "2,8", "--input", str(path)], capsys), "'--input'", str(path))


def test_good_npy_input_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((40, 3)))
    code, out, _ = _run(["probe", "--layers", "3,8,2", "--input", str(path), "--json"], capsys)
    assert code == 0 and '"batch": 40' in out


@pytest.mark.parametrize("argv", [
    ["probe", "--layers", "3,8,2", "--input-shape", "3"],
    ["probe", "--model", "m:f", "--input", "moons", "--input-shape", "2"],
])
def test_input_shape_where_it_does_not_apply(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(*_run(argv, capsys), "'--input-shape'")


def test_probe_seeds_are_independent_streams(capsys: pytest.CaptureFixture[str]) -> None:
    """The weights, inputs and targets come from child seeds of --seed: the same --seed gives the
    same numbers, and a different one different numbers."""
    argv = ["probe", "--layers", "5,20,3", "--batch", "64", "--json"]
    a = _run(argv + ["--seed", "4"], capsys)[1]
    b = _run(argv + ["--seed", "4"], capsys)[1]
    c = _run(argv + ["--seed", "5"], capsys)[1]
    assert a == b and a != c


def test_torch_default_bias_is_predicted_with_the_layer_fan_in() -> None:
    """torch_default_bias needs the fan-in: the probe's theory keeps the spec (no "do not follow"
    note) and predicts q¹ = fan_in·Var(W)·E[x²] + 1/(3·fan_in)."""
    net = Network([50, 400, 400, 400], "tanh", init="lecun_normal", bias_init="torch_default_bias", rng=0)
    x = np.random.default_rng(1).standard_normal((500, 50))
    res = initlab.probe(net, x, theory=True, rng=0)
    assert res.theory and not any("bias" in n for n in res.notes), res.notes
    ex2 = float(np.mean(x**2))
    assert res.layers[0].theory_preact_std == pytest.approx(math.sqrt(ex2 + 1 / 150), rel=1e-6)  # float32 input
    pred = initlab.nn.predict_stack([50, 400, 400], "tanh", "lecun_normal", bias_inits="torch_default_bias")
    assert [round(layer.sigma_b2, 12) for layer in pred.layers] == [round(1 / 150, 12), round(1 / 1200, 12)]


def test_apply_torch_default_bias_takes_fan_in_from_the_weight() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(400, 300), torch.nn.Conv2d(3, 5, 4))
    rec = initlab.apply(model, {"*": {"weight": "lecun_normal", "bias": "torch_default_bias"}}, rng=0)
    assert len(rec.entries) == 4
    lin, conv = model[0].bias.detach().numpy(), model[1].bias.detach().numpy()
    assert np.abs(lin).max() <= 1 / math.sqrt(400) and np.abs(conv).max() <= 1 / math.sqrt(3 * 4 * 4)
    # U(±1/√400) over 300 draws reaches beyond half its bound (P(fail) = 2^-300)
    assert np.abs(lin).max() > 0.5 / math.sqrt(400)
