"""``initlab train``: train a NumPy network on one of the seed datasets and report loss and accuracy."""

from __future__ import annotations

from typing import Optional

import typer

from initlab.cli import app
from initlab.cli._common import as_option as _as_option

#: datasets whose size and noise the --n-train / --n-test / --noise options set
_SIZED = ("moons", "circles", "gaussian")
_NOISY = ("moons", "circles")


def _parse_watch(text: str) -> int:
    """``every=N`` (or just ``N``) → N ≥ 1.

    >>> _parse_watch("every=10"), _parse_watch("5")
    (10, 5)
    """
    key, sep, val = text.partition("=")
    raw = val if sep else key
    if (sep and key.strip() != "every") or not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"The '--watch' option must look like every=N with N >= 1 (steps); got {text!r}.")
    return int(raw)


@app.command()
def train(
    dataset: str = typer.Option("moons", "--dataset", help="moons, circles, digits, mnist1d, mnist (needs --data-dir), gaussian (random labels)."),
    layers: str = typer.Option("2,12,6,1", "--layers", help="Layer widths, input first, e.g. 2,12,6,1."),
    activation: str = typer.Option("relu", "--activation", help="Hidden activation (relu, tanh, leaky_relu(0.2), ...)."),
    output: Optional[str] = typer.Option(None, "--output", help="Output activation; default sigmoid for 1 output, linear (softmax CE) otherwise."),
    init: str = typer.Option("he_normal", "--init", help="Weight init spec, e.g. he_normal, 'normal(std=10)', zeros."),
    bias_init: str = typer.Option("zeros", "--bias-init", help="Bias init spec, e.g. zeros, torch_default_bias (U(±1/√fan_in), torch's nn.Linear)."),
    lr: float = typer.Option(0.01, "--lr", help="Learning rate (> 0)."),
    epochs: int = typer.Option(15000, "--epochs", help="Passes over the training set."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Mini-batch size (default: full batch)."),
    optimizer: str = typer.Option("sgd", "--optimizer", help="sgd, momentum or adam."),
    loss: Optional[str] = typer.Option(None, "--loss", help="bce, ce or mse (default from the output activation)."),
    noise: Optional[float] = typer.Option(None, "--noise", help="Noise of moons/circles (default 0.2; other datasets reject it)."),
    n_train: Optional[int] = typer.Option(None, "--n-train", help="Training samples for moons/circles/gaussian (default 400; other datasets reject it)."),
    n_test: Optional[int] = typer.Option(None, "--n-test", help="Test samples for moons/circles/gaussian (default 100; other datasets reject it)."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder with MNIST IDX files or mnist.npz."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float64."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data, the weights and the shuffling."),
    json_out: bool = typer.Option(False, "--json", help="Print strict JSON on stdout."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Save the cost-per-epoch curve to this PNG."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (also off when stderr is not a terminal)."),
    watch: Optional[str] = typer.Option(None, "--watch", help="Record every layer over training: every=N (steps); "
                                        "prints the problems seen and their first step, adds 'watch' to --json."),
    plot_watch: Optional[str] = typer.Option(None, "--plot-watch", help="Save the watch figure (colorful dimension, "
                                             "mean/std/near-zero over steps) to this PNG; needs --watch."),
    save_watch: Optional[str] = typer.Option(None, "--save-watch", help="Save the watch to this .json file (reload "
                                             "with initlab.Watch.load, render with initlab watch-report); needs --watch."),
) -> None:
    """Train a network (initlab's NumPy engine) and print final train/test loss and accuracy."""
    import numpy as np

    from initlab import activations as _activations
    from initlab import data as _data
    from initlab import init as _init
    from initlab._rng import as_generator, child_seeds
    from initlab._validation import check_choice, check_int, check_memory, check_number
    from initlab.cli._common import emit_json, output_file, parse_int_list, write_file
    from initlab.nn import Network
    from initlab.nn import losses as _losses
    from initlab.nn import optimizers as _optimizers

    # -- every option checked up front, errors naming the option ---------------------------------
    with _as_option("--dataset", dataset, "--dataset"):
        check_choice("--dataset", dataset, _data.DATASETS)
    sizes = parse_int_list(layers, name="--layers")
    with _as_option("--activation", activation, "activation"):
        _activations.get(activation)
    if output is not None:
        with _as_option("--output", output, "activation"):
            _activations.get(output)
    with _as_option("--init", init):
        _init.get(init)
    with _as_option("--bias-init", bias_init):
        _init.get(bias_init)
    with _as_option("--lr", lr, "--lr"):
        check_number("--lr", lr, low=0.0, low_open=True)
    with _as_option("--epochs", epochs, "--epochs"):
        check_int("--epochs", epochs, low=0)
    if batch_size is not None:
        with _as_option("--batch-size", batch_size, "--batch-size"):
            check_int("--batch-size", batch_size, low=1)
    with _as_option("--optimizer", optimizer, "--optimizer"):
        check_choice("--optimizer", optimizer.lower(), _optimizers.names())
    loss_obj = None
    if loss is not None:
        with _as_option("--loss", loss, "loss"):
            loss_obj = _losses.get(loss)
    with _as_option("--dtype", dtype, "--dtype"):
        check_choice("--dtype", dtype, ("float32", "float64"))
    with _as_option("--seed", seed, "--seed"):
        check_int("--seed", seed, low=0)
    given = [opt for opt, v in (("--n-train", n_train), ("--n-test", n_test)) if v is not None]
    if given and dataset not in _SIZED:
        raise ValueError(
            f"The {given[0]!r} option applies only to --dataset {', '.join(_SIZED)}; {dataset!r} has a fixed split. "
            f"Leave {' and '.join(given)} out."
        )
    if noise is not None and dataset not in _NOISY:
        raise ValueError(f"The '--noise' option applies only to --dataset {', '.join(_NOISY)}; got --dataset {dataset!r}. Leave it out.")
    if dataset != "mnist" and data_dir is not None:
        raise ValueError(f"The '--data-dir' option applies only to --dataset mnist; got --dataset {dataset!r}. Leave it out.")
    n_tr = 400 if n_train is None else n_train
    n_te = 100 if n_test is None else n_test
    with _as_option("--n-train", n_tr, "--n-train"):
        check_int("--n-train", n_tr, low=1)
    with _as_option("--n-test", n_te, "--n-test"):
        check_int("--n-test", n_te, low=1)  # an empty test set has no loss or accuracy
    noise_v = 0.2 if noise is None else noise
    with _as_option("--noise", noise_v, "--noise"):
        check_number("--noise", noise_v, low=0.0)
    if dataset == "mnist" and data_dir is None:
        raise ValueError("The '--dataset mnist' choice needs '--data-dir FOLDER' (IDX files or mnist.npz).")
    plot_path = None if plot is None else output_file(plot, "--plot", ".png")
    itemsize = np.dtype(dtype).itemsize
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    sized = dataset in _SIZED
    rows = min(batch_size or n_tr, n_tr) if sized else 0  # a fixed dataset's size is known once loaded
    if sized:  # the generated data (float64 while made) and its evaluation, one layer wide at a time
        check_memory("--n-train", (n_tr + n_te) * (sizes[0] + 1) * 8 + (n_tr + n_te) * max(sizes) * itemsize * 3,
                     f"{n_tr:,} training and {n_te:,} test samples")
    # weights, gradients, two optimizer moments and an update; activations and deltas of a batch
    check_memory("--layers", n_params * itemsize * 5 + rows * sum(sizes) * itemsize * 4,
                 f"a {layers} network ({n_params:,} parameters, {dtype})")

    watch_every = _parse_watch(watch) if watch is not None else None
    if plot_watch is not None and watch_every is None:
        raise ValueError("The '--plot-watch' option needs '--watch every=N'.")
    watch_path = None if plot_watch is None else output_file(plot_watch, "--plot-watch", ".png")
    if save_watch is not None and watch_every is None:
        raise ValueError("The '--save-watch' option needs '--watch every=N'.")
    save_watch_path = None if save_watch is None else output_file(save_watch, "--save-watch", ".json")
    data_seed, net_seed = child_seeds(seed, 2)

    # -- data ------------------------------------------------------------------------------------
    if dataset == "moons":
        split = _data.moons(n_tr, n_te, noise_v, rng=data_seed)
    elif dataset == "circles":
        split = _data.circles(n_tr, n_te, noise_v, rng=data_seed)
    elif dataset == "digits":
        split = _data.digits(rng=data_seed)
    elif dataset == "mnist1d":
        split = _data.mnist1d(rng=data_seed)
    elif dataset == "mnist":
        try:
            split = _data.mnist(data_dir)
        except FileNotFoundError:
            from initlab.data.mnist import MNIST_FILES

            raise ValueError(
                f"The '--data-dir' option {data_dir!r} holds no MNIST: put the IDX files {', '.join(MNIST_FILES)} "
                f"(optionally .gz) or one mnist.npz into that folder (initlab train never downloads)."
            ) from None
        except ValueError as e:  # files there, but not MNIST
            raise ValueError(f"The '--data-dir' option {data_dir!r} holds files that are not MNIST: {e}") from None
    else:
        gen = as_generator(data_seed)
        X, y = _data.gaussian(n_tr + n_te, sizes[0], rng=gen, n_classes=max(2, sizes[-1]))
        split = _data.Split(X[:n_tr], y[:n_tr], X[n_tr:], y[n_tr:])
    X, y, Xt, yt = split

    # -- the network's shape against the data, the output activation and the loss ---------------
    if X.shape[1] != sizes[0]:
        raise ValueError(f"The '--layers' option must start with the input width of {dataset!r}, {X.shape[1]}; got {layers!r}.")
    n_classes = int(max(y.max(initial=0), yt.max(initial=0))) + 1
    if sizes[-1] == 1 and n_classes > 2:
        raise ValueError(f"The '--layers' option must end with {n_classes} outputs for {dataset!r} ({n_classes} classes); got 1.")
    if sizes[-1] > 1 and sizes[-1] < n_classes:
        raise ValueError(f"The '--layers' option must end with at least {n_classes} outputs for {dataset!r}; got {sizes[-1]}.")
    out_act = output if output is not None else ("sigmoid" if sizes[-1] == 1 else "linear")
    net = Network(sizes, activation, out_act, init=init, bias_init=bias_init, rng=net_seed, dtype=dtype)
    lo = _losses.get(net.default_loss()) if loss_obj is None else loss_obj
    how = f"'--loss {lo.name}'" if loss_obj is not None else f"the default loss {lo.name!r} (for '--output {out_act}')"
    if lo.name == "ce" and sizes[-1] < 2:
        raise ValueError(f"The '--layers' option must end with at least 2 outputs for {how}; got 1 (use '--loss bce').")
    if lo.outputs is not None and net.output.name not in lo.outputs:
        dflt = "" if output is not None else f" (the default for {sizes[-1]} output{'s' if sizes[-1] > 1 else ''})"
        raise ValueError(
            f"The '--output' option must be {' or '.join(lo.outputs)} for {how}; got {out_act!r}{dflt}."
        )
    if lo.name == "bce" and sizes[-1] != 1:
        raise ValueError(
            f"The '--layers' option must end with 1 output for {how} on the class labels of {dataset!r}; "
            f"got {sizes[-1]} (for {sizes[-1]} outputs use '--output linear' with '--loss ce')."
        )

    callbacks = []
    if watch_every is not None:
        from initlab.diagnostics import Probe

        callbacks.append(Probe(every=watch_every))
    hist = net.fit(
        X, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, loss=lo,
        X_val=Xt if len(Xt) else None, y_val=yt if len(Xt) else None,
        progress=False if no_progress else None, callbacks=callbacks,
    )
    watched = callbacks[0].watch if callbacks else None
    if hist.interrupted:  # Ctrl-C: say where it stopped and what it had, exit 130 (128 + SIGINT)
        import sys

        last = hist.last_loss
        loss_txt = f"{last:.4f}" if last is not None else "none (no step finished)"
        print(f"interrupted at epoch {(hist.interrupted_epoch or 0) + 1}/{epochs} (step {hist.interrupted_step}), "
              f"loss {loss_txt}", file=sys.stderr)
        if save_watch_path is not None and watched is not None and watched.steps:  # what was watched is kept
            write_file(save_watch_path, "--save-watch", lambda tmp: watched.save(tmp))
            print(f"watch of the steps before the interrupt saved to {save_watch_path}", file=sys.stderr)
        raise SystemExit(130)  # not typer.Exit: main() would add its own "interrupted" line
    tr = net.evaluate(X, y, lo)
    te = net.evaluate(Xt, yt, lo) if len(Xt) else {"loss": float("nan"), "accuracy": float("nan")}
    result = {
        "dataset": dataset, "layers": sizes, "activation": activation, "output": out_act, "init": init,
        "bias_init": bias_init, "optimizer": optimizer, "loss": hist.loss, "lr": lr, "epochs": epochs,
        "epochs_run": hist.epochs_run, "batch_size": batch_size, "seed": seed, "dtype": dtype,
        "n_train": len(X), "n_test": len(Xt),
        "train_loss": tr["loss"], "test_loss": te["loss"],
        "train_accuracy": tr["accuracy"], "test_accuracy": te["accuracy"],
        "diverged": hist.diverged, "diverged_step": hist.diverged_step,
        "train_seconds": hist.train_seconds, "history": hist.epoch_loss,
    }
    if plot_path is not None:
        from initlab._mpl import pyplot

        plt = pyplot()

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(np.arange(1, len(hist.epoch_loss) + 1), hist.epoch_loss)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"training cost ({hist.loss})")
        ax.set_title(f"{dataset} {layers} {activation}, init {init}, lr {lr}")
        fig.tight_layout()
        try:
            write_file(plot_path, "--plot", lambda tmp: fig.savefig(tmp, format="png"))
        finally:
            plt.close(fig)
        result["plot"] = str(plot_path)
    if watched is not None:
        if watch_path is not None:
            write_file(watch_path, "--plot-watch", lambda tmp: watched.plot(tmp))
            result["plot_watch"] = str(watch_path)
        if save_watch_path is not None:
            write_file(save_watch_path, "--save-watch", lambda tmp: watched.save(tmp))
            result["save_watch"] = str(save_watch_path)
        result["watch"] = watched.to_dict()
    if json_out:
        emit_json(result)
        return
    from initlab.cli._common import console

    c = console()
    status = f"diverged at step {hist.diverged_step}" if hist.diverged else "ok"
    c.print(f"{dataset} {layers} {activation}/{out_act} init={init} {optimizer} lr={lr}: {hist.epochs_run} epochs in {hist.train_seconds:.2f} s ({status})")
    def _loss(v: float) -> str:
        if np.isfinite(v):
            return f"{v:.4f}"
        return f"not finite (diverged at step {hist.diverged_step})" if hist.diverged else "not finite"

    c.print(f"train loss {_loss(tr['loss'])}  accuracy {100 * tr['accuracy']:.1f}%")
    c.print(f"test  loss {_loss(te['loss'])}  accuracy {100 * te['accuracy']:.1f}%")
    if hist.diverged:
        c.print(f"the run diverged at step {hist.diverged_step} (epoch {hist.diverged_epoch + 1}): the loss stopped being "
                "finite; try a smaller --lr or a smaller --init scale")
    if plot_path is not None:
        c.print(f"figure written to {plot_path}")
    if watched is not None:
        c.print(f"watched every {watched.every} steps ({len(watched.steps)} recorded):", markup=False)
        for v in watched.verdicts:
            c.print(f"! {v}", markup=False)
        if not watched.verdicts:
            c.print("no problem seen at any recorded step", markup=False)
        if watch_path is not None:
            c.print(f"watch figure written to {watch_path}", markup=False)
        if save_watch_path is not None:
            c.print(f"watch saved to {save_watch_path} (initlab watch-report {save_watch_path} --out DIR, or "
                    f"initlab explore --watch {save_watch_path} --out DIR)", markup=False)
