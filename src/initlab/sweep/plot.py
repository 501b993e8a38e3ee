"""Trainability heat maps with the mean-field theory on top (the figure of Schoenholz, Gilmer,
Ganguli & Sohl-Dickstein 2017, "Deep Information Propagation").

:func:`heatmap_data` turns stored rows into plain data: the metric averaged over seeds on the
(x, y) grid (σ_w² × depth by default), the critical σ_w² where χ₁ = 1 (for the sweep's
activation and σ_b²), and the curves depth = c·ξ_c(σ_w²) for a few c; :func:`trainable_boundary`
measures, per σ_w², the deepest trainable network; :func:`draw` / :func:`render` make the PNG.
The report draws its figure kind ``"trainability_heatmap"`` with :func:`draw` (:mod:`initlab.report.plots`).

>>> rows = [{"sigma_w2": s, "depth": d, "seed": 0, "activation": "tanh", "sigma_b2": 0.05,
...          "train_accuracy": 0.9 if d < 10 else 0.1} for s in (1.0, 2.0) for d in (5, 20)]
>>> data = heatmap_data(rows, x="sigma_w2", y="depth", metric="train_accuracy")
>>> data["z"], round(data["critical_x"], 3)
([[0.9, 0.9], [0.1, 0.1]], 1.761)
>>> b = trainable_boundary(data, 0.5); b["depth"], b["inside"]
([5, 5], [True, True])
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["heatmap_data", "trainable_boundary", "draw", "render", "XI_MULTIPLES"]

#: default multiples c of ξ_c drawn over the heat map (6ξ_c: Schoenholz et al.'s trainable depth)
XI_MULTIPLES = (2.0, 6.0)
_SEED_LIKE = {"seed"}


def _parse_where(where: dict[str, Any] | None) -> dict[str, Any]:
    return dict(where or {})


def _match(row: dict[str, Any], where: dict[str, Any]) -> bool:
    for k, v in where.items():
        rv = row.get(k)
        if isinstance(rv, float) or isinstance(v, float):
            try:
                if not math.isclose(float(rv), float(v), rel_tol=1e-9, abs_tol=1e-12):  # type: ignore[arg-type]
                    return False
            except (TypeError, ValueError):
                return False
        elif str(rv) != str(v) and rv != v:
            return False
    return True


def heatmap_data(
    rows: list[dict[str, Any]],
    *,
    x: str = "sigma_w2",
    y: str = "depth",
    metric: str = "train_accuracy",
    where: dict[str, Any] | None = None,
    multiples: tuple[float, ...] = XI_MULTIPLES,
    chance: float | None = None,
) -> dict[str, Any]:
    """Plain data for the heat map: ``x``, ``y`` (sorted values), ``z`` (rows = y, mean of
    ``metric`` over the cells at (x, y); None where no finite value), ``critical_x`` and
    ``curves`` (``[{"c", "x", "y"}]``, depth = c·ξ_c) when x is σ_w² and the activation and σ_b²
    are single-valued.

    Raises ValueError naming the key when another axis varies (narrow it with ``where``).
    """
    where = _parse_where(where)
    sel = [r for r in rows if _match(r, where)]
    if not sel:
        raise ValueError(f"No stored cells match {where!r}." if where else "The store holds no finished cells yet.")
    for key in (x, y, metric):
        if key not in sel[0]:
            allowed = sorted(k for k in sel[0] if k not in ("config",))
            from initlab._validation import suggest

            raise ValueError(f"The key {key!r} is not a column of this sweep{suggest(key, allowed)}; columns: {', '.join(allowed)}.")
    ignore = {x, y, metric, "seed", "train_accuracy", "test_accuracy", "train_loss", "test_loss", "diverged",
              "diverged_step", "q_star", "chi1", "xi_c", "seconds"}
    for k in sel[0]:
        if k in ignore:
            continue
        vals = {repr(r.get(k)) for r in sel}
        if len(vals) > 1:
            raise ValueError(
                f"The sweep varies {k!r} ({len(vals)} values) besides {x!r} and {y!r}: choose one, e.g. "
                f"--where {k}={sel[0].get(k)}"
            )
    xs = sorted({r[x] for r in sel})
    ys = sorted({r[y] for r in sel})
    xi, yi = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    acc = np.zeros((len(ys), len(xs)))
    cnt = np.zeros((len(ys), len(xs)))
    for r in sel:
        v = r.get(metric)
        if isinstance(v, bool):
            v = float(v)
        if v is None or not math.isfinite(float(v)):
            continue
        acc[yi[r[y]], xi[r[x]]] += float(v)
        cnt[yi[r[y]], xi[r[x]]] += 1
    z = [[float(acc[i, j] / cnt[i, j]) if cnt[i, j] else None for j in range(len(xs))] for i in range(len(ys))]
    data: dict[str, Any] = {"x": xs, "y": ys, "z": z, "x_label": x, "y_label": y, "metric": metric,
                            "where": where, "critical_x": None, "curves": [], "n_cells": len(sel)}
    if chance is not None:
        data["chance"] = chance
    act = sel[0].get("activation")
    sb2 = sel[0].get("sigma_b2")
    if x == "sigma_w2" and act is not None and sb2 is not None:
        from initlab import theory

        data["activation"], data["sigma_b2"] = act, sb2
        try:
            data["critical_x"] = float(theory.critical_sigma_w2(act, float(sb2)))
        except (ValueError, ArithmeticError):
            data["critical_x"] = None
        lo, hi = float(min(xs)), float(max(xs))
        fine = (np.geomspace(lo, hi, 400) if lo > 0 else np.linspace(lo, hi, 400)) if len(xs) > 1 else np.array([lo])
        xi_c = np.asarray(theory.depth_scales(act, fine, np.full_like(fine, float(sb2)))[1], dtype=float)
        data["xi_c"] = {"x": fine.tolist(), "xi_c": [v if math.isfinite(v) else None for v in xi_c.tolist()]}
        for c in multiples:
            data["curves"].append({"c": float(c), "x": fine.tolist(),
                                   "y": [float(c * v) if math.isfinite(v) else None for v in xi_c.tolist()]})
    return data


def trainable_boundary(data: dict[str, Any], threshold: float) -> dict[str, Any]:
    """Per x (σ_w²): the deepest y whose metric is >= ``threshold`` with every shallower y
    trainable too (None if even the shallowest is not), beside ξ_c there and the ratio depth/ξ_c.
    ``inside[j]`` is False where even the deepest grid y trains (the boundary lies beyond the
    grid: no ratio is given there)."""
    from initlab import theory

    out: dict[str, Any] = {"x": list(data["x"]), "depth": [], "inside": [], "xi_c": [], "ratio": [],
                           "threshold": threshold}
    for j, xv in enumerate(data["x"]):
        deepest = None
        for i, yv in enumerate(data["y"]):
            v = data["z"][i][j]
            if v is None or v < threshold:
                break
            deepest = yv
        out["depth"].append(deepest)
        inside = deepest != data["y"][-1]
        out["inside"].append(inside)
        xi = None
        if data.get("activation") is not None and data["x_label"] == "sigma_w2":
            val = float(theory.depth_scales(data["activation"], float(xv), float(data["sigma_b2"]))[1])
            xi = val if math.isfinite(val) else None
        out["xi_c"].append(xi)
        out["ratio"].append(None if (xi is None or deepest is None or xi == 0 or not inside) else deepest / xi)
    return out


def draw(data: dict[str, Any], title: str = "", *, figsize: tuple[float, float] = (7.0, 4.8),
         legend_pt: float = 8.0) -> Any:
    """A matplotlib Figure: the heat map, the critical line and the c·ξ_c curves (``figsize`` in
    inches; ``legend_pt``: the legend's font size, the smallest text of the figure)."""
    from initlab._mpl import pyplot

    plt = pyplot()

    xs, ys = np.asarray(data["x"], dtype=float), np.asarray(data["y"], dtype=float)
    z = np.array([[np.nan if v is None else v for v in row] for row in data["z"]], dtype=float)

    def is_log(v: np.ndarray) -> bool:
        # geometric-looking axes (positive, spanning >= 8x, steps growing) are drawn on a log scale
        return len(v) > 2 and bool(np.all(v > 0)) and v[-1] / v[0] >= 8 and np.diff(v)[-1] > 1.5 * np.diff(v)[0]

    def edges(v: np.ndarray, log: bool) -> np.ndarray:
        if len(v) == 1:
            return np.array([v[0] / 1.5, v[0] * 1.5]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
        u = np.log(v) if log else v
        mid = (u[:-1] + u[1:]) / 2
        e = np.concatenate([[u[0] - (mid[0] - u[0])], mid, [u[-1] + (u[-1] - mid[-1])]])
        return np.exp(e) if log else e

    fig, ax = plt.subplots(figsize=figsize)
    logx, logy = is_log(xs), is_log(ys)
    ex, ey = edges(xs, logx), edges(ys, logy)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    cmap = plt.get_cmap("viridis").with_extremes(bad="#bbbbbb")
    is_acc = "accuracy" in data["metric"]
    mesh = ax.pcolormesh(ex, ey, np.ma.masked_invalid(z), cmap=cmap, shading="flat",
                         vmin=0.0 if is_acc else None, vmax=1.0 if is_acc else None)
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(data["metric"].replace("_", " "))
    styles = ["--", ":", "-.", (0, (5, 1))]
    for k, curve in enumerate(data.get("curves", [])):
        cx = np.asarray(curve["x"], dtype=float)
        cy = np.array([np.nan if v is None else v for v in curve["y"]], dtype=float)
        c = curve["c"]
        ax.plot(cx, cy, color="white", lw=1.8, ls=styles[k % len(styles)],
                label=f"{c:g}·ξ_c" if c != 1 else "ξ_c")
    if data.get("critical_x") is not None and ex[0] <= data["critical_x"] <= ex[-1]:
        ax.axvline(data["critical_x"], color="#ff5555", lw=1.5, label="χ₁ = 1 (critical)")
    ax.set_xlim(ex[0], ex[-1])
    ax.set_ylim(ey[0], ey[-1])
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for axis, vals, log in ((ax.xaxis, xs, logx), (ax.yaxis, ys, logy)):
        if log:  # label the measured values, not powers of ten
            axis.set_major_locator(FixedLocator(vals))
            axis.set_minor_locator(NullLocator())
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    names = {"sigma_w2": "σ_w²", "depth": "depth (hidden layers)", "sigma_b2": "σ_b²"}
    ax.set_xlabel(names.get(data["x_label"], data["x_label"]))
    ax.set_ylabel(names.get(data["y_label"], data["y_label"]))
    sub = []
    if data.get("activation"):
        sub.append(f"{data['activation']}, σ_b² = {data['sigma_b2']:g}")
    if data.get("where"):
        sub.append(", ".join(f"{k}={v}" for k, v in data["where"].items()))
    ax.set_title((title or f"{data['metric'].replace('_', ' ')}") + (f"\n({'; '.join(sub)})" if sub else ""), fontsize=10)
    if data.get("curves") or data.get("critical_x") is not None:
        ax.legend(loc="upper right", fontsize=legend_pt, facecolor="#333333", labelcolor="white", framealpha=0.7)
    fig.tight_layout()
    return fig


def render(data: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Draw :func:`draw` into a PNG at ``path`` (atomically: a temporary file, then rename)."""
    from initlab._io import atomic_write
    from initlab._mpl import pyplot

    plt = pyplot()

    p = Path(path)
    if not p.parent.is_dir():
        raise FileNotFoundError(f"The folder of {str(p)!r} does not exist.")
    fig = draw(data, title)
    try:
        atomic_write(p, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
    return p
