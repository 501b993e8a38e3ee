"""Helpers for the interrupt tests: run the CLI in its own session and follow its process group
through /proc, never by a global process search (other initlab runs may share the machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

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


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """Kill ``proc``'s process group on the way out if it still runs (a failed test leaves nothing)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):  # no unclosed pipe left for the GC to warn about
            if f is not None:
                f.close()


def signal_group(proc: subprocess.Popen[bytes], sig: int, timeout: float = 20.0) -> tuple[set[int], str]:
    """Send ``sig`` to the process group of ``proc`` (started in its own session) and wait for it to end,
    promptly (a hang raises TimeoutExpired): the group's members before, and its standard error."""
    members = group(proc.pid)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=timeout)
    return members, err.decode()


def assert_interrupted(proc: subprocess.Popen[bytes], sig: int, err: str) -> None:
    """The CLI ended as interrupted: 130 and one line for Ctrl-C, 128 + N for SIGTERM; no traceback."""
    assert proc.returncode == (130 if sig == signal.SIGINT else 128 + sig), err
    if sig == signal.SIGINT:
        assert err.strip().splitlines()[-1] == "initlab: interrupted"
    assert "Traceback" not in err
