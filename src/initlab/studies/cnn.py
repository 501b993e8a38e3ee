"""The CNN study (seed 000's title, "CNN weight parameter initialization"): small convolutional
networks on the shipped 8×8 digits and on MNIST-1D, initialised eight ways, and a deep vanilla
tanh CNN at the edge of chaos with delta-orthogonal versus Gaussian kernels.

1. **Digits CNN** (conv 3×3 16 relu, conv 3×3 32 relu, max-pool 2, dense 10; SGD with momentum)
   and the **MNIST-1D CNN of the MNIST-1D paper** (Greydanus 2020, "Scaling down deep learning";
   its ``ConvBase``: conv1d 5 stride 2 padding 1, then two conv1d 3 stride 2 padding 1, 25
   channels, relu, dense 125 → 10; Adam, lr 0.01, batch 100, on the published 4000/1000 split,
   ``mnist1d(seed=42)``) initialised with zeros, N(0, 0.01²), N(0, 1), Xavier (Glorot & Bengio
   2010), He with fan_in and with fan_out (He et al. 2015), orthogonal (Saxe et al. 2014; gain √2
   for ReLU) and delta-orthogonal (Xiao et al. 2018; gain √2; the dense read-out gets orthogonal).
   For each: every layer's output std and histogram at initialisation with the mean-field
   prediction beside it (:func:`initlab.theory.predict` over the same layer list), the probe's
   findings, then training curves and test accuracy. The He (fan_in) MNIST-1D net then trains on
   to the paper's budget (``mnist1d_long_epochs`` × 40 steps; 150 epochs = 6000 steps, the
   budget of the paper's benchmark notebook) and its test accuracy is stated beside the paper's
   (94% in the paper's table, :data:`MNIST1D_PAPER_CNN_ACCURACY`). What differs from the paper:
   the init (PyTorch's default there), the batch order (shuffled every epoch here, sequential
   there) and the engine.
2. **Deep vanilla CNN**: ``depth`` tanh convolutions of ``channels`` channels, 3×3, circular
   padding, then global average pooling and a dense read-out, at the edge of chaos
   (σ_w² = σ_w²*(σ_b²), :func:`initlab.theory.critical_sigma_w2`), with Gaussian kernels
   N(0, σ_w²/fan_in) or delta-orthogonal kernels of gain σ_w (σ_w·√(out/in) in the first layer;
   Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018, "Dynamical Isometry and a Mean Field
   Theory of CNNs": orthogonal kernels keep a deep CNN trainable where Gaussian ones stall). Both
   have the same σ_w², so the mean-field forward prediction is the same. Measured: the
   pre-activation second moment per layer against the prediction, the gradient rms per layer, the
   Jacobian ∂h^ℓ/∂h^1 from the first conv layer's output to every depth ℓ (forward differences:
   the spread Var(s²)/E[s²]² of its squared singular values, which dynamical isometry keeps
   small; :func:`_jacobian_spread`, median over ``deep_nets`` nets), the per-layer std
   during training (:class:`initlab.diagnostics.Probe`) and the training loss. The page states
   what was measured, whichever way it came out. The report does not train the deep CNN
   (``deep_steps=0``): 300 steps of both nets cost about 80 s on one core, more than the whole
   report's budget; ``CNNConfig.make(deep_steps=300)`` trains them (the README gives what that
   measured).

Registered as ``initlab.studies.get("cnn")`` (``CNNConfig.make(quick=True)`` for the quick run).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from initlab._rng import as_generator
from initlab.studies._common import probe_run, ridge_layer, sig, single_thread, sub_seed, verdict_fixes, verdict_messages
from initlab.studies._result import FigureSpec, StudyResult, Table

__all__ = ["CNNConfig", "cnn_study", "cnn", "INITS", "MNIST1D_PAPER_CNN_ACCURACY", "MNIST1D_NOTEBOOK"]

TITLE = "CNNs: digits, MNIST-1D, a deep tanh CNN"

#: the CNN test accuracy in the MNIST-1D paper's results table (Greydanus 2020, "Scaling down deep
#: learning"; the repository's README table: logistic 32%, MLP 68%, CNN 94%, GRU 91%)
MNIST1D_PAPER_CNN_ACCURACY = 0.94
#: the paper repository's benchmark notebook (notebooks/mnist1d-classification.ipynb): its ConvBase
#: with PyTorch's default init, Adam lr 0.01, batch 100, printed test accuracy after 6000 steps
MNIST1D_NOTEBOOK = {"steps": 6000, "test_accuracy": 0.923}

_R2 = math.sqrt(2.0)
#: (key, label, conv spec, dense spec)
INITS: list[tuple[str, str, str, str]] = [
    ("zeros", "zeros", "zeros", "zeros"),
    ("small", "N(0, 0.01²)", "normal(std=0.01)", "normal(std=0.01)"),
    ("big", "N(0, 1)", "normal(std=1)", "normal(std=1)"),
    ("xavier", "Xavier normal", "xavier_normal", "xavier_normal"),
    ("he_in", "He normal, fan_in", "kaiming_normal(mode=fan_in)", "kaiming_normal(mode=fan_in)"),
    ("he_out", "He normal, fan_out", "kaiming_normal(mode=fan_out)", "kaiming_normal(mode=fan_out)"),
    ("orthogonal", "orthogonal (gain √2)", f"orthogonal(gain={_R2!r})", f"orthogonal(gain={_R2!r})"),
    ("delta_orth", "delta-orthogonal (gain √2)", f"delta_orthogonal(gain={_R2!r})", f"orthogonal(gain={_R2!r})"),
]
SHORT = {"zeros": "zeros", "small": "N(0, 0.01²)", "big": "N(0, 1)", "xavier": "Xavier", "he_in": "He (fan_in)",
         "he_out": "He (fan_out)", "orthogonal": "orthogonal", "delta_orth": "delta-orthogonal"}
#: the init trained on to the paper's budget
LONG_INIT = "he_in"


@dataclass(frozen=True)
class CNNConfig:
    """Configuration of :func:`cnn_study`.

    ``digits_*``, ``batch_size``, ``lr``, ``momentum``: the digits CNN (SGD with momentum).
    ``mnist1d_*``: the paper's CNN (Adam); every init trains ``mnist1d_epochs`` epochs, He (fan_in)
    goes on to ``mnist1d_long_epochs`` (40 steps each). ``mnist1d_data_seed=42`` is the published
    dataset. ``deep_*``: the deep tanh CNN (``deep_steps`` SGD steps with momentum 0.9, batch
    ``batch_size``; the Jacobian at one input, along every coordinate or ``deep_jacobian_directions`` random directions).
    """

    digits_epochs: int = 3
    batch_size: int = 64
    lr: float = 0.02
    momentum: float = 0.9
    mnist1d_epochs: int = 6
    mnist1d_long_epochs: int = 150
    mnist1d_batch_size: int = 100
    mnist1d_lr: float = 0.01
    mnist1d_channels: int = 25
    mnist1d_data_seed: int = 42
    n_probe: int = 512
    bins: int = 30
    deep_depth: int = 32
    deep_channels: int = 16
    deep_sigma_b2: float = 0.05
    deep_steps: int = 0
    deep_lr: float = 0.01
    deep_every: int = 25
    deep_jacobian_directions: int | None = 256
    deep_nets: int = 4
    seed: int = 0
    quick: bool = False

    @classmethod
    def make(cls, *, quick: bool = False, seed: int = 0, **overrides: Any) -> "CNNConfig":
        """The default config, or the quick one (the same networks and data; 2 epochs each, He
        trained to 400 MNIST-1D steps instead of 6000, the deep CNN's Jacobian of one net from 64
        random directions, 64 probe inputs, no deep training), so that ``initlab report --quick``
        stays quick on two cores."""
        base: dict[str, Any] = {"seed": seed, "quick": quick}
        if quick:
            base.update(digits_epochs=2, mnist1d_epochs=2, mnist1d_long_epochs=10, deep_nets=1,
                        deep_jacobian_directions=64, n_probe=64)
        base.update(overrides)
        return cls(**base)


def _digits_net(conv: str, dense: str, rng: Any) -> Any:
    from initlab.nn import Conv2d, Dense, Flatten, MaxPool2d, Network

    return Network([Conv2d(1, 16, 3, padding=1, activation="relu", init=conv),
                    Conv2d(16, 32, 3, padding=1, activation="relu", init=conv), MaxPool2d(2), Flatten(),
                    Dense(32 * 4 * 4, 10, init=dense)], input_shape=(1, 8, 8), rng=rng)


def _mnist1d_net(conv: str, dense: str, rng: Any, channels: int = 25) -> Any:
    """The MNIST-1D paper's ConvBase: length 40 → 19 → 10 → 5, then dense 5·channels → 10."""
    from initlab.nn import Conv1d, Dense, Flatten, Network

    C = channels
    return Network([Conv1d(1, C, 5, stride=2, padding=1, activation="relu", init=conv),
                    Conv1d(C, C, 3, stride=2, padding=1, activation="relu", init=conv),
                    Conv1d(C, C, 3, stride=2, padding=1, activation="relu", init=conv), Flatten(),
                    Dense(C * 5, 10, init=dense)], input_shape=(1, 40), rng=rng)


