"""The torch-operations path of ``initlab.watch``: operations per recorded step, and (on CUDA) time.

Off the CPU (CUDA, MPS) every watched tensor takes the watch's torch-operations path; on the CPU it
does when numba is missing. There each torch operation costs the CPU its dispatch and, on a GPU, a
kernel launch (10-100+ µs): a training step of a small model is launch-bound, and the watch's cost
is the NUMBER of operations it adds. This script counts them, deterministically, with a
``TorchDispatchMode`` that counts every aten operation (``func``) run during a watched training
step minus during a plain step (averaged over ``--steps`` recorded steps, after warm-up steps that
name the init and fix the histogram edges), split into

- ``ops``: all aten operations (what the profiler lists),
- ``compute``: those that are not views or metadata (view ops, ``detach``, ``alias``,
  ``empty*``, ``_local_scalar_dense`` excluded): about one CUDA kernel launch (or copy) each,

for the issue's 784-256×4-10 ReLU MLP (batch 128) and a small CNN (Conv-BN-ReLU ×2, linear
readout, batch 64), with the numba kernels off (the path measured). With ``--time`` (default on
CUDA) it also times plain training vs ``watch(every=1)`` vs ``watch(every=10)`` on the device
(``torch.cuda.synchronize`` around each timed run; medians of interleaved repeats), the kernels
as in normal use. Writes benchmarks/results/watch_ops.json.

``--as-device`` (on the CPU) also counts the path the watch takes off the CPU, emulated on the CPU.

``--check`` compares step 0's rows on the device with a CPU watch of the same steps and checks that
training is bitwise unchanged there.

Measured (2026-11-30, NVIDIA H200, torch 2.11.0+cu130; before → after the device path of
src/initlab/diagnostics/_watch.py took one reduction per quantity per stack and no BLAS call):
operations a recorded step adds, MLP 302 aten ops / 161 not views → 195 / 85; CNN 316 / 168 →
194 / 85 (a plain step: 88 / 39 and 54 / 30). Time, same machine, the two versions one after the
other, 200 steps, medians of 3 (ratios to plain training; the first recorded step's one-time
costs included): MLP every=1 5.18x → 3.56x, every=10 1.60x → 1.30x; CNN 5.09x → 3.45x, 1.44x →
1.27x; the wide MLP (1024-4096x4-10, batch 1024, 7.1 ms a plain step) 1.78x → 1.87x, 1.20x → 1.11x
(its steps are the GPU's work, not launches: within the runs' noise, 2.02x → 1.80x in an earlier
pair of runs). --check: training bitwise unchanged on CUDA; step 0's rows within 6e-6 of a CPU
watch of the same steps (TF32 off). A last change (a stack's few cosine sums copied to the host
as they are, their square taken there) brought the device path to 81 / 82 operations (counted
with --as-device on the CPU; not timed on the GPU). On the CPU (the torch path when numba is
missing): MLP 160 → 117 operations (a weight gradient's sums read at once there), CNN 167 → 124.

Run: .venv/bin/python benchmarks/watch_ops.py [--device cpu|cuda] [--steps N] [--time] [--wide] [--as-device] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

_FREE = {"detach", "alias", "empty", "empty_like", "empty_strided", "_local_scalar_dense", "lift_fresh",
         "_unsafe_view", "unsqueeze", "squeeze", "expand", "t", "transpose", "view", "as_strided", "select",
         "slice", "unbind", "permute", "_reshape_alias", "split", "split_with_sizes", "chunk", "movedim",
         "diagonal", "narrow", "reshape", "flatten", "unflatten", "numpy_T", "view_as", "expand_as",
         "is_same_size", "sym_size", "sym_stride", "sym_numel", "sym_storage_offset", "set_", "resize_"}


def _is_free(func: Any) -> bool:
    name = func.overloadpacket.__name__
    if name in _FREE:
        return True
    return bool(getattr(func, "is_view", False))


def build(kind: str, device: str, wide: bool = False) -> tuple[Any, Any, Any]:
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    g = torch.Generator().manual_seed(1)
    if kind == "mlp":
        sizes = [1024, 4096, 4096, 4096, 4096, 10] if wide else [784, 256, 256, 256, 256, 10]
        layers: list[Any] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        model = nn.Sequential(*layers[:-1])
        batch = 1024 if wide else 128
        x = torch.randn(batch, sizes[0], generator=g)
    else:
        model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                              nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                              nn.Flatten(), nn.Linear(32 * 16 * 16, 10))
        x = torch.randn(64, 3, 16, 16, generator=g)
    y = torch.randint(0, 10, (x.shape[0],), generator=g)
    return model.to(device), x.to(device), y.to(device)


def train(model: Any, opt: Any, x: Any, y: Any, steps: int, w: Any = None) -> None:
    """``steps`` SGD steps of cross-entropy on the one batch (x, y), the loss given to the watch ``w``."""
    import torch

    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if w is not None:
            w.log_loss(loss)


def count_ops(kind: str, device: str, steps: int, warm: int = 3, as_device: bool = False) -> dict[str, Any]:
    """Aten operations per recorded step (watched minus plain), the kernels off. ``as_device``:
    on the CPU, the choices the watch makes off the CPU (``_watch._launch_bound`` true: one
    reduction where the CPU path runs a BLAS dot per tensor...), to count the device path's
    operations without a GPU (the CPU-only branches stay: the update norms in place, the
    bincount, the loss read at once)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    import initlab
    from initlab.diagnostics import _watch

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: Counter[str] = Counter()
            self.compute: Counter[str] = Counter()

        def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                               kwargs: dict[str, Any] | None = None) -> Any:
            name = func.overloadpacket.__name__
            self.ops[name] += 1
            if not _is_free(func):
                self.compute[name] += 1
            return func(*args, **(kwargs or {}))

    model, x, y = build(kind, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(w: Any = None) -> None:
        train(model, opt, x, y, 1, w)

    def measure(w: Any) -> Count:
        for _ in range(warm):
            step(w)
        c = Count()
        with c:
            for _ in range(steps):  # (each step's pre-hook finishes the step before: ``steps`` finishes)
                step(w)
        return c

    plain = measure(None)
    w = initlab.watch(model, every=1)
    w._hooks.kernels = None  # the torch-operations path (the path of every tensor off the CPU)
    bound = getattr(_watch, "_launch_bound", None)
    if as_device:
        _watch._launch_bound = lambda t: True
    try:
        with w:
            watched = measure(w)
    finally:
        _watch._launch_bound = bound
    n_rows = len(w.steps[-1].layers)
    ops = {k: (watched.ops[k] - plain.ops[k]) / steps for k in watched.ops | plain.ops}
    comp = {k: (watched.compute[k] - plain.compute[k]) / steps for k in watched.compute | plain.compute}
    top = sorted(((k, v) for k, v in comp.items() if v), key=lambda kv: -kv[1])[:25]
    top_all = sorted(((k, v) for k, v in ops.items() if v), key=lambda kv: -kv[1])
    return {"model": kind, "device": device + (" (device path)" if as_device else ""), "rows": n_rows,
            "plain_ops_per_step": sum(plain.ops.values()) / steps,
            "plain_compute_per_step": sum(plain.compute.values()) / steps,
            "ops_per_recorded_step": sum(ops.values()), "compute_per_recorded_step": sum(comp.values()),
            "top_compute": dict(top), "all_ops": dict(top_all)}


def time_device(kind: str, device: str, steps: int, repeats: int, wide: bool) -> dict[str, Any]:
    """Plain vs watch(every=1) vs watch(every=10): seconds per step on ``device`` (medians)."""
    import torch

    import initlab

    model, x, y = build(kind, device, wide)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def run(every: int | None) -> float:
        model.load_state_dict(state)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        sync()
        t0 = time.perf_counter()
        if every is None:
            train(model, opt, x, y, steps)
        else:
            with initlab.watch(model, every=every) as w:
                train(model, opt, x, y, steps, w)
        sync()
        return time.perf_counter() - t0

    variants = {"plain": None, "every_1": 1, "every_10": 10}
    for v in variants.values():
        run(v)
    t: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for k, v in variants.items():
            t[k].append(run(v))
    med = {k: statistics.median(v) for k, v in t.items()}
    return {"model": kind + ("_wide" if wide else ""), "device": device, "steps": steps,
            "ms_per_step": {k: 1e3 * v / steps for k, v in med.items()},
            "ratio_every_1": med["every_1"] / med["plain"], "ratio_every_10": med["every_10"] / med["plain"]}


def check(device: str, steps: int = 6) -> dict[str, Any]:
    """On ``device``: training watched every step equals plain training bitwise (parameters and
    momentum buffers), and the recorded rows equal those of the same steps watched on the CPU (the
    kernels as installed), within ``rel`` (the devices' matmuls round differently)."""
    import copy
    import math

    import torch

    import initlab

    out: dict[str, Any] = {}
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False  # (plain vs plain: bitwise)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # (the CPU computes in float32)
    for kind in ("mlp", "cnn"):
        model, x, y = build(kind, device)
        twins = [copy.deepcopy(model) for _ in range(2)]
        cpu_model = copy.deepcopy(model).cpu()
        res = []
        for i, m in enumerate([*twins, cpu_model]):
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            xi, yi = (x, y) if i < 2 else (x.cpu(), y.cpu())
            w = initlab.watch(m, every=1) if i != 0 else None
            if w is not None and i == 2:
                w._hooks.kernels = None  # (the CPU's torch path, tested equal to the kernels': no compilation here)
            if w is not None:
                w.__enter__()
            try:
                train(m, opt, xi, yi, steps, w)
            finally:
                if w is not None:
                    w.__exit__(None, None, None)
            res.append((m, opt, w))
        (m0, o0, _), (m1, o1, w1), (_, _, wc) = res
        bitwise = all(torch.equal(a, b) for a, b in zip(m0.state_dict().values(), m1.state_dict().values())) and all(
            torch.equal(o0.state[a]["momentum_buffer"], o1.state[b]["momentum_buffer"])
            for a, b in zip(m0.parameters(), m1.parameters()))
        worst = 0.0
        keys = ("mean", "std", "sq_mean", "chan_var", "min", "max", "preact_mean", "preact_std", "cosine",
                "weight_std", "grad_std", "grad_rms", "grad_weight_std", "dead")
        for a, b in zip(w1.steps[0].layers, wc.steps[0].layers):
            for k in keys:
                va, vb = getattr(a, k), getattr(b, k)
                if isinstance(va, float) and isinstance(vb, float) and math.isfinite(vb):
                    worst = max(worst, abs(va - vb) / max(abs(vb), 1e-3))
        hist = max(int(abs(a.hist.counts - b.hist.counts).sum()) for a, b in zip(w1.steps[0].layers, wc.steps[0].layers)
                   if a.hist is not None and b.hist is not None)
        upd = max(abs(w1.steps[0].update_ratio[k] - wc.steps[0].update_ratio[k]) / abs(wc.steps[0].update_ratio[k])
                  for k in wc.steps[0].update_ratio)
        out[kind] = {"bitwise_training": bitwise, "rows": len(w1.steps[0].layers), "steps": len(w1.steps),
                     "step0_worst_rel_vs_cpu": worst, "step0_hist_count_diff": hist, "step0_update_rel": upd}
        print(f"check {kind} on {device}: training bitwise unchanged {bitwise}; step 0 vs the CPU watch: worst rel "
              f"{worst:.2e}, histogram counts differ by {hist}, update ratio rel {upd:.2e}", flush=True)
    return out


def profile(device: str, path: str, steps: int = 20) -> None:
    """A torch.profiler table (self CPU time) of ``steps`` training steps of the MLP watched every
    step on ``device``, written to ``path``."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    import initlab

    model, x, y = build("mlp", device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with initlab.watch(model, every=1) as w:
        train(model, opt, x, y, 5, w)
        p = prof(activities=acts)
        p.__enter__()
        train(model, opt, x, y, steps, w)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        p.__exit__(None, None, None)
    Path(path).write_text(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=5, help="recorded steps counted")
    ap.add_argument("--time", action="store_true", default=None, help="time plain vs every=1 vs every=10")
    ap.add_argument("--time-steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--wide", action="store_true", help="also time the wide MLP 1024-4096x4-10, batch 1024")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", default=None, help="write a profiler table of the watched MLP to this file")
    ap.add_argument("--check", action="store_true", help="check rows and bitwise training against the CPU")
    ap.add_argument("--as-device", action="store_true",
                    help="on the CPU, also count the device path (the watch's choices off the CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    do_time = args.time if args.time is not None else args.device.startswith("cuda")
    res: dict[str, Any] = {"machine": platform.platform(), "torch": torch.__version__, "device": args.device,
                           "counts": {}, "timing": {}}
    if args.device.startswith("cuda"):
        res["gpu"] = torch.cuda.get_device_name()
    for kind, as_dev in [(k, a) for k in args.models.split(",") for a in (False, True) if a <= args.as_device]:
        c = count_ops(kind, args.device, args.steps, as_device=as_dev)
        res["counts"][kind + ("_device_path" if as_dev else "")] = c
        print(f"{kind} on {c['device']} ({c['rows']} rows): watch adds {c['ops_per_recorded_step']:.0f} aten ops per "
              f"recorded step, {c['compute_per_recorded_step']:.0f} of them not views (about one launch each); "
              f"plain step {c['plain_ops_per_step']:.0f} ops, {c['plain_compute_per_step']:.0f} not views", flush=True)
        print("   top:", ", ".join(f"{k} {v:g}" for k, v in list(c["top_compute"].items())[:14]), flush=True)
    if args.check:
        res["check"] = check(args.device)
    if args.profile:
        profile(args.device, args.profile)
    if do_time:
        for kind, wide in [(k, False) for k in args.models.split(",")] + ([("mlp", True)] if args.wide else []):
            r = time_device(kind, args.device, args.time_steps, args.repeats, wide)
            res["timing"][r["model"]] = r
            ms = r["ms_per_step"]
            print(f"{r['model']} on {args.device}: plain {ms['plain']:.3f} ms/step; every=1 {r['ratio_every_1']:.2f}x; "
                  f"every=10 {r['ratio_every_10']:.3f}x", flush=True)
    out = Path(os.environ.get("WATCH_OPS_OUT", Path(__file__).parent / "results" / "watch_ops.json"))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
