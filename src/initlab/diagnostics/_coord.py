"""The coordinate check: does each layer's activation size stay put as the width grows?

mup's coordinate check (Yang et al. 2021, "Tensor Programs V: Tuning Large Neural Networks via
Zero-Shot Hyperparameter Transfer", microsoft/mup ``coord_check.py``) trains a model at several
widths for a few steps and plots, for every layer, the mean absolute value of its output
l1 = mean |x| against the width, one panel per step. Flat lines mean the parametrization is
width-stable; lines that rise with the width after the first update mean the training dynamics
blow up as the model gets wider (the standard parametrization under Adam does this: each weight
moves by ~lr whatever the width, so a layer's output moves by ~lr·fan_in).

:func:`coord_check` returns a :class:`CoordCheck` holding l1 for every (width, step, layer) and
the log-log slope of l1 against the width per (layer, step): ~0 is width-stable, ~1 grows like
the width. Step 0 is the forward pass at initialization, step t the forward pass after t updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from initlab._rng import RngLike, as_generator
from initlab._validation import bad_type, check_choice, check_int, check_number

__all__ = ["coord_check", "CoordCheck", "STABLE_SLOPE", "mlp_family", "PARAMETRIZATIONS"]

STABLE_SLOPE = 0.25  # |log-log slope| below this counts as width-stable


@dataclass
class CoordCheck:
    """l1 = mean |x| of each layer's output, per width and step (see the module docstring).

    ``records``: one dict per (width, step, layer) with ``width``, ``step``, ``layer`` (module path,
    "output" for the model's output), ``l1`` and ``loss`` (the step's training loss).
    """

    widths: list[int]
    steps: int
    layers: list[str]
    records: list[dict[str, Any]]
    optimizer: str
    lr: float

    def l1(self, layer: str, step: int) -> np.ndarray:
        """l1 of ``layer`` at ``step`` for each width (in the order of ``widths``)."""
        vals = {r["width"]: r["l1"] for r in self.records if r["layer"] == layer and r["step"] == step}
        return np.array([vals.get(w, np.nan) for w in self.widths], dtype=float)

    def slope(self, layer: str, step: int) -> float:
        """Least-squares slope of log l1 against log width for ``layer`` at ``step``.

        >>> cc = CoordCheck([10, 100], 1, ["a"], [{"width": 10, "step": 0, "layer": "a", "l1": 1.0, "loss": 0.0},
        ...                                     {"width": 100, "step": 0, "layer": "a", "l1": 10.0, "loss": 0.0}], "sgd", 0.1)
        >>> round(cc.slope("a", 0), 6)
        1.0
        """
        y = self.l1(layer, step)
        if np.all(y == 0):
            return 0.0  # exactly zero at every width (a zero-initialised read-out at step 0): flat
        ok = np.isfinite(y) & (y > 0)
        if ok.sum() < 2:
            return math.nan
        lx = np.log(np.array(self.widths, dtype=float)[ok])
        return float(np.polyfit(lx, np.log(y[ok]), 1)[0])

    def slopes(self) -> list[dict[str, Any]]:
        """One dict per (layer, step): ``layer``, ``step``, ``slope``, ``stable`` (|slope| < 0.25)."""
        out = []
        for step in range(self.steps):
            for layer in self.layers:
                s = self.slope(layer, step)
                out.append({"layer": layer, "step": step, "slope": s,
                            "stable": bool(math.isfinite(s) and abs(s) < STABLE_SLOPE)})
        return out

    @property
    def unstable(self) -> list[dict[str, Any]]:
        """The (layer, step) pairs whose activation size changes with the width."""
        return [r for r in self.slopes() if not r["stable"]]

    def summary(self) -> str:
        """One line: width-stable, or which layers grow/shrink with the width from which step."""
        bad = self.unstable
        if not bad:
            return (f"width-stable: every layer's mean |x| is flat in the width (|log-log slope| < {STABLE_SLOPE}) "
                    f"at every step")
        first = min(r["step"] for r in bad)
        at = [r for r in bad if r["step"] == first]
        worst = max(at, key=lambda r: abs(r["slope"]) if math.isfinite(r["slope"]) else math.inf)
        names = ", ".join(sorted({r["layer"] for r in at}))
        return (f"not width-stable from step {first}: mean |x| scales like width^{worst['slope']:.2f} at "
                f"{worst['layer']} (layers {names})")

    def to_dict(self) -> dict[str, Any]:
        return {"widths": self.widths, "steps": self.steps, "layers": self.layers, "optimizer": self.optimizer,
                "lr": self.lr, "records": self.records, "slopes": self.slopes(), "summary": self.summary()}

    def plot(self, path: str | None = None) -> Any:
        """mup's figure: one panel per step, l1 against width (log-log), one line per layer."""
        from initlab.diagnostics import _plots

        return _plots.coord_check(self, path)


