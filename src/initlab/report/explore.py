"""The interactive explorer: one self-contained HTML page (``initlab explore --out DIR``).

The reader picks an activation, an init, the depth, the width and σ_b², and sees each layer's
activation histogram, the per-layer std beside the mean-field prediction, the backpropagated
gradient per layer, the point on the (σ_w², σ_b²) phase diagram, and the probe's verdict with its
fix.

Every number on the page comes from initlab itself, computed when the page is built:

* each setting is an :class:`initlab.nn.Network` (``[width] * (depth + 1)``, the activation on every
  layer, the output too) probed by :func:`initlab.probe` with ``theory=True`` on a batch of
  ``BATCH`` N(0, I) inputs (measured std, histogram, gradient RMS, verdicts; the mean-field
  prediction is :func:`initlab.nn.predict_stack`, which the probe calls);
* the phase-diagram point is :func:`initlab.theory.point` at the network's σ_w² = fan_in·Var(W)
  and σ_b²; the background is :func:`initlab.theory.phase_diagram`.

Why precomputed and not a live server: the page then works from ``file://`` (mailed, opened from
a report folder, offline), needs no Python process running, and the JavaScript only *looks up and
draws* numbers — there is no second implementation of the network or the theory in JavaScript
that could drift from initlab's. The price is a finite grid (:data:`GRID`), chosen so the page
builds in well under 30 s on two cores and weighs under 5 MB.

Each setting's seeds are written into the page (``net_seed``, ``x_seed``, ``probe_seed``), so any
number on it can be recomputed in Python::

    x = initlab.data.gaussian(BATCH, width, rng=x_seed)
    net = initlab.nn.Network([width] * (depth + 1), activation=act, output=act, init=spec,
                             bias_init=bias_spec, rng=net_seed)
    initlab.probe(net, x, theory=True, rng=probe_seed, bins=BINS)

**The training view** (``initlab explore --watch RUN``, :func:`build_explorer` with ``watches``):
one or more saved :class:`~initlab.diagnostics.Watch` runs (``Watch.save``, ``initlab train ...
--watch every=N --save-watch RUN``) embedded as plain numbers (:func:`watch_page_data`): per layer
the activation histogram on the watch's fixed edges at each shown step, the mean, std, near-zero
and dead fraction and ‖ΔW‖/‖W‖ at each recorded step, the loss, and :attr:`Watch.verdicts` (each
problem once, with its first step and its fix) as the watch reports them. A long watch is
thinned for the page (at most :data:`WATCH_HIST_STEPS` histogram steps and
:data:`WATCH_CURVE_STEPS` curve points, evenly spaced, keeping the first and last step and the
first step of each problem) and the page says so. With ``watches`` and no ``grid=True`` only the
training view is built (seconds, not the grid's CPU time).

>>> setting_key("tanh", "xavier", 10, 100, 0.0)
'tanh|xavier|10|100|0'
>>> bias_spec(0.0), bias_spec(0.04)
('zeros', 'normal(std=0.2)')
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from initlab._io import atomic_write
from initlab._rng import derive
from initlab._validation import bad_type, check_int

__all__ = ["GRID", "ACTIVATIONS", "INITS", "BATCH", "BINS", "ExploreSummary", "build_explorer", "compute_setting",
           "setting_key", "bias_spec", "init_spec", "fix_spec", "explorer_tasks", "assemble", "write_explorer",
           "WATCH_HIST_STEPS", "WATCH_CURVE_STEPS", "watch_page_data", "load_watches", "thin_steps"]

#: activations offered (registry specs of :mod:`initlab.activations`)
ACTIVATIONS: tuple[str, ...] = ("tanh", "sigmoid", "relu", "leaky_relu(0.3)", "gelu", "selu")

#: inits offered: (key, label, spec). ``fix`` is the init the probe recommends for the activation
#: (:func:`initlab.diagnostics.recommend`), resolved per activation by :func:`fix_spec`.
INITS: tuple[tuple[str, str, str | None], ...] = (
    ("zeros", "zeros", "zeros"),
    ("std001", "N(0, 0.01²)  (seeds 002, 003 'small')", "normal(std=0.01)"),
    ("std1", "N(0, 1)  (seeds 000, 003 'large')", "normal(std=1)"),
    ("xavier", "Xavier / Glorot: 2/(fan_in+fan_out)", "xavier_normal"),
    ("he", "He / Kaiming: 2/fan_in", "kaiming_normal(mode=fan_in, nonlinearity=relu)"),
    ("lecun", "LeCun: 1/fan_in  (seed 003's 'Xavier')", "lecun_normal"),
    ("orthogonal", "orthogonal (gain 1)", "orthogonal"),
    ("fix", "initlab's fix for this activation", None),
)

#: the grid the page is computed on
GRID: dict[str, tuple[Any, ...]] = {
    "depth": (5, 10, 30),
    "width": (100, 300),
    "sigma_b2": (0.0, 0.05),
}

#: the grid of ``initlab report --quick`` (labelled quick on the page)
GRID_QUICK: dict[str, tuple[Any, ...]] = {
    "depth": (5, 10),
    "width": (100,),
    "sigma_b2": (0.0, 0.05),
}

#: the most recorded steps per watch whose histograms the page holds (the step slider's positions)
WATCH_HIST_STEPS = 300
#: the most recorded steps per watch of the curves (mean, std, near-zero, dead, ‖ΔW‖/‖W‖, loss)
WATCH_CURVE_STEPS = 2000
#: the statistics of each layer drawn against the step (columns of :meth:`Watch.rows`)
WATCH_CURVES = ("mean", "std", "near_zero", "dead", "update_ratio")

BATCH = 64  #: inputs per probe
BINS = 30  #: histogram bins (the probe's own histogram)
#: the phase diagram's axes: σ_w² log-spaced (the inits span 0.01 … 300), σ_b² linear
PHASE_SW2 = tuple(float(v) for v in np.logspace(-2, 3, 51))
PHASE_SB2 = tuple(float(v) for v in np.linspace(0.0, 0.2, 11))


def setting_key(act: str, init_key: str, depth: int, width: int, sigma_b2: float) -> str:
    """The key of one setting in the page's data: ``act|init|depth|width|σ_b²``."""
    return f"{act}|{init_key}|{int(depth)}|{int(width)}|{sigma_b2:g}"


