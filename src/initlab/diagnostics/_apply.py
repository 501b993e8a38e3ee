"""Initialize a torch model in place from initlab init specs: ``initlab.apply(module, spec_or_rules)``.

* One spec (``"kaiming_normal(nonlinearity=relu)"``, an InitSpec, a dict or an Initializer):
  every Linear and ConvNd weight is drawn from it; biases are left as they are.
* Rules: a dict ``{key: spec}`` or ``{key: {"weight": spec, "bias": spec}}``. A key is a module
  class (``torch.nn.Conv2d``), a class name (``"Linear"``, ``"nn.Conv2d"``) or a glob pattern on the
  qualified module name (``"encoder.*"``, ``"head"``, ``"*"``). For each module with parameters the
  FIRST matching rule (in the dict's order) is used; a rule given as a bare spec sets the weight only.

Values are drawn with NumPy from ``rng`` (:mod:`initlab.init`, torch layout, ``transposed=True``
for ConvTranspose) and copied into the tensors under ``torch.no_grad()``. The returned
:class:`ApplyRecord` says what was set (module, parameter, shape, spec, the rule, the std drawn)
and which parameterized modules no rule matched.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab._rng import RngLike, as_generator
from initlab._validation import bad_type
from initlab.diagnostics._theory import needs_fan_in

__all__ = ["ApplyRecord", "apply"]


@dataclass
class ApplyRecord:
    """What :func:`apply` set: ``entries`` (dicts with module, param, shape, spec, rule, std) and
    ``unmatched`` (qualified names of parameterized modules no rule covered)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"entries": list(self.entries), "unmatched": list(self.unmatched)}

    def __str__(self) -> str:
        lines = [f"{e['module']}.{e['param']} {tuple(e['shape'])} <- {e['spec']} (rule {e['rule']}; std {e['std']:.4g})"
                 for e in self.entries]
        if self.unmatched:
            lines.append("not matched: " + ", ".join(self.unmatched))
        return "\n".join(lines)


def _is_rules(obj: Any) -> bool:
    """A dict is rules unless it is a spec dict (``{"name": "normal", "std": 0.1}``)."""
    return isinstance(obj, dict) and not isinstance(obj.get("name"), str)


def _matches(key: Any, name: str, module: Any) -> bool:
    if isinstance(key, type):
        return isinstance(module, key)
    if not isinstance(key, str):
        bad_type("spec_or_rules", "rules keyed by a module class, a class name or a name pattern", key)
    cls = key.split(".")[-1] if key.startswith(("nn.", "torch.nn.")) else key
    if any(c.__name__ == cls for c in type(module).__mro__):
        return True
    return fnmatch.fnmatchcase(name, key)


def apply(module: Any, spec_or_rules: Any, *, rng: RngLike = None) -> ApplyRecord:
    """Initialize ``module``'s parameters in place; returns what was set (see the module docstring
    for the rule syntax). Example (torch is optional, so not run as a doctest; see
    tests/test_diagnostics_apply.py)::

        rec = initlab.apply(model, {"Linear": {"weight": "xavier_uniform", "bias": "zeros"},
                                    "head.*": "zeros"}, rng=0)
        print(rec)   # one line per parameter set, then the modules no rule matched
    """
    import torch
    from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

    from initlab import init as _init

    if not isinstance(module, torch.nn.Module):
        bad_type("module", "a torch.nn.Module", module)
    gen = as_generator(rng)
    if _is_rules(spec_or_rules):
        rules = list(spec_or_rules.items())
        if not rules:
            raise ValueError("The 'spec_or_rules' argument must hold at least one rule; got an empty dict.")
    else:
        rules = [((torch.nn.Linear, _ConvNd), {"weight": spec_or_rules})]
    # validate every spec up front, so a typo fails before anything is written
    norm_rules: list[tuple[Any, dict[str, Any]]] = []
    for key, val in rules:
        parts = val if isinstance(val, dict) and set(val) <= {"weight", "bias"} and val else {"weight": val}
        norm_rules.append((key, {p: _init.get(s) for p, s in parts.items()}))
    rec = ApplyRecord()
    for name, mod in module.named_modules():
        own = dict(mod.named_parameters(recurse=False))
        if not own:
            continue
        rule = None
        for key, parts in norm_rules:
            ok = isinstance(mod, key) if isinstance(key, tuple) else _matches(key, name, mod)
            if ok:
                rule = (key, parts)
                break
        if rule is None:
            rec.unmatched.append(name or type(mod).__name__)
            continue
        key, parts = rule
        key_txt = "default" if isinstance(key, tuple) else (key.__name__ if isinstance(key, type) else str(key))
        for pname, initializer in parts.items():
            p = own.get(pname)
            if p is None:
                continue
            dt = np.float64 if p.dtype == torch.float64 else np.float32
            kw: dict[str, Any] = {"rng": gen, "dtype": dt, "layout": "torch"}
            if isinstance(mod, _ConvTransposeNd) and pname == "weight":
                kw["transposed"] = True
            if pname != "weight" and needs_fan_in(initializer):
                # torch_default_bias: U(±1/√fan_in) with the fan-in of the module's weight (as torch)
                w = own.get("weight")
                if w is None:
                    raise ValueError(f"The {pname!r} spec {str(initializer.spec)!r} of module {name or type(mod).__name__!r} "
                                     "needs the layer's fan_in, but the module has no 'weight' to take it from.")
                kw["fan_in"] = int(_init.compute_fans(tuple(w.shape))[0])
            arr = np.ascontiguousarray(initializer(tuple(p.shape), **kw))
            with torch.no_grad():
                p.copy_(torch.from_numpy(arr).to(dtype=p.dtype, device=p.device))
            rec.entries.append({"module": name or type(mod).__name__, "param": pname, "shape": list(p.shape),
                                "spec": str(initializer.spec), "rule": key_txt,
                                "std": float(np.std(arr, dtype=np.float64))})
    return rec
