"""Saving and reloading a :class:`~initlab.diagnostics.Watch`: one JSON file, no pickle.

The file holds everything a Watch holds (every recorded step: its loss, input statistics, each
layer's :class:`~initlab.diagnostics.LayerStats` with its histograms, ``near_zero`` and
``update_ratio``), so a reloaded Watch gives the same ``rows()``, histograms, verdicts and plots
as the one that was saved. Layout::

    {"format": "initlab-watch", "version": 1, "every": 10, "model": "torch",
     "steps": [{"step": 0, "loss": 2.3, "input_mean": ..., "layers": [{...LayerStats...}], ...}]}

Floats are written with Python's shortest round-trip repr (a reload is exact); a non-finite float
(a diverged run) is written as ``{"float": "nan"}`` / ``"inf"`` / ``"-inf"`` so the file stays
strict JSON. Histograms are ``{"edges": [...], "counts": [...], "n_sampled": n}``.

Writing is atomic (a temporary file beside the target, flushed and renamed onto it): a reader never
sees half a file and an interrupted save leaves the previous file. :func:`load_watch` reads only
JSON (nothing is executed or unpickled) and refuses, with a ValueError saying why, a file that is
not JSON, JSON without the ``"format": "initlab-watch"`` marker, a newer format version, or a
watch file whose content is damaged.

>>> import os, tempfile
>>> from initlab.diagnostics import Watch
>>> from initlab.diagnostics._measure import forward_stats
>>> from initlab.activations import get
>>> import numpy as np
>>> w = Watch(every=5)
>>> a = np.maximum(np.random.default_rng(0).standard_normal((32, 4)), 0)
>>> st = forward_stats(index=1, name="fc", kind="linear", activation=get("relu"), preact=None, act=a,
...                    weight=None, samples={})
>>> w.add_step(0, [st], loss=float("nan"))
>>> with tempfile.TemporaryDirectory() as d:
...     path = save_watch(w, os.path.join(d, "run.json"))
...     back = load_watch(path)
>>> back.every, back.rows()[0]["std"] == w.rows()[0]["std"], back.steps[0].loss
(5, True, nan)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import numpy as np

from initlab._io import atomic_write
from initlab._validation import bad_type

__all__ = ["FORMAT", "VERSION", "save_watch", "load_watch", "watch_to_data", "watch_from_data"]

#: the marker of a watch file
FORMAT = "initlab-watch"
#: the format version this initlab writes and the newest it reads
VERSION = 1

_HISTS = ("hist", "preact_hist", "grad_hist")


def _enc(x: Any) -> Any:
    """A JSON-safe copy of a scalar/list: numpy to Python, non-finite floats to {"float": "..."}."""
    if isinstance(x, dict):
        return {str(k): _enc(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_enc(v) for v in x]
    if isinstance(x, np.ndarray):
        return _enc(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else {"float": repr(v)}
    if x is None or isinstance(x, str):
        return x
    raise TypeError(f"cannot save a value of type {type(x).__name__} in a watch file")


def _dec(x: Any) -> Any:
    if isinstance(x, dict):
        if set(x) == {"float"}:
            if x["float"] not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad non-finite float {x['float']!r}")
            return float(x["float"])
        return {k: _dec(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_dec(v) for v in x]
    return x


def _hist_data(h: Any) -> dict[str, Any] | None:
    if h is None:
        return None
    return {"edges": _enc(np.asarray(h.edges, dtype=np.float64)), "counts": _enc(np.asarray(h.counts)),
            "n_sampled": int(h.n_sampled)}


def watch_to_data(watch: Any) -> dict[str, Any]:
    """The plain-data (strict JSON) form of ``watch`` (see the module docstring)."""
    from initlab.diagnostics._watch import Watch

    if not isinstance(watch, Watch):
        bad_type("watch", "an initlab Watch", watch)
    steps = []
    for rec in watch.steps:
        layers = []
        for st in rec.layers:
            d: dict[str, Any] = {}
            for f in dataclasses.fields(st):
                v = getattr(st, f.name)
                d[f.name] = _hist_data(v) if f.name in _HISTS else _enc(v)
            layers.append(d)
        steps.append({
            "step": int(rec.step), "loss": _enc(rec.loss), "input_mean": _enc(rec.input_mean),
            "input_std": _enc(rec.input_std), "input_cosine": _enc(rec.input_cosine), "batch": int(rec.batch),
            "backward": bool(rec.backward), "near_zero": _enc(rec.near_zero), "update_ratio": _enc(rec.update_ratio),
            "layers": layers,
        })
    return {"format": FORMAT, "version": VERSION, "every": int(watch.every), "model": str(watch.model),
            "notes": [str(n) for n in getattr(watch, "notes", [])], "steps": steps}


def _histogram(d: Any) -> Any:
    from initlab.diagnostics._stats import Histogram

    if d is None:
        return None
    edges = np.asarray(d["edges"], dtype=np.float64)
    counts = np.asarray(d["counts"])
    if counts.dtype.kind not in "iuf" or edges.ndim != 1 or counts.ndim != 1 or edges.size != counts.size + 1:
        raise ValueError(f"a histogram has {edges.size} edges for {counts.size} counts")
    return Histogram(edges=edges, counts=counts.astype(np.int64) if counts.dtype.kind != "f" else counts,
                     n_sampled=int(d["n_sampled"]))


def watch_from_data(data: Any) -> Any:
    """The :class:`~initlab.diagnostics.Watch` held by ``data`` (the form :func:`watch_to_data`
    gives). ValueError when ``data`` is not a watch (no marker, a newer version) or is damaged."""
    from initlab.diagnostics._result import LayerStats
    from initlab.diagnostics._watch import Watch

    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"it has no \"format\": \"{FORMAT}\" marker (it is not a watch saved by initlab)")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"its format version is {version!r}, not a positive integer")
    if version > VERSION:
        raise ValueError(f"it has format version {version}, written by a newer initlab (this one reads up to "
                         f"{VERSION}); upgrade initlab")
    known = {f.name for f in dataclasses.fields(LayerStats)}
    try:
        w = Watch(every=data["every"], model=str(data.get("model", "torch")))
        notes = data.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise ValueError("\"notes\" is not a list of strings")
        w.notes = list(notes)
        for rec in _dec(data["steps"]):
            layers = []
            for d in rec["layers"]:
                kw = {k: v for k, v in d.items() if k in known and k not in _HISTS}
                st = LayerStats(**kw)
                for h in _HISTS:
                    setattr(st, h, _histogram(d.get(h)))
                layers.append(st)
            w.add_step(int(rec["step"]), layers, loss=rec.get("loss"),
                       input_stats=(rec.get("input_mean", 0.0), rec.get("input_std", 0.0), rec.get("input_cosine")),
                       batch=int(rec.get("batch", 0)), backward=bool(rec.get("backward", False)),
                       near_zero=dict(rec.get("near_zero") or {}), update_ratio=dict(rec.get("update_ratio") or {}))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise ValueError(f"its content is damaged ({what})") from None
    return w


def save_watch(watch: Any, path: str | os.PathLike[str]) -> str:
    """Write ``watch`` to the JSON file ``path`` atomically (a temporary file beside it, then a
    rename); return the path. ValueError naming 'path' when its folder does not exist or cannot be
    written."""
    if not isinstance(path, (str, os.PathLike)):
        bad_type("path", "a file path", path)
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise ValueError(f"The 'path' argument must be inside an existing folder; {folder!r} does not exist.")
    if os.path.isdir(target):
        raise ValueError(f"The 'path' argument must name a file; {target!r} is a folder.")
    text = json.dumps(watch_to_data(watch), allow_nan=False, separators=(",", ":"))
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    try:
        atomic_write(target, write)
    except OSError as e:
        raise ValueError(f"The 'path' argument {target!r} cannot be written: {e.strerror or e}.") from None
    return target


def load_watch(path: str | os.PathLike[str]) -> Any:
    """The :class:`~initlab.diagnostics.Watch` saved in ``path`` by :func:`save_watch`.

    FileNotFoundError when ``path`` does not exist; ValueError, naming the file and saying why,
    when it is not an initlab watch file (not JSON, no marker, a newer version) or is damaged."""
    if not isinstance(path, (str, os.PathLike)):
        bad_type("path", "a file path", path)
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"The watch file {p!r} does not exist.")
    if os.path.isdir(p):
        raise ValueError(f"The watch file {p!r} is a folder; expected a file written by Watch.save.")
    try:
        with open(p, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise ValueError(f"The watch file {p!r} cannot be read: {e.strerror or e}.") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        what = "it is empty" if not raw.strip() else "it is not JSON (truncated, or another kind of file)"
        raise ValueError(f"The file {p!r} is not an initlab watch file: {what}.") from None
    try:
        return watch_from_data(data)
    except ValueError as e:
        raise ValueError(f"The file {p!r} is not a valid initlab watch file: {e}.") from None
