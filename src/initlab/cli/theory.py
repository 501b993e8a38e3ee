"""``initlab theory {point,critical,phase}``: mean-field theory from the command line.

Heavy imports (numpy, scipy, matplotlib) happen inside the commands so ``initlab --help`` stays fast.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import typer

from initlab.cli import app
from initlab.cli._common import emit_json

theory_app = typer.Typer(
    name="theory",
    help="Mean-field theory: fixed points, chi1, depth scales, edge of chaos, phase diagram.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(theory_app, name="theory")

_ACT_HELP = "Activation name (tanh, relu, leaky_relu(0.2), sigmoid, gelu, erf, ...)."


def _activation(name: str, param: Optional[float]) -> Any:
    from initlab import activations
    from initlab.cli._common import PARAM_OPTIONS, option_names

    with option_names({**PARAM_OPTIONS, "activation": "--activation"}):
        return activations.get(name, param)


def _fmt(x: float) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    return f"{x:.6g}"


@theory_app.command("point")
def point_cmd(
    activation: str = typer.Option("tanh", "--activation", "-a", help=_ACT_HELP),
    sigma_w2: float = typer.Option(..., "--sigma-w2", help="Weight variance times fan-in, sigma_w^2 >= 0."),
    sigma_b2: float = typer.Option(0.0, "--sigma-b2", help="Bias variance sigma_b^2 >= 0."),
    param: Optional[float] = typer.Option(None, "--param", help="Parameter of a parametric activation."),
    json_out: bool = typer.Option(False, "--json", help="Print strict JSON (non-finite values as null)."),
) -> None:
    """q*, c*, chi1, xi_q, xi_c, phase and trainable depth at one (sigma_w2, sigma_b2)."""
    from initlab import theory
    from initlab._validation import check_number

    sigma_w2 = check_number("--sigma-w2", sigma_w2, low=0.0)
    sigma_b2 = check_number("--sigma-b2", sigma_b2, low=0.0)
    p = theory.point(_activation(activation, param), sigma_w2, sigma_b2)
    if json_out:
        d = p.to_dict()
        d["notes"] = p.notes()
        emit_json(d)
        return
    rows = [
        ("activation", p.activation),
        ("sigma_w2", _fmt(p.sigma_w2)),
        ("sigma_b2", _fmt(p.sigma_b2)),
        ("q*  (fixed-point pre-activation variance)", _fmt(p.q_star)),
        ("c*  (fixed-point correlation)", _fmt(p.c_star)),
        ("chi1 (per-layer gradient growth)", _fmt(p.chi1)),
        ("xi_q (length depth scale)", _fmt(p.xi_q)),
        ("xi_c (correlation depth scale)", _fmt(p.xi_c)),
        ("phase", p.phase),
        ("trainable depth (~6 xi_c)", _fmt(p.trainable_depth)),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"{k:<{width}}  {v}")
    for note in p.notes():
        typer.echo(f"note: {note}")


@theory_app.command("critical")
def critical_cmd(
    activation: str = typer.Option("tanh", "--activation", "-a", help=_ACT_HELP),
    sigma_b2: float = typer.Option(0.0, "--sigma-b2", help="Bias variance sigma_b^2 >= 0."),
    param: Optional[float] = typer.Option(None, "--param", help="Parameter of a parametric activation."),
    json_out: bool = typer.Option(False, "--json", help="Print strict JSON."),
) -> None:
    """The edge of chaos: the sigma_w2 where chi1 = 1 for the given sigma_b2."""
    from initlab import theory
    from initlab._validation import check_number

    sigma_b2 = check_number("--sigma-b2", sigma_b2, low=0.0)
    act = _activation(activation, param)
    sw = theory.critical_sigma_w2(act, sigma_b2)
    p = theory.point(act, sw, sigma_b2)
    if json_out:
        emit_json(
            {"activation": act.spec, "sigma_b2": sigma_b2, "sigma_w2": sw, "weight_std_times_sqrt_fan_in": math.sqrt(sw),
             "q_star": p.q_star, "chi1": p.chi1}
        )
        return
    typer.echo(f"{act.spec}: edge of chaos at sigma_w2 = {sw:.6g} for sigma_b2 = {sigma_b2:g}")
    typer.echo(f"  i.e. W ~ N(0, {sw:.6g}/fan_in), std = {math.sqrt(sw):.6g}/sqrt(fan_in); q* = {_fmt(p.q_star)}")


def _default_w_max(act: Any, b_max: float) -> float:
    """Past the edge of chaos at σ_b² = 0 and at the largest σ_b²; where there is no edge with a
    finite q* (softplus, gelu at σ_b² = 0), past the σ_w² = 1/max|φ′|² where q* diverges for a
    φ that is asymptotically linear with that slope (≥ 4 in any case)."""
    from initlab import theory

    edges = []
    for sb, factor in ((0.0, 2.5), (b_max, 1.5)):
        try:
            edges.append(factor * theory.critical_sigma_w2(act, sb))
        except ValueError:  # no critical point with a finite fixed point at this sigma_b2
            pass
    if edges:
        return max(edges)
    return max(4.0, 2.5 / max(act.max_deriv, 1e-12) ** 2)


_N_MIN = 5  # fewer grid points cannot bracket the edge of chaos usefully
_SIGMA2_MAX = 1e4  # the theory's quadrature is validated for q* up to ~1e3; no useful grid goes further
_BYTES_PER_POINT = 1000  # result arrays and their JSON lists, per grid point (solved in blocks of rows)
_BYTES_FIXED = 512 << 20  # one block's quadrature arrays (measured ~23 kB a point for GELU, 10,000 points)
_SECONDS_PER_POINT = 2e-4  # 1.4 s for tanh's 100 x 100 grid unloaded; GELU up to twice that
_SECONDS_MAX = 3600.0


def _check_grid_size(n: int) -> None:
    """Refuse an --n whose n x n grid needs more memory than is available, or more than an hour."""
    import os

    need = n * n * _BYTES_PER_POINT + _BYTES_FIXED
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX: assume 4 GiB
        avail = 4 << 30
    if need > avail:
        raise ValueError(
            f"The '--n' option {n} needs about {need / 2**30:.3g} GiB of memory for its {n} x {n} grid; "
            f"{avail / 2**30:.3g} GiB is available (use --n {max(_N_MIN, int((max(avail - _BYTES_FIXED, 0) / _BYTES_PER_POINT) ** 0.5))} or less)."
        )
    seconds = n * n * _SECONDS_PER_POINT
    if seconds > _SECONDS_MAX:
        raise ValueError(
            f"The '--n' option {n} would take about {seconds / 3600:.3g} hours for its {n} x {n} grid; "
            f"it must be at most {int((_SECONDS_MAX / _SECONDS_PER_POINT) ** 0.5)}."
        )


@theory_app.command("phase")
def phase_cmd(
    activation: str = typer.Option("tanh", "--activation", "-a", help=_ACT_HELP),
    param: Optional[float] = typer.Option(None, "--param", help="Parameter of a parametric activation."),
    sigma_w2_max: Optional[float] = typer.Option(
        None, "--sigma-w2-max", help="Largest sigma_w2 (default: past the edge of chaos at the largest sigma_b2)."
    ),
    sigma_b2_max: float = typer.Option(0.5, "--sigma-b2-max", help="Largest sigma_b2."),
    n: int = typer.Option(100, "--n", help="Grid points per axis (>= 5; refused if the grid would not fit in memory or take over an hour)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write the phase diagram as a PNG file."),
    json_out: bool = typer.Option(False, "--json", help="Print strict JSON (the grids; nan/inf as null)."),
) -> None:
    """Phase diagram over (sigma_w2, sigma_b2): chi1 = 1 line and xi_c heat map."""
    import time

    import numpy as np

    from initlab import theory
    from initlab._validation import check_int, check_number

    act = _activation(activation, param)
    n = check_int("--n", n, low=_N_MIN)
    _check_grid_size(n)
    b_max = check_number("--sigma-b2-max", sigma_b2_max, low=0.0, low_open=True, high=_SIGMA2_MAX)
    if sigma_w2_max is None:
        w_max = _default_w_max(act, b_max)
    else:
        w_max = check_number("--sigma-w2-max", sigma_w2_max, low=0.0, low_open=True, high=_SIGMA2_MAX)
    from initlab.cli._common import output_file, write_file

    plot_path = None if plot is None else output_file(plot, "--plot", ".png")  # never creates folders
    sw = np.linspace(w_max / n, w_max, n)
    sb = np.linspace(0.0, b_max, n)
    t0 = time.perf_counter()
    d = theory.phase_diagram(act, sw, sb)
    seconds = time.perf_counter() - t0
    if plot_path is not None:
        write_file(plot_path, "--plot", lambda tmp: theory.plot_phase_diagram(d, tmp))
    if json_out:
        out = d.to_dict()
        out["seconds"] = seconds
        out["plot"] = None if plot_path is None else str(plot_path)
        emit_json(out)
        return
    typer.echo(f"{act.spec}: {n} x {n} grid, sigma_w2 in [{sw[0]:.4g}, {sw[-1]:.4g}], sigma_b2 in [0, {b_max:g}] "
               f"({seconds:.2f} s)")
    typer.echo("edge of chaos (chi1 = 1), sigma_w2 at:")
    for i in np.unique(np.linspace(0, n - 1, min(n, 6)).astype(int)):
        why = f"  ({d.critical_note[i]})" if d.critical_note[i] else ""
        typer.echo(f"  sigma_b2 = {sb[i]:<8.4g} sigma_w2 = {_fmt(float(d.critical_line[i]))}{why}")
    frac = {name: float(np.mean(d.phase == k)) for k, name in enumerate(("ordered", "critical", "chaotic"))}
    typer.echo("phases: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in frac.items()))
    if np.any(np.isnan(d.xi_c)):
        typer.echo("note: xi_c is undefined (nan, blank in the plot) where the length map diverges (q* = inf).")
    if plot_path is not None:
        typer.echo(f"wrote {plot_path}")
