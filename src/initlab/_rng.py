"""Random-state handling: every random draw in initlab flows from an explicit seed or Generator.

There is no global random state anywhere in initlab. Functions that draw take ``rng``: an ``int``
seed, a :class:`numpy.random.Generator`, or ``None`` (fresh OS entropy, so two unseeded calls
differ, as a user expects from "random").
"""

from __future__ import annotations

from typing import Union

import numpy as np

RngLike = Union[None, int, np.integer, np.random.Generator, np.random.SeedSequence]

__all__ = ["RngLike", "as_generator", "child_seeds", "spawn_root", "derive", "streams", "PURPOSES"]


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
    return spawn_root(rng, name=name).spawn(n)


def spawn_root(rng: RngLike, *, name: str = "rng") -> np.random.SeedSequence:
    """The SeedSequence whose children :func:`child_seeds` returns, made by one draw from ``rng``:
    child ``i`` is ``derive(spawn_root(rng), i)``, so a worker can make its own child seed.

    >>> root = spawn_root(3)
    >>> derive(root, 1).generate_state(1).tolist() == child_seeds(3, 2)[1].generate_state(1).tolist()
    True
    """
    gen = as_generator(rng, name=name)
    return np.random.SeedSequence(int(gen.integers(0, 2**63 - 1, dtype=np.int64)))


#: the purposes a Network draws for, with the key of each derived stream ("init" is the seed's own
#: stream, so a seeded network's initial weights are what the seed alone gives)
PURPOSES = {"init": None, "dropout": 1, "data": 2}


def derive(rng: RngLike, *keys: int, name: str = "rng") -> np.random.SeedSequence:
    """The child seed for sub-purpose ``keys`` of ``rng``, WITHOUT drawing from it.

    * an int seed ``s``: ``SeedSequence([s, *keys])`` (the studies' sub-experiment seeds);
    * a SeedSequence ``ss``: its child ``SeedSequence(ss.entropy, spawn_key=ss.spawn_key + keys)``
      (what ``ss.spawn`` gives, by key instead of by call order);
    * a Generator: the child of the SeedSequence it was seeded from (its stream is not advanced);
    * None: fresh OS entropy.

    The only seed-derivation rule of initlab besides :func:`child_seeds` (which draws from a stream
    to give per-block seeds).

    >>> derive(7, 2).generate_state(1).tolist() == np.random.SeedSequence([7, 2]).generate_state(1).tolist()
    True
    >>> ss = np.random.SeedSequence(5)
    >>> derive(ss, 1).generate_state(1).tolist() == np.random.SeedSequence(5).spawn(2)[1].generate_state(1).tolist()
    True
    """
    ks = tuple(int(k) for k in keys)
    if isinstance(rng, np.random.Generator):
        ss = getattr(rng.bit_generator, "seed_seq", None)
        if not isinstance(ss, np.random.SeedSequence):
            ss = np.random.SeedSequence(int(rng.integers(0, 2**63 - 1, dtype=np.int64)))
        rng = ss
    if isinstance(rng, np.random.SeedSequence):
        return np.random.SeedSequence(rng.entropy, spawn_key=tuple(rng.spawn_key) + ks)
    if rng is None:
        return np.random.SeedSequence()
    as_generator(rng, name=name)  # validates the int seed
    return np.random.SeedSequence([int(rng), *ks])


def streams(rng: RngLike, *, name: str = "rng") -> dict[str, np.random.Generator]:
    """Independent Generators by purpose (:data:`PURPOSES`): ``init``, ``dropout``, ``data``.

    ``init`` is ``as_generator(rng)`` itself; the others are :func:`derive` children, so drawing
    initial weights never moves the data order or the dropout masks: with the same seed, two
    networks with different inits see the same mini-batches.

    >>> a, b = streams(0), streams(0)
    >>> _ = a["init"].normal(size=1000)     # a different init draws more or fewer numbers
    >>> a["data"].permutation(5).tolist() == b["data"].permutation(5).tolist()
    True
    """
    init = as_generator(rng, name=name)
    root: RngLike = rng if rng is not None else init
    return {p: init if k is None else np.random.default_rng(derive(root, k)) for p, k in PURPOSES.items()}
