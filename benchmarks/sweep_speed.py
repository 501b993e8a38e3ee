"""Sweep speed: stacked training against sequential PyTorch, achieved FLOP/s, and process scaling.

  a. 64 trainings of seed 001's network (moons 2-12-6-1 ReLU, sigmoid output, BCE, He init
     σ_w² = 2, full-batch SGD lr 0.01, 2000 epochs, seeds 0..63) as ONE stacked computation
     (:func:`initlab.sweep.train_stack`), against 64 sequential PyTorch trainings of the same
     network (idiomatic loop: zero_grad / forward / BCEWithLogitsLoss / backward / step). Target:
     stacked time <= 0.1 × torch's.
  b. a grid row of 16 tanh networks (width 256, depth 20, MNIST-1D input 40 → 10 classes, batch
     256, 200 SGD steps) stacked: achieved FLOP/s (6·B·Σ in·out per step and network, minus the
     first layer's unused input gradient) against a plain float32 2048² matmul on the same
     threads. Target: >= 60%.
  c. the process executor on 2 workers against 1 on the same sweep (16 cells of width 96,
     depth 6, 8 tasks): speed-up. Target: >= 1.7 (needs two idle cores).

Both sides use the same BLAS/torch thread count (``--threads``, default 1). Timings are the best
of ``--repeats`` interleaved runs for (a) and (b). Prints a table and writes
benchmarks/results/sweep_speed.json.

    .venv/bin/python benchmarks/sweep_speed.py [--threads 1] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _cells(model: dict[str, Any], grid: dict[str, Any], train: dict[str, Any]) -> list[dict[str, Any]]:
    from initlab.sweep import parse_spec

    return parse_spec({"model": model, "grid": grid, "train": train}).cells()


def bench_a(n_nets: int, epochs: int, threads: int, repeats: int) -> dict[str, Any]:
    import torch

    from initlab.sweep.stacked import init_specs, load_data, train_stack
    from initlab import init as _init

    cells = _cells({"activation": "relu", "hidden": [12, 6], "output": "sigmoid", "sigma_w2": 2.0},
                   {"seed": list(range(n_nets))},
                   {"dataset": "moons", "optimizer": "sgd", "lr": 0.01, "batch_size": 400, "steps": epochs})
    X, y, _, _ = load_data(cells[0])
    Xt, yt = torch.from_numpy(np.array(X)), torch.from_numpy(np.array(y, dtype=np.float32))[:, None]
    sizes = [2, 12, 6, 1]
    weights = []
    for c in cells:  # the same initial weights for torch (drawn as the stack draws them)
        gen = np.random.default_rng(c["seed"])
        ws = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            w_spec, b_spec = init_specs(c, a, b)
            ws.append((_init.get(w_spec)((b, a), rng=gen), _init.get(b_spec)((b,), rng=gen)))
        weights.append(ws)

    def run_torch() -> list[float]:
        torch.set_num_threads(threads)
        losses = []
        for ws in weights:
            lins = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
            with torch.no_grad():
                for lin, (w, b) in zip(lins, ws):
                    lin.weight.copy_(torch.from_numpy(w))
                    lin.bias.copy_(torch.from_numpy(b))
            model = torch.nn.Sequential(lins[0], torch.nn.ReLU(), lins[1], torch.nn.ReLU(), lins[2])
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            lossf = torch.nn.BCEWithLogitsLoss()
            for _ in range(epochs):
                opt.zero_grad()
                loss = lossf(model(Xt), yt)
                loss.backward()
                opt.step()
            with torch.no_grad():
                losses.append(float(lossf(model(Xt), yt)))
        return losses

    t_torch, t_stack = [], []
    rows: list[dict[str, Any]] = []
    torch_losses: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch_losses = run_torch()
        t_torch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rows = train_stack(cells, threads=threads)
        t_stack.append(time.perf_counter() - t0)
    diff = max(abs(r["train_loss"] - tl) for r, tl in zip(rows, torch_losses))
    return {"networks": n_nets, "epochs": epochs, "torch_s": min(t_torch), "stacked_s": min(t_stack),
            "ratio": min(t_stack) / min(t_torch), "target": 0.1, "max_final_loss_difference": diff}


def _matmul_flops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    c = np.empty_like(a)
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(a, b, out=c)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def bench_b(n_nets: int, width: int, depth: int, steps: int, threads: int, repeats: int,
            dataset: str = "mnist1d") -> dict[str, Any]:
    from initlab.sweep.stacked import load_data, network_sizes, train_stack

    cells = _cells({"activation": "tanh", "width": width, "depth": depth, "sigma_b2": 0.05},
                   {"sigma_w2": list(np.round(np.linspace(1.0, 4.0, n_nets), 6))},
                   {"dataset": dataset, "optimizer": "sgd", "lr": 1e-3, "batch_size": 256, "steps": steps})
    X, *_ = load_data(cells[0])  # generated once, outside the timing
    sizes = network_sizes(cells[0], X.shape[1], 10)
    mac = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    flops_step = 2 * 256 * (3 * mac - sizes[0] * sizes[1])  # forward, weight grads, input grads (not layer 0)
    total = flops_step * steps * n_nets
    best_train = float("inf")
    best_mm = 0.0
    for _ in range(repeats):
        best_mm = max(best_mm, _matmul_flops(threads))
        # time the training loop alone: the final evaluation pass is excluded by subtracting a
        # zero-step run of the same stack
        t0 = time.perf_counter()
        train_stack(cells, threads=threads)
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        train_stack([{**c, "steps": 1} for c in cells], threads=threads)
        t_one = time.perf_counter() - t0
        best_train = min(best_train, t_full - t_one * (1 - 1 / steps))
    achieved = total / best_train
    return {"networks": n_nets, "width": width, "depth": depth, "steps": steps, "dataset": dataset, "train_s": best_train,
            "achieved_gflops": achieved / 1e9, "matmul_gflops": best_mm / 1e9, "fraction": achieved / best_mm,
            "target": 0.6}


def bench_c(quick: bool) -> dict[str, Any]:
    from initlab.sweep import run_sweep

    spec = {
        "name": "bench-c",
        "model": {"activation": "tanh", "width": 96, "depth": 6, "sigma_b2": 0.05},
        "grid": {"sigma_w2": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5], "seed": [0, 1]},
        "train": {"dataset": "digits", "optimizer": "sgd", "lr": 0.01, "batch_size": 128,
                  "steps": 150 if quick else 600},
    }
    out: dict[str, Any] = {"cells": 16, "tasks": 8}
    with tempfile.TemporaryDirectory() as d:
        for w in (1, 2):
            t0 = time.perf_counter()
            r = run_sweep(spec, Path(d) / f"w{w}.db", executor="process", workers=w, stack=2)
            out[f"workers_{w}_s"] = time.perf_counter() - t0
            assert r.computed == 16
            from initlab.sweep import SweepStore

            with SweepStore.read(Path(d) / f"w{w}.db") as st:  # CPU time the cells took inside the workers
                out[f"workers_{w}_cell_seconds"] = sum(x["seconds"] for x in st.rows())
    out["speedup"] = out["workers_1_s"] / out["workers_2_s"]
    out["target"] = 1.7
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="Fewer epochs and steps (a smoke run).")
    ap.add_argument("--only", default="abc", help="Which benchmarks: any of a, b, c.")
    ap.add_argument("--b-dataset", default="mnist1d", help="Input data of (b): mnist1d (40 inputs) or gaussian (20).")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep_speed.json"))
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads,
                           "loadavg_start": os.getloadavg()}
    if "a" in args.only:
        out["a"] = bench_a(64, 200 if args.quick else 2000, args.threads, args.repeats)
        a = out["a"]
        print(f"(a) 64 moons trainings x {a['epochs']} epochs: torch {a['torch_s']:.2f} s, stacked {a['stacked_s']:.2f} s, "
              f"ratio {a['ratio']:.3f} (target <= 0.1); final losses agree to {a['max_final_loss_difference']:.1e}")
    if "b" in args.only:
        out["b"] = bench_b(16, 256, 20, 20 if args.quick else 200, args.threads, args.repeats, args.b_dataset)
        b = out["b"]
        print(f"(b) 16 tanh nets 256x20, {b['steps']} steps: {b['achieved_gflops']:.1f} GFLOP/s vs matmul "
              f"{b['matmul_gflops']:.1f} GFLOP/s = {b['fraction']:.0%} (target >= 60%)")
    if "c" in args.only:
        out["c"] = bench_c(args.quick)
        c = out["c"]
        print(f"(c) process executor, 16 cells: 1 worker {c['workers_1_s']:.1f} s, 2 workers {c['workers_2_s']:.1f} s, "
              f"speed-up {c['speedup']:.2f} (target >= 1.7); summed per-cell training time {c['workers_1_cell_seconds']:.1f} s "
              f"with 1 worker, {c['workers_2_cell_seconds']:.1f} s with 2 (equal if the second core is really free)")
    out["loadavg_end"] = os.getloadavg()
    print(f"load average at start {out['loadavg_start'][0]:.1f}, at end {out['loadavg_end'][0]:.1f} "
          f"({out['cpus']} CPUs)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
