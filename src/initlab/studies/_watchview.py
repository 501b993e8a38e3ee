"""Plain-data views of a :class:`~initlab.diagnostics.Watch` for the report: figure specs and tables.

Shared by the report's ``watch`` study (:mod:`initlab.studies.watch`) and ``initlab watch-report``
(:mod:`initlab.report.watch`), so the two draw a Watch the same way. Nothing here draws:

* :func:`colordim_figure` — the "colorful dimension" plot (fastai's ActivationStats.color_dim):
  one panel per layer, x = recorded step, y = activation value, colour = log(1 + count) of the
  layer's histogram at that step (fixed edges per layer, so the columns compare); the first step
  of each verdict of that layer is marked. Kind ``"colordim"`` (:mod:`initlab.report.plots`).
* :func:`curves_figure` — per-layer mean, std, near-zero fraction, dead fraction, relative update
  ‖ΔW‖/‖W‖ and the loss against the step (kind ``"curves"``).
* :func:`verdict_table` — the verdicts over time: first step, layer, problem, the fix, how many
  recorded steps show it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from initlab.studies._result import FigureSpec, Table

#: the most layers a figure shows (those with a verdict first, then evenly spaced ones)
MAX_LAYERS = 16
#: the most layers drawn as lines of one panel
MAX_LINES = 8

__all__ = ["pick_layers", "MAX_LAYERS", "MAX_LINES", "colordim_panels", "colordim_figure", "curves_figure",
           "verdict_table", "layer_table", "short_kind"]

#: short names of the verdict kinds for the figure marks
_SHORT = {"dead": "dead", "exploding": "explodes", "vanishing": "vanishes", "collapsed": "collapse",
          "saturated": "saturated", "exploding_gradient": "grad explodes", "vanishing_gradient": "grad vanishes",
          "diverged": "diverged"}


def short_kind(kind: str) -> str:
    """A verdict kind in two words or fewer, for a mark on a figure.

    >>> short_kind("exploding_gradient"), short_kind("dead")
    ('grad explodes', 'dead')
    """
    return _SHORT.get(kind, kind.replace("_", " "))


def pick_layers(watch: Any, limit: int) -> list[str]:
    """At most ``limit`` layer names of ``watch`` in forward order: every layer with a verdict
    first (up to the limit), then evenly spaced others (the first and last included).

    >>> from initlab.diagnostics import Watch
    >>> pick_layers(Watch(), 4)
    []
    """
    names = list(watch.layer_names)
    if len(names) <= limit:
        return names
    flagged = [n for n in names if any(v.name == n for v in watch.verdicts)][:limit]
    rest = [n for n in names if n not in flagged]
    k = limit - len(flagged)
    if k > 0 and rest:
        idx = np.unique(np.round(np.linspace(0, len(rest) - 1, k)).astype(int))
        flagged += [rest[i] for i in idx]
    keep = set(flagged)
    return [n for n in names if n in keep]


def _short(name: str, limit: int = 26) -> str:
    """A layer name short enough for a panel title (its tail kept).

    >>> _short("encoder.layers.11.self_attn.out_proj", 20)
    '….self_attn.out_proj'
    """
    return name if len(name) <= limit else "…" + name[-(limit - 1):]


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def colordim_panels(watch: Any, *, label: str = "", kinds: Sequence[str] | None = None,
                    limit: int = MAX_LAYERS) -> list[dict[str, Any]]:
    """One colordim panel per layer of ``watch`` (at most ``limit``, :func:`pick_layers`): {"title",
    "ylabel", "x_edges", "y_edges", "z", "marks"}; ``z[bin][step]`` = log(1 + count). ``marks`` are
    the first steps of the layer's verdicts (only the ``kinds`` given, all when None). ``label``
    goes on the first panel's y axis."""
    by_layer: dict[str, list[Any]] = {}
    for v in watch.verdicts:
        if kinds is None or v.kind in kinds:
            by_layer.setdefault(v.name, []).append(v)
    panels = []
    for k, name in enumerate(pick_layers(watch, limit)):
        steps, edges, counts = watch.histograms(name)
        if counts.size:
            last = int(steps[-1]) + max(int(watch.every), 1)
            x_edges = [int(s) for s in steps] + [last]
            z = np.log1p(np.asarray(counts, dtype=float)).T
        else:
            x_edges, z = [], np.zeros((0, 0))
        marks = [{"x": int(v.step), "label": f"{short_kind(v.kind)} @ {v.step}"} for v in by_layer.get(name, [])]
        panels.append({
            "title": _short(name), "ylabel": (f"{label}\nvalue" if label else "value") if k == 0 else "",
            "x_edges": x_edges, "y_edges": [float(e) for e in edges], "z": [[round(float(c), 4) for c in row] for row in z],
            "marks": marks[:2],
        })
    return panels