def bias_spec(sigma_b2: float) -> str:
    """The bias init for σ_b²: ``zeros`` or ``normal(std=√σ_b²)``."""
    return "zeros" if sigma_b2 == 0 else f"normal(std={math.sqrt(sigma_b2):.6g})"


def fix_spec(act: str) -> str:
    """The init spec initlab's probe recommends for ``act`` (parsed from :func:`initlab.diagnostics.recommend`).

    >>> fix_spec("relu"), fix_spec("tanh")
    ('kaiming_normal', 'lecun_normal')
    """
    from initlab.diagnostics import recommend

    m = re.match(r"use (.+?) \(σ_w² = ", recommend(act))
    if m is None:  # pragma: no cover - the recommendation's wording is fixed by its doctest
        raise ValueError(f"cannot read the init out of the recommendation {recommend(act)!r}")
    return m.group(1)


def init_spec(act: str, init_key: str) -> str:
    """The init spec of ``init_key`` (:data:`INITS`) for activation ``act``."""
    for key, _, spec in INITS:
        if key == init_key:
            return fix_spec(act) if spec is None else spec
    raise ValueError(f"The 'init' argument must be one of {', '.join(k for k, _, _ in INITS)}; got {init_key!r}.")


def _seeds(seed: int, act_i: int, init_i: int, depth: int, width: int, sb_i: int) -> tuple[int, int, int]:
    """(net_seed, x_seed, probe_seed): plain ints, written into the page for reproduction."""
    ss = derive(int(seed), act_i, init_i, int(depth), int(width), sb_i)
    a, b, c = (int(v) for v in ss.generate_state(3))
    return a, b, c


def _num(x: Any) -> Any:
    """A float for the page: 5 significant digits; non-finite as the strings JavaScript's Number() reads."""
    if x is None:
        return None
    v = float(x)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return float(f"{v:.5g}")


@functools.lru_cache(maxsize=1024)
def _mean_field_point(act: str, sigma_w2: float, sigma_b2: float) -> Any:
    """``theory.point(act, sigma_w2, sigma_b2)``, solved once: the settings of every depth and width
    with the same activation, σ_w² and σ_b² share it (the point does not depend on either)."""
    from initlab import theory

    return theory.point(act, sigma_w2, sigma_b2)


