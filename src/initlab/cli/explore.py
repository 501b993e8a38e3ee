"""``initlab explore``: the interactive page (activation, init, depth, width, σ_b² → every layer)."""

from __future__ import annotations

from typing import Optional

import typer

from initlab.cli import app


@app.command()
def explore(
    out: str = typer.Option("explore", "--out", help="Folder for index.html (created; other files in it are kept)."),
    seed: int = typer.Option(0, "--seed", help="Seed every setting's network and inputs derive from."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Worker processes (default: up to 2); 1 runs in this process."),
    quick: bool = typer.Option(False, "--quick", help="A smaller grid (depths 5, 10; width 100), labelled on the page."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Write a self-contained, offline page where you pick the activation, init, depth, width and σ_b²
    and see each layer's histogram, std, gradient, the phase diagram and initlab's verdict.

    Every number is computed by initlab's engine and theory while the page is built (a fixed grid of
    settings, embedded in the page), so it opens from file:// with no server and no network.
    """
    from initlab.cli._common import emit_json, option_names
    from initlab.report.explore import build_explorer

    with option_names({"out_dir": "--out", "seed": "--seed", "jobs": "--jobs"}):
        summary = build_explorer(out, seed=seed, jobs=jobs, quick=quick)
    if as_json:
        emit_json(summary.to_dict())
        return
    typer.echo(f"explorer written to {summary.index} ({summary.bytes / 1e6:.1f} MB, {summary.settings} settings) "
               f"in {summary.seconds:.1f} s")
