"""The watch's numba kernels, one by one, on the shapes of one recorded step of issue 13's MLP.

A recorded step of ``initlab.watch(model, every=k)`` on the 784-256-256-256-256-10 ReLU MLP (batch
128) calls (see initlab/diagnostics/_watch.py and _watch_plan.py):
- ``fw_slot`` ×9: each module's output (4 hidden Linear outputs, 4 ReLU outputs, the 128×10
  readout): statistics, cosine sums of the first 64 rows, histogram of a strided subsample of
  4096 values (stride coprime with the channel count);
- ``grad_slot`` ×10: the same modules' deltas and the input's (sums, histogram);
- ``cos_sums`` of the input's first 64 rows (128×784);
- ``flat_sums`` ×5: the weight gradients (256×784, 256×256 ×3, 10×256);
- ``diff_snap_all`` ×1: the five weights' update and the next snapshot.
Below the MLP's table, the [batch, channels, positions] kernels on the shapes of watch_speed.py's
``--model cnn`` (Conv2d(3,32)-BN-ReLU, Conv2d(32,32)-BN-ReLU on 16×16 images: [128, 32, 256]),
not counted in the MLP's total.
Each kernel is timed in this thread's CPU time, min over ``--repeats`` batches of ``--calls``
calls (after a warm-up call that compiles); the table gives µs per call and the total per
recorded step. ``--kernels FILE`` times another copy of the kernels module (e.g. main's, for a
before/after comparison). Writes benchmarks/results/watch_kernels.json (``--out``).
Run: PYTHONPATH=src .venv/bin/python benchmarks/watch_kernels.py [--kernels FILE] [--label NAME]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

BATCH, HIDDEN, IN, OUT, BINS = 128, 256, 784, 10, 40
HIST_SAMPLE, COS_ROWS = 4096, 64


def _load(path: str | None) -> Any:
    if path is None:
        from initlab.diagnostics import _numba_kernels

        return _numba_kernels
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (numba's cache pickles the module by name)
    spec.loader.exec_module(mod)
    return mod


def _hstep(n: int, chans: int) -> int:
    """The watch's histogram stride (_watch._sample_step)."""
    if n <= HIST_SAMPLE:
        return 1
    step = -(-n // HIST_SAMPLE)
    while math.gcd(step, chans) != 1:
        step += 1
    return step


def _time(fn: Callable[[], Any], calls: int, repeats: int) -> float:
    """µs per call: min over ``repeats`` batches of ``calls`` calls, in this thread's CPU time."""
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.thread_time_ns()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time_ns() - t0) / calls)
    return best / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default=None, help="a kernels module file (default: initlab's)")
    ap.add_argument("--label", default="current")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "watch_kernels.json"))
    args = ap.parse_args()
    k = _load(args.kernels)
    rng = np.random.default_rng(0)
    lo, kk = -3.0, BINS / 6.0
    near_t = np.float32(1e-3)

    def fw_case(c: int, relu: bool) -> Callable[[], Any]:
        x = rng.standard_normal((BATCH, c)).astype(np.float32)
        if relu:
            np.maximum(x, 0, out=x)
        flat = x.reshape(-1)
        hs = _hstep(flat.size, c)
        hrows = min(BATCH, COS_ROWS)
        vals = np.zeros(5 * c + 3 + hrows)
        counts = np.zeros(BINS, dtype=np.int64)
        idx = np.empty(-(-flat.size // hs), dtype=np.int32)
        return lambda: k.fw_slot(flat, vals, counts, idx, BATCH, c, near_t, 0, hrows, c, 1, hs, lo, kk, BINS, 0)

    def grad_case(c: int, scale: float) -> Callable[[], Any]:
        x = (rng.standard_normal((BATCH, c)) * 1e-3).astype(np.float32)
        flat = x.reshape(-1)
        hs = _hstep(flat.size, c)
        vals = np.zeros(2 * c + 1)
        counts = np.zeros(BINS, dtype=np.int64)
        idx = np.empty(-(-flat.size // hs), dtype=np.int32)
        return lambda: k.grad_slot(flat, vals, counts, idx, BATCH, c, 0, hs, scale, lo, kk, BINS, 0)

    def cos_case(c: int) -> Callable[[], Any]:
        h = rng.standard_normal((BATCH, c)).astype(np.float32)[:COS_ROWS]
        n2 = np.empty(COS_ROWS)
        return lambda: k.cos_sums(h, 1, n2)

    def flat_case(n: int) -> Callable[[], Any]:
        g = rng.standard_normal(n).astype(np.float32)
        return lambda: k.flat_sums(g)

    wshapes = [(HIDDEN, IN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN), (OUT, HIDDEN)]
    ws = tuple(rng.standard_normal(a * b).astype(np.float32) for a, b in wshapes)
    ss = tuple((w + 1e-3 * rng.standard_normal(w.size)).astype(np.float32) for w in ws)
    dout = np.empty((len(ws), 4))

    # (name, callable, calls per recorded step)
    cases: list[tuple[str, Callable[[], Any], int]] = [
        ("fw_slot 128x256 linear", fw_case(HIDDEN, False), 4),
        ("fw_slot 128x256 relu", fw_case(HIDDEN, True), 4),
        ("fw_slot 128x10", fw_case(OUT, False), 1),
        ("grad_slot 128x256", grad_case(HIDDEN, float(BATCH)), 8),
        ("grad_slot 128x10", grad_case(OUT, float(BATCH)), 1),
        ("grad_slot 128x784 (input)", grad_case(IN, float(BATCH)), 1),
        ("cos_sums 64x784 (input)", cos_case(IN), 1),
        ("flat_sums 256x784", flat_case(HIDDEN * IN), 1),
        ("flat_sums 256x256", flat_case(HIDDEN * HIDDEN), 3),
        ("flat_sums 10x256", flat_case(OUT * HIDDEN), 1),
        ("diff_snap_all 5 weights", lambda: k.diff_snap_all(ws, ss, dout), 1),
    ]
    def fw_mid_case(c: int, p: int) -> Callable[[], Any]:
        x = np.maximum(rng.standard_normal((BATCH, c, p)), 0).astype(np.float32)
        flat = x.reshape(-1)
        hs = _hstep(flat.size, c)
        hrows, feats = min(BATCH, COS_ROWS), c * p
        fstep = -(-feats // 4096) if feats > 4096 else 1
        vals = np.zeros(5 * c + 3 + hrows)
        counts = np.zeros(BINS, dtype=np.int64)
        idx = np.empty(-(-flat.size // hs), dtype=np.int32)
        return lambda: k.fw_slot_mid(flat, vals, counts, idx, BATCH, c, p, near_t, 0, hrows, feats, fstep, hs, lo, kk,
                                     BINS, 0)

    def grad_mid_case(c: int, p: int) -> Callable[[], Any]:
        x = (rng.standard_normal((BATCH, c, p)) * 1e-3).astype(np.float32)
        flat = x.reshape(-1)
        hs = _hstep(flat.size, c)
        vals = np.zeros(2 * c + 1)
        counts = np.zeros(BINS, dtype=np.int64)
        idx = np.empty(-(-flat.size // hs), dtype=np.int32)
        return lambda: k.grad_slot_mid(flat, vals, counts, idx, BATCH, c, p, 0, hs, float(BATCH), lo, kk, BINS, 0)

    conv: list[tuple[str, Callable[[], Any], int]] = [
        ("fw_slot_mid 128x32x256", fw_mid_case(32, 256), 0),
        ("grad_slot_mid 128x32x256", grad_mid_case(32, 256), 0),
    ]
    rows = []
    total = 0.0
    print(f"kernels: {args.label} ({getattr(k, '__file__', '?')})")
    print(f"{'kernel':30s} {'us/call':>9s} {'calls/step':>10s} {'us/step':>9s}")
    for name, fn, per in cases:
        slow = "diff" in name or name.startswith("flat_sums 256x784")
        us = _time(fn, max(1, args.calls // 20 if slow else args.calls), args.repeats)
        total += us * per
        rows.append({"kernel": name, "us_per_call": round(us, 3), "calls_per_step": per,
                     "us_per_step": round(us * per, 3)})
        print(f"{name:30s} {us:9.2f} {per:10d} {us * per:9.2f}")
    print(f"{'total per recorded step':30s} {'':9s} {'':10s} {total:9.2f}")
    print("conv shapes (watch_speed.py --model cnn; not in the total):")
    for name, fn, per in conv:
        us = _time(fn, max(1, args.calls // 20), args.repeats)
        rows.append({"kernel": name, "us_per_call": round(us, 3), "calls_per_step": per, "us_per_step": 0.0})
        print(f"{name:30s} {us:9.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(out.read_text()) if out.exists() else {}
    prev[args.label] = {"kernels": rows, "total_us_per_step": round(total, 3), "machine": platform.processor()
                        or platform.machine(), "calls": args.calls, "repeats": args.repeats}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(prev, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
