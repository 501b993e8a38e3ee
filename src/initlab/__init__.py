"""initlab: choose, apply, diagnose and verify neural-network weight initialization.

* :mod:`initlab.init` — exact, fast initializers (torch-identical where torch has the scheme,
  Keras/JAX semantics under explicit names), fans, gains, spec strings.
* :mod:`initlab.activations` — the one list of activations (engine, theory, gains, probe).
* :mod:`initlab.nn` — a small NumPy network engine with every layer's signal open.
* :mod:`initlab.theory` — mean-field signal propagation (length/correlation maps, χ₁, depth scales).
* :func:`initlab.probe`, :func:`initlab.fix`, :func:`initlab.apply` — per-layer diagnostics with
  the theory beside them, LSUV, and applying init specs to torch modules; :func:`initlab.watch`
  and :func:`initlab.coord_check` — each layer over the first steps of training.
* :mod:`initlab.studies` and :mod:`initlab.report` — the seed experiments and the HTML report.

Submodules are imported lazily, so ``import initlab`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {"activations", "init", "nn", "data", "theory", "diagnostics", "studies", "report"}
_FUNCTIONS = {"probe": "initlab.diagnostics", "fix": "initlab.diagnostics", "apply": "initlab.diagnostics",
              "watch": "initlab.diagnostics", "coord_check": "initlab.diagnostics"}

__all__ = sorted(_SUBMODULES | set(_FUNCTIONS) | {"__version__"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"initlab.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'initlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