def _make_optimizer(optimizer: Any, model: Any, width: int, lr: float) -> Any:
    import torch

    if callable(optimizer):
        opt = optimizer(model, width)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"The 'optimizer' callable must return a torch.optim.Optimizer; got {type(opt).__name__}.")
        return opt
    if optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    return torch.optim.Adam(model.parameters(), lr=lr)


def coord_check(
    factory: Callable[[int], Any],
    widths: Any = (64, 128, 256, 512, 1024),
    *,
    steps: int = 3,
    optimizer: str | Callable[[Any, int], Any] = "adam",
    lr: float = 1e-3,
    x: Any = None,
    y: Any = None,
    batch: int = 64,
    input_shape: tuple[int, ...] | None = None,
    rng: RngLike = 0,
) -> CoordCheck:
    """Train ``factory(width)`` for each width for ``steps`` steps and record each layer's mean |x|.

    Every leaf module of the model (and the model's output, as layer "output", when it is not
    already the output of a recorded module) is recorded at each
    forward pass: step 0 at initialization, step t after t optimizer updates. The loss is the mean
    squared error to ``y`` (given, or N(0, 1) targets of the output's shape); the inputs are ``x``
    (given, [batch, ...]) or N(0, 1) inputs of ``input_shape`` per sample (default: the first
    Linear layer's ``in_features``). Everything random is drawn from ``rng``: the inputs and
    targets with NumPy, the models' initial weights with torch seeded from it inside
    ``torch.random.fork_rng`` (torch's global RNG state is left as it was).

    Args:
        factory: ``width -> torch.nn.Module``.
        widths: the widths to try (at least two, increasing).
        steps: forward passes recorded per width (steps − 1 updates between them).
        optimizer: "sgd" | "adam" with learning rate ``lr`` for every parameter, or a callable
            ``(model, width) -> torch.optim.Optimizer`` (per-layer learning rates, e.g. muP's).
        lr: the learning rate of "sgd"/"adam".
        x, y: the training batch (the same batch at every step), or None.
        batch: the batch size of generated inputs.
        input_shape: per-sample input shape of generated inputs.
        rng: seed or Generator.

    >>> import torch
    >>> mlp = lambda n: torch.nn.Sequential(torch.nn.Linear(8, n), torch.nn.ReLU(), torch.nn.Linear(n, 1))
    >>> cc = coord_check(mlp, [32, 64, 128], steps=2, optimizer="sgd", lr=0.01, rng=0)
    >>> cc.layers, len(cc.records)
    (['0', '1', '2'], 18)
    """
    try:
        import torch
    except ImportError:
        raise ImportError("coord_check needs torch (pip install torch==2.13.0).") from None
    if not callable(factory):
        bad_type("factory", "a callable width -> torch.nn.Module", factory)
    try:
        widths = [check_int("widths", w, low=1) for w in widths]
    except TypeError:
        bad_type("widths", "a sequence of ints", widths)
    if len(widths) < 2 or sorted(set(widths)) != widths:
        raise ValueError(f"The 'widths' argument must be at least two increasing distinct ints; got {widths}.")
    steps = check_int("steps", steps, low=1)
    if not callable(optimizer):
        check_choice("optimizer", optimizer, ["sgd", "adam"])
    lr = check_number("lr", lr, low=0.0, low_open=True)
    batch = check_int("batch", batch, low=1)
    gen = as_generator(rng)
    torch_seed = int(gen.integers(0, 2**62))
    data_gen = np.random.default_rng(gen.integers(0, 2**62))

    records: list[dict[str, Any]] = []
    layer_names: list[str] | None = None
    for width in widths:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            model = factory(width)
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"The 'factory' must return a torch.nn.Module; for width {width} it returned "
                            f"{type(model).__name__}.")
        model.train()
        p0 = next(iter(model.parameters()), None)
        if p0 is None:
            raise ValueError(f"The model made by 'factory' for width {width} has no parameters.")
        xt = _inputs(model, x, batch, input_shape, data_gen, p0)
        names: dict[Any, str] = {m: n for n, m in model.named_modules() if n and not list(m.children())}
        seen: list[str] = []
        l1: dict[str, float] = {}
        last: list[Any] = [None]  # the tensor the last recorded module returned

        def hook(mod: Any, inp: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                name = names[mod]
                if name not in l1:
                    seen.append(name)
                l1[name] = float(out.detach().abs().mean())
                last[0] = out

        handles = [m.register_forward_hook(hook) for m in names]
        try:
            opt = _make_optimizer(optimizer, model, width, lr)
            yt = None
            with_output = False
            for step in range(steps):
                l1.clear()
                seen.clear()
                out = model(xt)
                if not isinstance(out, torch.Tensor):
                    raise TypeError(f"The model made by 'factory' must return one tensor; it returned {type(out).__name__}.")
                if yt is None:
                    yt = _targets(y, out, data_gen)
                loss = torch.nn.functional.mse_loss(out, yt)
                lval = float(loss.detach())
                if not math.isfinite(lval):
                    raise ValueError(f"The training diverged at width {width}, step {step} (loss {lval}); "
                                     "lower 'lr'.")
                for name in seen:
                    records.append({"width": width, "step": step, "layer": name, "l1": l1[name], "loss": lval})
                if last[0] is not out:  # the output is not already a module's row (functional read-out)
                    records.append({"width": width, "step": step, "layer": "output",
                                    "l1": float(out.detach().abs().mean()), "loss": lval})
                    with_output = True
                last[0] = None
                if step < steps - 1:
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
        finally:
            for h in handles:
                h.remove()
        order = seen + (["output"] if with_output else [])
        if layer_names is None:
            layer_names = order
        elif order != layer_names:
            raise ValueError(f"The models made by 'factory' must have the same layers at every width; width "
                             f"{widths[0]} has {layer_names}, width {width} has {order}.")
    return CoordCheck(widths=widths, steps=steps, layers=layer_names or [], records=records,
                      optimizer=optimizer if isinstance(optimizer, str) else getattr(optimizer, "__name__", "custom"),
                      lr=lr)


def _inputs(model: Any, x: Any, batch: int, input_shape: tuple[int, ...] | None, gen: np.random.Generator,
            p0: Any) -> Any:
    import torch

    if x is not None:
        xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
        if xt.is_floating_point():
            xt = xt.to(dtype=p0.dtype)
        return xt.to(p0.device)
    if input_shape is None:
        first = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None)
        if first is None:
            raise ValueError("The 'input_shape' argument is needed for a model that does not start with a Linear layer.")
        input_shape = (first.in_features,)
    shape = (batch, *[check_int("input_shape", d, low=1) for d in input_shape])
    return torch.from_numpy(gen.standard_normal(shape)).to(dtype=p0.dtype, device=p0.device)


