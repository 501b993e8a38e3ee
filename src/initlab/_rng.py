"""Random-state handling: every random draw in initlab flows from an explicit seed or Generator.

There is no global random state anywhere in initlab. Functions that draw take ``rng``: an ``int``
seed, a :class:`numpy.random.Generator`, or ``None`` (fresh OS entropy, so two unseeded calls
differ, as a user expects from "random").
"""

from __future__ import annotations

from typing import Union

import numpy as np

RngLike = Union[None, int, np.integer, np.random.Generator, np.random.SeedSequence]

__all__ = ["RngLike", "as_generator", "child_seeds"]


def as_generator(rng: RngLike, *, name: str = "rng") -> np.random.Generator:
    """Turn ``rng`` (None, an int seed, a SeedSequence or a Generator) into a Generator.

    A Generator is returned as is (the caller's stream advances); an int seeds a new PCG64.

    >>> as_generator(0).integers(0, 10, 3).tolist() == as_generator(0).integers(0, 10, 3).tolist()
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int seed, a numpy.random.Generator or None; got bool {rng!r}")
    if isinstance(rng, (int, np.integer)):
        if rng < 0:
            raise ValueError(f"{name} must be a non-negative int seed; got {int(rng)}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name} must be an int seed, a numpy.random.Generator or None; got {type(rng).__name__} {rng!r}"
    )


def child_seeds(rng: RngLike, n: int, *, name: str = "rng") -> list[np.random.SeedSequence]:
    """``n`` independent SeedSequences derived from ``rng`` by one draw from it.

    Used to give each block of a large array its own stream, so that the result does not depend
    on how many threads fill the blocks.

    >>> a = [int(s.generate_state(1)[0]) for s in child_seeds(3, 2)]
    >>> b = [int(s.generate_state(1)[0]) for s in child_seeds(3, 2)]
    >>> a == b and a[0] != a[1]
    True
    """
    gen = as_generator(rng, name=name)
    entropy = int(gen.integers(0, 2**63 - 1, dtype=np.int64))
    return np.random.SeedSequence(entropy).spawn(n)
