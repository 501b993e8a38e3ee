"""Hostile input to every verb: exit status 2 and ONE line on stderr naming the option, no traceback;
the one output-path rule for every file or folder the CLI writes; memory estimated before
allocating; a diverged run said to be diverged, never printed as nan."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import initlab
from initlab import _validation
from initlab.cli import main

GIB = 2**30


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """Run, expect exit 2 with one ``initlab: error:`` line holding every needle; return the line."""
    code, _, err = run(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and lines[0].startswith("initlab: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- memory: estimated before allocating ----------------------------------------------------------


@pytest.fixture()
def one_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend 1 GiB is available, so the refusals do not depend on the machine."""
    monkeypatch.setattr(_validation, "available_memory", lambda: GIB)


@pytest.mark.parametrize(("argv", "option", "needed_gib"), [
    # 1e10 float32 weights + three float64 copies for the statistics
    (["sample", "normal", "--shape", "100000x100000"], "--shape", 1e10 * (4 + 24) / GIB),
    # 2e10 float32 weights x3 + a batch of 1000 x 3e5 widths x 6 arrays
    (["probe", "--layers", "100000,100000,100000"], "--layers", (20_000_200_000 * 12 + 1000 * 300_000 * 24) / GIB),
    (["train", "--layers", "2,100000,100000,1"], "--layers", (10_000_500_001 * 4 * 5 + 400 * 200_003 * 16) / GIB),
])
def test_huge_sizes_are_refused_with_needed_and_available_memory(argv: list[str], option: str, needed_gib: float,
                                                                 one_gib: None, capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(argv, capsys, f"'{option}' option", "1.0 GiB is available")
    assert f"about {needed_gib:.1f} GiB of memory" in line


def test_sizes_that_fit_still_run(one_gib: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["sample", "normal", "--shape", "300x500", "--json"], capsys)
    assert code == 0 and json.loads(out)["shape"] == [300, 500]


def test_available_memory_is_positive_and_check_memory_passes_small_sizes() -> None:
    avail = _validation.available_memory()
    assert avail is None or avail > 0
    _validation.check_memory("shape", 1024, "a small array")  # no error
    with pytest.raises(ValueError, match=r"The 'shape' argument asks for x, which needs about .* of memory; .* available"):
        _validation.check_memory("shape", 2**70, "x")


# -- the output-path rule --------------------------------------------------------------------------

#: (argv before the path, the option, the extension): every verb that writes a file
WRITERS = [
    (["sample", "normal", "--shape", "4x3"], "--save", ".npy"),
    (["train", "--epochs", "2", "--no-progress"], "--plot", ".png"),
    (["probe", "--layers", "4,3", "--batch", "16"], "--plot", ".png"),
    (["theory", "phase", "--n", "5"], "--plot", ".png"),
]


@pytest.mark.parametrize(("argv", "option", "ext"), WRITERS, ids=[w[0][0] + w[0][1] for w in WRITERS])
def test_every_output_file_follows_one_rule(argv: list[str], option: str, ext: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / f"adir{ext}").mkdir()
    refused([*argv, option, ""], capsys, f"'{option}' option must name a {ext} file")
    refused([*argv, option, "  "], capsys, f"'{option}' option")
    missing = tmp_path / "missing" / "deeper"
    refused([*argv, option, str(missing / f"f{ext}")], capsys, f"'{option}' option must be inside an existing folder",
            "does not exist")
    assert not (tmp_path / "missing").exists()  # never created
    refused([*argv, option, str(tmp_path / "afile" / f"f{ext}")], capsys, f"'{option}' option must be inside a folder",
            "is a file")
    refused([*argv, option, str(tmp_path / "f.txt")], capsys, f"'{option}' option must be a {ext} file")
    refused([*argv, option, str(tmp_path / f"adir{ext}")], capsys, f"'{option}' option must name a file", "is a folder")
    refused([*argv, option, str(tmp_path / ext)], capsys, "not only the extension")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir" + ext, "afile"]  # nothing written, no hidden file
    # a write the OS refuses names the option (not "[Errno 2]")
    refused([*argv, option, f"/proc/initlab-test{ext}"], capsys, f"'{option}' option could not be written to")


@pytest.mark.parametrize(("argv", "option", "ext"), WRITERS, ids=[w[0][0] + w[0][1] for w in WRITERS])
def test_a_name_without_extension_gets_it_and_the_real_name_is_printed(argv: list[str], option: str, ext: str,
                                                                        tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "result"
    code, out, err = run([*argv, option, str(target)], capsys)
    assert code == 0, err
    written = tmp_path / f"result{ext}"
    assert str(written) in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [written.name]  # no temporary file left
    if ext == ".npy":
        assert np.load(written).shape == (4, 3)
    else:
        assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_overwrites_atomically_and_json_names_the_real_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "w.npy"
    target.write_bytes(b"old")
    code, out, _ = run(["sample", "normal", "--shape", "2x2", "--save", str(tmp_path / "w"), "--json"], capsys)
    assert code == 0 and json.loads(out)["saved"] == str(target)
    assert np.load(target).shape == (2, 2)


def test_report_out_follows_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    base = ["report", "--only", "seed003", "--quick", "--json", "--out"]
    refused([*base, ""], capsys, "'--out' option must name a folder")
    refused([*base, str(tmp_path / "missing" / "r")], capsys, "'--out' option must be inside an existing folder")
    assert not (tmp_path / "missing").exists()
    refused([*base, str(tmp_path / "afile" / "r")], capsys, "'--out' option must be inside a folder", "is a file")
    refused([*base, str(tmp_path / "afile")], capsys, "'--out' option must name a folder", "is a file")
    line = refused([*base, "/proc/initlab-report"], capsys, "'--out' option", "'/proc/initlab-report'")
    assert "tmp" not in line  # names the report folder, not the temporary one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


# -- parsing and checks of every option -----------------------------------------------------------


@pytest.mark.parametrize(("argv", "needles"), [
    (["probe", "--layers", "20,,10"], ("'--layers' option", "no empty items", "'20,,10'")),
    (["train", "--layers", "2,,1"], ("'--layers' option", "no empty items")),
    (["probe", "--layers", "20,10,"], ("'--layers' option",)),
    (["probe", "--layers", "20,10", "--activation", "bogus"], ("'--activation' option", "'bogus'")),
    (["probe", "--layers", "20,10", "--output", "bogus"], ("'--output' option", "'bogus'")),
    (["train", "--layers", "2,1", "--activation", "bogus"], ("'--activation' option", "'bogus'")),
    (["probe", "--layers", "4,3", "--init", "bogus"], ("'--init' option",)),
    (["probe", "--layers", "4,3", "--bias", "bogus"], ("'--bias' option",)),
    (["probe", "--layers", "4,3", "--batch", "0"], ("'--batch' option",)),
    (["train", "--n-test", "0"], ("'--n-test' option", ">= 1")),
    (["train", "--lr", "nan"], ("'--lr' option", "finite")),
    (["sample", "normal", "--shape", ""], ("'--shape' option",)),
    (["sample", "kaiming_normal(a=inf)"], ("'a'", "finite")),
    (["gain", "leaky_relu", "--param", "nan"], ("'--param' option", "finite")),
    (["gain", "relu", "--method", "x"], ("'--method' option",)),
    (["theory", "point", "--sigma-w2", "1", "-a", "leaky_relu", "--param", "inf"], ("'--param' option", "finite")),
    (["theory", "point", "--sigma-w2", "1", "-a", "bogus"], ("'--activation' option", "'bogus'")),
    (["theory", "point", "--sigma-w2", "nan"], ("'--sigma-w2' option", "finite")),
])
def test_bad_option_values_name_the_option(argv: list[str], needles: tuple[str, ...],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    refused(argv, capsys, *needles)


def test_network_checks_its_activation_without_hidden_layers() -> None:
    from initlab.nn import Network

    with pytest.raises(ValueError, match="'activation' argument must be one of"):
        Network([3, 2], activation="bogus")
    assert Network([3, 2], activation="tanh").sizes == [3, 2]


@pytest.mark.parametrize(("content", "needle"), [
    (b"1 2 3\n", "is not a valid .npy file (it lacks the NumPy header)"),
    (b"", "is empty"),
])
def test_bad_npy_input_files(content: bytes, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.npy"
    path.write_bytes(content)
    line = refused(["probe", "--layers", "4,3", "--input", str(path)], capsys, "'--input' file", needle)
    assert "pickle" not in line


def test_npy_input_with_objects_or_no_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{}, 1], dtype=object), allow_pickle=True)
    refused(["probe", "--layers", "4,3", "--input", str(obj)], capsys, "'--input' file", "Python objects")
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((0, 4), np.float32))
    refused(["probe", "--layers", "4,3", "--input", str(rows)], capsys, "'--input' file", "at least one sample")


