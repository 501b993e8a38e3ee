"""Leaving a torch model exactly as it was, and turning user inputs into the model's tensors.

* :func:`preserved_state` — a context manager that snapshots a module's parameters, buffers
  (BatchNorm running statistics, ``num_batches_tracked``, non-persistent buffers), every module's
  ``training`` flag and torch's RNG state (CPU and every initialised CUDA device), and restores
  them bitwise on exit, whatever happened inside. The probe runs inside it with
  ``parameters=True``; LSUV (:func:`initlab.fix`) runs inside it with ``parameters=False`` (it
  changes the weights on purpose, and only them).
* :func:`prepare_inputs` — ``x`` (one array/tensor, a tuple/list of them = positional inputs,
  a dict of them = keyword inputs) as tensors on the model's device: floating inputs cast to the
  model's floating dtype, integer and bool inputs kept as they are (embedding indices are never
  cast to float), NaN/inf refused with a ValueError naming ``x``.
* :func:`check_finite_input` — the NaN/inf check alone, for any engine.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

__all__ = ["preserved_state", "prepare_inputs", "check_finite_input", "model_device_dtype"]


@contextmanager
def preserved_state(model: Any, *, parameters: bool = True, rng: bool = True,
                    dropout_off: bool = False) -> Iterator[None]:
    """Snapshot ``model``'s state on entry and restore it bitwise on exit (also on an exception).

    Restored: every buffer (``named_buffers``, persistent or not), every module's ``training``
    flag, torch's CPU RNG state and the RNG state of each CUDA device when CUDA is initialised
    (``rng=True``), and with ``parameters=True`` every parameter's values. ``dropout_off=True``
    also switches every dropout off inside the block (dropout modules, and MultiheadAttention's
    attention dropout, a float attribute), restored on exit. Tensors are restored in
    place (``copy_``), so references held elsewhere (optimizers) stay valid. A parameter is written
    back when its version counter moved (any in-place write, also under ``no_grad``); a buffer
    also when its values differ.

    >>> import torch
    >>> bn = torch.nn.BatchNorm1d(3)
    >>> with preserved_state(bn):
    ...     _ = bn.train()(torch.ones(4, 3) * torch.arange(4.0)[:, None])
    ...     moved = float(bn.running_mean[0])
    >>> moved != 0.0, float(bn.running_mean[0]), int(bn.num_batches_tracked)
    (True, 0.0, 0)
    """
    import torch

    seen: set[int] = set()
    saved: list[tuple[Any, Any, int, bool]] = []

    def keep(t: Any, compare: bool) -> None:
        if isinstance(t, torch.Tensor) and id(t) not in seen:
            seen.add(id(t))
            saved.append((t, t.detach().clone(), t._version, compare))

    for _, b in model.named_buffers(remove_duplicate=False):
        keep(b, True)
    if parameters:
        for _, p in model.named_parameters(remove_duplicate=False):
            keep(p, False)
    flags = [(m, m.training) for m in model.modules()]
    attn_p = [(m, m.dropout) for m in model.modules() if isinstance(m, torch.nn.MultiheadAttention)] if dropout_off else []
    cpu_state = torch.get_rng_state() if rng else None
    cuda_states = None
    if rng and torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_states = torch.cuda.get_rng_state_all()
    try:
        if dropout_off:
            from torch.nn.modules.dropout import _DropoutNd

            for m in model.modules():
                if isinstance(m, _DropoutNd):
                    m.train(False)
            for m, _ in attn_p:
                m.dropout = 0.0
        yield
    finally:
        for m, p in attn_p:
            m.dropout = p
        with torch.no_grad():
            for t, copy, version, compare in saved:
                if t.shape != copy.shape or t.dtype != copy.dtype:
                    t.data = copy  # replaced by a tensor of another shape: put the original back
                elif t._version != version or (compare and not torch.equal(t, copy)):
                    t.copy_(copy)
        for m, flag in flags:
            m.training = flag
        if cpu_state is not None:
            torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def model_device_dtype(model: Any) -> tuple[Any, Any]:
    """(device, floating dtype) of the model: those of its first floating parameter (or buffer),
    else CPU and float32."""
    import torch

    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    for t in (*model.parameters(), *model.buffers()):
        return t.device, torch.float32
    return torch.device("cpu"), torch.float32


def check_finite_input(x: Any, *, name: str = "x") -> None:
    """Raise ValueError naming ``name`` when a floating array/tensor in ``x`` (or in a tuple,
    list or dict of them) holds NaN or ±inf.

    >>> import numpy as np
    >>> check_finite_input({"a": np.ones(3), "b": np.arange(3)})
    >>> check_finite_input((np.ones(2), np.array([1.0, np.nan])))
    Traceback (most recent call last):
    ...
    ValueError: The 'x' argument must hold finite values; input 1 contains NaN or inf.
    """
    import sys

    torch = sys.modules.get("torch")

    def bad(where: str) -> None:
        raise ValueError(f"The '{name}' argument must hold finite values; {where} contains NaN or inf.")

    def one(v: Any, where: str) -> None:
        if torch is not None and isinstance(v, torch.Tensor):
            if v.is_floating_point() or v.is_complex():
                if not bool(torch.isfinite(v).all()):
                    bad(where)
            return
        if isinstance(v, (list, tuple, dict)):
            return
        a = np.asarray(v)
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            bad(where)

    if isinstance(x, dict):
        for k, v in x.items():
            one(v, f"input {k!r}")
    elif isinstance(x, (tuple, list)) and _is_sequence_of_arrays(x):
        for i, v in enumerate(x):
            one(v, f"input {i}")
    else:
        one(x, "it")


def _is_array(v: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return isinstance(v, np.ndarray) or (torch is not None and isinstance(v, torch.Tensor))


def _is_sequence_of_arrays(x: Any) -> bool:
    return isinstance(x, tuple) or (isinstance(x, list) and len(x) > 0 and all(_is_array(v) for v in x))


def prepare_inputs(model: Any, x: Any, *, name: str = "x") -> tuple[tuple[Any, ...], dict[str, Any], int]:
    """``(args, kwargs, batch)`` to call ``model(*args, **kwargs)`` with.

    ``x`` is one of

    * an array-like or tensor: the one positional input;
    * a tuple (or a list of arrays/tensors): the positional inputs, in order;
    * a dict ``{name: array}``: keyword inputs.

    Each array/tensor is moved to the model's device; floating ones are cast to the model's
    floating dtype; integer and bool ones keep their dtype (token ids for an ``nn.Embedding``).
    Other values (None, numbers, strings) are passed as they are. ``batch`` is the first dimension
    of the first tensor input. NaN or inf in a floating input: ValueError naming ``name``.

    >>> import torch
    >>> args, kwargs, b = prepare_inputs(torch.nn.Embedding(5, 2), [[1, 2], [3, 4], [0, 0]])
    >>> args[0].dtype, b
    (torch.int64, 3)
    """
    import torch

    check_finite_input(x, name=name)
    device, dtype = model_device_dtype(model)

    def conv(v: Any, where: str) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        t = v if isinstance(v, torch.Tensor) else None
        if t is None:
            try:
                a = np.asarray(v)
            except Exception as e:  # ragged lists and such
                raise TypeError(f"The '{name}' argument's {where} must be an array-like or tensor; got "
                                f"{type(v).__name__} ({e}).") from None
            if a.dtype == object or a.dtype.kind not in "biuf":
                raise TypeError(f"The '{name}' argument's {where} must be a numeric array or tensor; got "
                                f"dtype {a.dtype}.")
            t = torch.from_numpy(np.ascontiguousarray(a))
        if t.is_floating_point():
            out = t.to(device=device, dtype=dtype)
            if out.dtype != t.dtype and not bool(torch.isfinite(out).all()):
                raise ValueError(f"The '{name}' argument's {where} must hold finite values within the model's "
                                 f"dtype ({str(dtype).replace('torch.', '')}); casting it gives NaN or inf.")
            return out
        return t.to(device=device)

    if isinstance(x, dict):
        if not all(isinstance(k, str) for k in x):
            raise TypeError(f"The '{name}' argument as a dict must have str keys (keyword inputs); got "
                            f"keys {list(x)!r}.")
        args: tuple[Any, ...] = ()
        kwargs = {k: conv(v, f"input {k!r}") for k, v in x.items()}
        tensors = list(kwargs.values())
    elif isinstance(x, (tuple, list)) and _is_sequence_of_arrays(x):
        args = tuple(conv(v, f"input {i}") for i, v in enumerate(x))
        kwargs = {}
        tensors = list(args)
    else:
        args = (conv(x, "input"),)
        kwargs = {}
        tensors = list(args)
    first = next((t for t in tensors if isinstance(t, torch.Tensor)), None)
    if first is None:
        raise TypeError(f"The '{name}' argument must hold at least one array or tensor; got {type(x).__name__}.")
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.numel() == 0:
            raise ValueError(f"The '{name}' argument must not hold an empty input; got shape {tuple(t.shape)}.")
    batch = int(first.shape[0]) if first.ndim else 1
    return args, kwargs, batch
