"""Per-layer signal diagnostics with the mean-field theory beside them, verdicts, LSUV and apply.

* :func:`probe` — forward (and backward) statistics of every layer of an :class:`initlab.nn.Network`
  or a ``torch.nn.Module`` on one batch: a :class:`ProbeResult` of :class:`LayerStats`, with
  verdicts and, for plain stacks, the prediction of :func:`initlab.theory.predict_stack`.
* :func:`fix` — LSUV (Mishkin & Matas 2016) in place; :func:`apply` — init specs onto a torch model.
* :func:`watch` — each layer's statistics over the steps of a torch training loop (:class:`Watch`);
  :func:`coord_check` — activation size against width over the first steps (mup's coordinate check).
* :func:`verdicts` — the rules that turn statistics into one line per problem and a recommended init.

The probe's cost is kept near that of the pass it watches (moments in four reads per tensor,
histograms on a subsample): see ``benchmarks/probe_speed.py``.
"""

from __future__ import annotations

from typing import Any

from initlab._rng import RngLike, as_generator
from initlab._validation import bad_type, check_choice, check_int
from initlab.diagnostics._apply import ApplyRecord, apply
from initlab.diagnostics._lsuv import LSUVRecord, fix
from initlab.diagnostics._measure import LOSSES
from initlab.diagnostics._result import LayerStats, ProbeResult, Verdict
from initlab.diagnostics._stats import HIST_SAMPLE
from initlab.diagnostics._verdicts import recommend, verdicts
from initlab.diagnostics._watch import Probe, Watch, WatchStep, WatchVerdict, watch
from initlab.diagnostics._coord import CoordCheck, coord_check

__all__ = ["probe", "fix", "apply", "verdicts", "recommend", "ProbeResult", "LayerStats", "Verdict",
           "LSUVRecord", "ApplyRecord", "watch", "Watch", "Probe", "WatchStep", "WatchVerdict", "coord_check", "CoordCheck"]


def probe(
    model: Any,
    x: Any,
    *,
    y: Any = None,
    loss: str = "mse",
    backward: bool = True,
    theory: bool = False,
    rng: RngLike = None,
    bins: int = 50,
    hist_sample: int | None = HIST_SAMPLE,
) -> ProbeResult:
    """Measure every layer of ``model`` on the batch ``x``.

    Forward: pre-activation and activation mean, std (pooled, ddof = 0), channel squared mean,
    min, max, fraction saturated, fraction of dead units (None where the activation cannot
    saturate / die), histograms (``bins`` equal bins on a subsample of ``hist_sample`` values per
    layer, None = all; layers with a bounded activation are binned on its range, e.g. [−1, 1] for
    tanh, the other layers share one binning). Backward (``backward=True``): the deltas
    ∂ℓ_b/∂(pre-activation) of each sample's own loss ℓ_b (std ``grad_std`` and RMS ``grad_rms``,
    which the verdicts read), independent of the batch size; the weight gradient is that of the
    MEAN loss (1/B) Σ_b ℓ_b, so its std and ‖∂L/∂W‖/‖W‖ do not grow with the batch size B.
    ``loss="mse"`` (½‖o − y‖², with N(0, 1) targets from ``rng`` when ``y`` is None), ``"ce"``
    (softmax cross-entropy, integer labels ``y`` or uniform random labels) or ``"sum"`` (Σ outputs).
    ``theory=True`` adds the mean-field prediction (Poole et al. 2016, "Exponential expressivity in
    deep neural networks through transient chaos") for plain stacks.

    Args:
        model: an :class:`initlab.nn.Network` or a ``torch.nn.Module``.
        x: the input batch, array-like ``[batch, ...]`` (or a torch tensor).
        y: targets for the loss, or None.
        loss: "mse" | "ce" | "sum".
        backward: also run and measure the backward pass.
        theory: add ``theory_std`` / ``theory_preact_std`` / ``theory_grad_std``.
        rng: seed or Generator (random targets).
        bins: number of histogram bins.
        hist_sample: values per layer binned into the histograms (None: all).

    >>> import numpy as np
    >>> from initlab.nn import Network
    >>> net = Network([20, 50, 50, 1], activation="tanh", init="xavier_normal", rng=0)
    >>> res = probe(net, np.random.default_rng(1).standard_normal((256, 20)), rng=2)
    >>> [s.index for s in res.layers], res.layers[0].std > 0, res.layers[0].grad_std > 0
    ([1, 2, 3], True, True)
    """
    check_choice("loss", loss, LOSSES)
    bins = check_int("bins", bins, low=1)
    if hist_sample is not None:
        hist_sample = check_int("hist_sample", hist_sample, low=1)
    if not isinstance(backward, bool):
        bad_type("backward", "a bool", backward)
    if not isinstance(theory, bool):
        bad_type("theory", "a bool", theory)
    gen = as_generator(rng)
    from initlab.diagnostics._probe_torch import is_torch_module

    if is_torch_module(model):
        from initlab.diagnostics._probe_torch import probe_torch

        result = probe_torch(model, x, y=y, loss=loss, backward=backward, theory=theory, rng=gen, bins=bins,
                             hist_sample=hist_sample)
    else:
        from initlab.nn import Network

        if not isinstance(model, Network):
            bad_type("model", "an initlab.nn.Network or a torch.nn.Module", model)
        from initlab.diagnostics._probe_numpy import probe_network

        result = probe_network(model, x, y=y, loss=loss, backward=backward, theory=theory, rng=gen, bins=bins,
                               hist_sample=hist_sample)
    result.verdicts = verdicts(result)
    return result
