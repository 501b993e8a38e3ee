"""initlab.init vs torch.nn.init: speed on this machine, same thread count, float32.

4096×4096 for every scheme (orthogonal 2048×2048), median of ``--repeats`` runs (≥ 5) after one
warm-up, torch and initlab timed alternately so that load from other processes hits both alike. Prints a table and writes ``benchmarks/results/init_speed.json``. A ratio > 1 means
initlab is faster (ratio = torch time / initlab time). torch's in-place functions are timed on a
preallocated tensor (its usual use); initlab returns a new array, so for the memory-bound schemes
a second row times torch on a fresh ``torch.empty`` as well.

    .venv/bin/python benchmarks/init_speed.py [--repeats 7] [--threads N] [--size 4096]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _interleaved_ms(f_torch: Callable[[], Any], f_init: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median ms of each, measured alternately (torch, initlab, torch, ...) so that load changes
    on a shared machine hit both alike; one warm-up call each first."""
    f_torch()
    f_init()
    tt, ti = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f_torch()
        t1 = time.perf_counter()
        f_init()
        t2 = time.perf_counter()
        tt.append(t1 - t0)
        ti.append(t2 - t1)
    return statistics.median(tt) * 1e3, statistics.median(ti) * 1e3


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--orth-size", type=int, default=2048)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "init_speed.json"))
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")

    import numpy as np
    import torch

    import initlab.init as ii

    torch.set_num_threads(args.threads)
    n, m = args.size, args.orth_size
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    tw = torch.empty(n, n)
    to = torch.empty(m, m)
    nn = torch.nn.init
    th = args.threads
    cases: list[tuple[str, tuple[int, int], Callable[[], Any], Callable[[], Any]]] = [
        ("normal", (n, n), lambda: nn.normal_(tw, std=0.02, generator=gen),
         lambda: ii.normal((n, n), std=0.02, rng=rng, num_threads=th)),
        ("uniform", (n, n), lambda: nn.uniform_(tw, -0.1, 0.1, generator=gen),
         lambda: ii.uniform((n, n), a=-0.1, b=0.1, rng=rng, num_threads=th)),
        ("xavier_uniform", (n, n), lambda: nn.xavier_uniform_(tw, generator=gen),
         lambda: ii.xavier_uniform((n, n), rng=rng, num_threads=th)),
        ("xavier_normal", (n, n), lambda: nn.xavier_normal_(tw, generator=gen),
         lambda: ii.xavier_normal((n, n), rng=rng, num_threads=th)),
        ("kaiming_uniform", (n, n), lambda: nn.kaiming_uniform_(tw, nonlinearity="relu", generator=gen),
         lambda: ii.kaiming_uniform((n, n), nonlinearity="relu", rng=rng, num_threads=th)),
        ("kaiming_normal", (n, n), lambda: nn.kaiming_normal_(tw, nonlinearity="relu", generator=gen),
         lambda: ii.kaiming_normal((n, n), nonlinearity="relu", rng=rng, num_threads=th)),
        ("trunc_normal", (n, n), lambda: nn.trunc_normal_(tw, std=1.0, a=-2.0, b=2.0, generator=gen),
         lambda: ii.trunc_normal((n, n), std=1.0, a=-2.0, b=2.0, rng=rng, num_threads=th)),
        ("trunc_normal(std=0.02)", (n, n), lambda: nn.trunc_normal_(tw, std=0.02, generator=gen),
         lambda: ii.trunc_normal((n, n), std=0.02, rng=rng, num_threads=th)),
        ("sparse(0.1)", (n, n), lambda: nn.sparse_(tw, 0.1, generator=gen),
         lambda: ii.sparse((n, n), sparsity=0.1, rng=rng, num_threads=th)),
        ("constant", (n, n), lambda: nn.constant_(tw, 0.5), lambda: ii.constant((n, n), value=0.5)),
        ("zeros", (n, n), lambda: nn.zeros_(tw), lambda: ii.zeros((n, n))),
        ("eye", (n, n), lambda: nn.eye_(tw), lambda: ii.eye((n, n))),
        ("orthogonal", (m, m), lambda: nn.orthogonal_(to, generator=gen),
         lambda: ii.orthogonal((m, m), rng=rng, num_threads=th)),
    ]
    rows = []
    for name, shape, tfn, ifn in cases:
        t_torch, t_init = _interleaved_ms(tfn, ifn, args.repeats)
        rows.append({"scheme": name, "shape": list(shape), "torch_ms": round(t_torch, 2),
                     "initlab_ms": round(t_init, 2), "ratio": round(t_torch / t_init, 2)})
        if name in ("normal", "uniform", "constant", "zeros", "eye"):
            # torch on a FRESH tensor: the same contract as initlab, which returns a new array
            # (the in-place rows above reuse memory that is already paged in)
            fresh = {
                "normal": lambda: nn.normal_(torch.empty(n, n), std=0.02, generator=gen),
                "uniform": lambda: nn.uniform_(torch.empty(n, n), -0.1, 0.1, generator=gen),
                "constant": lambda: nn.constant_(torch.empty(n, n), 0.5),
                "zeros": lambda: nn.zeros_(torch.empty(n, n)),
                "eye": lambda: nn.eye_(torch.empty(n, n)),
            }[name]
            t_fresh, t_init2 = _interleaved_ms(fresh, ifn, args.repeats)
            rows.append({"scheme": name + " (torch fresh tensor)", "shape": list(shape),
                         "torch_ms": round(t_fresh, 2), "initlab_ms": round(t_init2, 2),
                         "ratio": round(t_fresh / t_init2, 2)})
    targets = {"trunc_normal": 3.0, "orthogonal": 1.5}
    print(f"initlab.init vs torch.nn.init {torch.__version__}, float32, {args.threads} threads, "
          f"median of {args.repeats}")
    print(f"{'scheme':24s} {'shape':>11s} {'torch ms':>9s} {'initlab ms':>10s} {'ratio':>6s}  target")
    for r in rows:
        tgt = targets.get(r["scheme"].split(" ")[0], 1.0)
        ok = "ok" if r["ratio"] >= tgt else "MISS"
        print(f"{r['scheme']:24s} {'x'.join(map(str, r['shape'])):>11s} {r['torch_ms']:9.1f} "
              f"{r['initlab_ms']:10.1f} {r['ratio']:6.2f}  >={tgt:g} {ok}")
    result = {
        "benchmark": "init_speed",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "ratio_definition": "torch_ms / initlab_ms (> 1: initlab faster)",
        "targets": {"default": 1.0, **targets},
        "rows": rows,
        "min_ratio": min(r["ratio"] for r in rows),
        "geomean_ratio": round(math.exp(statistics.fmean(math.log(r["ratio"]) for r in rows)), 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
