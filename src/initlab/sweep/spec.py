"""Sweep specs: a model family, a grid and a training recipe, as plain data or a TOML file.

A spec has three tables (Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information
Propagation", swept σ_w² × depth for tanh networks; this is that experiment as data)::

    [model]
    activation = "tanh"
    width = 300
    sigma_b2 = 0.05          # weights N(0, sigma_w2/fan_in), biases N(0, sigma_b2)
    [grid]
    sigma_w2 = {start = 1.0, stop = 4.0, num = 30}
    depth = {start = 10, stop = 100, num = 10}
    seed = [0, 1]
    [train]
    dataset = "mnist1d"
    optimizer = "sgd"
    lr = 1e-3
    batch_size = 256
    steps = 200

Any key of ``[model]`` or ``[train]`` (and ``seed``) may be a grid axis: a list of values, or a
range ``{start, stop, num, scale = "linear" | "log"}`` (integer keys are rounded). The cells are
the Cartesian product of the axes, in the order the axes are written, the last axis fastest.

>>> spec = parse_spec({"model": {"width": 8}, "grid": {"sigma_w2": [1.0, 2.0], "depth": [2, 3]},
...                    "train": {"dataset": "moons", "steps": 5}})
>>> len(spec.cells()), spec.cells()[0]["sigma_w2"], spec.cells()[1]["depth"]
(4, 1.0, 3)
>>> parse_spec({"modle": {}})
Traceback (most recent call last):
...
ValueError: The sweep spec has an unknown key 'modle' (did you mean 'model'?); allowed: 'model', 'grid', 'train', 'name'.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from initlab._validation import check_choice, check_int, check_number, suggest

__all__ = [
    "SweepSpec",
    "parse_spec",
    "load_spec",
    "cell_key",
    "MODEL_DEFAULTS",
    "TRAIN_DEFAULTS",
    "STACKABLE",
    "DATASETS",
    "OPTIMIZERS",
    "INITS",
]

DATASETS = ("mnist1d", "digits", "moons", "gaussian", "mnist")
OPTIMIZERS = ("sgd", "momentum", "adam")
#: weight distributions, all with Var(W) = σ_w²/fan_in (orthogonal: scaled so that the mean-field
#: length map is the same, gain² = σ_w²·max(out, in)/in)
INITS = ("gaussian", "uniform", "truncated_normal", "orthogonal")
OUTPUTS = ("linear", "sigmoid")

MODEL_DEFAULTS: dict[str, Any] = {
    "activation": "tanh",
    "width": 100,
    "depth": 10,
    "hidden": None,
    "sigma_w2": 1.0,
    "sigma_b2": 0.0,
    "init": "gaussian",
    "output": "linear",
    "dtype": "float32",
}
TRAIN_DEFAULTS: dict[str, Any] = {
    "dataset": "mnist1d",
    "optimizer": "sgd",
    "lr": 1e-3,
    "momentum": 0.9,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "batch_size": 256,
    "steps": 200,
    "n_train": None,
    "n_test": None,
    "data_seed": 0,
    "mnist_dir": None,
}
SECTIONS = ("model", "grid", "train", "name")
#: keys whose value may differ between the networks of one stack (they change numbers, not shapes)
STACKABLE = frozenset({"sigma_w2", "sigma_b2", "seed", "init", "lr"})
_INT_KEYS = {"width", "depth", "batch_size", "steps", "n_train", "n_test", "data_seed", "seed"}


def _v_activation(key: str, v: Any) -> str:
    from initlab import activations

    if not isinstance(v, str):
        raise TypeError(f"The {key!r} key must be an activation name like 'tanh'; got {type(v).__name__} {v!r}.")
    try:
        return activations.get(v).spec
    except (ValueError, TypeError) as e:
        raise ValueError(f"The {key!r} key: {e}") from None


def _v_pos_int(key: str, v: Any) -> int:
    return check_int(key, v, low=1)


def _v_nonneg_int(key: str, v: Any) -> int:
    return check_int(key, v, low=0)


def _v_opt_pos_int(key: str, v: Any) -> int | None:
    return None if v is None else check_int(key, v, low=1)


def _v_pos(key: str, v: Any) -> float:
    return check_number(key, v, low=0.0, low_open=True)


def _v_nonneg(key: str, v: Any) -> float:
    return check_number(key, v, low=0.0)


def _v_unit(key: str, v: Any) -> float:
    return check_number(key, v, low=0.0, high=1.0, high_open=True)


def _v_hidden(key: str, v: Any) -> list[int] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or not v:
        raise TypeError(f"The {key!r} key must be a non-empty list of hidden widths like [12, 6]; got {v!r}.")
    return [check_int(key, x, low=1) for x in v]


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(key: str, v: Any) -> str:
        return check_choice(key, v, options)

    return check


def _v_dtype(key: str, v: Any) -> str:
    return check_choice(key, v, ["float32", "float64"])


def _v_dir(key: str, v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise TypeError(f"The {key!r} key must be a folder path; got {type(v).__name__} {v!r}.")
    return v


_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "activation": _v_activation,
    "width": _v_pos_int,
    "depth": _v_pos_int,
    "hidden": _v_hidden,
    "sigma_w2": _v_pos,
    "sigma_b2": _v_nonneg,
    "init": _choice(INITS),
    "output": _choice(OUTPUTS),
    "dtype": _v_dtype,
    "dataset": _choice(DATASETS),
    "optimizer": _choice(OPTIMIZERS),
    "lr": _v_pos,
    "momentum": _v_unit,
    "beta1": _v_unit,
    "beta2": _v_unit,
    "eps": _v_pos,
    "batch_size": _v_pos_int,
    "steps": _v_pos_int,
    "n_train": _v_opt_pos_int,
    "n_test": _v_opt_pos_int,
    "data_seed": _v_nonneg_int,
    "mnist_dir": _v_dir,
    "seed": _v_nonneg_int,
}


def _unknown(where: str, key: str, allowed: list[str]) -> ValueError:
    return ValueError(
        f"The sweep spec has an unknown key {where + str(key)!r}{suggest(key, allowed)}; "
        f"allowed: {', '.join(map(repr, allowed))}."
    )


def _expand_axis(key: str, raw: Any) -> list[Any]:
    """The values of grid axis ``key``: a list, a scalar, or a range table."""
    name = f"grid.{key}"
    if isinstance(raw, dict):
        allowed = ["start", "stop", "num", "scale"]
        for k in raw:
            if k not in allowed:
                raise _unknown(f"{name}.", k, allowed)
        for k in ("start", "stop", "num"):
            if k not in raw:
                raise ValueError(f"The {name!r} range needs 'start', 'stop' and 'num'; {k!r} is missing (got {raw!r}).")
        start = check_number(f"{name}.start", raw["start"])
        stop = check_number(f"{name}.stop", raw["stop"])
        num = check_int(f"{name}.num", raw["num"], low=1)
        scale = check_choice(f"{name}.scale", raw.get("scale", "linear"), ["linear", "log"])
        if num > 1 and start == stop:
            raise ValueError(f"The {name!r} range has start == stop ({start}) with num = {num}: all values would be equal.")
        if scale == "log":
            if start <= 0 or stop <= 0:
                raise ValueError(f"The {name!r} range is 'log' so 'start' and 'stop' must be > 0; got start={start}, stop={stop}.")
            vals = np.geomspace(start, stop, num)
        else:
            vals = np.linspace(start, stop, num)
        if key in _INT_KEYS:
            ints = [int(round(float(v))) for v in vals]
            if len(set(ints)) != len(ints):
                raise ValueError(
                    f"The {name!r} range gives repeated values after rounding to integers ({ints}); use fewer points "
                    "or a list."
                )
            out: list[Any] = ints
        else:
            out = [float(v) for v in vals]
    elif isinstance(raw, (list, tuple)):
        if len(raw) == 0:
            raise ValueError(f"The {name!r} axis is empty: give at least one value.")
        out = list(raw)
    else:
        out = [raw]
    checked = [_VALIDATORS[key](name, v) for v in out]
    seen: set[str] = set()
    for v in checked:
        s = json.dumps(v)
        if s in seen:
            raise ValueError(f"The {name!r} axis repeats the value {v!r}.")
        seen.add(s)
    return checked


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def cell_key(config: dict[str, Any]) -> str:
    """A short stable id of a cell's config (sha256 of its canonical JSON, 16 hex digits).

    >>> cell_key({"a": 1}) == cell_key({"a": 1}) != cell_key({"a": 2})
    True
    """
    return hashlib.sha256(_canon(config).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: ``model`` and ``train`` with defaults filled (swept keys left out),
    ``grid`` as given, and the expanded ``axes`` (name → list of values, in the order written)."""

    name: str
    model: dict[str, Any]
    train: dict[str, Any]
    grid: dict[str, Any]
    axes: dict[str, list[Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what the store keeps and compares (``parse_spec(spec.to_dict()) == spec``)."""
        return {"name": self.name, "model": dict(self.model), "grid": dict(self.grid), "train": dict(self.train)}

    def canonical(self) -> str:
        """Canonical JSON of :meth:`to_dict`."""
        return _canon(self.to_dict())

    @property
    def n_cells(self) -> int:
        return math.prod(len(v) for v in self.axes.values())

    def cells(self) -> list[dict[str, Any]]:
        """Every cell's full config (model and train keys merged, plus ``seed``), grid order."""
        base = {**self.model, **self.train, "seed": 0}
        for k in self.axes:
            base.pop(k, None)
        names = list(self.axes)
        out = []
        for combo in itertools.product(*(self.axes[k] for k in names)):
            cfg = dict(base)
            cfg.update(zip(names, combo))
            if cfg.get("hidden") is not None:
                cfg["width"], cfg["depth"] = None, len(cfg["hidden"])
            out.append({k: cfg[k] for k in sorted(cfg)})
        return out


def _section(raw: Any, name: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError(f"The sweep spec's {name!r} must be a table (a dict); got {type(raw).__name__} {raw!r}.")
    return raw


def parse_spec(raw: Any) -> SweepSpec:
    """Validate a spec given as plain data (``{"model": ..., "grid": ..., "train": ...}``).

    Raises ValueError/TypeError naming the key: unknown keys (with a suggestion), empty axes,
    bad ranges, out-of-range values, a key both fixed and swept.
    """
    if isinstance(raw, SweepSpec):
        return raw
    if not isinstance(raw, dict):
        raise TypeError(f"A sweep spec must be a dict with 'model', 'grid' and 'train' tables; got {type(raw).__name__}.")
    for k in raw:
        if k not in SECTIONS:
            raise _unknown("", k, list(SECTIONS))
    name = raw.get("name", "sweep")
    if not isinstance(name, str):
        raise TypeError(f"The sweep spec's 'name' must be a string; got {type(name).__name__} {name!r}.")
    model_raw, train_raw, grid_raw = (_section(raw.get(s), s) for s in ("model", "train", "grid"))
    model, train = dict(MODEL_DEFAULTS), dict(TRAIN_DEFAULTS)
    for sec, given, dst in (("model", model_raw, model), ("train", train_raw, train)):
        allowed = list(MODEL_DEFAULTS if sec == "model" else TRAIN_DEFAULTS)
        for k, v in given.items():
            if k not in allowed:
                raise _unknown(f"{sec}.", k, allowed)
            if v is None and MODEL_DEFAULTS.get(k, 0) is not None and TRAIN_DEFAULTS.get(k, 0) is not None:
                if not (k in ("width", "depth") and model_raw.get("hidden") is not None):
                    raise ValueError(f"The sweep spec's '{sec}.{k}' cannot be empty (None).")
                continue
            dst[k] = _VALIDATORS[k](f"{sec}.{k}", v)
    if model_raw.get("hidden") is not None and (model_raw.get("width") is not None or model_raw.get("depth") is not None):
        raise ValueError("The sweep spec's 'model.hidden' (a list of widths) replaces 'width' and 'depth'; give one or the other.")
    if not grid_raw:
        raise ValueError("The sweep spec's 'grid' is empty: give at least one axis, e.g. sigma_w2 = [1.0, 2.0].")
    axis_keys = [*MODEL_DEFAULTS, *TRAIN_DEFAULTS, "seed"]
    axes: dict[str, list[Any]] = {}
    grid: dict[str, Any] = {}
    for k, v in grid_raw.items():
        if k not in axis_keys:
            raise _unknown("grid.", k, axis_keys)
        if k in model_raw or k in train_raw:
            sec = "model" if k in model_raw else "train"
            raise ValueError(f"The key {k!r} is both fixed ({sec}.{k}) and a grid axis (grid.{k}); keep one.")
        axes[k] = _expand_axis(k, v)
        grid[k] = dict(v) if isinstance(v, dict) else (list(v) if isinstance(v, (list, tuple)) else [v])
    if "hidden" in axes and ("width" in axes or "depth" in axes):
        raise ValueError("The grid sweeps 'hidden' and also 'width' or 'depth'; 'hidden' replaces them.")
    if model["hidden"] is not None and ("width" in axes or "depth" in axes):
        raise ValueError("The sweep spec fixes 'model.hidden' and sweeps 'width' or 'depth'; 'hidden' replaces them.")
    if model["hidden"] is not None:
        model["width"], model["depth"] = None, None
    for k in axes:  # a swept key has no fixed value
        model.pop(k, None)
        train.pop(k, None)
    datasets = axes.get("dataset", [train.get("dataset")])
    if "mnist" in datasets and train.get("mnist_dir") is None and "mnist_dir" not in axes:
        raise ValueError("The sweep uses dataset 'mnist': give the folder with train.mnist_dir (or --mnist DIR on the command line).")
    outputs = axes.get("output", [model.get("output")])
    if "sigmoid" in outputs and any(d not in ("moons",) for d in datasets):
        raise ValueError("The 'output' key 'sigmoid' (one unit, binary cross-entropy) needs a two-class dataset ('moons').")
    return SweepSpec(name=name, model=model, train=train, grid=grid, axes=axes)


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - python 3.10
        import tomli as tomllib
    return tomllib.loads(text)


def load_spec(path: str | os.PathLike[str], *, mnist_dir: str | None = None) -> SweepSpec:
    """Read and validate a TOML spec file; ``mnist_dir`` (``--mnist DIR``) sets ``train.mnist_dir``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"The sweep spec file {str(p)!r} does not exist.")
    try:
        raw = _toml_loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"The sweep spec file {str(p)!r} is not UTF-8 text.") from None
    except Exception as e:  # tomllib.TOMLDecodeError
        if type(e).__name__ != "TOMLDecodeError":
            raise
        raise ValueError(f"The sweep spec file {str(p)!r} is not valid TOML: {e}.") from None
    if mnist_dir is not None:
        raw.setdefault("train", {})
        if isinstance(raw["train"], dict):
            raw["train"]["mnist_dir"] = str(mnist_dir)
    return parse_spec(raw)
