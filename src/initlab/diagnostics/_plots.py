"""Figures of a probe (matplotlib, Agg): the seeds' histogram rows, mean/std per layer, and the
gradient std per layer on a log scale."""

from __future__ import annotations

from typing import Any

import numpy as np

from initlab._validation import check_choice

__all__ = ["histograms", "stats", "gradients", "summary"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