def compute_setting(act: str, init_key: str, depth: int, width: int, sigma_b2: float, *, seed: int = 0) -> dict[str, Any]:
    """Probe one setting with initlab's engine and theory; the page's data for it (plain JSON)."""
    from initlab.data import gaussian
    from initlab.diagnostics import probe
    from initlab.nn import Network

    act_i = ACTIVATIONS.index(act) if act in ACTIVATIONS else 99
    init_i = [k for k, _, _ in INITS].index(init_key)
    sb_i = list(GRID["sigma_b2"]).index(sigma_b2) if sigma_b2 in GRID["sigma_b2"] else 99
    net_seed, x_seed, probe_seed = _seeds(seed, act_i, init_i, depth, width, sb_i)
    spec, bspec = init_spec(act, init_key), bias_spec(sigma_b2)
    x = gaussian(BATCH, width, rng=x_seed)
    with np.errstate(all="ignore"):
        net = Network([width] * (depth + 1), activation=act, output=act, init=spec, bias_init=bspec, rng=net_seed)
        res = probe(net, x, theory=True, rng=probe_seed, bins=BINS)
    from initlab.nn import predict_stack

    sw2 = float(predict_stack([width, width], act, spec).layers[0].sigma_w2)
    pt = _mean_field_point(act, sw2, sigma_b2)
    layers = res.layers
    hist_lo: list[Any] = []
    hist_hi: list[Any] = []
    counts: list[list[int] | None] = []
    for st in layers:
        h = st.hist
        hist_lo.append(None if h is None else _num(h.edges[0]))
        hist_hi.append(None if h is None else _num(h.edges[-1]))
        counts.append(None if h is None else [int(c) for c in h.counts])
    return {
        "act": act, "init": init_key, "depth": int(depth), "width": int(width), "sigma_b2": float(sigma_b2),
        "spec": spec, "bias_spec": bspec, "net_seed": net_seed, "x_seed": x_seed, "probe_seed": probe_seed,
        "sigma_w2": _num(sw2),
        "point": {"chi1": _num(pt.chi1), "phase": pt.phase, "q_star": _num(pt.q_star), "xi_c": _num(pt.xi_c),
                  "trainable_depth": _num(pt.trainable_depth)},
        "std": [_num(s.std) for s in layers],
        "mean": [_num(s.mean) for s in layers],
        "theory_std": [_num(s.theory_std) for s in layers],
        "grad_rms": [_num(s.grad_rms) for s in layers],
        "theory_grad": [_num(s.theory_grad_std) for s in layers],
        "saturated": [_num(s.saturated) for s in layers],
        "dead": [_num(s.dead) for s in layers],
        "hist": {"lo": hist_lo, "hi": hist_hi, "counts": counts},
        "verdicts": [{"kind": v.kind, "layer": v.layer, "message": v.message, "fix": v.recommendation}
                     for v in res.verdicts],
        "notes": list(res.notes),
    }


def _phase(act: str) -> dict[str, Any]:
    from initlab import theory

    d = theory.phase_diagram(act, np.asarray(PHASE_SW2), np.asarray(PHASE_SB2))
    with np.errstate(all="ignore"):
        chi = np.asarray(d.chi1, dtype=float)
    return {
        "sigma_w2": [_num(v) for v in d.sigma_w2], "sigma_b2": [_num(v) for v in d.sigma_b2],
        "log10_chi1": [[_num(math.log10(v)) if v > 0 and math.isfinite(v) else None for v in row] for row in chi],
        "critical_line": [_num(v) for v in d.critical_line],
    }


