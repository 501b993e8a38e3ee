"""Trainability sweeps: many short trainings over a grid, on one machine or across machines.

* :mod:`~initlab.sweep.spec` — the sweep spec (model family, grid, training recipe; TOML);
* :mod:`~initlab.sweep.stacked` — K same-shape networks trained as one batched computation;
* :mod:`~initlab.sweep.executors` — serial, process-pool and Ray executors, resumable;
* :mod:`~initlab.sweep.store` — the SQLite store (one row per finished cell), CSV/Parquet export;
* :mod:`~initlab.sweep.plot` — heat maps with the critical line and c·ξ_c curves (Schoenholz,
  Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information Propagation").

>>> from initlab import sweep
>>> spec = sweep.parse_spec({"grid": {"sigma_w2": [1.0, 2.0]}, "train": {"dataset": "moons"}})
>>> spec.n_cells
2
"""

from __future__ import annotations

from initlab.sweep.executors import EXECUTORS, SweepRun, plan_tasks, run_sweep, run_task
from initlab.sweep.plot import heatmap_data, render, trainable_boundary
from initlab.sweep.spec import SweepSpec, cell_key, load_spec, parse_spec
from initlab.sweep.stacked import train_stack
from initlab.sweep.store import SweepStore, export

__all__ = [
    "EXECUTORS", "SweepRun", "SweepSpec", "SweepStore", "cell_key", "export", "heatmap_data", "load_spec",
    "parse_spec", "plan_tasks", "render", "run_sweep", "run_task", "trainable_boundary", "train_stack",
]
