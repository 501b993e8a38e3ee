"""``initlab probe``: per-layer signal statistics of a network at initialization, with theory and verdicts."""

from __future__ import annotations

from typing import Any, Optional

import typer

from initlab.cli import app

_INPUTS = ("gaussian", "moons", "digits")


def _load_model(target: str) -> Any:
    """Import ``package.module:factory`` and call the factory (it must return a torch.nn.Module)."""
    import importlib
    import os
    import sys

    mod_name, sep, attr = target.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"The '--model' option must look like package.module:factory; got {target!r}.")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"The '--model' option names module {mod_name!r}, which cannot be imported: {e}.") from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise ValueError(f"The '--model' option names {attr!r}, which module {mod_name!r} has no callable of.")
    try:
        model = factory()
    except Exception as e:  # the user's code: any failure becomes one line naming the option
        raise ValueError(f"The '--model' factory {target!r} raised {type(e).__name__}: {e}") from None
    try:
        import torch
    except ImportError:
        raise ValueError("The '--model' option needs torch installed (pip install torch).") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"The '--model' factory {target!r} must return a torch.nn.Module; got {type(model).__name__}.")
    return model


def _load_npy(path: str, batch: int) -> Any:
    """The first ``batch`` rows of a real, finite numeric array [n, ...] in a .npy file, as float32."""
    import numpy as np

    from initlab.cli._common import load_npy

    arr = load_npy(path, "--input")
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"The '--input' file {path!r} must hold one array; got {type(arr).__name__}.")
    if arr.dtype.kind not in "biuf" or arr.ndim < 2:
        raise ValueError(f"The '--input' file {path!r} must hold a real numeric array [n, ...]; "
                         f"got dtype {arr.dtype} with shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"The '--input' file {path!r} must hold at least one sample; got shape {arr.shape}.")
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: refused below
        x = arr[:batch].astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"The '--input' file {path!r} must hold finite values; its first {len(x)} rows "
                         "contain NaN or inf (or values beyond float32's range).")
    return x


def _input(kind: str, batch: int, dim: Any, seed: Any, loss: str) -> tuple[Any, Any]:
    """(x, y) for the probe: y are dataset labels for --loss ce, else None (random targets).
    ``seed``: an int, SeedSequence or Generator (initlab._rng)."""
    import math

    import numpy as np

    from initlab import data

    if kind == "gaussian":
        shape = tuple(dim) if isinstance(dim, tuple) else (dim,)
        return data.gaussian(batch, math.prod(shape), rng=seed).reshape(batch, *shape), None
    if kind in ("moons", "digits"):
        if kind == "moons":
            X, y, _, _ = data.moons(batch, 1, 0.2, rng=seed)
        else:
            X, y, Xt, yt = data.digits(rng=seed)
            X, y = np.concatenate([X, Xt])[:batch], np.concatenate([y, yt])[:batch]
        return X, (y if loss == "ce" else None)
    if kind.endswith(".npy"):
        return _load_npy(kind, batch), None
    raise ValueError(f"The '--input' option must be one of {', '.join(_INPUTS)} or a FILE.npy; got {kind!r}.")


@app.command()
def probe(
    layers: Optional[str] = typer.Option(None, "--layers", help="Layer widths, input first: 2,200,300,400,300,2."),
    activation: str = typer.Option("tanh", "--activation", help="Hidden activation (tanh, relu, leaky_relu(0.2), ...)."),
    init: str = typer.Option("xavier_normal", "--init", help="Weight init spec, e.g. 'kaiming_normal(mode=fan_out)'."),
    output: Optional[str] = typer.Option(None, "--output", help="Activation of the last layer (default linear)."),
    bias: str = typer.Option("zeros", "--bias", help="Bias init spec."),
    model: Optional[str] = typer.Option(None, "--model", help="package.module:factory returning a torch.nn.Module."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Per-sample input shape for --model with gaussian input (3x32x32)."),
    input: str = typer.Option("gaussian", "--input", help="gaussian | moons | digits | FILE.npy"),
    batch: int = typer.Option(1000, "--batch", help="Batch size."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights, inputs and random targets."),
    no_backward: bool = typer.Option(False, "--no-backward", help="Forward statistics only."),
    loss: str = typer.Option("mse", "--loss", help="mse | ce | sum: deltas of each sample's own loss; weight gradients of the batch-mean loss."),
    theory: bool = typer.Option(False, "--theory", help="Mean-field prediction beside each layer (plain stacks)."),
    as_json: bool = typer.Option(False, "--json", help="Strict JSON on stdout."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Save the histogram/mean-std/gradient figure to this PNG."),
) -> None:
    """Probe every layer of a network at initialization: statistics, theory and a verdict."""
    from initlab._validation import check_choice, check_int, check_memory
    from initlab.cli._common import as_option, emit_json, option_names, output_file, parse_int_list, parse_shape, write_file

    check_choice("--loss", loss, ["mse", "ce", "sum"])
    batch = check_int("--batch", batch, low=1)
    if seed < 0:
        raise ValueError(f"The '--seed' option must be a non-negative int; got {seed}.")
    if (model is None) == (layers is None):
        raise ValueError("Give exactly one of '--layers' (an initlab Network) and '--model' (a torch factory).")
    if input_shape is not None and (model is None or input != "gaussian"):
        raise ValueError("The '--input-shape' option applies only to '--model' with '--input gaussian'; "
                         f"got it with {'--layers' if model is None else f'--input {input}'}.")
    import numpy as np

    import initlab
    from initlab._rng import child_seeds

    plot_path = None if plot is None else output_file(plot, "--plot", ".png")
    net_seed, input_seed, probe_seed = child_seeds(seed, 3, name="--seed")
    if model is not None:
        net = _load_model(model)
        if input_shape is not None:
            dim: Any = parse_shape(input_shape, name="--input-shape")
        else:
            import torch

            first = next((m for m in net.modules() if isinstance(m, torch.nn.Linear)), None)
            if first is None:
                raise ValueError("The '--input-shape' option is needed for a model that does not start with a Linear layer.")
            dim = first.in_features
    else:
        from initlab import activations as _activations
        from initlab import init as _init
        from initlab.nn import Network

        sizes = parse_int_list(layers or "", name="--layers")
        for opt, act in (("--activation", activation), ("--output", output)):
            if act is not None:  # checked even when the network has no hidden layer to use it
                with option_names({"activation": opt, "name": opt}):
                    _activations.get(act)
        for opt, spec in (("--init", init), ("--bias", bias)):
            with as_option(opt, spec):
                _init.get(spec)
        n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        # weights and their gradients (float32); activations, pre-activations and deltas of the batch
        check_memory("--layers", n_params * 4 * 3 + batch * sum(sizes) * 4 * 6,
                     f"a {layers} network ({n_params:,} parameters) probed on a batch of {batch}")
        net = Network(sizes, activation=activation, output=output, init=init, bias_init=bias, rng=net_seed)
        dim = sizes[0]
    x, y = _input(input, batch, dim, input_seed, loss)
    if model is None and x.shape[1] != dim:
        raise ValueError(f"The '--input' {input!r} has {x.shape[1]} features but '--layers' starts with {dim}.")
    result = initlab.probe(net, np.ascontiguousarray(x), y=y, loss=loss, backward=not no_backward, theory=theory,
                           rng=probe_seed)
    if plot_path is not None:
        write_file(plot_path, "--plot", result.plot)
    if as_json:
        emit_json(result.to_dict())
        return
    import sys

    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 160).print(result)
    if plot_path is not None:
        typer.echo(f"figure written to {plot_path}")
