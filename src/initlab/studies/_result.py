"""What a study returns: numbers, tables, figure specifications and a verdict in plain words.

A study never draws: it returns :class:`FigureSpec` objects (a plot ``kind`` and the data to plot),
and :mod:`initlab.report.plots` turns them into PNG files. So a study is cheap to run in a test,
its result is plain data (``to_dict()`` is strict JSON), and every number a figure shows is in
``results.json`` too.

>>> t = Table("acc", "Accuracy", ["init", "test"], [["he", 0.94]])
>>> r = StudyResult(study="demo", title="Demo", tables=[t], verdict="He learns.")
>>> r.to_dict()["tables"][0]["rows"]
[['he', 0.94]]
>>> r.ok
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from initlab._json import to_jsonable

__all__ = ["Table", "FigureSpec", "StudyResult"]


@dataclass
class Table:
    """A table as shown on the page: ``rows`` hold numbers or strings, one list per row.

    ``formats`` optionally gives a format spec per column (``".4f"``, ``".1%"``); the page uses it,
    the JSON keeps the full-precision numbers.
    """

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    formats: list[str | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))

    def column(self, name: str) -> list[Any]:
        """The values of one column, by header.

        >>> Table("t", "T", ["a", "b"], [[1, 2], [3, 4]]).column("b")
        [2, 4]
        """
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


@dataclass
class FigureSpec:
    """A figure to draw: ``kind`` names a renderer in :mod:`initlab.report.plots`; ``data`` its input.

    ``name`` becomes the PNG file name (``<study>_<name>.png``); ``caption`` says what it shows.
    """

    name: str
    title: str
    kind: str
    data: dict[str, Any]
    caption: str = ""

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass
class StudyResult:
    """The outcome of one study (one seed experiment).

    Attributes:
        study: registry name (``"seed001"``).
        title: a one-line title.
        config: the configuration used (plain data, from the study's config dataclass).
        numbers: every key number (nested dicts of plain values).
        tables, figures: what the page shows.
        takeaway: ONE sentence, the study's message, shown first (and in the summary at the top).
        headline: the name of the figure shown large under the takeaway; the other figures, the
            tables, the corrections and the explanation go into collapsible sections.
        fixes: {activation: the probe's recommendation} for the probe tables (the page states each
            recommendation once; the tables give only the findings).
        summary: one or two sentences for the summary of findings at the top of the page.
        verdict: a short paragraph in plain words: what was found.
        explanation: paragraphs: what the figures and tables show and why.
        corrections: places where the seed's own text or arithmetic is wrong, with the right value.
        command: the exact command that reruns this study.
        status: ``"ok"`` or ``"failed"`` (then ``error`` holds the error).
        seconds: wall time of the study.
    """

    study: str
    title: str
    config: dict[str, Any] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureSpec] = field(default_factory=list)
    summary: str = ""
    takeaway: str = ""
    headline: str = ""
    fixes: dict[str, str] = field(default_factory=dict)
    verdict: str = ""
    explanation: list[str] = field(default_factory=list)
    corrections: list[str] = field(default_factory=list)
    command: str = ""
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def table(self, name: str) -> Table:
        """The table called ``name`` (KeyError naming the tables there are otherwise)."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"study {self.study!r} has no table {name!r}; it has {[t.name for t in self.tables]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "title": self.title,
            "status": self.status,
            "error": self.error,
            "seconds": to_jsonable(self.seconds),
            "command": self.command,
            "config": to_jsonable(self.config),
            "summary": self.summary,
            "takeaway": self.takeaway,
            "headline": self.headline,
            "fixes": dict(self.fixes),
            "verdict": self.verdict,
            "explanation": list(self.explanation),
            "corrections": list(self.corrections),
            "numbers": to_jsonable(self.numbers),
            "tables": [t.to_dict() for t in self.tables],
            "figures": [f.to_dict() for f in self.figures],
        }

    @classmethod
    def failed(cls, study: str, title: str, error: BaseException, *, command: str = "", config: dict[str, Any] | None = None,
               seconds: float = 0.0) -> "StudyResult":
        """A result for a study that raised: status ``failed`` and the error as ``Type: message``."""
        return cls(
            study=study,
            title=title,
            config=dict(config or {}),
            status="failed",
            error=f"{type(error).__name__}: {error}",
            command=command,
            seconds=seconds,
            summary=f"The study failed: {type(error).__name__}: {error}",
        )
