"""``initlab inits``, ``initlab sample`` and ``initlab gain``: the initializer library from the shell.

numpy and initlab.init are imported inside the commands so that ``initlab --help`` starts fast;
torch is never needed.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional

import typer

from initlab.cli import app
from initlab.cli._common import emit_json, option_names, parse_shape


def _console() -> Any:
    """A rich console; wide when stdout is not a terminal, so tables are not folded."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.5g}" if isinstance(x, float) else str(x)


@app.command("inits")
def inits_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print strict JSON."),
) -> None:
    """List every initialization scheme: name, aliases, distribution, variance, paper."""
    from initlab.init import registry

    entries = [info.to_dict() for info in registry().values()]
    if json_out:
        emit_json({"schemes": entries})
        return
    from rich.table import Table

    table = Table(title="initlab initializers (Var = variance per weight; v = target variance)")
    for col in ("name", "aliases", "parameters", "distribution", "variance", "paper"):
        table.add_column(col, overflow="fold")
    for e in entries:
        paper = e["paper"]
        ref = "" if paper is None else f"{paper['authors'].split(',')[0].split()[-1]} et al. {paper['year']}"
        params = ", ".join(f"{k}={v}" for k, v in e["params"].items())
        table.add_row(*(_esc(c) for c in (e["name"], ", ".join(e["aliases"]), params, e["distribution"],
                                           e["variance"], ref)))
    _console().print(table)


@app.command("sample")
def sample_cmd(
    specs: List[str] = typer.Argument(..., metavar="SPEC...", help='Init specs, e.g. "kaiming_normal(mode=fan_out, a=0.3)".'),
    shape: str = typer.Option("300x500", "--shape", help="Weight shape, e.g. 300x500 or 64x3x3x3."),
    layout: str = typer.Option("torch", "--layout", help="torch ([out, in, *k]), keras or jax ([*k, in, out])."),
    transposed: bool = typer.Option(False, "--transposed", help="Weight of a transposed convolution."),
    dtype: str = typer.Option("float32", "--dtype", help="float16, float32, float64, complex64, complex128."),
    seed: int = typer.Option(0, "--seed", help="Random seed (each spec gets the same seed)."),
    save: Optional[str] = typer.Option(None, "--save", help="Save the array to this .npy file (one SPEC only)."),
    json_out: bool = typer.Option(False, "--json", help="Print strict JSON."),
) -> None:
    """Draw weights and print measured mean/var/min/max beside the theoretical mean/var/bounds."""
    import numpy as np

    from initlab.init import compute_fans, get

    from initlab._validation import check_memory
    from initlab.cli._common import output_file, write_file

    dims = parse_shape(shape)
    if save is not None and len(specs) != 1:
        raise ValueError(f"The '--save' option needs exactly one SPEC; got {len(specs)}.")
    save_path = None if save is None else output_file(save, "--save", ".npy")
    if seed < 0:
        raise ValueError(f"The '--seed' option must be a non-negative int; got {seed}.")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None  # the initializer names the option and the allowed dtypes below
    if dt is not None:
        # the array, plus the float64 (complex128) copies the statistics take
        wide = 16 if dt.kind == "c" else 8
        check_memory("--shape", math.prod(dims) * (dt.itemsize + 3 * wide), f"{'x'.join(map(str, dims))} {dt.name} weights")
    try:
        fans: Any = compute_fans(dims, layout=layout, transposed=transposed)
    except ValueError:
        fans = None
    rows = []
    for text in specs:
        init = get(text)
        with option_names({"dtype": "--dtype", "layout": "--layout", "shape": "--shape"}):
            w = init(dims, rng=seed, dtype=dtype, layout=layout, transposed=transposed)
        theo = init.moments(dims, layout=layout, transposed=transposed)
        if w.size:
            w64 = w.astype(np.complex128 if w.dtype.kind == "c" else np.float64)
            mean = complex(w64.mean())
            measured = {
                "mean": mean.real,
                "var": float(np.mean(np.abs(w64 - mean) ** 2)),
                "min": float(w64.real.min()) if w.dtype.kind != "c" else None,
                "max": float(w64.real.max()) if w.dtype.kind != "c" else None,
            }
            if w.dtype.kind == "c":
                measured["mean_imag"] = mean.imag
                measured["max_abs"] = float(np.abs(w64).max())
        else:
            measured = {"mean": None, "var": None, "min": None, "max": None}
        rows.append({"spec": str(init.spec), "scheme": init.name, "measured": measured, "theory": theo})
        if save_path is not None:
            write_file(save_path, "--save", lambda tmp: np.save(tmp, w))
    out = {"shape": list(dims), "layout": layout, "transposed": transposed, "dtype": str(np.dtype(dtype)),
           "seed": seed, "fans": None if fans is None else {"fan_in": fans[0], "fan_out": fans[1]},
           "results": rows}
    if save_path is not None:
        out["saved"] = str(save_path)
    if json_out:
        emit_json(out)
        return
    from rich.table import Table

    fan_txt = "" if fans is None else f", fan_in={fans[0]}, fan_out={fans[1]}"
    table = Table(title=f"shape {'x'.join(map(str, dims))} ({layout}{', transposed' if transposed else ''}"
                        f"{fan_txt}), {np.dtype(dtype).name}, seed {seed}")
    for col in ("spec", "mean", "mean (theory)", "var", "var (theory)", "min", "max", "bounds (theory)"):
        table.add_column(col, justify="left" if col == "spec" else "right", overflow="fold")
    for r in rows:
        m, t = r["measured"], r["theory"]
        bounds = "unbounded" if t["low"] is None and t["high"] is None else f"[{_fmt(t['low'])}, {_fmt(t['high'])}]"
        table.add_row(_esc(r["spec"]), _fmt(m["mean"]), _fmt(t["mean"]), _fmt(m["var"]), _fmt(t["var"]),
                      _fmt(m["min"]), _fmt(m["max"]), bounds)
    _console().print(table)
    if save_path is not None:
        typer.echo(f"saved {save_path}")


