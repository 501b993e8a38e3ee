"""Watch overhead: a torch training loop with and without ``initlab.watch``.

Target (issue 13): watching every step of a 784-256-256-256-256-10 ReLU MLP (batch 128, SGD with
momentum, cross-entropy) costs ≤ 1.3× the plain training time; every 10 steps ≤ 1.05×.
Each variant trains the same model from the same state for ``--steps`` steps (300 by default: a
watch's first recorded step names the init and fixes the histogram edges, its second is traced
for the replay of the later ones (see initlab/diagnostics/_watch_plan.py), and both one-time
costs are included); the timings are medians of interleaved repeats. A fourth variant, ``read_once``, is the floor of any watch that
looks at every step: hooks that only copy each layer's output and delta once and the weights
once, and read each weight gradient once (no statistic at all).
A fifth, ``every_1_torch_ops``, watches every step with the kernels turned off (the path without
numba, and the one off the CPU). ``--model cnn`` times a small CNN instead (conv outputs take the
kernels' [batch, channels, positions] path).
The same ratios in this process's CPU time are printed and saved too (steadier when other processes
share the machine). A second design, ``paired`` (``--paired N`` rounds, 2 by default), cancels the
machine's drift: two copies of the model from the same state train side by side on the same
batches, one watched and one plain, ten steps of one then ten of the other (which goes first
alternates); the ratio is the watched copy's total time over the plain copy's, with a 95% interval
from the spread of the blocks (the ratio estimator's); both copies' parameters must end bitwise
equal (the watch changed nothing). Writes benchmarks/results/watch_speed.json
(watch_speed_cnn.json for --model cnn).
Run: .venv/bin/python benchmarks/watch_speed.py [--repeats N] [--steps N] [--paired N] [--model mlp|cnn]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--paired", type=int, default=2, help="rounds of the paired design (0: none)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                    help="mlp: the issue's 784-256x4-10 ReLU MLP; cnn: Conv2d(3,32)-BN-ReLU, Conv2d(32,32)-BN-ReLU on "
                         "16x16 images, a linear readout (the conv path of the kernels)")
    args = ap.parse_args()

    import torch

    import initlab
    import initlab.diagnostics._kernels

    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if args.model == "mlp":
        sizes = [784, 256, 256, 256, 256, 10]
        layers: list[Any] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1])
        shape: tuple[int, ...] = (784,)
    else:
        nn = torch.nn
        model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                              nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                              nn.Flatten(), nn.Linear(32 * 16 * 16, 10))
        shape = (3, 16, 16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.from_numpy(rng.standard_normal((args.steps * args.batch, *shape)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, args.steps * args.batch))

    class ReadOnce:
        """Hooks that read every recorded tensor once and compute nothing (the floor)."""

        def __enter__(self) -> "ReadOnce":
            self.weights = [m.weight for m in model if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
            self.snap = [torch.empty_like(w) for w in self.weights]
            self.bufs: dict[Any, Any] = {}
            self.handles = [m.register_forward_hook(self.fwd) for m in model]
            self.handles += [w.register_hook(self.wgrad) for w in self.weights]
            self.handles.append(model.register_forward_pre_hook(self.pre))
            return self

        def __exit__(self, *exc: Any) -> None:
            for h in self.handles:
                h.remove()

        def pre(self, mod: Any, args: Any) -> None:
            with torch.no_grad():
                torch._foreach_copy_(self.snap, self.weights)

        def copy(self, key: Any, t: Any) -> None:
            buf = self.bufs.get(key)
            if buf is None:
                buf = self.bufs[key] = torch.empty_like(t)
            buf.copy_(t)

        def fwd(self, mod: Any, inp: Any, out: Any) -> None:
            with torch.no_grad():
                self.copy(id(mod), out)
            out.register_hook(lambda g, k=-id(mod): self.copy(k, g))

        def wgrad(self, g: Any) -> None:
            with torch.no_grad():
                g.sum()

        def log_loss(self, loss: Any) -> None:
            pass

    def step(m: Any, o: Any, s: int, w: Any) -> None:
        """Training step ``s`` of model ``m`` with optimizer ``o`` (``w``: the watch, given the loss)."""
        o.zero_grad()
        loss = torch.nn.functional.cross_entropy(m(x[s * args.batch:(s + 1) * args.batch]),
                                                 y[s * args.batch:(s + 1) * args.batch])
        loss.backward()
        o.step()
        if w is not None:
            w.log_loss(loss)

    def run(every: int | str | None) -> tuple[float, float]:
        model.load_state_dict(state)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        c0 = time.process_time()
        t0 = time.perf_counter()

        def loop(w: Any = None) -> None:
            for s in range(args.steps):
                step(model, opt, s, w)

        if every is None:
            loop()
        elif every == "read_once":
            with ReadOnce() as r:
                loop(r)
        elif every == "torch_ops":  # every step, statistics by torch operations (no numba kernels)
            w = initlab.watch(model, every=1)
            w._hooks.kernels = None
            with w:
                loop(w)
        else:
            with initlab.watch(model, every=every) as w:
                loop(w)
            replayed[every] = w._hooks.replayed
        return time.perf_counter() - t0, time.process_time() - c0

    replayed: dict[Any, int] = {}

    def run_paired(every: int) -> dict[str, Any]:
        """The paired design: a watched and a plain copy, 10 steps of each in turn (which goes first
        alternates), for ``args.paired`` rounds of ``args.steps`` steps, each round a new watch."""
        import copy

        tw: list[float] = []
        tp: list[float] = []
        for r in range(args.paired):
            model.load_state_dict(state)
            mw, mp = copy.deepcopy(model), copy.deepcopy(model)
            ow = torch.optim.SGD(mw.parameters(), lr=0.01, momentum=0.9)
            op = torch.optim.SGD(mp.parameters(), lr=0.01, momentum=0.9)

            with initlab.watch(mw, every=every) as w:
                for b0 in range(0, args.steps, 10):  # blocks of 10 steps, a block of each copy in turn
                    order = ((mw, ow, w, tw), (mp, op, None, tp)) if (b0 // 10 + r) % 2 else \
                        ((mp, op, None, tp), (mw, ow, w, tw))
                    for m, o, w_, ts in order:
                        t0 = time.perf_counter()
                        for s in range(b0, min(b0 + 10, args.steps)):
                            step(m, o, s, w_)
                        ts.append(time.perf_counter() - t0)
            same = all(torch.equal(a, b) for a, b in zip(mw.state_dict().values(), mp.state_dict().values()))
            if not same:
                raise SystemExit(f"paired every={every}: the watched copy's parameters differ from the plain copy's")
        a, b = np.array(tw), np.array(tp)  # per 10-step block
        ratio = float(a.sum() / b.sum())
        # the ratio estimator's 95% interval: var(R) ≈ var(a_i − R·b_i) / (n·mean(b)²) over the n blocks
        half = 1.96 * float((a - ratio * b).std(ddof=1)) / (math.sqrt(a.size) * float(b.mean()))
        return {"ratio": ratio, "ci95": [ratio - half, ratio + half], "steps": args.steps * args.paired,
                "ms_per_step_watched": 1e3 * float(a.sum()) / (args.steps * args.paired),
                "ms_per_step_plain": 1e3 * float(b.sum()) / (args.steps * args.paired),
                "bitwise_equal_parameters": True}

    variants: dict[str, int | str | None] = {"plain": None, "every_1": 1, "every_10": 10, "read_once": "read_once",
                                             "every_1_torch_ops": "torch_ops"}
    for v in variants.values():
        run(v)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for k, v in variants.items():
            wall, c = run(v)
            times[k].append(wall)
            cpu[k].append(c)
    paired = {f"every_{e}": run_paired(e) for e in (1, 10)} if args.paired > 0 else {}
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    res = {
        "machine": platform.platform(), "model": args.model, "torch_threads": torch.get_num_threads(),
        "steps": args.steps,
        "batch": args.batch, "seconds": med,
        "ratio_every_1": med["every_1"] / med["plain"], "ratio_every_10": med["every_10"] / med["plain"],
        "ratio_read_once": med["read_once"] / med["plain"],
        "ratio_every_1_torch_ops": med["every_1_torch_ops"] / med["plain"],
        "kernels": initlab.diagnostics._kernels.load() is not None,
        "replayed_steps": {str(k): v for k, v in replayed.items()},  # recorded steps replayed from the plan
        # the same ratios in CPU time (this process's; steadier than wall time when other processes share the
        # cores, as the time the process waits for a core is left out, though not that of a shared cache)
        "cpu_seconds": cmed, "cpu_ratio_every_1": cmed["every_1"] / cmed["plain"],
        "cpu_ratio_every_10": cmed["every_10"] / cmed["plain"], "cpu_ratio_read_once": cmed["read_once"] / cmed["plain"],
        "cpu_ratio_every_1_torch_ops": cmed["every_1_torch_ops"] / cmed["plain"],
        "paired": paired,
        "targets": {"every_1": 1.3, "every_10": 1.05},
    }
    tgt = args.model == "mlp"  # the targets are for the MLP
    print(f"{args.model}: plain {med['plain']:.3f} s for {args.steps} steps; watch every step "
          f"{res['ratio_every_1']:.2f}x{' (target <= 1.3)' if tgt else ''}; every 10 steps "
          f"{res['ratio_every_10']:.3f}x{' (target <= 1.05)' if tgt else ''}; the floor (each tensor read once, "
          f"no statistic) {res['ratio_read_once']:.2f}x; every step by torch operations (no kernels) "
          f"{res['ratio_every_1_torch_ops']:.2f}x")
    print(f"  in CPU time: every step {res['cpu_ratio_every_1']:.2f}x; every 10 steps {res['cpu_ratio_every_10']:.3f}x; "
          f"floor {res['cpu_ratio_read_once']:.2f}x; torch operations {res['cpu_ratio_every_1_torch_ops']:.2f}x")
    if paired:
        pe1, pe10 = paired["every_1"], paired["every_10"]
        print(f"  paired (a watched and a plain copy, 10 steps of each in turn, {pe1['steps']} steps each): every step "
              f"{pe1['ratio']:.3f}x (95% {pe1['ci95'][0]:.3f}-{pe1['ci95'][1]:.3f}); every 10 steps {pe10['ratio']:.3f}x "
              f"(95% {pe10['ci95'][0]:.3f}-{pe10['ci95'][1]:.3f}); parameters bitwise equal")
    out = Path(__file__).parent / "results" / ("watch_speed.json" if args.model == "mlp" else "watch_speed_cnn.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
