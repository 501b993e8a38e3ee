"""Probe overhead: probing forward+backward vs a plain forward+backward of the same network.

Targets (issue 4): ratio ≤ 1.5 on seed 003's 10×500 tanh stack at batch 1000 (NumPy engine) and
on a torch 784-1024-1024-1024-10 ReLU MLP at batch 256. For reference, a naive per-layer
statistics pass (np.mean / np.std / np.histogram on pre-activation, activation and gradient) is
timed too. Also times initlab.theory.phase_diagram on a 100×100 grid (target < 2 s).

Each timing is the median of interleaved repeats. Writes benchmarks/results/probe_speed.json.
Run: .venv/bin/python benchmarks/probe_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


def _median_times(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    for f in fns.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_numpy(repeats: int) -> dict[str, Any]:
    import initlab
    from initlab.nn import Network

    net = Network([500] * 11, activation="tanh", output="tanh", init="lecun_normal", rng=0)
    x = np.random.default_rng(1).standard_normal((1000, 500)).astype(np.float32)
    g = np.random.default_rng(2).standard_normal((1000, 500)).astype(np.float32)

    def plain() -> None:
        out, trace = net.forward(x, capture=True)
        net.backward(out - g, trace)

    def naive() -> None:
        out, trace = net.forward(x, capture=True)
        net.backward(out - g, trace)
        for t in trace:
            for a in (t.preact, t.act, t.grad_preact):
                np.mean(a), np.std(a), a.min(), a.max()
                np.histogram(a, 50)
            np.std(t.grad_weight)

    def probe() -> None:
        initlab.probe(net, x, rng=0)

    t = _median_times({"plain": plain, "naive": naive, "probe": probe}, repeats)
    return {"case": "numpy tanh 10x500, batch 1000", "plain_s": t["plain"], "probe_s": t["probe"],
            "naive_s": t["naive"], "ratio": t["probe"] / t["plain"], "naive_ratio": t["naive"] / t["plain"],
            "target": 1.5}


def bench_torch(repeats: int) -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    import initlab

    g = torch.Generator().manual_seed(0)
    sizes = [784, 1024, 1024, 1024, 10]
    mods: list[Any] = []
    for i in range(4):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * (2 / sizes[i]) ** 0.5)
        mods.append(lin)
        if i < 3:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    x = torch.randn(256, 784, generator=g)
    xn = x.numpy()
    y = torch.randn(256, 10, generator=g)

    def plain() -> None:
        out = model(x)
        out.backward(out.detach() - y)
        model.zero_grad(set_to_none=True)

    def naive() -> None:
        acts: list[Any] = []
        hs = [m.register_forward_hook(lambda m, i, o: acts.append(o.detach().numpy().copy())) for m in model]
        out = model(x)
        out.backward(out.detach() - y)
        for h in hs:
            h.remove()
        for a in acts:
            np.mean(a), np.std(a), a.min(), a.max()
            np.histogram(a, 50)
        for p in model.parameters():
            np.std(p.grad.numpy())
        model.zero_grad(set_to_none=True)

    def probe() -> None:
        initlab.probe(model, xn, rng=0)

    t = _median_times({"plain": plain, "naive": naive, "probe": probe}, repeats)
    return {"case": "torch relu 784-1024-1024-1024-10, batch 256", "plain_s": t["plain"], "probe_s": t["probe"],
            "naive_s": t["naive"], "ratio": t["probe"] / t["plain"], "naive_ratio": t["naive"] / t["plain"],
            "target": 1.5, "torch_threads": torch.get_num_threads()}


def bench_phase() -> dict[str, Any] | None:
    try:
        from initlab.theory import phase_diagram
    except ImportError:
        return None
    w = np.linspace(0.1, 4.0, 100)
    b = np.linspace(0.0, 0.5, 100)
    phase_diagram("tanh", w[:5], b[:5])  # warm-up (imports)
    t0 = time.perf_counter()
    phase_diagram("tanh", w, b)
    return {"case": "theory.phase_diagram tanh 100x100", "seconds": time.perf_counter() - t0, "target_s": 2.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    rows = [r for r in (bench_numpy(args.repeats), bench_torch(args.repeats)) if r is not None]
    phase = bench_phase()
    print(f"{'case':48s} {'plain ms':>9s} {'probe ms':>9s} {'ratio':>6s} {'naive':>6s} target")
    for r in rows:
        print(f"{r['case']:48s} {1e3 * r['plain_s']:9.1f} {1e3 * r['probe_s']:9.1f} {r['ratio']:6.2f} "
              f"{r['naive_ratio']:6.2f} ≤ {r['target']}")
    if phase is not None:
        print(f"{phase['case']:48s} {phase['seconds']:.3f} s (target < {phase['target_s']} s)")
    out = {"probe": rows, "phase_diagram": phase, "repeats": args.repeats,
           "machine": {"python": platform.python_version(), "processor": platform.processor(),
                       "cpus": __import__("os").cpu_count()}}
    path = Path(__file__).parent / "results" / "probe_speed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
