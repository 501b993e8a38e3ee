"""The ``initlab train`` verb: output, JSON contract, bad input exits 2 with one line."""

from __future__ import annotations

import json

import pytest

from initlab.cli import main


def _run(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["train", *args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_train_json_contract(capsys, tmp_path):
    png = tmp_path / "costs.png"
    code, out, _ = _run(capsys, "--dataset", "moons", "--layers", "2,12,6,1", "--init", "he_normal", "--epochs", "300",
                        "--lr", "0.05", "--seed", "1", "--json", "--plot", str(png), "--no-progress")
    assert code == 0
    res = json.loads(out)
    for key in ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "diverged", "train_seconds", "history"):
        assert key in res
    assert 0 <= res["train_accuracy"] <= 1 and 0 <= res["test_accuracy"] <= 1
    assert res["diverged"] is False and len(res["history"]) == 300 and res["train_seconds"] > 0
    assert png.stat().st_size > 1000


def test_train_zeros_prints_ln2_and_half_accuracy(capsys):
    code, out, _ = _run(capsys, "--init", "zeros", "--epochs", "50", "--no-progress")
    assert code == 0
    assert "train loss 0.6931" in out and "accuracy 50.0%" in out


def test_train_same_seed_same_history(capsys):
    a = json.loads(_run(capsys, "--epochs", "20", "--batch-size", "32", "--seed", "3", "--json")[1])
    b = json.loads(_run(capsys, "--epochs", "20", "--batch-size", "32", "--seed", "3", "--json")[1])
    assert a["history"] == b["history"]


def test_train_divergence_is_reported(capsys):
    code, out, _ = _run(capsys, "--dataset", "gaussian", "--layers", "4,64,64,3", "--init", "normal(std=30)",
                        "--lr", "5", "--epochs", "50", "--loss", "mse", "--json")
    res = json.loads(out)
    assert code == 0 and res["diverged"] is True and isinstance(res["diverged_step"], int)


def test_train_divergence_on_the_last_update_is_reported(capsys):
    args = ("--dataset", "gaussian", "--layers", "3,64,64,2", "--init", "normal(std=100)", "--lr", "1",
            "--epochs", "1", "--loss", "mse", "--no-progress")
    code, out, _ = _run(capsys, *args, "--json")
    res = json.loads(out)
    assert code == 0 and res["diverged"] is True and res["diverged_step"] == 1
    assert res["train_loss"] is not None and res["test_loss"] is not None  # rolled back: finite losses
    code, out, _ = _run(capsys, *args)
    assert code == 0 and "diverged at step 1" in out and "(ok)" not in out


@pytest.mark.parametrize(
    "args,needle",
    [(["--dataset", "moonz"], "'--dataset'"), (["--layers", "2,x,1"], "'--layers'"), (["--layers", "3,4,1"], "input width"),
     (["--optimizer", "rmsprop"], "'--optimizer'"), (["--activation", "relux"], "relu"), (["--init", "nope"], "nope"),
     (["--dataset", "mnist"], "--data-dir"), (["--epochs", "-1"], "'--epochs'"),
     # messages name the CLI option, never the Python argument
     (["--lr", "-1"], "The '--lr' option must be > 0"), (["--output", "nope"], "The '--output' option"),
     (["--activation", "nope"], "The '--activation' option"), (["--loss", "hinge"], "The '--loss' option"),
     (["--bias-init", "normal(std=-1)"], "The '--bias-init' option"), (["--dtype", "float16"], "The '--dtype' option"),
     # output width checked against the loss and the labels before training, not as "'y' must have shape"
     (["--layers", "2,4,2", "--output", "sigmoid"], "'--layers' option must end with 1 output for the default loss 'bce'"),
     (["--layers", "2,12,6,2", "--loss", "bce"], "'--layers' option must end with 1 output for '--loss bce'"),
     (["--layers", "2,12,1", "--loss", "ce"], "'--layers' option must end with at least 2 outputs for '--loss ce'"),
     (["--layers", "2,12,2", "--output", "tanh", "--loss", "ce"], "'--output' option must be linear for '--loss ce'"),
     # options that a dataset does not use are rejected, not ignored
     (["--dataset", "digits", "--layers", "64,10", "--n-train", "50"], "'--n-train' option applies only to"),
     (["--dataset", "mnist1d", "--layers", "40,10", "--n-test", "5"], "'--n-test' option applies only to"),
     (["--dataset", "mnist1d", "--layers", "40,10", "--noise", "0.1"], "'--noise' option applies only to"),
     (["--dataset", "gaussian", "--layers", "4,2", "--noise", "0.1"], "'--noise' option applies only to"),
     (["--dataset", "mnist", "--layers", "784,10", "--data-dir", "x", "--n-train", "5"], "'--n-train' option"),
     (["--dataset", "moons", "--data-dir", "x"], "'--data-dir' option applies only to")],
)
def test_bad_input_exits_2_with_one_line(capsys, args, needle):
    code, _, err = _run(capsys, *args, "--epochs" if "--epochs" not in args else "--seed", "1" if "--epochs" not in args else "0")
    assert code == 2
    assert err.startswith("initlab: error:") and err.count("\n") == 1 and needle in err
    assert "'y' argument" not in err


def test_mnist_without_files_says_which_option_and_folder(capsys, tmp_path):
    code, _, err = _run(capsys, "--dataset", "mnist", "--layers", "784,10", "--data-dir", str(tmp_path), "--epochs", "1")
    assert code == 2 and err.count("\n") == 1
    assert "'--data-dir'" in err and str(tmp_path) in err and "mnist.npz" in err and "download=True" not in err


def test_bias_init_torch_default_bias_trains(capsys):
    code, out, _ = _run(capsys, "--bias-init", "torch_default_bias", "--init", "torch_default", "--epochs", "3",
                        "--n-train", "40", "--n-test", "10", "--noise", "0.1", "--json")
    res = json.loads(out)
    assert code == 0 and res["bias_init"] == "torch_default_bias" and res["epochs_run"] == 3
    assert res["n_train"] == 40 and res["n_test"] == 10
