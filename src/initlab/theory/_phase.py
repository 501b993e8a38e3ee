"""Phase diagram over (σ_w², σ_b²): the χ₁ = 1 line (edge of chaos) and the ξ_c heat map.

As in Fig. 1 of Schoenholz et al. 2017 ("Deep Information Propagation") and Poole et al. 2016
("Exponential expressivity in deep neural networks through transient chaos"). The whole grid is
solved at once: q* by safeguarded Newton on arrays of q, c* (chaotic points only) by Newton on
arrays of c with a modest tensor-product panel rule (closed forms for the ReLU family and
erf), so a 100 × 100 grid with ξ_c takes well under 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from initlab import activations as _acts
from initlab.theory._maps import _CRIT_TOL, _solve

__all__ = ["PhaseDiagram", "phase_diagram", "plot_phase_diagram"]

_PHASE_ORDER = ("ordered", "critical", "chaotic")


@dataclass(frozen=True)
class PhaseDiagram:
    """Mean-field quantities on a grid; 2-D arrays are indexed [σ_b² index, σ_w² index].

    ``phase`` holds 0 (ordered), 1 (critical), 2 (chaotic); ``critical_line`` is the σ_w² where
    χ₁ crosses 1 along each row (linear interpolation between grid points whose q* is finite; nan
    if no crossing).
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


def phase_diagram(
    activation: str | _acts.Activation, sigma_w2_grid: Any, sigma_b2_grid: Any, *, order: int = 10
) -> PhaseDiagram:
    """χ₁, q*, c*, ξ_q, ξ_c and the phase on the grid ``sigma_b2_grid × sigma_w2_grid``.

    ``order`` is the Gauss–Legendre order per panel and axis of the 2-D rule for c* (smooth
    activations; 10 gives ξ_c to about 1e-3 relative away from the critical line).

    >>> d = phase_diagram("tanh", np.linspace(0.5, 3.0, 6), [0.0, 0.05])
    >>> d.xi_c.shape, round(float(d.critical_line[0]), 2)
    ((2, 6), 1.0)
    """
    act = _acts.get(activation)
    sw = _grid("sigma_w2_grid", sigma_w2_grid)
    sb = _grid("sigma_b2_grid", sigma_b2_grid)
    SW, SB = np.meshgrid(sw, sb)
    r = _solve(act, SW, SB, order=order, order1d=16)
    chi = r["chi1"]
    ph = np.where(np.abs(chi - 1.0) <= _CRIT_TOL, 1, np.where(chi < 1.0, 0, 2)).astype(np.int8)
    line = np.full(sb.shape, np.nan)
    for i in range(sb.size):
        g = chi[i] - 1.0
        fin = np.isfinite(r["q_star"][i])
        # a crossing into q* = inf is where the length map starts to diverge, not the edge of
        # chaos (the same rule as critical_sigma_w2)
        cross = np.flatnonzero((g[:-1] <= 0) & (g[1:] > 0) & fin[:-1] & fin[1:])
        if cross.size:
            j = cross[0]
            line[i] = sw[j] - g[j] * (sw[j + 1] - sw[j]) / (g[j + 1] - g[j])
    return PhaseDiagram(
        activation=act.spec, sigma_w2=sw, sigma_b2=sb, q_star=r["q_star"], c_star=r["c_star"],
        chi1=chi, xi_q=r["xi_q"], xi_c=r["xi_c"], phase=ph, critical_line=line,
    )


def plot_phase_diagram(diagram: PhaseDiagram, path: str | Path, *, max_xi: float | None = None) -> Path:
    """Write a PNG: ξ_c heat map (log colour scale) with the χ₁ = 1 line and phase labels.

    Infinite ξ_c (criticality) is drawn at the colour scale's top; nan (divergent length map) is
    left blank. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

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
