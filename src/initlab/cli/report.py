"""``initlab report``: the main job — every seed experiment into one HTML report."""

from __future__ import annotations

from typing import Optional

import typer

from initlab.cli import app


@app.command()
def report(
    out: str = typer.Option("report", "--out", help="Folder for index.html, results.json and the PNG figures."),
    quick: bool = typer.Option(False, "--quick", help="Smaller sizes and fewer epochs (labelled on the page)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every study's randomness."),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated studies, any of: seed000, seed001, seed002, seed003, trainability, cnn, watch."),
    mnist: Optional[str] = typer.Option(None, "--mnist", help="Folder with MNIST files for seed 002 (else digits and MNIST-1D)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Worker processes (default: up to 2); 1 runs in this process."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout (no progress bar)."),
    explore: bool = typer.Option(True, "--explore/--no-explore", help="Also write the interactive explorer into OUT/explore."),
) -> None:
    """Run the seed studies and write the report (atomically: a previous report is replaced only when done)."""
    import shlex
    import sys

    from initlab.cli._common import emit_json, option_names, output_folder
    from initlab.report import build

    output_folder(out, "--out")  # the output-path rule: only the report folder itself is created
    names = {"out_dir": "--out", "seed": "--seed", "study": "--only", "only": "--only", "mnist": "--mnist", "jobs": "--jobs"}
    with option_names(names):
        summary = build(out, quick=quick, seed=seed, only=only, mnist=mnist, progress=not as_json, jobs=jobs,
                        command=shlex.join(["initlab", *sys.argv[1:]]), explore=explore)
    if as_json:
        emit_json(summary.to_dict())
        return
    for r in summary.results:
        status = "ok" if r.ok else f"FAILED ({r.error})"
        typer.echo(f"{r.study}: {status} in {r.seconds:.1f} s")
    typer.echo(f"report written to {summary.index} in {summary.seconds:.1f} s")
    if summary.failed:
        raise typer.Exit(1)