def _activation_job(act: str, seed: int, grid: dict[str, tuple[Any, ...]] = GRID) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Everything the page needs for one activation (one worker task)."""
    from initlab.diagnostics import recommend
    from initlab.studies._common import single_thread

    settings: dict[str, Any] = {}
    with single_thread():
        for init_key, _, _ in INITS:
            for depth in grid["depth"]:
                for width in grid["width"]:
                    for sb2 in grid["sigma_b2"]:
                        settings[setting_key(act, init_key, depth, width, sb2)] = compute_setting(
                            act, init_key, depth, width, sb2, seed=seed)
        info = {"recommend": recommend(act), "fix_spec": fix_spec(act), "phase": _phase(act)}
    return act, info, settings


@dataclass
class ExploreSummary:
    """What :func:`build_explorer` wrote: the page, its size in bytes and the build time."""

    index: Path
    bytes: int
    seconds: float
    settings: int
    jobs: int
    watches: int = 0  #: saved watches in the training view
    thinned: tuple[str, ...] = ()  #: labels of the watches thinned for the page

    def to_dict(self) -> dict[str, Any]:
        return {"index": str(self.index), "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "settings": self.settings, "jobs": self.jobs, "watches": self.watches, "thinned": list(self.thinned)}


def explorer_data(seed: int = 0, *, jobs: int | None = None, activations: Sequence[str] = ACTIVATIONS,
                  quick: bool = False) -> dict[str, Any]:
    """The page's data: every setting of :data:`GRID` (:data:`GRID_QUICK` with ``quick``) probed, per
    activation its phase diagram."""
    seed = check_int("seed", seed, low=0)
    n_jobs = max(1, min(2, os.cpu_count() or 1)) if jobs is None else check_int("jobs", jobs, low=1)
    acts = list(activations)
    from initlab import _workers

    # one worker process per activation (:func:`initlab._workers.run_tasks`): Ctrl-C or SIGTERM stops
    # them within seconds, and they die with this process even under kill -9
    tasks = explorer_tasks(seed, quick=quick, activations=acts)
    outcomes = _workers.run_tasks(_activation_job, tasks, min(n_jobs, len(acts)),
                                  names=[f"initlab-explore-{a}" for a in acts])
    return assemble(outcomes, seed=seed, quick=quick, activations=acts)


def explorer_tasks(seed: int = 0, *, quick: bool = False,
                   activations: Sequence[str] = ACTIVATIONS) -> list[tuple[str, int, dict[str, tuple[Any, ...]]]]:
    """The arguments of :func:`_activation_job`, one task per activation (``initlab report`` runs them
    in the same worker pool as the studies, so the explorer overlaps with them)."""
    grid = GRID_QUICK if quick else GRID
    return [(a, seed, grid) for a in activations]


def assemble(outcomes: Sequence[Any], *, seed: int = 0, quick: bool = False,
             activations: Sequence[str] = ACTIVATIONS) -> dict[str, Any]:
    """The page's data from the outcomes of :func:`explorer_tasks` (a :class:`initlab._workers.Failure`
    raises its error)."""
    from initlab import _workers

    grid = GRID_QUICK if quick else GRID
    acts = list(activations)
    for a, o in zip(acts, outcomes):
        if isinstance(o, _workers.Failure):
            if o.error is not None:
                raise o.error
            raise RuntimeError(f"explorer data for activation {a!r}: {o.message}")
    results: list[tuple[str, dict[str, Any], dict[str, Any]]] = list(outcomes)
    from initlab import __version__

    return {
        "meta": {
            "version": __version__, "seed": seed, "batch": BATCH, "bins": BINS, "quick": quick,
            "activations": acts,
            "inits": [{"key": k, "label": lab} for k, lab, _ in INITS],
            "depths": list(grid["depth"]), "widths": list(grid["width"]), "sigma_b2": list(grid["sigma_b2"]),
        },
        "acts": {a: info for a, info, _ in results},
        "settings": {k: v for _, _, s in results for k, v in s.items()},
    }


def render_explorer(data: dict[str, Any]) -> str:
    """The HTML text of the explorer page with ``data`` embedded (JSON inside a script element)."""
    from importlib import resources

    template = resources.files("initlab.report").joinpath("templates/explore.html").read_text(encoding="utf-8")
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    # inside <script> only "</" could end the element early: escape it (JSON allows "<\/")
    text = text.replace("</", "<\\/")
    return template.replace("/*__INITLAB_DATA__*/null", text, 1)


def thin_steps(steps: Sequence[int], limit: int, keep: Sequence[int] = ()) -> list[int]:
    """At most ``limit`` of the recorded ``steps`` (all of them when they fit): evenly spaced, the
    first and last included, and every step of ``keep`` that was recorded (the first step of each
    problem, so the page can stop on it); ``keep`` wins over even spacing when both do not fit.

    >>> thin_steps(range(0, 100, 10), 20)
    [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    >>> thin_steps(range(1000), 5, keep=[37])
    [0, 37, 334, 666, 999]
    """
    steps = sorted(int(s) for s in steps)
    limit = check_int("limit", limit, low=2)
    if len(steps) <= limit:
        return steps
    have = set(steps)
    inner = sorted({int(k) for k in keep if int(k) in have} - {steps[0], steps[-1]})
    if len(inner) > limit - 2:  # more problems than room: evenly among them
        inner = [inner[i] for i in np.unique(np.round(np.linspace(0, len(inner) - 1, limit - 2)).astype(int))]
    must = sorted({steps[0], steps[-1], *inner})
    free = limit - len(must)
    if free > 0:
        rest = [s for s in steps if s not in set(must)]
        idx = np.unique(np.round(np.linspace(0, len(rest) - 1, free + 2)[1:-1]).astype(int))
        must = sorted(set(must) | {rest[i] for i in idx})
    return must


def watch_page_data(watch: Any, *, label: str, source: str = "") -> dict[str, Any]:
    """The training view's data for one :class:`~initlab.diagnostics.Watch` (plain JSON).

    Every number is the watch's own, rounded to 5 significant digits: the histograms of
    :meth:`Watch.histograms` (the fixed edges the watch chose at its first step, the counts at each
    shown step), the columns :data:`WATCH_CURVES` of :meth:`Watch.rows` and the loss, and
    :attr:`Watch.verdicts` as :meth:`WatchVerdict.to_dict` gives them (with ``short``, the kind in
    two words, for marks). ``dying`` is the index in ``verdicts`` of the layer that died
    (:func:`initlab.studies.watch.dying`), or None. ValueError when the watch recorded no step.
    """
    from initlab.studies._watchview import short_kind
    from initlab.studies.watch import dying

    recorded = [int(r.step) for r in watch.steps]
    if not recorded:
        raise ValueError(f"The watch {source or label!r} recorded no step; there is nothing to show.")
    vs = list(watch.verdicts)
    keep = [v.step for v in vs]
    curve_steps = thin_steps(recorded, WATCH_CURVE_STEPS, keep)
    hist_steps = thin_steps(curve_steps, WATCH_HIST_STEPS, keep)
    names = list(watch.layer_names)
    table: dict[str, dict[int, dict[str, Any]]] = {n: {} for n in names}
    loss: dict[int, Any] = {}
    info: dict[str, dict[str, Any]] = {}
    for r in watch.rows():
        if r["name"] in table:
            table[r["name"]][int(r["step"])] = r
            info.setdefault(r["name"], r)
        loss[int(r["step"])] = r["loss"]
    layers = []
    for name in names:
        rows = table[name]
        curves: dict[str, Any] = {}
        for key in WATCH_CURVES:
            vals = [_num(rows[s][key]) if s in rows else None for s in curve_steps]
            curves[key] = vals if any(v is not None for v in vals) else None
        hsteps, edges, counts = watch.histograms(name)
        at = {int(s): c for s, c in zip(hsteps, counts)}
        first = info[name]
        layers.append({
            "name": name, "index": first["index"], "kind": first["kind"], "activation": first["activation"],
            "width": first["width"],
            "edges": [_num(e) for e in edges] if len(hsteps) else None,
            "counts": [[int(c) for c in at[s]] if s in at else None for s in hist_steps] if len(hsteps) else None,
            **curves,
        })
    died = dying(watch)
    losses = [_num(loss.get(s)) for s in curve_steps]
    return {
        "label": label, "source": source or label, "every": int(watch.every), "model": str(watch.model),
        "recorded": len(recorded), "first_step": recorded[0], "last_step": recorded[-1],
        "steps": curve_steps, "hist_steps": hist_steps,
        "loss": losses if any(v is not None for v in losses) else None,
        "layers": layers,
        "verdicts": [{**v.to_dict(), "short": short_kind(v.kind)} for v in vs],
        "dying": None if died is None else vs.index(died),
        "notes": list(watch.notes),
        "limits": {"hist_steps": WATCH_HIST_STEPS, "curve_steps": WATCH_CURVE_STEPS},
    }


def load_watches(sources: Sequence[Any]) -> list[tuple[str, str, Any]]:
    """(label, source, Watch) for each of ``sources`` (a :class:`~initlab.diagnostics.Watch` or the path of
    a saved one, read by :meth:`Watch.load`); the label is the file's name (its path when two names
    clash). A missing, damaged or foreign file: FileNotFoundError / ValueError naming 'watches', the
    file and Watch.load's reason."""
    from initlab.diagnostics import Watch

    if isinstance(sources, (str, os.PathLike, Watch)) or not isinstance(sources, Sequence):
        bad_type("watches", "a list of saved watch files or Watch objects", sources)
    out: list[tuple[str, str, Any]] = []
    for i, src in enumerate(sources):
        if isinstance(src, Watch):
            out.append((f"watch {i + 1}", "", src))
            continue
        if not isinstance(src, (str, os.PathLike)):
            bad_type("watches", "a list of saved watch files or Watch objects", src)
        path = os.fspath(src)
        try:
            w = Watch.load(path)
        except (ValueError, FileNotFoundError) as e:
            msg = str(e)
            raise type(e)(f"The 'watches' argument: {msg[:1].lower()}{msg[1:]}") from None
        if not w.steps:
            raise ValueError(f"The 'watches' argument: the watch file {path!r} recorded no step; there is nothing "
                             "to show.")
        out.append((Path(path).name, path, w))
    names = [lab for lab, _, _ in out]
    labels = [(src or lab) if names.count(lab) > 1 else lab for lab, src, _ in out]
    labels = [lab if labels.count(lab) == 1 else f"{lab} ({i + 1})" for i, lab in enumerate(labels)]
    return [(lab, src, w) for lab, (_, src, w) in zip(labels, out)]


