"""Stacked training: K networks of the same shape trained as one batched computation.

Every array carries a leading K axis (one slice per network): weights ``W[l]`` are
``[K, out, in]`` (torch layout per slice), biases ``[K, 1, out]``, activations ``[K, batch, n]``.
One step is a fixed number of ``np.matmul`` calls over the K axis and whole-stack elementwise
operations, however large K is — not K Python loops. The equations per slice are those of
:class:`initlab.nn.layers.Dense` (Rumelhart, Hinton & Williams 1986)::

    z = h Wᵀ + b,  a = φ(z)                         forward
    g_z = g_a ⊙ φ′(z),  ∂W = g_zᵀ h,  ∂b = 1ᵀ g_z,  g_h = g_z W     backward

with φ and φ′ from :mod:`initlab.activations`, softmax cross-entropy (or binary cross-entropy
on logits for a sigmoid output) averaged over each network's own batch, and the optimizers of
:mod:`initlab.nn.optimizers` (sgd, momentum, adam) applied per network.

A cell's numbers depend on its config only, never on which cells share its stack: its weights
come from ``initlab.init`` drawn with the cell's own seed's ``init`` stream
(:func:`initlab._rng.streams`) in the order :class:`initlab.nn.Network` draws them (W₀, b₀, W₁,
b₁, ...), its mini-batches from that seed's ``data`` stream (one permutation per epoch, as
:meth:`Network.fit` shuffles, so changing the init never changes the batches), and every per-slice
operation (BLAS product, elementwise op, row reduction) computes a slice the same way whatever K.

Divergence: a network whose loss or gradient becomes non-finite is marked diverged at that step,
its last finite parameters are set aside, and its slice is frozen (zero parameters, no updates)
while the others continue; it is evaluated on the parameters set aside. No NaN reaches a result:
a loss that cannot be evaluated is ``None``, and non-finite outputs count as wrong predictions.

>>> cells = [dict(activation="tanh", width=8, depth=2, hidden=None, sigma_w2=s, sigma_b2=0.0,
...               init="gaussian", output="linear", dtype="float32", dataset="moons", optimizer="sgd",
...               lr=0.1, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8, batch_size=64, steps=20,
...               n_train=None, n_test=None, data_seed=0, mnist_dir=None, seed=0) for s in (1.0, 2.0)]
>>> rows = train_stack(cells)
>>> [r["diverged"] for r in rows], 0.0 <= rows[0]["train_accuracy"] <= 1.0
([False, False], True)
>>> train_stack(cells[1:])[0]["train_loss"] == rows[1]["train_loss"]
True
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np

from initlab._rng import streams
from initlab.nn.losses import bce_terms
from initlab.nn.optimizers import adam_direction
from initlab.sweep.spec import STACKABLE

__all__ = ["train_stack", "stack_key", "load_data", "network_sizes", "init_specs", "theory_values", "auto_threads", "EVAL_CHUNK"]

Array = np.ndarray
#: rows of the evaluation set forwarded at once (bounds memory: K × EVAL_CHUNK × width floats)
EVAL_CHUNK = 4096


def stack_key(cell: dict[str, Any]) -> str:
    """What cells must share to be trained in one stack: everything but σ_w², σ_b², seed, init, lr."""
    import json

    return json.dumps({k: v for k, v in cell.items() if k not in STACKABLE}, sort_keys=True)


@functools.lru_cache(maxsize=8)
def _load(dataset: str, n_train: int | None, n_test: int | None, data_seed: int, mnist_dir: str | None) -> tuple[Array, Array, Array, Array]:
    from initlab import data

    if dataset == "mnist1d":
        n = (n_train or 4000) + (n_test if n_test is not None else 1000)
        s = data.mnist1d(num_samples=n, train_split=(n_train or 4000) / n, rng=data_seed)
    elif dataset == "digits":
        s = data.digits(rng=data_seed)
    elif dataset == "moons":
        s = data.moons(n_train or 400, 100 if n_test is None else n_test, rng=data_seed)
    elif dataset == "gaussian":
        gen = np.random.default_rng(data_seed)
        nt, ne = n_train or 1000, 200 if n_test is None else n_test
        X, y = data.gaussian(nt + ne, 20, rng=gen, n_classes=10)
        s = data.Split(X[:nt], y[:nt], X[nt:], y[nt:])
    elif dataset == "mnist":
        if mnist_dir is None:
            raise ValueError("Dataset 'mnist' needs the folder of the MNIST files (train.mnist_dir or --mnist DIR).")
        s = data.mnist(mnist_dir)
        if n_train:
            s = data.Split(s[0][:n_train], s[1][:n_train], s[2], s[3])
        if n_test is not None:
            s = data.Split(s[0], s[1], s[2][:n_test], s[3][:n_test])
    else:  # pragma: no cover - validated by the spec
        raise ValueError(f"unknown dataset {dataset!r}")
    X, y, Xt, yt = (np.ascontiguousarray(a) for a in s)
    X = X.reshape(X.shape[0], -1).astype(np.float32)
    Xt = Xt.reshape(Xt.shape[0], -1).astype(np.float32)
    return X, y.astype(np.int64), Xt, yt.astype(np.int64)


def load_data(cell: dict[str, Any]) -> tuple[Array, Array, Array, Array]:
    """``(X, y, X_test, y_test)`` for a cell's dataset (cached per process; read-only arrays)."""
    out = _load(cell["dataset"], cell["n_train"], cell["n_test"], cell["data_seed"], cell["mnist_dir"])
    for a in out:
        a.setflags(write=False)
    return out


