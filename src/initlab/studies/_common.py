"""Small helpers the studies share: histograms as plot data, the probe's verdict, the theory's
prediction, and seeds for the sub-experiments of a study."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["hist_panel", "probe_verdicts", "probe_run", "verdict_cell", "verdict_messages", "verdict_fixes", "ridge_layer",
           "predicted_act_std", "sub_seed", "fmt_pair", "sig"]


def sub_seed(seed: int, *keys: int) -> np.random.SeedSequence:
    """An independent stream for one sub-experiment of a study: ``SeedSequence([seed, *keys])``
    (:func:`initlab._rng.derive`, initlab's one seed-derivation rule).

    >>> int(sub_seed(0, 1).generate_state(1)[0]) == int(sub_seed(0, 1).generate_state(1)[0])
    True
    """
    from initlab._rng import derive

    return derive(int(seed), *keys)


def hist_panel(values: np.ndarray, *, bins: int = 50, value_range: tuple[float, float] | None = None,
               title: str = "", central: float = 0.99, pad: float = 0.0) -> dict[str, Any]:
    """A histogram as plot data: ``{"title", "edges", "density", "xlim"}`` (density integrates to 1),
    binned by the probe's histogram (:func:`initlab.diagnostics._stats.hist_edges`,
    :func:`~initlab.diagnostics._stats.histogram`: one range rule and one binning in initlab).

    With no ``value_range`` the range covers the ``central`` fraction of the values (quantiles
    (1 − central)/2 and (1 + central)/2; ±1 around a constant), widened by ``pad`` × its width on
    each side; values outside that automatic range are piled into the end bins (so a tail stays
    visible). With an explicit ``value_range`` values outside it are left out.

    >>> p = hist_panel(np.array([0.0, 0.0, 1.0]), bins=2, value_range=(0.0, 1.0))
    >>> p["density"]
    [1.3333333333333333, 0.6666666666666666]
    """
    from initlab.diagnostics._stats import hist_edges, histogram

    v = np.asarray(values, dtype=np.float64).ravel()
    edges = hist_edges(v, bins, bounds=value_range, central=central, margin=pad)
    h = histogram(v, edges, outside="clip" if value_range is None else "drop")
    return {"title": title, "edges": edges.tolist(), "density": h.density.tolist(),
            "xlim": [float(edges[0]), float(edges[-1])]}


def probe_verdicts(net: Any, x: np.ndarray, y: np.ndarray | None = None, *, loss: str = "mse",
                   rng: int | np.random.SeedSequence | None = 0) -> list[str]:
    """The probe's verdicts (one line each; ``["no problem found"]`` when it finds none)."""
    return probe_run(net, x, y, loss=loss, rng=rng)[0]


def probe_run(net: Any, x: np.ndarray, y: np.ndarray | None = None, *, loss: str = "mse",
              rng: int | np.random.SeedSequence | np.random.Generator | None = 0,
              theory: bool = False) -> tuple[list[str], Any]:
    """The probe's verdicts (as :func:`probe_verdicts`) and its :class:`~initlab.diagnostics.ProbeResult`,
    so a study can quote the probe's own numbers (one source of truth for e.g. the saturated fraction)."""
    from initlab.diagnostics import probe

    res = probe(net, x, y=y, loss=loss, backward=y is not None, theory=theory, rng=rng)
    out = [str(v) for v in res.verdicts]
    return (out or ["no problem found"]), res


def verdict_messages(res: Any) -> str:
    """The probe's findings for a table cell: each verdict's message (what and where), one per line,
    without its recommendation — the page states each recommendation once (:func:`verdict_fixes`).

    >>> from initlab.diagnostics import ProbeResult, Verdict
    >>> verdict_messages(ProbeResult(layers=[], verdicts=[Verdict("dead", 2, "12% dead", "use he")]))
    '12% dead (layer 2)'
    >>> verdict_messages(ProbeResult(layers=[]))
    'no problem found'
    """
    lines = [f"{v.message} (layer {v.layer})" if f"layer {v.layer}" not in v.message else v.message for v in res.verdicts]
    return "\n".join(lines) if lines else "no problem found"


def verdict_fixes(res: Any) -> dict[str, str]:
    """{activation: the probe's recommendation} for the verdicts of one probe.

    The key is the activation of the layer the verdict starts at, or ``"model"`` where the
    recommendation is for the model's main activation (a linear read-out layer)."""
    from initlab.diagnostics import recommend

    out: dict[str, str] = {}
    for v in res.verdicts:
        if not v.recommendation:
            continue
        act = res.layers[v.layer - 1].activation if 0 < v.layer <= len(res.layers) else None
        name = getattr(act, "spec", act)
        rec = v.recommendation.split("; keep biases")[0]
        key = str(name) if name is not None and name != "linear" and recommend(name) == rec else "model"
        if key == "model":
            m = [k for k in out if out[k] == rec]
            key = m[0] if m else next((str(getattr(s.activation, "spec", s.activation)) for s in res.layers
                                       if s.activation is not None and recommend(s.activation) == rec), "model")
        out[key] = rec
    return out


def ridge_layer(values: np.ndarray, label: str, *, bins: int, value_range: tuple[float, float] | None,
                note: str = "") -> dict[str, Any]:
    """One layer of a "ridges" figure: :func:`hist_panel`'s histogram with a label and a note."""
    p = hist_panel(values, bins=bins, value_range=value_range)
    return {"label": label, "edges": p["edges"], "density": p["density"], "note": note}


def verdict_cell(verdicts: Sequence[str]) -> str:
    """All verdict lines in one table cell, one per line (the page keeps the line breaks).

    >>> verdict_cell(["a", "b"])
    'a\\nb'
    """
    return "\n".join(verdicts)


def predicted_act_std(sizes: Sequence[int], activations: Sequence[str], inits: Sequence[Any],
                      input_var: float = 1.0) -> list[float]:
    """Mean-field prediction of each layer's activation std (:func:`initlab.nn.predict_stack`)."""
    from initlab.nn import predict_stack

    pred = predict_stack(list(sizes), list(activations), list(inits), input_var=input_var)
    return [float(v) for v in np.asarray(pred.act_std, dtype=float)]


def predicted(sizes: Sequence[int], activations: Sequence[str], inits: Sequence[Any], input_var: float = 1.0) -> Any:
    """The full :class:`StackPrediction` of :func:`initlab.nn.predict_stack`."""
    from initlab.nn import predict_stack

    return predict_stack(list(sizes), list(activations), list(inits), input_var=input_var)


def sig(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits (scientific below 1e-3).

    >>> sig(0.0123456), sig(1.5e-7), sig(0.0)
    ('0.0123', '1.50e-07', '0')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{max(digits - 1, 0)}e}"
    return f"{x:.{digits}g}"


def fmt_pair(measured: float, predicted_value: float | None) -> str:
    """``"0.213 (0.212)"``: a measured value with the prediction in brackets."""
    return f"{sig(measured)} ({sig(predicted_value)})"


def single_thread() -> Any:
    """A context in which BLAS uses one thread.

    The studies multiply small matrices (batches of 128 by 100 units) thousands of times; a
    multi-threaded BLAS gains nothing there and, on a busy 2-core machine, loses 10× to thread
    contention (measured: seed 002 quick took 94 s with the default threads, 8 s with one).
    Every native thread pool is capped (:func:`initlab._threads.limit_threads` with
    ``user_api=None``), BLAS and OpenMP alike.
    """
    from initlab._threads import limit_threads

    return limit_threads(1, user_api=None)
