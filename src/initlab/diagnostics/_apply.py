"""Initialize a model in place from initlab init specs or a named preset: ``initlab.apply(model, what)``.

``what`` is one of:

* **one spec** (``"kaiming_normal(nonlinearity=relu)"``, an InitSpec, a spec dict or an
  Initializer): every weight matrix of every Linear, ConvNd, LSTM/GRU/RNN (``weight_ih_l*``,
  ``weight_hh_l*``, stacked gates as torch stores them) and MultiheadAttention
  (``in_proj_weight`` or ``q/k/v_proj_weight``; ``out_proj`` is a Linear) is drawn from it; biases,
  norm gains and embeddings are left as they are (address them with rules).
* **rules**: a dict ``{key: spec}`` or ``{key: {param_pattern: spec, ...}}``. A key is

  - a module class (``torch.nn.Conv2d``) or class name (``"Linear"``, ``"nn.LSTM"``): the
    modules of that type; a bare spec sets their weight matrices (as above; ``weight`` for any
    other module), a dict sets the parameters whose local name matches each pattern
    (``{"weight_hh_*": "orthogonal", "bias_*": "zeros"}``);
  - a glob pattern (:func:`fnmatch.fnmatchcase`) on the qualified **module** name
    (``"encoder.*"``, ``"head"``), with a bare spec or a dict of local-name patterns as above;
  - a glob pattern on the full **parameter** name (``"*.weight_ih_*"``, ``"*.in_proj_weight"``,
    ``"layers.*.linear2.weight"``), with a bare spec.

  Each parameter takes the FIRST rule that addresses it, in the dict's order. A rule that sets
  nothing (a typo such as ``"Linaer"``, a pattern matching nothing, or a rule entirely shadowed by
  earlier ones) and a dict entry naming a parameter none of the matched modules has are errors
  (ValueError naming the rule, with a did-you-mean); a ``bias`` entry for a layer built with
  ``bias=False`` is not.
* **a preset** by name, ``"fixup"``, ``"skipinit"``, ``"rezero"``, ``"t_fixup"``, ``"deepnet"``
  (alias ``"deepnorm"``), or a dict ``{"preset": name, **options}``: see
  :mod:`initlab.diagnostics._presets` for each paper's formula.

Also works on an :class:`initlab.nn.Network` (its layers are named ``layers.0``, ``layers.1``…,
type ``Dense``; parameters ``weight`` and ``bias``), so a verdict's fix applies to both probes.

Values are drawn with NumPy from ``rng`` (:mod:`initlab.init`, torch layout, ``transposed=True``
for ConvTranspose) and written by ONE helper, :func:`write`. Every spec is validated and every
rule resolved before anything is written, so an error leaves the model untouched. The returned
:class:`ApplyRecord` says what was set (module, parameter, shape, spec, rule, std drawn), which
parameterised modules nothing set, and notes (a preset's choices).
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initlab._rng import RngLike, as_generator
from initlab._validation import bad_type
from initlab.diagnostics import _presets
from initlab.diagnostics._theory import needs_fan_in

__all__ = ["ApplyRecord", "apply", "write"]


@dataclass
class ApplyRecord:
    """What :func:`apply` set: ``entries`` (dicts with module, param, shape, spec, rule, std),
    ``unmatched`` (qualified names of parameterised modules nothing set), ``notes`` (what a preset
    did beyond drawing weights, or could not do) and ``preset`` (the preset and its resolved
    numbers, or None)."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    preset: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"entries": list(self.entries), "unmatched": list(self.unmatched), "notes": list(self.notes),
                "preset": self.preset}

    def __str__(self) -> str:
        lines = [f"{e['module']}.{e['param']} {tuple(e['shape'])} <- {e['spec']} (rule {e['rule']}; std {e['std']:.4g})"
                 for e in self.entries]
        if self.unmatched:
            lines.append("not matched: " + ", ".join(self.unmatched))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def write(param: Any, initializer: Any, gen: np.random.Generator, *, scale: float = 1.0,
          transposed: bool = False, fan_in: int | None = None, shape_for_fans: tuple[int, ...] | None = None) -> np.ndarray:
    """Fill ``param`` (a torch tensor or a NumPy array) in place from ``initializer`` drawn with
    ``gen``, then multiply it by ``scale``; returns the values written (a NumPy copy).

    The ONE place where apply, the presets and LSUV write a parameter. It goes through
    :func:`initlab.init.fill_`, which writes a CPU tensor's memory directly (no copy) and draws
    on the host for other devices. ``shape_for_fans``: draw with the fans of this shape (a q/k/v
    block of a stacked matrix is drawn as the square matrix it is), reshaped into ``param``.
    """
    from initlab.init import fill_

    shape = tuple(param.shape)
    is_np = isinstance(param, np.ndarray)
    kw: dict[str, Any] = {}
    if fan_in is not None:
        kw["fan_in"] = int(fan_in)
    if shape_for_fans is not None and tuple(shape_for_fans) != shape:
        tmp = np.empty(tuple(shape_for_fans), dtype=np.float64 if str(param.dtype).endswith("float64") else np.float32)
        fill_(tmp, initializer, rng=gen, layout="torch", transposed=transposed, **kw)
        values: Any = tmp.reshape(shape)
        if is_np:
            param[...] = values
        else:
            import torch

            with torch.no_grad():
                param.copy_(torch.from_numpy(np.ascontiguousarray(values)).to(dtype=param.dtype, device=param.device))
    else:
        fill_(param, initializer, rng=gen, layout="torch", transposed=transposed, **kw)
    if scale != 1.0:
        if is_np:
            param *= param.dtype.type(scale)
        else:
            import torch

            with torch.no_grad():
                param.mul_(scale)
    if is_np:
        return np.array(param, copy=True)
    import torch

    t = param.detach().to("cpu", copy=True)
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def _is_rules(obj: Any) -> bool:
    """A dict is rules unless it is a spec dict (``{"name": "normal", "std": 0.1}``) or a preset."""
    return isinstance(obj, dict) and not isinstance(obj.get("name"), str) and "preset" not in obj


