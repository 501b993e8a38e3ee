"""The seed experiments, each a function ``config -> StudyResult``.

One module per seed document (``../shared/seeds/``):

* :func:`seed000` — activation and backpropagated-delta histograms of a 2-200-300-400-300-2 MLP
  for many inits and activations, and the variance verification table against torch.nn.init.
* :func:`seed001` — a 12-6-1 ReLU network on two moons: zeros vs N(0, 10²) vs He.
* :func:`seed002` — sigmoid/ReLU activation histograms of 5 layers of 100, then the MNIST-style
  loss comparison of std 0.01, Xavier and He.
* :func:`seed003` — per-layer mean and std of a 10 × 500 tanh network, with the mean-field
  prediction beside every measured std.
* :func:`trainability` — the trainable depth over σ_w² against ξ_c.
* :func:`cnn` — seed 000's title: CNNs on digits and MNIST-1D under eight inits, the MNIST-1D
  paper's CNN against the paper's accuracy, and a 32-layer tanh CNN at the edge of chaos with
  delta-orthogonal versus Gaussian kernels.
* :func:`watch` — a ReLU MLP watched over its first ~100 training steps: the layer that dies and
  its step (N(0, 1) weights, Adam at lr 0.2) beside He init at lr 1e-3 (no verdict).

Every study takes a frozen config dataclass (seeded; ``quick=True`` shrinks sizes and epochs) and
is deterministic for a given config. :func:`registry` lists them; :func:`run` runs one by name.

>>> [s.name for s in registry()]
['seed000', 'seed001', 'seed002', 'seed003', 'trainability', 'cnn', 'watch']
>>> get("seed001").config(quick=True, seed=3).seed
3
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from initlab._validation import check_choice
from initlab.studies._result import FigureSpec, StudyResult, Table

# The functions shadow their modules' names in this package on purpose: ``initlab.studies.seed001``
# is the study function (the public interface); its module stays importable as
# ``initlab.studies.seed001`` through ``from initlab.studies.seed001 import Seed001Config``.
from initlab.studies.seed000 import seed000
from initlab.studies.seed001 import seed001
from initlab.studies.seed002 import seed002
from initlab.studies.seed003 import seed003
from initlab.studies.trainability import trainability
from initlab.studies.cnn import cnn
from initlab.studies.watch import watch

__all__ = [
    "Study",
    "StudyResult",
    "Table",
    "FigureSpec",
    "registry",
    "names",
    "get",
    "run",
    "seed000",
    "seed001",
    "seed002",
    "seed003",
    "trainability",
    "cnn",
    "watch",
]


@dataclass(frozen=True)
class Study:
    """One entry of the registry: the study's name, title, module and config class name."""

    name: str
    title: str
    module: str
    config_class: str

    def _module(self) -> Any:
        return importlib.import_module(f"initlab.studies.{self.module}")

    def config(self, *, quick: bool = False, seed: int = 0, **overrides: Any) -> Any:
        """The study's config for ``quick``/``seed``; ``overrides`` it does not have are ignored
        (so the report can pass ``mnist=`` to every study)."""
        cls = getattr(self._module(), self.config_class)
        fields = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in overrides.items() if k in fields and v is not None}
        return cls.make(quick=quick, seed=seed, **kw)

    def run(self, config: Any = None) -> StudyResult:
        """Run the study (default config when ``config`` is None)."""
        fn: Callable[[Any], StudyResult] = getattr(self._module(), self.name)
        return fn(config)


_REGISTRY: tuple[Study, ...] = (
    Study("seed000", "Seed 000: activation and gradient histograms, and the variance table", "seed000", "Seed000Config"),
    Study("seed001", "Seed 001: zeros, large random and He on two moons", "seed001", "Seed001Config"),
    Study("seed002", "Seed 002: sigmoid histograms and the MNIST-style loss comparison", "seed002", "Seed002Config"),
    Study("seed003", "Seed 003: per-layer mean and std of a deep tanh network", "seed003", "Seed003Config"),
    Study("trainability", "Trainability: depth × σ_w² against ξ_c", "trainability", "TrainabilityConfig"),
    Study("cnn", "CNNs: digits, MNIST-1D, a deep tanh CNN", "cnn", "CNNConfig"),
    Study("watch", "Watching training: the step where a layer dies", "watch", "WatchConfig"),
)


def registry() -> list[Study]:
    """Every study, in seed order."""
    return list(_REGISTRY)


def names() -> list[str]:
    """The study names, in seed order."""
    return [s.name for s in _REGISTRY]


def get(name: str) -> Study:
    """The study called ``name`` (ValueError listing the names otherwise)."""
    check_choice("study", name, names())
    return next(s for s in _REGISTRY if s.name == name)


def run(name: str, *, quick: bool = False, seed: int = 0, **overrides: Any) -> StudyResult:
    """Run study ``name`` with its config for ``quick``/``seed`` and ``overrides``."""
    study = get(name)
    return study.run(study.config(quick=quick, seed=seed, **overrides))


