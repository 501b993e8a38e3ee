"""matplotlib in one place: :func:`pyplot` selects the non-interactive Agg backend and returns
``matplotlib.pyplot``.

Every figure initlab draws (report, sweep, theory's phase diagram, the probe's and the watch's
plots, ``initlab train --plot``) goes through this helper, so the backend is chosen once and the
same way. matplotlib is imported inside the function: importing initlab (and starting the CLI)
never loads it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend (files only, no display needed).

    >>> plt = pyplot()
    >>> import matplotlib
    >>> matplotlib.get_backend().lower()
    'agg'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