def _weight_like(pname: str) -> bool:
    """A weight matrix of a module: ``weight``, ``weight_ih_l0``…, ``in_proj_weight``…"""
    return pname == "weight" or pname.startswith("weight_") or pname.endswith("_weight")


class _Unit:
    """A module-like unit: qualified name, type names (MRO), own parameters {local name: tensor or
    None for a parameter registered as None}, and the object itself (torch module or Dense)."""

    def __init__(self, name: str, obj: Any, types: list[str], params: dict[str, Any], transposed: bool = False):
        self.name, self.obj, self.types, self.params, self.transposed = name, obj, types, params, transposed

    def is_instance(self, key: Any) -> bool:
        if isinstance(key, type):
            return isinstance(self.obj, key)
        return key in self.types


def _units(model: Any) -> list[_Unit]:
    from initlab.nn import Network

    if isinstance(model, Network):
        return [_Unit(f"layers.{i}", la, [type(la).__name__, "Linear"], {"weight": la.weight, "bias": la.bias})
                for i, la in enumerate(model.layers)]
    from torch.nn.modules.conv import _ConvTransposeNd

    units = []
    for name, mod in model.named_modules():
        own = dict(mod._parameters)
        if not any(p is not None for p in own.values()):
            continue
        units.append(_Unit(name, mod, [c.__name__ for c in type(mod).__mro__], own,
                           transposed=isinstance(mod, _ConvTransposeNd)))
    return units


def _class_name(key: str) -> str:
    return key.split(".")[-1] if key.startswith(("nn.", "torch.nn.")) else key


