"""Seed 001: a 2-12-6-1 ReLU network with a sigmoid output on two moons, trained by full-batch
gradient descent on cross-entropy (lr 0.01, 15000 epochs) from three inits: zeros, N(0, 1)·10 and
He (He, Zhang, Ren & Sun 2015, "Delving Deep into Rectifiers": N(0, 2/fan_in)).

The seed's table: zeros 50 % / 50 % (nothing learned: every unit is identical and ReLU(0) = 0
passes no gradient), large random 85 % / 82 % (saturated sigmoid, cost stuck near 4.6), He 95 % /
94 %.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from initlab._rng import as_generator
from initlab.studies._common import predicted, probe_run, sig, single_thread, sub_seed, verdict_fixes, verdict_messages
from initlab.studies._result import FigureSpec, StudyResult, Table

__all__ = ["Seed001Config", "seed001", "INITS", "SEED_TABLE"]

TITLE = "Seed 001: zeros, large random and He on two moons"

# (key, label, init spec, the seed's note)
INITS: list[tuple[str, str, str, str]] = [
    ("zeros", "Zeros", "zeros", "Network fails to learn"),
    ("large", "Large random N(0, 1)·10", "normal(std=10)", "Weights are too large"),
    ("he", "He N(0, 2/fan_in)", "kaiming_normal(mode=fan_in, nonlinearity=relu)", "Effective for ReLU activation"),
]

#: The seed's accuracy table (train %, test %) and final cost.
SEED_TABLE: dict[str, tuple[float, float, float]] = {
    "zeros": (50.0, 50.0, 0.6931271807599427),
    "large": (85.99297141360952, 82.9904410614862, 4.636862344557608),
    "he": (95.43587328241739, 94.00148816395938, 0.06929693689796101),
}


@dataclass(frozen=True)
class Seed001Config:
    """Configuration of :func:`seed001` (the seed's values by default).

    ``grid`` is the resolution of the decision-boundary plots; ``curve_points`` how many points
    of each cost curve are kept for the figure (the JSON keeps the same thinned curve).
    """

    n_train: int = 400
    n_test: int = 100
    noise: float = 0.2
    sizes: tuple[int, ...] = (2, 12, 6, 1)
    lr: float = 0.01
    epochs: int = 15000
    grid: int = 150
    curve_points: int = 1000
    seed: int = 0
    quick: bool = False

    @classmethod
    def make(cls, *, quick: bool = False, seed: int = 0, **overrides: Any) -> "Seed001Config":
        """The default config, or the quick one (8000 epochs, a coarser decision grid)."""
        base: dict[str, Any] = {"seed": seed, "quick": quick}
        if quick:
            base.update(epochs=8000, grid=100, curve_points=300)
        base.update(overrides)
        return cls(**base)


_SEED_EPS = 1e-5
#: where the seed's N(0, 1)·10 cost curve starts (read off its printed cost at epoch 0)
SEED_LARGE_FIRST_COST = 7.3


def _seed_cost(p: np.ndarray, y: np.ndarray) -> float:
    """The seed's cost: cross-entropy with 1e-5 added inside the logs (inferred from its zeros run, whose
    cost 0.6931271807599427 is −ln(0.5 + 1e-5), not ln 2 = 0.6931471805599453).

    >>> round(_seed_cost(np.array([0.5, 0.5]), np.array([0, 1])), 10)
    0.6931271808
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p + _SEED_EPS) + (1 - y) * np.log(1 - p + _SEED_EPS)))


