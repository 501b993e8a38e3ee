"""Training speed: initlab's NumPy engine against PyTorch on CPU, same work, one run.

Three workloads from the seeds, each trained by initlab (``Network.fit``) and by an idiomatic
PyTorch loop (``zero_grad / forward / loss / backward / step``, the loss read with ``.item()``
every step as initlab records it), same architecture, initial weights, batch size, optimizer,
float32 and thread count (``torch.set_num_threads(N)``; initlab's BLAS pinned to N threads with
``fit(threads=N)``):

  a. seed 002: 784-100-100-100-100-100-10 ReLU, softmax CE, SGD, batch 100, one epoch of
     60,000 Gaussian samples with random labels;
  b. seed 001: moons 2-12-6-1 ReLU/sigmoid, BCE, SGD, full batch of 400, 2000 epochs;
  c. seed 000: 2-200-300-400-300-2 tanh, softmax CE, SGD, batch 32, one epoch of 10,000 samples;
  d. a CNN on the shipped digits (8×8): conv 3×3 16 relu, max-pool 2, conv 3×3 32 relu, max-pool 2,
     dense 10; softmax CE, SGD, batch 64, one epoch of the 1,438 training images;
  e. a conv1d net on MNIST-1D (40 samples): conv 5 16 relu stride 2, conv 3 32 relu stride 2,
     dense 10; softmax CE, SGD, batch 64, one epoch of 4,000.

Targets: ratio ≤ 0.9 for the dense cases (a–c), ≤ 1.0 for the convolutions (d, e).

Each timing is the best of ``--repeats`` runs (interleaved), from a fresh copy of the same
initial weights. Prints a table, writes benchmarks/results/train_speed.json.

    .venv/bin/python benchmarks/train_speed.py [--threads N] [--repeats R] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np


def _torch_model(net: Any) -> Any:
    import torch

    model = net.to_torch()
    # the torch side trains on logits (BCEWithLogitsLoss), as initlab does for a sigmoid output
    if len(model) and isinstance(model[-1], torch.nn.Sigmoid):
        model = torch.nn.Sequential(*list(model)[:-1])
    return model


def _time_torch(net: Any, X: np.ndarray, y: np.ndarray, *, loss: str, lr: float, epochs: int, batch: int, seed: int,
                threads: int | None = None) -> float:
    import torch

    model = _torch_model(net)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.float32)[:, None] if loss == "bce" else y.astype(np.int64))
    crit = torch.nn.BCEWithLogitsLoss() if loss == "bce" else torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = Xt.shape[0]
    history = []
    t0 = time.perf_counter()
    for _ in range(epochs):
        if batch < n:
            perm = torch.randperm(n, generator=gen)
            Xs, ys = Xt[perm], yt[perm]
        else:
            Xs, ys = Xt, yt
        for s in range(0, n, batch):
            xb, yb = Xs[s : s + batch], ys[s : s + batch]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            lo = crit(out, yb)
            lo.backward()
            opt.step()
            history.append(lo.item())
    return time.perf_counter() - t0


def _time_initlab(net: Any, X: np.ndarray, y: np.ndarray, *, loss: str, lr: float, epochs: int, batch: int, seed: int,
                  threads: int | None = None) -> float:
    h = net.copy().fit(X, y, epochs=epochs, batch_size=batch, lr=lr, optimizer="sgd", loss=loss, progress=False, rng=seed,
                            threads=threads)
    return h.train_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a smoke test, not the reported numbers)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_speed.json"))
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from initlab.data import digits, gaussian, mnist1d, moons
    from initlab.nn import Conv1d, Conv2d, Dense, Flatten, MaxPool2d, Network

    torch.set_num_threads(args.threads)
    q = 10 if args.quick else 1
    cases = []
    Xa, ya = gaussian(60_000 // q, 784, rng=1, n_classes=10)
    cases.append(("a", "784-100x5-10 relu, CE, batch 100, 1 epoch of 60k", Network([784] + [100] * 5 + [10], "relu", init="he_normal", rng=0), Xa, ya, "ce", 0.01, 1, 100))
    Xb, yb, _, _ = moons(400, 0, 0.2, rng=2)
    cases.append(("b", "moons 2-12-6-1 relu/sigmoid, BCE, full batch 400, 2000 epochs", Network([2, 12, 6, 1], "relu", "sigmoid", init="he_normal", rng=0), Xb, yb, "bce", 0.01, 2000 // q, 400))
    Xc, yc = gaussian(10_000 // q, 2, rng=3, n_classes=2)
    cases.append(("c", "2-200-300-400-300-2 tanh, CE, batch 32, 1 epoch of 10k", Network([2, 200, 300, 400, 300, 2], "tanh", init="xavier_normal", rng=0), Xc, yc, "ce", 0.01, 1, 32))

    dg = digits(rng=4)
    Xd = np.ascontiguousarray(dg.X_train.reshape(-1, 1, 8, 8))
    cnn = Network([Conv2d(1, 16, 3, padding=1, activation="relu"), MaxPool2d(2), Conv2d(16, 32, 3, padding=1, activation="relu"),
                   MaxPool2d(2), Flatten(), Dense(32 * 2 * 2, 10)], input_shape=(1, 8, 8), rng=0)
    cases.append(("d", "digits CNN conv16-pool-conv32-pool-dense10, CE, batch 64, 1 epoch", cnn, Xd, dg.y_train, "ce", 0.05, 1, 64))
    m1 = mnist1d(rng=5)
    Xm = np.ascontiguousarray(m1.X_train.reshape(-1, 1, 40))
    c1d = Network([Conv1d(1, 16, 5, stride=2, padding=2, activation="relu"), Conv1d(16, 32, 3, stride=2, padding=1, activation="relu"),
                   Flatten(), Dense(32 * 10, 10)], input_shape=(1, 40), rng=0)
    cases.append(("e", "MNIST-1D conv1d 16-32 stride 2 + dense10, CE, batch 64, 1 epoch", c1d, Xm, m1.y_train, "ce", 0.05, 1, 64))

    rows = []
    load0 = list(os.getloadavg())
    with threadpool_limits(limits=args.threads):
        for key, desc, net, X, y, loss, lr, epochs, batch in cases:
            kw = dict(loss=loss, lr=lr, epochs=epochs, batch=batch, seed=0)
            _time_initlab(net, X[: 4 * batch], y[: 4 * batch], **{**kw, "epochs": 1})  # warm-up
            _time_torch(net, X[: 4 * batch], y[: 4 * batch], **{**kw, "epochs": 1})
            ti, tt = [], []
            for _ in range(args.repeats):
                ti.append(_time_initlab(net, X, y, **kw, threads=args.threads))
                tt.append(_time_torch(net, X, y, **kw))
            rows.append({"case": key, "workload": desc, "initlab_s": min(ti), "torch_s": min(tt), "ratio": min(ti) / min(tt),
                         "initlab_all_s": ti, "torch_all_s": tt})

    print(f"load average before/after: {load0[0]:.1f} / {os.getloadavg()[0]:.1f} (other jobs on the machine distort timings)")
    print(f"threads={args.threads}  torch {torch.__version__}  numpy {np.__version__}  repeats={args.repeats}{'  QUICK' if args.quick else ''}")
    print(f"{'case':<5}{'initlab s':>11}{'torch s':>10}{'ratio':>8}  workload")
    for r in rows:
        print(f"{r['case']:<5}{r['initlab_s']:>11.3f}{r['torch_s']:>10.3f}{r['ratio']:>8.2f}  {r['workload']}")
    out = {
        "benchmark": "train_speed", "target": "ratio <= 0.9 on the dense cases a-c, <= 1.0 on the convolutions d-e", "threads": args.threads,
        "repeats": args.repeats, "quick": args.quick, "torch": torch.__version__, "numpy": np.__version__,
        "machine": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
        "loadavg_before_after": [load0, list(os.getloadavg())], "cases": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