def build_explorer(out_dir: str | os.PathLike[str], *, seed: int = 0, jobs: int | None = None,
                   quick: bool = False, watches: Sequence[Any] = (), grid: bool | None = None) -> ExploreSummary:
    """Compute the grid and/or embed saved watches, and write ``out_dir/index.html`` (atomically:
    written beside, then renamed).

    Args:
        out_dir: the folder for ``index.html`` (created if missing; other files in it are kept).
        seed: the seed every setting's seeds derive from.
        jobs: worker processes (default: up to 2).
        quick: the smaller grid :data:`GRID_QUICK` (the page says so).
        watches: saved watches (paths of ``Watch.save`` files, or Watch objects) for the training
            view, in the order given (:func:`load_watches`, :func:`watch_page_data`).
        grid: compute the grid of settings. Default: yes without ``watches``, no with them (the
            training view alone is built in seconds; ``grid=True`` adds the grid's CPU time).
    """
    t0 = time.perf_counter()
    if not isinstance(out_dir, (str, os.PathLike)):
        bad_type("out_dir", "a path", out_dir)
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"The 'out_dir' argument must be a folder; {str(out)!r} is a file.")
    runs = load_watches(watches)  # a bad file is refused before the grid's seconds are spent
    if grid is None:
        grid = not runs
    elif not isinstance(grid, bool):
        bad_type("grid", "True, False or None", grid)
    if not grid and not runs:
        raise ValueError("The 'grid' argument is False and no watch is given: the page would be empty.")
    if grid:
        data = explorer_data(seed, jobs=jobs, quick=quick)
    else:
        from initlab import __version__

        data = {"meta": {"version": __version__, "grid": False}, "acts": {}, "settings": {}}
    data["meta"]["grid"] = bool(grid)
    data["watches"] = [watch_page_data(w, label=lab, source=src) for lab, src, w in runs]
    n_jobs = (max(1, min(2, os.cpu_count() or 1)) if jobs is None else int(jobs)) if grid else 1
    return write_explorer(out, data, seconds=time.perf_counter() - t0, jobs=n_jobs)


def write_explorer(out_dir: str | os.PathLike[str], data: dict[str, Any], *, seconds: float, jobs: int) -> ExploreSummary:
    """Write the page for ``data`` (:func:`explorer_data` or :func:`assemble`) to ``out_dir/index.html``
    atomically; ``seconds`` (the time the data took; in ``initlab report`` the whole pool's, shared with the
    studies) goes into the data as ``meta.build_seconds``."""
    t0 = time.perf_counter()
    out = Path(out_dir).expanduser()
    n_jobs = jobs
    data["meta"]["build_seconds"] = round(seconds, 1)
    html = render_explorer(data)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "index.html", lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
    index = out / "index.html"
    ws = data.get("watches") or []
    thinned = tuple(w["label"] for w in ws if len(w["hist_steps"]) < w["recorded"])
    return ExploreSummary(index=index.resolve(), bytes=index.stat().st_size, seconds=seconds + time.perf_counter() - t0,
                          settings=len(data["settings"]), jobs=n_jobs, watches=len(ws), thinned=thinned)