def colordim_figure(runs: Sequence[tuple[str, Any]], *, name: str = "colordim", title: str, caption: str,
                    kinds: Sequence[str] | None = None, ncols: int | None = None) -> FigureSpec:
    """The colorful-dimension figure of one or more watches (one row of panels per run)."""
    panels: list[dict[str, Any]] = []
    n = max((min(len(w.layer_names), MAX_LAYERS) for _, w in runs), default=1)
    cols = ncols or min(max(n, 1), 4)
    for label, w in runs:
        row = colordim_panels(w, label=label, kinds=kinds)
        panels.extend(row)
        panels.extend({"blank": True} for _ in range((-len(row)) % cols))
    return FigureSpec(name, title, "colordim", {"panels": panels, "ncols": cols}, caption=caption)


_CURVE_KEYS = (("loss", "loss", False), ("mean", "activation mean", False), ("std", "activation std", True),
               ("near_zero", "near-zero fraction (|x| ≤ 0.05)", False), ("dead", "dead fraction", False),
               ("update_ratio", "update ‖ΔW‖/‖W‖", True))


def curves_figure(watch: Any, *, name: str = "curves", title: str, caption: str) -> FigureSpec:
    """Each layer's statistics against the step (one line per layer; the loss once)."""
    panels = []
    for key, label, logy in _CURVE_KEYS:
        series: list[dict[str, Any]] = []
        if key == "loss":
            pts = [(r.step, _finite(r.loss)) for r in watch.steps if r.loss is not None]
            if pts:
                series.append({"label": "", "x": [p[0] for p in pts], "y": [p[1] for p in pts], "color": "#24292f"})
        else:
            for i, layer in enumerate(pick_layers(watch, MAX_LINES)):
                s, v = watch.series(layer, key)
                if not np.any(np.isfinite(v)):
                    continue
                series.append({"label": _short(layer, 30), "x": [int(x) for x in s], "y": [_finite(y) for y in v], "color_index": i})
        if not series:
            continue
        ys = [y for s in series for y in s["y"] if y is not None]
        positive = bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 30
        panels.append({"title": label, "xlabel": "step", "ylabel": "", "series": series,
                       "logy": bool((logy or key == "loss") and positive)})
    legend_done = False  # the layer legend once, on the first per-layer panel
    for p in panels:
        if any(s["label"] for s in p["series"]):
            if legend_done:
                for s in p["series"]:
                    s["label"] = ""
            legend_done = True
    return FigureSpec(name, title, "curves", {"panels": panels, "ncols": 3}, caption=caption)


def verdict_table(runs: Sequence[tuple[str, Any]], *, name: str = "verdicts", title: str = "Verdicts over time",
                  fixes: bool = True, note: str = "Each problem once, at the first recorded step showing it.") -> Table:
    """Each problem once per run: the first recorded step showing it, the layer, what, the fix
    (left out with ``fixes=False``: the report states each of the probe's fixes once per page)."""
    rows = []
    for label, w in runs:
        vs = w.verdicts
        if not vs:
            rows.append([label, None, "-", "none", "no problem at any recorded step", "-", 0])
        for v in vs:
            rows.append([label, v.step, v.name, v.kind, v.message, v.recommendation or "-", v.n_steps])
    cols = ["run", "first step", "layer", "problem", "what the probe measured", "fix", "recorded steps showing it"]
    if not fixes:
        cols, rows = cols[:5] + cols[6:], [r[:5] + r[6:] for r in rows]
    if len(runs) == 1:
        cols, rows = cols[1:], [r[1:] for r in rows]
    return Table(name, title, cols, rows, note=note)


def layer_table(watch: Any, *, name: str = "layers", title: str = "Each layer, first and last recorded step") -> Table:
    """Per layer: std and near-zero fraction at the first and last recorded step, the largest dead fraction."""
    rows = []
    for layer in watch.layer_names:
        s, std = watch.series(layer, "std")
        _, nz = watch.series(layer, "near_zero")
        _, dead = watch.series(layer, "dead")
        d = dead[np.isfinite(dead)]
        rows.append([layer, _finite(std[0]), _finite(std[-1]), _finite(nz[0]), _finite(nz[-1]),
                     None if d.size == 0 else float(d.max())])
    first = watch.steps[0].step if watch.steps else 0
    last = watch.steps[-1].step if watch.steps else 0
    return Table(name, title, ["layer", f"std, step {first}", f"std, step {last}", f"near-zero, step {first}",
                               f"near-zero, step {last}", "largest dead fraction"], rows,
                 formats=[None, ".3g", ".3g", ".1%", ".1%", ".1%"])
