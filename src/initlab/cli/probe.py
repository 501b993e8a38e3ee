"""``initlab probe``: per-layer signal statistics of a network at initialization, with theory and verdicts."""

from __future__ import annotations

from typing import Any, Optional

import typer

from initlab.cli import app

_INPUTS = ("gaussian", "moons", "digits")


def _load_model(target: str) -> Any:
    """Import ``package.module:factory`` or ``path/to/file.py:factory`` and call the factory (it
    must return a torch.nn.Module)."""
    from initlab.cli._common import load_callable

    factory = load_callable(target, "--model")
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


_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")


def _rows_of(arr: Any, batch: int, path: str, what: str) -> Any:
    """The first ``batch`` rows of one array/tensor from an --input file, checked."""
    import numpy as np

    shape = tuple(arr.shape)
    if len(shape) < 1 or shape[0] == 0 or int(np.prod(shape)) == 0:
        raise ValueError(f"The '--input' file {path!r} must hold at least one sample (a non-empty array [n, ...]{what}); "
                         f"got shape {shape}.")
    return arr[:batch]


def _load_file(path: str, batch: int) -> Any:
    """The first ``batch`` rows of the input(s) in a .npy file (one array) or a .pt file (a tensor, a
    tuple/list of tensors = positional inputs, or a dict = keyword inputs). dtypes are kept (token
    ids stay integers); floating values must be finite."""
    import os

    import numpy as np

    if not os.path.isfile(path):
        raise ValueError(f"The '--input' file {path!r} does not exist.")
    if path.endswith(".pt") or path.endswith(".pth"):
        try:
            import torch
        except ImportError:
            raise ValueError("The '--input' option with a .pt file needs torch installed.") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"The '--input' file {path!r} could not be read as a torch file: {e}") from None

        def one(t: Any, what: str) -> Any:
            if isinstance(t, np.ndarray):
                t = torch.from_numpy(t)
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"The '--input' file {path!r} must hold tensors{what}; got {type(t).__name__}.")
            return _rows_of(t, batch, path, what)

        if isinstance(obj, dict):
            x: Any = {str(k): one(v, f" (key {k!r})") for k, v in obj.items()}
        elif isinstance(obj, (tuple, list)):
            x = tuple(one(v, f" (item {i})") for i, v in enumerate(obj))
        else:
            x = one(obj, "")
    else:
        from initlab.cli._common import load_npy

        arr = load_npy(path, "--input")
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"The '--input' file {path!r} must hold one array; got {type(arr).__name__}.")
        if arr.dtype.kind not in "biuf" or arr.ndim < 1:
            raise ValueError(f"The '--input' file {path!r} must hold a real numeric array [n, ...]; "
                             f"got dtype {arr.dtype} with shape {arr.shape}.")
        x = _rows_of(arr, batch, path, "")
    from initlab.diagnostics._torch_state import check_finite_input

    try:
        check_finite_input(x, name="--input")
    except ValueError:
        raise ValueError(f"The '--input' file {path!r} must hold finite values; its first {batch} rows contain "
                         "NaN or inf.") from None
    return x


def _cast(x: Any, dtype: str) -> Any:
    """Cast every array/tensor of ``x`` to ``dtype`` (--input-dtype)."""
    import numpy as np

    def one(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            if dtype == "bfloat16":
                raise ValueError("The '--input-dtype' bfloat16 applies to .pt inputs and torch models only.")
            return v.astype(dtype)
        import torch

        return v.to(getattr(torch, dtype))

    if isinstance(x, dict):
        return {k: one(v) for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(one(v) for v in x)
    return one(x)


def _vocab(net: Any) -> int:
    """Integer inputs are token ids in [0, V): V = the smallest ``num_embeddings`` of the model."""
    import torch

    sizes = [m.num_embeddings for m in net.modules() if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag))]
    if not sizes:
        raise ValueError("The '--input-dtype' option names an integer dtype, which needs a model with an nn.Embedding "
                         "(random token ids in [0, num_embeddings)); give floating inputs or '--input FILE'.")
    return int(min(sizes))


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
    if kind.endswith((".npy", ".pt", ".pth")):
        return _load_file(kind, batch), None
    raise ValueError(f"The '--input' option must be one of {', '.join(_INPUTS)} or a FILE (.npy, .pt); got {kind!r}.")


