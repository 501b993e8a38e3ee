"""Traced and replayed recorded steps of :func:`initlab.watch` (the numba kernels' path on the CPU).

A recorded step taken by the watch's general path (:class:`~initlab.diagnostics._watch._TorchHooks`)
decides, hook by hook, which rows the step has and which statistics each takes of which tensor,
and builds Python objects for all of it: about 20 µs of Python per hook call inside a training
step, most of a recorded step's cost once the kernels do the arithmetic. A training loop repeats
the same forward pass step after step, so the watch *traces* one general step (:class:`Trace`:
for each hook call, the module, what decides the general path's branch, the statistics taken and
the gradient hooks registered, and the rows' structure after it) and *replays* the next steps
from the resulting :class:`Plan`: each hook call checks that the general path would take the
same branch (the same module, shapes, dtypes, tensor identities and version counters: its
*signature*) and runs the same kernels, writing the numbers into one array per step at fixed
offsets. The step is kept as that array; when the Watch is read, the traced step's structure is
filled with the step's numbers and built by the same code as a general step
(:meth:`~initlab.diagnostics._watch._TorchHooks._thaw`), so a replayed step's rows are the general
path's rows, number for number.

A hook call whose signature differs (a different module, shape, batch size, a tensor written in
place, a branch of the model's forward taken on some steps only) hands the step back to the
general path where it is: the objects the general path would hold at that point are made from
the numbers taken so far (:func:`materialize`) and the general path goes on from there. The
plan is kept: a plan that misses two recorded steps in a row (at their start or in their middle) is
dropped and the next recorded step traced anew, and after eight traces the watch stops tracing
(a model whose forward changes from step to step is recorded by the general path).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import Any

import numpy as np
import torch  # (this module is imported by a torch watch only: torch is already loaded)
from torch.utils.hooks import RemovableHandle as _Handle

from initlab.diagnostics._stats import Histogram, histogram

_Tensor = torch.Tensor
_Parameter = torch.nn.Parameter  # (torch's own: its torch function is the tensor's, disabled)
_has_torch_function = torch._C._has_torch_function_unary  # (what Tensor.register_hook checks first)

FW_MEMBERS = ("pre", "act", "cos", "weight", "gain")  # the keys of a row's fw dict that hold members
MISSES = 2  # recorded steps in a row a plan may miss before it is traced anew
_NO_WEIGHT = object()  # an event of a module without a weight
MAX_TRACES = 8


def _version(t: Any) -> float:
    """``t._version`` (see :func:`initlab.diagnostics._watch._version`)."""
    try:
        return float(t._version)
    except (AttributeError, RuntimeError):
        return math.nan


def signature(out: Any, xin: Any, last: tuple[Any, float]) -> tuple[Any, ...]:
    """What the general path's branch in a forward hook (or an in-place pre-hook, ``out`` None)
    depends on beyond the plan's fixed structure: the output's and input's shape, dtype, device
    and whether they need a gradient, whether the input is the last row's output (and unchanged
    since), or the output itself (in place)."""
    o = (out.shape, out.dtype, out.is_cpu, out.requires_grad) if isinstance(out, _Tensor) else None
    if not isinstance(xin, _Tensor):
        return o, None
    prev = xin is last[0]
    return o, (xin.shape, xin.dtype, xin.is_cpu, xin.requires_grad, prev, prev and _version(xin) == last[1],
               xin is out)


def _same_signature(sig: tuple[Any, ...], out: Any, xin: Any, last: tuple[Any, float]) -> bool:
    """``signature(out, xin, last) == sig``, field by field (a replayed hook call's check:
    no tuples built, the first difference ends it). ``xin`` is a tensor or None."""
    o, x = sig
    if isinstance(out, _Tensor):
        if o is None or out.shape != o[0] or out.dtype != o[1] or out.is_cpu != o[2] or out.requires_grad != o[3]:
            return False
    elif o is not None:
        return False
    if xin is None:
        return x is None
    if x is None:
        return False
    prev = xin is last[0]
    return (xin.shape == x[0] and xin.dtype == x[1] and xin.is_cpu == x[2] and xin.requires_grad == x[3]
            and prev == x[4] and (prev and _version(xin) == last[1]) == x[5] and (xin is out) == x[6])


def _put_grad_hook(t: Any, fn: Any) -> Any:
    """For a plain tensor requiring a gradient, ``fn`` put in its hooks' dict by the same steps as
    :meth:`torch.Tensor.register_hook` (torch 2.x) without its handle object: returns (the dict,
    the key); None where that method must do it (a tensor subclass, a tensor under a torch
    function mode, one not requiring a gradient, a torch whose internals differ from these)."""
    tt = type(t)
    if _FAST_HOOKS[0] and (tt is _Tensor or tt is _Parameter) and not _has_torch_function(t) and t.requires_grad:
        try:
            bh = t._backward_hooks
            if bh is None:
                gf = t.grad_fn
                if gf is not None and not hasattr(gf, "_register_hook_dict"):
                    raise AttributeError("_register_hook_dict")
                bh = t._backward_hooks = OrderedDict()
                if gf is not None:
                    gf._register_hook_dict(t)
            i = _Handle.next_id  # (the key torch's handle would take)
            _Handle.next_id = i + 1
            bh[i] = fn
            return bh, i
        except AttributeError:  # (a torch whose internals differ: its own method from now on)
            _FAST_HOOKS[0] = False
    return None


def _add_grad_hook(t: Any, fn: Any) -> None:
    """``t.register_hook(fn)``, its handle not kept (a replayed step's gradient hook lives as long
    as the step's graph): :func:`_put_grad_hook`, else by that method."""
    if _put_grad_hook(t, fn) is None:
        t.register_hook(fn)


def _grad_hook_handle(t: Any, fn: Any) -> Any:
    """``t.register_hook(fn)`` (a weight's gradient hook, removed when its step ends): put by
    :func:`_put_grad_hook`, with an :class:`Entry` as its handle, else by that method."""
    put = _put_grad_hook(t, fn)
    if put is None:
        return t.register_hook(fn)
    return Entry(put[0], put[1])


class Entry:
    """The handle of a hook put straight into a hooks dict: :meth:`remove` takes it out, as
    :meth:`torch.utils.hooks.RemovableHandle.remove` does (once; again does nothing)."""

    __slots__ = ("d", "key")

    def __init__(self, d: Any, key: int) -> None:
        self.d, self.key = d, key

    def remove(self) -> None:
        self.d.pop(self.key, None)


class ModuleHooks:
    """The watch's hooks of one recorded forward pass put straight into the modules' hook dicts
    (``module._forward_hooks`` / ``_forward_pre_hooks``) under one key reserved from torch's
    handle counter, as :meth:`torch.nn.Module.register_forward_hook` (no kwargs, not always
    called, not prepended) puts them; :meth:`remove` takes out all of them (the handle of all)."""

    __slots__ = ("dicts", "key")

    def __init__(self, key: int) -> None:
        self.dicts: list[Any] = []
        self.key = key

    def put(self, d: Any, fn: Any) -> None:
        d[self.key] = fn
        self.dicts.append(d)

    def remove(self) -> None:
        key = self.key
        for d in self.dicts:
            d.pop(key, None)
        self.dicts = []


def reserve_key() -> int | None:
    """A key from torch's handle counter (no handle of torch's takes it), or None where the
    counter is not there (a torch whose internals differ: its own registration methods)."""
    if not _FAST_HOOKS[0]:
        return None
    i = _Handle.next_id
    _Handle.next_id = i + 1
    return i


_FAST_HOOKS = [hasattr(_Handle, "next_id")]


class Trace:
    """The log of one recorded step taken by the general path (see the module docstring)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.cur: dict[str, Any] | None = None
        self.ok = True
        self.why = ""
        self.tensor_of: dict[int, Any] = {}  # id(member) -> the tensor it was taken of (forward)
        self.geo_of: dict[int, tuple[Any, ...]] = {}  # id(member) -> its geometry
        self.shape_of: dict[int, Any] = {}  # id(member) -> its tensor's shape and dtype
        self.dtype_of: dict[int, Any] = {}
        self.input_sig: tuple[Any, ...] = ()
        self.input: tuple[Any, ...] | None = None  # (member, geometry)
        self.last: tuple[Any, float] = (None, math.nan)
        self.wcheck: list[tuple[Any, Any, Any, bool]] = []  # (module, its weight, shape, requires_grad) at the step

    def fail(self, why: str) -> None:
        if self.ok:
            self.ok, self.why = False, why

    def begin(self, kind: str, mod: Any, out: Any, xin: Any, weighted: Any = ()) -> None:
        import torch

        xin = xin if isinstance(xin, torch.Tensor) else None
        self.cur = {"kind": kind, "mod": mod, "out": out, "xin": xin, "sig": signature(out, xin, self.last),
                    "ops": [], "w": _weight_of(mod) if mod in weighted else _NO_WEIGHT}

    def end(self, p: Any) -> None:
        ev, self.cur = self.cur, None
        if ev is None:
            return
        out = ev["out"]
        last = p.rows[-1] if p.rows else None
        post = last is not None and out is not None and last.out is out
        if not post and last is not None and last.out is not self.last[0]:
            self.fail("a hook left the last row's output on another tensor")
        if post:
            self.last = (out, last.version)
        ev["post"] = post
        ev["out"] = ev["xin"] = None
        # the general path's objects after this hook call (to hand a departing step back to it): the
        # rows in order, and the state of those a hook call can change (the last row, the one it
        # appends, the in-place rows begun by pre-hooks); earlier rows keep their last state
        ev["state"] = (tuple(p.rows), tuple(p.inplace.items()), dict(p.names), set(p.pair_inplace),
                       [_row_state(r) for r in (*p.rows[-2:], *p.inplace.values())])
        self.events.append(ev)

    def sel(self, t: Any) -> str | None:
        cur = self.cur
        if cur is None:
            return None
        if t is cur["out"]:
            return "out"
        if t is cur["xin"]:
            return "xin"
        return None

    def member(self, t: Any, m: Any, role: str, geo: tuple[Any, ...], ek: Any, scale: float) -> None:
        self.geo_of[id(m)] = geo
        self.shape_of[id(m)], self.dtype_of[id(m)] = t.shape, t.dtype
        if role == "in":
            self.input = (m, geo)
            return
        if role == "grad":
            return
        self.tensor_of[id(m)] = t
        s = self.sel(t)
        if s is None:
            self.fail("a statistic of a tensor that is neither the hook's input nor its output")
            return
        self.cur["ops"].append(("m", s, m, geo, ek, scale, t.dtype))  # type: ignore[index]

    def hist(self, member: Any, ek: Any, h: Any) -> None:
        t = self.tensor_of.get(id(member))
        s = self.sel(t) if t is not None else None
        if s is None:
            self.fail("a histogram of a tensor that is neither the hook's input nor its output")
            return
        self.cur["ops"].append(("h", s, member, ek, h))  # type: ignore[index]

    def register(self, t: Any, row: Any, key: str) -> None:
        s = self.sel(t)
        if s is None:
            self.fail("a gradient hook on a tensor that is neither the hook's input nor its output")
            return
        self.cur["ops"].append(("r", s, row, key))  # type: ignore[index]

    def saturation(self, row: Any, act: Any) -> None:
        if self.cur is None:
            self.fail("a saturation count outside a hook")
            return
        self.cur["ops"].append(("s", row, act))


def _row_state(r: Any) -> tuple[Any, ...]:
    return (r, tuple(r.st.__dict__.items()), r.module, r.kind, r.activation, r.axis, r.paired, r.weight, dict(r.fw),
            dict(r.hist))


class Plan:
    """A traced step made replayable: its frozen structure (``template``, see
    :meth:`~initlab.diagnostics._watch._TorchHooks._freeze`), where each of its numbers lives in a
    replayed step's arrays, and the hook calls to replay."""

    def __init__(self) -> None:
        self.template: tuple[Any, ...] = ()
        self.mem_slot: list[tuple[Any, ...]] = []  # per member: its layout in vals
        self.nvals = 0
        self.ncounts = 0
        self.hist_slot: dict[tuple[int, str], int] = {}  # (row, key) -> counts offset
        self.sat_slot: dict[int, int] = {}  # row -> vals offset of its saturated count
        self.events: list[tuple[Any, ...]] = []
        self.grads: list[tuple[Any, ...]] = []  # the gradient hooks: (row, key, member, layout, hist)
        self.input: tuple[Any, ...] | None = None
        self.weights: list[tuple[Any, ...]] = []  # (weight, id, its member, its gradient's member, update slot, sums offset)
        self.upd_slot: dict[int, int] = {}
        self.states: list[Any] = []  # per event: the general path's objects after it (see Trace.end)
        self.row_index: dict[int, int] = {}  # id(traced row) -> its index in the template
        self.mem_index: dict[int, int] = {}  # id(traced member) -> its index
        self.hist_index: dict[int, tuple[int, str]] = {}  # id(traced _FastHist) -> (row, key)
        self.batch = 0
        self.input_sig: tuple[Any, ...] = ()
        self.wcheck: list[tuple[Any, Any]] = []  # (module, its weight): the same objects at each step
        self.wshapes: list[tuple[Any, Any, bool]] = []  # (weight, its shape, requires_grad)
        self.wgi: dict[int, int] = {}  # id(weight) -> its gradient's member
        self.wbatch: Any = None  # the weights' views for one update-size kernel call (_replay_update_norms)
        self.kept_index: int | None = None  # its KeptPlan's index in _TorchHooks.plans
        self.hist_need: dict[int, int] = {}  # counts offset -> the values a histogram bins when all are finite
        self.ends: tuple[int, frozenset[int]] | None = None  # what a complete step ran (_replay_finish)
        self.wlist: list[Any] | None = None  # the weights of ``weights``, in order (_replay_update_norms)
        self.arena: tuple[np.ndarray, np.ndarray] | None = None  # the next replayed steps' arrays (Replay)
        self.arena_next = 0


    def alloc(self, n: int) -> int:
        o = self.nvals
        self.nvals += n
        return o


class KeptPlan:
    """What reading a plan's kept steps needs (:func:`frozen`): its template and layout, not
    the traced step's objects."""

    __slots__ = ("template", "mem_slot", "hist_slot", "sat_slot", "batch", "hist_need")

    def __init__(self, pl: Plan) -> None:
        self.template, self.mem_slot, self.hist_slot = pl.template, pl.mem_slot, pl.hist_slot
        self.sat_slot, self.batch, self.hist_need = pl.sat_slot, pl.batch, pl.hist_need


def build(hooks: Any, trace: Trace, p: Any, frozen: tuple[Any, ...], ids: dict[int, int],
          snapshots: dict[int, tuple[Any, Any]]) -> Plan | None:
    """The plan of the traced step ``p`` (frozen as ``frozen``, ``ids`` its members' indices,
    ``snapshots`` its weights), or None where the step has something the replay does not do."""
    if not trace.ok or trace.cur is not None or not trace.input_sig:
        return None
    try:
        pl = _build(hooks, trace, p, frozen, ids, snapshots)
    except _NoPlan:
        return None
    if pl is None:
        return None
    # every member and histogram of the step is taken by the plan, and every object of the states is its
    covered = set()
    if pl.input is not None:
        covered.add(pl.input[1])
    for _, _, mi, gi, _, _ in pl.weights:
        if mi is not None:
            covered.add(mi)
        if gi is not None:
            covered.add(gi)
    for _, _, _, ops, _, _ in pl.events:
        covered.update(op[2] for op in ops if op[0] == "m")
    covered.update(g[2] for g in pl.grads if g[2] is not None)
    if covered != set(range(len(frozen[4]))):
        return None
    for _, _, _, _, changed in pl.states:
        for st in changed:
            fw, hist = st[8], st[9]
            if any(k in FW_MEMBERS and v is not None and id(v) not in ids for k, v in fw.items()):
                return None
            if any(id(h) not in pl.hist_index for h in hist.values()):
                return None
    return pl


def _build(hooks: Any, trace: Trace, p: Any, frozen: tuple[Any, ...], ids: dict[int, int],
           snapshots: dict[int, tuple[Any, Any]]) -> Plan | None:
    from initlab.diagnostics._watch import _Fast

    pl = Plan()
    pl.template, pl.mem_index, pl.batch, pl.input_sig = frozen, ids, p.batch, trace.input_sig
    if not trace.wcheck:
        return None
    pl.wcheck = [(m_, w) for m_, w, _, _ in trace.wcheck]
    pl.wshapes = [(w, shape, rg) for _, w, shape, rg in trace.wcheck if w is not None]
    _, _, _, _, mrecs, rows, wg, inp, upd = frozen
    for rec in mrecs:
        if rec[0] == "F":
            _, role, per_chan, chans, out, sq, near, n2, q, scale, exact = rec
            hr = 0 if n2 is None else int(n2.size)
            if role == "fw":
                pl.mem_slot.append(("fw", pl.alloc(5 * chans + 3 + hr), chans, hr))
            elif role == "grad":
                pl.mem_slot.append(("grad", pl.alloc(2 * chans + 1), chans, 0))
            else:
                pl.mem_slot.append(("in", pl.alloc(2 * chans + 2 + hr), chans, hr))
        else:
            pl.mem_slot.append(("H", pl.alloc(2), 0, 0))
    for i, r in enumerate(p.rows):
        pl.row_index[id(r)] = i
        for k, h in r.hist.items():
            pl.hist_index[id(h)] = (i, k)
    for i, (_, _, _, _, _, _, fw, _, hist) in enumerate(rows):
        for k, v in fw:
            if k == "sat_host":
                pl.sat_slot[i] = pl.alloc(1)
        for k, _, edges, counts, _ in hist:
            pl.hist_slot[(i, k)] = pl.ncounts
            pl.ncounts += int(counts.size)
    for key, _ in upd:
        pl.upd_slot[key] = pl.alloc(1)
    wmem = {}
    for i, r in enumerate(p.rows):
        wm = r.fw.get("weight") or r.fw.get("gain")
        if r.weight is not None and wm is not None:
            wmem[id(r.weight)] = ids[id(wm)]
    gmem = dict(wg)
    for key, (w, _) in snapshots.items():
        mi = wmem.get(key)  # (None: a weight no row reports, e.g. of a module this forward did not run)
        o = pl.mem_slot[mi][1] if mi is not None else pl.alloc(2)
        pl.weights.append((w, key, mi, gmem.get(key), pl.upd_slot.get(key), o))
        if gmem.get(key) is not None:
            pl.wgi[key] = gmem[key]
    if trace.input is not None:
        m, geo = trace.input
        if id(m) not in ids or geo is None or geo[0]:
            return None
        pl.input = (geo, ids[id(m)], _grad_args(hooks, pl, ids[id(m)], geo, None, 1.0))
    elif inp >= 0:
        return None
    # the hook calls
    gi = 0
    for ev in trace.events:
        ops = []
        for op in ev["ops"]:
            if op[0] == "m":
                _, s, m, geo, ek, scale, dtype = op
                if geo is None or id(m) not in ids or not isinstance(m, _Fast):
                    return None
                mi = ids[id(m)]
                hp = _hist_of(hooks, pl, m, ek)
                if hp is not None:
                    pl.hist_need[hp[0]] = geo[8]
                ops.append(("m", s, mi, _fw_args(hooks, pl, mi, geo, hp, dtype), geo, hp))
            elif op[0] == "h":
                _, s, m, ek, h = op
                if id(m) not in ids or id(h) not in pl.hist_index:
                    return None
                geo = trace.geo_of.get(id(m))
                hp = _hist_params(hooks, pl, ek, h)
                if geo is None or hp is None:
                    return None
                pl.hist_need[hp[0]] = geo[8]
                ops.append(("h", s, ids[id(m)], geo, hp))
            elif op[0] == "r":
                _, s, row, key = op
                ri = pl.row_index.get(id(row))
                if ri is None:
                    return None
                gm = row.grads.get(key)
                if gm is not None and id(gm) not in ids:
                    return None
                h = row.hist.get("grad") if (key == "preact" or (key == "act" and row.kind == "norm")) else None
                gmi = None if gm is None else ids[id(gm)]
                ghp = None if h is None else _hist_params(hooks, pl, h.key, h)
                ggeo = None if gm is None else trace.geo_of.get(id(gm))
                if gm is not None and ggeo is None:
                    return None
                if ghp is not None and ggeo is not None:
                    pl.hist_need[ghp[0]] = ggeo[8]
                pl.grads.append((ri, key, gmi, row.axis, ghp, row,
                                 None if gm is None else _grad_args(hooks, pl, gmi, ggeo, ghp, gm.scale),
                                 ggeo, trace.shape_of.get(id(gm)), trace.dtype_of.get(id(gm))))
                ops.append(("r", s, gi))
                gi += 1
            else:
                _, row, act = op
                ri = pl.row_index.get(id(row))
                if ri is None or ri not in pl.sat_slot:
                    return None
                ops.append(("s", pl.sat_slot[ri], act))
        pl.events.append((ev["kind"], ev["mod"], ev["sig"], tuple(ops), ev["post"], ev["w"]))
        pl.states.append(ev["state"])
    return pl


def _need(hooks: Any, need: int) -> None:
    """The histogram kernel's scratch large enough for ``need`` values (it only grows)."""
    if hooks.idx.size < need:
        hooks.idx = np.empty(need, dtype=np.int32)


def _fw_args(hooks: Any, pl: Plan, mi: int, geo: tuple[Any, ...], hp: Any, dtype: Any) -> tuple[Any, ...]:
    """The fixed arguments of a forward member's kernel (after flat, vals, counts, idx)."""
    import torch

    mid, view, chans, rows, hrows, feats, fstep, hstep, need, batch = geo
    o = pl.mem_slot[mi][1]
    co, nb, lo, kk = (0, 0, 0.0, 0.0) if hp is None else (hp[0], hp[2], hp[3], hp[4])
    _need(hooks, need)
    near_t = (np.float32 if dtype == torch.float32 else np.float64)(hooks.near_zero)
    return (*view, near_t, o, hrows, feats, fstep, hstep, lo, kk, nb, co)


def _grad_args(hooks: Any, pl: Plan, mi: int, geo: tuple[Any, ...], hp: Any, scale: float) -> tuple[Any, ...]:
    """The fixed arguments of a gradient member's kernel (after flat, vals, counts, idx)."""
    mid, view, chans, rows, hrows, feats, fstep, hstep, need, batch = geo
    o = pl.mem_slot[mi][1]
    co, nb, lo, kk = (0, 0, 0.0, 0.0) if hp is None else (hp[0], hp[2], hp[3], hp[4])
    _need(hooks, need)
    return (*view, o, hstep, scale, lo, kk, nb, co)


def _hist_params(hooks: Any, pl: Plan, ek: Any, h: Any) -> tuple[Any, ...] | None:
    from initlab.diagnostics._watch import _bin_params

    if h is None or h.hist is None:
        return None
    slot = pl.hist_slot.get(pl.hist_index.get(id(h), (-1, "")))
    if slot is None:
        return None
    edges = h.hist.edges
    return (slot, edges, int(edges.size) - 1, *_bin_params(edges))


def _hist_of(hooks: Any, pl: Plan, m: Any, ek: Any) -> tuple[Any, ...] | None:
    """The histogram a member op counts (its counts' offset, fixed edges, bins, bin parameters)."""
    if ek is None:
        return None
    h = m.hist
    if h is None or h.key != ek or id(h) not in pl.hist_index:
        raise _NoPlan
    return _hist_params(hooks, pl, ek, h)


class _NoPlan(Exception):
    """Something in the traced step the replay does not do."""


ARENA = 16  # replayed steps' arrays made at a time (Replay)
ARENA_BYTES = (1 << 22) - (1 << 16)


class Replay:
    """One recorded step being replayed."""

    __slots__ = ("plan", "step", "batch", "vals", "counts", "i", "last", "exact", "loss", "handles", "mat", "done",
                 "wdone", "gregs", "hist_n")

    def __init__(self, plan: Plan, step: int) -> None:
        self.plan, self.step, self.batch = plan, step, plan.batch
        # its numbers: a row of arrays made for several steps at a time (one allocation, a system call on the
        # CPU, per ARENA steps; each step keeps its row), under numpy's huge-page size (4 MiB: a huge page's
        # first write costs more than the steps' pages together)
        a, i = plan.arena, plan.arena_next
        if a is None or i >= a[0].shape[0]:
            k = max(1, min(ARENA, ARENA_BYTES // max(8 * plan.nvals, 8 * plan.ncounts, 1)))
            a = plan.arena = (np.empty((k, plan.nvals)), np.zeros((k, plan.ncounts), dtype=np.int64))
            i = 0
        plan.arena_next = i + 1
        self.vals = a[0][i]
        self.counts = a[1][i]
        self.i = 0
        self.last: tuple[Any, float] = (None, math.nan)
        self.exact: dict[int, tuple[float, float, float, float]] | None = None
        self.loss: Any = None
        self.handles: list[Any] = []
        self.mat: Any = None  # the general path's _Pending once the step departed from the plan
        self.done: dict[int, bool] = {}  # the gradient hooks that ran (by index)
        self.wdone: set[int] = set()
        self.gregs: list[int] = []
        self.hist_n: dict[int, int] | None = None  # counts offset -> values binned, where not all finite


def _weight_of(m: Any) -> Any:
    """``m.weight`` as the watch reads it (:func:`_watch._plain_weight`; a parameter straight from
    the module's dict: Module.__getattr__ is slow)."""
    d = m._parameters
    w = d.get("weight")
    if w is not None or "weight" in d:
        return w
    from initlab.diagnostics._watch import _plain_weight

    return _plain_weight(m)


def begin(hooks: Any, mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Replay | None:
    """The root's pre-hook of a recorded step with a plan: the input and the weights' sums; None
    (the general path) when the step does not start as the plan's."""
    pl: Plan = hooks.plan
    x = args[0] if args and isinstance(args[0], _Tensor) else \
        next((a for a in (*args, *kwargs.values()) if isinstance(a, _Tensor)), None)
    if x is None or _input_sig(x) != pl.input_sig:
        return None
    for m_, w in pl.wcheck:
        if m_._parameters.get("weight", _NO_WEIGHT) is not w and _weight_of(m_) is not w:
            return None
    for w, shape, rg in pl.wshapes:
        if w.shape != shape or w.requires_grad != rg:
            return None
    ps = Replay(pl, hooks.step)
    k = hooks.kernels
    vals = ps.vals
    if pl.input is not None:
        geo, mi, iargs = pl.input
        flat = x.detach().numpy().reshape(-1)  # (the input as [batch, features]: the same memory order)
        _, o, chans, hr = pl.mem_slot[mi]
        hrows, feats, fstep, batch = geo[4], geo[5], geo[6], geo[9]
        cancel, _ = k.grad_slot(flat, vals, ps.counts, hooks.idx, *iargs)
        if hrows:
            n2 = vals[o + 2 * chans + 2:o + 2 * chans + 2 + hrows]
            vals[o + 2 * chans + 1] = k.cos_sums(flat.reshape(batch, feats)[:hrows], fstep, n2)
        else:
            vals[o + 2 * chans + 1] = math.nan
        if cancel:
            _exact(ps, mi, flat, geo[1], False)
    try:
        _weights(hooks, ps, k, vals)
    except BaseException:
        for h in ps.handles:  # (a kernel failing: no hook of this step left behind)
            h.remove()
        raise
    return ps


def _weights(hooks: Any, ps: Replay, k: Any, vals: np.ndarray) -> None:
    """A replayed step's weights: their sums (left by the last step's update kernel, or taken now
    with their copy), the centered fallback, and (every > 1) their gradients' hooks."""
    pl = ps.plan
    presnap = hooks.presnap
    every = hooks.watch.every
    rows = None
    if not presnap:  # (no copies left by the last step's update: all the weights copied and summed in one call)
        wb = hooks._weight_batch(pl)
        if wb is not None:
            k.snap_all(wb[1], wb[2], wb[5])
            rows = wb[5].tolist()
    for i, (w, key, mi, gi, us, o) in enumerate(pl.weights):
        if rows is not None:
            s, q, c = rows[i]
            cancel = c != 0.0
        elif (pre := presnap.pop(key, None)) is None or pre[0] is not w or len(pre) < 4:
            buf = hooks._snap_buffer(w)
            s, q = k.snap_sums(hooks._view(w), hooks._view(buf))
            cancel = k.cancels_w(s, q, w.numel())
        else:
            _, s, q, cancel = pre
        vals[o], vals[o + 1] = s, q
        if cancel:
            from initlab.diagnostics._watch import _centered_flat

            if ps.exact is None:
                ps.exact = {}
            ps.exact[mi if mi is not None else ("w", key)] = _centered_flat(hooks._snap_buffer(w))
        if every > 1 and w.requires_grad:
            if w._backward_hooks is None:  # (the dict the watch makes is taken out with its hooks: _reset_hook_dicts)
                hooks.made[key] = w
            ps.handles.append(_grad_hook_handle(w, partial(wgrad, hooks, ps, key, gi)))
    presnap.clear()


def _input_sig(x: Any) -> tuple[Any, ...]:
    return (x.shape, x.dtype, x.is_cpu, x.is_floating_point(), x.layout)


def _exact(ps: Replay, mi: int, flat: np.ndarray, view: tuple[int, ...], mid: bool) -> None:
    """The probe's centered fallback (the kernel found the variance cancelling; see
    _TorchHooks._fast_member), kept beside the step's numbers."""
    import torch

    from initlab.diagnostics._watch import _centered_chan

    if ps.exact is None:
        ps.exact = {}
    ps.exact[mi] = _centered_chan(torch.from_numpy(flat.reshape(view)).unsqueeze(0), (1, 3) if mid else 1)


def forward(hooks: Any, ps: Replay, kind: str, mod: Any, inp: tuple[Any, ...], out: Any) -> bool:
    """One forward hook call (``kind`` "fw") or in-place pre-hook call ("pre") replayed; False
    when it departs from the plan (nothing done: the caller hands the step to the general path)."""
    i = ps.i
    events = ps.plan.events
    if i >= len(events):
        return False
    ev_kind, ev_mod, ev_sig, ops, post, ev_w = events[i]
    xin = inp[0] if inp and isinstance(inp[0], _Tensor) else None
    if ev_kind != kind or ev_mod is not mod or not _same_signature(ev_sig, out, xin, ps.last):
        return False
    if ev_w is not _NO_WEIGHT and mod._parameters.get("weight", _NO_WEIGHT) is not ev_w \
            and _weight_of(mod) is not ev_w:  # (a weight replaced inside forward())
        return False
    try:
        regs = _ops(hooks, ps, ops, out, xin)
    except Exception as exc:  # a kernel failing: the general path (by torch operations) takes this hook call
        hooks._kernels_failed(exc)
        return False
    ps.i = i + 1
    if regs:
        gregs = ps.gregs
        for s, gi in regs:
            gregs.append(gi)
            _add_grad_hook(out if s == "out" else xin, partial(grad, hooks, ps, gi))
    if post:
        ps.last = (out, _version(out))
    return True


def _ops(hooks: Any, ps: Replay, ops: tuple[Any, ...], out: Any, xin: Any) -> list[tuple[str, int]]:
    """A replayed hook call's statistics; returns its gradient hooks to register."""
    k = hooks.kernels
    vals, counts, idx = ps.vals, ps.counts, hooks.idx
    fo = fx = None
    regs = []
    for op in ops:
        c = op[0]
        if c == "m":
            _, s, mi, args, geo, hp = op
            if s == "out":
                flat = fo = out.detach().numpy().reshape(-1)
            else:
                flat = fx = xin.detach().numpy().reshape(-1)
            cancel, counted = (k.fw_slot_mid if geo[0] else k.fw_slot)(flat, vals, counts, idx, *args)
            if hp is not None and not counted:
                _fallback_hist(ps, hp[0], hp[1], flat, geo[7], 1.0)
            if cancel:
                _exact(ps, mi, flat, geo[1], geo[0])
        elif c == "h":
            _, s, mi, geo, hp = op
            flat = fo if s == "out" else fx
            if flat is None:
                flat = (out if s == "out" else xin).detach().numpy().reshape(-1)
            co, edges, nb, lo, kk = hp
            o, chans = ps.plan.mem_slot[mi][1], ps.plan.mem_slot[mi][2]
            if math.isfinite(vals[o + 5 * chans]):
                k.hist_counts(flat, geo[7], 1.0, lo, kk, nb, idx, counts[co:co + nb])
            else:
                _fallback_hist(ps, co, edges, flat, geo[7], 1.0)
        elif c == "r":
            regs.append((op[1], op[2]))
        else:
            _, slot, act = op
            scratch = _Scratch()
            hooks._saturation(scratch, act, None, _fast_marker(), xin, out)
            vals[slot] = scratch.fw.get("sat_host", math.nan)
    return regs


class _Scratch:
    """A row stand-in for :meth:`_TorchHooks._saturation` (it writes fw["sat_host"])."""

    def __init__(self) -> None:
        self.fw: dict[str, Any] = {}


_MARK: list[Any] = []


def _fast_marker() -> Any:
    """A :class:`_Fast` instance (what :meth:`_TorchHooks._saturation` tests for: the kernel path)."""
    if not _MARK:
        from initlab.diagnostics._watch import _Fast

        _MARK.append(_Fast("fw", 0, 0, np.empty((5, 0)), 0.0, 0.0, None))
    return _MARK[0]


def _fallback_hist(ps: Replay, co: int, edges: np.ndarray, flat: np.ndarray, hstep: int, scale: float) -> None:
    """A histogram of values not all finite, by the probe's own function (it bins the finite
    ones: their number is kept beside the counts)."""
    with np.errstate(all="ignore"):
        h = histogram(flat[::hstep].astype(np.float64) * scale, edges)
    ps.counts[co:co + h.counts.size] = h.counts
    if ps.hist_n is None:
        ps.hist_n = {}
    ps.hist_n[co] = int(h.n_sampled)


def grad(hooks: Any, ps: Replay, gi: int, g: Any) -> None:
    """A replayed step's gradient hook ``gi``."""
    if ps.mat is not None:  # the step went back to the general path
        if hooks.pending is ps.mat:
            ri, key = ps.plan.grads[gi][0], ps.plan.grads[gi][1]
            hooks._grad(ps.mat, ps.mat.rows_by_index[ri], key)(g)
        return
    if hooks.rp is not ps:
        return
    ri, key, mi, axis, hp, _, args, geo, shape, dtype = ps.plan.grads[gi]
    if g is None:  # (an output of a multi-output node on no path to the loss: no delta, as the general path)
        _depart(hooks, ps)
        return
    if gi in ps.done:  # a second backward through the step's graph (retain_graph): the general path keeps the last
        _depart(hooks, ps)
        hooks._grad(ps.mat, ps.mat.rows_by_index[ri], key)(g)
        return
    flat = None
    if mi is not None and g.dtype is dtype and g.shape == shape and g.is_cpu:
        try:
            flat = g.detach().numpy().reshape(-1)
        except (RuntimeError, TypeError):
            flat = None
    if flat is None:  # (a gradient the traced step did not have, or not of its kind)
        _depart(hooks, ps)
        hooks._grad(ps.mat, ps.mat.rows_by_index[ri], key)(g)
        return
    try:
        cancel, counted = (hooks.kernels.grad_slot_mid if geo[0] else hooks.kernels.grad_slot)(
            flat, ps.vals, ps.counts, hooks.idx, *args)
    except Exception as exc:
        hooks._kernels_failed(exc)
        _depart(hooks, ps)
        hooks._grad(ps.mat, ps.mat.rows_by_index[ri], key)(g)
        return
    if hp is not None and not counted:
        _fallback_hist(ps, hp[0], hp[1], flat, geo[7], args[-5])
    if cancel:
        _exact(ps, mi, flat, geo[1], geo[0])
    ps.done[gi] = True


def wgrad(hooks: Any, ps: Replay | None, key: int, gi: int | None, g: Any) -> None:
    """A replayed step's weight-gradient hook (``ps`` None: the hook kept between steps)."""
    if g is None:  # (as the general path: no gradient, no statistic)
        return
    if ps is None:
        ps = hooks.rp
        if ps is None:
            return
        gi = ps.plan.wgi.get(key)
    if ps.mat is not None:
        if hooks.pending is ps.mat:
            hooks._weight_grad(ps.mat, key)(g)
        return
    if hooks.rp is not ps:
        return
    flat = hooks._flat(g) if gi is not None else None
    if flat is None:  # (also a weight whose gradient the traced step did not have)
        _depart(hooks, ps)
        hooks._weight_grad(ps.mat, key)(g)
        return
    try:  # (Σg, Σg² into the step's numbers; whether the variance cancels)
        cancel = hooks.kernels.flat_slot(flat, ps.vals, ps.plan.mem_slot[gi][1])
    except Exception as exc:
        hooks._kernels_failed(exc)
        _depart(hooks, ps)
        hooks._weight_grad(ps.mat, key)(g)
        return
    if cancel:  # the probe's centered fallback (as _HostSums.of)
        from initlab.diagnostics._watch import _centered_flat

        if ps.exact is None:
            ps.exact = {}
        ps.exact[gi] = _centered_flat(g)
    ps.wdone.add(key)


def post(hooks: Any, ps: Replay) -> None:
    """The root's forward hook: the forward must have run all the plan's hook calls."""
    if ps.i != len(ps.plan.events):
        _depart(hooks, ps)
        return
    ps.last = (None, math.nan)


def _depart(hooks: Any, ps: Replay) -> None:
    """Hand the step to the general path: its :class:`_Pending` as the general path would hold it
    after the hook calls replayed so far (:func:`materialize`); the plan is dropped."""
    if ps.mat is not None:
        return
    ps.mat = materialize(hooks, ps)
    hooks.rp = None
    hooks.pending = ps.mat
    hooks.departures += 1
    missed(hooks)


def missed(hooks: Any) -> None:
    """A recorded step the plan did not take to its end (it did not start as the plan's, or it
    departed): after :data:`MISSES` in a row the plan is dropped (the next step is traced)."""
    hooks.misses += 1
    if hooks.misses >= MISSES:
        hooks.plan, hooks.misses = None, 0


def _members(hooks: Any, ps: Replay) -> list[Any]:
    """The template's members with this step's numbers (those not taken yet: None)."""
    from initlab.diagnostics._watch import _Fast, _HostSums

    pl, vals = ps.plan, ps.vals
    mrecs = pl.template[4]
    out: list[Any] = []
    ex = ps.exact or {}
    for i, (rec, lay) in enumerate(zip(mrecs, pl.mem_slot)):
        kind, o, chans, hr = lay
        if kind == "H":
            out.append(_HostSums(rec[1], float(vals[o]), float(vals[o + 1]), ex.get(i)))
            continue
        _, role, per_chan, _, _, _, _, _, _, scale, _ = rec
        if kind == "fw":
            b = o + 5 * chans
            m = _Fast(role, per_chan, chans, vals[o:b].reshape(5, chans), float(vals[b]), float(vals[b + 1]), None)
            if hr:
                m.n2, m.q = vals[b + 3:b + 3 + hr], float(vals[b + 2])
        elif kind == "grad":
            m = _Fast(role, per_chan, chans, vals[o:o + 2 * chans].reshape(2, chans), float(vals[o + 2 * chans]),
                      math.nan, None)
        else:
            b = o + 2 * chans
            m = _Fast(role, per_chan, chans, vals[o:b].reshape(2, chans), float(vals[b]), math.nan, None)
            if hr:
                m.n2, m.q = vals[b + 2:b + 2 + hr], float(vals[b + 1])
        m.scale, m.exact = scale, ex.get(i)
        out.append(m)
    return out


def _hist_count(pl: Any, hist_n: dict[int, int] | None, co: int, traced: int) -> int:
    """The values a replayed step's histogram at ``co`` binned: the finite ones where some were
    not (kept by :func:`_fallback_hist`), else all of its sample (not the traced step's count)."""
    if hist_n and co in hist_n:
        return hist_n[co]
    return pl.hist_need.get(co, traced)


def kept(ps: Replay, plan_index: int, upd: dict[int, float]) -> tuple[Any, ...]:
    """A replayed step as kept until the Watch is read: its numbers, with the plan by its index
    (a tuple the garbage collector stops tracking; :func:`frozen` makes the template's form)."""
    tupd = ps.plan.template[8]
    ex = None  # [member index, mean, var, sq_mean, chan_var] rows (template members only): one array
    if ps.exact:
        rows = [(i, *e) for i, e in ps.exact.items() if type(i) is int]
        ex = np.array(rows, dtype=np.float64).reshape(-1, 5) if rows else None
    hn = None if not ps.hist_n else np.array(sorted(ps.hist_n.items()), dtype=np.int64).reshape(-1, 2)
    return ("replay", plan_index, ps.step, ps.loss, ps.vals, ps.counts, ex,
            np.array([upd.get(k, math.nan) for k, _ in tupd], dtype=np.float64), hn)


def frozen(pl: Plan | KeptPlan, kept_step: tuple[Any, ...]) -> tuple[Any, ...]:
    """A kept replayed step in the form of :meth:`_TorchHooks._freeze` (for :meth:`_TorchHooks._thaw`)."""
    _, _, step, loss, vals, counts, exact, updv, hn = kept_step
    hist_n = {} if hn is None else {int(a): int(b) for a, b in hn}
    _, _, _, _, mrecs, rows, wg, inp, tupd = pl.template
    ex = {} if exact is None else {int(r[0]): tuple(float(v) for v in r[1:]) for r in exact}
    mems = []
    for i, (rec, lay) in enumerate(zip(mrecs, pl.mem_slot)):
        kind, o, chans, hr = lay
        e = ex.get(i)
        if kind == "H":
            mems.append(("H", rec[1], float(vals[o]), float(vals[o + 1]), e))
            continue
        _, role, per_chan, _, _, _, _, n2, _, scale, _ = rec
        if kind == "fw":
            b = o + 5 * chans
            mems.append(("F", role, per_chan, chans, vals[o:b].reshape(5, chans), float(vals[b]), float(vals[b + 1]),
                         vals[b + 3:b + 3 + hr] if hr else None, float(vals[b + 2]) if hr else math.nan, scale, e))
        elif kind == "grad":
            mems.append(("F", role, per_chan, chans, vals[o:o + 2 * chans].reshape(2, chans),
                         float(vals[o + 2 * chans]), math.nan, None, math.nan, scale, e))
        else:
            b = o + 2 * chans
            mems.append(("F", role, per_chan, chans, vals[o:b].reshape(2, chans), float(vals[b]), math.nan,
                         vals[b + 2:b + 2 + hr] if hr else None, float(vals[b + 1]) if hr else math.nan, scale, e))
    out_rows = []
    for i, (st, kind, act, axis, paired, weight, fw, grads, hist) in enumerate(rows):
        if i in pl.sat_slot:
            fw = tuple((k, float(vals[pl.sat_slot[i]]) if k == "sat_host" else v) for k, v in fw)
        hist = tuple((k, key, edges, counts[pl.hist_slot[(i, k)]:pl.hist_slot[(i, k)] + c.size],
                      _hist_count(pl, hist_n, pl.hist_slot[(i, k)], n)) for k, key, edges, c, n in hist)
        out_rows.append((st, kind, act, axis, paired, weight, fw, grads, hist))
    return ("step", step, pl.batch, loss, tuple(mems), tuple(out_rows), wg, inp,
            tuple((k, float(u)) for (k, _), u in zip(tupd, updv)))


def materialize(hooks: Any, ps: Replay) -> Any:
    """The general path's :class:`_Pending` after the hook calls replayed so far (and the
    gradient hooks run): rows, members and histograms as that path would hold them."""
    from initlab.diagnostics._result import LayerStats
    from initlab.diagnostics._watch import _Fast, _FastHist, _HostSums, _Pending, _Row

    pl = ps.plan
    mems = _members(hooks, ps)
    traced = {tid: mems[i] for tid, i in pl.mem_index.items()}  # id(traced member) -> this step's
    p = _Pending(ps.step)
    p.batch = ps.batch
    if pl.input is not None:
        p.input = mems[pl.input[1]]
    for w, key, mi, gi, _, o in pl.weights:
        p.snapshots[key] = (w, hooks._snap_buffer(w))
        p.weights[key] = mems[mi] if mi is not None else _HostSums(
            int(w.numel()), float(ps.vals[o]), float(ps.vals[o + 1]), (ps.exact or {}).get(("w", key)))
        if gi is not None and key in ps.wdone:
            p.weight_grads[key] = mems[gi]
    p.grad_handles = list(ps.handles)
    rows_by_index: dict[int, Any] = {}

    def make(state: tuple[Any, ...]) -> Any:
        traced_row, st_items, module, kind, act, axis, paired, weight, fw, hist = state
        st = LayerStats.__new__(LayerStats)
        st.__dict__.update(st_items)
        r = _Row(st, module, kind, act, axis, paired=paired)
        r.weight = weight
        for k, v in fw.items():
            r.fw[k] = traced.get(id(v), v) if k in FW_MEMBERS and v is not None else v
        for k, h in hist.items():
            ri, hk = pl.hist_index[id(h)]
            co = pl.hist_slot[(ri, hk)]
            c = ps.counts[co:co + h.hist.counts.size].copy()
            r.hist[k] = _FastHist(h.key, hist=Histogram(h.hist.edges, c, _hist_count(pl, ps.hist_n, co,
                                                                                    h.hist.n_sampled)))
        ri = pl.row_index.get(id(traced_row))
        if ri is not None:
            rows_by_index[ri] = r
            if ri in pl.sat_slot and "sat_host" in fw:
                r.fw["sat_host"] = float(ps.vals[pl.sat_slot[ri]])
        return r

    if ps.i:
        latest: dict[int, tuple[Any, ...]] = {}  # id(traced row) -> its state after the hook calls so far
        for ev_state in pl.states[:ps.i]:
            for st in ev_state[4]:
                latest[id(st[0])] = st
        rows, inplace, names, pair_inplace, _ = pl.states[ps.i - 1]
        made = {id(r): make(latest[id(r)]) for r in (*rows, *(r for _, r in inplace))}
        p.rows = [made[id(r)] for r in rows]
        p.inplace = {k: made[id(r)] for k, r in inplace}
        p.names, p.pair_inplace = dict(names), set(pair_inplace)
        if p.rows:
            last = p.rows[-1]
            last.out, last.version = ps.last
            m = last.fw.get("act")
            if ps.last[0] is not None and isinstance(m, _Fast):  # its values, for a histogram the general path takes of it
                m.t = hooks._flat(ps.last[0])
                p.fast.append(m)
    for gi in ps.gregs:  # the gradients their hooks took already
        ri, key, mi = pl.grads[gi][:3]
        if gi in ps.done and ri in rows_by_index and mi is not None:
            r = rows_by_index[ri]
            r.grads[key] = mems[mi]
            hp, ggeo = pl.grads[gi][4], pl.grads[gi][7]
            if hp is not None:
                co = hp[0]
                r.hist["grad"] = _FastHist((r.st.name, "grad"), hist=Histogram(
                    hp[1], ps.counts[co:co + hp[2]].copy(), (ps.hist_n or {}).get(co, ggeo[8])))
    p.rows_by_index = rows_by_index  # type: ignore[attr-defined]
    p.loss = ps.loss
    return p

