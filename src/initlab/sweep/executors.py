"""Running a sweep: tasks (stacks of cells), executors (serial, process, ray) and resuming.

A *task* is a list of ``(idx, config)`` cells of one shape (:func:`initlab.sweep.stacked.stack_key`),
at most ``stack`` long; :func:`run_task` is pure and picklable (config in, results out), so any
executor gives bitwise the same rows. Rows are stored as each task finishes; a rerun skips the
cells already in the store.

* ``serial``: tasks run one after the other in this process.
* ``process`` (default): a pool of ``workers`` spawned processes, one task in flight per worker.
  Workers ignore Ctrl-C (the parent stops them), die with the parent (Linux
  ``PR_SET_PDEATHSIG`` plus a parent-pid watchdog: no orphans after ``kill -9`` of the main
  process) and a worker that dies mid-task is replaced and its task run again (twice at most).
* ``ray``: Ray core tasks (``ray.init()`` locally with ``workers`` CPUs, or ``ray_address`` /
  ``RAY_ADDRESS`` for a cluster; Ray retries a task whose worker died).

BLAS threads and workers are planned together: each worker gets ``cores // workers`` BLAS threads
(threadpoolctl), and stacks of small networks always run on one thread.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from initlab import _workers
from initlab._validation import check_choice, check_int
from initlab.sweep.spec import SweepSpec, cell_key, parse_spec
from initlab.sweep.stacked import stack_key, train_stack
from initlab.sweep.store import SweepStore

__all__ = ["EXECUTORS", "SweepRun", "plan_tasks", "run_task", "run_sweep", "cores", "plan_threads"]

EXECUTORS = ("serial", "process", "ray")
Task = list[tuple[int, dict[str, Any]]]
Progress = Callable[[int, int, int], None]
#: times a task is re-run after its worker died, before the sweep gives up
MAX_RETRIES = 2


def cores() -> int:
    """CPU cores this process may use (``sched_getaffinity`` where it exists)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def plan_threads(workers: int) -> int:
    """BLAS threads per worker so that workers × threads <= cores.

    >>> plan_threads(cores()) == 1
    True
    """
    return max(1, cores() // max(1, workers))


def plan_tasks(cells: list[tuple[int, dict[str, Any]]], stack: int) -> list[Task]:
    """Group cells of one shape (grid order kept) and cut each group into tasks of <= ``stack``.

    >>> cells = [(i, {"depth": d, "sigma_w2": s, "seed": 0}) for i, (d, s) in enumerate([(2, 1.), (3, 1.), (2, 2.)])]
    >>> [[i for i, _ in t] for t in plan_tasks(cells, 16)]
    [[0, 2], [1]]
    """
    stack = check_int("stack", stack, low=1)
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for idx, cfg in cells:
        groups.setdefault(stack_key(cfg), []).append((idx, cfg))
    tasks: list[Task] = []
    for members in groups.values():
        n = math.ceil(len(members) / stack)
        size = math.ceil(len(members) / n)  # even chunks
        tasks.extend(members[i : i + size] for i in range(0, len(members), size))
    return tasks


def run_task(task: Task, threads: int | None = None) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """Train one task's cells as one stack: ``[(idx, config, result), ...]``."""
    results = train_stack([cfg for _, cfg in task], threads=threads)
    return [(idx, cfg, res) for (idx, cfg), res in zip(task, results)]


@dataclass
class SweepRun:
    """What :func:`run_sweep` did."""

    store: str
    executor: str
    workers: int
    cells: int
    already_done: int
    computed: int
    seconds: float
    tasks: int
    worker_restarts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store, "executor": self.executor, "workers": self.workers, "cells": self.cells,
            "already_done": self.already_done, "computed": self.computed, "seconds": self.seconds,
            "tasks": self.tasks, "worker_restarts": self.worker_restarts,
        }


