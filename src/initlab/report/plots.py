"""Draw a study's :class:`~initlab.studies.FigureSpec` as a PNG file (matplotlib, Agg backend).

Studies return plot *data*; this module is the only place in the report that draws. Each figure
``kind`` has one renderer:

* ``"curves"`` — one or more line panels: ``data["panels"]`` is a list of
  ``{"title", "xlabel", "ylabel", "logy"?, "ylim"?, "series": [{"label", "x", "y", "style"?}]}`` where
  ``style`` is ``"line"`` (default), ``"markers"`` (measured points) or ``"dashed"`` (theory);
  ``data["ncols"]`` panels per row (default 2).
* ``"ridges"`` — stacked histograms, one panel per case: ``data["panels"]`` is a list of
  ``{"title", "xlim"?, "layers": [{"label", "edges", "density", "note"?}]}``; layer 1 on top, each
  layer scaled to its own peak, ``note`` (e.g. its std) written at the right.
* ``"histograms"`` — a grid of histogram panels: ``data["rows"]`` is a list of
  ``{"label", "panels": [{"title", "edges", "density", "xlim"?}]}``.
* ``"colordim"`` — the colorful-dimension plot of watches: ``data["panels"]`` is a list of
  ``{"title", "ylabel", "x_edges" (steps), "y_edges" (values), "z" (log counts, [bin][step]),
  "marks": [{"x", "label"}]}`` or ``{"blank": true}``; ``data["ncols"]`` per row.
* ``"decision"`` — decision regions of 2-D classifiers: ``data["panels"]`` is a list of
  ``{"title", "x_range", "y_range", "grid" (rows of P(class 1)), "points", "labels"}``.

Legibility is a rule, not a hope: every figure is :data:`WIDTH_IN` inches wide and is shown at the
page's column width (:data:`COLUMN_PX` CSS pixels), so a font of ``pt`` points appears at
``pt / 72 · COLUMN_PX / WIDTH_IN`` CSS pixels; no text is smaller than :data:`MIN_PT`, which is
11.8 px. :func:`render` measures the smallest font actually drawn and writes it, with the width,
into the PNG's text chunks (``initlab:min_font_pt``, ``initlab:width_in``) so a test can check it.

>>> round(MIN_PT / 72 * COLUMN_PX / WIDTH_IN, 1)
11.8
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

__all__ = ["render", "KINDS", "WIDTH_IN", "COLUMN_PX", "DPI", "MIN_PT", "min_font_pt"]

#: every figure's width in inches
WIDTH_IN = 9.0
#: the page's column width in CSS pixels (the report's stylesheet uses the same number)
COLUMN_PX = 900
#: resolution of the PNG files (1350 px wide: sharp on 1.5× screens)
DPI = 150
#: the smallest font drawn, in points: 8.5 pt at 900 px for 9 in = 11.8 CSS px
MIN_PT = 8.5
_BASE = 10.0  # titles and labels
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


def _pyplot() -> Any:
    from initlab._mpl import pyplot

    return pyplot()


def _warm() -> None:
    """Draw a small figure with every kind of text the report's figures use (titles, tick labels,
    a log axis's mathtext labels, a boxed note), so that matplotlib's one-time set-up (the font
    files opened, the mathtext parser built) is done; the report calls it in the main process before
    forking its workers, so each worker starts with it done."""
    spec = FigureSpec("warm", "", "curves", {"panels": [
        {"title": "t", "xlabel": "x", "ylabel": "y", "logy": True,
         "series": [{"label": "a", "x": [1, 2], "y": [1e-3, 1.0]}, {"label": "b", "x": [1, 2], "y": [1.0, 2.0],
                                                                   "style": "dashed"}]}]})
    fig = _curves(spec)
    try:
        fig.axes[0].text(0.5, 0.5, "n", fontsize=MIN_PT, bbox={"boxstyle": "round,pad=0.15", "fc": "white"})
        fig.set_dpi(DPI)
        fig.canvas.draw()
        # the labels of a log axis's decades 10^-8 ... 10^3 at the tick labels' size, parsed into the
        # shared parser's cache (what the studies' log axes show; a worker inherits the cache)
        from matplotlib.font_manager import FontProperties

        prop = FontProperties(size=MIN_PT + 0.5)
        for k in range(-8, 4):
            _MATHTEXT[0].parse(f"$\\mathdefault{{10^{{{k}}}}}$", DPI, prop)
    finally:
        _pyplot().close(fig)


_MATHTEXT: list[Any] = []  # the one MathTextParser of every figure's renderer (:func:`_share_mathtext`)


def _share_mathtext(fig: Any) -> None:
    """Give ``fig``'s Agg renderer the process's one mathtext parser. Each renderer otherwise makes
    its own, whose cache of parsed expressions (a log axis's ``10^{-3}`` labels, about 10 ms each to
    parse) is then empty for every figure; shared, an expression is parsed once per process (and
    :func:`_warm`'s, once before the report's workers are forked). A parse depends only on the
    expression, the resolution and the font, which are the cache's key, so the pixels are the same."""
    from matplotlib.mathtext import MathTextParser

    if not _MATHTEXT:
        _MATHTEXT.append(MathTextParser("path"))  # what RendererAgg makes for itself
    fig.canvas.get_renderer().mathtext_parser = _MATHTEXT[0]


