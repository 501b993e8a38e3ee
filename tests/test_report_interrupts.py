"""Interrupting ``initlab report``: Ctrl-C to the whole process group, SIGTERM and ``kill -9`` of the
main process end the run promptly, leave no process behind and keep the previous report; a temporary
folder left by a killed run is removed by the next run.

Processes are tracked through /proc by process group (each run gets its own session), never by a
global process search: other runs of initlab may be going on on the same machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _procs import CLI, alive, assert_interrupted, group, reaped, signal_group, wait_for, wait_gone

from initlab.report import build


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def leftovers(out: Path) -> list[Path]:
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def tmpdir(out: Path) -> Path:
    """The TMPDIR of a run on ``out`` (where the report's workers leave their results when the explorer is
    built: its activations run in the same pool as the studies)."""
    return out.parent / "tmpdir"


def start(out: Path) -> subprocess.Popen[bytes]:
    tmpdir(out).mkdir(exist_ok=True)
    return subprocess.Popen([*CLI, "report", "--quick", "--out", str(out), "--json", "--jobs", "2"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TMPDIR": str(tmpdir(out))})


def _explorer_running(out: Path) -> bool:
    return any(p.name.startswith("initlab-tasks-") for p in tmpdir(out).iterdir())


def _previous(folder: Path) -> Path:
    out = folder / "rep"
    build(out, quick=True, only="seed003", progress=False, jobs=1, command="initlab report (previous)")
    return out


@pytest.fixture()
def previous(tmp_path: Path) -> Path:
    return _previous(tmp_path)


@pytest.fixture(scope="module")
def shared_previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One previous report for the signal tests (each checks that it stays byte for byte)."""
    return _previous(tmp_path_factory.mktemp("interrupts"))


def _tmp_has(out: Path, what: str) -> bool:
    return any(any(p.name.endswith(what) for p in d.iterdir()) for d in leftovers(out) if d.is_dir())


#: moments of the run at which Ctrl-C arrives: while Python starts, once the workers run, once
#: a study has finished (its figures drawn) while another worker still runs, and later in the pool
#: (the explorer's activations share the worker pool with the studies, longest first: a study has
#: finished and the pool still runs a second later)
MOMENTS = {
    "startup": lambda out: time.sleep(0.5) or True,
    "workers running": lambda out: wait_for(lambda: bool(leftovers(out))) and (time.sleep(1.0) or True),
    "a study finished": lambda out: wait_for(lambda: _tmp_has(out, ".png")),
    "the explorer running": lambda out: (wait_for(lambda: _explorer_running(out) and _tmp_has(out, ".png"))
                                         and (time.sleep(1.0) or True)),
}


@pytest.mark.parametrize(("sig", "moment"), [(signal.SIGINT, m) for m in MOMENTS]
                         + [(signal.SIGTERM, m) for m in list(MOMENTS)[1:]])
def test_signal_to_the_group_ends_the_run_and_keeps_the_previous_report(shared_previous: Path, moment: str,
                                                                         sig: signal.Signals) -> None:
    previous = shared_previous
    before = snapshot(previous)
    with reaped(start(previous)) as proc:
        assert MOMENTS[moment](previous), "the run never reached the moment"
        assert proc.poll() is None, "the run ended before the signal"
        members, err = signal_group(proc, sig)
    assert proc.returncode != 0
    if moment != "startup":
        assert_interrupted(proc, sig, err)
    assert wait_gone(members | group(proc.pid), 5.0) == set()
    assert snapshot(previous) == before
    assert leftovers(previous) == []
    assert not _explorer_running(previous)


