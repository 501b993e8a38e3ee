"""The report: every seed study into one self-contained HTML page, its PNG figures and results.json.

:func:`build` runs the studies (:mod:`initlab.studies`), draws their figures (:mod:`.plots`),
renders the page (:mod:`.page`, a jinja2 template with autoescape) and swaps the finished folder
in atomically. The command ``initlab report`` calls it.
"""

from __future__ import annotations

from initlab.report.build import ReportSummary, build, parse_only, rerun_command

__all__ = ["build", "ReportSummary", "parse_only", "rerun_command"]