def _style(ax: Any) -> None:
    ax.tick_params(labelsize=MIN_PT + 0.5)
    ax.grid(alpha=0.3)


def _grid(n: int, ncols: int, panel_h: float, extra: float = 0.6) -> tuple[Any, Any, int, int]:
    plt = _pyplot()
    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    # at the PNG's resolution from the start: the layout pass (tight_layout) and the drawing then
    # share one renderer and its cache of text metrics
    fig, axes = plt.subplots(nrows, ncols, figsize=(WIDTH_IN, panel_h * nrows + extra), squeeze=False, dpi=DPI)
    _share_mathtext(fig)
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    return fig, axes, nrows, ncols


def _curves(fig_spec: FigureSpec) -> Any:
    panels = fig_spec.data["panels"]
    ncols = int(fig_spec.data.get("ncols", 2))
    fig, axes, _, ncols = _grid(len(panels), ncols, 3.6 if ncols > 1 else 4.2)
    for k, p in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        for s_i, s in enumerate(p["series"]):
            color = s.get("color") or _COLORS[s.get("color_index", s_i) % len(_COLORS)]
            x = [float(v) if v is not None else math.nan for v in s["x"]]
            y = [float(v) if v is not None else math.nan for v in s["y"]]
            style = s.get("style", "line")
            label = str(s["label"]) if s.get("label") else None
            if style == "markers":
                ax.plot(x, y, "o", color=color, label=label, markersize=5)
            elif style == "dashed":
                ax.plot(x, y, "--", color=color, label=label, linewidth=1.6)
            else:
                ax.plot(x, y, "-", color=color, label=label, linewidth=1.6)
        if p.get("logy"):
            ax.set_yscale("log")
        if all(float(v).is_integer() for s in p["series"] for v in s["x"] if v is not None):
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if p.get("ylim"):
            ax.set_ylim(*p["ylim"])
        ax.set_title(str(p.get("title", "")), fontsize=_BASE)
        ax.set_xlabel(str(p.get("xlabel", "")), fontsize=_BASE - 0.5)
        ax.set_ylabel(str(p.get("ylabel", "")), fontsize=_BASE - 0.5)
        _style(ax)
        if any(s.get("label") for s in p["series"]):
            ax.legend(fontsize=MIN_PT + 0.5, loc=p.get("legend", "best"), framealpha=0.85)
    fig.tight_layout()
    return fig


