"""Residual and transformer initializations as named presets of :func:`initlab.apply`.

Each preset follows its paper (numbers from the papers and their official code, see
``shared/reference/residual-and-training.md``):

* ``fixup`` — Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without
  Normalization". For L residual branches of m weight layers each: the last weight layer of every
  branch and the classifier (the model's last Linear outside the branches) are set to 0 (weight and
  bias); the other branch layers are He-initialised (``kaiming_normal``, fan_in, ReLU) and scaled
  by L^(−1/(2m−2)); every other Linear/Conv layer is He-initialised. The paper's scalar biases (0)
  and multipliers (1) are parameters of the architecture: 1-element parameters inside a block are
  set (name containing "bias" → 0, others → 1); a model without them gets the weight rule alone,
  said in the record's notes. Norm layers are left as they are (Fixup is meant for networks
  without them; noted).
* ``skipinit`` — De & Smith 2020, "Batch Normalization Biases Residual Blocks Towards the Identity
  Function in Deep Networks": a learnable scalar α at the end of each branch, α = 0 (option
  ``value``, e.g. ≤ 1/√d for d blocks). ``rezero`` — Bachlechner et al. 2020, "ReZero is All You
  Need": x_{i+1} = x_i + α_i F(x_i), α_i = 0. Both need that scalar: the 1-element parameters of
  each block are set; a block without one is refused (ValueError) unless ``insert=True``, which
  wraps the last layer of each branch in :class:`BranchScale` (out = α·layer(x), α a zero
  parameter): that changes the model's structure and its ``state_dict`` keys, said in the notes.
* ``t_fixup`` — Huang, Perez, Ba & Volkovs 2020, "Improving Transformer Optimization Through Better
  Initialization" (layer6ai-labs/T-Fixup), for ``nn.TransformerEncoderLayer`` (N of them) and
  ``nn.TransformerDecoderLayer`` (M): Xavier-uniform as fairseq (q, k, v blocks of the attention
  input projection with gain 1/√2, the others gain 1, biases 0), then encoder ``out_proj``,
  ``linear1``, ``linear2`` × 0.67·N^(−1/4) and v × 0.67·N^(−1/4)·√2; decoder (self- and
  cross-attention) ``out_proj``, ``linear1``, ``linear2`` × (9M)^(−1/4) and v × (9M)^(−1/4)·√2;
  ``nn.Embedding`` weights N(0, d^(−1/2)) (std d^(−1/2), d the embedding size) × (9N)^(−1/4) for
  the encoder's and (9M)^(−1/4) for the decoder's (an embedding whose name contains "dec" or "tgt"
  is the decoder's). Removing LayerNorm and warm-up is architecture/training, not init: noted.
* ``deepnet`` (alias ``deepnorm``) — Wang et al. 2022, "DeepNet: Scaling Transformers to 1,000
  Layers": x_{l+1} = LN(α·x_l + G(x_l)); Xavier-normal with gain β for ``linear1``, ``linear2``,
  v and ``out_proj``, gain 1 for q and k. Encoder-only α = (2N)^(1/4), β = (8N)^(−1/4);
  decoder-only α = (2M)^(1/4), β = (8M)^(−1/4); encoder–decoder: encoder α = 0.81(N⁴M)^(1/16),
  β = 0.87(N⁴M)^(−1/16), decoder α = (3M)^(1/4), β = (12M)^(−1/4). β is applied; α multiplies
  the residual inside the layer's forward, which torch's layers do not have: it is reported in
  ``ApplyRecord.preset`` for the model's forward to use (and set on a layer attribute named
  ``alpha`` or ``deepnorm_alpha`` when the layer has one).

Options (dict form ``{"preset": name, ...}``): ``blocks`` (names or glob patterns of the residual
blocks; else they are found with ``x`` by :func:`initlab.diagnostics._spp.find_residual_blocks`, or
torchvision's BasicBlock/Bottleneck are recognised by class), ``value`` (skipinit/rezero),
``insert`` (skipinit/rezero). A preset that finds none of the structure it needs raises ValueError.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Callable

import numpy as np

__all__ = ["PRESETS", "parse", "run", "deepnet_constants", "branch_scale_class"]

PRESETS = ("fixup", "skipinit", "rezero", "t_fixup", "deepnet")
_ALIASES = {"deepnorm": "deepnet", "tfixup": "t_fixup", "t-fixup": "t_fixup", "skip_init": "skipinit"}
_OPTIONS = {"fixup": {"blocks"}, "skipinit": {"blocks", "value", "insert"}, "rezero": {"blocks", "value", "insert"},
            "t_fixup": set(), "deepnet": {"architecture"}}
_SHORTCUT = ("downsample", "shortcut")


def _canon(name: str) -> str | None:
    n = name.strip().lower()
    n = _ALIASES.get(n, n)
    return n if n in PRESETS else None


def parse(obj: Any) -> tuple[str, dict[str, Any]] | None:
    """(preset name, options) when ``obj`` names a preset, else None (a spec or rules)."""
    if isinstance(obj, str) and _canon(obj) is not None:
        return _canon(obj), {}  # type: ignore[return-value]
    if isinstance(obj, dict) and "preset" in obj:
        name = obj["preset"]
        canon = _canon(name) if isinstance(name, str) else None
        if canon is None:
            raise ValueError(f"The 'preset' must be one of {', '.join(PRESETS)}; got {name!r}.")
        opts = {k: v for k, v in obj.items() if k != "preset"}
        bad = set(opts) - _OPTIONS[canon]
        if bad:
            raise ValueError(f"The preset {canon!r} takes the options {sorted(_OPTIONS[canon]) or 'none'}; "
                             f"got {sorted(bad)}.")
        return canon, opts
    return None


def deepnet_constants(architecture: str, n_enc: int, n_dec: int) -> dict[str, float]:
    """DeepNet's α and β (Wang et al. 2022, Table 1 / xformers):

    >>> c = deepnet_constants("encoder", 6, 0)
    >>> round(c["encoder_alpha"], 6) == round(12 ** 0.25, 6), round(c["encoder_beta"], 6) == round(48 ** -0.25, 6)
    (True, True)
    """
    N, M = n_enc, n_dec
    if architecture == "encoder":
        return {"encoder_alpha": (2 * N) ** 0.25, "encoder_beta": (8 * N) ** -0.25}
    if architecture == "decoder":
        return {"decoder_alpha": (2 * M) ** 0.25, "decoder_beta": (8 * M) ** -0.25}
    return {"encoder_alpha": 0.81 * (N ** 4 * M) ** (1 / 16), "encoder_beta": 0.87 * (N ** 4 * M) ** (-1 / 16),
            "decoder_alpha": (3 * M) ** 0.25, "decoder_beta": (12 * M) ** -0.25}


# -- helpers ------------------------------------------------------------------------------------
class _Ctx:
    def __init__(self, model: Any, gen: np.random.Generator, rec: Any, write: Callable[..., np.ndarray], preset: str):
        self.model, self.gen, self.rec, self.write, self.preset = model, gen, rec, write, preset
        self.names = {id(m): n for n, m in model.named_modules()}

    def set(self, module: Any, pname: str, spec: str, *, scale: float = 1.0, rows: slice | None = None,
            label: str | None = None) -> None:
        from initlab import init as _init

        import torch

        p = getattr(module, pname)
        with torch.no_grad():
            target = p if rows is None else p[rows]
        fans = None
        if rows is not None:
            fans = tuple(target.shape)
        arr = self.write(target, _init.get(spec), self.gen, scale=scale, shape_for_fans=fans)
        self.rec.entries.append({
            "module": self.names.get(id(module), type(module).__name__) or type(module).__name__,
            "param": label or pname, "shape": list(target.shape),
            "spec": spec if scale == 1.0 else f"{spec} × {scale:.6g}", "rule": f"preset {self.preset}",
            "std": float(np.std(arr, dtype=np.float64))})

    def zero(self, module: Any, pname: str) -> None:
        if getattr(module, pname, None) is not None:
            self.set(module, pname, "zeros")


def _weight_layers(module: Any) -> list[tuple[str, Any]]:
    import torch.nn as nn
    from torch.nn.modules.conv import _ConvNd

    return [(n, m) for n, m in module.named_modules()
            if isinstance(m, (nn.Linear, _ConvNd)) and not any(s in n for s in _SHORTCUT)]


def _blocks(model: Any, opts: dict[str, Any], x: Any) -> list[tuple[str, Any]]:
    mods = dict(model.named_modules())
    if "blocks" in opts:
        pats = opts["blocks"]
        if isinstance(pats, str) or not isinstance(pats, (list, tuple)) or not pats:
            raise ValueError(f"The 'blocks' option must be a non-empty list of module names or patterns; got {pats!r}.")
        out: list[tuple[str, Any]] = []
        for pat in pats:
            hit = [(n, m) for n, m in mods.items() if n and fnmatch.fnmatchcase(n, str(pat))]
            if not hit:
                import difflib

                close = difflib.get_close_matches(str(pat), [n for n in mods if n], n=3)
                hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
                raise ValueError(f"The 'blocks' entry {pat!r} matches no module of the model{hint}.")
            out += [h for h in hit if all(h[1] is not o[1] for o in out)]
        return out
    if x is not None:
        from initlab.diagnostics._spp import find_residual_blocks

        return [(b.name, b.module) for b in find_residual_blocks(model, x)]
    return [(n, m) for n, m in mods.items() if n and type(m).__name__ in ("BasicBlock", "Bottleneck")]


def _need_blocks(model: Any, opts: dict[str, Any], x: Any, preset: str) -> list[tuple[str, Any]]:
    blocks = _blocks(model, opts, x)
    if not blocks:
        raise ValueError(
            f"The preset {preset!r} needs residual branches, and none were found in {type(model).__name__}: "
            "pass {'preset': '" + preset + "', 'blocks': [names of the residual blocks]} or a batch x=... to find "
            "blocks computing x + f(x).")
    return blocks


def _scalars(block: Any) -> list[tuple[Any, str]]:
    """1-element parameters of a block outside its Linear/Conv/norm layers: (owner, name)."""
    import torch.nn as nn
    from torch.nn.modules.conv import _ConvNd

    from initlab.diagnostics._spp import _is_norm

    out = []
    for m in block.modules():
        if isinstance(m, (nn.Linear, _ConvNd)) or _is_norm(m):
            continue
        for pn, p in m._parameters.items():
            if p is not None and p.numel() == 1:
                out.append((m, pn))
    return out


# -- presets ------------------------------------------------------------------------------------
def _fixup(ctx: _Ctx, opts: dict[str, Any], x: Any) -> None:
    import torch.nn as nn
    from torch.nn.modules.conv import _ConvNd

    from initlab.diagnostics._spp import _is_norm

    blocks = _need_blocks(ctx.model, opts, x, "fixup")
    L = len(blocks)
    he = "kaiming_normal(mode=fan_in, nonlinearity=relu)"
    in_branch: set[int] = set()
    ms = []
    for name, blk in blocks:
        layers = _weight_layers(blk)
        if not layers:
            raise ValueError(f"The preset 'fixup' found no Linear/Conv layer in the residual block {name!r}.")
        m = len(layers)
        ms.append(m)
        scale = L ** (-1.0 / (2 * m - 2)) if m > 1 else 1.0
        for _, lay in layers[:-1]:
            ctx.set(lay, "weight", he, scale=scale)
            ctx.zero(lay, "bias")
        last = layers[-1][1]
        ctx.zero(last, "weight")
        ctx.zero(last, "bias")
        for mod in blk.modules():
            in_branch.add(id(mod))
    # the classifier: the model's last Linear outside the branches, registered after the last block
    order = {id(m): k for k, (_, m) in enumerate(ctx.model.named_modules())}
    after = max(order[id(blk)] for _, blk in blocks)
    outside = [(n, m) for n, m in ctx.model.named_modules()
               if isinstance(m, (nn.Linear, _ConvNd)) and id(m) not in in_branch]
    cls = next((m for n, m in reversed(outside) if isinstance(m, nn.Linear) and order[id(m)] > after), None)
    for n, m in outside:
        if m is cls:
            ctx.zero(m, "weight")
            ctx.zero(m, "bias")
        else:
            ctx.set(m, "weight", he)
    scalars = [s for _, blk in blocks for s in _scalars(blk)]
    for owner, pn in scalars:
        ctx.set(owner, pn, "zeros" if "bias" in pn else "ones")
    ctx.rec.preset = {"preset": "fixup", "L": L, "m": ms, "scale": [L ** (-1.0 / (2 * m - 2)) if m > 1 else 1.0 for m in ms],
                      "blocks": [n for n, _ in blocks], "classifier": ctx.names.get(id(cls)) if cls is not None else None}
    if cls is None:
        ctx.rec.notes.append("fixup: the model has no Linear after its residual blocks: no classifier was zeroed")
    if not scalars:
        ctx.rec.notes.append("fixup: the paper's scalar biases (0) and multipliers (1) are parameters of the architecture; "
                             "this model has none, so only the weight rule was applied")
    if len(set(ms)) > 1:
        ctx.rec.notes.append(f"fixup: branches have different numbers of weight layers {sorted(set(ms))}; each is scaled "
                             "by L^(-1/(2m-2)) with its own m")
    if any(_is_norm(m) for _, blk in blocks for m in blk.modules()):
        ctx.rec.notes.append("fixup: the residual blocks contain norm layers (Fixup is meant for networks without them); "
                             "they were left as they are")


_BRANCH_SCALE: Any = None


def branch_scale_class() -> Any:
    """The :class:`BranchScale` module (made on first use, so torch stays optional): wraps a
    layer, out = α·layer(x), α a learnable scalar."""
    global _BRANCH_SCALE
    if _BRANCH_SCALE is None:
        import torch

        class BranchScale(torch.nn.Module):
            """out = alpha · inner(x): SkipInit's / ReZero's scalar at the end of a residual branch."""

            def __init__(self, inner: Any, value: float = 0.0) -> None:
                super().__init__()
                self.inner = inner
                self.alpha = torch.nn.Parameter(torch.full((), float(value)))

            def forward(self, *args: Any, **kwargs: Any) -> Any:
                return self.alpha * self.inner(*args, **kwargs)

        BranchScale.__module__ = __name__
        globals()["BranchScale"] = BranchScale
        _BRANCH_SCALE = BranchScale
    return _BRANCH_SCALE


def _scalar_zero(ctx: _Ctx, opts: dict[str, Any], x: Any, preset: str) -> None:
    import torch.nn as nn

    from initlab.diagnostics._spp import _is_norm

    value = float(opts.get("value", 0.0))
    insert = bool(opts.get("insert", False))
    blocks = _need_blocks(ctx.model, opts, x, preset)
    plan = []
    for name, blk in blocks:
        sc = _scalars(blk)
        if sc:
            plan.append((name, blk, sc))
            continue
        if not insert:
            raise ValueError(
                f"The preset {preset!r} needs a learnable scalar at the end of each residual branch, and the block "
                f"{name!r} has none. Add one to the model (x + alpha * f(x), alpha = nn.Parameter(torch.zeros(()))) or "
                f"pass {{'preset': '{preset}', 'insert': True}} to wrap the last layer of each branch in a zero scalar "
                "(this changes the model's structure and state_dict keys).")
        last = [(n, m) for n, m in blk.named_modules() if n and not any(True for _ in m.children())
                and any(True for _ in m.parameters()) and not any(s in n for s in _SHORTCUT)]
        if not last or isinstance(last[-1][1], nn.MultiheadAttention) or not (
                isinstance(last[-1][1], (nn.Linear, nn.modules.conv._ConvNd)) or _is_norm(last[-1][1])):
            raise ValueError(f"The preset {preset!r} cannot insert a scalar in block {name!r}: its last layer is not a "
                             "Linear, Conv or norm module called as a module.")
        plan.append((name, blk, last[-1][0]))
    cls = branch_scale_class() if insert else None
    for name, blk, what in plan:
        if isinstance(what, str):
            parent_name, _, child = what.rpartition(".")
            parent = blk.get_submodule(parent_name) if parent_name else blk
            inner = getattr(parent, child)
            p0 = next(inner.parameters())
            wrapper = cls(inner, value).to(device=p0.device, dtype=p0.dtype)
            setattr(parent, child, wrapper)
            ctx.names[id(wrapper)] = f"{name}.{what}"
            ctx.rec.notes.append(f"{preset}: inserted a BranchScale (alpha = {value:g}) around {name}.{what}; "
                                 f"its weights are now {name}.{what}.inner.*")
            ctx.rec.entries.append({"module": f"{name}.{what}", "param": "alpha", "shape": [], "spec": f"constant({value:g})",
                                    "rule": f"preset {preset}", "std": 0.0})
        else:
            for owner, pn in what:
                ctx.names.setdefault(id(owner), name)
                ctx.set(owner, pn, f"constant(value={value!r})" if value != 0.0 else "zeros")
    ctx.rec.preset = {"preset": preset, "blocks": [n for n, _ in blocks], "value": value}
    if preset == "rezero":
        ctx.rec.notes.append("rezero: the paper's model has no LayerNorm; the model's norm layers (if any) were left as they are")


def _transformer_layers(model: Any) -> tuple[list[Any], list[Any]]:
    import torch.nn as nn

    enc = [m for m in model.modules() if isinstance(m, nn.TransformerEncoderLayer)]
    dec = [m for m in model.modules() if isinstance(m, nn.TransformerDecoderLayer)]
    if not enc and not dec:
        raise ValueError(f"The transformer presets need nn.TransformerEncoderLayer / nn.TransformerDecoderLayer layers; "
                         f"got {type(model).__name__} without any.")
    return enc, dec


def _qkv(mha: Any) -> list[tuple[str, str, slice | None]]:
    """(role, parameter, rows) of q, k, v of a MultiheadAttention."""
    E = mha.embed_dim
    if mha.in_proj_weight is not None:
        return [("q", "in_proj_weight", slice(0, E)), ("k", "in_proj_weight", slice(E, 2 * E)),
                ("v", "in_proj_weight", slice(2 * E, 3 * E))]
    return [("q", "q_proj_weight", None), ("k", "k_proj_weight", None), ("v", "v_proj_weight", None)]


def _set_attn(ctx: _Ctx, mha: Any, dist: str, qk_gain: float, v_gain: float, out_gain: float, v_scale: float,
              out_scale: float, zero_bias: bool) -> None:
    for role, pn, rows in _qkv(mha):
        gain = v_gain if role == "v" else qk_gain
        ctx.set(mha, pn, f"xavier_{dist}(gain={gain!r})", scale=v_scale if role == "v" else 1.0, rows=rows,
                label=f"{pn}[{role}]" if rows is not None else pn)
    ctx.set(mha.out_proj, "weight", f"xavier_{dist}(gain={out_gain!r})", scale=out_scale)
    if zero_bias:
        ctx.zero(mha, "in_proj_bias")
        ctx.zero(mha.out_proj, "bias")


def _t_fixup(ctx: _Ctx, opts: dict[str, Any], x: Any) -> None:
    import torch.nn as nn

    enc, dec = _transformer_layers(ctx.model)
    N, M = len(enc), len(dec)
    r2 = 1.0 / math.sqrt(2.0)
    enc_s = 0.67 * N ** -0.25 if N else 1.0
    dec_s = (9 * M) ** -0.25 if M else 1.0
    for layers, s, attns in ((enc, enc_s, ("self_attn",)), (dec, dec_s, ("self_attn", "multihead_attn"))):
        for lay in layers:
            for a in attns:
                _set_attn(ctx, getattr(lay, a), "uniform", r2, r2, 1.0, s * math.sqrt(2.0), s, True)
            for lin in (lay.linear1, lay.linear2):
                ctx.set(lin, "weight", "xavier_uniform", scale=s)
                ctx.zero(lin, "bias")
    embs = [(n, m) for n, m in ctx.model.named_modules() if isinstance(m, nn.Embedding)]
    for n, e in embs:
        is_dec = (M > 0 and any(t in n.lower() for t in ("dec", "tgt"))) or N == 0
        s = (9 * M) ** -0.25 if is_dec else (9 * N) ** -0.25
        ctx.set(e, "weight", f"normal(std={e.embedding_dim ** -0.5!r})", scale=s)
    ctx.rec.preset = {"preset": "t_fixup", "N": N, "M": M, "encoder_scale": enc_s if N else None,
                      "decoder_scale": dec_s if M else None, "embeddings": [n for n, _ in embs]}
    ctx.rec.notes.append("t_fixup: T-Fixup also removes LayerNorm and learning-rate warm-up; those are architecture and "
                         "training choices, left to the model")
    if not embs:
        ctx.rec.notes.append("t_fixup: the model has no nn.Embedding: no embedding was scaled")


def _deepnet(ctx: _Ctx, opts: dict[str, Any], x: Any) -> None:
    enc, dec = _transformer_layers(ctx.model)
    N, M = len(enc), len(dec)
    arch = opts.get("architecture") or ("encoder-decoder" if N and M else "encoder" if N else "decoder")
    if arch not in ("encoder", "decoder", "encoder-decoder"):
        raise ValueError(f"The 'architecture' option must be one of encoder, decoder, encoder-decoder; got {arch!r}.")
    if arch == "encoder-decoder" and not (N and M):
        raise ValueError(f"The 'architecture' option 'encoder-decoder' needs encoder and decoder layers; got {N} and {M}.")
    if arch == "encoder" and not N or arch == "decoder" and not (M or N):
        raise ValueError(f"The 'architecture' option {arch!r} does not match the model ({N} encoder, {M} decoder layers).")
    if arch == "decoder" and not M:  # a decoder-only model built from encoder layers with a causal mask
        M, dec, enc = N, enc, []
    c = deepnet_constants(arch, N if arch != "decoder" else 0, M)
    groups = []
    if arch in ("encoder", "encoder-decoder"):
        groups.append((enc, c["encoder_alpha"], c["encoder_beta"], ("self_attn",)))
    if arch in ("decoder", "encoder-decoder"):
        attns = ("self_attn", "multihead_attn")
        groups.append((dec, c["decoder_alpha"], c["decoder_beta"], attns))
    for layers, alpha, beta, attns in groups:
        for lay in layers:
            for a in attns:
                if hasattr(lay, a):
                    _set_attn(ctx, getattr(lay, a), "normal", 1.0, beta, beta, 1.0, 1.0, False)
            for lin in (lay.linear1, lay.linear2):
                ctx.set(lin, "weight", f"xavier_normal(gain={beta!r})")
            for attr in ("alpha", "deepnorm_alpha"):
                if hasattr(lay, attr) and not callable(getattr(lay, attr)):
                    setattr(lay, attr, alpha)
                    ctx.rec.notes.append(f"deepnet: set {ctx.names.get(id(lay))}.{attr} = {alpha:.6g}")
    ctx.rec.preset = {"preset": "deepnet", "architecture": arch, "N": N if arch != "decoder" else 0, "M": M, **c}
    ctx.rec.notes.append("deepnet: alpha multiplies the residual inside each layer, x_{l+1} = LN(alpha*x_l + G(x_l)); "
                         "torch's Transformer layers compute LN(x + G(x)) and have no such multiplier, so alpha "
                         "(in ApplyRecord.preset) is for the model's forward to use; the beta init was applied")


def run(model: Any, name: str, opts: dict[str, Any], *, gen: np.random.Generator, rec: Any,
        write: Callable[..., np.ndarray], x: Any = None) -> None:
    """Run the preset ``name`` on ``model`` in place, recording into ``rec``."""
    ctx = _Ctx(model, gen, rec, write, name)
    {"fixup": _fixup, "t_fixup": _t_fixup, "deepnet": _deepnet,
     "skipinit": lambda c, o, xx: _scalar_zero(c, o, xx, "skipinit"),
     "rezero": lambda c, o, xx: _scalar_zero(c, o, xx, "rezero")}[name](ctx, opts, x)
