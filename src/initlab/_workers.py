"""Worker processes, defined once: how a worker is started, dies with its parent and is stopped.

Used by the report's studies (:mod:`initlab.report.build`), the explorer
(:mod:`initlab.report.explore`) and the sweep's process pool (:mod:`initlab.sweep.executors`).

The rules every worker follows:

* it dies with the main process, however that ends (``kill -9`` included): :func:`die_with_parent`;
* it never runs a Python signal handler inherited from the main process: :func:`worker_signals`
  resets SIGINT/SIGTERM to their default dispositions (SIGINT may stay ignored), and
  :func:`signals_held` keeps both blocked while a worker is forked so none arrives in between;
* it is stopped with SIGTERM, then SIGKILL after a grace period, and reaped: :func:`stop`.

:func:`run_tasks` runs picklable tasks, one worker process each, at most ``jobs`` at a time; a
worker leaves its result in a file (never a pipe the parent must drain before it can stop), so
Ctrl-C or SIGTERM in the main process stops everything within the grace period.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a worker: end as soon as the main process ``parent`` ends, however it ends.

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere a daemon thread polls ``os.getppid()`` every 0.2 s. Either way, a parent already
    gone when the worker starts ends it at once.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:
        os._exit(1)
    if armed:
        return

    def _watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=_watch, name="initlab-parent-watch", daemon=True).start()


def worker_signals(*, sigint_ignored: bool = False) -> None:
    """In a worker, first thing: SIGTERM and SIGINT back to their default dispositions (SIGINT
    ignored with ``sigint_ignored``), then both unblocked (:func:`signals_held` may have blocked
    them while the worker was started). A Python handler inherited through fork is never in force."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold back SIGINT/SIGTERM (delivered afterwards) in the main thread: while folders are swapped
    or a worker is started (a worker inherits the blocked mask and unblocks in :func:`worker_signals`)."""
    can = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if can:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        if can:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def sigterm_as_exit(*, only_if_default: bool = False) -> Iterator[None]:
    """In the main thread of the main process: SIGTERM raises ``SystemExit(143)`` meanwhile, so
    ``finally`` blocks run (workers stopped, temporary files removed); with ``only_if_default``, only
    where SIGTERM has no handler yet (a caller's own handler is kept). Workers never keep this
    handler (:func:`worker_signals`)."""
    if threading.current_thread() is not threading.main_thread() or (
            only_if_default and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def _term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, _term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def start_method() -> str:
    """``"fork"`` while this process has a single thread (cheap, and safe then), else ``"spawn"``.

    >>> start_method() in ("fork", "spawn")
    True
    """
    import multiprocessing as mp

    return "fork" if "fork" in mp.get_all_start_methods() and threading.active_count() == 1 else "spawn"


def stop(procs: Sequence[Any], grace: float = 2.0, *, terminate: bool = True) -> None:
    """End the ``multiprocessing`` processes ``procs``: SIGTERM (skipped with ``terminate=False``,
    when they were asked to exit another way), SIGKILL to those still alive after ``grace`` s; reap all."""
    if terminate:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        with contextlib.suppress(Exception):
            if proc.is_alive():
                proc.kill()
            proc.join(5.0)


@dataclass
class Failure:
    """A task that gave no result: the error it raised (``error``, with ``message``), or how its worker
    died (``exitcode``: negative for a signal)."""

    message: str
    exitcode: int | None = None
    error: BaseException | None = None


def _task_main(fn: Callable[..., Any], args: tuple[Any, ...], result_path: str, parent: int,
               sigint_ignored: bool) -> None:
    """A :func:`run_tasks` worker: run ``fn(*args)``, pickle the outcome to ``result_path``."""
    worker_signals(sigint_ignored=sigint_ignored)
    die_with_parent(parent)
    try:
        data = pickle.dumps(fn(*args), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # reported to the parent as a Failure
        msg = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
        try:
            data = pickle.dumps(Failure(msg, error=e), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an unpicklable exception: its text is enough
            data = pickle.dumps(Failure(msg), protocol=pickle.HIGHEST_PROTOCOL)
    part = result_path + ".part"
    with open(part, "wb") as fh:
        fh.write(data)
    os.replace(part, result_path)


def _died(code: int | None) -> Failure:
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with status {code} without a result"
    return Failure(f"the worker process {how} (out of memory, or killed)", exitcode=code)


def run_tasks(fn: Callable[..., Any], args_list: Sequence[tuple[Any, ...]], jobs: int, *,
              folder: str | os.PathLike[str] | None = None, names: Sequence[str] | None = None,
              on_start: Callable[[list[int]], None] | None = None,
              on_done: Callable[[int], None] | None = None, grace: float = 2.0) -> list[Any]:
    """``[fn(*args) for args in args_list]``, each task in its own worker process, ``jobs`` at a time
    (in this process, one after the other, with ``jobs <= 1``), started in the order given.

    A task that raises, or whose worker dies, gives a :class:`Failure` in its place. A worker killed
    by SIGINT (Ctrl-C reached it first) raises KeyboardInterrupt here, unless SIGINT is ignored.
    On any exception here (Ctrl-C, SystemExit from a SIGTERM handler) the running workers are
    stopped (:func:`stop`) before it propagates; meanwhile SIGTERM raises SystemExit(143) where it
    had no handler (:func:`sigterm_as_exit`). Results travel through files in ``folder``
    (default: a temporary folder, removed afterwards). ``on_start`` gets the indices running after
    each start, ``on_done`` the index of each finished task.

    >>> run_tasks(divmod, [(7, 2), (9, 4)], jobs=2)
    [(3, 1), (2, 1)]
    """
    n = len(args_list)
    results: list[Any] = [None] * n
    if jobs <= 1:
        for i, args in enumerate(args_list):
            if on_start is not None:
                on_start([i])
            try:
                results[i] = fn(*args)
            except Exception as e:  # as in a worker: the task failed, the others still run
                results[i] = Failure(f"{type(e).__name__}: {e}\n{traceback.format_exc()}", error=e)
            if on_done is not None:
                on_done(i)
        return results
    with sigterm_as_exit(only_if_default=True):
        return _run_in_workers(fn, args_list, jobs, folder, names, on_start, on_done, grace)


def _run_in_workers(fn: Callable[..., Any], args_list: Sequence[tuple[Any, ...]], jobs: int,
                    folder: str | os.PathLike[str] | None, names: Sequence[str] | None,
                    on_start: Callable[[list[int]], None] | None, on_done: Callable[[int], None] | None,
                    grace: float) -> list[Any]:
    import multiprocessing as mp
    from multiprocessing.connection import wait

    n = len(args_list)
    results: list[Any] = [None] * n
    own = folder is None
    where = Path(tempfile.mkdtemp(prefix="initlab-tasks-") if folder is None else folder)
    ctx = mp.get_context(start_method())
    sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    pending = list(range(n))
    running: dict[Any, tuple[int, Any, Path]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i = pending.pop(0)
                path = where / f".task-{os.getpid()}-{i}.result.pickle"
                proc = ctx.Process(target=_task_main, daemon=True,
                                   name=names[i] if names is not None else f"initlab-worker-{i}",
                                   args=(fn, tuple(args_list[i]), str(path), os.getpid(), sigint_ignored))
                with signals_held():
                    proc.start()
                running[proc.sentinel] = (i, proc, path)
                if on_start is not None:
                    on_start([j for j, _, _ in running.values()])
            for sentinel in wait(list(running)):
                i, proc, path = running.pop(sentinel)
                proc.join()
                code = proc.exitcode
                with contextlib.suppress(Exception):
                    proc.close()
                if code == 0 and path.is_file():
                    with open(path, "rb") as fh:
                        results[i] = pickle.load(fh)
                    path.unlink()
                elif code is not None and code < 0 and -code == signal.SIGINT and not sigint_ignored:
                    raise KeyboardInterrupt  # Ctrl-C reached the worker first: the whole run is interrupted
                else:
                    results[i] = _died(code)
                if on_done is not None:
                    on_done(i)
    except BaseException:
        stop([proc for _, proc, _ in running.values()], grace)
        raise
    finally:
        if own:
            shutil.rmtree(where, ignore_errors=True)
    return results
