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

from initlab.studies._common import single_thread, hist_panel, predicted_act_std, probe_verdicts, sig, sub_seed
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
    if cfg.torch:
        try:
            import torch as torch_mod
        except ImportError:
            torch_mod = None
            torch_note = "torch is not installed, so the torch.nn.init column is empty (pip install torch==2.13.0)."
    else:
        torch_note = "torch comparison switched off in the config."
    rows: list[list[Any]] = []
    numbers: dict[str, Any] = {}
    for i, (key, label, spec, tname, tkw, formula, seed_torch, seed_theory) in enumerate(VARIANCE_ROWS):
        theory = _theory_var(key, fan_in, fan_out)
        uniform = "uniform" in key and key != "he_seed"
        se = _var_se(theory, n, uniform)
        w = _init.get(spec)(shape, rng=np.random.default_rng(sub_seed(cfg.seed, 0, i)), dtype=np.float32)
        ours = float(np.var(w.astype(np.float64), ddof=1))
        tvar = None
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
        rows.append([label, spec, formula, theory, ours, (ours - theory) / se, tvar,
                     None if tvar is None else (tvar - theory) / se, seed_torch, seed_theory, note])
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
    x = np.asarray(gaussian(cfg.n_inputs, sizes[0], rng=np.random.default_rng(sub_seed(cfg.seed, 2))), dtype=np.float32)
    gen_y = np.random.default_rng(sub_seed(cfg.seed, 3))
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
                      rng=np.random.default_rng(sub_seed(cfg.seed, 4, ci)))
        out, trace = net.forward(x, capture=True)
        net.backward(out - y, trace)  # per-sample squared error ½‖out − y‖², as the seed's deltas
        acts = [np.asarray(t.act, dtype=np.float64) for t in trace]
        deltas = [np.asarray(t.grad_preact, dtype=np.float64) for t in trace]
        act_std = [float(a.std()) for a in acts]
        act_mean = [float(a.mean()) for a in acts]
        delta_std = [float(d.std()) for d in deltas]
        saturated = [float(np.mean(act.saturated_mask(np.asarray(t.preact)))) for t in trace]
        pred = predicted_act_std(sizes, [act_name] * n_layers, [spec] * n_layers, input_var=1.0)
        verdicts = probe_verdicts(net, x, y, loss="mse", rng=np.random.default_rng(sub_seed(cfg.seed, 5, ci)))
        numbers["cases"][key] = {
            "label": label, "activation": act_name, "init": spec, "seed_name": seed_name,
            "act_mean": act_mean, "act_std": act_std, "predicted_act_std": pred, "delta_std": delta_std,
            "saturated": saturated, "probe_verdicts": verdicts,
        }
        fwd_rows.append([label] + [f"{sig(s)} ({sig(p)})" for s, p in zip(act_std, pred)])
        bwd_rows.append([label] + [sig(d) for d in delta_std])
        verdict_rows.append([label, "; ".join(verdicts[:2]) + (f" (+{len(verdicts) - 2} more)" if len(verdicts) > 2 else "")])

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
        bwd = [hist_panel(d, bins=cfg.bins, central=0.95, title=f"layer {i + 1}: std {sig(s)}")
               for i, (d, s) in enumerate(zip(deltas, delta_std))]
        figures.append(FigureSpec(
            key, f"{label}: activations (top) and backpropagated deltas ∂L/∂z (bottom)", "histograms",
            {"rows": [{"label": "forward", "panels": fwd}, {"label": "backward", "panels": bwd}]},
            caption=(f"Top: histogram of each layer's output φ(z) over {cfg.n_inputs} inputs "
                     f"(the seed's '{seed_name}'). Bottom: each layer's delta ∂L/∂z for random one-hot targets "
                     "and squared error — the picture the seed's backward code computes but never plots "
                     "(its second plot shows the forward outputs again). Panel titles give the std; "
                     "the delta panels each have their own x-range, covering the central 95 % of the deltas."),
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
    table_v = Table("probe", "The probe's verdict per case (initlab.probe)", ["case", "verdict"], verdict_rows)
    var_table, var_numbers, torch_note = _variance_table(cfg)
    numbers["variance"] = var_numbers

    c = numbers["cases"]
    r_small = c["std001_tanh"]["act_std"]
    r_big = c["std1_tanh"]["saturated"]
    r_xr = c["xavier_relu"]["act_std"]
    r_he = c["he_torch_relu"]["act_std"]
    r_hs = c["he_seed_relu"]["act_std"]
    verdict = (
        f"Zeros pass nothing (every tanh output is 0 and every delta is 0). N(0, 0.01²) shrinks tanh's signal "
        f"layer by layer (std {sig(r_small[0])} → {sig(r_small[-1])}); N(0, 1) saturates tanh "
        f"({r_big[1]:.0%} of layer-2 units saturated). Variance 1/fan_in and Xavier keep tanh's and sigmoid's "
        f"signal alive. With ReLU, Xavier halves the variance at each layer (std {sig(r_xr[1])} → {sig(r_xr[-2])}), "
        f"while He keeps it constant: torch's fan_in He at std ≈ {sig(r_he[1])}…{sig(r_he[-2])} in every hidden layer; "
        f"the seed's fan_avg He also keeps it constant but ~{r_he[1] / r_hs[1]:.0f}× lower ({sig(r_hs[1])}…{sig(r_hs[-2])}), "
        "set by the first layer, where fan_in = 2 and fan_out = 200 make 4/(fan_in+fan_out) fifty times smaller than 2/fan_in. "
        "The variance table agrees with theory for initlab and for torch; the seed's kaiming 'theory' numbers are wrong."
    )
    explanation = [
        "Each figure is one (init, activation) case on the seed's network 2-200-300-400-300-2 with the activation on "
        "every layer, the output too, and no biases (zero). The forward row is what the seed plots; the backward row "
        "is what its text describes: the delta ∂L/∂z of each layer, for targets drawn as random one-hot vectors and "
        "the squared-error loss the seed's code uses.",
        "Why: a layer multiplies its input variance by fan_in·Var(W) times the activation's gain. Below 1 the signal "
        "vanishes with depth (std 0.01), above 1 tanh and sigmoid saturate (std 1), where their derivative is ~0 and "
        "the deltas vanish too. Variance 1/fan_in is the fixed point for tanh near 0; ReLU zeroes half its input, "
        "so it needs twice that (He). Xavier's 2/(fan_in+fan_out) compromises between the forward (fan_in) and the "
        "backward (fan_out) pass. The mean-field prediction beside each measured std is the same recursion computed "
        "exactly over a Gaussian.",
        "The variance table draws each scheme once on a 300×500 tensor and compares the sample variance with the "
        "formula, for initlab and torch.nn.init; z is the difference in standard errors of a sample variance.",
    ]
    corrections = [
        "The seed's kaiming 'theory' values 0.005 (and 0.004587 for leaky_relu with a = 0.3) use fan_avg = "
        "(300+500)/2 = 400. torch.nn.init.kaiming_*_(mode='fan_in') on a 300×500 tensor uses fan_in = 500: the right "
        "values are 2/500 = 0.004 and 2/(1.09·500) = 0.00367 — exactly what torch measured in the seed (0.0040, "
        "0.0037). The lines the seed calls 'approximations' are the exact values.",
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
    max_z = max(abs(v[5]) for v in var_table.rows)
    summary = (f"Deep signal vanishes with std 0.01, saturates with std 1, and is kept by Xavier (tanh/sigmoid) and He "
               f"(ReLU); the variance table matches theory (max |z| {max_z:.1f}), and the seed's kaiming theory values "
               "(fan_avg) are corrected to torch's fan_in: 0.004 and 0.00367.")
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