def _default_types() -> tuple[type, ...]:
    import torch.nn as nn
    from torch.nn.modules.conv import _ConvNd
    from torch.nn.modules.rnn import RNNBase

    return (nn.Linear, _ConvNd, RNNBase, nn.MultiheadAttention)


def _resolve(model: Any, rules: list[tuple[Any, Any]]) -> tuple[list[tuple[_Unit, str, Any, str]], list[_Unit]]:
    """(unit, parameter local name, initializer, rule text) per parameter to set, and the units.
    Raises ValueError for a rule that sets nothing or names a parameter no matched module has."""
    from initlab import init as _init

    units = _units(model)
    norm: list[tuple[Any, Any, str]] = []  # (key, spec or {pattern: initializer}, text)
    for key, val in rules:
        if isinstance(key, tuple):
            text = "default"
        elif isinstance(key, type):
            text = key.__name__
        elif isinstance(key, str):
            text = key
        else:
            bad_type("spec_or_rules", "rules keyed by a module class, a class name or a name pattern", key)
        if isinstance(val, dict) and not isinstance(val.get("name"), str):
            if not val:
                raise ValueError(f"The rule {text!r} of 'spec_or_rules' must name at least one parameter; got an empty dict.")
            norm.append((key, {str(p): _init.get(s) for p, s in val.items()}, text))
        else:
            norm.append((key, _init.get(val), text))
    chosen: dict[tuple[int, str], tuple[Any, str]] = {}
    per_rule: list[int] = [0] * len(norm)
    hits: list[int] = [0] * len(norm)  # parameters the rule addresses (set or shadowed)
    part_seen: list[dict[str, bool]] = [
        ({p: False for p in v} if isinstance(v, dict) else {}) for _, v, _ in norm]
    for ui, u in enumerate(units):
        for pname, p in u.params.items():
            full = f"{u.name}.{pname}" if u.name else pname
            for ri, (key, val, text) in enumerate(norm):
                spec = None
                if isinstance(key, tuple):
                    if isinstance(u.obj, key) and _weight_like(pname) and p is not None and p.ndim >= 2:
                        spec = val
                else:
                    by_type = isinstance(key, type) and u.is_instance(key) or (
                        isinstance(key, str) and u.is_instance(_class_name(key)))
                    by_module = by_type or (isinstance(key, str) and bool(u.name) and fnmatch.fnmatchcase(u.name, key))
                    if by_module:
                        if isinstance(val, dict):
                            for pat, s in val.items():
                                if fnmatch.fnmatchcase(pname, pat):
                                    part_seen[ri][pat] = True
                                    spec = s
                                    break
                        elif _weight_like(pname) if u.types[0] not in ("Dense",) else pname == "weight":
                            spec = val
                    if spec is None and isinstance(key, str) and not isinstance(val, dict) and fnmatch.fnmatchcase(full, key):
                        spec = val
                if spec is None:
                    continue
                if p is None:  # registered as None (bias=False): nothing to set, not an error
                    break
                hits[ri] += 1  # later rules addressing it count as shadowed
                if (ui, pname) not in chosen:
                    chosen[(ui, pname)] = (spec, text)
                    per_rule[ri] += 1
    for ri, (key, val, text) in enumerate(norm):
        for pat, ok in part_seen[ri].items():
            names = sorted({pn for u in units if u.is_instance(_class_name(text)) or (u.name and fnmatch.fnmatchcase(u.name, text))
                            for pn in u.params})
            if not ok and names:
                close = difflib.get_close_matches(pat, names, n=3)
                hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else f" (it has {', '.join(names)})"
                raise ValueError(f"The rule {text!r} of 'spec_or_rules' names the parameter {pat!r}, which no module it "
                                 f"matches has{hint}.")
        if per_rule[ri] == 0 and not isinstance(key, tuple):
            raise ValueError(f"The rule {text!r} of 'spec_or_rules' sets nothing: " + (
                "every parameter it addresses is set by an earlier rule." if hits[ri] else
                f"it matches no module type, module name or parameter name of the model.{_did_you_mean(text, units)}"))
    if not chosen:
        raise ValueError("The 'spec_or_rules' argument sets nothing: the model has no Linear, ConvNd, LSTM/GRU/RNN or "
                         f"MultiheadAttention weight; got {type(model).__name__}.")
    plan = [(units[ui], pname, spec, text) for (ui, pname), (spec, text) in chosen.items()]
    return plan, units


