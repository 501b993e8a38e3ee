"""Watching the first hundred steps: a ReLU MLP whose layer dies, beside one that stays healthy.

The probe judges a network at step 0; :class:`~initlab.diagnostics.Probe` (the engine's watch
callback) runs the same verdict engine at every recorded training step, so a layer that dies
during training is named with the step where it died. This study trains a 64-64-64-64-10 ReLU
MLP on scikit-learn's digits with Adam for about 100 steps and watches it every few steps:

* N(0, 1) weights (σ_w² = fan_in = 64, far above He's 2) at lr 0.2;
* He weights at the same lr 0.2 (a control: is it the init or the learning rate?);
* He weights at lr 1e-3 (Adam's default).

The inputs are standardised (each pixel to mean 0, std 1 on the training set; constant pixels
left at 0): raw pixels in [0, 1] are non-negative, which leaves ~10% of He's first-layer units
inactive on a whole batch at step 0 (the probe's ``dead`` rule, > 10% of units), so even a well
initialised net would be flagged. The dead rule is the probe's (:mod:`initlab.diagnostics._verdicts`):
more than 10% of a layer's units inactive on the whole batch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from initlab.studies._common import sub_seed
from initlab.studies._result import FigureSpec, StudyResult, Table

__all__ = ["WatchConfig", "watch", "watch_runs", "dying"]

TITLE = "Watching training"


@dataclass(frozen=True)
class WatchConfig:
    """Configuration of :func:`watch`: the network, the runs (label, init, Adam lr), the training."""

    layers: tuple[int, ...] = (64, 64, 64, 64, 10)
    activation: str = "relu"
    runs: tuple[tuple[str, str, float], ...] = (
        ("N(0, 1), lr 0.2", "normal(std=1)", 0.2),
        ("He, lr 0.2", "he_normal", 0.2),
        ("He, lr 1e-3", "he_normal", 1e-3),
    )
    optimizer: str = "adam"
    batch_size: int = 128
    epochs: int = 9
    every: int = 2
    standardize: bool = True
    seed: int = 0
    quick: bool = False

    @classmethod
    def make(cls, *, quick: bool = False, seed: int = 0, **overrides: Any) -> "WatchConfig":
        """The default config, or the quick one (the same runs, recorded every 4 steps)."""
        base: dict[str, Any] = {"seed": seed, "quick": quick}
        if quick:
            base.update(every=4)
        base.update(overrides)
        return cls(**base)


def _data(cfg: WatchConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from initlab.data import digits

    X, y, Xt, yt = digits(rng=sub_seed(cfg.seed, 0))
    if cfg.standardize:
        mu, sd = X.mean(axis=0), X.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        X, Xt = ((X - mu) / sd).astype(np.float32), ((Xt - mu) / sd).astype(np.float32)
    return X, y, Xt, yt


def watch_runs(cfg: WatchConfig) -> list[dict[str, Any]]:
    """Train and watch every run of ``cfg``: [{"label", "init", "lr", "watch", "test_accuracy", "diverged",
    "train_steps"}]."""
    from initlab.diagnostics import Probe
    from initlab.nn import Network

    X, y, Xt, yt = _data(cfg)
    out = []
    for label, init, lr in cfg.runs:
        net = Network(list(cfg.layers), cfg.activation, "linear", init=init, rng=sub_seed(cfg.seed, 1))
        probe = Probe(every=cfg.every)
        hist = net.fit(X, y, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, optimizer=cfg.optimizer,
                       progress=False, rng=sub_seed(cfg.seed, 2), callbacks=[probe], threads=1)
        acc = net.evaluate(Xt, yt)["accuracy"]
        out.append({"label": label, "init": init, "lr": lr, "watch": probe.watch, "test_accuracy": float(acc),
                    "diverged": bool(hist.diverged), "train_steps": cfg.epochs * -(-len(X) // cfg.batch_size)})
    return out


def dying(w: Any) -> Any:
    """The watch's verdict that says a layer died: the run's ``diverged`` verdict if any, else the
    ``dead`` verdict shown on the most recorded steps (ties: the earliest); None when none.
    A layer flagged dead on one step and healthy after is a blip, not the layer that died."""
    div = [v for v in w.verdicts if v.kind == "diverged"]
    if div:
        return div[0]
    dead = [v for v in w.verdicts if v.kind == "dead"]
    return max(dead, key=lambda v: (v.n_steps, -v.step)) if dead else None


def watch(config: WatchConfig | None = None) -> StudyResult:
    """Run the study (see the module docstring)."""
    from initlab.studies._watchview import colordim_figure, verdict_table

    cfg = config or WatchConfig.make()
    t0 = time.perf_counter()
    runs = watch_runs(cfg)
    pairs = [(r["label"], r["watch"]) for r in runs]
    numbers: dict[str, Any] = {"runs": [], "train_steps": runs[0]["train_steps"] if runs else 0}
    rows = []
    for r in runs:
        w = r["watch"]
        dead = dying(w)
        hidden = [n for n in w.layer_names[:-1]]
        worst = max((float(np.nanmax(w.series(n, "dead")[1])) for n in hidden), default=0.0)
        at_dead = None
        if dead is not None and dead.kind == "dead":
            at_dead = float(w.series(dead.name, "dead")[1][[s.step for s in w.steps].index(dead.step)])
        losses = [s.loss for s in w.steps if s.loss is not None]
        first_upd = [u for u in (w.steps[0].update_ratio.values() if w.steps else []) if u is not None]
        entry = {"label": r["label"], "init": r["init"], "lr": r["lr"], "steps": [s.step for s in w.steps],
                 "verdicts": [v.to_dict() for v in w.verdicts],
                 "dies": None if dead is None else {"layer": dead.name, "step": dead.step, "kind": dead.kind,
                                                    "dead_fraction": at_dead, "n_steps": dead.n_steps},
                 "max_dead_fraction": worst, "loss_first": losses[0] if losses else None,
                 "loss_last": losses[-1] if losses else None, "test_accuracy": r["test_accuracy"],
                 "diverged": r["diverged"], "first_update_ratio": max(first_upd) if first_upd else None}
        numbers["runs"].append(entry)
        rows.append([r["label"], entry["loss_first"], entry["loss_last"], r["test_accuracy"],
                     "-" if dead is None else f"{dead.name} at step {dead.step}", worst, len(w.verdicts)])
    last_step = runs[0]["watch"].steps[-1].step if runs and runs[0]["watch"].steps else 0
    n_steps = runs[0]["train_steps"] if runs else 0
    table = Table(
        "runs", "Runs",
        ["run", "loss, step 0", f"loss, step {last_step}", "test accuracy", "layer that dies",
         "largest dead fraction (hidden layers)", "verdicts"], rows,
        formats=[None, ".3g", ".3g", ".1%", None, ".1%", None],
        note=f"Standardised digits (raw pixels: He starts ~10% dead), {n_steps} steps.",
    )
    bad, good = numbers["runs"][0], numbers["runs"][-1]
    head = colordim_figure(
        pairs, title="Each layer's activations over the steps",
        kinds=("dead", "diverged"),
        caption="Colour: log(1 + count); red: the probe finds over 10% of units dead on the batch.",
    )
    curves = _compare_curves(runs, bad["dies"]["layer"] if bad["dies"] else runs[0]["watch"].layer_names[1])
    def name(e: dict[str, Any]) -> str:  # "N(0, 1), lr 0.2" -> "N(0, 1)"
        return str(e["label"]).split(", lr")[0]

    def lr(e: dict[str, Any]) -> str:  # "He, lr 1e-3" -> "lr 1e-3" (the label's spelling)
        tail = str(e["label"]).rsplit(", ", 1)[-1]
        return tail if tail.startswith("lr ") else f"lr {e['lr']:g}"

    takeaway = ((f"{name(bad)} weights at {cfg.optimizer.capitalize()} {lr(bad)} lose {bad['dies']['layer']} "
                 f"at step {bad['dies']['step']}" if bad["dies"] else f"no layer dies with {name(bad)} weights")
                + (f"; {name(good)} at {lr(good)} stays clean." if not good["verdicts"] else "."))
    ctrl = numbers["runs"][1] if len(numbers["runs"]) > 2 else None
    at0 = [v for v in bad["verdicts"] if v["step"] == 0]
    verdict = (
        (f"{name(bad)} is also flagged {at0[0]['kind'].replace('_', ' ')} at step 0" if at0 else
         f"{name(bad)} is not flagged at step 0")
        + ((f"; {name(ctrl)} at {lr(ctrl)} dies too ({_dies_text(ctrl)})" if ctrl["dies"] else
            f"; {name(ctrl)} at {lr(ctrl)} does not die") if ctrl else "")
        + ". First-update ‖ΔW‖/‖W‖: " + ", ".join(_g(e["first_update_ratio"]) for e in numbers["runs"])
        + "; fix: He init, smaller lr."
    )
    explanation: list[str] = []
    return StudyResult(
        study="watch", title=TITLE, config=asdict(cfg), numbers=numbers,
        tables=[table, verdict_table(pairs, fixes=False, note="")],
        figures=[head, curves], summary=takeaway, takeaway=takeaway, verdict=verdict, explanation=explanation,
        headline="colordim",
        command=f"initlab report --only watch --seed {cfg.seed}" + (" --quick" if cfg.quick else ""),
        seconds=time.perf_counter() - t0,
    )


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.2g}"


def _dies_text(entry: dict[str, Any]) -> str:
    d = entry["dies"]
    if d is None:
        return "no layer dies"
    if d["kind"] == "diverged":
        return f"diverged at step {d['step']}"
    return f"{d['layer']}, step {d['step']}"


def _compare_curves(runs: list[dict[str, Any]], layer: str) -> FigureSpec:
    panels = []
    for key, title, logy in (("loss", "loss", True), ("dead", f"dead fraction, {layer}", False),
                             ("near_zero", f"near-zero fraction, {layer}", False), ("std", f"activation std, {layer}", True)):
        series = []
        for i, r in enumerate(runs):
            w = r["watch"]
            if key == "loss":
                x = [s.step for s in w.steps if s.loss is not None]
                y = [s.loss for s in w.steps if s.loss is not None]
            else:
                s_, v = w.series(layer, key)
                x, y = [int(a) for a in s_], [None if not np.isfinite(b) else float(b) for b in v]
            series.append({"label": r["label"] if not panels else "", "x": x, "y": y, "color_index": i})
        panels.append({"title": title, "xlabel": "step", "ylabel": "", "series": series, "logy": logy})
    return FigureSpec("curves", f"Loss and {layer}, per run", "curves", {"panels": panels, "ncols": 2},
                      caption="Dead: units inactive on the whole batch.")