# -- process pool ----------------------------------------------------------------------------------
def _worker_main(conn: Any, parent: int, threads: int) -> None:
    """A pool worker: receive tasks, send back results, until told to stop or orphaned."""
    _workers.worker_signals(sigint_ignored=True)
    _workers.die_with_parent(parent)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        tid, task = msg
        try:
            conn.send(("ok", tid, run_task(task, threads)))
        except Exception as e:  # noqa: BLE001 - reported to the parent, which raises
            conn.send(("error", tid, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


class _Pool:
    def __init__(self, workers: int, threads: int) -> None:
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")
        self.threads = threads
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self.restarts = 0
        for _ in range(workers):
            self._start()

    def _start(self, slot: int | None = None) -> None:
        parent_conn, child_conn = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker_main, args=(child_conn, os.getpid(), self.threads), daemon=True,
                             name="initlab-sweep-worker")
        with _workers.signals_held():  # unblocked in the worker once its dispositions are set
            p.start()
        child_conn.close()
        if slot is None:
            self.procs.append(p)
            self.conns.append(parent_conn)
        else:
            self.procs[slot], self.conns[slot] = p, parent_conn

    def replace(self, slot: int) -> None:
        try:
            self.conns[slot].close()
        except OSError:
            pass
        self.procs[slot].join(timeout=1)
        self.restarts += 1
        self._start(slot)

    def close(self, graceful: bool) -> None:
        for c in self.conns:
            if graceful:
                try:
                    c.send(None)
                except (OSError, BrokenPipeError):
                    pass
        # told to exit: 5 s to finish; else SIGTERM (their default disposition ends them), then SIGKILL
        _workers.stop(self.procs, 5.0 if graceful else 2.0, terminate=not graceful)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def _run_process(tasks: list[Task], workers: int, threads: int, on_result: Callable[[list[Any]], None]) -> int:
    from multiprocessing.connection import wait

    pool = _Pool(min(workers, max(1, len(tasks))), threads)
    pending: deque[int] = deque(range(len(tasks)))
    inflight: dict[int, int] = {}  # slot -> task id
    retries: dict[int, int] = {}
    graceful = False
    try:
        while pending or inflight:
            for slot in range(len(pool.procs)):
                if slot not in inflight and pending:
                    tid = pending.popleft()
                    try:
                        pool.conns[slot].send((tid, tasks[tid]))
                        inflight[slot] = tid
                    except (OSError, BrokenPipeError):
                        pending.appendleft(tid)
                        pool.replace(slot)
            busy = list(inflight)
            waitables = {pool.conns[s]: s for s in busy}
            sentinels = {pool.procs[s].sentinel: s for s in busy}
            ready = wait(list(waitables) + list(sentinels))
            dead: set[int] = set()
            for r in ready:
                if r in waitables:
                    slot = waitables[r]
                    try:
                        status, tid, payload = r.recv()
                    except (EOFError, OSError):
                        dead.add(slot)
                        continue
                    if status == "error":
                        cfg = tasks[tid][0][1]
                        raise RuntimeError(f"A sweep task failed (first cell {cell_key(cfg)}): {payload}")
                    inflight.pop(slot, None)
                    on_result(payload)
                else:
                    dead.add(sentinels[r])
            for slot in dead:
                if slot not in inflight:
                    continue
                tid = inflight.pop(slot)
                code = pool.procs[slot].exitcode
                retries[tid] = retries.get(tid, 0) + 1
                if retries[tid] > MAX_RETRIES:
                    raise RuntimeError(
                        f"A sweep worker died {retries[tid]} times on the same task (exit code {code}); "
                        "finished cells are stored: rerun the same command to resume."
                    )
                pending.appendleft(tid)
                pool.replace(slot)
        graceful = True
    finally:
        pool.close(graceful)
    return pool.restarts


def _ray_task(task: Task, threads: int) -> list[Any]:
    return run_task(task, threads)


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("The 'ray' executor needs Ray: pip install 'initlab[ray]' (or ray).") from None
    return ray


def _run_ray(tasks: list[Task], workers: int | None, address: str | None, on_result: Callable[[list[Any]], None]) -> int:
    ray = _require_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address is None:
            kw["num_cpus"] = workers or cores()
        ray.init(address=address, **kw)
        started = True
    try:
        # one CPU per task, one BLAS thread per task: Ray packs tasks onto every core
        remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_ray_task)
        refs = [remote.remote(t, 1) for t in tasks]
        try:
            while refs:
                done, refs = ray.wait(refs, num_returns=1)
                try:
                    items = ray.get(done[0])
                except ray.exceptions.RayError as e:
                    raise RuntimeError(f"A sweep task failed on Ray: {e}") from None
                on_result(items)
        finally:
            for r in refs:
                ray.cancel(r, force=True)
    finally:
        if started:
            ray.shutdown()
    return 0


def run_sweep(
    spec: Any,
    store: str | os.PathLike[str],
    *,
    executor: str = "process",
    workers: int | None = None,
    ray_address: str | None = None,
    stack: int = 16,
    progress: Progress | None = None,
) -> SweepRun:
    """Run (or resume) a sweep into the SQLite store at ``store``; only missing cells are computed.

    ``progress(done_now, done_total, cells)`` is called after each stored task.
    """
    sp: SweepSpec = parse_spec(spec)
    executor = check_choice("executor", executor, EXECUTORS)
    if workers is not None:
        workers = check_int("workers", workers, low=1)
    n_workers = 1 if executor == "serial" else (workers or cores())
    if executor == "ray":
        _require_ray()
    t0 = time.perf_counter()
    with SweepStore.open(store, sp) as st:
        cells = sp.cells()
        done = st.done_keys()
        todo = [(i, c) for i, c in enumerate(cells) if cell_key(c) not in done]
        already = len(cells) - len(todo)
        tasks = plan_tasks(todo, stack)
        count = [already]

        def on_result(items: list[Any]) -> None:
            count[0] += st.add(items)
            if progress is not None:
                progress(len(items), count[0], len(cells))

        if progress is not None:
            progress(0, already, len(cells))
        restarts = 0
        if tasks:
            if executor == "serial":
                for t in tasks:
                    on_result(run_task(t, None))
            elif executor == "process":
                restarts = _run_process(tasks, n_workers, plan_threads(n_workers), on_result)
            else:
                restarts = _run_ray(tasks, workers, ray_address, on_result)
        computed = count[0] - already
    return SweepRun(
        store=str(store), executor=executor, workers=n_workers, cells=len(cells), already_done=already,
        computed=computed, seconds=time.perf_counter() - t0, tasks=len(tasks), worker_restarts=restarts,
    )
