"""Init specs: ``"kaiming_normal(mode=fan_out, nonlinearity=leaky_relu, a=0.3)"`` ⇄ InitSpec ⇄ dict.

Grammar: ``name`` or ``name(key=value, key=value, ...)``. A value is a number (``2`` is an int,
``2.0``/``1e-3`` floats, ``inf``/``-inf``), ``True``/``False``/``None``, a bare word
(``fan_out``: a string) or a quoted string. ``str(spec)`` writes the canonical form
``name(k=v, k=v)`` (keys in the given order), which parses back to an equal spec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InitSpec", "parse_spec"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HEAD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*\Z", re.S)
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z|[+-]?inf\Z")


def _format_value(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        if _NAME.match(v) and v not in ("True", "False", "None", "inf", "nan"):
            return v
        return repr(v)
    raise TypeError(f"The spec parameter values must be numbers, bools, None or strings; got {type(v).__name__} {v!r}.")


def _parse_value(text: str, spec: str) -> Any:
    t = text.strip()
    if t in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[t]
    if _INT.match(t):
        return int(t)
    if _FLOAT.match(t):
        return float(t)
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1].replace("\\" + t[0], t[0]).replace("\\\\", "\\")
    if _NAME.match(t):
        return t
    raise ValueError(f"The 'spec' argument has a value that is not a number, word or quoted string: {t!r} in {spec!r}.")


def _split_args(body: str, spec: str) -> list[str]:
    parts, cur, quote = [], [], ""
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote and (len(cur) < 2 or cur[-2] != "\\"):
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == ",":
            parts.append("".join(cur))
            cur = []
        elif ch in "()[]{}":
            raise ValueError(f"The 'spec' argument must look like name(key=value, ...); got {spec!r}.")
        else:
            cur.append(ch)
    if quote:
        raise ValueError(f"The 'spec' argument has an unclosed quote: {spec!r}.")
    parts.append("".join(cur))
    if parts and parts[-1].strip() == "" and len(parts) > 1:
        parts.pop()  # allow a trailing comma
    return [p for p in parts if p.strip() != ""] if len(parts) == 1 else parts


@dataclass(frozen=True)
class InitSpec:
    """A scheme name and its keyword parameters, as plain data.

    >>> s = InitSpec.parse("kaiming_normal(mode=fan_out, nonlinearity=leaky_relu, a=0.3)")
    >>> s.name, s.kwargs
    ('kaiming_normal', {'mode': 'fan_out', 'nonlinearity': 'leaky_relu', 'a': 0.3})
    >>> str(s)
    'kaiming_normal(mode=fan_out, nonlinearity=leaky_relu, a=0.3)'
    >>> InitSpec.from_dict(s.to_dict()) == s
    True
    """

    name: str
    params: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"The 'name' of an InitSpec must be an identifier like 'xavier_uniform'; got {self.name!r}.")
        ps = self.params
        if isinstance(ps, Mapping):
            ps = tuple(ps.items())
        items = tuple((str(k), v) for k, v in ps)
        keys = [k for k, _ in items]
        for k in keys:
            if not _NAME.match(k):
                raise ValueError(f"The parameter names of an InitSpec must be identifiers; got {k!r}.")
        if len(set(keys)) != len(keys):
            raise ValueError(f"The parameters of an InitSpec must not repeat a key; got {keys!r}.")
        for _, v in items:
            _format_value(v)  # type check
        object.__setattr__(self, "params", items)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={_format_value(v)}' for k, v in self.params)})"

    def to_dict(self) -> dict[str, Any]:
        """``{"name": name, "params": {...}}`` (JSON-ready)."""
        return {"name": self.name, "params": dict(self.params)}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> InitSpec:
        """Inverse of :meth:`to_dict`; a flat ``{"name": ..., key: value}`` is accepted too."""
        if not isinstance(d, Mapping) or "name" not in d:
            raise ValueError(f"The 'spec' dict must have a 'name' key (and optionally 'params'); got {d!r}.")
        if "params" in d:
            extra = set(d) - {"name", "params"}
            if extra:
                raise ValueError(f"The 'spec' dict must have only 'name' and 'params' keys; got extra {sorted(extra)}.")
            params = d["params"] or {}
            if not isinstance(params, Mapping):
                raise TypeError(f"The 'params' of a spec dict must be a dict; got {type(params).__name__}.")
        else:
            params = {k: v for k, v in d.items() if k != "name"}
        return InitSpec(d["name"], tuple(params.items()))

    @staticmethod
    def parse(text: str) -> InitSpec:
        """Parse ``"name(key=value, ...)"``."""
        return parse_spec(text)


def parse_spec(text: str) -> InitSpec:
    """Parse a spec string into an :class:`InitSpec` (see the module docstring for the grammar).

    >>> parse_spec("normal(std=0.02)").kwargs
    {'std': 0.02}
    """
    if not isinstance(text, str):
        raise TypeError(f"The 'spec' argument must be a string; got {type(text).__name__} {text!r}.")
    m = _HEAD.match(text)
    if not m:
        raise ValueError(f"The 'spec' argument must look like name or name(key=value, ...); got {text!r}.")
    name, body = m.group(1), m.group(2)
    params: list[tuple[str, Any]] = []
    if body is not None and body.strip():
        for part in _split_args(body, text):
            if "=" not in part:
                raise ValueError(
                    f"The 'spec' argument must give parameters as key=value; got {part.strip()!r} in {text!r}."
                )
            k, v = part.split("=", 1)
            k = k.strip()
            if not _NAME.match(k):
                raise ValueError(f"The 'spec' argument has a bad parameter name {k!r} in {text!r}.")
            if any(k == kk for kk, _ in params):
                raise ValueError(f"The 'spec' argument repeats the parameter {k!r} in {text!r}.")
            params.append((k, _parse_value(v, text)))
    return InitSpec(name, tuple(params))