def _shape_text(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(str(d) for d in s) for s in shapes)


def _available_bytes() -> int | None:
    """Memory available to this process (MemAvailable from /proc/meminfo), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _per_sample_bytes(net: Any, x: Any) -> int:
    """Bytes one sample costs the probe: for a torch model, the sizes of every tensor the forward
    pass makes for 2 samples (a no-grad pass under a counting function mode), per sample, times 3
    (the probe keeps forward values, gradients and statistics copies), plus the input; for a
    Network 4 float64 copies of every layer's width."""
    import numpy as np

    def first_two(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: first_two(w) for k, w in v.items()}
        if isinstance(v, tuple):
            return tuple(first_two(w) for w in v)
        return v[:2] if hasattr(v, "shape") and len(getattr(v, "shape", ())) >= 1 else v

    from initlab.diagnostics._probe_torch import is_torch_module

    if not is_torch_module(net):
        sizes = [layer.n_out for layer in net.layers]
        return int(8 * 4 * (sum(sizes) + net.layers[0].n_in))
    import torch
    from torch.overrides import TorchFunctionMode

    from initlab.diagnostics._torch_state import prepare_inputs, preserved_state

    total = [0]

    class Count(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and getattr(func, "__name__", "") != "__get__":
                total[0] += out.numel() * out.element_size()
            return out

    args, kwargs, b = prepare_inputs(net, first_two(x), name="--input")
    with preserved_state(net), torch.no_grad():
        net.train()
        try:
            with Count():
                net(*args, **kwargs)
        except Exception:  # the probe itself reports a model that rejects its input
            return 0
    nbytes = sum(int(np.asarray(v).nbytes) if not hasattr(v, "element_size") else v.numel() * v.element_size()
                 for v in (*args, *kwargs.values()) if hasattr(v, "shape"))
    return int((3 * total[0] + nbytes) / max(b, 1))


def _check_memory(net: Any, x: Any, batch: int) -> None:
    avail = _available_bytes()
    if avail is None:
        return
    from initlab.diagnostics._probe_torch import is_torch_module

    need = _per_sample_bytes(net, x) * batch
    how = "a forward pass of 2 samples" if is_torch_module(net) else "the layer widths"
    if need > 0.7 * avail:
        raise ValueError(f"The '--batch' option {batch} needs about {need / 2**30:.1f} GiB for the probe "
                         f"(estimated from {how}), more than the {0.7 * avail / 2**30:.1f} GiB "
                         "it may use (70% of the memory available); use a smaller --batch.")


@app.command()
def probe(
    layers: Optional[str] = typer.Option(None, "--layers", help="Layer widths, input first: 2,200,300,400,300,2."),
    activation: str = typer.Option("tanh", "--activation", help="Hidden activation (tanh, relu, leaky_relu(0.2), ...)."),
    init: str = typer.Option("xavier_normal", "--init", help="Weight init spec, e.g. 'kaiming_normal(mode=fan_out)'."),
    output: Optional[str] = typer.Option(None, "--output", help="Activation of the last layer (default linear)."),
    bias: str = typer.Option("zeros", "--bias", help="Bias init spec."),
    model: Optional[str] = typer.Option(None, "--model", help="package.module:factory or path/file.py:factory returning a torch.nn.Module."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Per-sample input shape for --model with gaussian input (3x32x32; 16 for 16 token ids)."),
    input_dtype: Optional[str] = typer.Option(None, "--input-dtype", help="float32 | float64 | int64 | ...: dtype of the input (integer: random token ids in [0, num_embeddings))."),
    input: str = typer.Option("gaussian", "--input", help="gaussian | moons | digits | FILE.npy | FILE.pt (tensor, tuple = positional inputs, dict = keyword inputs)"),
    mode: str = typer.Option("init", "--mode", help="init (training mode, dropout off: BatchNorm on batch statistics) | train | eval"),
    model_output: Optional[str] = typer.Option(None, "--model-output", help="Take the loss over this output only (dict key or tuple index path, e.g. logits or 0)."),
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
    check_choice("--mode", mode, ["init", "train", "eval"])
    if input_dtype is not None:
        check_choice("--input-dtype", input_dtype, _DTYPES)
        if model is None:
            raise ValueError("The '--input-dtype' option applies only to '--model'; got it with '--layers'.")
    if model_output is not None and model is None:
        raise ValueError("The '--model-output' option applies only to '--model'; got it with '--layers'.")
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
            if not dim or any(d == 0 for d in dim):
                raise ValueError(f"The '--input-shape' option must have positive sizes (the shape of one sample); "
                                 f"got {input_shape!r}.")
        elif input_dtype is not None and input_dtype.startswith(("int", "uint")):
            raise ValueError("The '--input-shape' option is needed with an integer '--input-dtype' (token ids per "
                             "sample, e.g. --input-shape 16).")
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
    def make(n: int) -> tuple[Any, Any]:
        if model is not None and input == "gaussian" and input_dtype is not None and input_dtype.startswith(("int", "uint")):
            from initlab._rng import as_generator

            shape = tuple(dim) if isinstance(dim, tuple) else (dim,)
            return as_generator(input_seed).integers(0, _vocab(net), size=(n, *shape)).astype(input_dtype), None
        x, y = _input(input, n, dim, input_seed, loss)
        if input_dtype is not None:
            x = _cast(x, input_dtype)
        elif isinstance(x, np.ndarray) and (model is None or x.dtype.kind == "f"):
            with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: refused below
                x = np.ascontiguousarray(x, dtype=np.float32)
            if not np.all(np.isfinite(x)):
                raise ValueError(f"The '--input' {input!r} must hold finite values within float32's range; its first "
                                 f"{len(x)} rows contain NaN, inf or values beyond float32's range.")
        if model is None and (not isinstance(x, np.ndarray) or x.ndim != 2):
            raise ValueError(f"The '--input' {input!r} must hold one array [n, features] for '--layers'; got "
                             f"{'shape ' + str(x.shape) if isinstance(x, np.ndarray) else type(x).__name__}.")
        if model is None and x.shape[1] != dim:
            raise ValueError(f"The '--input' {input!r} has {x.shape[1]} features but '--layers' starts with {dim}.")
        return x, y

    _check_memory(net, make(min(batch, 2))[0], batch)  # before the batch is drawn: --batch 10**8 is refused
    x, y = make(batch)
    from initlab.diagnostics._probe_torch import ModelInputError

    try:
        result = initlab.probe(net, x, y=y, loss=loss, backward=not no_backward, theory=theory, rng=probe_seed,
                               mode=mode, output=model_output)
    except ModelInputError as e:
        reason = str(e).split("): ", 1)[-1]
        raise ValueError(f"the model rejected an input of shape {_shape_text(e.shapes)}; pass --input-shape/--input "
                         f"({reason})") from None
    if plot_path is not None:
        spp = None
        if model is not None and any(str(s.kind) == "add" for s in result.layers):
            # a residual model: the Signal Propagation Plot (Brock, De & Smith 2021) is its figure
            try:
                spp = initlab.diagnostics.signal_propagation(net, x)
            except ValueError:  # adds, but no residual block found (e.g. a bias added by hand)
                spp = None
        write_file(plot_path, "--plot", result.plot if spp is None else spp.plot)
    if as_json:
        emit_json(result.to_dict())
        return
    import sys

    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 200).print(result)
    if plot_path is not None:
        typer.echo(f"figure written to {plot_path}")
