"""The HTML page of the report: one jinja2 template (``templates/index.html``) with autoescape on.

Every string that reaches the page goes through jinja2's HTML escaping (no ``|safe`` anywhere);
numbers are formatted here, in Python, by :func:`format_cell`. The page needs nothing from the
network: CSS is inline, figures are PNG files beside it referenced by relative paths.

>>> format_cell(0.00400123, None)
'0.004001'
>>> format_cell(0.5, ".1%")
'50.0%'
>>> format_cell(None, None)
'—'
"""

from __future__ import annotations

import json
import math
from typing import Any

from initlab._json import to_jsonable
from initlab.report.plots import COLUMN_PX
from initlab.studies._result import StudyResult

__all__ = ["render_page", "format_cell", "python_call", "collect_fixes"]


def format_cell(value: Any, spec: str | None) -> str:
    """A table cell as text: ``spec`` (a format spec) if given, else 4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
        if not math.isfinite(x):
            return str(x)
        if spec:
            return format(value, spec)
        if isinstance(value, int):
            return str(value)
        if x == 0:
            return "0"
        if abs(x) >= 1e5 or abs(x) < 1e-4:
            return f"{x:.3e}"
        return f"{x:.4g}" if abs(x) >= 1 else f"{x:.4g}"
    return str(value)


def python_call(r: StudyResult) -> str:
    """The Python call that reruns a study with its configuration (:func:`initlab.studies.run`).

    >>> python_call(StudyResult("seed001", "T", config={"seed": 0, "quick": False}))
    "initlab.studies.run('seed001', quick=False, seed=0)"
    """
    cfg = r.config or {}
    args = [repr(r.study), f"quick={bool(cfg.get('quick', False))!r}", f"seed={int(cfg.get('seed', 0))!r}"]
    if r.study == "seed002" and cfg.get("mnist"):
        args.append(f"mnist={cfg['mnist']!r}")
    return f"initlab.studies.run({', '.join(args)})"


def _table_view(t: Any) -> dict[str, Any]:
    formats = list(t.formats or [])
    formats += [None] * (len(t.columns) - len(formats))
    cells = [[format_cell(v, formats[i] if i < len(formats) else None) for i, v in enumerate(row)] for row in t.rows]
    text_cols = {i for i in range(len(t.columns)) if t.rows and all(isinstance(row[i], str) for row in t.rows if i < len(row))}
    return {"name": t.name, "title": t.title, "columns": t.columns, "cells": cells, "note": t.note,
            "text_columns": text_cols}


def _figure_view(r: StudyResult, f: Any, figure_files: dict[tuple[str, str], str],
                 figure_errors: dict[tuple[str, str], str]) -> dict[str, Any]:
    return {"name": f.name, "title": f.title, "caption": f.caption,
            "file": figure_files.get((r.study, f.name)), "error": figure_errors.get((r.study, f.name), "")}


def collect_fixes(results: list[StudyResult]) -> list[tuple[str, str]]:
    """Every recommendation of the probe on the page, once: [(activation, recommendation)], in the
    order they first appear.

    >>> collect_fixes([StudyResult("a", "A", fixes={"tanh": "use lecun_normal"}),
    ...                StudyResult("b", "B", fixes={"tanh": "use lecun_normal", "relu": "use kaiming_normal"})])
    [('tanh', 'use lecun_normal'), ('relu', 'use kaiming_normal')]
    """
    seen: dict[str, str] = {}
    for r in results:
        for act, rec in (r.fixes or {}).items():
            seen.setdefault(act, rec)
    return list(seen.items())


def render_page(
    results: list[StudyResult],
    *,
    provenance: dict[str, Any],
    figure_files: dict[tuple[str, str], str],
    figure_errors: dict[tuple[str, str], str],
    quick: bool,
    seed: int,
    full_command: str,
    explore_href: str | None = None,
    page: dict[str, str] | None = None,
) -> str:
    """The HTML text of index.html.

    ``figure_files`` maps ``(study, figure name)`` to the PNG's relative path; ``figure_errors``
    to the error of a figure that could not be drawn; ``explore_href`` is the relative link to the
    explorer page when one was written beside the report. ``page`` overrides the page's frame for
    another kind of page on the same template (``initlab watch-report``): ``kind`` (not "report":
    no seed line, no explorer link), ``title``, ``heading``, ``summary_heading``, ``subtitle`` and
    ``python_code`` (the rerun code shown instead of the study call).

    Layout (one registration per study: any :class:`StudyResult` renders the same way): the study's
    one-sentence ``takeaway``, its ``headline`` figure at column width, a short ``verdict``; then
    collapsible sections for the other figures, the explanation, the tables, the probe's findings
    and the corrections. Each recommendation of the probe is stated once, for the whole page.
    """
    from importlib import resources

    import jinja2

    template_text = resources.files("initlab.report").joinpath("templates/index.html").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = env.from_string(template_text)
    views = []
    for r in results:
        figures = [_figure_view(r, f, figure_files, figure_errors) for f in r.figures]
        headline = next((f for f in figures if f["name"] == r.headline), figures[0] if figures else None)
        views.append({
            "takeaway": r.takeaway or r.summary,
            "headline": headline,
            "more_figures": [f for f in figures if headline is None or f["name"] != headline["name"]],
            "study": r.study,
            "title": r.title,
            "status": r.status,
            "error": r.error,
            "seconds": r.seconds,
            "summary": r.summary,
            "verdict": r.verdict,
            "explanation": r.explanation,
            "corrections": r.corrections,
            "command": r.command,
            "python_call": python_call(r),
            "config_text": json.dumps(to_jsonable(r.config), indent=2),  # what to_dict() writes, without its figures
            "tables": [_table_view(t) for t in r.tables if t.name != "probe"],
            "probe_tables": [_table_view(t) for t in r.tables if t.name == "probe"],
        })
    frame = {"kind": "report", "title": "initlab report",
             "heading": "Weight initialization, seen",
             "summary_heading": "What each study teaches", "subtitle": "", "python_code": ""}
    frame.update(page or {})
    return template.render(
        page=frame,
        results=views,
        provenance=provenance,
        quick=quick,
        seed=seed,
        n_ok=sum(r.ok for r in results),
        full_command=full_command,
        fixes=collect_fixes(results),
        column_px=COLUMN_PX,
        explore_href=explore_href,
    )