# -- numbers in the output ------------------------------------------------------------------------


def test_diverged_training_says_so_instead_of_nan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["train", "--init", "normal(std=1e15)", "--epochs", "20", "--no-progress"], capsys)
    assert code == 0
    assert "nan" not in out.lower()
    assert "train loss not finite (diverged at step 0)" in out
    assert "the run diverged at step 0 (epoch 1)" in " ".join(out.split())
    code, out, _ = run(["train", "--init", "normal(std=1e15)", "--epochs", "20", "--no-progress", "--json"], capsys)
    data = json.loads(out)
    assert data["diverged"] is True and data["diverged_step"] == 0 and data["train_loss"] is None


def test_a_healthy_run_prints_finite_losses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["train", "--epochs", "5", "--no-progress"], capsys)
    assert code == 0 and "diverged" not in out and "not finite" not in out
    assert math.isfinite(float(out.split("train loss ")[1].split()[0]))


# -- the Python API: nan/inf parameters blame the parameter ---------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("fn", [initlab.init.kaiming_normal, initlab.init.kaiming_uniform])
def test_kaiming_blames_a_for_nonfinite_slopes(fn, value: float) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"^The 'a' argument must be a finite number"):
        fn((3, 5), a=value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_calculate_gain_refuses_nonfinite_slopes(value: float) -> None:
    with pytest.raises(ValueError, match="'param' argument .* must be a finite number"):
        initlab.init.calculate_gain("leaky_relu", value)
    assert initlab.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))


