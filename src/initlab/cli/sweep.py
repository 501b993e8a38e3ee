"""``initlab sweep {run,show,plot,export}``: trainability sweeps into an SQLite store.

Heavy imports (numpy, matplotlib, ray, pyarrow) happen inside the commands.
"""

from __future__ import annotations

import time
from typing import Any, List, Optional

import typer

from initlab.cli import app

sweep_app = typer.Typer(
    name="sweep",
    help="Trainability sweeps: many short trainings over a grid (serial, process pool or Ray), stored in SQLite.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(sweep_app, name="sweep")

_NAMES = {"executor": "--executor", "workers": "--workers", "stack": "--stack", "out": "--out", "x": "--x", "y": "--y",
          "metric": "--metric"}


def _progress_bar() -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
        TextColumn("{task.fields[rate]} cells/s"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )
    state: dict[str, Any] = {"task": None, "t0": None, "start_done": 0}

    def update(new: int, done: int, total: int) -> None:
        if state["task"] is None:
            state["t0"], state["start_done"] = time.perf_counter(), done
            state["task"] = prog.add_task("sweep", total=total, completed=done, rate="-")
            return
        dt = time.perf_counter() - state["t0"]
        rate = (done - state["start_done"]) / dt if dt > 0 else 0.0
        prog.update(state["task"], completed=done, rate=f"{rate:.2f}")

    return prog, update


def _parse_where(items: Optional[List[str]]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"The '--where' option must look like key=value (e.g. sigma_b2=0.05); got {it!r}.")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


@sweep_app.command("run")
def run_cmd(
    spec: str = typer.Argument(..., help="The sweep spec, a TOML file ([model], [grid], [train])."),
    store: str = typer.Option(..., "--store", help="SQLite file for the results; rerun with it to resume."),
    executor: str = typer.Option("process", "--executor", help="serial, process (local pool) or ray."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes / Ray CPUs (default: this machine's cores)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)."),
    stack: int = typer.Option(16, "--stack", help="Networks trained together in one stacked computation (at most)."),
    mnist: Optional[str] = typer.Option(None, "--mnist", help="Folder with the MNIST files (dataset = \"mnist\")."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout (no progress bar)."),
) -> None:
    """Run or resume a sweep: only the cells missing from the store are computed."""
    from initlab.cli._common import emit_json, option_names
    from initlab.sweep import load_spec, run_sweep

    with option_names(_NAMES):
        sp = load_spec(spec, mnist_dir=mnist)
        prog, update = (None, None) if as_json else _progress_bar()
        if prog is not None:
            prog.start()
        try:
            res = run_sweep(sp, store, executor=executor, workers=workers, ray_address=ray_address, stack=stack,
                            progress=update)
        except RuntimeError as e:
            if prog is not None:
                prog.stop()
            typer.echo(f"initlab: error: {' '.join(str(e).split())[:2000]}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            # the workers are stopped by run_sweep; every finished cell is in the store
            if prog is not None:
                prog.stop()
            typer.echo(f"initlab: interrupted; finished cells are in {store}: rerun the same command to resume", err=True)
            raise SystemExit(130) from None  # not typer.Exit: main() would add a second "interrupted" line
        if prog is not None:
            prog.stop()
    if as_json:
        emit_json(res.to_dict())
        return
    typer.echo(
        f"{res.cells} cells in {res.store}: {res.computed} computed now ({res.executor}, {res.workers} worker(s)), "
        f"{res.already_done} already there; {res.seconds:.1f} s"
    )


@sweep_app.command("show")
def show_cmd(
    store: str = typer.Argument(..., help="The sweep's SQLite store."),
    as_json: bool = typer.Option(False, "--json", help='Print {"spec": ..., "rows": [...]} as strict JSON.'),
) -> None:
    """The stored cells: config and results (train/test accuracy and loss, diverged, xi_c, chi1, seconds)."""
    from initlab.cli._common import console, emit_json
    from initlab.sweep import SweepStore

    with SweepStore.read(store) as st:
        spec, rows, n = st.spec, st.rows(), st.spec.n_cells
    if as_json:
        emit_json({"spec": spec.to_dict(), "cells": n, "rows": rows})
        return
    from rich.table import Table

    axes = list(spec.axes)
    t = Table(title=f"{spec.name}: {len(rows)} of {n} cells done")
    cols = [*axes, "train_accuracy", "test_accuracy", "train_loss", "diverged", "chi1", "xi_c", "seconds"]
    for c in cols:
        t.add_column(c, justify="right")

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    for r in rows:
        t.add_row(*(fmt(r.get(c)) for c in cols))
    console().print(t)


@sweep_app.command("plot")
def plot_cmd(
    store: str = typer.Argument(..., help="The sweep's SQLite store."),
    x: str = typer.Option("sigma_w2", "--x", help="Column on the x axis."),
    y: str = typer.Option("depth", "--y", help="Column on the y axis."),
    metric: str = typer.Option("train_accuracy", "--metric", help="Column shown as color (mean over seeds)."),
    out: str = typer.Option("heat.png", "--out", help="PNG file to write."),
    where: Optional[List[str]] = typer.Option(None, "--where", help="Keep cells with key=value (repeatable) when other axes vary."),
    as_json: bool = typer.Option(False, "--json", help="Print the plotted data as JSON."),
) -> None:
    """Heat map of a metric over two axes, with the critical line (chi1 = 1) and c*xi_c curves."""
    from initlab.cli._common import emit_json, option_names
    from initlab.sweep import SweepStore
    from initlab.sweep.plot import heatmap_data, render

    with option_names(_NAMES):
        with SweepStore.read(store) as st:
            rows = st.rows()
        data = heatmap_data(rows, x=x, y=y, metric=metric, where=_parse_where(where))
        path = render(data, out)
    if as_json:
        emit_json({"out": str(path), **data})
        return
    typer.echo(f"heat map of {metric} ({data['n_cells']} cells) written to {path}")


@sweep_app.command("export")
def export_cmd(
    store: str = typer.Argument(..., help="The sweep's SQLite store."),
    out: str = typer.Option(..., "--out", help="Output file: .csv, or .parquet (needs pyarrow)."),
) -> None:
    """Export the stored cells, one row per cell, to CSV or Parquet."""
    from initlab.cli._common import option_names
    from initlab.sweep import SweepStore, export

    with option_names(_NAMES):
        with SweepStore.read(store) as st:
            path = export(st, out)
            n = st.count()
    typer.echo(f"{n} rows written to {path}")
