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
from initlab.studies._common import single_thread, hist_panel, predicted_act_std, probe_run, sig, sub_seed, verdict_cell
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
    wf = case["backward_weight_factor"]  # wf[l]: step from layer l+2 back to layer l+1 (1-based)
    rms = case["derivative_rms"]
    n = len(d)
    chain = " → ".join(f"{sig(d[i])} (layer {i + 1})" for i in reversed(range(n)))
    steps = [(i, wf[i] * rms[i], d[i] / d[i + 1] if d[i + 1] > 0 else float("nan")) for i in range(n - 1)]
    wide = [st for st in steps if sizes[st[0] + 2] > 2]  # steps back through a wide layer's weights
    grow = sum(1 for _, _, m in wide if m > 1)
    span = f"from layer {wide[-1][0] + 2} back to layer {wide[0][0] + 1}" if wide else "through the layers"
    trend = (f"grow {span}" if grow == len(wide) else f"shrink {span}" if grow == 0 else f"go up and down {span}")
    narrow = [st for st in steps if st not in wide]
    sp = case["delta_near_zero"][0]
    ku = case["delta_excess_kurtosis"][0]
    parts = [
        f"With N(0, 1) and {case['activation']} the deltas {trend}: their std goes {chain}.",
        ("Saturation does not make them vanish here, because" if all(p > 1 for _, p, _ in wide) else "Here")
        + " each step back also multiplies the delta by Wᵀ, a "
        f"factor √fan_out·σ_w ≈ {', '.join(f'{wf[i]:.3g}' for i, _, _ in wide)} for layers "
        f"{', '.join(str(i + 1) for i, _, _ in wide)}, which "
        + ("outweighs" if all(p > 1 for _, p, _ in wide) else "does not always outweigh") + " the "
        f"small derivative (rms φ′(z) {', '.join(f'{rms[i]:.3g}' for i, _, _ in wide)}): predicted factors per step "
        f"{', '.join(f'{p:.3g}' for _, p, _ in wide)}, measured {', '.join(f'{m:.3g}' for _, _, m in wide)}.",
    ]
    if narrow:
        parts.append("The step back through the 2-unit output layer's weights (factor "
                     f"{', '.join(f'{wf[i]:.3g}' for i, _, _ in narrow)}) is the exception: there the delta changes by "
                     f"{', '.join(f'{m:.3g}' for _, _, m in narrow)}.")
    if sp is not None and ku is not None:
        parts.append(f"The deltas are far from Gaussian: {sp:.0%} of layer-1 deltas are within 1 % of their std of 0 "
                     f"(the spike: saturated units) while a few are huge (excess kurtosis {ku:.3g}: heavy tails).")
    return " ".join(parts)


