"""Probe overhead: probing forward+backward vs a plain forward+backward of the same network.

Targets (issue 4): ratio ≤ 1.5 on seed 003's 10×500 tanh stack at batch 1000 (NumPy engine) and
on a torch 784-1024-1024-1024-10 ReLU MLP at batch 256. Issue 9 adds the op-level torch probe on a
6-layer TransformerEncoder (d_model 256, 8 heads, feed-forward 1024, batch 64, sequence 128,
dropout 0 so the plain pass does the same arithmetic as the probe's dropout-free "init" mode) and a
CNN with BatchNorm and pooling (4 conv-BN-ReLU, 2 max-pools, global average pooling, batch 128,
3×32×32), probe (every row's statistics, forward and backward) over a plain forward+backward in
training mode, target ≤ 1.5 (``--large-repeats`` repeats each, default 3). For reference, a naive per-layer
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


def _bench_torch_model(case: str, model: Any, x: Any, repeats: int) -> dict[str, Any]:
    import torch

    import initlab

    model.train()
    with torch.no_grad():
        y = torch.randn(model(x).shape, generator=torch.Generator().manual_seed(3))

    def plain() -> None:
        out = model(x)
        out.backward(out.detach() - y)
        model.zero_grad(set_to_none=True)

    def probe() -> None:
        initlab.probe(model, x, rng=0)

    t = _median_times({"plain": plain, "probe": probe}, repeats)
    rows = len(initlab.probe(model, x, rng=0).layers)
    return {"case": case, "plain_s": t["plain"], "probe_s": t["probe"], "ratio": t["probe"] / t["plain"],
            "naive_s": None, "naive_ratio": None, "rows": rows, "target": 1.5, "repeats": repeats,
            "torch_threads": torch.get_num_threads()}


def _seed_params(model: Any, seed: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / p[0].numel()) ** 0.5)
    return model


def bench_transformer(repeats: int) -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    layer = torch.nn.TransformerEncoderLayer(256, 8, 1024, dropout=0.0, batch_first=True)
    enc = _seed_params(torch.nn.TransformerEncoder(layer, 6, enable_nested_tensor=False), 0)
    x = torch.randn(64, 128, 256, generator=torch.Generator().manual_seed(1))
    return _bench_torch_model("torch TransformerEncoder 6x256, batch 64, seq 128", enc, x, repeats)


def bench_cnn(repeats: int) -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    nn = torch.nn

    def block(cin: int, cout: int) -> list[Any]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    cnn = _seed_params(nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                                     nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)), 2)
    x = torch.randn(128, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    return _bench_torch_model("torch CNN 4xconv-BN-ReLU + pools, batch 128, 32x32", cnn, x, repeats)


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
    ap.add_argument("--large-repeats", type=int, default=3, help="repeats of the transformer and CNN cases")
    ap.add_argument("--only-large", action="store_true", help="only the transformer and CNN cases")
    args = ap.parse_args()
    small = [] if args.only_large else [bench_numpy(args.repeats), bench_torch(args.repeats)]
    large = [bench_transformer(args.large_repeats), bench_cnn(args.large_repeats)]
    rows = [r for r in (*small, *large) if r is not None]
    phase = None if args.only_large else bench_phase()
    print(f"{'case':48s} {'plain ms':>9s} {'probe ms':>9s} {'ratio':>6s} {'naive':>6s} target")
    for r in rows:
        naive = "     —" if r["naive_ratio"] is None else f"{r['naive_ratio']:6.2f}"
        print(f"{r['case']:48s} {1e3 * r['plain_s']:9.1f} {1e3 * r['probe_s']:9.1f} {r['ratio']:6.2f} "
              f"{naive} ≤ {r['target']}")
    if phase is not None:
        print(f"{phase['case']:48s} {phase['seconds']:.3f} s (target < {phase['target_s']} s)")
    out = {"probe": rows, "phase_diagram": phase, "repeats": args.repeats,
           "machine": {"python": platform.python_version(), "processor": platform.processor(),
                       "cpus": __import__("os").cpu_count(), "load_average": list(__import__("os").getloadavg())}}
    path = Path(__file__).parent / "results" / "probe_speed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {path}")


if __name__ == "__main__":
    main()
