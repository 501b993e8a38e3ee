"""Seed 003: per-layer mean and std of a 10-layer tanh network of width 500, with the mean-field
prediction beside every measured std.

The seed feeds 1000 N(0, I) inputs of dimension 500 through 10 tanh layers (no bias) with weights
N(0, 0.01²) ("small"), N(0, 1) ("big") and N(0, 1/fan_in) (which it calls Xavier, after Glorot &
Bengio 2010, "Understanding the difficulty of training deep feedforward neural networks"; with
fan_in = fan_out = 500 it equals Glorot's 2/(fan_in+fan_out)). The prediction is the length map of
Poole et al. 2016 ("Exponential expressivity in deep neural networks through transient chaos"),
computed per layer by :func:`initlab.theory.predict_stack`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from initlab._rng import as_generator
from initlab.studies._common import single_thread, hist_panel, predicted, probe_verdicts, sig, sub_seed, verdict_cell
from initlab.studies._result import FigureSpec, StudyResult, Table

__all__ = ["Seed003Config", "seed003", "INITS", "SEED_MEAN", "SEED_STD"]

TITLE = "Seed 003: per-layer mean and std of a deep tanh network"

INITS: list[tuple[str, str, str]] = [
    ("small", "small: N(0, 0.01²)", "normal(std=0.01)"),
    ("big", "big: N(0, 1)", "normal(std=1)"),
    ("xavier", "Xavier as the seed writes it: N(0, 1/fan_in)", "variance_scaling(scale=1, mode=fan_in, distribution=normal)"),
]

#: The seed's printed tables (6 decimals).
SEED_STD: dict[str, list[float]] = {
    "small": [0.213260, 0.047572, 0.010630, 0.002386, 0.000535, 0.000119, 0.000027, 0.000006, 0.000001, 0.000000],
    "big": [0.982053, 0.981789, 0.981715, 0.981523, 0.981463, 0.981712, 0.981718, 0.981858, 0.981687, 0.981719],
    "xavier": [0.627422, 0.486087, 0.408522, 0.357302, 0.320092, 0.293146, 0.271269, 0.256240, 0.242764, 0.230877],
}
SEED_MEAN: dict[str, list[float]] = {
    "small": [-0.000139, 0.000038, 0.000006, -0.000002, 0.000001, -0.0, -0.0, 0.0, -0.0, -0.0],
    "big": [-0.000385, 0.001082, 0.001913, -0.002010, 0.000435, 0.001119, -0.000742, -0.001431, 0.000313, -0.001314],
    "xavier": [0.000078, -0.000466, -0.000066, 0.000266, 0.000371, 0.000447, 0.000247, -0.000204, -0.000225, 0.000805],
}


@dataclass(frozen=True)
class Seed003Config:
    """Configuration of :func:`seed003` (the seed's values by default)."""

    n_inputs: int = 1000
    width: int = 500
    depth: int = 10
    bins: int = 30
    seed: int = 0
    quick: bool = False

    @classmethod
    def make(cls, *, quick: bool = False, seed: int = 0, **overrides: Any) -> "Seed003Config":
        """The default config, or the quick one (500 inputs)."""
        base: dict[str, Any] = {"seed": seed, "quick": quick}
        if quick:
            base.update(n_inputs=500)
        base.update(overrides)
        return cls(**base)


def _seed003(config: Seed003Config | None = None) -> StudyResult:
    """Run seed 003: the per-layer tables, mean/std plots and histograms, with the prediction."""
    from initlab import activations as _act
    from initlab.data import gaussian
    from initlab.nn import Network

    cfg = config or Seed003Config.make()
    t0 = time.perf_counter()
    x = np.asarray(gaussian(cfg.n_inputs, cfg.width, rng=as_generator(sub_seed(cfg.seed, 0))), dtype=np.float32)
    sizes = [cfg.width] * (cfg.depth + 1)
    tanh = _act.get("tanh")
    numbers: dict[str, Any] = {"inits": {}}
    tables: list[Table] = []
    hist_rows: list[dict[str, Any]] = []
    mean_series: list[dict[str, Any]] = []
    std_series: list[dict[str, Any]] = []
    verdict_rows: list[list[Any]] = []
    layers = list(range(1, cfg.depth + 1))
    seed_comparable = cfg.width == 500 and cfg.depth == 10
    for i, (key, label, spec) in enumerate(INITS):
        net = Network(sizes, activation="tanh", output="tanh", init=spec, rng=as_generator(sub_seed(cfg.seed, 1, i)))
        _, trace = net.forward(x, capture=True)
        acts = [np.asarray(t.act, dtype=np.float64) for t in trace]
        means = [float(a.mean()) for a in acts]
        stds = [float(a.std()) for a in acts]
        sat = [float(np.mean(tanh.saturated_mask(np.asarray(t.preact)))) for t in trace]
        pred = predicted(sizes, ["tanh"] * cfg.depth, [spec] * cfg.depth, input_var=1.0)
        p_std = [float(v) for v in np.asarray(pred.act_std, dtype=float)]
        p_mean = [float(v) for v in np.asarray(pred.act_mean, dtype=float)]
        verdicts = probe_verdicts(net, x, rng=as_generator(sub_seed(cfg.seed, 2, i)))
        rows = []
        for l_i in range(cfg.depth):
            s_std = SEED_STD[key][l_i] if seed_comparable else None
            s_mean = SEED_MEAN[key][l_i] if seed_comparable else None
            rel = (stds[l_i] / p_std[l_i] - 1.0) if p_std[l_i] > 0 else None
            rows.append([l_i + 1, means[l_i], stds[l_i], p_std[l_i], rel, sat[l_i], s_mean, s_std])
        tables.append(Table(
            f"layers_{key}", f"{label}: per-layer mean and std",
            ["layer", "mean", "std", "predicted std", "std / predicted − 1", "saturated", "seed: mean", "seed: std"],
            rows,
            note=f"Probe verdict: {'; '.join(verdicts)}",
            formats=[None, ".6f", ".6g", ".6g", "+.2%", ".1%", ".6f", ".6f"],
        ))
        verdict_rows.append([label, verdict_cell(verdicts)])
        hist_rows.append({"label": key, "panels": [
            hist_panel(a, bins=cfg.bins, value_range=(-1.0, 1.0), title=f"layer {l_i + 1}: std {sig(s)}")
            for l_i, (a, s) in enumerate(zip(acts, stds))]})
        mean_series.append({"label": f"{key}: measured", "x": layers, "y": means, "style": "markers", "color_index": i})
        mean_series.append({"label": f"{key}: predicted", "x": layers, "y": p_mean, "style": "dashed", "color_index": i})
        std_series.append({"label": f"{key}: measured", "x": layers, "y": stds, "style": "markers", "color_index": i})
        std_series.append({"label": f"{key}: predicted", "x": layers, "y": p_std, "style": "dashed", "color_index": i})
        numbers["inits"][key] = {"init": spec, "mean": means, "std": stds, "predicted_std": p_std,
                                 "predicted_mean": p_mean, "predicted_preact_var": [float(v) for v in np.asarray(pred.preact_var)],
                                 "saturated": sat, "seed_std": SEED_STD[key], "seed_mean": SEED_MEAN[key],
                                 "probe_verdicts": verdicts}

    figures = [
        FigureSpec("mean_std", "Per-layer mean and std of tanh activations", "curves",
                   {"panels": [
                       {"title": "layer mean", "xlabel": "layer", "ylabel": "mean", "series": mean_series},
                       {"title": "layer std (log scale)", "xlabel": "layer", "ylabel": "std", "logy": True,
                        "series": [s for s in std_series if max(s["y"]) > 0]},
                   ], "ncols": 2},
                   caption=("Dots: measured on one random network; dashed: the mean-field prediction (length map). "
                            "Small weights: the std shrinks ~×0.22 per layer to nothing; big weights: every layer sits "
                            "at ±1 (std 0.98); 1/fan_in: the std decays slowly (a power law, not a plateau).")),
        FigureSpec("histograms", "Histograms of each layer's tanh output", "histograms", {"rows": hist_rows},
                   caption=("Rows: small, big, 1/fan_in. Small: a spike at 0; big: two spikes at ±1 (saturated); "
                            "1/fan_in: a bell that narrows slowly with depth.")),
    ]
    n = numbers["inits"]
    worst = max(abs(r[4]) for t in tables for r in t.rows if r[4] is not None and r[3] > 1e-6)
    verdict = (
        f"Reproduced: small weights shrink the std from {sig(n['small']['std'][0])} to {sig(n['small']['std'][-1])} "
        f"(seed: 0.213 → 0.000000), big weights saturate tanh at std {sig(n['big']['std'][-1])} with "
        f"{n['big']['saturated'][-1]:.0%} of units saturated (seed: 0.98), 1/fan_in decays from "
        f"{sig(n['xavier']['std'][0])} to {sig(n['xavier']['std'][-1])} (seed: 0.627 → 0.231). "
        f"The mean-field prediction matches every measured std within {worst:.2%} (the largest |std / predicted − 1| "
        "in the tables)."
    )
    explanation = [
        "Each layer computes tanh(x W) with W drawn once; the table gives the mean and std of the layer's output over "
        "all inputs and units, next to the prediction of the length map q_l = σ_w²·E[tanh(√q_{l−1} z)²] (σ_w² = "
        "fan_in·Var(W)), which for wide layers predicts the std of every layer before any network is drawn.",
        "Why: with σ_w² = 500·0.01² = 0.05 each layer multiplies the variance by ≈ 0.05 (tanh is linear near 0): the "
        "signal dies. With σ_w² = 500 the pre-activations have std ≈ 22 and tanh outputs ±1. With σ_w² = 1 tanh sits "
        "at the edge of chaos with fixed point q* = 0, which it approaches slowly (q_l ~ 1/l): the std keeps shrinking, "
        "just slowly.",
    ]
    corrections = [
        "The seed calls N(0, 1/fan_in) 'Xavier initialization (Glorot et al. 2010)'. Glorot's variance is "
        "2/(fan_in+fan_out); 1/fan_in is LeCun's. They coincide here only because every layer is 500 × 500.",
        "The seed's conclusion 'now everything is nice and normally distributed' hides the decay its own table shows: "
        "the std falls from 0.63 to 0.23 in 10 layers and keeps falling (q_l ~ 1/l), as the prediction says.",
        f"The seed's small-init table prints 0.000000 for the last layer; the std is not zero but about "
        f"{sig(n['small']['std'][-1])} (it shrinks by ≈ 0.22 per layer), below the 6 decimals it printed.",
    ]
    summary = (f"tanh 10×500: small init dies (std {sig(n['small']['std'][-1])}), big init saturates (std "
               f"{sig(n['big']['std'][-1])}), 1/fan_in decays slowly ({sig(n['xavier']['std'][-1])} at layer 10); "
               f"the mean-field prediction matches within {worst:.2%}.")
    return StudyResult(
        study="seed003", title=TITLE, config=asdict(cfg), numbers=numbers,
        tables=tables + [Table("probe", "The probe's verdict per init", ["init", "verdict"], verdict_rows)],
        figures=figures, summary=summary, verdict=verdict, explanation=explanation, corrections=corrections,
        seconds=time.perf_counter() - t0,
    )


def seed003(config: Seed003Config | None = None) -> StudyResult:
    """Run seed 003 with ``config`` (default: :meth:`Seed003Config.make`); BLAS on one thread."""
    with single_thread():
        return _seed003(config)