def network_sizes(cell: dict[str, Any], n_in: int, n_classes: int) -> list[int]:
    """Layer widths, input first: ``[n_in, *hidden, n_out]`` (n_out = 1 for a sigmoid output)."""
    hidden = cell["hidden"] if cell.get("hidden") is not None else [cell["width"]] * cell["depth"]
    n_out = 1 if cell["output"] == "sigmoid" else n_classes
    return [n_in, *hidden, n_out]


def init_specs(cell: dict[str, Any], n_in: int, n_out: int) -> tuple[str, str]:
    """The ``initlab.init`` specs (weight, bias) of one layer of a cell: Var(W) = σ_w²/fan_in,
    b ~ N(0, σ_b²) (zeros when σ_b² = 0).

    >>> init_specs({"init": "gaussian", "sigma_w2": 2.0, "sigma_b2": 0.0}, 4, 3)
    ('variance_scaling(scale=2.0, mode=fan_in, distribution=untruncated_normal)', 'zeros')
    """
    sw, sb = float(cell["sigma_w2"]), float(cell["sigma_b2"])
    kind = cell["init"]
    if kind == "orthogonal":
        w = f"orthogonal(gain={math.sqrt(sw * max(n_out, n_in) / n_in)!r})"
    else:
        dist = {"gaussian": "untruncated_normal", "uniform": "uniform", "truncated_normal": "truncated_normal"}[kind]
        w = f"variance_scaling(scale={sw!r}, mode=fan_in, distribution={dist})"
    b = f"normal(std={math.sqrt(sb)!r})" if sb > 0 else "zeros"
    return w, b