@app.command("gain")
def gain_cmd(
    activation: str = typer.Argument(..., help="Activation: tanh, relu, leaky_relu, gelu, silu, elu, selu, ..."),
    param: Optional[float] = typer.Option(None, "--param", help="Parameter (leaky_relu slope, elu alpha)."),
    method: str = typer.Option("both", "--method", help="second_moment, critical or both."),
    json_out: bool = typer.Option(False, "--json", help="Print strict JSON (keys torch, second_moment, critical)."),
) -> None:
    """torch's gain (if torch has one) beside initlab's second_moment and critical gains."""
    from initlab import activations
    from initlab._validation import check_choice
    from initlab.init import calculate_gain, gain

    from initlab.cli._common import PARAM_OPTIONS

    check_choice("--method", method, ("second_moment", "critical", "both"))
    with option_names(PARAM_OPTIONS):
        act = activations.get(activation, param)
    torch_gain = None
    if act.torch_nonlinearity is not None:
        torch_gain = calculate_gain(act.torch_nonlinearity, act.param if act.name == "leaky_relu" else None)
    sm = gain(act, "second_moment") if method in ("second_moment", "both") else None
    cr, note = None, None
    if method in ("critical", "both"):
        try:
            cr = gain(act, "critical")
        except ValueError as e:  # the theory finds no edge of chaos for this activation
            if method == "critical":
                raise
            note = str(e)
    out = {"activation": act.spec, "torch": torch_gain, "second_moment": sm, "critical": cr}
    if note is not None:
        out["critical_note"] = note
    if json_out:
        emit_json(out)
        return
    from rich.table import Table

    table = Table(title=_esc(f"gain for {act.spec}"))
    table.add_column("criterion")
    table.add_column("gain", justify="right")
    table.add_column("meaning")
    table.add_row("torch", "none (torch has no gain for it)" if torch_gain is None else _fmt(float(torch_gain)),
                  "torch.nn.init.calculate_gain (partly heuristic)")
    if sm is not None:
        table.add_row("second_moment", _fmt(sm), _esc("1/sqrt(E[phi(z)^2]), z~N(0,1): keeps Var(preact) = 1"))
    if cr is not None:
        table.add_row("critical", _fmt(cr), "sqrt(sigma_w^2*) at sigma_b^2 = 0: chi_1 = 1 (edge of chaos)")
    elif note is not None:
        table.add_row("critical", "none", _esc(note))
    _console().print(table)
