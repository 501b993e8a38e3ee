"""Helpers for the interrupt tests: run the CLI in its own session and follow its process group
through /proc, never by a global process search (other initlab runs may share the machine)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

#: the command line of a run; SIGINT gets Python's default handler (KeyboardInterrupt), as when a
#: terminal starts it, even if the test runner was started with SIGINT ignored
CLI = [sys.executable, "-c",
       "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
       "from initlab.cli import main; main()"]


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()  # state, ppid, pgrp, ...


def group(pgid: int) -> set[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat(int(entry))
            if f is not None and int(f[2]) == pgid and f[0] != "Z":
                out.add(int(entry))
    return out


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (f := _stat(p)) is not None and f[0] != "Z"}


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


def wait_for(predicate, timeout: float = 300.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
