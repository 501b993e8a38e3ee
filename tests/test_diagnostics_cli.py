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


# -- torch models: file factories, inputs, modes, rejection, memory --------------------------------
_ZOO = '''
import torch
def cnn():
    g = torch.Generator().manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return m
def lm():
    class LM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(40, 8)
            self.rnn = torch.nn.GRU(8, 8, num_layers=2, batch_first=True)
            self.head = torch.nn.Linear(8, 40)
        def forward(self, tokens, lengths=None):
            return {"logits": self.head(self.rnn(self.emb(tokens))[0]), "tokens": tokens}
    return LM()
class WithUnused(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = cnn()
        self.extra = torch.nn.Linear(3, 3)
    def forward(self, x):
        return self.net(x)
def with_unused():
    return WithUnused()
'''


@pytest.fixture()
def zoo_file(tmp_path: Path) -> Path:
    pytest.importorskip("torch")
    p = tmp_path / "zoo_models.py"
    p.write_text(_ZOO)
    return p


def test_model_from_file_with_input_shape_and_modes(zoo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["probe", "--model", f"{zoo_file}:cnn", "--input-shape", "3x8x8", "--batch", "16", "--json"],
                        capsys)
    d = json.loads(out)
    assert code == 0 and d["mode"] == "init" and d["unexamined"] == []
    assert [s["kind"] for s in d["layers"]] == ["conv", "norm", "activation", "pool", "linear"]
    assert [s["width"] for s in d["layers"]] == [8, 8, 8, 8, 2]
    code, out, _ = _run(["probe", "--model", f"{zoo_file}:cnn", "--input-shape", "3x8x8", "--batch", "16", "--mode",
                         "eval", "--json"], capsys)
    assert code == 0 and json.loads(out)["mode"] == "eval"
    # the table: rows by name, the verdicts once each, the summary line
    code, out, _ = _run(["probe", "--model", f"{zoo_file}:cnn", "--input-shape", "3x8x8", "--batch", "16"], capsys)
    assert code == 0 and "mode init" in out and "│ 0 " in out.replace("│ 0    ", "│ 0 ")
    verdict_lines = [ln for ln in out.splitlines() if ln.startswith("! ")]
    assert len(verdict_lines) == len(set(verdict_lines))


def test_integer_tokens_and_model_output(zoo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["probe", "--model", f"{zoo_file}:lm", "--input-shape", "12", "--input-dtype", "int64",
                           "--batch", "8", "--model-output", "logits", "--json"], capsys)
    assert code == 0, err
    d = json.loads(out)
    assert [s["name"] for s in d["layers"]] == ["emb", "rnn.l0", "rnn.l1", "head"]
    assert [s["width"] for s in d["layers"]] == [8, 8, 8, 40]
    assert d["layers"][1]["grad_time_ratio"] is not None


def test_input_files_npy_and_pt(zoo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    import torch

    tokens = np.random.default_rng(0).integers(0, 40, size=(6, 5))
    np.save(tmp_path / "tokens.npy", tokens)
    code, out, err = _run(["probe", "--model", f"{zoo_file}:lm", "--input", str(tmp_path / "tokens.npy"), "--json"],
                          capsys)
    assert code == 0 and json.loads(out)["batch"] == 6, err  # int64 kept: embeddings work
    torch.save({"tokens": torch.from_numpy(tokens)}, tmp_path / "kw.pt")
    code, out, err = _run(["probe", "--model", f"{zoo_file}:lm", "--input", str(tmp_path / "kw.pt"), "--batch", "4",
                           "--json"], capsys)
    assert code == 0 and json.loads(out)["batch"] == 4, err
    torch.save((torch.randn(5, 3, 8, 8),), tmp_path / "pos.pt")
    code, out, err = _run(["probe", "--model", f"{zoo_file}:cnn", "--input", str(tmp_path / "pos.pt"), "--json"], capsys)
    assert code == 0 and json.loads(out)["batch"] == 5, err


def test_unexamined_printed_and_in_json(zoo_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["probe", "--model", f"{zoo_file}:with_unused", "--input-shape", "3x8x8", "--batch", "8"], capsys)
    assert code == 0 and "unexamined: extra (Linear)" in out and "no problem found:" not in out
    code, out, _ = _run(["probe", "--model", f"{zoo_file}:with_unused", "--input-shape", "3x8x8", "--batch", "8",
                         "--json"], capsys)
    assert json.loads(out)["unexamined"][0].startswith("extra (Linear)")


def test_torch_bad_inputs_exit_2_with_one_line(zoo_file: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    np.save(tmp_path / "empty.npy", np.zeros((0, 3, 8, 8), dtype=np.float32))
    bad_nan = np.ones((4, 3, 8, 8), dtype=np.float32)
    bad_nan[1, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad_nan)
    cases = [
        (["--input-shape", "3x2x2"], "the model rejected an input of shape 1000x3x2x2; pass --input-shape/--input"),
        (["--input-shape", "0x8x8"], "'--input-shape'"),
        (["--input", str(tmp_path / "empty.npy")], "'--input'"),
        (["--input", str(tmp_path / "nan.npy")], "'--input'"),
        (["--input-shape", "3x64x64", "--batch", "100000000"], "'--batch'"),
        (["--input-shape", "3x8x8", "--mode", "training"], "'--mode'"),
        (["--input-shape", "3x8x8", "--input-dtype", "float31"], "'--input-dtype'"),
        (["--input-shape", "3x8x8", "--input-dtype", "int64"], "'--input-dtype'"),
        (["--input-shape", "3x8x8", "--model-output", "nope"], "'output'"),
    ]
    for extra, needle in cases:
        code, out, err = _run(["probe", "--model", f"{zoo_file}:cnn", *extra], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("initlab: error:"), (extra, err)
        assert needle in err, (extra, err)
    code, out, err = _run(["probe", "--model", f"{tmp_path / 'missing.py'}:cnn"], capsys)
    assert code == 2 and "'--model'" in err and err.count("\n") == 1


def test_residual_model_prints_each_fix_and_plots_its_signal_propagation(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    f = tmp_path / "res.py"
    f.write_text(textwrap.dedent("""
        import torch
        class Block(torch.nn.Module):
            def __init__(self, d):
                super().__init__()
                self.fc1, self.fc2 = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)
            def forward(self, x):
                return x + self.fc2(torch.relu(self.fc1(x)))
        def make():
            torch.manual_seed(0)
            m = torch.nn.Sequential(torch.nn.Linear(32, 64), *[Block(64) for _ in range(8)], torch.nn.Linear(64, 10))
            for mod in m.modules():
                if isinstance(mod, torch.nn.Linear):
                    torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            return m
    """))
    png = tmp_path / "spp.png"
    code, out, _ = _run(["probe", "--model", f"{f}:make", "--input-shape", "32", "--batch", "128", "--plot", str(png)],
                        capsys)
    assert code == 0 and "residual stream variance grows" in out
    fix = next(line for line in out.splitlines() if line.strip().startswith("fix:"))
    assert json.loads(fix.split("fix:", 1)[1]) == {"preset": "fixup", "blocks": [str(i) for i in range(1, 9)]}
    from PIL import Image

    with Image.open(png) as im:  # the three-panel Signal Propagation Plot, not the per-layer figure
        assert im.size[0] > 2.5 * im.size[1]