def theory_values(cells: list[dict[str, Any]]) -> list[dict[str, float]]:
    """q*, χ₁, ξ_c (``initlab.theory``) for each cell's (activation, σ_w², σ_b²); NaN → None.

    Each distinct triple is computed on its own (scalars), so a cell's values never depend on
    which other cells share its stack or its worker (the theory's vectorised quadrature may round
    differently in the last bit for a different batch of points)."""
    from initlab import theory

    cache: dict[tuple[str, float, float], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for c in cells:
        key = (c["activation"], float(c["sigma_w2"]), float(c["sigma_b2"]))
        if key not in cache:
            act, sw, sb = key
            q, _ = theory.fixed_point(act, sw, sb)
            chi = theory.chi1(act, sw, sb)
            _, xi = theory.depth_scales(act, sw, sb)
            vals = {"q_star": float(np.asarray(q)), "chi1": float(np.asarray(chi)), "xi_c": float(np.asarray(xi))}
            cache[key] = {k: (None if math.isnan(v) else v) for k, v in vals.items()}
        out.append(dict(cache[key]))
    return out


def auto_threads(sizes: list[int], batch: int) -> int | None:
    """BLAS threads for one stack when the caller gives none: 1 when each network's largest
    product is small (``initlab.nn.training.SMALL_MATMUL`` multiply-adds: thread start-up and,
    on a busy machine, spinning threads cost more than they save), else None (BLAS default)."""
    from initlab.nn.training import SMALL_MATMUL

    work = max(batch * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 1 if work < SMALL_MATMUL else None


def _blas(threads: int | None) -> Any:
    """BLAS capped at ``threads`` (None: unchanged), :func:`initlab._threads.limit_threads`."""
    from initlab._threads import limit_threads

    return limit_threads(threads)


class _Stack:
    """Parameters of K networks in one ``[K, P]`` buffer, with per-layer views."""

    def __init__(self, sizes: list[int], K: int, dtype: np.dtype) -> None:
        self.sizes = sizes
        self.P = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
        self.flat = np.zeros((K, self.P), dtype=dtype)
        self.W, self.B = self.views(self.flat)

    def views(self, flat: Array) -> tuple[list[Array], list[Array]]:
        W, B, k = [], [], 0
        K = flat.shape[0]
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            W.append(flat[:, k : k + n_in * n_out].reshape(K, n_out, n_in))
            k += n_in * n_out
            B.append(flat[:, k : k + n_out].reshape(K, 1, n_out))
            k += n_out
        return W, B


def _loss_grad(t: Array, y: Array, onehot: Array | None, binary: bool, grad: Array) -> Array:
    """Per-network mean loss (float64 [K]) and its gradient w.r.t. the logits ``t`` [K, m, c]
    (written into ``grad``): cross-entropy ``mean(logsumexp(z) − z_y)``, grad ``(softmax − onehot)/m``;
    binary: ``mean(max(z,0) − z·y + log(1+e^{−|z|}))``, grad ``(σ(z) − y)/m`` (as initlab.nn.losses)."""
    from scipy import special

    K, m, c = t.shape
    f = t.dtype.type
    if binary:
        terms = bce_terms(t, y)
        loss = terms.reshape(K, -1).sum(axis=1, dtype=np.float64) / (m * c)
        special.expit(t, out=grad)
        grad -= y
        grad *= f(1.0 / (m * c))
        return loss
    np.subtract(t, t.max(axis=2, keepdims=True), out=grad)
    picked = (grad * onehot).sum(axis=2, dtype=np.float64)  # z_y − max z, exact: one nonzero term
    np.exp(grad, out=grad)
    s = grad.sum(axis=2, keepdims=True)
    loss = (np.log(s[:, :, 0], dtype=np.float64) - picked).sum(axis=1) / m
    grad /= s
    grad -= onehot
    grad *= f(1.0 / m)
    return loss


def _evaluate(st: _Stack, acts: list[Any], X: Array, y: Array, binary: bool, n_classes: int) -> tuple[Array, Array]:
    """(mean loss [K] float64, accuracy [K] float64) of every network on (X, y), in chunks."""
    K = st.flat.shape[0]
    n = X.shape[0]
    if n == 0:
        return np.full(K, np.nan), np.full(K, np.nan)
    loss_sum = np.zeros(K, dtype=np.float64)
    correct = np.zeros(K, dtype=np.int64)
    L = len(st.W)
    for start in range(0, n, EVAL_CHUNK):
        xb, yb = X[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
        m = xb.shape[0]
        h: Array = np.broadcast_to(xb, (K, m, xb.shape[1]))
        for i in range(L):
            z = np.matmul(h, st.W[i].transpose(0, 2, 1))
            z += st.B[i]
            h = z if i == L - 1 else acts[i].fn(z)
        ok_rows = np.isfinite(h).all(axis=2)
        if binary:
            yt = yb.astype(h.dtype)[None, :, None]
            pred = (h[:, :, 0] > 0).astype(np.int64)
            grad = np.empty_like(h)
            terms_loss = _loss_grad(h, np.broadcast_to(yt, h.shape), None, True, grad)
        else:
            onehot = np.zeros((1, m, n_classes), dtype=h.dtype)
            onehot[0, np.arange(m), yb] = 1
            pred = np.argmax(h, axis=2)
            grad = np.empty_like(h)
            terms_loss = _loss_grad(h, None, np.broadcast_to(onehot, h.shape), False, grad)  # type: ignore[arg-type]
        loss_sum += terms_loss * m
        correct += ((pred == yb[None, :]) & ok_rows).sum(axis=1)
    return loss_sum / n, correct / n


def train_stack(cells: list[dict[str, Any]], *, threads: int | None = None) -> list[dict[str, Any]]:
    """Train the cells (all with the same :func:`stack_key`) as one stack; one result per cell.

    Each result holds ``train_accuracy``, ``test_accuracy``, ``train_loss``, ``test_loss``
    (None when diverged), ``diverged``, ``diverged_step``, ``q_star``, ``chi1``, ``xi_c`` and
    ``seconds`` (the stack's wall time shared equally). ``threads`` caps BLAS threads (None: the
    BLAS default); networks with small products always run on one (:func:`auto_threads`).
    """
    from initlab import activations
    from initlab import init as _init

    if not cells:
        return []
    keys = {stack_key(c) for c in cells}
    if len(keys) != 1:
        raise ValueError("train_stack needs cells of one shape (same config except sigma_w2, sigma_b2, seed, init, lr).")
    t0 = time.perf_counter()
    c0 = cells[0]
    K = len(cells)
    dtype = np.dtype(c0["dtype"])
    f = dtype.type
    X, y, Xt, yt = load_data(c0)
    X = X.astype(dtype, copy=False)
    Xt = Xt.astype(dtype, copy=False)
    n, d = X.shape
    n_classes = int(max(int(y.max()), int(yt.max()) if yt.size else 0) + 1)
    binary = c0["output"] == "sigmoid"
    sizes = network_sizes(c0, d, n_classes)
    L = len(sizes) - 1
    acts = [activations.get(c0["activation"])] * (L - 1) + [activations.get("linear")]
    st = _Stack(sizes, K, dtype)
    gens = []
    for k, c in enumerate(cells):
        rngs = streams(int(c["seed"]))  # by purpose, as Network: the init never moves the batches
        for i in range(L):
            ws, bs = init_specs(c, sizes[i], sizes[i + 1])
            st.W[i][k] = _init.get(ws)((sizes[i + 1], sizes[i]), rng=rngs["init"], dtype=dtype)
            st.B[i][k, 0] = _init.get(bs)((sizes[i + 1],), rng=rngs["init"], dtype=dtype)
        gens.append(rngs["data"])
    theory = theory_values(cells)

    lr = np.array([c["lr"] for c in cells], dtype=dtype)[:, None]
    opt = c0["optimizer"]
    gflat = np.zeros_like(st.flat)
    gW, gB = st.views(gflat)
    if opt == "momentum":
        vel = np.zeros_like(st.flat)
    elif opt == "adam":
        m1, m2, tmp = np.zeros_like(st.flat), np.zeros_like(st.flat), np.zeros_like(st.flat)
    bs = min(c0["batch_size"], n)
    steps = c0["steps"]
    full = bs >= n
    active = np.ones(K, dtype=bool)
    diverged_step: list[int | None] = [None] * K
    saved: dict[int, Array] = {}
    WT = [w.transpose(0, 2, 1) for w in st.W]
    y_cast = y.astype(dtype)

    def freeze(ks: Array, step: int) -> None:
        for k in np.flatnonzero(ks):
            k = int(k)
            if not active[k]:
                continue
            active[k] = False
            diverged_step[k] = step
            saved[k] = st.flat[k].copy()
            st.flat[k] = 0
            lr[k] = 0
            if opt == "momentum":
                vel[k] = 0
            elif opt == "adam":
                m1[k] = 0
                m2[k] = 0

    perms: Array | None = None
    ones = {m: np.ones((1, 1, m), dtype=dtype) for m in {bs, n % bs or bs}}
    if auto_threads(sizes, bs) == 1:
        threads = 1
    with _blas(threads), np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        step = 0
        epoch_batches = 1 if full else math.ceil(n / bs)
        while step < steps:
            b_in_epoch = step % epoch_batches
            if not full and b_in_epoch == 0:
                perms = np.stack([g.permutation(n) for g in gens])
            if full:
                xb: Array = np.broadcast_to(X, (K, n, d))
                ylab = np.broadcast_to(y, (K, n))
            else:
                assert perms is not None
                idx = perms[:, b_in_epoch * bs : (b_in_epoch + 1) * bs]
                xb = np.take(X, idx, axis=0)
                ylab = np.take(y, idx)
            m = xb.shape[1]
            hs: list[Array] = [xb]
            zs: list[Array] = []
            h = xb
            for i in range(L):
                z = np.matmul(h, WT[i])
                z += st.B[i]
                zs.append(z)
                h = z if i == L - 1 else acts[i].fn(z)
                hs.append(h)
            g = np.empty_like(zs[-1])
            if binary:
                yt3 = (y_cast[None, :, None] if full else np.take(y_cast, idx)[:, :, None])
                loss = _loss_grad(zs[-1], np.broadcast_to(yt3, g.shape), None, True, g)
            else:
                onehot = np.zeros((K, m, sizes[-1]), dtype=dtype)
                np.put_along_axis(onehot, np.asarray(ylab)[:, :, None], f(1), axis=2)
                loss = _loss_grad(zs[-1], None, onehot, False, g)
            bad = ~np.isfinite(loss) & active
            for i in range(L - 1, -1, -1):
                if i < L - 1:
                    g *= acts[i].derivative(zs[i], hs[i + 1])
                np.matmul(g.transpose(0, 2, 1), hs[i], out=gW[i])
                np.matmul(ones[m], g, out=gB[i])  # ∂b = 1ᵀ g_z per slice (a row reduction is 10x slower here)
                if i > 0:
                    g = np.matmul(g, st.W[i])
            bad |= ~np.isfinite(gflat).all(axis=1) & active
            if bad.any():
                freeze(bad, step)
                gflat[bad] = 0
            if not active.any():
                break
            if opt == "sgd":
                gflat *= lr
                st.flat -= gflat
            elif opt == "momentum":
                vel *= f(c0["momentum"])
                vel += gflat
                np.multiply(vel, lr, out=gflat)
                st.flat -= gflat
            else:
                t = step + 1
                adam_direction(m1, m2, gflat, tmp, beta1=c0["beta1"], beta2=c0["beta2"], eps=c0["eps"], t=t)
                tmp *= lr * f(1 / (1 - c0["beta1"]**t))
                st.flat -= tmp
            step += 1
        for k, p in saved.items():
            st.flat[k] = p
        tr_loss, tr_acc = _evaluate(st, acts, X, y, binary, n_classes)
        te_loss, te_acc = _evaluate(st, acts, Xt, yt, binary, n_classes)
    seconds = (time.perf_counter() - t0) / K
    rows = []
    for k in range(K):
        dv = diverged_step[k] is not None
        if not dv and not (math.isfinite(tr_loss[k]) and np.isfinite(st.flat[k]).all()):
            dv, diverged_step[k] = True, steps
        fin = (lambda v: None if (dv or not math.isfinite(v)) else float(v))
        rows.append({
            "train_accuracy": float(tr_acc[k]) if math.isfinite(tr_acc[k]) else None,
            "test_accuracy": float(te_acc[k]) if math.isfinite(te_acc[k]) else None,
            "train_loss": fin(tr_loss[k]),
            "test_loss": fin(te_loss[k]),
            "diverged": dv,
            "diverged_step": diverged_step[k],
            **theory[k],
            "seconds": seconds,
        })
    return rows
