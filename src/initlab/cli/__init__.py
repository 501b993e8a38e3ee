"""The ``initlab`` command: one verb per job.

Each verb lives in its own module of this package (``inits``, ``train``, ``probe``, ``theory``,
``report``) and registers itself on :data:`app`. Verbs import numpy-heavy or torch code inside
their bodies so that ``initlab --help`` starts fast. Bad input exits with status 2 and one line
on stderr, never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Optional

import typer

from initlab import __version__

app = typer.Typer(
    name="initlab",
    help="Choose, apply, diagnose and verify neural-network weight initialization.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"initlab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """initlab: exact initializers, a NumPy engine, signal diagnostics with theory, and a report."""


_VERBS = ("inits", "train", "probe", "theory", "report", "explore", "sweep", "coord", "watch_report")
for _verb in _VERBS:
    if importlib.util.find_spec(f"initlab.cli.{_verb}") is not None:
        importlib.import_module(f"initlab.cli.{_verb}")


def fail(message: str) -> "typer.Exit":
    """Print ``initlab: error: <message>`` (one line) on stderr; return an Exit(2) to raise."""
    one_line = " ".join(str(message).split())
    typer.echo(f"initlab: error: {one_line}", err=True)
    return typer.Exit(2)


def _click_exceptions() -> tuple[type[BaseException], type[BaseException]]:
    """(ClickException, Abort) from typer's vendored click (typer >= 0.20) or from click."""
    try:
        from typer._click.exceptions import ClickException
        from typer.exceptions import Abort
    except ImportError:  # older typer on top of click
        from click.exceptions import Abort, ClickException  # type: ignore[no-redef]
    return ClickException, Abort


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point of the ``initlab`` console script.

    Run as the console script (``argv`` None), the process ends right after the verb, so the
    objects alive then are frozen (``gc.freeze``) on the way out: the interpreter's final garbage
    collections then skip them (0.3-0.4 s at the end of a report, whose process holds matplotlib,
    scipy and the studies' modules); the memory goes back to the system when the process ends, and
    ``atexit`` handlers still run.
    Called with ``argv`` (from a test or another program), nothing is frozen."""
    try:
        _main(argv)
    finally:
        if argv is None:
            import gc

            gc.freeze()


def _main(argv: Optional[list[str]]) -> None:
    click_exception, abort = _click_exceptions()
    try:
        rv = app(args=argv, prog_name="initlab", standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except abort:
        typer.echo("initlab: aborted", err=True)
        sys.exit(130)
    except click_exception as e:  # usage errors: unknown option, bad value, missing argument
        fail(e.format_message())  # type: ignore[attr-defined]
        sys.exit(2)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError) as e:
        fail(str(e))
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("initlab: interrupted", err=True)
        sys.exit(130)
    if rv == 130:  # typer turns a KeyboardInterrupt (Ctrl-C) into the return value 130
        typer.echo("initlab: interrupted", err=True)
    sys.exit(rv if isinstance(rv, int) else 0)
