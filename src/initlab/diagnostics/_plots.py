"""Figures of a probe (matplotlib, Agg): the seeds' histogram rows, mean/std per layer, and the
gradient std per layer on a log scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from initlab._validation import check_choice

__all__ = ["histograms", "stats", "gradients", "summary", "watch_summary", "coord_check"]


def _plt() -> Any:
    from initlab._mpl import pyplot

    return pyplot()


def _save(fig: Any, path: str | None) -> Any:
    """Save ``fig`` to ``path`` and close it (also when saving fails); without a path, return it."""
    if path is not None:
        try:
            fig.savefig(path, dpi=100, bbox_inches="tight")
        finally:
            _plt().close(fig)
        return path
    return fig


def _share_groups(result: Any, axes: Any, attr: str) -> None:
    """Share the x axis (and y axis) between the panels whose histograms have the same edges, so
    each group of layers with one fixed binning (see ``finish_histograms``) reads on one scale."""
    first: dict[tuple[float, float, int], Any] = {}
    for ax, st in zip(axes, result.layers):
        h = getattr(st, attr)
        if h is None:
            continue
        key = (float(h.edges[0]), float(h.edges[-1]), int(h.edges.size))
        if key in first:
            ax.sharex(first[key])
            ax.sharey(first[key])
        else:
            first[key] = ax


def _hist_row(result: Any, axes: Any, which: str) -> None:
    attr = {"act": "hist", "preact": "preact_hist", "grad": "grad_hist"}[which]
    _share_groups(result, axes, attr)
    for ax, st in zip(axes, result.layers):
        h = getattr(st, attr)
        if h is None:
            ax.set_axis_off()
            continue
        ax.stairs(h.density, h.edges, fill=True, alpha=0.6)
        label = f"{st.index} {st.name}" if result.model == "torch" else f"layer {st.index}"
        ax.set_title(f"{label}\nstd {st.std if which == 'act' else (st.preact_std if which == 'preact' else st.grad_std):.3g}",
                     fontsize=8)
        ax.tick_params(labelsize=6)


def histograms(result: Any, path: str | None = None, *, which: str = "act") -> Any:
    """One panel per layer, as the seeds' figures; panels with the same binning share their axes
    (activations: layers with a bounded activation on its range, the other layers on one common
    range; pre-activations and gradients: one binning for all layers)."""
    check_choice("which", which, ["act", "preact", "grad"])
    plt = _plt()
    n = max(len(result.layers), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.4), squeeze=False)
    _hist_row(result, axes[0], which)
    fig.suptitle({"act": "activations", "preact": "pre-activations", "grad": "∂L/∂pre-activation"}[which], fontsize=9)
    return _save(fig, path)


def _stats_ax(result: Any, ax: Any) -> None:
    idx = [s.index for s in result.layers]
    ax.plot(idx, result.column("mean"), "ob-", label="mean")
    ax.plot(idx, result.column("std"), "or-", label="std")
    if result.theory:
        ax.plot(idx, result.column("theory_std"), "k--", label="theory std")
    ax.set_xlabel("layer")
    ax.legend(fontsize=7)
    ax.set_title("activation mean / std per layer", fontsize=9)


def _grad_ax(result: Any, ax: Any) -> None:
    idx = [s.index for s in result.layers]
    g = result.column("grad_rms")
    ok = np.isfinite(g) & (g > 0)
    if ok.any():
        ax.semilogy(np.array(idx)[ok], g[ok], "og-", label="∂ℓ/∂preact RMS (per sample)")
        gw = result.column("grad_weight_std")
        okw = np.isfinite(gw) & (gw > 0)
        if okw.any():
            ax.semilogy(np.array(idx)[okw], gw[okw], "s:", color="purple", label="∂L/∂W std (mean loss)")
        if result.theory:
            t = result.column("theory_grad_std")
            okt = np.isfinite(t) & (t > 0)
            if okt.any():
                ax.semilogy(np.array(idx)[okt], t[okt], "k--", label="theory")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no backward pass", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("layer")
    ax.set_title("gradient scale per layer", fontsize=9)


def stats(result: Any, path: str | None = None) -> Any:
    """Mean and std of the activations per layer (theory dashed when computed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    _stats_ax(result, ax)
    return _save(fig, path)


def gradients(result: Any, path: str | None = None) -> Any:
    """RMS of the per-sample ∂ℓ/∂(pre-activation) and std of the mean-loss ∂L/∂W per layer, log scale."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    _grad_ax(result, ax)
    return _save(fig, path)


def summary(result: Any, path: str) -> Any:
    """Histogram row on top; mean/std and gradient std below; saved to ``path``."""
    plt = _plt()
    n = max(len(result.layers), 1)
    fig = plt.figure(figsize=(max(2.0 * n, 10), 6.5))
    gs = fig.add_gridspec(2, max(n, 2), height_ratios=[1, 1.3])
    axes = [fig.add_subplot(gs[0, i]) for i in range(n)]
    _hist_row(result, axes, "act")
    half = max(n, 2) // 2
    _stats_ax(result, fig.add_subplot(gs[1, :half]))
    _grad_ax(result, fig.add_subplot(gs[1, half:]))
    fig.tight_layout()
    return _save(fig, path)


def watch_summary(watch: Any, path: str | None = None) -> Any:
    """A :class:`~initlab.diagnostics.Watch` over time: on top, one "colorful dimension" panel per
    layer (fastai's ActivationStats.color_dim: the activation histogram of every recorded step as
    a column, log(1 + count) as colour, x = step, y = value); below, each layer's activation mean,
    std and near-zero fraction against the step, and the loss when it was logged."""
    plt = _plt()
    names = watch.layer_names
    n = max(len(names), 1)
    ncol = min(n, 4)
    nrow = -(-n // ncol)
    width = 3.4 * ncol
    notes = _wrapped_verdicts(watch.verdicts[:3], width)  # shown in full, wrapped to the figure's width
    text_h = 0.19 * len(notes) + (0.1 if notes else 0.0)  # inches (10 pt lines)
    fig = plt.figure(figsize=(width, 2.6 * nrow + 3.2 + text_h))
    gs = fig.add_gridspec(nrow + 1, 4, height_ratios=[1.0] * nrow + [1.15])
    for k, name in enumerate(names):
        ax = fig.add_subplot(gs[k // ncol, (k % ncol) * 4 // ncol:((k % ncol) + 1) * 4 // ncol])
        steps, edges, counts = watch.histograms(name)
        if counts.size:
            x_edges = np.append(steps, steps[-1] + max(watch.every, 1)) if steps.size else steps
            ax.pcolormesh(x_edges, edges, np.log1p(counts.T), shading="flat", cmap="viridis")
        ax.set_title(f"{name}: activations", fontsize=11)
        ax.set_xlabel("step", fontsize=11)
        ax.tick_params(labelsize=10)
    keys = (("mean", "mean"), ("std", "std"), ("near_zero", "near-zero fraction"))
    for j, (key, label) in enumerate(keys):
        ax = fig.add_subplot(gs[nrow, j])
        for name in names:
            s, v = watch.series(name, key)
            ax.plot(s, v, label=name)
        ax.set_title(label, fontsize=11)
        ax.set_xlabel("step", fontsize=11)
        ax.tick_params(labelsize=10)
        if key == "std":
            finite = [v for name in names for v in watch.series(name, key)[1] if np.isfinite(v) and v > 0]
            if finite and max(finite) / min(finite) > 100:
                ax.set_yscale("log")
    ax = fig.add_subplot(gs[nrow, 3])
    steps = [r.step for r in watch.steps if r.loss is not None]
    if steps:
        ax.plot(steps, [r.loss for r in watch.steps if r.loss is not None], "k-")
        ax.set_title("loss", fontsize=11)
    else:
        ax.text(0.5, 0.5, "loss not logged", ha="center", va="center", transform=ax.transAxes, fontsize=11)
        ax.set_axis_off()
    ax.set_xlabel("step", fontsize=11)
    ax.tick_params(labelsize=10)
    if len(names) > 1:
        fig.axes[-4].legend(fontsize=9, ncol=1 + len(names) // 6)
    height = fig.get_figheight()
    if notes:
        fig.text(0.01, 0.05 / height, "\n".join(notes), fontsize=10, color="crimson", va="bottom",
                 linespacing=1.3)
    fig.tight_layout(rect=(0, text_h / height, 1, 1))
    return _save(fig, path)


def _wrapped_verdicts(verdicts: list[Any], width_in: float, max_lines: int = 3) -> list[str]:
    """Each verdict as "! step s: message; fix", wrapped to a figure ``width_in`` inches wide at
    10 pt (about 14 characters an inch), at most ``max_lines`` lines each (the last one ends in
    "…" when cut)."""
    import textwrap

    chars = max(int(width_in * 14), 40)
    lines: list[str] = []
    for v in verdicts:
        wrapped = textwrap.wrap(f"! {v}", chars, subsequent_indent="   ")
        if len(wrapped) > max_lines:
            wrapped = wrapped[:max_lines]
            wrapped[-1] = wrapped[-1][:chars - 1] + "…"
        lines += wrapped
    return lines


def coord_check(cc: Any, path: str | None = None) -> Any:
    """mup's coordinate-check figure: one panel per step, each layer's mean |x| against the width
    on log-log axes; flat lines mean width-stable."""
    plt = _plt()
    n = max(cc.steps, 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False, sharey=True)
    for step, ax in enumerate(axes[0]):
        for layer in cc.layers:
            ax.loglog(cc.widths, cc.l1(layer, step), "o-", label=layer, lw=1.5, ms=4)
        ax.set_title(f"step {step}" + (" (init)" if step == 0 else ""), fontsize=11)
        ax.minorticks_off()
        ax.set_xticks(cc.widths)
        ax.set_xticklabels([str(w) for w in cc.widths])
        ax.set_xlabel("width", fontsize=11)
        ax.tick_params(labelsize=10)
    axes[0][0].set_ylabel("mean |x|", fontsize=11)
    axes[0][-1].legend(fontsize=9, loc="best")
    fig.suptitle(f"coordinate check ({cc.optimizer}, lr {cc.lr:g}): {cc.summary()}"[:150], fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
