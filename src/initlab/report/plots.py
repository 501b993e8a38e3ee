"""Draw a study's :class:`~initlab.studies.FigureSpec` as a PNG file (matplotlib, Agg backend).

Studies return plot *data*; this module is the only place in the report that draws. Each figure
``kind`` has one renderer:

* ``"histograms"`` — a grid of histogram panels: ``data["rows"]`` is a list of
  ``{"label", "panels": [{"title", "edges", "density", "xlim"?}]}``; optional ``xlabel``.
* ``"curves"`` — one or more line panels: ``data["panels"]`` is a list of
  ``{"title", "xlabel", "ylabel", "logy"?, "series": [{"label", "x", "y", "style"?}]}`` where
  ``style`` is ``"line"`` (default), ``"markers"`` (measured points) or ``"dashed"`` (theory).
* ``"decision"`` — decision regions of 2-D classifiers: ``data["panels"]`` is a list of
  ``{"title", "x_range", "y_range", "grid" (rows of P(class 1)), "points", "labels"}``.

>>> import tempfile, pathlib
>>> from initlab.studies import FigureSpec
>>> spec = FigureSpec("demo", "Demo", "curves", {"panels": [{"title": "t", "xlabel": "x", "ylabel": "y",
...        "series": [{"label": "a", "x": [0, 1], "y": [1, 0]}]}]})
>>> with tempfile.TemporaryDirectory() as d:
...     p = render(spec, pathlib.Path(d) / "demo.png")
...     p.stat().st_size > 1000
True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from initlab.studies._result import FigureSpec

__all__ = ["render", "KINDS"]

_DPI = 80
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _histograms(fig_spec: FigureSpec) -> Any:
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    rows = fig_spec.data["rows"]
    ncols = max(len(r["panels"]) for r in rows)
    nrows = len(rows)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.1 * ncols + 0.9, 1.55 * nrows + 0.6), squeeze=False)
    for i, row in enumerate(rows):
        color = _COLORS[i % len(_COLORS)]
        for j in range(ncols):
            ax = axes[i][j]
            if j >= len(row["panels"]):
                ax.set_visible(False)
                continue
            p = row["panels"][j]
            edges = [float(e) for e in p["edges"]]
            dens = [float(c) for c in p["density"]]
            ax.stairs(dens, edges, fill=True, color=color, alpha=0.7)
            if p.get("xlim"):
                ax.set_xlim(*p["xlim"])
            ax.set_title(str(p.get("title", "")), fontsize=7.5)
            ax.tick_params(labelsize=6, pad=1)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(str(row["label"]), fontsize=7.5)
    fig.suptitle(fig_spec.title, fontsize=10)
    height = 1.55 * nrows + 0.6
    fig.subplots_adjust(left=0.045 if ncols > 5 else 0.06, right=0.99, bottom=0.25 / height + 0.02,
                        top=1 - 0.62 / height, wspace=0.12, hspace=0.45 / 1.1)
    return fig


def _curves(fig_spec: FigureSpec) -> Any:
    plt = _pyplot()
    panels = fig_spec.data["panels"]
    n = len(panels)
    ncols = min(n, int(fig_spec.data.get("ncols", 3)))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.1 * nrows + 0.4), squeeze=False)
    for k, p in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        for s_i, s in enumerate(p["series"]):
            color = s.get("color") or _COLORS[s.get("color_index", s_i) % len(_COLORS)]
            x = [float(v) if v is not None else math.nan for v in s["x"]]
            y = [float(v) if v is not None else math.nan for v in s["y"]]
            style = s.get("style", "line")
            if style == "markers":
                ax.plot(x, y, "o", color=color, label=str(s["label"]), markersize=4)
            elif style == "dashed":
                ax.plot(x, y, "--", color=color, label=str(s["label"]), linewidth=1.2)
            else:
                ax.plot(x, y, "-", color=color, label=str(s["label"]), linewidth=1.2)
        if p.get("logy"):
            ax.set_yscale("log")
        if p.get("ylim"):
            ax.set_ylim(*p["ylim"])
        ax.set_title(str(p.get("title", "")), fontsize=9)
        ax.set_xlabel(str(p.get("xlabel", "")), fontsize=8)
        ax.set_ylabel(str(p.get("ylabel", "")), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle(fig_spec.title, fontsize=10)
    fig.tight_layout()
    return fig


def _decision(fig_spec: FigureSpec) -> Any:
    plt = _pyplot()
    panels = fig_spec.data["panels"]
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for k, p in enumerate(panels):
        ax = axes[0][k]
        x0, x1 = (float(v) for v in p["x_range"])
        y0, y1 = (float(v) for v in p["y_range"])
        im = ax.imshow(p["grid"], origin="lower", extent=(x0, x1, y0, y1), cmap="Spectral", vmin=0.0, vmax=1.0,
                       aspect="auto", interpolation="nearest")
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        cb.set_label("P(class 1)", fontsize=7)
        cb.ax.tick_params(labelsize=6)
        pts = p["points"]
        labels = p["labels"]
        xs = [q[0] for q in pts]
        ys = [q[1] for q in pts]
        colors = ["#5e3c99" if int(lab) == 1 else "#e66101" for lab in labels]
        ax.scatter(xs, ys, c=colors, s=7, edgecolors="k", linewidths=0.2)
        ax.set_title(str(p.get("title", "")), fontsize=9)
        ax.set_xlabel("x1", fontsize=8)
        ax.set_ylabel("x2", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(fig_spec.title, fontsize=10)
    fig.tight_layout()
    return fig


KINDS: dict[str, Callable[[FigureSpec], Any]] = {
    "histograms": _histograms,
    "curves": _curves,
    "decision": _decision,
}


def render(fig_spec: FigureSpec, path: str | Path) -> Path:
    """Draw ``fig_spec`` into the PNG file ``path``; return the path.

    Raises ValueError for an unknown ``kind``.
    """
    if fig_spec.kind not in KINDS:
        raise ValueError(f"The figure kind must be one of {', '.join(map(repr, KINDS))}; got {fig_spec.kind!r}.")
    plt = _pyplot()
    fig = KINDS[fig_spec.kind](fig_spec)
    try:
        path = Path(path)
        fig.savefig(path, dpi=_DPI, format="png")
    finally:
        plt.close(fig)
    return path
