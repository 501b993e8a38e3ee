"""Seed 000: per-layer activation and gradient histograms of a 2-200-300-400-300-2 MLP, and the
variance verification table against torch.nn.init.

The seed ("CNN weight parameter initialization") feeds 500 standard-normal 2-D points through a
5-layer MLP whose every layer (the output too) applies the activation, for inits zeros, N(0, 0.01²),
N(0, 1), variance 1/fan_in, Xavier (variance 2/(fan_in+fan_out); Glorot & Bengio 2010,
"Understanding the difficulty of training deep feedforward neural networks"), and He (He, Zhang,
Ren & Sun 2015, "Delving Deep into Rectifiers") — which the seed writes as variance
4/(fan_in+fan_out), i.e. ``variance_scaling(scale=2, mode=fan_avg)``, not torch's 2/fan_in.
It then meant to show the backpropagated deltas (∂L/∂z per layer for random one-hot targets) but
plots the forward outputs again; here the deltas are shown. Last, it checks torch.nn.init's
variances on a 300×500 tensor against "theory" values that use the wrong fan for kaiming.

>>> [c[0] for c in CASES][:3]
['zeros_tanh', 'std001_tanh', 'std001_sigmoid']
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from initlab._rng import as_generator
from initlab.studies._common import (predicted_act_std, probe_run, ridge_layer, sig, single_thread, sub_seed,
                                     verdict_fixes, verdict_messages)
from initlab.studies._result import FigureSpec, StudyResult, Table

__all__ = ["Seed000Config", "seed000", "CASES", "VARIANCE_ROWS"]

TITLE = "Seed 000: activation and gradient histograms, and the variance table"


@dataclass(frozen=True)
class Seed000Config:
    """Configuration of :func:`seed000`.

    Attributes:
        sizes: layer widths (the seed: 2-200-300-400-300-2).
        n_inputs: number of N(0, I) input points (the seed: 500).
        leaky_slope: leaky_relu's negative slope, used for the activation AND the init (the seed's
            code uses 0.1 in the activation and 0.3 in the init).
        bins: histogram bins.
        table_shape: the tensor shape of the variance table (the seed: 300×500).
        torch: compare with torch.nn.init when torch is installed.
        seed: the seed of every draw; quick: smaller sizes (marked on the page).
    """

    sizes: tuple[int, ...] = (2, 200, 300, 400, 300, 2)
    n_inputs: int = 500
    leaky_slope: float = 0.3
    bins: int = 50
    table_shape: tuple[int, int] = (300, 500)
    torch: bool = True
    seed: int = 0
    quick: bool = False

    @classmethod
    def make(cls, *, quick: bool = False, seed: int = 0, **overrides: Any) -> "Seed000Config":
        """The default config, or the quick one (fewer inputs and bins)."""
        base: dict[str, Any] = {"seed": seed, "quick": quick}
        if quick:
            base.update(n_inputs=250, bins=30)
        base.update(overrides)
        return cls(**base)


# (key, label, activation, init spec, what the seed calls it)
def _cases(a: float) -> list[tuple[str, str, str, str, str]]:
    leaky = f"leaky_relu({a:g})"
    return [
        ("zeros_tanh", "zeros, tanh", "tanh", "zeros", "all zeros"),
        ("std001_tanh", "N(0, 0.01²), tanh", "tanh", "normal(std=0.01)", "small random"),
        ("std001_sigmoid", "N(0, 0.01²), sigmoid", "sigmoid", "normal(std=0.01)", "small random"),
        ("std1_tanh", "N(0, 1), tanh", "tanh", "normal(std=1)", "large random"),
        ("std1_sigmoid", "N(0, 1), sigmoid", "sigmoid", "normal(std=1)", "large random"),
        ("fanin_tanh", "var 1/fan_in, tanh", "tanh", "variance_scaling(scale=1, mode=fan_in, distribution=normal)",
         "the seed's first 'Xavier' (std √(1/fan_in))"),
        ("fanin_sigmoid", "var 1/fan_in, sigmoid", "sigmoid",
         "variance_scaling(scale=1, mode=fan_in, distribution=normal)", "the seed's first 'Xavier'"),
        ("xavier_tanh", "Xavier, tanh", "tanh", "xavier_normal", "Xavier, 2/(fan_in+fan_out)"),
        ("xavier_sigmoid", "Xavier, sigmoid", "sigmoid", "xavier_normal", "Xavier"),
        ("xavier_relu", "Xavier, relu", "relu", "xavier_normal", "Xavier with ReLU"),
        ("he_seed_relu", "He as the seed writes it (fan_avg), relu", "relu",
         "variance_scaling(scale=2, mode=fan_avg, distribution=normal)", "He: 4/(fan_in+fan_out)"),
        ("he_torch_relu", "He, torch (fan_in), relu", "relu", "kaiming_normal(mode=fan_in, nonlinearity=relu)",
         "torch's kaiming_normal_"),
        ("he_seed_leaky", f"leaky He as the seed writes it (fan_avg), {leaky}", leaky,
         f"variance_scaling(scale={2 / (1 + a * a)!r}, mode=fan_avg, distribution=normal)",
         f"He leaky: 4/((1+a²)(fan_in+fan_out)), a={a:g}"),
        ("he_torch_leaky", f"leaky He, torch (fan_in, a={a:g}), {leaky}", leaky,
         f"kaiming_normal(mode=fan_in, nonlinearity=leaky_relu, a={a!r})", "torch's kaiming_normal_ with a"),
    ]


CASES = _cases(0.3)

#: short panel titles where the case label is too long for a fifth of the page
_SHORT = {"he_seed_relu": "He, post's fan_avg", "he_torch_relu": "He, fan_in", "he_seed_leaky": "leaky, post's He",
          "he_torch_leaky": "leaky He, fan_in", "fanin_tanh": "var 1/fan_in", "fanin_sigmoid": "var 1/fan_in"}

# (key, label, initlab spec, torch call name, torch kwargs, theory formula, seed's torch value, seed's theory)
VARIANCE_ROWS: list[tuple[str, str, str, str | None, dict[str, Any], str, float | None, float | None]] = [
    ("uniform", "uniform [0, 1)", "uniform(a=0, b=1)", "uniform_", {"a": 0.0, "b": 1.0}, "(b−a)²/12", 0.0833, 1 / 12),
    ("normal", "normal N(0, 1)", "normal(mean=0, std=1)", "normal_", {"mean": 0.0, "std": 1.0}, "std²", 0.9989, None),
    ("xavier_uniform", "xavier uniform", "xavier_uniform", "xavier_uniform_", {"gain": 1.0}, "2/(fan_in+fan_out)",
     0.0025, 0.0025),
    ("xavier_normal", "xavier normal", "xavier_normal", "xavier_normal_", {"gain": 1.0}, "2/(fan_in+fan_out)",
     0.0025, 0.0025),
    ("kaiming_uniform", "kaiming uniform, relu, fan_in", "kaiming_uniform(mode=fan_in, nonlinearity=relu)",
     "kaiming_uniform_", {"a": 0, "mode": "fan_in", "nonlinearity": "relu"}, "2/fan_in", 0.0040, 0.005),
    ("kaiming_normal", "kaiming normal, relu, fan_in", "kaiming_normal(mode=fan_in, nonlinearity=relu)",
     "kaiming_normal_", {"a": 0, "mode": "fan_in", "nonlinearity": "relu"}, "2/fan_in", 0.0040, 0.005),
    ("kaiming_uniform_leaky", "kaiming uniform, leaky a=0.3, fan_in",
     "kaiming_uniform(mode=fan_in, nonlinearity=leaky_relu, a=0.3)", "kaiming_uniform_",
     {"a": 0.3, "mode": "fan_in", "nonlinearity": "leaky_relu"}, "2/((1+a²)·fan_in)", 0.0037, 0.004587155963302752),
    ("kaiming_normal_leaky", "kaiming normal, leaky a=0.3, fan_in",
     "kaiming_normal(mode=fan_in, nonlinearity=leaky_relu, a=0.3)", "kaiming_normal_",
     {"a": 0.3, "mode": "fan_in", "nonlinearity": "leaky_relu"}, "2/((1+a²)·fan_in)", 0.0037, 0.004587155963302752),
    ("kaiming_normal_fan_out", "kaiming normal, relu, fan_out", "kaiming_normal(mode=fan_out, nonlinearity=relu)",
     "kaiming_normal_", {"a": 0, "mode": "fan_out", "nonlinearity": "relu"}, "2/fan_out", None, None),
    ("kaiming_uniform_leaky_fan_out", "kaiming uniform, leaky a=0.3, fan_out",
     "kaiming_uniform(mode=fan_out, nonlinearity=leaky_relu, a=0.3)", "kaiming_uniform_",
     {"a": 0.3, "mode": "fan_out", "nonlinearity": "leaky_relu"}, "2/((1+a²)·fan_out)", None, None),
    ("he_seed", "He as the seed writes it (variance_scaling scale 2, fan_avg)",
     "variance_scaling(scale=2, mode=fan_avg, distribution=normal)", None, {}, "4/(fan_in+fan_out)", None, 0.005),
    ("he_seed_leaky", "leaky He as the seed writes it (fan_avg, a=0.3)",
     "variance_scaling(scale=1.834862385321101, mode=fan_avg, distribution=normal)", None, {},
     "4/((1+a²)(fan_in+fan_out))", None, 0.004587155963302752),
]


def _theory_var(key: str, fan_in: int, fan_out: int) -> float:
    a2 = 0.3**2
    return {
        "uniform": 1.0 / 12.0,
        "normal": 1.0,
        "xavier_uniform": 2.0 / (fan_in + fan_out),
        "xavier_normal": 2.0 / (fan_in + fan_out),
        "kaiming_uniform": 2.0 / fan_in,
        "kaiming_normal": 2.0 / fan_in,
        "kaiming_uniform_leaky": 2.0 / ((1 + a2) * fan_in),
        "kaiming_normal_leaky": 2.0 / ((1 + a2) * fan_in),
        "kaiming_normal_fan_out": 2.0 / fan_out,
        "kaiming_uniform_leaky_fan_out": 2.0 / ((1 + a2) * fan_out),
        "he_seed": 4.0 / (fan_in + fan_out),
        "he_seed_leaky": 4.0 / ((1 + a2) * (fan_in + fan_out)),
    }[key]


def _backward_story(case: dict[str, Any], sizes: list[int]) -> str:
    """What the delta table shows for one N(0, 1) case, in words built from the measured numbers."""
    d = case["delta_std"]
    n = len(d)
    chain = " → ".join(f"{sig(d[i])} (layer {i + 1})" for i in reversed(range(n)))
    steps = [(i, d[i] / d[i + 1] if d[i + 1] > 0 else float("nan")) for i in range(n - 1)]
    wide = [st for st in steps if sizes[st[0] + 2] > 2]  # steps back through a wide layer's weights
    grow = sum(1 for _, m in wide if m > 1)
    span = f"from layer {wide[-1][0] + 2} back to layer {wide[0][0] + 1}" if wide else "through the layers"
    trend = (f"grow {span}" if grow == len(wide) else f"shrink {span}" if grow == 0 else f"go up and down {span}")
    return (f"With N(0, 1) and {case['activation']} the deltas {trend}: {chain}. "
            + ("Saturation does not make them vanish: " if grow == len(wide) else "")
            + "each step back multiplies the delta by Wᵀ (scale √fan_out·std(W) ≈ 17–20 here) and by the saturated "
            "units' small φ′(z).")


def _var_se(var: float, n: int, uniform: bool) -> float:
    """Standard error of the sample variance of n iid draws: √((μ₄ − σ⁴)/n), μ₄ = 3σ⁴ (normal),
    1.8σ⁴ (uniform)."""
    excess = 0.8 if uniform else 2.0
    return var * math.sqrt(excess / n)


def _variance_table(cfg: Seed000Config) -> tuple[Table, dict[str, Any], str | None]:
    from initlab import init as _init

    shape = tuple(cfg.table_shape)
    fan_in, fan_out = _init.compute_fans(shape)
    n = int(np.prod(shape))
    torch_mod: Any = None
    torch_note = None
    missing = "not installed"
    if cfg.torch:
        try:
            import torch as torch_mod
        except ImportError:
            torch_mod = None
            torch_note = ("torch is not installed, so the torch.nn.init columns say 'not installed' "
                          "(pip install torch==2.13.0 to compare).")
    else:
        missing = "not compared"
        torch_note = "The torch comparison is switched off in the config (torch=False): the torch.nn.init columns say 'not compared'."
    rows: list[list[Any]] = []
    numbers: dict[str, Any] = {}
    for i, (key, label, spec, tname, tkw, formula, seed_torch, seed_theory) in enumerate(VARIANCE_ROWS):
        theory = _theory_var(key, fan_in, fan_out)
        uniform = "uniform" in key and key != "he_seed"
        se = _var_se(theory, n, uniform)
        w = _init.get(spec)(shape, rng=as_generator(sub_seed(cfg.seed, 0, i)), dtype=np.float32)
        ours = float(np.var(w.astype(np.float64), ddof=1))
        tvar: float | None = None
        if torch_mod is not None and tname is not None:
            g = torch_mod.Generator().manual_seed(int(sub_seed(cfg.seed, 1, i).generate_state(1)[0]))
            t = torch_mod.empty(*shape)
            getattr(torch_mod.nn.init, tname)(t, **tkw, generator=g)
            tvar = float(t.double().var().item())
        note = ""
        if seed_theory is not None and not math.isclose(seed_theory, theory, rel_tol=1e-3):
            note = f"seed's theory {sig(seed_theory, 4)} uses fan_avg = {(fan_in + fan_out) // 2}; correct: {sig(theory, 4)}"
        elif tname is None:
            note = "no torch scheme: the seed's own formula"
        t_cell: Any = tvar if (torch_mod is not None or tname is None) else missing
        rows.append([label, spec, formula, theory, ours, (ours - theory) / se, t_cell,
                     t_cell if tvar is None else (tvar - theory) / se, seed_torch, seed_theory, note])
        numbers[key] = {"theory": theory, "initlab": ours, "torch": tvar, "se": se, "seed_torch": seed_torch,
                        "seed_theory": seed_theory, "spec": spec}
    table = Table(
        "variance",
        f"Variance verification on a {shape[0]}×{shape[1]} tensor (fan_in = {fan_in}, fan_out = {fan_out})",
        ["scheme", "initlab spec", "formula", "theory", "initlab", "initlab z", "torch.nn.init", "torch z",
         "seed: torch printed", "seed: its theory", "note"],
        rows,
        note=("z = (measured − theory) / standard error of a sample variance of "
              f"{n} draws (√(2/n)·σ² normal, √(0.8/n)·σ² uniform); |z| < 4 is agreement. "
              + (torch_note or "torch.nn.init values are measured here with a seeded torch.Generator.")),
        formats=[None, None, None, ".6f", ".6f", ".2f", ".6f", ".2f", ".4f", ".6f", None],
    )
    return table, numbers, torch_note


def _seed000(config: Seed000Config | None = None) -> StudyResult:
    """Run seed 000: forward and backward statistics for every case, and the variance table."""
    from initlab import activations as _act
    from initlab.data import gaussian
    from initlab.diagnostics._stats import near_zero
    from initlab.nn import Network
    from initlab.nn import predict_stack

    cfg = config or Seed000Config.make()
    t0 = time.perf_counter()
    sizes = list(cfg.sizes)
    n_layers = len(sizes) - 1
    x = np.asarray(gaussian(cfg.n_inputs, sizes[0], rng=as_generator(sub_seed(cfg.seed, 2))), dtype=np.float32)
    gen_y = as_generator(sub_seed(cfg.seed, 3))
    cls = gen_y.integers(0, 2, size=cfg.n_inputs)
    y = np.zeros((cfg.n_inputs, sizes[-1]), dtype=np.float32)
    y[np.arange(cfg.n_inputs), cls % sizes[-1]] = 1.0

    numbers: dict[str, Any] = {"cases": {}}
    fwd_rows: list[list[Any]] = []
    bwd_rows: list[list[Any]] = []
    verdict_rows: list[list[Any]] = []
    fixes: dict[str, str] = {}
    ridges: dict[str, list[dict[str, Any]]] = {"tanh": [], "sigmoid": [], "relu": []}
    std_panels: dict[str, list[dict[str, Any]]] = {"tanh": [], "sigmoid": [], "relu": [], "leaky_relu": []}
    delta_panels: dict[str, list[dict[str, Any]]] = {"tanh": [], "sigmoid": [], "relu": [], "leaky_relu": []}
    layers_x = list(range(1, n_layers + 1))
    for ci, (key, label, act_name, spec, seed_name) in enumerate(_cases(cfg.leaky_slope)):
        act = _act.get(act_name)
        net = Network(sizes, activation=act_name, output=act_name, init=spec, bias_init="zeros",
                      rng=as_generator(sub_seed(cfg.seed, 4, ci)))
        out, trace = net.forward(x, capture=True)
        net.backward(out - y, trace)  # per-sample squared error ½‖out − y‖², as the seed's deltas
        acts = [np.asarray(t.act, dtype=np.float64) for t in trace]
        deltas = [np.asarray(t.grad_preact, dtype=np.float64) for t in trace]
        pred = predicted_act_std(sizes, [act_name] * n_layers, [spec] * n_layers, input_var=1.0)
        sw2 = [float(la.sigma_w2) for la in predict_stack(sizes, [act_name] * n_layers, [spec] * n_layers).layers]
        # one source of truth: every per-layer statistic is the probe's (its deltas are the same
        # per-sample squared-error gradients out − y; saturated is None where it does not apply)
        verdicts, pres = probe_run(net, x, y, loss="mse", rng=as_generator(sub_seed(cfg.seed, 5, ci)))
        fixes.update(verdict_fixes(pres))
        act_std = [float(s.std) for s in pres.layers]
        act_mean = [float(s.mean) for s in pres.layers]
        delta_std = [float(s.grad_std) for s in pres.layers]
        saturated = [None if s.saturated is None else float(s.saturated) for s in pres.layers]
        w_factor = [math.sqrt(sizes[li + 2]) * float(pres.layers[li + 1].weight_std) for li in range(n_layers - 1)]
        d_rms = [float(np.sqrt(np.mean(np.asarray(act.derivative(np.asarray(t.preact, dtype=np.float64)),
                                                   dtype=np.float64) ** 2))) for t in trace]
        spike = [near_zero(d, 0.01 * sd) if sd > 0 else None for d, sd in zip(deltas, delta_std)]
        kurt = [float(np.mean(d**4) / np.mean(d**2) ** 2 - 3.0) if sd > 0 else None for d, sd in zip(deltas, delta_std)]
        numbers["cases"][key] = {
            "label": label, "activation": act_name, "init": spec, "seed_name": seed_name, "sigma_w2": sw2,
            "act_mean": act_mean, "act_std": act_std, "predicted_act_std": pred, "delta_std": delta_std,
            "saturated": saturated, "probe_verdicts": verdicts, "backward_weight_factor": w_factor,
            "derivative_rms": d_rms, "delta_near_zero": spike, "delta_excess_kurtosis": kurt,
        }
        fwd_rows.append([label] + [f"{sig(s)} ({sig(p)})" for s, p in zip(act_std, pred)])
        bwd_rows.append([label] + [sig(d) for d in delta_std])
        verdict_rows.append([label, ", ".join(sig(v) for v in sw2), verdict_messages(pres)])

        if act.name == "tanh":
            rng_f: tuple[float, float] | None = (-1.0, 1.0)
        elif act.name == "sigmoid":
            rng_f = (0.0, 1.0)
        else:
            hi = max(float(np.quantile(a, 0.995)) for a in acts)
            lo = min(0.0, min(float(np.quantile(a, 0.005)) for a in acts))
            rng_f = (lo, hi) if hi > lo else None
        family = act.name if act.name in ("tanh", "sigmoid") else "relu"
        short = _SHORT.get(key, label.rsplit(", ", 1)[0])
        ridges[family].append({"title": short,
                               "xlim": list(rng_f) if rng_f else None, "layers": [
            ridge_layer(a, str(i + 1), bins=cfg.bins, value_range=rng_f, note=f"std {sig(s)}")
            for i, (a, s) in enumerate(zip(acts, act_std))]})
        fam = act.name if act.name in std_panels else "relu"
        c_i = sum(1 for q in std_panels[fam] if q["style"] == "markers")
        if max(act_std) > 0:
            std_panels[fam].append({"label": short, "x": layers_x, "y": act_std, "style": "markers", "color_index": c_i})
            std_panels[fam].append({"label": "", "x": layers_x, "y": pred, "style": "dashed", "color_index": c_i})
        if max(delta_std[:-1]) > 0:
            delta_panels[fam].append({"label": short, "x": layers_x, "y": delta_std, "style": "line", "color_index": c_i})

    fam_title = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "ReLU", "leaky_relu": f"leaky ReLU (a = {cfg.leaky_slope:g})"}
    figures = [
        FigureSpec("std_per_layer", "Activation std per layer", "curves",
                   {"panels": [{"title": fam_title[f], "xlabel": "layer", "ylabel": "std (log scale)", "logy": True,
                                "series": ser} for f, ser in std_panels.items()], "ncols": 2},
                   caption=(f"Dots: measured on {cfg.n_inputs} inputs; dashes: the mean-field prediction. Layer 5 has "
                            "2 units, so its dot is noisy. Zeros (std 0 everywhere) cannot be drawn on a log axis.")),
        FigureSpec("delta_std", "Backpropagated delta std per layer", "curves",
                   {"panels": [{"title": fam_title[f], "xlabel": "layer", "ylabel": "std of ∂L/∂z (log scale)",
                                "logy": True, "series": ser} for f, ser in delta_panels.items()], "ncols": 2},
                   caption=("The delta ∂L/∂z of each layer for random one-hot targets and squared error: what the "
                            "post's backward code computes but never plots. Read right to left.")),
        FigureSpec("hist_tanh", "Histograms of each layer's output: tanh", "ridges",
                   {"panels": ridges["tanh"], "ncols": 5, "xlabel": "tanh output"},
                   caption="Layer 1 on top, each histogram scaled to its own peak."),
        FigureSpec("hist_sigmoid", "Histograms of each layer's output: sigmoid", "ridges",
                   {"panels": ridges["sigmoid"], "ncols": 4, "xlabel": "sigmoid output"},
                   caption="Sigmoid's outputs sit around 0.5; with N(0, 1) they pile up at 0 and 1."),
        FigureSpec("hist_relu", "Histograms of each layer's output: ReLU and leaky ReLU", "ridges",
                   {"panels": ridges["relu"], "ncols": 5, "xlabel": "output"},
                   caption="The x-range of each panel covers 99% of its values; ReLU's exact zeros form the left spike."),
    ]

    layer_cols = [f"layer {i + 1}" for i in range(n_layers)]
    table_f = Table("forward_std", "Activation std per layer: measured (mean-field prediction)",
                    ["case"] + layer_cols, fwd_rows,
                    note="Layer 5 has 2 units: its measured std is a 2-unit sample.")
    table_b = Table("delta_std", "Backpropagated delta std ∂L/∂z per layer (random one-hot targets)",
                    ["case"] + layer_cols, bwd_rows)
    table_v = Table(
        "probe", "The probe's findings per case (initlab.probe)",
        ["case", "the init's σ_w² = fan_in·Var(W), layers 1–5", "finding (verdict)"], verdict_rows,
        note=(f"fan_in is {', '.join(str(v) for v in sizes[:-1])} on layers 1–5, so an init defined through fan_out "
              "or fan_avg (Xavier, the post's He) gives each layer its own σ_w², quoted per layer. The probe compares the last "
              "layer with the input, so a first layer shrinking the 2-D input (σ_w² ≈ 0.02 for Xavier) reads as "
              "vanishing."),
    )
    var_table, var_numbers, torch_note = _variance_table(cfg)
    numbers["variance"] = var_numbers

    c = numbers["cases"]
    r_small = c["std001_tanh"]["act_std"]
    r_xr = c["xavier_relu"]["act_std"]
    r_he = c["he_torch_relu"]["act_std"]
    r_hs = c["he_seed_relu"]["act_std"]
    r_xs = c["xavier_sigmoid"]
    z_init = [abs(row[5]) for row in var_table.rows]
    z_torch = [abs(row[7]) for row in var_table.rows if isinstance(row[7], float)]
    torch_compared = bool(z_torch)
    agrees = max(z_init) < 4
    if torch_compared:
        torch_text = ("torch.nn.init too" if max(z_torch) < 4 else "but torch.nn.init does not")
    else:
        torch_text = ("torch.nn.init was not compared (torch is not installed)" if cfg.torch else
                      "torch.nn.init was not compared (switched off)")
    table_text = (f"Every scheme's sample variance {'agrees' if agrees else 'does not agree'} with its formula for "
                  f"initlab (within {max(z_init):.1f} standard errors, the table's largest |z|); {torch_text}.")
    takeaway = ("Match the weight variance to the activation: N(0, 0.01²) makes the signal vanish, N(0, 1) "
                "saturates tanh and sigmoid, Xavier keeps tanh's std but not sigmoid's gradient, and only He keeps "
                "ReLU's std constant.")
    xs_delta = r_xs["delta_std"]
    verdict = (
        f"N(0, 0.01²): tanh's std falls from {sig(r_small[0])} to {sig(r_small[-1])}. N(0, 1): "
        + "tanh's units saturate from layer 2 on (see the probe's findings). "
        + f"Xavier with sigmoid keeps the forward std near {sig(r_xs['act_std'][2])}, but the delta shrinks from "
        f"{sig(xs_delta[-2])} at layer 4 to {sig(xs_delta[0])} at layer 1 (sigmoid's slope is at most 1/4). "
        f"ReLU: Xavier's std falls from {sig(r_xr[1])} to {sig(r_xr[3])} over layers 2–4, He's stays near "
        f"{sig(r_he[1])}; the post's fan_avg He also stays flat but lower ({sig(r_hs[1])}), set by layer 1 "
        f"(fan_in = {sizes[0]}). " + table_text
    )
    explanation = [
        "A layer multiplies its input's variance by σ_w² = fan_in·Var(W) and by the activation's slope. Below 1 the "
        "signal shrinks layer after layer, far above 1 tanh and sigmoid saturate. ReLU zeroes half its input, so it "
        "needs σ_w² = 2 (He). Xavier's 2/(fan_in+fan_out) averages the forward (fan_in) and backward (fan_out) needs.",
        _backward_story(c["std1_tanh"], sizes) if "std1_tanh" in c else "",
    ]
    explanation = [e for e in explanation if e]
    from initlab.init import compute_fans

    fi, fo = compute_fans(tuple(cfg.table_shape))
    vk, vl = var_numbers["kaiming_normal"], var_numbers["kaiming_normal_leaky"]
    corrections = [
        f"The post's kaiming 'theory' values {sig(vk['seed_theory'], 4)} and {sig(vl['seed_theory'], 4)} use "
        f"fan_avg = {(fi + fo) // 2}. torch's kaiming_*_(mode='fan_in') on a {fo}×{fi} tensor uses fan_in = {fi}: "
        f"2/{fi} = {sig(vk['theory'], 3)} and 2/(1.09·{fi}) = {sig(vl['theory'], 3)}, what torch printed in the post. "
        "Its 'approximations' are the exact values.",
        f"Its leaky_relu uses slope 0.1 in the activation but a = 0.3 in the init; here both use a = {cfg.leaky_slope:g}.",
        "Its 'He' for the histograms is 4/(fan_in+fan_out), not He et al.'s 2/fan_in; both are shown.",
        "Its first 'Xavier' is std √(1/fan_in), LeCun's init; Glorot's is 2/(fan_in+fan_out). Both are shown.",
        "Its backward code computes the deltas, then plots the forward outputs again, and evaluates "
        "derivative_tanh on the output (1 − tanh(tanh(z))²). The deltas here are exact.",
    ]
    summary = (f"{takeaway} {table_text} The post's kaiming theory values are corrected to {sig(vk['theory'], 3)} "
               f"and {sig(vl['theory'], 3)}.")
    return StudyResult(
        study="seed000", title=TITLE, config=asdict(cfg), numbers=numbers,
        tables=[table_f, table_b, table_v, var_table], figures=figures, summary=summary, takeaway=takeaway,
        headline="std_per_layer", fixes=fixes, verdict=verdict,
        explanation=explanation + ([torch_note] if torch_note else []), corrections=corrections,
        seconds=time.perf_counter() - t0,
    )


def seed000(config: Seed000Config | None = None) -> StudyResult:
    """Run seed 000 with ``config`` (default: :meth:`Seed000Config.make`); BLAS on one thread."""
    with single_thread():
        return _seed000(config)
