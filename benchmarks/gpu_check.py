"""Device check (run on a CUDA machine): the torch probe, LSUV, apply and watch on CUDA models.

For a zoo of models on ``cuda``: the probe runs, its statistics equal the same probe on a CPU copy
of the model (rel 1e-3: different kernels), parameters, buffers, training flags and the CUDA and
CPU RNG states are bitwise unchanged; ``initlab.fix`` and ``initlab.apply`` change only the
weights; ``initlab.watch`` leaves a CUDA training bitwise the same; targets ``y`` on the device
are read as NumPy ones; and, when timm or transformers are installed, a ResNet-18, a ViT-tiny and a
small BERT (random init) are probed and watched the same way. Prints one line per check and exits
1 if any fails. Run: python benchmarks/gpu_check.py [--device cpu]
"""

from __future__ import annotations

import copy
import sys
import time

import numpy as np
from typing import Any


def main() -> int:
    import torch

    import initlab

    # --device cpu: the same checks on the CPU (a dry run of this script where no GPU is)
    dev = torch.device(sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv else "cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device (--device cpu runs the same checks on the CPU)")
        return 2
    print("device:", torch.cuda.get_device_name(0) if dev.type == "cuda" else dev, "torch", torch.__version__)
    torch.manual_seed(0)
    nn = torch.nn
    zoo = {
        "mlp": (nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10)),
                lambda: np.random.default_rng(0).standard_normal((128, 64)).astype(np.float32)),
        "cnn_bn": (nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)),
                   lambda: np.random.default_rng(0).standard_normal((32, 3, 16, 16)).astype(np.float32)),
        "transformer": (nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, batch_first=True), 2),
                        lambda: np.random.default_rng(0).standard_normal((8, 16, 64)).astype(np.float32)),
        "lstm": (nn.LSTM(32, 64, num_layers=2, batch_first=True),
                 lambda: np.random.default_rng(0).standard_normal((8, 12, 32)).astype(np.float32)),
    }
    failures = 0

    def check(name: str, ok: bool, detail: str = "") -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")

    def state(m: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[bool], torch.Tensor, list[torch.Tensor]]:
        return ({k: v.detach().clone() for k, v in m.state_dict().items()}, [x.training for x in m.modules()],
                torch.get_rng_state().clone(), [s.clone() for s in torch.cuda.get_rng_state_all()])

    def same(a: Any, b: Any) -> bool:
        return (a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0]) and a[1] == b[1]
                and torch.equal(a[2], b[2]) and all(torch.equal(x, y) for x, y in zip(a[3], b[3])))

    for name, (model, make_x) in zoo.items():
        cpu_model = copy.deepcopy(model)
        model = model.to(dev)
        x = make_x()
        s0 = state(model)
        t0 = time.perf_counter()
        res = initlab.probe(model, x, rng=0)
        dt = time.perf_counter() - t0
        check(f"{name}: probe on {dev.type} leaves the model and RNG bitwise unchanged", same(s0, state(model)),
              f"{len(res.layers)} rows in {dt:.2f} s, unexamined {len(res.unexamined)}")
        ref = initlab.probe(cpu_model, x, rng=0)
        rel = max((abs(a.std - b.std) / max(abs(b.std), 1e-12) for a, b in zip(res.layers, ref.layers)), default=0.0)
        gr = [abs(a.grad_rms - b.grad_rms) / max(abs(b.grad_rms), 1e-12) for a, b in zip(res.layers, ref.layers)
              if a.grad_rms is not None and b.grad_rms is not None]
        check(f"{name}: cuda statistics equal the cpu probe's",
              [a.name for a in res.layers] == [b.name for b in ref.layers] and rel < 1e-3 and max(gr, default=0) < 1e-3,
              f"max rel diff std {rel:.1e}, grad rms {max(gr, default=0):.1e}")
        if name in ("mlp", "cnn_bn", "transformer"):
            s1 = state(model)
            initlab.fix(model, x)
            s2 = state(model)
            bufs_same = all(torch.equal(s1[0][k], s2[0][k]) for k in s1[0] if "running" in k or "num_batches" in k)
            check(f"{name}: fix (LSUV) on cuda keeps buffers, flags and RNG", bufs_same and s1[1] == s2[1]
                  and torch.equal(s1[2], s2[2]) and all(torch.equal(a, b) for a, b in zip(s1[3], s2[3])))
            initlab.apply(model, "kaiming_normal(nonlinearity=relu)", rng=0)
            check(f"{name}: apply on cuda writes on the device", all(p.device.type == dev.type for p in model.parameters()))

    # watch: a CUDA training loop with and without it
    def train(watched: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(1)
        m = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 10)).to(dev)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        xb = torch.randn(512, 64, device=dev)
        yb = torch.randint(0, 10, (512,), device=dev)

        def loop(w: Any = None) -> None:
            for s in range(20):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(m(xb[s % 8 * 64:(s % 8 + 1) * 64]), yb[s % 8 * 64:(s % 8 + 1) * 64])
                loss.backward()
                opt.step()
                if w is not None:
                    w.log_loss(loss)

        if watched:
            with initlab.watch(m, every=3) as w:
                loop(w)
            check("watch on cuda records steps", [r.step for r in w.steps] == list(range(0, 20, 3)))
        else:
            loop()
        return {k: v.detach().clone() for k, v in m.state_dict().items()}

    a, b = train(False), train(True)
    check("watch on cuda: training bitwise the same with and without it", all(torch.equal(a[k], b[k]) for k in a))

    # targets on the device: the probe reads y as it reads x
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 3)).to(dev)
    xn = np.random.default_rng(1).standard_normal((64, 16)).astype(np.float32)
    for loss, yn in (("mse", np.random.default_rng(2).standard_normal((64, 3)).astype(np.float32)),
                     ("ce", np.arange(64) % 3)):
        r_np = initlab.probe(m, xn, y=yn, loss=loss, rng=0)
        r_dev = initlab.probe(m, torch.from_numpy(xn).to(dev), y=torch.from_numpy(yn).to(dev), loss=loss, rng=0)
        check(f"probe with {loss} targets on cuda = the same targets in NumPy",
              [r.grad_std for r in r_np.layers] == [r.grad_std for r in r_dev.layers])

    # models nobody wrote for these checks (timm, transformers: random init, nothing downloaded),
    # when installed. cuDNN's and SDPA's default backward kernels are not deterministic (two plain
    # runs differ), so the with/without comparison runs with torch's deterministic algorithms.
    for name, make, shape, kind in _real_models():
        torch.manual_seed(0)
        mm = make().to(dev).train()
        g = torch.Generator().manual_seed(1)
        xb = (torch.randn(*shape, generator=g) if kind == "image" else torch.randint(0, 1000, shape, generator=g)).to(dev)
        yb = torch.randint(0, 10, (shape[0],), generator=g).to(dev)
        s0 = state(mm)
        res = initlab.probe(mm, xb, y=yb if kind == "image" else None, loss="ce" if kind == "image" else "sum", rng=0)
        check(f"{name}: probe on {dev.type} leaves the model and RNG bitwise unchanged", same(s0, state(mm)),
              f"{len(res.layers)} rows, all finite {all(np.isfinite(r.std) for r in res.layers)}")
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        torch.use_deterministic_algorithms(True)
        try:
            runs = []
            for every in (None, None, 1, 2):
                torch.manual_seed(0)
                torch.cuda.manual_seed(0)
                mm = make().to(dev).train()
                opt = torch.optim.AdamW(mm.parameters(), lr=1e-3)
                w = initlab.watch(mm, every=every) if every else None
                with w if w is not None else _nothing():
                    for _ in range(4):
                        opt.zero_grad()
                        out = mm(xb) if kind == "image" else mm(input_ids=xb).logits
                        lo = torch.nn.functional.cross_entropy(out, yb % out.shape[-1])
                        lo.backward()
                        opt.step()
                        if w is not None:
                            w.log_loss(lo)
                runs.append(state(mm))
            check(f"{name}: watch every=1 and every=2 on {dev.type} leave the training bitwise the same "
                  "(deterministic algorithms)", same(runs[0], runs[1]) and same(runs[0], runs[2]) and same(runs[0], runs[3]),
                  f"{len(w.steps)} recorded steps, {len(w.steps[0].layers)} rows")
        finally:
            torch.use_deterministic_algorithms(False)
            torch.backends.cudnn.deterministic = False

    # watch statistics on cuda (torch ops on the device, one transfer per step) = the CPU probe's
    torch.manual_seed(2)
    m = nn.Sequential(nn.Linear(32, 128), nn.Tanh(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 4))
    rng = np.random.default_rng(0)
    xn = rng.standard_normal((256, 32)).astype(np.float32)
    yn = rng.standard_normal((256, 4)).astype(np.float32)
    ref = initlab.probe(copy.deepcopy(m), xn, y=yn, loss="mse", rng=0)
    m = m.to(dev)
    opt = torch.optim.SGD(m.parameters(), lr=0.0)
    with initlab.watch(m, every=1) as w:
        opt.zero_grad()
        out = m(torch.from_numpy(xn).to(dev))
        loss = 0.5 * ((out - torch.from_numpy(yn).to(dev)) ** 2).sum(dim=1).mean()
        loss.backward()
        opt.step()
        w.log_loss(loss)
    keys = ("mean", "std", "sq_mean", "chan_var", "preact_std", "saturated", "dead", "cosine", "weight_std",
            "grad_std", "grad_rms", "grad_weight_std", "grad_weight_ratio")
    worst = 0.0
    for sa, sb in zip(w.steps[0].layers, ref.layers):
        for k in keys:
            va, vb = getattr(sa, k), getattr(sb, k)
            if va is not None and vb is not None:
                worst = max(worst, abs(va - vb) / max(abs(vb), 1e-3))
    check(f"watch on cuda: step-0 statistics = the CPU probe's (worst rel diff {worst:.1e} <= 1e-3)",
          [s.name for s in w.steps[0].layers] == [s.name for s in ref.layers] and worst <= 1e-3)
    print(f"{failures} failed")
    return 1 if failures else 0


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _real_models() -> list[tuple[str, Any, tuple[int, ...], str]]:
    """(name, factory, input shape, "image" | "tokens") of the timm and transformers models that
    are installed; none is required."""
    out: list[tuple[str, Any, tuple[int, ...], str]] = []
    try:
        import timm

        out.append(("timm resnet18", lambda: timm.create_model("resnet18", pretrained=False, num_classes=10),
                    (8, 3, 64, 64), "image"))
        out.append(("timm vit_tiny", lambda: timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10,
                                                              img_size=64), (8, 3, 64, 64), "image"))
    except ImportError:
        print("timm not installed: its models not checked")
    try:
        import transformers

        def bert() -> Any:
            cfg = transformers.BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=256)
            return transformers.BertForSequenceClassification(cfg)

        out.append(("transformers BERT 2x128", bert, (8, 32), "tokens"))
    except ImportError:
        print("transformers not installed: its models not checked")
    return out


if __name__ == "__main__":
    sys.exit(main())