def _targets(y: Any, out: Any, gen: np.random.Generator) -> Any:
    import torch

    if y is None:
        return torch.from_numpy(gen.standard_normal(tuple(out.shape))).to(dtype=out.dtype, device=out.device)
    yt = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y))
    if tuple(yt.shape) != tuple(out.shape):
        raise ValueError(f"The 'y' argument must have the output's shape {tuple(out.shape)}; got {tuple(yt.shape)}.")
    return yt.to(dtype=out.dtype, device=out.device)


PARAMETRIZATIONS = ("standard", "mup")


def mlp_family(parametrization: str = "standard", *, d_in: int = 16, depth: int = 2, d_out: int = 1,
               base_width: int = 64, lr: float = 1e-2, optimizer: str = "adam") -> tuple[Callable[[int], Any], Any]:
    """A ReLU MLP family ``width -> model`` and its optimizer, for :func:`coord_check`.

    * ``"standard"``: every Linear N(0, 1/fan_in), biases 0, one learning rate for all.
    * ``"mup"`` (maximal update parametrization for Adam, Yang et al. 2021, Table 3): the same
      hidden init; the read-out zero-initialised and multiplied by base_width/width (mup's
      MuReadout); the hidden (width × width) weights' learning rate scaled by base_width/width,
      the input layer, the biases and the read-out at ``lr``. The same rates are used with
      ``optimizer="sgd"``, which is NOT muP for SGD (that needs other per-layer rates): the
      coordinate check then shows it.

    Returns ``(factory, optimizer)``: pass both to :func:`coord_check`.

    >>> factory, opt = mlp_family("mup")
    >>> cc = coord_check(factory, [32, 64], steps=2, optimizer=opt, rng=0)
    >>> cc.layers
    ['layers.0', 'layers.1', 'layers.2', 'layers.3', 'readout']
    """
    import torch

    check_choice("parametrization", parametrization, PARAMETRIZATIONS)
    check_choice("optimizer", optimizer, ["sgd", "adam"])
    d_in, depth, d_out = check_int("d_in", d_in, low=1), check_int("depth", depth, low=1), check_int("d_out", d_out, low=1)
    base_width = check_int("base_width", base_width, low=1)
    lr = check_number("lr", lr, low=0.0, low_open=True)
    mup = parametrization == "mup"

    class _Readout(torch.nn.Linear):
        def __init__(self, n: int, mult: float) -> None:
            super().__init__(n, d_out)
            self.mult = mult

        def forward(self, x: Any) -> Any:
            out = super().forward(x)
            return out * self.mult if self.mult != 1.0 else out

    class _MLP(torch.nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            mods: list[Any] = []
            d = d_in
            for _ in range(depth):
                mods += [torch.nn.Linear(d, n), torch.nn.ReLU()]
                d = n
            self.layers = torch.nn.Sequential(*mods)
            self.readout = _Readout(n, base_width / n if mup else 1.0)
            with torch.no_grad():
                for m in self.modules():
                    if isinstance(m, torch.nn.Linear):
                        m.weight.normal_(0.0, (1.0 / m.in_features) ** 0.5)
                        m.bias.zero_()
                if mup:
                    self.readout.weight.zero_()

        def forward(self, x: Any) -> Any:
            return self.readout(self.layers(x))

    def make_optimizer(model: Any, n: int) -> Any:
        cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        if not mup:
            return cls(model.parameters(), lr=lr)
        hidden = [m.weight for m in model.layers if isinstance(m, torch.nn.Linear) and m.in_features == n]
        rest = [p for p in model.parameters() if all(p is not h for h in hidden)]
        return cls([{"params": rest, "lr": lr}, {"params": hidden, "lr": lr * base_width / n}])

    make_optimizer.__name__ = f"{optimizer} ({parametrization})"
    return _MLP, make_optimizer
