"""Plain-JSON conversion shared by the CLI, the probe and the report."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON version of ``obj``: numpy scalars/arrays to Python, NaN/inf to None, tuples to lists.

    >>> import numpy as np
    >>> to_jsonable({"a": np.float32(0.5), "b": (1, float("nan")), "c": np.arange(2)})
    {'a': 0.5, 'b': [1, None], 'c': [0, 1]}
    """
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
