"""``initlab explore``: the interactive page (activation, init, depth, width, σ_b² → every layer),
and with ``--watch RUN`` the training view of saved watches."""

from __future__ import annotations

from typing import List, Optional

import typer

from initlab.cli import app


def _watch_file(text: str) -> str:
    """The file a ``--watch`` value names: as given, or with ``.json`` added when the name has no
    extension and only that file exists (``initlab train --save-watch RUN`` writes ``RUN.json``)."""
    from pathlib import Path

    p = Path(text).expanduser()
    if not p.exists() and p.suffix == "" and p.with_name(p.name + ".json").is_file():
        return str(p.with_name(p.name + ".json"))
    return str(p)


@app.command()
def explore(
    out: str = typer.Option("explore", "--out", help="Folder for index.html (created; other files in it are kept)."),
    watch: Optional[List[str]] = typer.Option(
        None, "--watch", metavar="RUN",
        help="A saved watch ('initlab train ... --watch every=N --save-watch RUN', Watch.save) to show in a "
             "Training view; repeat for several runs. Alone, the page holds only the training view (seconds); "
             "add --with-grid for the initialization grid too."),
    with_grid: bool = typer.Option(False, "--with-grid",
                                   help="With --watch: also compute the initialization grid (its full CPU time)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed every grid setting's network and inputs derive from "
                                                             "(default 0)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Worker processes (default: up to 2); 1 runs in this process."),
    quick: bool = typer.Option(False, "--quick", help="A smaller grid (depths 5, 10; width 100), labelled on the page."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Write a self-contained, offline page where you pick the activation, init, depth, width and σ_b²
    and see each layer's histogram, std, gradient, the phase diagram and initlab's verdict.

    Every number is computed by initlab's engine and theory while the page is built (a fixed grid of
    settings, embedded in the page), so it opens from file:// with no server and no network.
    With --watch RUN the page shows saved training runs instead (add --with-grid for both): pick the
    run and the layer, move the step slider, and see the layer's histogram, its statistics and the
    loss over the steps, and the verdicts over time.
    """
    from initlab.cli._common import emit_json, option_names

    watches = [_watch_file(w) for w in (watch or [])]
    if with_grid and not watches:
        raise ValueError("The '--with-grid' option adds the grid to a '--watch' page; without '--watch' the page "
                         "is the grid already.")
    if watches and not with_grid:
        given = [o for o, v in (("--seed", seed is not None), ("--jobs", jobs is not None), ("--quick", quick)) if v]
        if given:
            raise ValueError(f"The {given[0]!r} option sets up the grid, which a '--watch' page leaves out; add "
                             "'--with-grid' to compute it too.")
    from initlab.report.explore import build_explorer

    try:
        with option_names({"out_dir": "--out", "seed": "--seed", "jobs": "--jobs", "watches": "--watch"}):
            summary = build_explorer(out, seed=0 if seed is None else seed, jobs=jobs, quick=quick, watches=watches,
                                     grid=with_grid or not watches)
    except FileNotFoundError as e:  # a missing --watch file (option_names rewords ValueError/TypeError only)
        raise FileNotFoundError(str(e).replace("The 'watches' argument", "The '--watch' option")) from None
    if as_json:
        emit_json(summary.to_dict())
        return
    parts = []
    if summary.settings:
        parts.append(f"{summary.settings} settings")
    if summary.watches:
        parts.append(f"{summary.watches} watch{'es' if summary.watches > 1 else ''}")
    typer.echo(f"explorer written to {summary.index} ({summary.bytes / 1e6:.1f} MB, {', '.join(parts)}) "
               f"in {summary.seconds:.1f} s")
    for label in summary.thinned:
        typer.echo(f"note: {label} is thinned for the page (see the note on the page)")
