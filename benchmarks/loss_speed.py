"""Loss speed: initlab's softmax cross-entropy (value and gradient) against PyTorch on CPU, one run.

initlab: ``CrossEntropy().value_and_grad(z, y, grad, scale)`` as ``Network.fit`` calls it (the
gradient written into a reused buffer, under ``np.errstate``). PyTorch:
``F.cross_entropy(z, y)`` then ``backward()`` on a leaf tensor of the same logits (the loss read
with ``.item()``, as a training loop records it). float32, 10 classes, the training benchmarks'
batch sizes (32: seed 000, 64: the CNNs, 100: seed 002, 128), one thread each. Each figure is the
best over ``--repeats`` interleaved rounds of the mean of ``--number`` calls. Ratio = initlab /
torch (below 1: initlab is faster).

    .venv/bin/python benchmarks/loss_speed.py [--repeats R] [--number N]

To compare two versions of initlab, run it with each on ``PYTHONPATH`` (the torch column is the
same workload, so the ratios compare across runs taken under different machine load).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--number", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=10)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    import initlab
    from initlab._threads import limit_threads
    from initlab.nn.losses import CrossEntropy

    torch.set_num_threads(1)
    ce = CrossEntropy()
    print(f"initlab {initlab.__file__}")
    print(f"{'batch':>5} {'initlab µs':>11} {'torch µs':>9} {'ratio':>6}")
    for n in (32, 64, 100, 128):
        rng = np.random.default_rng(n)
        z = (rng.standard_normal((n, args.classes)) * 3).astype(np.float32)
        y = rng.integers(0, args.classes, n).astype(np.intp)
        buf = np.empty_like(z)
        zt = torch.from_numpy(z.copy()).requires_grad_(True)
        yt = torch.from_numpy(y.astype(np.int64))

        def run_initlab() -> None:
            with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
                for _ in range(args.number):
                    ce.value_and_grad(z, y, buf, 1.0)

        def run_torch() -> None:
            for _ in range(args.number):
                zt.grad = None
                lo = F.cross_entropy(zt, yt)
                lo.backward()
                lo.item()

        best = {"initlab": float("inf"), "torch": float("inf")}
        with limit_threads(1):
            for _ in range(args.repeats):
                for name, fn in (("initlab", run_initlab), ("torch", run_torch)):
                    t0 = time.perf_counter()
                    fn()
                    best[name] = min(best[name], (time.perf_counter() - t0) / args.number)
        print(f"{n:>5} {best['initlab'] * 1e6:>11.1f} {best['torch'] * 1e6:>9.1f} {best['initlab'] / best['torch']:>6.2f}")


if __name__ == "__main__":
    main()