def _deep_net(kind: str, cfg: CNNConfig, sw2: float, rng: Any) -> Any:
    from initlab.nn import Conv2d, Dense, GlobalAvgPool, Network

    C, layers = cfg.deep_channels, []
    bias = f"normal(std={math.sqrt(cfg.deep_sigma_b2)!r})"
    for i in range(cfg.deep_depth):
        c_in = 1 if i == 0 else C
        if kind == "gaussian":
            spec = f"normal(std={math.sqrt(sw2 / (c_in * 9))!r})"
        else:
            # out > in (the first layer): orthonormal columns give Var(W)·fan_in = gain²·in/out, so
            # the gain is raised by √(out/in) to give both families the same σ_w²
            spec = f"delta_orthogonal(gain={math.sqrt(sw2 * C / c_in)!r})"
        layers.append(Conv2d(c_in, C, 3, padding=1, padding_mode="circular", activation="tanh", init=spec, bias_init=bias))
    layers += [GlobalAvgPool(), Dense(C, 10, init="xavier_normal")]
    return Network(layers, input_shape=(1, 8, 8), rng=rng)


def _layer_rows(net: Any, x: np.ndarray, bins: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per weight layer: measured output std and the prediction; one ridge per layer."""
    from initlab import theory
    from initlab.diagnostics._probe_numpy import forward_trace_stats

    _, trace = net.forward(x, capture=True)
    stats, _ = forward_trace_stats(net, trace)  # the probe's statistics (one source of truth)
    try:
        pred = theory.predict(net, input_var=float(np.mean(np.square(x, dtype=np.float64))),
                              input_mean=float(np.mean(x, dtype=np.float64)))
        p_std: list[float | None] = [r.act_std if math.isfinite(r.act_std) else None for r in pred.layers]
    except (ValueError, TypeError):
        p_std = [None] * len(trace)
    rows, ridges = [], []
    for i, (layer, t) in enumerate(zip(net.layers, trace)):
        if not layer.params:
            continue
        a = np.asarray(t.act, dtype=np.float64)
        std = float(stats[i].std)
        rows.append({"layer": i + 1, "kind": layer.kind, "std": std, "predicted_std": p_std[i]})
        if layer.kind != "dense":  # the conv layers' histograms (the logits' wide range would squeeze them)
            ridges.append(ridge_layer(a, f"{layer.kind} {i + 1}", bins=bins, value_range=None,
                                      note=f"std {sig(std, 2)}" + (f" ({sig(p_std[i], 2)})" if p_std[i] is not None else "")))
    return rows, ridges


def _train_all(make: Any, split: Any, shape: tuple[int, ...], cfg: CNNConfig, seed_key: int, *, epochs: int,
               long_epochs: int | None, fit_kw: dict[str, Any], with_probe: bool) -> dict[str, Any]:
    """Every init on one dataset: the per-layer table at init, the probe, then training. The
    :data:`LONG_INIT` run trains ``long_epochs`` epochs when given (its first ``epochs`` are the
    same run as a short one: same data order, no schedule)."""
    X = np.ascontiguousarray(split.X_train.reshape(-1, *shape), dtype=np.float32)
    Xt = np.ascontiguousarray(split.X_test.reshape(-1, *shape), dtype=np.float32)
    y, yt = split.y_train, split.y_test
    out: dict[str, Any] = {}
    for i, (key, label, conv, dense) in enumerate(INITS):
        net = make(conv, dense, as_generator(sub_seed(cfg.seed, seed_key, i)))
        rows, ridges = _layer_rows(net, X[: cfg.n_probe], cfg.bins)
        entry: dict[str, Any] = {"label": label, "conv_init": conv, "dense_init": dense, "layers": rows, "ridges": ridges}
        if with_probe:
            _, pres = probe_run(net, X[: cfg.n_probe], y[: cfg.n_probe], loss="ce", rng=sub_seed(cfg.seed, seed_key, 50 + i))
            entry["probe_findings"] = verdict_messages(pres)
            entry["fixes"] = verdict_fixes(pres)
        n_ep = long_epochs if (key == LONG_INIT and long_epochs and long_epochs > epochs) else epochs
        # the data order comes from the same stream for every init (sub_seed(seed, key, 99))
        hist = net.fit(X, y, epochs=n_ep, X_val=Xt, y_val=yt, val_every=1, progress=False,
                       rng=as_generator(sub_seed(cfg.seed, seed_key, 99)), **fit_kw)
        acc = list(hist.val_accuracy)
        entry.update({"epoch_loss": hist.epoch_loss[:epochs], "test_accuracy": acc[:epochs],
                      "final_test_accuracy": acc[epochs - 1] if len(acc) >= epochs else (acc[-1] if acc else None),
                      "diverged": hist.diverged, "seconds": hist.train_seconds})
        if n_ep > epochs:
            entry.update({"long_epochs": n_ep, "long_epoch_loss": hist.epoch_loss, "long_test_accuracy": acc,
                          "long_final_test_accuracy": acc[-1] if acc else None})
        out[key] = entry
    return out


def _jacobian_spread(net: Any, x: np.ndarray, conv_idx: list[int], directions: int | None = None,
                     rng: Any = None, eps: float = 1e-3) -> dict[str, list[float]]:
    """The Jacobian J_ℓ = ∂h^ℓ/∂h^1 from the first conv layer's output (n = C·H·W coordinates) to
    every conv layer ℓ, at one input ``x`` ``[1, ...]``, by forward differences pushed through the
    layers in one batch. Per layer: E[s²] = tr(M)/n and the spread Var(s²)/E[s²]² = n·tr(M²)/tr(M)² − 1
    of the squared singular values s² (the eigenvalues of M = JᵀJ); 0 means an isometry up to scale
    (Pennington, Schoenholz & Ganguli 2017; Xiao et al. 2018). The first entry (ℓ = 1) is the identity.

    ``directions=None``: every coordinate direction (exact). ``directions=k``: k Gaussian directions v
    from ``rng`` (Hutchinson: tr(M) = E‖Jv‖², tr(M²) = Var(‖Jv‖²)/2), k/n of the cost; with k = 128
    the spread at depth 32 came within about 20% (one sd) of the exact value."""
    first = conv_idx[0]
    h = np.asarray(x, dtype=np.float32)
    for layer in net.layers[: first + 1]:
        h, _ = layer.forward(h)
    n = int(h.size)
    if directions is None:
        V = np.eye(n, dtype=np.float32)
    else:
        V = as_generator(rng).standard_normal((directions, n), dtype=np.float32)
    H = np.concatenate([h, h + np.float32(eps) * V.reshape(-1, *h.shape[1:])])
    mean_s2, spread = [1.0], [0.0]
    for li in range(first + 1, conv_idx[-1] + 1):
        H, _ = net.layers[li].forward(H)
        if li in conv_idx:
            JV = (H[1:].reshape(len(V), -1).astype(np.float64) - H[0].reshape(1, -1)) / eps  # row k: J v_k
            if directions is None:
                M = JV @ JV.T
                tr, tr2 = float(np.trace(M)), float(np.sum(M * M))
            else:
                sq = np.sum(JV * JV, axis=1)
                tr, tr2 = float(sq.mean()), float(sq.var(ddof=1) / 2.0)
            mean_s2.append(tr / n)
            spread.append(n * tr2 / (tr * tr) - 1.0 if tr > 0 else math.nan)
    return {"mean_s2": mean_s2, "spread": spread}


def _deep(cfg: CNNConfig, split: Any) -> dict[str, Any]:
    from initlab import theory
    from initlab.diagnostics import Probe
    from initlab.diagnostics._probe_numpy import backward_trace_stats, forward_trace_stats
    from initlab.nn.callbacks import STOP, Callback

    sw2 = float(theory.critical_sigma_w2("tanh", cfg.deep_sigma_b2))
    X = np.ascontiguousarray(split.X_train.reshape(-1, 1, 8, 8), dtype=np.float32)
    # centre and scale the pixels so the input's second moment is the fixed point's scale
    X = ((X - X.mean()) / X.std()).astype(np.float32)
    y = split.y_train
    out: dict[str, Any] = {"sigma_w2": sw2, "sigma_b2": cfg.deep_sigma_b2}

    class _Budget(Callback):
        def on_step(self, net: Any, step: int, loss: float, trace: Any) -> Any:
            return STOP if step >= cfg.deep_steps else None

    for j, kind in enumerate(("gaussian", "delta_orthogonal")):
        net = _deep_net(kind, cfg, sw2, as_generator(sub_seed(cfg.seed, 30, j)))
        pred = theory.predict(net, input_var=1.0)
        xb, yb = X[: cfg.n_probe], y[: cfg.n_probe]
        loss0, trace = net.gradients(xb, yb, loss="ce")
        conv_idx = [i for i, la in enumerate(net.layers) if la.kind == "conv2d"]
        # the probe's statistics of the gradients' trace (as they are: scale 1)
        st, samples = forward_trace_stats(net, trace)
        backward_trace_stats(net, trace, st, samples)
        convs = [st[i] for i in conv_idx]
        q_meas = [float(s.preact_std) ** 2 + float(s.preact_mean) ** 2 for s in convs]
        g_rms = [float(s.grad_rms) for s in convs]
        jacs = [_jacobian_spread(net if k == 0 else _deep_net(kind, cfg, sw2, as_generator(sub_seed(cfg.seed, 33, j, k))),
                                 X[-1:], conv_idx, cfg.deep_jacobian_directions, sub_seed(cfg.seed, 32, j, k))
                for k in range(cfg.deep_nets)]
        probe = Probe(every=cfg.deep_every)
        steps: list[float] = []
        diverged: Any = False
        if cfg.deep_steps > 0:
            epochs = math.ceil(cfg.deep_steps / math.ceil(len(X) / cfg.batch_size))
            hist = net.fit(X, y, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.deep_lr, optimizer="momentum",
                           momentum=0.9, progress=False, rng=as_generator(sub_seed(cfg.seed, 31)),
                           callbacks=[probe, _Budget()])
            steps, diverged = hist.step_loss[: cfg.deep_steps], hist.diverged
        tail = steps[-max(1, len(steps) // 10):]
        std_series = probe.series("std")[: cfg.deep_depth] if probe.steps else []
        out[kind] = {
            "predicted_preact_var": [r.preact_var for r in pred.layers[: cfg.deep_depth]],
            "measured_preact_sq": q_meas,
            "grad_rms": g_rms,
            "grad_rms_first_over_last": g_rms[0] / g_rms[-1] if g_rms[-1] > 0 else None,
            "jacobian_mean_s2": [float(np.median(v)) for v in zip(*(jc["mean_s2"] for jc in jacs))],
            "jacobian_spread": [float(np.median(v)) for v in zip(*(jc["spread"] for jc in jacs))],
            "jacobian_spread_per_net": [jc["spread"] for jc in jacs],
            "initial_loss": float(loss0),
            "step_loss": steps,
            "final_loss": float(np.mean(tail)) if tail else None,
            "final_train_accuracy": float(net.evaluate(xb, yb, "ce")["accuracy"]),
            "probe_steps": probe.steps,
            "probe_act_std_first": std_series[0].tolist() if len(std_series) else [],
            "probe_act_std_last": std_series[-1].tolist() if len(std_series) else [],
            "diverged": diverged,
        }
    return out


def _acc(v: float | None) -> str:
    return "—" if v is None else f"{v:.1%}"


def _cnn_study(config: CNNConfig | None = None) -> StudyResult:
    from initlab.data import digits, mnist1d

    cfg = config or CNNConfig.make()
    t0 = time.perf_counter()
    dg = digits(rng=as_generator(sub_seed(cfg.seed, 10)))
    m1 = mnist1d(seed=cfg.mnist1d_data_seed)
    t_data = time.perf_counter()
    res_d = _train_all(_digits_net, dg, (1, 8, 8), cfg, 20, epochs=cfg.digits_epochs, long_epochs=None, with_probe=True,
                       fit_kw={"batch_size": cfg.batch_size, "lr": cfg.lr, "optimizer": "momentum", "momentum": cfg.momentum})
    t_digits = time.perf_counter()
    res_m = _train_all(lambda c, d, r: _mnist1d_net(c, d, r, cfg.mnist1d_channels), m1, (1, 40), cfg, 21,
                       epochs=cfg.mnist1d_epochs, long_epochs=cfg.mnist1d_long_epochs, with_probe=False,
                       fit_kw={"batch_size": cfg.mnist1d_batch_size, "lr": cfg.mnist1d_lr, "optimizer": "adam"})
    t_mnist1d = time.perf_counter()
    deep = _deep(cfg, dg)
    t_deep = time.perf_counter()
    long = res_m[LONG_INIT]
    steps_per_epoch = math.ceil(len(m1.X_train) / cfg.mnist1d_batch_size)
    long_steps = long.get("long_epochs", cfg.mnist1d_epochs) * steps_per_epoch
    long_acc = long.get("long_final_test_accuracy", long["final_test_accuracy"])

    tables: list[Table] = []
    rows = []
    for ds, res in (("digits", res_d), ("MNIST-1D", res_m)):
        for r in res.values():
            for lr_ in r["layers"]:
                p = lr_["predicted_std"]
                rows.append([ds, r["label"], f"{lr_['kind']} {lr_['layer']}", lr_["std"], p,
                             (lr_["std"] / p - 1.0) if p else None])
    tables.append(Table("init", "Layer std vs theory at init",
                        ["data", "init", "layer", "std", "predicted std", "std / predicted − 1"], rows,
                        formats=[None, None, None, ".4g", ".4g", "+.1%"]))

    def last(v: list[float]) -> float | None:
        return v[-1] if v else None

    tables.append(Table("train", "Test accuracy",
                        ["init", f"digits: loss after {cfg.digits_epochs} epochs", "digits: test accuracy",
                         f"MNIST-1D: loss after {cfg.mnist1d_epochs} epochs", "MNIST-1D: test accuracy"],
                        [[rd["label"], last(rd["epoch_loss"]), rd["final_test_accuracy"], last(rm["epoch_loss"]),
                          rm["final_test_accuracy"]] for rd, rm in zip(res_d.values(), res_m.values())],
                        formats=[None, ".4f", ".1%", ".4f", ".1%"]))
    tables.append(Table("mnist1d_paper", "MNIST-1D against the paper",
                        ["run", "init", "batches", "Adam steps (batch 100, lr 0.01)", "test accuracy"],
                        [["initlab", long["label"], "shuffled every epoch", long_steps, long_acc],
                         ["paper, results table", "PyTorch default", "in order", None, MNIST1D_PAPER_CNN_ACCURACY],
                         ["paper, benchmark notebook", "PyTorch default", "in order", MNIST1D_NOTEBOOK["steps"],
                          MNIST1D_NOTEBOOK["test_accuracy"]]],
                        formats=[None, None, None, None, ".1%"]))
    tables.append(Table("probe", "The probe's findings (digits CNN)", ["init", "finding (verdict)"],
                        [[r["label"], r["probe_findings"]] for r in res_d.values()]))
    g, d = deep["gaussian"], deep["delta_orthogonal"]
    L = cfg.deep_depth
    mid = L // 2
    dirs = "all" if cfg.deep_jacobian_directions is None else str(cfg.deep_jacobian_directions)
    cols = ["kernels", "σ_w²", "σ_b²", "channels", "Jacobian: directions", "Jacobian: nets (median)",
            "grad rms layer 1 / layer L", f"Jacobian spread, layer {mid}", f"Jacobian spread, layer {L}", f"layer {L}, per net"]
    fmts: list[str | None] = [None, ".4f", None, None, None, None, ".3g", ".3g", ".3g", None]
    rows_deep = [[k, deep["sigma_w2"], cfg.deep_sigma_b2, cfg.deep_channels, dirs, cfg.deep_nets, r["grad_rms_first_over_last"],
                  r["jacobian_spread"][mid - 1], r["jacobian_spread"][-1],
                  ", ".join(sig(v[-1]) for v in r["jacobian_spread_per_net"])]
                 for k, r in (("Gaussian", g), ("delta-orthogonal", d))]
    if cfg.deep_steps > 0:
        cols += ["initial loss", f"loss, last steps of {cfg.deep_steps}", "train accuracy"]
        fmts += [".4f", ".4f", ".1%"]
        for row, r in zip(rows_deep, (g, d)):
            row += [r["initial_loss"], r["final_loss"], r["final_train_accuracy"]]
    tables.append(Table("deep", f"{L}-layer tanh CNN", cols, rows_deep, formats=fmts))

    labels = [r["label"] for r in res_d.values()]
    spe_m = steps_per_epoch
    depth_x = list(range(1, L + 1))
    long_curve = long.get("long_test_accuracy", long["test_accuracy"])
    headline = FigureSpec("overview", "Test accuracy; deep-CNN Jacobian", "curves", {"panels": [
        {"title": "digits CNN (SGD)", "xlabel": "epoch", "ylabel": "test accuracy", "legend": "center right",
         "series": [{"label": r["label"], "x": list(range(1, len(r["test_accuracy"]) + 1)), "y": r["test_accuracy"],
                     "color_index": i} for i, r in enumerate(res_d.values())]},
        {"title": "MNIST-1D CNN (Adam)", "xlabel": "epoch", "ylabel": "test accuracy",
         "series": [{"label": "", "x": list(range(1, len(r["test_accuracy"]) + 1)), "y": r["test_accuracy"],
                     "color_index": i} for i, r in enumerate(res_m.values())]},
        {"title": f"MNIST-1D CNN, {long['label']}", "xlabel": "Adam step", "ylabel": "test accuracy", "legend": "lower right",
         "series": [{"label": "initlab", "x": [(k + 1) * spe_m for k in range(len(long_curve))], "y": long_curve,
                     "color_index": labels.index(long["label"])},
                    {"label": f"paper: {MNIST1D_PAPER_CNN_ACCURACY:.0%}", "x": [spe_m, max(long_steps, 2 * spe_m)],
                     "y": [MNIST1D_PAPER_CNN_ACCURACY] * 2, "style": "dashed", "color": "#000000"}]},
        {"title": f"{L}-layer tanh CNN: Jacobian spread", "xlabel": "depth", "ylabel": "Var(s²)/E[s²]²",
         "legend": "upper left", "series": [
             {"label": "Gaussian", "x": depth_x[1:], "y": g["jacobian_spread"][1:], "color_index": 0},
             {"label": "delta-orthogonal", "x": depth_x[1:], "y": d["jacobian_spread"][1:], "color_index": 1}]},
    ], "ncols": 2})
    figures = [headline]
    ridge_panels = [{"title": f"{ds}: {SHORT[k].replace('delta-orthogonal', 'delta-orth.')}", "layers": r["ridges"]}
                    for ds, res in (("digits", res_d), ("MNIST-1D", res_m)) for k, r in res.items()]
    figures.append(FigureSpec("hist", "Layer outputs at init", "ridges", {"panels": ridge_panels, "ncols": 4},
                              caption="Conv layers; std measured (predicted)."))
    deep_panels = [
        {"title": "E[h²] per layer at init", "xlabel": "layer", "ylabel": "E[h²]", "series": [
            {"label": "Gaussian", "x": depth_x, "y": g["measured_preact_sq"], "style": "markers", "color_index": 0},
            {"label": "delta-orth.", "x": depth_x, "y": d["measured_preact_sq"], "style": "markers", "color_index": 1},
            {"label": "theory", "x": depth_x, "y": g["predicted_preact_var"], "style": "dashed", "color_index": 2}]},
        {"title": "gradient rms at init", "xlabel": "layer", "ylabel": "rms ∂L/∂h", "logy": True, "series": [
            {"label": "Gaussian", "x": depth_x, "y": g["grad_rms"], "color_index": 0},
            {"label": "delta-orth.", "x": depth_x, "y": d["grad_rms"], "color_index": 1}]}]
    if g["step_loss"] and d["step_loss"]:
        deep_panels.append({"title": "training loss", "xlabel": "step", "ylabel": "loss", "series": [
            {"label": "Gaussian", "x": list(range(1, len(g["step_loss"]) + 1)), "y": g["step_loss"], "color_index": 0},
            {"label": "delta-orth.", "x": list(range(1, len(d["step_loss"]) + 1)), "y": d["step_loss"], "color_index": 1}]})
    figures.append(FigureSpec("deep", f"{L}-layer tanh CNN" + ("" if cfg.deep_steps > 0 else " at init"), "curves",
                              {"panels": deep_panels, "ncols": 3},
                              caption="Dashed: theory."))

    def learners(res: dict[str, Any]) -> tuple[list[str], list[str]]:
        yes = [k for k, r in res.items() if (r["final_test_accuracy"] or 0.0) > 0.2]
        return yes, [k for k in res if k not in yes]

    d_yes, d_no = learners(res_d)
    m_yes, m_no = learners(res_m)
    gs, ds = g["jacobian_spread"][-1], d["jacobian_spread"][-1]
    gl, dl = g["final_loss"], d["final_loss"]
    trains = {k: r["final_loss"] is not None and r["final_loss"] < 0.9 * r["initial_loss"] for k, r in (("g", g), ("d", d))}
    groups = [("Xavier", ["xavier"]), ("He", ["he_in", "he_out"]), ("orthogonal", ["orthogonal"]),
              ("delta-orthogonal", ["delta_orth"])]
    both = [name for name, keys in groups if all(k in d_yes and k in m_yes for k in keys)]
    who = (", ".join(both[:-1]) + " and " + both[-1]) if len(both) > 1 else (both[0] if both else "no scaled init")
    mid = L // 2
    g_mid, d_mid = g["jacobian_spread"][mid - 1], d["jacobian_spread"][mid - 1]
    grows = all(r["jacobian_spread"][-1] > r["jacobian_spread"][mid - 1] > r["jacobian_spread"][1] for r in (g, d))
    deep_take = (f"{L} tanh layers spread the Jacobian for either kernel" if grows else
                 f"{L} tanh layers give a Jacobian spread of {sig(gs)} (Gaussian) and {sig(ds)} (delta-orthogonal)")
    takeaway = (f"Convolutions need variance-preserving inits: {who} train both CNNs (MNIST-1D {_acc(long_acc)}, "
                f"paper {MNIST1D_PAPER_CNN_ACCURACY:.0%}), and {deep_take}.")
    if g["step_loss"] and d["step_loss"]:
        moved = {(True, True): "both train", (False, False): "neither trains",
                 (True, False): "only Gaussian trains", (False, True): "only delta-orthogonal trains"}
        deep_train = (f" After {cfg.deep_steps} steps the loss is {sig(dl)} vs {sig(gl)}: "
                      f"{moved[(trains['g'], trains['d'])]}.")
    else:
        deep_train = ""
    verdict = (
        f"At chance: {', '.join(SHORT[k] for k in d_no) or 'none'} (digits); {', '.join(SHORT[k] for k in m_no) or 'none'} "
        f"(MNIST-1D). Jacobian spread Var(s²)/E[s²]², delta-orthogonal vs Gaussian: {sig(d_mid)} vs {sig(g_mid)} (layer "
        f"{mid}), {sig(ds)} vs {sig(gs)} (layer {L}).{deep_train}"
    )
    explanation: list[str] = []
    fixes: dict[str, str] = {}
    for r in res_d.values():
        fixes.update(r["fixes"])
    summary = (f"digits CNN: {len(d_yes)} of {len(INITS)} inits learn; MNIST-1D CNN ({long['label']}): {_acc(long_acc)} after "
               f"{long_steps} Adam steps (paper {MNIST1D_PAPER_CNN_ACCURACY:.0%}); {L}-layer tanh CNN at the edge of chaos: "
               f"Jacobian spread {sig(ds)} (delta-orthogonal) vs {sig(gs)} (Gaussian)"
               + (f", loss after {cfg.deep_steps} steps {sig(dl)} vs {sig(gl)}." if g["step_loss"] else "."))

    def strip(res: dict[str, Any]) -> dict[str, Any]:
        return {k: {kk: vv for kk, vv in v.items() if kk != "ridges"} for k, v in res.items()}

    numbers = {"digits": strip(res_d), "mnist1d": strip(res_m),
               "mnist1d_paper": {"paper_cnn_accuracy": MNIST1D_PAPER_CNN_ACCURACY, "notebook": dict(MNIST1D_NOTEBOOK),
                                 "initlab_init": long["label"], "initlab_steps": long_steps, "initlab_accuracy": long_acc},
               "mnist1d_paper_cnn_accuracy": MNIST1D_PAPER_CNN_ACCURACY,
               "part_seconds": {"data": t_data - t0, "digits": t_digits - t_data, "mnist1d": t_mnist1d - t_digits,
                                "deep": t_deep - t_mnist1d},
               "deep": {**deep,
                        "trains": {"gaussian": trains["g"], "delta_orthogonal": trains["d"]} if g["step_loss"] else None}}
    return StudyResult(study="cnn", title=TITLE, config=asdict(cfg), numbers=numbers, tables=tables, figures=figures,
                       summary=summary, takeaway=takeaway, headline="overview", fixes=fixes, verdict=verdict,
                       explanation=explanation, seconds=time.perf_counter() - t0)



def cnn(config: CNNConfig | None = None) -> StudyResult:
    """Run the CNN study with ``config`` (default: :meth:`CNNConfig.make`); BLAS on one thread."""
    with single_thread():
        return _cnn_study(config)


#: the study under its descriptive name
cnn_study = cnn