def _seed001(config: Seed001Config | None = None) -> StudyResult:
    """Run seed 001: train the three inits, tabulate accuracy, draw costs and decision regions."""
    from initlab.data import moons
    from initlab.nn import Network

    cfg = config or Seed001Config.make()
    t0 = time.perf_counter()
    data = moons(cfg.n_train, cfg.n_test, cfg.noise, rng=as_generator(sub_seed(cfg.seed, 0)))
    Xtr, ytr, Xte, yte = data
    lo = np.minimum(Xtr.min(axis=0), Xte.min(axis=0)) - 1.0
    hi = np.maximum(Xtr.max(axis=0), Xte.max(axis=0)) + 1.0
    gx = np.linspace(lo[0], hi[0], cfg.grid)
    gy = np.linspace(lo[1], hi[1], cfg.grid)
    xx, yy = np.meshgrid(gx, gy)
    grid_pts = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)

    numbers: dict[str, Any] = {"runs": {}, "data": {"n_train": int(len(ytr)), "n_test": int(len(yte)),
                                                     "train_class_balance": float(np.mean(ytr))}}
    rows: list[list[Any]] = []
    series: list[dict[str, Any]] = []
    panels: list[dict[str, Any]] = []
    verdict_rows: list[list[Any]] = []
    init_rows: list[list[Any]] = []
    fixes: dict[str, str] = {}
    for i, (key, label, spec, seed_note) in enumerate(INITS):
        net = Network(list(cfg.sizes), activation="relu", output="sigmoid", init=spec, bias_init="zeros",
                      rng=as_generator(sub_seed(cfg.seed, 1, i)))
        p0 = np.asarray(net.predict(Xtr)).ravel()
        # the per-layer statistics at init are the probe's (one source of truth)
        verdicts, pres = probe_run(net, Xtr, ytr.astype(np.float32).reshape(-1, 1), loss="mse",
                                   rng=as_generator(sub_seed(cfg.seed, 3, i)))
        init_std = [float(s.std) for s in pres.layers]
        out_pre_std = float(pres.layers[-1].preact_std)
        n_l = len(cfg.sizes) - 1
        pred = predicted(list(cfg.sizes), ["relu"] * (n_l - 1) + ["sigmoid"], [spec] * n_l,
                         input_var=float(np.mean(np.asarray(Xtr, dtype=np.float64) ** 2)))
        pred_std = [float(v) for v in np.asarray(pred.act_std, dtype=float)]
        pred_pre = float(np.sqrt(np.asarray(pred.preact_var, dtype=float)[-1]))
        init_rows.append([label] + [f"{sig(m)} ({sig(q)})" for m, q in zip(init_std, pred_std)]
                         + [f"{sig(out_pre_std)} ({sig(pred_pre)})"])
        fixes.update(verdict_fixes(pres))
        hist = net.fit(Xtr, ytr, epochs=cfg.epochs, lr=cfg.lr, optimizer="sgd", loss="bce", progress=False,
                       rng=as_generator(sub_seed(cfg.seed, 2, i)))
        p_tr = np.asarray(net.predict(Xtr)).ravel()
        p_te = np.asarray(net.predict(Xte)).ravel()
        acc_tr = float(np.mean((p_tr > 0.5) == (ytr == 1)))
        acc_te = float(np.mean((p_te > 0.5) == (yte == 1)))
        cost = [float(c) for c in hist.epoch_loss]
        final = net.evaluate(Xtr, ytr, loss="bce")["loss"]
        clipped0, clipped1 = _seed_cost(p0, ytr), _seed_cost(p_tr, ytr)
        step = max(1, len(cost) // cfg.curve_points)
        idx = list(range(0, len(cost), step))
        if idx and idx[-1] != len(cost) - 1:
            idx.append(len(cost) - 1)
        series.append({"label": label, "x": idx, "y": [cost[j] for j in idx], "color_index": i})
        grid_p = np.asarray(net.predict(grid_pts)).reshape(cfg.grid, cfg.grid)
        panels.append({"title": f"{label}: test {acc_te:.0%}", "x_range": [float(lo[0]), float(hi[0])],
                       "y_range": [float(lo[1]), float(hi[1])], "grid": np.round(grid_p, 3).tolist(),
                       "points": np.round(Xtr, 4).tolist(), "labels": ytr.tolist()})
        s_tr, s_te, s_cost = SEED_TABLE[key]
        if key == "zeros":
            note = "nothing learned: identical units, ReLU(0)=0 passes no gradient"
        elif key == "large":
            note = "sigmoid saturated at the start: huge cost, slow progress"
        else:
            note = "learns the moons"
        rows.append([label, acc_tr, acc_te, cost[0] if cost else None, cost[-1] if cost else None, float(final),
                     clipped0, clipped1, s_tr / 100, s_te / 100, s_cost, note, seed_note])
        verdict_rows.append([label, verdict_messages(pres)])
        numbers["runs"][key] = {
            "init": spec, "train_accuracy": acc_tr, "test_accuracy": acc_te, "first_cost": cost[0] if cost else None,
            "final_cost": float(final), "first_cost_seed_formula": clipped0, "final_cost_seed_formula": clipped1,
            "diverged": bool(hist.diverged),
            "seed_train_accuracy": s_tr / 100, "seed_test_accuracy": s_te / 100, "seed_final_cost": s_cost,
            "probe_verdicts": verdicts, "init_act_std": init_std, "predicted_init_act_std": pred_std,
            "cost_curve_epochs": idx, "cost_curve": [cost[j] for j in idx], "last_epoch_cost": cost[-1] if cost else None,
            "init_output_preact_std": out_pre_std, "predicted_init_output_preact_std": pred_pre,
        }

    table = Table(
        "accuracy", "Accuracy after training (train, test), with the seed's table beside",
        ["init", "train", "test", "first cost", "last epoch's cost (curve)", "final cost (after training)",
         "first cost, seed's formula", "final cost, seed's formula", "seed: train", "seed: test", "seed: final cost",
         "our note", "seed's note"],
        rows,
        note=(f"Full-batch gradient descent, lr {cfg.lr}, {cfg.epochs} epochs, cross-entropy; {cfg.n_train} training "
              f"and {cfg.n_test} test points of make_moons(noise={cfg.noise}). One unseeded run in the post, one seeded "
              "run here. \"Seed's formula\": the post's cost, with 10⁻⁵ inside the logarithms."),
        formats=[None, ".1%", ".1%", ".4f", ".4f", ".4f", ".4f", ".4f", ".1%", ".1%", ".4f", None, None],
    )
    table_p = Table("probe", "The probe's findings at initialization", ["init", "finding (verdict)"], verdict_rows)
    table_i = Table(
        "init_std", "At initialization: activation std per layer on the training inputs, measured (mean-field prediction)",
        ["init"] + [f"layer {j + 1} ({w} units)" for j, w in enumerate(cfg.sizes[1:])]
        + ["output pre-activation (before the sigmoid)"], init_rows,
        note=("With 12, 6 and 1 units these layers are far from the wide limit the theory describes, so only the order "
              "of magnitude is expected to agree. A single saturated sigmoid unit has std near 0 where the theory, "
              "averaging over many units, says about 0.5; its pre-activation (last column) agrees."),
    )
    r = numbers["runs"]
    figures = [
        FigureSpec("cost", "Training cost per epoch", "curves",
                   {"panels": [{"title": f"full-batch gradient descent, learning rate {cfg.lr}", "xlabel": "epoch",
                                "ylabel": "cross-entropy (log scale)", "logy": True, "series": series}], "ncols": 1},
                   caption="Zeros stay at ln 2 = 0.693 forever; N(0, 1)·10 starts high and creeps down; He falls fast."),
        FigureSpec("decision", "Decision regions after training", "decision", {"panels": panels},
                   caption=("Colour: the network's P(class 1); dots: the training points. Zeros predicts 0.5 "
                            "everywhere; He bends the boundary around the moons.")),
    ]
    takeaway = ("Zeros never learn, huge random weights start from a saturated sigmoid and learn slowly, and He "
                "learns the two moons.")
    verdict = (
        f"Test accuracy: zeros {r['zeros']['test_accuracy']:.0%}, N(0, 1)·10 {r['large']['test_accuracy']:.0%}, He "
        f"{r['he']['test_accuracy']:.0%} (the post: 50%, 83%, 94%). The zeros cost stays at "
        f"{sig(r['zeros']['final_cost'], 4)}; N(0, 1)·10 starts at {sig(r['large']['first_cost'])}."
    )
    explanation = [
        "With all weights zero every hidden unit outputs ReLU(0) = 0, so no hidden weight gets a gradient and the "
        "output stays σ(b) = 0.5: half the points are right, forever.",
        "N(0, 1)·10 makes the output's pre-activation huge, so the sigmoid answers 0 or 1 with full confidence and a "
        "wrong answer costs tens of nats. He's variance 2/fan_in keeps each ReLU layer's signal at its input's size.",
    ]
    cap = float(-np.log(_SEED_EPS))
    plateau_frac = SEED_TABLE["large"][2] / cap
    corrections = [
        "The post's zeros cost 0.6931271807599427 is −ln(0.5 + 10⁻⁵), not ln 2 = 0.6931471805599453: it adds 10⁻⁵ "
        f"inside the logarithms, which caps a wrong point's cost at {cap:.1f}. With that formula our N(0, 1)·10 run "
        f"starts at {sig(r['large']['first_cost_seed_formula'])} (the post: {SEED_LARGE_FIRST_COST}). The cap cannot "
        f"explain its plateau at {sig(SEED_TABLE['large'][2])}: that needs {plateau_frac:.0%} of points at the cap, "
        f"at most {1 - plateau_frac:.0%} accuracy, yet it reports {SEED_TABLE['large'][0]:.0f}%.",
        "It says He draws from a truncated normal; its code (np.random.randn · √(2/n)) does not. This study uses "
        "the untruncated normal, as the code.",
        "It writes N(0, √(2/n)) with the standard deviation in the variance's place; the variance is 2/n.",
        "Its accuracies (95.39%, 85.99%, ...) are not multiples of 1/400 (train) or 1/100 (test), so they cannot be "
        "fractions of correctly classified points.",
    ]
    summary = (f"Moons: zeros {r['zeros']['test_accuracy']:.0%}, N(0,1)·10 {r['large']['test_accuracy']:.0%}, "
               f"He {r['he']['test_accuracy']:.0%} test accuracy (seed: 50 %, 82 %, 94 %).")
    return StudyResult(
        study="seed001", title=TITLE, config=asdict(cfg), numbers=numbers, tables=[table, table_i, table_p], figures=figures,
        summary=summary, takeaway=takeaway, headline="cost", fixes=fixes, verdict=verdict, explanation=explanation,
        corrections=corrections,
        seconds=time.perf_counter() - t0,
    )


def seed001(config: Seed001Config | None = None) -> StudyResult:
    """Run seed 001 with ``config`` (default: :meth:`Seed001Config.make`); BLAS on one thread."""
    with single_thread():
        return _seed001(config)