@pytest.mark.parametrize(("fn", "kwargs", "name"), [
    (initlab.init.normal, {"std": float("nan")}, "std"),
    (initlab.init.normal, {"mean": float("inf")}, "mean"),
    (initlab.init.uniform, {"b": float("nan")}, "b"),
    (initlab.init.trunc_normal, {"a": float("nan")}, "a"),
    (initlab.init.constant, {"value": float("nan")}, "value"),
    (initlab.init.xavier_normal, {"gain": float("inf")}, "gain"),
    (initlab.init.variance_scaling, {"scale": float("nan")}, "scale"),
    (initlab.init.orthogonal, {"gain": float("nan")}, "gain"),
    (initlab.init.sparse, {"sparsity": 0.1, "std": float("nan")}, "std"),
])
def test_every_init_parameter_blames_itself_for_nan_or_inf(fn, kwargs, name: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=rf"^The '{name}' argument"):
        fn((4, 6), **kwargs)


# -- the report with corrupt MNIST files ----------------------------------------------------------


def test_report_with_garbage_mnist_fails_that_study(tmp_path: Path) -> None:
    from initlab.data.mnist import MNIST_FILES

    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in MNIST_FILES:
        (folder / name).write_bytes(rng.integers(1, 256, 3000, dtype=np.uint8).tobytes())
    proc = subprocess.run(
        [sys.executable, "-c", "from initlab.cli import main; main()", "report", "--only", "seed002", "--quick",
         "--mnist", str(folder), "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "seed002: FAILED" in proc.stdout and "is not an IDX file" in proc.stdout
    assert "Traceback" not in proc.stderr
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["studies"]["seed002"]["status"] == "failed"


@pytest.mark.parametrize(("images", "labels", "needle"), [
    (np.full((2, 28, 28), np.nan, np.float32), np.zeros(2, np.uint8), "NaN or inf"),
    (np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.float32), "integer labels"),
    (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), "no images"),
])
def test_mnist_loader_checks_its_arrays(images: np.ndarray, labels: np.ndarray, needle: str, tmp_path: Path) -> None:
    from initlab.data import mnist
    from initlab.data.idx import write_idx
    from initlab.data.mnist import MNIST_FILES

    for name, arr in zip(MNIST_FILES, (images, labels, images, labels)):
        write_idx(tmp_path / name, arr)
    with pytest.raises(ValueError, match=needle):
        mnist(tmp_path)


def test_train_with_garbage_mnist_names_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from initlab.data.mnist import MNIST_FILES

    for name in MNIST_FILES:
        (tmp_path / name).write_bytes(b"\x01\x02\x03\x04" * 100)
    refused(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--layers", "784,10"], capsys,
            "'--data-dir' option", "not MNIST", "is not an IDX file")