def _did_you_mean(key: str, units: list[_Unit]) -> str:
    cands: list[str] = []
    for u in units:
        cands.append(u.types[0])
        if u.name:
            cands.append(u.name)
        cands += [f"{u.name}.{p}" if u.name else p for p in u.params]
    try:
        import torch.nn as nn

        cands += [n for n in dir(nn) if n[:1].isupper()]
    except ImportError:  # pragma: no cover - torch absent: a Network
        pass
    close = difflib.get_close_matches(_class_name(key), list(dict.fromkeys(cands)), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def apply(module: Any, spec_or_rules: Any, *, rng: RngLike = None, x: Any = None) -> ApplyRecord:
    """Initialize ``module``'s parameters in place; returns what was set (see the module docstring
    for specs, rules and presets). ``x``: a batch, used only by presets to find residual blocks
    in a model whose blocks are not named. Example (torch is optional, so not run as a doctest;
    see tests/test_diagnostics_apply.py)::

        rec = initlab.apply(model, {"Linear": {"weight": "xavier_uniform", "bias": "zeros"},
                                    "*.weight_hh_*": "orthogonal", "head.*": "zeros"}, rng=0)
        rec = initlab.apply(resnet, "fixup", rng=0)
        print(rec)   # one line per parameter set, the modules nothing set, the preset's notes
    """
    from initlab import init as _init
    from initlab.nn import Network

    is_net = isinstance(module, Network)
    if not is_net:
        from initlab.diagnostics._probe_torch import is_torch_module

        if not is_torch_module(module):
            bad_type("module", "a torch.nn.Module or an initlab.nn.Network", module)
    gen = as_generator(rng)
    preset = _presets.parse(spec_or_rules)
    if preset is not None:
        if is_net:
            raise ValueError(f"The preset {preset[0]!r} needs residual branches; an initlab.nn.Network has none.")
        rec = ApplyRecord()
        _presets.run(module, preset[0], preset[1], gen=gen, rec=rec, write=write, x=x)
        return rec
    if _is_rules(spec_or_rules):
        rules = list(spec_or_rules.items())
        if not rules:
            raise ValueError("The 'spec_or_rules' argument must hold at least one rule; got an empty dict.")
    else:
        _init.get(spec_or_rules)  # validate first
        rules = [(_default_types() if not is_net else "Dense", spec_or_rules)]
    plan, units = _resolve(module, rules)
    rec = ApplyRecord()
    for u, pname, initializer, text in plan:
        p = u.params[pname]
        fan_in = None
        if not _weight_like(pname) and needs_fan_in(initializer):
            # torch_default_bias: U(±1/√fan_in) with the fan-in of the module's weight (as torch)
            w = u.params.get("weight")
            if w is None:
                raise ValueError(f"The {pname!r} spec {str(initializer.spec)!r} of module {u.name or u.types[0]!r} "
                                 "needs the layer's fan_in, but the module has no 'weight' to take it from.")
            fan_in = int(_init.compute_fans(tuple(w.shape))[0])
        arr = write(p, initializer, gen, transposed=u.transposed and pname == "weight", fan_in=fan_in)
        rec.entries.append({"module": u.name or u.types[0], "param": pname, "shape": list(p.shape),
                            "spec": str(initializer.spec), "rule": text, "std": float(np.std(arr, dtype=np.float64))})
    set_units = {id(u) for u, *_ in plan}
    rec.unmatched = [u.name or u.types[0] for u in units if id(u) not in set_units]
    return rec