def _sigmoid_note(sizes: list[int]) -> str:
    """One line for the reader about the probe's sigmoid advice: what σ_w² the usual inits give."""
    from initlab import init as _init
    from initlab.theory import critical_sigma_w2

    fans = [(a, b) for a, b in zip(sizes[1:-2], sizes[2:-1])]  # (fan_in, fan_out) of the wide hidden layers 2..4
    xav = [2.0 * fi / (fi + fo) for fi, fo in fans]
    g2 = float(_init.gain("sigmoid")) ** 2
    crit = float(critical_sigma_w2("sigmoid", sigma_b2=0.0))
    return (f"Reading the sigmoid advice: σ_w² = fan_in·Var(W). σ_w² = {g2:.3g} keeps sigmoid's signal variance from "
            f"shrinking layer to layer; Xavier (σ_w² = {min(xav):.2f}–{max(xav):.2f} on hidden layers 2–4) and LeCun/1-over-"
            f"fan_in (σ_w² = 1) are smaller still, so they shrink it. The theory's other landmark, the edge of chaos "
            f"(σ_w² ≈ {crit:.3g} for sigmoid with zero bias), is no usable init: at that scale most units are saturated.")


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
    """Run seed 000: forward and backward histograms for every case, and the variance table."""
    from initlab import activations as _act
    from initlab.data import gaussian
    from initlab.nn import Network

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
    figures: list[FigureSpec] = []
    fwd_rows: list[list[Any]] = []
    bwd_rows: list[list[Any]] = []
    verdict_rows: list[list[Any]] = []
    for ci, (key, label, act_name, spec, seed_name) in enumerate(_cases(cfg.leaky_slope)):
        act = _act.get(act_name)
        net = Network(sizes, activation=act_name, output=act_name, init=spec, bias_init="zeros",
                      rng=as_generator(sub_seed(cfg.seed, 4, ci)))
        out, trace = net.forward(x, capture=True)
        net.backward(out - y, trace)  # per-sample squared error ½‖out − y‖², as the seed's deltas
        acts = [np.asarray(t.act, dtype=np.float64) for t in trace]
        deltas = [np.asarray(t.grad_preact, dtype=np.float64) for t in trace]
        act_std = [float(a.std()) for a in acts]
        act_mean = [float(a.mean()) for a in acts]
        delta_std = [float(d.std()) for d in deltas]
        pred = predicted_act_std(sizes, [act_name] * n_layers, [spec] * n_layers, input_var=1.0)
        verdicts, pres = probe_run(net, x, y, loss="mse", rng=as_generator(sub_seed(cfg.seed, 5, ci)))
        # one source of truth: the saturated fraction is the probe's (None where it does not apply)
        saturated = [None if s.saturated is None else float(s.saturated) for s in pres.layers]
        # the backward step from layer l+1 to l multiplies the delta by Wᵀ (a factor √n_{l+1}·std(W)
        # for random W) and by φ′(z_l): both measured here, to explain the delta table from the data
        w_factor = [math.sqrt(sizes[li + 2]) * float(np.asarray(net.layers[li + 1].weight, dtype=np.float64).std())
                    for li in range(n_layers - 1)]
        d_rms = [float(np.sqrt(np.mean(np.asarray(act.derivative(np.asarray(t.preact, dtype=np.float64)),
                                                   dtype=np.float64) ** 2))) for t in trace]
        spike = [float(np.mean(np.abs(d) < 0.01 * sd)) if sd > 0 else None for d, sd in zip(deltas, delta_std)]
        kurt = [float(np.mean(d**4) / np.mean(d**2) ** 2 - 3.0) if sd > 0 else None for d, sd in zip(deltas, delta_std)]
        numbers["cases"][key] = {
            "label": label, "activation": act_name, "init": spec, "seed_name": seed_name,
            "act_mean": act_mean, "act_std": act_std, "predicted_act_std": pred, "delta_std": delta_std,
            "saturated": saturated, "probe_verdicts": verdicts, "backward_weight_factor": w_factor,
            "derivative_rms": d_rms, "delta_near_zero": spike, "delta_excess_kurtosis": kurt,
        }
        fwd_rows.append([label] + [f"{sig(s)} ({sig(p)})" for s, p in zip(act_std, pred)])
        bwd_rows.append([label] + [sig(d) for d in delta_std])
        hidden = [s for s in act_std[:-1] if s > 0]
        trend = (hidden[-1] / hidden[0]) ** (1.0 / (len(hidden) - 1)) if len(hidden) > 1 else None
        verdict_rows.append([label, trend, verdict_cell(verdicts)])

        if act.name == "tanh":
            rng_f: tuple[float, float] | None = (-1.0, 1.0)
        elif act.name == "sigmoid":
            rng_f = (0.0, 1.0)
        else:
            hi = max(float(np.quantile(a, 0.995)) for a in acts)
            lo = min(0.0, min(float(np.quantile(a, 0.005)) for a in acts))
            rng_f = (lo, hi) if hi > lo else None
        fwd = [hist_panel(a, bins=cfg.bins, value_range=rng_f, title=f"layer {i + 1}: std {sig(s)}")
               for i, (a, s) in enumerate(zip(acts, act_std))]
        bwd = [hist_panel(d, bins=cfg.bins, central=0.95, pad=0.1, title=f"layer {i + 1}: std {sig(s)}")
               for i, (d, s) in enumerate(zip(deltas, delta_std))]
        figures.append(FigureSpec(
            key, f"{label}: activations (top) and backpropagated deltas ∂L/∂z (bottom)", "histograms",
            {"rows": [{"label": "forward", "panels": fwd}, {"label": "backward", "panels": bwd}]},
            caption=(f"Top: histogram of each layer's output φ(z) over {cfg.n_inputs} inputs "
                     f"(the seed's '{seed_name}'). Bottom: each layer's delta ∂L/∂z for random one-hot targets "
                     "and squared error — the picture the seed's backward code computes but never plots "
                     "(its second plot shows the forward outputs again). Panel titles give the std; "
                     "the delta panels each have their own x-range: the central 95 % of the deltas widened by 10 % on each side, "
                     "with the deltas beyond it counted in the two edge bins."),
        ))

    layer_cols = [f"layer {i + 1}" for i in range(n_layers)]
    table_f = Table("forward_std", "Activation std per layer: measured (mean-field prediction)",
                    ["case"] + layer_cols, fwd_rows,
                    note=("Prediction: initlab.theory.predict_stack for the same widths, activation and init, input "
                          "variance 1. Layer 5 has only 2 units, so its measured std is a 2-unit sample and can differ "
                          "from the (infinite-width) prediction by a lot; layers 1–4 have 200–400 units."))
    table_b = Table("delta_std", "Backpropagated delta std ∂L/∂z per layer (random one-hot targets)",
                    ["case"] + layer_cols, bwd_rows,
                    note="Read right to left: the gradient enters at layer 5 and flows back to layer 1.")
    first_sig = next((r for r in verdict_rows if "sigmoid" in r[0] and "edge of chaos" in r[2]), None)
    if first_sig is not None:
        first_sig[2] += "\n" + _sigmoid_note(sizes)
    table_v = Table(
        "probe", "The probe's verdict per case (initlab.probe), all lines",
        ["case", "std change per layer, hidden layers 1→4", "verdict"], verdict_rows,
        note=("The probe judges all five layers, including layer 1 (fan_in = 2: its std depends on the 2-D input, not on "
              "a wide sum) and the 2-unit output layer, so its per-layer trends ('falls by ~x per layer') can differ from "
              "the trend over the wide hidden layers alone, given in the second column as (std of layer 4 / std of "
              "layer 1)^(1/3) from the forward table."),
        formats=[None, ".3f", None],
    )
    var_table, var_numbers, torch_note = _variance_table(cfg)
    numbers["variance"] = var_numbers

    c = numbers["cases"]
    r_small = c["std001_tanh"]["act_std"]
    r_big = c["std1_tanh"]["saturated"]
    r_xr = c["xavier_relu"]["act_std"]
    r_he = c["he_torch_relu"]["act_std"]
    r_hs = c["he_seed_relu"]["act_std"]
    z_d = c["zeros_tanh"]["delta_std"]
    zeros_text = ("every delta is 0" if all(d == 0 for d in z_d) else
                  "every delta but the output layer's is 0" if all(d == 0 for d in z_d[:-1]) else
                  f"the deltas are {', '.join(sig(d) for d in z_d)}")
    sat2 = f"{r_big[1]:.0%} of layer-2 units saturated, by the probe's count" if r_big[1] is not None else "saturated"
    ratio_l1 = (2.0 / sizes[0]) / (4.0 / (sizes[0] + sizes[1]))
    z_init = [abs(row[5]) for row in var_table.rows]
    z_torch = [abs(row[7]) for row in var_table.rows if isinstance(row[7], float)]
    torch_compared = bool(z_torch)
    if torch_compared:
        torch_text = (f"for torch.nn.init too (max |z| {max(z_torch):.1f})" if max(z_torch) < 4 else
                      f"but torch.nn.init differs (max |z| {max(z_torch):.1f})")
    else:
        torch_text = ("torch.nn.init was not compared (torch is not installed)" if cfg.torch else
                      "torch.nn.init was not compared (switched off)")
    agrees = max(z_init) < 4
    table_text = (f"The variance table {'agrees' if agrees else 'does not agree'} with theory for initlab "
                  f"(max |z| {max(z_init):.1f}); {torch_text}.")
    verdict = (
        f"Zeros pass nothing (every tanh output is 0 and {zeros_text}). N(0, 0.01²) shrinks tanh's signal "
        f"layer by layer (std {sig(r_small[0])} → {sig(r_small[-1])}); N(0, 1) saturates tanh "
        f"({sat2}). Variance 1/fan_in and Xavier keep tanh's and sigmoid's "
        f"signal alive. With ReLU, Xavier halves the variance at each layer (std {sig(r_xr[1])} → {sig(r_xr[-2])}), "
        f"while He keeps it constant: torch's fan_in He at std ≈ {sig(r_he[1])}…{sig(r_he[-2])} in every hidden layer; "
        f"the seed's fan_avg He also keeps it constant but ~{r_he[1] / r_hs[1]:.0f}× lower ({sig(r_hs[1])}…{sig(r_hs[-2])}), "
        f"set by the first layer, where fan_in = {sizes[0]} and fan_out = {sizes[1]} make 4/(fan_in+fan_out) "
        f"{ratio_l1:.0f} times smaller than 2/fan_in. " + table_text
        + " The seed's kaiming 'theory' numbers use the wrong fan."
    )
    explanation = [
        "Each figure is one (init, activation) case on the seed's network 2-200-300-400-300-2 with the activation on "
        "every layer, the output too, and no biases (zero). The forward row is what the seed plots; the backward row "
        "is what its text describes: the delta ∂L/∂z of each layer, for targets drawn as random one-hot vectors and "
        "the squared-error loss the seed's code uses.",
        "Why: a layer multiplies its input variance by fan_in·Var(W) times the activation's gain. Below 1 the signal "
        "vanishes with depth (std 0.01), above 1 tanh and sigmoid saturate (std 1). Variance 1/fan_in is the fixed "
        "point for tanh near 0; ReLU zeroes half its input, "
        "so it needs twice that (He). Xavier's 2/(fan_in+fan_out) compromises between the forward (fan_in) and the "
        "backward (fan_out) pass. The mean-field prediction beside each measured std is the same recursion computed "
        "exactly over a Gaussian.",
        "The variance table draws each scheme once on a 300×500 tensor and compares the sample variance with the "
        "formula, for initlab and torch.nn.init; z is the difference in standard errors of a sample variance.",
    ]
    explanation.insert(2, " ".join(_backward_story(c[k], sizes) for k in ("std1_tanh", "std1_sigmoid") if k in c))
    from initlab.init import compute_fans

    fi, fo = compute_fans(tuple(cfg.table_shape))
    vk, vl = var_numbers["kaiming_normal"], var_numbers["kaiming_normal_leaky"]
    corrections = [
        f"The seed's kaiming 'theory' values {sig(vk['seed_theory'], 4)} (and {sig(vl['seed_theory'], 4)} for leaky_relu "
        f"with a = 0.3) use fan_avg = ({fo}+{fi})/2 = {(fi + fo) // 2}. torch.nn.init.kaiming_*_(mode='fan_in') on a "
        f"{fo}×{fi} tensor uses fan_in = {fi}: the right values are 2/{fi} = {sig(vk['theory'], 3)} and "
        f"2/(1.09·{fi}) = {sig(vl['theory'], 3)} — what torch measured in the seed ({vk['seed_torch']:.4f}, "
        f"{vl['seed_torch']:.4f}). The lines the seed calls 'approximations' are the exact values.",
        "The seed's leaky_relu code uses a negative slope of 0.1 in the activation but a = 0.3 in the init. Here "
        f"both use a = {cfg.leaky_slope:g}.",
        "The seed's 'He' for the histograms is variance 4/(fan_in+fan_out) = variance_scaling(scale=2, mode=fan_avg), "
        "not He et al.'s 2/fan_in; both are shown, labelled.",
        "The seed's first 'Xavier' check uses std √(1/fan_in) (variance 1/fan_in, LeCun's init); Xavier/Glorot is "
        "2/(fan_in+fan_out). Both are shown.",
        "The seed's backward code computes the deltas and then plots the forward outputs again, so its 'back "
        "propagation' figures are forward pictures; its tanh delta also evaluates derivative_tanh on the layer's "
        "output (1 − tanh(tanh(z))²) where 1 − y² was meant. The deltas here are exact (initlab's backward pass).",
    ]
    summary = (f"Deep signal vanishes with std 0.01, saturates with std 1 (where the deltas do not vanish but grow "
               f"heavy-tailed), and is kept by Xavier (tanh/sigmoid) and He (ReLU); the variance table "
               f"{'matches' if agrees else 'does not match'} theory for initlab (max |z| {max(z_init):.1f}; "
               f"{torch_text.replace('for torch.nn.init too', 'torch.nn.init too')}), and the seed's kaiming theory values "
               f"(fan_avg) are corrected to torch's fan_in: {sig(vk['theory'], 3)} and {sig(vl['theory'], 3)}.")
    return StudyResult(
        study="seed000", title=TITLE, config=asdict(cfg), numbers=numbers,
        tables=[table_f, table_b, table_v, var_table], figures=figures, summary=summary, verdict=verdict,
        explanation=explanation + ([torch_note] if torch_note else []), corrections=corrections,
        seconds=time.perf_counter() - t0,
    )


def seed000(config: Seed000Config | None = None) -> StudyResult:
    """Run seed 000 with ``config`` (default: :meth:`Seed000Config.make`); BLAS on one thread."""
    with single_thread():
        return _seed000(config)
