"""``initlab coord-check``: each layer's activation size against width over the first training steps."""

from __future__ import annotations

from typing import Any, Optional

import typer

from initlab.cli import app


@app.command("coord-check")
def coord_check_cmd(
    model: str = typer.Option("mlp:standard", "--model", help="mlp:standard | mlp:mup (built-in ReLU MLPs), or "
                              "package.module:factory / file.py:factory taking the width and returning a torch.nn.Module."),
    widths: str = typer.Option("64,128,256,512,1024", "--widths", help="Widths to train, increasing: 64,128,256,512,1024."),
    steps: int = typer.Option(3, "--steps", help="Forward passes recorded per width (step 0 = at initialization)."),
    optimizer: str = typer.Option("adam", "--optimizer", help="adam | sgd."),
    lr: float = typer.Option(1e-2, "--lr", help="Learning rate (> 0)."),
    batch: int = typer.Option(64, "--batch", help="Batch size of the N(0, 1) inputs."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Per-sample input shape (16, or 3x32x32); "
                                              "default: the first Linear's in_features."),
    seed: int = typer.Option(0, "--seed", help="Seed of the inputs, targets and weights."),
    as_json: bool = typer.Option(False, "--json", help="Strict JSON on stdout."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Save the coordinate-check figure (PNG)."),
) -> None:
    """Train a model family at several widths for a few steps and check each layer's mean |x| is flat in the width."""
    from initlab._validation import check_choice, check_int, check_number
    from initlab.cli._common import emit_json, load_callable, option_names, output_file, parse_int_list, parse_shape, write_file

    opts = ("--steps", "--optimizer", "--lr", "--batch", "--seed")
    with option_names({o: o for o in opts}):
        steps = check_int("--steps", steps, low=1)
        check_choice("--optimizer", optimizer, ["adam", "sgd"])
        lr = check_number("--lr", lr, low=0.0, low_open=True)
        batch = check_int("--batch", batch, low=1)
        seed = check_int("--seed", seed, low=0)
    ws = parse_int_list(widths, name="--widths")
    if sorted(set(ws)) != ws:
        raise ValueError(f"The '--widths' option must be increasing distinct widths; got {widths!r}.")
    shape = parse_shape(input_shape, name="--input-shape") if input_shape is not None else None
    if shape is not None and (not shape or any(d <= 0 for d in shape)):
        raise ValueError(f"The '--input-shape' option must be positive sizes like 16 or 3x32x32; got {input_shape!r}.")
    plot_path = None if plot is None else output_file(plot, "--plot", ".png")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ValueError("initlab coord-check needs torch (pip install torch==2.13.0).") from None
    from initlab.diagnostics._coord import PARAMETRIZATIONS, coord_check, mlp_family

    if model.startswith("mlp:"):
        param = model.split(":", 1)[1]
        if param not in PARAMETRIZATIONS:
            raise ValueError(f"The '--model' option's built-in family must be one of "
                             f"{', '.join('mlp:' + p for p in PARAMETRIZATIONS)}; got {model!r}.")
        if shape is not None and len(shape) != 1:
            raise ValueError(f"The '--input-shape' option must be one size for the built-in MLP; got {input_shape!r}.")
        factory_w, optim = mlp_family(param, lr=lr, optimizer=optimizer, d_in=16 if shape is None else shape[0])
    else:
        user = load_callable(model, "--model")

        def factory_w(n: int) -> Any:
            try:
                return user(n)
            except Exception as e:  # the user's code: one line naming the option
                raise ValueError(f"The '--model' factory {model!r} raised {type(e).__name__} for width {n}: {e}") from None

        optim = optimizer
    try:
        cc = coord_check(factory_w, ws, steps=steps, optimizer=optim, lr=lr, batch=batch, input_shape=shape, rng=seed)
    except RuntimeError as e:  # a model that rejects the input shape
        one = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"The '--model' rejected an input of shape {(batch, *(shape or ('?',)))}: {one}; "
                         "pass --input-shape") from None
    if plot_path is not None:
        write_file(plot_path, "--plot", cc.plot)
    if as_json:
        emit_json(cc.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"coordinate check: mean |x| per layer ({cc.optimizer}, lr {lr:g}); slope = d log|x| / d log width",
              title_justify="left")
    t.add_column("layer")
    for s in range(cc.steps):
        t.add_column(f"step {s} slope", justify="right")
    t.add_column(f"mean |x| at width {ws[-1]}, last step", justify="right")
    for layer in cc.layers:
        t.add_row(layer, *[f"{cc.slope(layer, s):+.2f}" for s in range(cc.steps)],
                  f"{cc.l1(layer, cc.steps - 1)[-1]:.4g}")
    con = Console(width=160)
    con.print(t)
    con.print(cc.summary())
    if plot_path is not None:
        typer.echo(f"figure written to {plot_path}")
