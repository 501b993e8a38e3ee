"""Phase diagram over (σ_w², σ_b²): the χ₁ = 1 line (edge of chaos) and the ξ_c heat map.

As in Fig. 1 of Schoenholz et al. 2017 ("Deep Information Propagation") and Poole et al. 2016
("Exponential expressivity in deep neural networks through transient chaos"). The whole grid is
solved at once: q* by safeguarded Newton on arrays of q, c* (chaotic points only) by Newton on
arrays of c with the aligned 2-D rule of :func:`initlab.activations.gaussian_nodes_2d` (closed
forms for the ReLU family, erf and GELU); the critical line by the root-finder of
:func:`initlab.theory.critical_sigma_w2` between the grid points where χ₁ crosses 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from initlab import activations as _acts
from initlab.theory._maps import _CRIT_TOL, _edges_between, _solve

__all__ = ["PhaseDiagram", "phase_diagram", "plot_phase_diagram"]

_PHASE_ORDER = ("ordered", "critical", "chaotic")
_BLOCK_POINTS = 10_000  # grid points solved at once


@dataclass(frozen=True)
class PhaseDiagram:
    """Mean-field quantities on a grid; 2-D arrays are indexed [σ_b² index, σ_w² index].

    ``phase`` holds 0 (ordered), 1 (critical), 2 (chaotic); ``critical_line`` is the σ_w² where
    χ₁ = 1 along each row (the value of :func:`initlab.theory.critical_sigma_w2` where it lies in
    the grid), nan where there is none, with the reason in ``critical_note`` ("" where found).
    """

    activation: str
    sigma_w2: np.ndarray
    sigma_b2: np.ndarray
    q_star: np.ndarray
    c_star: np.ndarray
    chi1: np.ndarray
    xi_q: np.ndarray
    xi_c: np.ndarray
    phase: np.ndarray
    critical_line: np.ndarray
    critical_note: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists); non-finite values stay floats (the CLI writes them as null)."""
        return {
            "activation": self.activation,
            "sigma_w2": self.sigma_w2.tolist(),
            "sigma_b2": self.sigma_b2.tolist(),
            "q_star": self.q_star.tolist(),
            "c_star": self.c_star.tolist(),
            "chi1": self.chi1.tolist(),
            "xi_q": self.xi_q.tolist(),
            "xi_c": self.xi_c.tolist(),
            "phase": [[_PHASE_ORDER[int(v)] for v in row] for row in self.phase],
            "critical_line": self.critical_line.tolist(),
            "critical_note": list(self.critical_note),
        }


def _grid(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(
            f"The {name!r} argument must be a 1-D array of at least 2 finite values >= 0; got {values!r}."
        )
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"The {name!r} argument must be strictly increasing; got {values!r}.")
    return arr


def _critical_line(
    act: _acts.Activation, sw: np.ndarray, sb: np.ndarray, chi: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...]]:
    """σ_w² at χ₁ = 1 per row of the grid, and why not where there is none."""
    line = np.full(sb.shape, np.nan)
    notes = [""] * sb.size
    span = f"[{sw[0]:.4g}, {sw[-1]:.4g}]"
    if act.homogeneous:  # χ₁ = σ_w² E[φ′²] whatever q*: one edge for every σ_b² (critical_sigma_w2)
        edge = 1.0 / float(act.deriv_second_moment(1.0))
        inside = sw[0] <= edge <= sw[-1]
        line[:] = edge if inside else np.nan
        if not inside:
            notes = [f"outside the grid: the edge of chaos is at sigma_w2 = {edge:.6g}, not in {span}"] * sb.size
        return line, tuple(notes)
    rows, lo, hi = [], [], []
    for i in range(sb.size):
        g = chi[i] - 1.0
        fin = np.isfinite(q[i])
        up = (g[:-1] < 0) & (g[1:] >= 0)
        # a crossing into q* = inf is where the length map starts to diverge, not the edge of
        # chaos (the rule of critical_sigma_w2)
        good = np.flatnonzero(up & fin[:-1] & fin[1:])
        bad = np.flatnonzero(up)
        if good.size:
            rows.append(i)
            lo.append(sw[good[0]])
            hi.append(sw[good[0] + 1])
        elif bad.size:
            j = bad[0]
            notes[i] = (
                f"no edge of chaos: chi1 jumps over 1 between sigma_w2 = {sw[j]:.6g} and {sw[j + 1]:.6g}, where "
                "the length map starts to diverge (q* = inf)"
            )
        elif np.all(g < 0):
            notes[i] = f"outside the grid: chi1 < 1 for every sigma_w2 in {span} (the edge, if any, lies beyond)"
        elif np.all(g >= 0):
            notes[i] = f"outside the grid: chi1 >= 1 already at sigma_w2 = {sw[0]:.4g}"
        else:
            notes[i] = f"no upward crossing of chi1 = 1 in {span}"
    if rows:
        idx = np.array(rows)
        roots, why = _edges_between(act, sb[idx], np.array(lo), np.array(hi))
        line[idx] = roots
        for k, i in enumerate(rows):
            notes[i] = why[k]
    return line, tuple(notes)


