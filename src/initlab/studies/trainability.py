"""Trainability: which depths and σ_w² train, against the mean-field depth scale ξ_c.

Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017 ("Deep Information Propagation") trained tanh
networks over a grid of σ_w² and depth and found them trainable when the depth is below a few
ξ_c (about 6ξ_c), ξ_c diverging on the order-to-chaos line χ₁ = 1. This study runs a grid small
enough for the report (stated on the page: width, dataset, steps) with :mod:`initlab.sweep`
(stacked training, one computation per depth) and measures, per σ_w², the deepest network whose
training accuracy clears a threshold, beside ξ_c from :mod:`initlab.theory`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from initlab.studies._result import FigureSpec, StudyResult, Table

__all__ = ["TrainabilityConfig", "trainability", "trainability_spec"]

TITLE = "Trainability: depth × σ_w² against the depth scale ξ_c"


@dataclass(frozen=True)
class TrainabilityConfig:
    """Configuration of :func:`trainability` (the paper used width 300, MNIST, 200 SGD steps, a
    90 × 91 grid; this default is the report-sized version)."""

    activation: str = "tanh"
    width: int = 32
    sigma_b2: float = 0.05
    sigma_w2: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.76, 2.5, 4.0, 8.0, 16.0)
    depths: tuple[int, ...] = (2, 4, 8, 16, 32)
    seeds: tuple[int, ...] = (0,)
    dataset: str = "digits"
    optimizer: str = "momentum"
    lr: float = 0.01
    batch_size: int = 128
    steps: int = 300
    threshold: float = 0.5
    seed: int = 0
    quick: bool = False

    @classmethod
    def make(cls, *, quick: bool = False, seed: int = 0, **overrides: Any) -> "TrainabilityConfig":
        """The default config, or the quick one (6 σ_w², depths up to 16, width 16, 150 steps)."""
        base: dict[str, Any] = {"seed": seed, "quick": quick, "seeds": (seed,)}
        if quick:
            base.update(width=16, sigma_w2=(0.25, 0.75, 1.76, 4.0, 16.0), depths=(2, 4, 8, 16), steps=150)
        base.update(overrides)
        return cls(**base)


def trainability_spec(cfg: TrainabilityConfig) -> dict[str, Any]:
    """The sweep spec (plain data, the TOML tables) of a config."""
    return {
        "name": "trainability",
        "model": {"activation": cfg.activation, "width": cfg.width, "sigma_b2": cfg.sigma_b2},
        "grid": {"sigma_w2": list(cfg.sigma_w2), "depth": list(cfg.depths), "seed": list(cfg.seeds)},
        "train": {"dataset": cfg.dataset, "optimizer": cfg.optimizer, "lr": cfg.lr, "batch_size": cfg.batch_size,
                  "steps": cfg.steps, "data_seed": cfg.seed},
    }


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def trainability(config: TrainabilityConfig | None = None) -> StudyResult:
    """Run the grid in this process (stacked, one BLAS thread) and compare with c·ξ_c."""
    from initlab.sweep import parse_spec
    from initlab.sweep.executors import plan_tasks, run_task
    from initlab.sweep.plot import heatmap_data, trainable_boundary

    cfg = config or TrainabilityConfig.make()
    t0 = time.perf_counter()
    spec = parse_spec(trainability_spec(cfg))
    cells = list(enumerate(spec.cells()))
    results: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for task in plan_tasks(cells, 16):
        results.extend(run_task(task, 1))
    results.sort(key=lambda r: r[0])
    rows = [{**c, **r} for _, c, r in results]
    data = heatmap_data(rows, x="sigma_w2", y="depth", metric="train_accuracy")
    bnd = trainable_boundary(data, cfg.threshold)
    crit = data.get("critical_x")
    chi = {r["sigma_w2"]: r["chi1"] for r in rows}
    table_rows = []
    for xv, d, inside, xi, ratio in zip(bnd["x"], bnd["depth"], bnd["inside"], bnd["xi_c"], bnd["ratio"]):
        table_rows.append([xv, chi[xv], xi, ("-" if d is None else (str(d) if inside else f"≥ {d} (grid end)")), ratio])
    table = Table(
        "boundary", "Deepest trainable network per σ_w² against ξ_c",
        ["σ_w²", "χ₁", "ξ_c", f"deepest depth with train accuracy ≥ {cfg.threshold:g}", "depth / ξ_c"],
        table_rows, formats=[".3g", ".4f", ".3g", None, ".2f"],
        note="Depth = hidden layers. 'Deepest' means every shallower grid depth trains too; the true boundary lies "
             "between it and the next grid depth.",
    )
    grid_table = Table(
        "grid", "Training accuracy (mean over seeds): rows depth, columns σ_w²",
        ["depth", *[f"{x:g}" for x in data["x"]]],
        [[y, *row] for y, row in zip(data["y"], data["z"])], formats=[None, *[".2f"] * len(data["x"])],
    )
    ratios = [r for r in bnd["ratio"] if r is not None]
    ordered = [(x, r) for x, r in zip(bnd["x"], bnd["ratio"]) if r is not None and crit is not None and x < crit]
    chaotic = [(x, r) for x, r in zip(bnd["x"], bnd["ratio"]) if r is not None and crit is not None and x > crit]
    depths = [d for d in bnd["depth"] if d is not None]
    top = max(depths) if depths else None
    best = [x for x, d in zip(bnd["x"], bnd["depth"]) if d is not None and d == top]
    best_txt = "-" if not best else (_fmt(best[0]) if len(best) == 1 else f"{_fmt(best[0])}–{_fmt(best[-1])}")
    straddles = bool(best) and crit is not None and min(best) <= crit * 1.01 and max(best) >= crit * 0.99

    def span(pairs: list[tuple[float, float]]) -> str:
        if not pairs:
            return "beyond the grid"
        lo, hi = min(r for _, r in pairs), max(r for _, r in pairs)
        return f"{lo:.2g} ξ_c" if f"{lo:.2g}" == f"{hi:.2g}" else f"{lo:.2g}–{hi:.2g} ξ_c"

    near = min(range(len(bnd["x"])), key=lambda i: abs(bnd["x"][i] - crit)) if crit is not None else None
    crit_note = ("; at the σ_w² nearest the critical line every grid depth trains"
                 if near is not None and bnd["depth"][near] is not None and not bnd["inside"][near] else "")

    numbers = {
        "critical_sigma_w2": crit, "boundary": bnd, "deepest_at": best, "grid": {"x": data["x"], "y": data["y"], "z": data["z"]},
        "ratio_ordered": [r for _, r in ordered], "ratio_chaotic": [r for _, r in chaotic],
        "cells": len(rows), "diverged": sum(1 for r in rows if r["diverged"]),
    }
    fig = FigureSpec(
        "heatmap", "Training accuracy over σ_w² and depth, with χ₁ = 1 and c·ξ_c",
        "trainability_heatmap", data,
        caption=(f"{cfg.activation} networks of width {cfg.width}, σ_b² = {cfg.sigma_b2:g}, {cfg.dataset}, "
                 f"{cfg.steps} {cfg.optimizer} steps (lr {cfg.lr:g}, batch {cfg.batch_size}); color: training "
                 "accuracy; red: the critical line χ₁ = 1; white: depth = 2ξ_c and 6ξ_c."),
    )
    summary = (
        f"The deepest trainable networks ({top} layers) are at σ_w² = {best_txt}"
        + (f", around the critical σ_w² = {_fmt(crit, '.3f')}" if straddles else f" (critical σ_w² = {_fmt(crit, '.3f')})")
        + f"; away from it the trainable depth shrinks, to {span(ordered)} on the ordered side and "
        f"{span(chaotic)} on the chaotic side."
    )
    verdict = (
        f"On a {len(data['x'])} × {len(data['y'])} grid ({len(rows)} trainings, {cfg.steps} steps each) the networks "
        f"that train (accuracy ≥ {cfg.threshold:g}) reach at most {max(ratios):.2g} ξ_c deep wherever the boundary lies "
        f"inside the grid{crit_note}. Schoenholz et al. report about 6 ξ_c after longer training."
        if ratios else "No network reached the accuracy threshold; the grid or the training budget is too small."
    )
    explanation = [
        "ξ_c is the depth over which the correlation between two inputs relaxes to its fixed point; deeper "
        "than a few ξ_c, the network's output no longer depends on which input it got, so gradients carry no "
        "usable signal. At χ₁ = 1 (σ_w² = " + _fmt(crit, ".3f") + " for σ_b² = " + f"{cfg.sigma_b2:g}" + ") ξ_c "
        "diverges and every depth on the grid can be trained.",
        "The paper-sized sweep (width 300, MNIST) runs with `initlab sweep run` (see the README).",
    ]
    return StudyResult(
        study="trainability", title=TITLE, config=asdict(cfg), numbers=numbers, tables=[table, grid_table],
        figures=[fig], summary=summary, verdict=verdict, explanation=explanation,
        takeaway=("How deep a network can be and still train is set by its initialization: the trainable depth is "
                  "largest at the edge of chaos (χ₁ = 1) and shrinks to a few ξ_c away from it."),
        headline="heatmap",
        command=f"initlab report --only trainability --seed {cfg.seed}" + (" --quick" if cfg.quick else ""),
        seconds=time.perf_counter() - t0,
    )
