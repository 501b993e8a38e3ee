"""``initlab watch-report``: a saved watch (``initlab train --watch every=N --save-watch RUN``,
``Watch.save``) as an HTML page."""

from __future__ import annotations

import typer

from initlab.cli import app


@app.command("watch-report")
def watch_report(
    run: str = typer.Argument(..., metavar="RUN", help="A watch file written by 'initlab train --save-watch' or Watch.save (.json)."),
    out: str = typer.Option("watch-report", "--out", help="Folder for index.html, results.json and the PNG figures."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Render a saved watch: each layer's histogram over the steps, mean/std/near-zero, the loss,
    and the verdicts over time with their first step and the fix."""
    import shlex
    import sys
    from pathlib import Path

    from initlab.cli._common import emit_json, option_names, output_folder

    if not Path(run).exists():
        raise ValueError(f"The RUN argument {run!r} does not exist; give a watch file written by "
                         "'initlab train --watch every=N --save-watch RUN' or Watch.save.")
    output_folder(out, "--out")
    from initlab.report.watch import build_watch_report

    with option_names({"out_dir": "--out", "source": "RUN"}):
        summary = build_watch_report(run, out, command=shlex.join(["initlab", *sys.argv[1:]]))
    if as_json:
        emit_json(summary.to_dict())
        return
    for v in summary.verdicts:
        typer.echo(f"! {v['text']}")
    if not summary.verdicts:
        typer.echo("no problem seen at any recorded step")
    typer.echo(f"watch report written to {summary.index} in {summary.seconds:.1f} s")