def phase_diagram(
    activation: str | _acts.Activation, sigma_w2_grid: Any, sigma_b2_grid: Any, *, order: int = 8
) -> PhaseDiagram:
    """χ₁, q*, c*, ξ_q, ξ_c and the phase on the grid ``sigma_b2_grid × sigma_w2_grid``.

    ``order`` is the Gauss–Legendre order per panel of the 2-D rule for c* (activations without
    a closed form; measured: 8 gives E[φ(u₁)φ(u₂)] to ~1e-7 relative and c* to ~2e-8, 12 —
    :func:`initlab.theory.point`'s — to ~4e-11 and ~1e-13).
    The critical line is :func:`initlab.theory.critical_sigma_w2`'s root where the grid brackets
    it; ``critical_note`` says why a row has none.

    >>> d = phase_diagram("tanh", np.linspace(0.5, 3.0, 6), [0.0, 0.05])
    >>> d.xi_c.shape, float(d.critical_line[0]), round(float(d.critical_line[1]), 6)
    ((2, 6), 1.0, 1.760955)
    """
    act = _acts.get(activation)
    sw = _grid("sigma_w2_grid", sigma_w2_grid)
    sb = _grid("sigma_b2_grid", sigma_b2_grid)
    SW, SB = np.meshgrid(sw, sb)
    # blocks of rows: the quadrature's node arrays (~25 kB a point) stay bounded whatever the grid
    keys = ("q_star", "c_star", "chi1", "xi_q", "xi_c")
    r = {k: np.empty(SW.shape) for k in keys}
    step = max(1, _BLOCK_POINTS // sw.size)
    for start in range(0, sb.size, step):
        rows = slice(start, start + step)
        part = _solve(act, SW[rows], SB[rows], order=order)
        for k in keys:
            r[k][rows] = part[k]
    chi = r["chi1"]
    ph = np.where(np.abs(chi - 1.0) <= _CRIT_TOL, 1, np.where(chi < 1.0, 0, 2)).astype(np.int8)
    line, notes = _critical_line(act, sw, sb, chi, r["q_star"])
    return PhaseDiagram(
        activation=act.spec, sigma_w2=sw, sigma_b2=sb, q_star=r["q_star"], c_star=r["c_star"],
        chi1=chi, xi_q=r["xi_q"], xi_c=r["xi_c"], phase=ph, critical_line=line, critical_note=notes,
    )


def plot_phase_diagram(diagram: PhaseDiagram, path: str | Path, *, max_xi: float | None = None) -> Path:
    """Write a PNG: ξ_c heat map (log colour scale) with the χ₁ = 1 line and phase labels.

    Infinite ξ_c (criticality) is drawn at the colour scale's top; nan (divergent length map) is
    left blank. Returns the path written.
    """
    from matplotlib.colors import LogNorm

    from initlab._mpl import pyplot

    plt = pyplot()

    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"The 'path' argument must end in .png; got {str(path)!r}.")
    xi = np.array(diagram.xi_c, dtype=np.float64)
    finite = xi[np.isfinite(xi) & (xi > 0)]
    top = max_xi if max_xi is not None else (float(np.percentile(finite, 99)) if finite.size else 10.0)
    top = max(top, 1.0)
    shown = np.where(np.isinf(xi), top, np.clip(xi, 1e-2, top))
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    try:
        mesh = ax.pcolormesh(
            diagram.sigma_w2, diagram.sigma_b2, np.ma.masked_invalid(shown), shading="auto",
            norm=LogNorm(vmin=max(min(float(np.nanmin(shown)), top / 10), 1e-2), vmax=top), cmap="viridis",
        )
        fig.colorbar(mesh, ax=ax, label=r"$\xi_c$ (correlation depth scale)")
        chi = diagram.chi1
        if np.nanmin(chi) < 1.0 < np.nanmax(chi):
            ax.contour(diagram.sigma_w2, diagram.sigma_b2, chi, levels=[1.0], colors="white", linewidths=2)
        ax.plot([], [], color="white", lw=2, label=r"$\chi_1 = 1$ (edge of chaos)")
        ax.set_xlabel(r"$\sigma_w^2$")
        ax.set_ylabel(r"$\sigma_b^2$")
        ax.set_title(f"{diagram.activation}: ordered (left) | chaotic (right)")
        leg = ax.legend(loc="upper left", framealpha=0.3)
        for text in leg.get_texts():
            text.set_color("white")
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