def _ridges(fig_spec: FigureSpec) -> Any:
    import numpy as np

    panels = fig_spec.data["panels"]
    ncols = int(fig_spec.data.get("ncols", 3))
    n_layers = max(len(p["layers"]) for p in panels)
    fig, axes, _, ncols = _grid(len(panels), ncols, 0.42 * n_layers + 0.9)
    color = fig_spec.data.get("color", "#3b78c2")
    for k, p in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        layers = p["layers"]
        n = len(layers)
        for i, layer in enumerate(layers):
            base = n - 1 - i
            edges = np.asarray(layer["edges"], dtype=float)
            dens = np.asarray(layer["density"], dtype=float)
            peak = float(dens.max()) if dens.size and dens.max() > 0 else 1.0
            ax.stairs(base + 0.9 * dens / peak, edges, baseline=base, fill=True, color=color, alpha=0.75)
            ax.axhline(base, color="#8c959f", linewidth=0.6)
            if layer.get("note"):
                ax.text(1.0, base + 0.45, str(layer["note"]), transform=ax.get_yaxis_transform(), ha="right",
                        va="center", fontsize=MIN_PT, color="#24292f",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        ax.set_yticks([n - 1 - i + 0.3 for i in range(n)])
        ax.set_yticklabels([str(layer["label"]) for layer in layers])
        ax.set_ylim(-0.1, n)
        if p.get("xlim"):
            ax.set_xlim(*p["xlim"])
        ax.set_title(str(p.get("title", "")), fontsize=_BASE)
        ax.tick_params(labelsize=MIN_PT + 0.5)
        ax.tick_params(axis="y", length=0)
        if k % ncols == 0:
            ax.set_ylabel(fig_spec.data.get("ylabel", "layer"), fontsize=_BASE - 0.5)
        if fig_spec.data.get("xlabel"):
            ax.set_xlabel(fig_spec.data["xlabel"], fontsize=_BASE - 0.5)
    fig.tight_layout()
    return fig


def _histograms(fig_spec: FigureSpec) -> Any:
    from matplotlib.ticker import MaxNLocator

    rows = fig_spec.data["rows"]
    ncols = min(5, max(len(r["panels"]) for r in rows))
    panels = [(i, p) for i, r in enumerate(rows) for p in r["panels"]]
    fig, axes, _, ncols = _grid(len(panels), ncols, 1.9)
    for k, (i, p) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        edges = [float(e) for e in p["edges"]]
        dens = [float(c) for c in p["density"]]
        ax.stairs(dens, edges, fill=True, color=_COLORS[i % len(_COLORS)], alpha=0.7)
        if p.get("xlim"):
            ax.set_xlim(*p["xlim"])
        ax.set_title(f"{rows[i]['label']}: {p.get('title', '')}" if rows[i].get("label") else str(p.get("title", "")),
                     fontsize=MIN_PT + 0.5)
        ax.tick_params(labelsize=MIN_PT + 0.5, pad=1)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _decision(fig_spec: FigureSpec) -> Any:
    panels = fig_spec.data["panels"]
    fig, axes, _, ncols = _grid(len(panels), int(fig_spec.data.get("ncols", len(panels))), 3.3)
    for k, p in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        x0, x1 = (float(v) for v in p["x_range"])
        y0, y1 = (float(v) for v in p["y_range"])
        im = ax.imshow(p["grid"], origin="lower", extent=(x0, x1, y0, y1), cmap="Spectral", vmin=0.0, vmax=1.0,
                       aspect="auto", interpolation="nearest")
        if k % ncols == ncols - 1 or k == len(panels) - 1:
            cb = fig.colorbar(im, ax=ax, fraction=0.06, pad=0.03)
            cb.set_label("P(class 1)", fontsize=MIN_PT + 0.5)
            cb.ax.tick_params(labelsize=MIN_PT + 0.5)
        pts = p["points"]
        colors = ["#5e3c99" if int(lab) == 1 else "#e66101" for lab in p["labels"]]
        ax.scatter([q[0] for q in pts], [q[1] for q in pts], c=colors, s=9, edgecolors="k", linewidths=0.2)
        ax.set_title(str(p.get("title", "")), fontsize=_BASE)
        ax.set_xlabel("x1", fontsize=_BASE - 0.5)
        ax.set_ylabel("x2", fontsize=_BASE - 0.5)
        ax.tick_params(labelsize=MIN_PT + 0.5)
    fig.tight_layout()
    return fig


def _colordim(fig_spec: FigureSpec) -> Any:
    """Colorful-dimension panels of a Watch (:func:`initlab.studies._watchview.colordim_figure`)."""
    import numpy as np

    panels = fig_spec.data["panels"]
    fig, axes, _, ncols = _grid(len(panels), int(fig_spec.data.get("ncols", 4)), 2.0, extra=0.3)
    for k, p in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        if p.get("blank"):
            ax.set_visible(False)
            continue
        z = np.asarray(p["z"], dtype=float)
        if z.size:
            ax.pcolormesh(p["x_edges"], p["y_edges"], z, shading="flat", cmap="viridis")
        else:
            ax.text(0.5, 0.5, "no histogram", ha="center", va="center", transform=ax.transAxes, fontsize=MIN_PT + 0.5)
        for j, m in enumerate(p.get("marks", [])):
            ax.axvline(float(m["x"]), color="#ff4040", linewidth=1.4, linestyle="--")
            ax.text(0.97, 0.95 - 0.17 * j, str(m["label"]), transform=ax.transAxes, ha="right", va="top",
                    fontsize=MIN_PT, color="#b00020",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
        ax.set_title(str(p.get("title", "")), fontsize=MIN_PT + 0.5)
        if p.get("ylabel"):
            ax.set_ylabel(str(p["ylabel"]), fontsize=MIN_PT + 0.5)
        if k >= len(panels) - ncols:
            ax.set_xlabel("step", fontsize=MIN_PT + 0.5)
        ax.tick_params(labelsize=MIN_PT, pad=1)
    fig.tight_layout(h_pad=0.4, w_pad=0.4)
    return fig


def _trainability(fig_spec: FigureSpec) -> Any:
    """Kind ``"trainability_heatmap"`` (data = :func:`initlab.sweep.plot.heatmap_data`): the
    sweep's heat map at the report's column width and minimum font."""
    from initlab.sweep.plot import draw

    return draw(fig_spec.data, fig_spec.title, figsize=(WIDTH_IN, 5.4), legend_pt=MIN_PT + 0.5)


KINDS: dict[str, Callable[[FigureSpec], Any]] = {
    "curves": _curves,
    "ridges": _ridges,
    "histograms": _histograms,
    "decision": _decision,
    "trainability_heatmap": _trainability,
    "colordim": _colordim,
}


def min_font_pt(fig: Any) -> float:
    """The smallest font size (points) of any visible, non-empty text in ``fig`` (drawn first, so
    the tick labels exist)."""
    fig.canvas.draw()
    return _smallest_font(fig)


def _smallest_font(fig: Any) -> float:
    """:func:`min_font_pt` of a figure that has just been drawn (no second draw)."""
    from matplotlib.text import Text

    sizes = [float(t.get_fontsize()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and (t.axes is None or t.axes.get_visible())]
    return min(sizes) if sizes else float("inf")


def _write_png(fig: Any, path: Path, metadata: dict[str, str]) -> None:
    """Write the figure just drawn on its Agg canvas as a PNG at :data:`DPI` with ``metadata`` as
    text chunks (what ``savefig`` writes, as RGB when no pixel is transparent, which the report's
    opaque figures never are: a quarter fewer bytes to compress). zlib level 3: 0.37 s for the
    quick report's 17 figures instead of 0.66 s at PIL's default 6, and 4% smaller files than
    savefig's RGBA at level 6."""
    import numpy as np
    from matplotlib import __version__ as mpl_version
    from PIL import Image, PngImagePlugin

    rgba = np.asarray(fig.canvas.buffer_rgba())
    image = Image.fromarray(rgba, "RGBA")
    if int(rgba[..., 3].min()) == 255:
        image = image.convert("RGB")
    info = PngImagePlugin.PngInfo()
    for key, value in {"Software": f"Matplotlib version{mpl_version}, https://matplotlib.org/", **metadata}.items():
        info.add_text(key, value)
    image.save(path, format="png", dpi=(DPI, DPI), pnginfo=info, compress_level=3)


def render(fig_spec: FigureSpec, path: str | Path) -> Path:
    """Draw ``fig_spec`` into the PNG file ``path`` (:data:`WIDTH_IN` wide at :data:`DPI`); return the path.

    The smallest font drawn and the width go into the PNG's text chunks. Raises ValueError for an
    unknown ``kind``, and for a figure whose smallest font is below :data:`MIN_PT`.

    The figure is drawn once, at :data:`DPI`: the fonts are read off that drawing and its pixels are
    written as the PNG (what ``savefig`` writes, without the two further passes it and a separate
    font check would make; the layout was fixed by ``tight_layout`` beforehand).
    """
    if fig_spec.kind not in KINDS:
        raise ValueError(f"The figure kind must be one of {', '.join(map(repr, KINDS))}; got {fig_spec.kind!r}.")
    plt = _pyplot()
    fig = KINDS[fig_spec.kind](fig_spec)
    try:
        width = float(fig.get_size_inches()[0])
        fig.set_layout_engine("none")  # laid out already: no layout pass while drawing
        fig.set_dpi(DPI)
        fig.canvas.draw()
        small = _smallest_font(fig)
        if small < MIN_PT - 1e-9 or abs(width - WIDTH_IN) > 1e-6:
            raise ValueError(f"figure {fig_spec.name!r} would be illegible: smallest font {small} pt (minimum {MIN_PT}), "
                             f"width {width} in (must be {WIDTH_IN})")
        path = Path(path)
        _write_png(fig, path, {"initlab:min_font_pt": f"{small:g}", "initlab:width_in": f"{width:g}"})
    finally:
        plt.close(fig)
    return path