def test_workers_keep_default_signal_dispositions_and_die_with_kill_9(previous: Path) -> None:
    """Workers must not inherit the main process's SIGTERM handler; kill -9 of the main process
    takes its workers with it; the next run removes the killed run's temporary folder."""
    before = snapshot(previous)
    proc = start(previous)
    try:
        assert wait_for(lambda: len(group(proc.pid)) >= 3), "the workers never started"
        workers = group(proc.pid) - {proc.pid}

        def caught(pid: int) -> int:
            """The signals with a handler in process ``pid`` (a mask); 0 once it is gone."""
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return 0
            for line in status.splitlines():
                if line.startswith("SigCgt:"):
                    return int(line.split()[1], 16)
            return -1

        term_int = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
        # once a worker runs its study, neither SIGINT nor SIGTERM has a handler there
        assert wait_for(lambda: all(caught(w) & term_int == 0 for w in alive(workers)), 10.0), \
            {w: hex(caught(w)) for w in alive(workers)}
        assert caught(proc.pid) & (1 << (signal.SIGTERM - 1))  # the main process does clean up on SIGTERM
        assert wait_for(lambda: bool(leftovers(previous)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert wait_gone(workers, 5.0) == set()
    assert group(proc.pid) == set()
    assert snapshot(previous) == before
    stale = leftovers(previous)
    assert len(stale) == 1 and f"tmp-{proc.pid}." in stale[0].name  # kill -9 cannot clean up...
    summary = build(previous, quick=True, seed=3, only="seed003", progress=False, jobs=1)  # ...the next run does
    assert summary.failed == []
    assert leftovers(previous) == []
    assert json.loads((previous / "results.json").read_text())["provenance"]["seed"] == 3


def test_only_stale_temporary_folders_are_removed(tmp_path: Path) -> None:
    from initlab.report.build import _clean_stale, _owner_tag

    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "rep"
    out.mkdir()
    mine = tmp_path / f".rep.tmp-{_owner_tag()}-abc"  # a run of this very process: alive
    gone = tmp_path / f".rep.tmp-{dead.pid}.1-abc"
    reused = tmp_path / f".rep.tmp-{os.getpid()}.1-abc"  # our PID but another start time: a dead run
    other = tmp_path / f".report2.tmp-{dead.pid}.1-abc"  # another report's folder
    for d in (mine, gone, reused, other):
        d.mkdir()
        (d / "index.html").write_text("x")
    removed = _clean_stale(out)
    assert sorted(removed) == sorted([gone, reused])
    assert mine.exists() and other.exists() and not gone.exists() and not reused.exists()


def test_a_run_killed_between_the_two_renames_gets_its_report_back(tmp_path: Path) -> None:
    """The fallback swap (no renameat2) renames the report aside, then the new one in: a kill -9
    between the two leaves no report, only its ``.old-`` folder; the next run puts it back first."""
    from initlab.report.build import _clean_stale

    dead = subprocess.Popen(["true"])
    dead.wait()
    prev = tmp_path / "prev"
    build(prev, quick=True, only="seed003", progress=False, jobs=1)
    out = tmp_path / "rep"
    aside = tmp_path / f".rep.old-{dead.pid}.1-xyz"
    os.replace(prev, aside)
    before = snapshot(aside)
    _clean_stale(out)
    assert snapshot(out) == before and not aside.exists()


def test_a_worker_that_dies_shows_its_study_failed(tmp_path: Path) -> None:
    """A worker killed on its own (out of memory, kill -9 of the worker) is a failed study, not a hang."""
    code = (
        "import os, signal, sys\n"
        "import initlab.report\n"
        "b = sys.modules['initlab.report.build']\n"
        "real = b._study_job\n"
        "def job(name, *a):\n"
        "    if name == 'seed000': os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(name, *a)\n"
        "b._study_job = job\n"
        "s = b.build(sys.argv[1], quick=True, only='seed003,seed000', progress=False, jobs=2)\n"
        "print(s.failed, [r.error for r in s.results if not r.ok])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "['seed000']" in proc.stdout and "killed by SIGKILL" in proc.stdout


@pytest.mark.parametrize("platform", ["linux", "other"])
def test_a_worker_dies_with_its_parent(platform: str) -> None:
    """``die_with_parent`` (shared by every worker): PR_SET_PDEATHSIG on Linux, a thread polling
    getppid() elsewhere."""
    code = (
        "import os, sys, time\n"
        "from initlab import _workers as b\n"
        "parent = os.getpid()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        f"    sys.platform = {'linux' if platform == 'linux' else 'darwin'!r}\n"
        "    b.die_with_parent(parent)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        time.sleep(0.5)  # the child has armed its parent-death check
        assert alive({child}) == {child}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_gone({child}, 5.0) == set()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        if alive(group(proc.pid)):
            os.killpg(proc.pid, signal.SIGKILL)


def test_ctrl_c_typed_in_a_terminal_with_the_progress_bar(shared_previous: Path) -> None:
    """^C typed into a pseudo-terminal: the line discipline sends SIGINT to the foreground process
    group, as a real terminal does; with a terminal the progress bar runs (a thread), so workers are
    started with the spawn method."""
    import pty
    import select

    previous = shared_previous
    before = snapshot(previous)
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.execv(sys.executable, [*CLI, "report", "--quick", "--out", str(previous)])
    output = b""

    def drain(seconds: float) -> None:
        nonlocal output
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    return

    status, reaped = 0, False
    try:
        deadline = time.monotonic() + 120
        while not (len(group(pid)) >= 3 and leftovers(previous)) and time.monotonic() < deadline:
            drain(0.1)  # until the workers run
        members = group(pid)
        assert len(members) >= 3, output.decode(errors="replace")
        drain(1.0)
        os.write(fd, b"\x03")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                reaped = True
                break
            drain(0.1)
        drain(0.2)
    finally:
        if not reaped:  # a hang: end it, then fail below
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert reaped and os.waitstatus_to_exitcode(status) == 130, output.decode(errors="replace")
    assert b"initlab: interrupted" in output and b"Traceback" not in output
    assert wait_gone(members, 5.0) == set()
    assert snapshot(previous) == before
    assert leftovers(previous) == []
