"""Per-layer signal diagnostics with the mean-field theory beside them, verdicts, LSUV and apply.

* :func:`probe` — forward (and backward) statistics of every layer of an :class:`initlab.nn.Network`
  or a ``torch.nn.Module`` on one batch: a :class:`ProbeResult` of :class:`LayerStats`, with
  verdicts and, for plain stacks, the prediction of :func:`initlab.nn.predict_stack`.
* :func:`fix` — LSUV (Mishkin & Matas 2016) in place; :func:`apply` — init specs, rules or a
  residual/transformer preset (Fixup, SkipInit, ReZero, T-Fixup, DeepNet) onto a model.
* :func:`watch` — each layer's statistics over the steps of a torch training loop (:class:`Watch`);
  :func:`coord_check` — activation size against width over the first steps (mup's coordinate check).
* :func:`verdicts` — the rules that turn statistics into one line per problem, a recommended init
  and a fix (an :func:`apply` rules dict or preset).
* :func:`signal_propagation` — Signal Propagation Plots of a torch model's residual blocks
  (Brock, De & Smith 2021), :func:`plot_spp` their figure.

The probe's cost is kept near that of the pass it watches (moments in four reads per tensor,
histograms on a subsample): see ``benchmarks/probe_speed.py``.
"""

from __future__ import annotations

import functools
from typing import Any

from initlab._rng import RngLike, as_generator
from initlab._validation import bad_type, check_choice, check_int
from initlab.diagnostics._apply import ApplyRecord, apply
from initlab.diagnostics._lsuv import LSUVRecord
from initlab.diagnostics._lsuv import fix as _lsuv_fix
from initlab.diagnostics._measure import LOSSES
from initlab.diagnostics._presets import PRESETS
from initlab.diagnostics._result import LayerStats, ProbeResult, Verdict
from initlab.diagnostics._spp import SPP, find_residual_blocks, plot_spp, signal_propagation
from initlab.diagnostics._stats import HIST_SAMPLE
from initlab.diagnostics._verdicts import recommend, verdicts
from initlab.diagnostics._watch import Probe, Watch, WatchStep, WatchVerdict, watch
from initlab.diagnostics._coord import CoordCheck, coord_check

__all__ = ["probe", "fix", "apply", "verdicts", "recommend", "ProbeResult", "LayerStats", "Verdict",
           "LSUVRecord", "ApplyRecord", "signal_propagation", "plot_spp", "find_residual_blocks", "SPP", "PRESETS",
           "watch", "Watch", "Probe", "WatchStep", "WatchVerdict", "coord_check", "CoordCheck"]


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
    mode: str = "init",
    output: str | int | None = None,
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

    Torch models are probed at the level of tensor operations (every linear, conv, embedding,
    LSTM/GRU layer, activation — module or functional —, norm, pooling, residual add and attention
    step gets a row named by its module path; see :mod:`initlab.diagnostics._probe_torch`), and
    left exactly as they were: parameters, buffers, ``training`` flags and torch's RNG state are
    restored bitwise. Parameters that fed no row are listed in ``result.unexamined``. The loss is
    taken over every floating output (nested tuples/lists/dicts), or over the one ``output`` names.

    Args:
        model: an :class:`initlab.nn.Network` or a ``torch.nn.Module``.
        x: the input batch: an array-like or tensor ``[batch, ...]``; for a torch model also a tuple
            (or list of arrays/tensors) of positional inputs or a dict of keyword inputs. Integer
            inputs (token ids) keep their dtype; floating ones are cast to the model's dtype and
            must be finite.
        y: targets for the loss, or None.
        loss: "mse" | "ce" | "sum".
        backward: also run and measure the backward pass.
        theory: add ``theory_std`` / ``theory_preact_std`` / ``theory_grad_std``.
        rng: seed or Generator (random targets).
        bins: number of histogram bins.
        hist_sample: values per layer binned into the histograms (None: all).
        mode: torch models: "init" (default: every module in training mode, so BatchNorm uses the
            batch's statistics as in the first steps of training, and every dropout off — the
            honest measure of an initialization), "train" (dropout on too) or "eval"
            (``model.eval()``: BatchNorm with its running statistics). Recorded in ``result.mode``.
        output: torch models: the path of the one output the loss is taken over ("logits" for a
            dict output, "0" for the first of a tuple, "1.h" nested); None: every floating output.

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
    from initlab.diagnostics._probe_torch import MODES, is_torch_module

    check_choice("mode", mode, MODES)
    if output is not None and not isinstance(output, (str, int)):
        bad_type("output", "a str or int (the path of one output) or None", output)
    gen = as_generator(rng)
    from initlab.diagnostics._torch_state import check_finite_input

    check_finite_input(x, name="x")
    if is_torch_module(model):
        from initlab.diagnostics._probe_torch import probe_torch

        result = probe_torch(model, x, y=y, loss=loss, backward=backward, theory=theory, rng=gen, bins=bins,
                             hist_sample=hist_sample, mode=mode, output=output)
    else:
        from initlab.nn import Network

        if not isinstance(model, Network):
            bad_type("model", "an initlab.nn.Network or a torch.nn.Module", model)
        from initlab.diagnostics._probe_numpy import probe_network

        result = probe_network(model, x, y=y, loss=loss, backward=backward, theory=theory, rng=gen, bins=bins,
                               hist_sample=hist_sample)
    result.verdicts = verdicts(result, spp=_residual_spp(model, x, result))
    return result


def _residual_spp(model: Any, x: Any, result: ProbeResult) -> SPP | None:
    """The Signal Propagation Plot data of a torch model's residual blocks for the
    ``residual_growth`` verdict (None: not a torch model, no residual block, or the probe already
    has rows of kind "add" to read). Costs one forward pass without gradients and one
    parameter-free pass of each candidate block on 16 samples; the model is left unchanged."""
    from initlab.diagnostics._probe_torch import is_torch_module

    if not is_torch_module(model) or any(str(s.kind).lower() == "add" for s in result.layers):
        return None
    try:
        return signal_propagation(model, x)
    except ValueError as e:  # no residual block (or an input it cannot use)
        if "no residual block" not in str(e):
            result.notes.append(f"residual blocks not examined (signal propagation: {e})")
        return None
    except Exception as e:  # noqa: BLE001 - an auxiliary pass: any failure is reported, the rest is judged
        result.notes.append(f"residual blocks not examined (signal propagation: {type(e).__name__}: {e})")
        return None

@functools.wraps(_lsuv_fix)
def fix(model: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    from initlab.diagnostics._probe_torch import is_torch_module
    from initlab.diagnostics._torch_state import check_finite_input, preserved_state

    check_finite_input(x, name="x")
    if is_torch_module(model):
        with preserved_state(model, parameters=False):
            return _lsuv_fix(model, x, *args, **kwargs)
    return _lsuv_fix(model, x, *args, **kwargs)


fix.__doc__ = (fix.__doc__ or "").rstrip() + """

    Whatever the engine, ``x`` must be finite (NaN/inf: ValueError naming 'x'); a torch model's
    buffers (BatchNorm statistics, ``num_batches_tracked``), ``training`` flags and torch's RNG
    state are restored bitwise afterwards
    (:func:`~initlab.diagnostics._torch_state.preserved_state`): only the weights change.
"""
