"""initlab.init vs torch.nn.init: speed on this machine, same thread count, float32.

4096×4096 for every scheme (orthogonal 2048×2048; dirac a [size/8, size/8, 3, 3] conv kernel,
512×512×3×3 at the default size), median of ``--repeats`` runs (≥ 5) after one
warm-up, the four contenders of a scheme timed round-robin so that load from other processes
hits all alike. Prints a table and writes ``benchmarks/results/init_speed.json``. A ratio > 1
means initlab is faster (ratio = torch time / initlab time). Every scheme is compared twice, in
the same run:

* ``in place``: torch's ``nn.init.<scheme>_`` on a preallocated tensor that is already paged in
  (its usual use in a training script), against ``initlab.init.fill_`` on the SAME tensor
  (initlab writes the tensor's memory through NumPy: no copy);
* ``fresh``: torch's ``nn.init.<scheme>_`` on a fresh ``torch.empty`` tensor, i.e. including the
  allocation and first touch of the memory, against initlab returning a new array.

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


def _interleaved_ms(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Median ms of each function, measured round-robin (f0, f1, ..., f0, f1, ...) so that load
    changes on a shared machine hit all alike; one warm-up call each first."""
    for f in fns:
        f()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for f, ts in zip(fns, times):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) * 1e3 for ts in times]


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
    c = max(1, n // 8)  # dirac's conv kernel [c, c, 3, 3]: 512x512x3x3 for --size 4096
    tw = torch.empty(n, n)
    to = torch.empty(m, m)
    td = torch.empty(c, c, 3, 3)
    nn = torch.nn.init
    th = args.threads
    # (name, shape, torch on tensor t, initlab spec, initlab parameters); torch is timed on the
    # held tensor (in place) and on a fresh torch.empty of the same shape; initlab fills the same
    # held tensor with fill_ (in place) and returns a new array (fresh)
    cases: list[tuple[str, tuple[int, ...], Callable[[torch.Tensor], Any], str, dict[str, Any]]] = [
        ("normal", (n, n), lambda t: nn.normal_(t, std=0.02, generator=gen), "normal", {"std": 0.02}),
        ("uniform", (n, n), lambda t: nn.uniform_(t, -0.1, 0.1, generator=gen), "uniform", {"a": -0.1, "b": 0.1}),
        ("xavier_uniform", (n, n), lambda t: nn.xavier_uniform_(t, generator=gen), "xavier_uniform", {}),
        ("xavier_normal", (n, n), lambda t: nn.xavier_normal_(t, generator=gen), "xavier_normal", {}),
        ("kaiming_uniform", (n, n), lambda t: nn.kaiming_uniform_(t, nonlinearity="relu", generator=gen),
         "kaiming_uniform", {"nonlinearity": "relu"}),
        ("kaiming_normal", (n, n), lambda t: nn.kaiming_normal_(t, nonlinearity="relu", generator=gen),
         "kaiming_normal", {"nonlinearity": "relu"}),
        ("trunc_normal", (n, n), lambda t: nn.trunc_normal_(t, std=1.0, a=-2.0, b=2.0, generator=gen),
         "trunc_normal", {"std": 1.0, "a": -2.0, "b": 2.0}),
        ("trunc_normal(std=0.02)", (n, n), lambda t: nn.trunc_normal_(t, std=0.02, generator=gen),
         "trunc_normal", {"std": 0.02}),
        ("sparse(0.1)", (n, n), lambda t: nn.sparse_(t, 0.1, generator=gen), "sparse", {"sparsity": 0.1}),
        ("constant", (n, n), lambda t: nn.constant_(t, 0.5), "constant", {"value": 0.5}),
        ("zeros", (n, n), lambda t: nn.zeros_(t), "zeros", {}),
        ("ones", (n, n), lambda t: nn.ones_(t), "ones", {}),
        ("eye", (n, n), lambda t: nn.eye_(t), "eye", {}),
        ("dirac", (c, c, 3, 3), lambda t: nn.dirac_(t), "dirac", {}),
        ("orthogonal", (m, m), lambda t: nn.orthogonal_(t, generator=gen), "orthogonal", {}),
    ]
    rows = []
    for name, shape, tfn, scheme, params in cases:
        held = {(n, n): tw, (m, m): to, (c, c, 3, 3): td}[shape]
        init = ii.get({"name": scheme, "params": params})

        def inplace(init: Any = init, held: torch.Tensor = held) -> Any:
            return ii.fill_(held, init, rng=rng, num_threads=th)

        def fresh(init: Any = init, shape: tuple[int, ...] = shape) -> Any:
            return init(shape, rng=rng, num_threads=th)

        t_inplace, i_inplace, t_fresh, i_fresh = _interleaved_ms(
            [lambda: tfn(held), inplace, lambda: tfn(torch.empty(*shape)), fresh], args.repeats)
        rows.append({"scheme": name, "shape": list(shape),
                     "torch_inplace_ms": round(t_inplace, 2), "initlab_inplace_ms": round(i_inplace, 2),
                     "torch_fresh_ms": round(t_fresh, 2), "initlab_fresh_ms": round(i_fresh, 2),
                     "ratio_inplace": round(t_inplace / i_inplace, 2), "ratio_fresh": round(t_fresh / i_fresh, 2)})
    targets = {"trunc_normal": 3.0, "orthogonal": 1.5}
    print(f"initlab.init vs torch.nn.init {torch.__version__}, float32, {args.threads} threads, "
          f"median of {args.repeats}, timed round-robin")
    print("ratio = torch ms / initlab ms (> 1: initlab faster)")
    print("  in place: torch nn.init.X_(t) vs initlab.init.fill_(t, X) on the same preallocated, paged-in tensor")
    print("  fresh:    torch.empty + nn.init.X_ vs initlab returning a new array")
    print(f"{'scheme':24s} {'shape':>11s} {'torch':>8s} {'initlab':>8s} {'ratio':>6s}   "
          f"{'torch':>8s} {'initlab':>8s} {'ratio':>6s}  target (in place / fresh)")
    print(f"{'':24s} {'':>11s} {'in place':>8s} {'in place':>8s} {'':>6s}   {'fresh':>8s} {'fresh':>8s}")
    for r in rows:
        tgt = targets.get(r["scheme"], 1.0)
        ok = lambda x: "ok" if x >= tgt else "MISS"  # noqa: E731
        print(f"{r['scheme']:24s} {'x'.join(map(str, r['shape'])):>11s} {r['torch_inplace_ms']:8.1f} "
              f"{r['initlab_inplace_ms']:8.1f} {r['ratio_inplace']:6.2f}   {r['torch_fresh_ms']:8.1f} "
              f"{r['initlab_fresh_ms']:8.1f} {r['ratio_fresh']:6.2f}  >={tgt:g} {ok(r['ratio_inplace'])} / "
              f"{ok(r['ratio_fresh'])}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load is not None:
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    result = {
        "benchmark": "init_speed",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "threads": args.threads,
        "repeats": args.repeats,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "load_average": None if load is None else [round(x, 2) for x in load],
        "ratio_definition": "torch_ms / initlab_ms (> 1: initlab faster)",
        "comparisons": {
            "inplace": "torch nn.init.<scheme>_ vs initlab.init.fill_ on the same preallocated, paged-in tensor",
            "fresh": "torch nn.init.<scheme>_ on a fresh torch.empty tensor (allocation and first touch "
                     "included) vs initlab returning a new array",
        },
        "targets": {"default": 1.0, **targets},
        "rows": rows,
        "min_ratio_inplace": min(r["ratio_inplace"] for r in rows),
        "min_ratio_fresh": min(r["ratio_fresh"] for r in rows),
        "geomean_ratio_inplace": round(math.exp(statistics.fmean(math.log(r["ratio_inplace"]) for r in rows)), 2),
        "geomean_ratio_fresh": round(math.exp(statistics.fmean(math.log(r["ratio_fresh"]) for r in rows)), 2),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
