"""Shared test fixtures and the strict-skip switch.

* ``global_rng_untouched``: a context manager asserting that the code inside draws nothing from
  NumPy's legacy global RNG or Python's ``random`` (initlab has no global random state).
* ``INITLAB_STRICT_SKIPS=1`` (set by ``.ci/run``): every skipped test fails instead, so a broken
  install step (torch, chromium) cannot hide behind an optional-dependency skip in CI.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest


def same_np_state(s: Any, s2: Any) -> bool:
    """The whole legacy state: key array AND position, gauss flag, cached gaussian."""
    return s[0] == s2[0] and np.array_equal(s[1], s2[1]) and s[2:] == s2[2:]


@contextlib.contextmanager
def _untouched() -> Iterator[None]:
    np_state, py_state = np.random.get_state(), random.getstate()
    yield
    assert same_np_state(np_state, np.random.get_state()), "NumPy's global RNG was used"
    assert random.getstate() == py_state, "Python's global random was used"


@pytest.fixture
def global_rng_untouched() -> Callable[[], contextlib.AbstractContextManager[None]]:
    return _untouched


def _strict() -> bool:
    return os.environ.get("INITLAB_STRICT_SKIPS") == "1"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if _strict() and skipped:
        terminalreporter.write_line(
            f"INITLAB_STRICT_SKIPS=1: {len(skipped)} skipped test(s) count as a failure "
            "(a dependency that CI must install is missing)", red=True
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if _strict() and reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
