"""Interrupting ``initlab explore`` (its activations run in worker processes, :mod:`initlab._workers`):
Ctrl-C or SIGTERM to the whole process group mid-build ends it within seconds and leaves no process
and no temporary file; ``kill -9`` of the main process takes its workers with it.

Processes are tracked through /proc by process group (each run gets its own session), never by a
global process search: other runs of initlab may be going on on the same machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from _procs import CLI, alive, assert_interrupted, group, reaped, signal_group, wait_for, wait_gone


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """``initlab explore --quick`` with two workers, its temporary files (TMPDIR) in ``tmp_path``."""
    out, tmp = tmp_path / "explore", tmp_path / "tmpdir"
    tmp.mkdir()
    proc = subprocess.Popen([*CLI, "explore", "--quick", "--out", str(out), "--jobs", "2"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TMPDIR": str(tmp)})
    return proc, out, tmp


def workers_running(proc: subprocess.Popen[bytes]) -> set[int]:
    """The run's worker processes, once both run (the main process and two workers in its group)."""
    assert wait_for(lambda: len(group(proc.pid)) >= 3 or proc.poll() is not None, 120.0)
    assert proc.poll() is None, "the explorer ended before its workers ran"
    return group(proc.pid) - {proc.pid}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_group_mid_build_ends_it_promptly(tmp_path: Path, sig: signal.Signals) -> None:
    proc, out, tmp = start(tmp_path)
    with reaped(proc):
        workers_running(proc)
        time.sleep(1.0)  # the workers build (a fast one may finish and be replaced by the next task's)
        assert proc.poll() is None and alive(group(proc.pid) - {proc.pid})  # mid-build: workers running
        members, err = signal_group(proc, sig)
    assert_interrupted(proc, sig, err)
    assert wait_gone(members | group(proc.pid), 5.0) == set()
    assert not (out / "index.html").exists()
    assert list(tmp.iterdir()) == []  # the workers' result folder is removed


def test_kill_9_of_the_main_process_takes_the_workers_with_it(tmp_path: Path) -> None:
    proc, _, _ = start(tmp_path)
    with reaped(proc):
        workers = workers_running(proc)
        assert alive(workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)  # orphaned workers would hold its pipes open
    assert proc.returncode == -signal.SIGKILL
    # at once (the kernel's parent-death signal), not once a worker finishes its task (seconds later)
    assert wait_gone(workers, 1.5) == set()
    assert group(proc.pid) == set()
