"""Fans: the one place where initlab decides which axes of a weight are "in" and "out".

Layouts:

* ``"torch"``: ``[out, in, *kernel]`` (nn.Linear, nn.ConvNd). fan_in = in·receptive,
  fan_out = out·receptive, receptive = prod(kernel).
* ``"keras"`` / ``"jax"``: ``[*kernel, in, out]`` (Dense, Conv, Flax, Haiku).
* explicit ``in_axis`` / ``out_axis`` override the layout (JAX's ``in_axis=-2, out_axis=-1``);
  every other axis counts as a receptive-field axis.
* ``transposed=True`` is for transposed convolutions, whose weights store the axes swapped
  (torch ConvTranspose: ``[in, out/groups, *kernel]``): the in and out axes of the layout are
  exchanged, so the fans come from the right axes. torch itself ignores this and computes
  ConvTranspose fans as if dim 0 were the output (pytorch/pytorch#7865).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from initlab._validation import bad_type, bad_value, check_choice

__all__ = ["LAYOUTS", "Axes", "check_shape", "resolve_axes", "compute_fans"]

LAYOUTS = ("torch", "keras", "jax")


def check_shape(shape: Any) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of non-negative ints (an int means a 1-D shape).

    >>> check_shape([3, 4])
    (3, 4)
    """
    import numbers

    if isinstance(shape, bool):
        bad_type("shape", "a tuple of non-negative ints", shape)
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    if not isinstance(shape, Sequence) and not hasattr(shape, "__iter__"):
        bad_type("shape", "a tuple of non-negative ints", shape)
    dims = tuple(shape)
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            bad_type("shape", "a tuple of non-negative ints", shape)
        if d < 0:
            bad_value("shape", "a tuple of non-negative ints", shape)
    return tuple(int(d) for d in dims)


@dataclass(frozen=True)
class Axes:
    """Resolved axes of a weight: ``in_axis``, ``out_axis`` (non-negative) and kernel axes."""

    ndim: int
    in_axis: int
    out_axis: int

    @property
    def kernel_axes(self) -> tuple[int, ...]:
        return tuple(i for i in range(self.ndim) if i not in (self.in_axis, self.out_axis))


def _norm_axis(name: str, axis: Any, ndim: int) -> int:
    import numbers

    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        bad_type(name, "an int axis", axis)
    a = int(axis)
    if not -ndim <= a < ndim:
        bad_value(name, f"an axis in [{-ndim}, {ndim - 1}] for a {ndim}-D shape", axis)
    return a % ndim


def check_layout(layout: Any) -> str:
    """Validate a layout name (``torch``, ``keras`` or ``jax``)."""
    return check_choice("layout", layout, LAYOUTS)


def resolve_axes(
    shape: tuple[int, ...],
    layout: str = "torch",
    transposed: bool = False,
    in_axis: int | None = None,
    out_axis: int | None = None,
) -> Axes:
    """The in and out axes of ``shape`` under ``layout`` (or explicit axes), swapped if transposed.

    >>> resolve_axes((3, 3, 16, 32), "keras")
    Axes(ndim=4, in_axis=2, out_axis=3)
    >>> resolve_axes((16, 32, 3), "torch", transposed=True)
    Axes(ndim=3, in_axis=0, out_axis=1)
    """
    check_layout(layout)
    if not isinstance(transposed, (bool,)):
        bad_type("transposed", "a bool", transposed)
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(
            f"Fan in and fan out can not be computed for a shape with fewer than 2 dimensions: "
            f"the 'shape' argument must have at least 2 dimensions; got {shape!r}."
        )
    if layout == "torch":
        i, o = 1, 0
    else:
        i, o = ndim - 2, ndim - 1
    if in_axis is not None:
        i = _norm_axis("in_axis", in_axis, ndim)
    if out_axis is not None:
        o = _norm_axis("out_axis", out_axis, ndim)
    if i == o:
        bad_value("in_axis/out_axis", "two different axes", (in_axis, out_axis))
    if transposed:
        i, o = o, i
    return Axes(ndim, i, o)


def compute_fans(
    shape: Sequence[int],
    layout: str = "torch",
    transposed: bool = False,
    in_axis: int | None = None,
    out_axis: int | None = None,
) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``.

    fan_in = shape[in_axis]·receptive, fan_out = shape[out_axis]·receptive, where receptive is
    the product of every other axis (the kernel). ``layout="torch"``: ``[out, in, *kernel]``
    (identical to torch's ``_calculate_fan_in_and_fan_out``); ``"keras"``/``"jax"``:
    ``[*kernel, in, out]``; ``in_axis``/``out_axis`` override the layout; ``transposed=True``
    swaps in and out for transposed-convolution weights (torch does not: pytorch#7865).
    Fewer than 2 dimensions raises ValueError.

    >>> compute_fans((300, 500))
    (500, 300)
    >>> compute_fans((64, 3, 3, 3))
    (27, 576)
    >>> compute_fans((3, 3, 3, 64), layout="keras")
    (27, 576)
    >>> compute_fans((3, 64, 5), transposed=True)  # ConvTranspose1d(3, 64, 5).weight
    (15, 320)
    """
    dims = check_shape(shape)
    ax = resolve_axes(dims, layout, transposed, in_axis, out_axis)
    return fans_of(dims, ax)


def fans_of(shape: tuple[int, ...], ax: Axes) -> tuple[int, int]:
    """(fan_in, fan_out) for already resolved axes."""
    receptive = math.prod(shape[k] for k in ax.kernel_axes)
    return shape[ax.in_axis] * receptive, shape[ax.out_axis] * receptive
