"""Build the report: run the studies, draw their figures, write index.html and results.json.

The report is written atomically. Everything goes into a fresh temporary folder beside ``out_dir``
(``.<name>.tmp-<pid>.<start>-*``, named after the process that owns it); only when it is complete
is it swapped in (one atomic ``renameat2(RENAME_EXCHANGE)`` on Linux, else two renames), during
which SIGINT/SIGTERM are held back. An interrupted run (Ctrl-C, SIGTERM, an exception) stops its
workers, removes its temporary folder and leaves the previous report untouched; a rerun replaces
the report. A run killed outright (``kill -9``) cannot clean up: the next run removes the
temporary folders whose owning process is gone (and, should the kill have fallen between the two
renames of the fallback swap, puts the previous report back). A folder that exists but is not an
initlab report (it has files but no ``results.json`` written by initlab) is never replaced: that
raises ValueError.

Studies run in worker processes (``jobs`` > 1), one process per study, by :func:`initlab._workers.run_tasks`
(the mechanism shared with the explorer and the sweep); with ``explore`` the explorer's activations
are tasks of the same pool, so it overlaps with the studies. Tasks start longest first (:data:`_COST`),
and the modules every task needs are imported once before the workers are forked (:func:`_preload`).
A worker starts with
SIGINT and SIGTERM at their default dispositions (SIGINT stays ignored when the main process
ignores it, as under ``nohup``), so Ctrl-C, which the terminal sends to the whole process group,
ends it at once; it dies with the main process (``PR_SET_PDEATHSIG`` on Linux, a thread polling
``os.getppid()`` elsewhere), so even ``kill -9`` of the main process leaves no worker behind. A
worker hands its result back through a file in the temporary folder (with the explorer, a folder of
the pool's own in TMPDIR), never a pipe the main process must drain, so stopping never waits on a blocked writer.

A study that raises an ``Exception`` is shown as failed, with its error, while the others render;
a worker that dies (out of memory, killed) shows its study as failed too. ``KeyboardInterrupt``
and ``SystemExit`` abort the whole build (the previous report stays).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from initlab import _workers
from initlab import studies as _studies
from initlab._validation import bad_type, check_int
from initlab._json import to_jsonable
from initlab.studies._result import StudyResult

__all__ = ["build", "ReportSummary", "parse_only"]

_MARKER = "initlab-report"


@dataclass
class ReportSummary:
    """What :func:`build` did: where the report is, each study's status and the timings."""

    out_dir: Path
    index: Path
    results_json: Path
    figures: list[Path]
    results: list[StudyResult] = field(repr=False)
    seconds: float
    quick: bool
    seed: int

    @property
    def failed(self) -> list[str]:
        return [r.study for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "index": str(self.index),
            "results_json": str(self.results_json),
            "figures": [str(p) for p in self.figures],
            "seconds": round(self.seconds, 3),
            "quick": self.quick,
            "seed": self.seed,
            "studies": [
                {"study": r.study, "status": r.status, "error": r.error, "seconds": round(r.seconds, 3), "summary": r.summary}
                for r in self.results
            ],
            "failed": self.failed,
        }


def parse_only(only: str | Sequence[str] | None) -> list[str]:
    """Study names from ``"seed000,seed002"`` or a list (all when None); ValueError for unknown ones.

    Short forms ``000``, ``0`` and ``seed0`` are accepted.

    >>> parse_only("0,seed002")
    ['seed000', 'seed002']
    """
    all_names = _studies.names()
    if only is None:
        return all_names
    if isinstance(only, str):
        items = [p.strip() for p in only.split(",") if p.strip()]
    elif isinstance(only, (list, tuple)):
        items = [str(p).strip() for p in only]
    else:
        bad_type("only", "a comma-separated string or a list of study names", only)
    if not items:
        raise ValueError(f"The 'only' argument must name at least one of {', '.join(all_names)}; got {only!r}.")
    out: list[str] = []
    for item in items:
        name = item.lower()
        digits = name[4:] if name.startswith("seed") else name
        if digits.isdigit():
            name = f"seed{int(digits):03d}"
        if name not in all_names:
            _studies.get(item)  # raises the standard message with a suggestion
        if name not in out:
            out.append(name)
    return [n for n in all_names if n in out]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    here = Path(__file__).resolve().parent
    try:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None


def _git_commit() -> tuple[str | None, bool | None]:
    """(commit of the checkout initlab runs from, whether it has uncommitted changes); (None, None)
    when initlab is not run from a git checkout or git is missing."""
    proc = _git("rev-parse", "HEAD")
    if proc is None or proc.returncode != 0 or len(proc.stdout.strip()) < 7:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    dirty = None if status is None or status.returncode != 0 else bool(status.stdout.strip())
    return proc.stdout.strip(), dirty


def _provenance(command: str, seed: int, quick: bool, names: list[str], mnist: str | None) -> dict[str, Any]:
    import numpy as np

    from initlab import __version__

    commit, dirty = _git_commit()
    return {
        "tool": _MARKER,
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": {
            "initlab": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": _version("torch"),
            "scipy": _version("scipy"),
            "matplotlib": _version("matplotlib"),
            "scikit-learn": _version("scikit-learn"),
            "mnist1d": _version("mnist1d"),
        },
        "platform": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "seed": seed,
        "quick": quick,
        "studies": names,
        "mnist": mnist,
        "seconds": 0.0,
    }


def rerun_command(name: str, *, seed: int, quick: bool, mnist: str | None) -> str:
    """The exact command that reruns one study into its own folder.

    ``make report`` installs the command into the project's virtual environment, so the command
    names ``.venv/bin/initlab`` (plain ``initlab`` works with the venv activated).

    >>> rerun_command("seed001", seed=0, quick=False, mnist=None)
    '.venv/bin/initlab report --only seed001 --seed 0 --out report-seed001'
    """
    parts = [".venv/bin/initlab", "report", "--only", name, "--seed", str(seed)]
    if quick:
        parts.append("--quick")
    if mnist and name == "seed002":
        parts += ["--mnist", str(mnist)]
    parts += ["--out", f"report-{name}"]
    return shlex.join(parts)


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"The 'out_dir' argument must be a folder (new or a previous initlab report); {str(out)!r} is a file.")
    if not any(out.iterdir()):
        return
    rj = out / "results.json"
    try:
        ok = json.loads(rj.read_text(encoding="utf-8")).get("provenance", {}).get("tool") == _MARKER
    except (OSError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise ValueError(
            f"The 'out_dir' argument must be a new or empty folder or a previous initlab report; {str(out)!r} "
            "has other files, and initlab will not replace it."
        )


# -- temporary folders owned by a process -----------------------------------------------------


def _start_time(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot, from /proc; "0" where unknown),
    so that a reused PID is not taken for the process that made a folder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else "0"


def _owner_tag() -> str:
    """``<pid>.<start time>`` of this process, written into the names of its temporary folders."""
    return f"{os.getpid()}.{_start_time(os.getpid())}"


def _alive(pid: int, start: str) -> bool:
    """Whether process ``pid``, started at ``start``, still runs (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    if stat[stat.rfind(")") + 2:].split()[:1] == ["Z"]:
        return False
    return start == "0" or _start_time(pid) == start


def _clean_stale(out: Path) -> list[Path]:
    """Remove the temporary folders next to ``out`` left by runs that were killed (their owning
    process is gone); if such a run died between the two renames of the fallback swap (``out``
    missing, its ``.old-`` folder there), put the previous report back. Returns what was removed."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(tmp|old)-(\d+)\.(\d+)-")
    removed: list[Path] = []
    try:
        entries = sorted(out.parent.iterdir(), key=lambda p: p.name)
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or not entry.is_dir() or entry.is_symlink() or _alive(int(m.group(2)), m.group(3)):
            continue
        if m.group(1) == "old" and not out.exists():
            with contextlib.suppress(OSError):
                os.replace(entry, out)
                continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def _make_tmp(out: Path, kind: str = "tmp") -> Path:
    """A new folder ``.<out name>.<kind>-<pid>.<start>-XXXX`` beside ``out``; ValueError naming
    'out_dir' when that folder cannot be written."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.{kind}-{_owner_tag()}-", dir=out.parent))
    except OSError as e:
        raise ValueError(f"The 'out_dir' argument must be a folder initlab can create; {str(out)!r} cannot be "
                         f"written ({e.strerror or e}).") from None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux's ``renameat2(RENAME_EXCHANGE)``; False where that is
    not available (another OS, an old libc, a file system without it)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _swap_in(tmp: Path, out: Path) -> None:
    with _workers.signals_held():
        if out.exists() and _exchange(tmp, out):
            old: Path | None = tmp  # tmp now holds the previous report
        else:
            old = None
            if out.exists():
                old = _make_tmp(out, "old")
                old.rmdir()
                os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:
                if old is not None:
                    os.replace(old, out)
                raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _run_one(name: str, *, quick: bool, seed: int, mnist: str | None) -> StudyResult:
    study = _studies.get(name)
    command = rerun_command(name, seed=seed, quick=quick, mnist=mnist)
    t0 = time.perf_counter()
    config: Any = None
    try:
        config = study.config(quick=quick, seed=seed, mnist=mnist)
        result = study.run(config)
    except Exception as e:  # failure isolation: one study's error must not hide the others
        cfg = to_jsonable(config.__dict__) if config is not None and hasattr(config, "__dict__") else {}
        return StudyResult.failed(name, study.title, e, command=command, config=cfg, seconds=time.perf_counter() - t0)
    result.command = command
    result.seconds = time.perf_counter() - t0
    return result


def _draw(result: StudyResult, folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Draw a study's figures into ``folder``: ({figure name: file}, {figure name: error})."""
    from initlab.report import plots

    files: dict[str, str] = {}
    errors: dict[str, str] = {}
    if not result.ok:
        return files, errors
    for f in result.figures:
        fname = f"{result.study}_{f.name}.png"
        try:
            plots.render(f, folder / fname)
        except Exception as e:  # one bad figure must not lose the page
            errors[f.name] = f"{type(e).__name__}: {e}"
        else:
            files[f.name] = fname
    return files, errors


def _study_job(name: str, quick: bool, seed: int, mnist: str | None, folder: str) -> tuple[StudyResult, dict[str, str], dict[str, str]]:
    """Run one study and draw its figures (in a worker process, or in-process with jobs=1)."""
    result = _run_one(name, quick=quick, seed=seed, mnist=mnist)
    files, errors = _draw(result, Path(folder))
    return result, files, errors


#: seconds each task takes in a quick / a full run (quick: CPU seconds of its worker, measured with the
#: 2 workers at a load average of 4-7; full: wall seconds at load 2.5-3; a task includes drawing its
#: figures; "explore-<activation>" is one activation of the explorer, "explore" any of them). Only the
#: order matters: the pool starts the longest first, so the two workers end together.
_COST = {
    True: {"cnn": 6.5, "seed000": 6.0, "seed002": 4.8, "seed001": 2.9, "watch": 2.1, "explore-gelu": 1.7,
           "seed003": 1.65, "explore-selu": 1.5, "explore-tanh": 1.45, "trainability": 1.35, "explore-sigmoid": 1.2,
           "explore-relu": 0.75, "explore-leaky_relu(0.3)": 0.7},
    False: {"cnn": 57.0, "seed002": 35.0, "seed000": 19.0, "trainability": 12.0, "seed001": 11.0, "explore": 10.5,
            "watch": 4.7, "seed003": 2.5},
}


def _cost(quick: bool, name: str) -> float:
    """A task's entry in :data:`_COST`; an explorer activation without its own entry gets ``"explore"``
    (else the mean of the explorer's entries), a task not in the table the largest cost (it starts early).

    >>> _cost(True, "explore-gelu") > _cost(True, "explore-relu"), _cost(False, "explore-gelu")
    (True, 10.5)
    """
    cost = _COST[quick]
    if name in cost:
        return cost[name]
    if name.startswith("explore-"):
        ex = [v for k, v in cost.items() if k.startswith("explore")]
        if ex:
            return cost.get("explore", sum(ex) / len(ex))
    return max(cost.values())


#: modules every forked task would otherwise import again (each task is a fresh fork of this process),
#: imported once here before the pool starts (about 2 s once instead of up to 1.5 s in each of 13 tasks).
#: :data:`_PRELOAD` is what every task needs (an explorer task needs nothing more);
#: :data:`_PRELOAD_STUDIES` (plotting and mnist1d: the larger part) only the studies, so with the
#: explorer this process imports it while the first worker runs an explorer task. scikit-learn is
#: not imported at all where :mod:`initlab.data._sklearn_fast` makes its moons and digits (1.3 s).
_PRELOAD = ("initlab.nn", "initlab.theory", "initlab.diagnostics", "initlab.diagnostics._probe_numpy",
            "initlab.diagnostics._probe_torch", "initlab.data", "initlab.report.explore", "threadpoolctl")
_PRELOAD_STUDIES = ("initlab.report.plots", "mnist1d.data", "initlab.data._sklearn_fast", "initlab.data._mnist1d_fast",
                    "initlab.studies._watchview")
#: activations whose recommended init :func:`_preload` solves along with :data:`_PRELOAD_STUDIES`
_WARM_ACTIVATIONS = ("tanh", "sigmoid")


def _preload(jobs: int, modules: Sequence[str] = _PRELOAD + _PRELOAD_STUDIES) -> None:
    """Import ``modules`` (with :mod:`initlab.report.plots`, also matplotlib's Agg pyplot, warmed up) in this
    process when the workers will be forked from it, so that no task pays for these imports; nothing
    where they are spawned (a spawned worker imports afresh anyway) or run in this process. A module
    that cannot be imported is left to the task that needs it (its error is then shown there)."""
    import importlib

    if jobs <= 1 or _workers.start_method() != "fork":
        return
    for mod in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(mod)
    if "initlab.report.plots" in modules:
        with contextlib.suppress(Exception):
            from initlab.report import plots

            plots._warm()  # the fonts opened and the mathtext parser built once, not in every task
        with contextlib.suppress(Exception):
            from initlab.diagnostics._verdicts import _rec_spec

            # the verdicts' recommended init (the edge of chaos, solved by quadrature) of the two
            # saturating activations most tasks probe: solved here once, not again in each task
            for activation in _WARM_ACTIVATIONS:
                _rec_spec(activation)
        with contextlib.suppress(Exception):
            from PIL import Image

            Image.preinit()  # the image plugins a PNG save imports (else once per task)
    with contextlib.suppress(Exception):
        from initlab._threads import _controller

        _controller()  # threadpoolctl's scan of the loaded libraries, made again only after a new import
    # everything alive now is inherited by the workers: out of the collector's reach (until
    # :func:`_run_all` unfreezes it), so a collection in a worker does not walk, and thereby copy,
    # the inherited heap page by page (20% fewer page faults in the workers, 1-1.5 s less CPU)
    gc.freeze()


def _keep_freed_memory() -> None:
    """In a worker (a process that lives for one task): keep the memory ``free`` returns for the
    next ``malloc`` instead of handing it back to the kernel (glibc's ``mallopt``: no trimming of
    the heap, and arrays up to 512 MiB on the heap rather than in mappings of their own). The
    training loops allocate and free the same large arrays at every step; each fresh mapping was
    paged in again (half the workers' page faults, about 0.5 s of CPU in a quick report). Nothing
    changes where glibc is not the C library. The peak memory stays within a few percent."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_trim_threshold, 512 << 20)
        libc.mallopt(m_mmap_threshold, 512 << 20)


def _pool_job(kind: str, *args: Any) -> Any:
    """One task of the report's worker pool: a study (``"study"``, :func:`_study_job`) or one
    activation of the explorer (``"explore"``, :func:`initlab.report.explore._activation_job`)."""
    if kind == "explore":
        from initlab.report.explore import _activation_job

        return _activation_job(*args)
    return _study_job(*args)


def _worker_job(kind: str, *args: Any) -> Any:
    """:func:`_pool_job` in a worker process of its own, which keeps freed memory for reuse
    (:func:`_keep_freed_memory`)."""
    _keep_freed_memory()
    return _pool_job(kind, *args)


def _failed(name: str, failure: _workers.Failure, *, seed: int, quick: bool,
            mnist: str | None) -> tuple[StudyResult, dict[str, str], dict[str, str]]:
    """A failed result for a study whose worker raised or died (out of memory, killed)."""
    err = failure.error if failure.error is not None else RuntimeError(f"{failure.message}, running {name}")
    study = _studies.get(name)
    return StudyResult.failed(name, study.title, err, command=rerun_command(name, seed=seed, quick=quick, mnist=mnist)), {}, {}


def _run_all(names: list[str], *, quick: bool, seed: int, mnist: str | None, folder: Path, jobs: int,
             bar: Any, task: Any, explore: bool = False) -> tuple[list[tuple[StudyResult, dict[str, str], dict[str, str]]], list[Any]]:
    """Run the studies (and with ``explore`` the explorer's activations) in one pool of worker
    processes (:func:`initlab._workers.run_tasks`; in this process with ``jobs <= 1``), longest first,
    so the explorer overlaps with the studies; their figures are drawn into ``folder``. Returns the
    studies' outcomes in the order of ``names`` and the explorer's outcomes (empty without ``explore``)."""
    from initlab.report.explore import explorer_tasks

    tasks: list[tuple[str, tuple[Any, ...], float]] = [
        (n, ("study", n, quick, seed, mnist, str(folder)), _cost(quick, n)) for n in names]
    if explore:
        tasks += [(f"explore-{a[0]}", ("explore", *a), _cost(quick, f"explore-{a[0]}"))
                  for a in explorer_tasks(seed, quick=quick)]
    if jobs > 1:
        tasks.sort(key=lambda t: -t[2])  # stable: ties keep the registry's order
        first = next((k for k, t in enumerate(tasks) if t[0].startswith("explore-")), None)
        if first is not None and len(tasks) > 1:
            # the longest explorer task first: it needs none of the studies' modules, so this process
            # imports those (_PRELOAD_STUDIES) while that task runs, and forks the studies afterwards
            tasks.insert(0, tasks.pop(first))
    order = [t[0] for t in tasks]
    _preload(jobs, _PRELOAD)
    studies_loaded = not (jobs > 1 and order[0].startswith("explore-"))
    if studies_loaded:
        _preload(jobs, _PRELOAD_STUDIES)
    suffix = " (quick)" if quick else ""

    def started(idx: list[int]) -> None:
        nonlocal studies_loaded
        if bar is not None:
            bar.update(task, description=f"running {', '.join(order[i] for i in idx)}{suffix}", refresh=True)
        if not studies_loaded:  # the first worker (an explorer task) runs: import the studies' modules now
            studies_loaded = True
            _preload(jobs, _PRELOAD_STUDIES)

    def finished(i: int) -> None:
        if bar is not None:
            if not order[i].startswith("explore-"):
                bar.advance(task)
            bar.update(task, description=f"finished {order[i]}", refresh=True)

    # with the explorer, results travel through a folder of their own in TMPDIR (as the explorer's did)
    try:
        outcomes = _workers.run_tasks(_worker_job if jobs > 1 else _pool_job, [t[1] for t in tasks], jobs,
                                      folder=None if explore else folder, names=[f"initlab-report-{n}" for n in order], on_start=started, on_done=finished)
    finally:
        gc.unfreeze()  # frozen by _preload
    done = {n: (_failed(n, o, seed=seed, quick=quick, mnist=mnist) if isinstance(o, _workers.Failure) else o)
            for n, o in zip(order, outcomes) if not n.startswith("explore-")}
    by_name = dict(zip(order, outcomes))
    # the explorer's outcomes in explorer_tasks' order (the page lists the activations in that order)
    explored = [by_name[f"explore-{a[0]}"] for a in explorer_tasks(seed, quick=quick)] if explore else []
    return [done[n] for n in names], explored


def _resolve_jobs(jobs: int | None, n: int) -> int:
    """The number of worker processes: ``jobs``, else min(2, CPUs, studies).

    >>> _resolve_jobs(1, 4), _resolve_jobs(None, 1)
    (1, 1)
    """
    if jobs is None:
        return max(1, min(2, os.cpu_count() or 1, n))
    return min(check_int("jobs", jobs, low=1), max(n, 1))


def _progress(enabled: bool) -> Any:
    """rich's progress bar on a terminal (None otherwise), redrawn when a task starts or ends: no
    refresh thread, so the workers are still forked (:func:`initlab._workers.start_method`) and
    not spawned, which would import everything again in each task."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=True, auto_refresh=False)


def build(
    out_dir: str | os.PathLike[str],
    quick: bool = False,
    seed: int = 0,
    only: str | Sequence[str] | None = None,
    mnist: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    command: str | None = None,
    jobs: int | None = None,
    explore: bool = False,
) -> ReportSummary:
    """Run the studies and write ``out_dir/index.html``, ``results.json`` and the PNG figures.

    Args:
        out_dir: the report folder (created; a previous report there is replaced atomically).
        quick: smaller sizes and fewer epochs (labelled as such on the page).
        seed: the seed every study derives its randomness from.
        only: study names (``"seed000,seed002"`` or a list); all when None.
        mnist: a folder with MNIST files for seed 002 (else the shipped digits and MNIST-1D).
        progress: show a progress bar (only when stderr is a terminal).
        command: the command line recorded in the provenance (default: ``sys.argv``).
        jobs: worker processes (default: min(2, CPUs, studies)); 1 runs everything in this process.
        explore: also write the interactive explorer into ``out_dir/explore/`` (:mod:`initlab.report.explore`;
            its smaller grid with ``quick``) and link to it from the page.
    """
    t_start = time.perf_counter()
    if not isinstance(quick, bool):
        bad_type("quick", "a bool", quick)
    seed = check_int("seed", seed, low=0)
    names = parse_only(only)
    n_jobs = _resolve_jobs(jobs, len(names))
    mnist_s = None if mnist is None else str(mnist)
    if mnist_s is not None and not Path(mnist_s).is_dir():
        raise ValueError(f"The 'mnist' argument must be a folder holding the MNIST files; {mnist_s!r} is not a folder.")
    if not isinstance(out_dir, (str, os.PathLike)):
        bad_type("out_dir", "a path", out_dir)
    if not str(out_dir).strip():
        raise ValueError(f"The 'out_dir' argument must name a folder; got {str(out_dir)!r}.")
    out = Path(out_dir).expanduser().resolve()
    if out.parent.exists() and not out.parent.is_dir():
        raise ValueError(f"The 'out_dir' argument must be inside a folder; {str(out.parent)!r} is a file.")
    if out.parent.is_dir():
        _clean_stale(out)  # what a killed run left behind
    _check_replaceable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"The 'out_dir' argument must be a folder initlab can create; {str(out.parent)!r} cannot be "
                         f"created ({e.strerror or e}).") from None
    if command is None:
        command = shlex.join(["initlab", *sys.argv[1:]]) if Path(sys.argv[0]).name == "initlab" else shlex.join(sys.argv)
    full_parts = [".venv/bin/initlab", "report", "--seed", str(seed)]
    if mnist_s:
        full_parts += ["--mnist", mnist_s]
    full_command = shlex.join(full_parts + ["--out", str(out_dir)])

    provenance = _provenance(command, seed, quick, names, mnist_s)
    with _workers.sigterm_as_exit():  # SIGTERM cleans up the temporary folder
        tmp = _make_tmp(out)
        try:
            bar = _progress(progress)
            with bar if bar is not None else contextlib.nullcontext():
                task = bar.add_task("initlab report", total=len(names)) if bar is not None else None
                t_pool = time.perf_counter()
                outcome, explored = _run_all(names, quick=quick, seed=seed, mnist=mnist_s, folder=tmp, jobs=n_jobs,
                                             bar=bar, task=task, explore=explore)
                t_pool = time.perf_counter() - t_pool
            results = [r for r, _, _ in outcome]
            figure_files = {(r.study, k): v for r, files, _ in outcome for k, v in files.items()}
            figure_errors = {(r.study, k): v for r, _, errs in outcome for k, v in errs.items()}
            written = sorted(figure_files.values())
            provenance["jobs"] = n_jobs

            provenance["seconds"] = time.perf_counter() - t_start
            # each study's to_dict() is plain JSON already: not walked a second time (0.06 s)
            payload = {
                "provenance": to_jsonable(provenance),
                "studies": {r.study: {**r.to_dict(), "figure_files": {f.name: figure_files.get((r.study, f.name)) for f in r.figures}}
                            for r in results},
            }
            (tmp / "results.json").write_text(json.dumps(payload, indent=1, allow_nan=False), encoding="utf-8")
            from initlab.report.page import render_page

            if explore:
                from initlab.report.explore import assemble, write_explorer

                write_explorer(tmp / "explore", assemble(explored, seed=seed, quick=quick), seconds=t_pool, jobs=n_jobs)
            html = render_page(results, provenance=provenance, figure_files=figure_files, figure_errors=figure_errors,
                               quick=quick, seed=seed, full_command=full_command,
                               explore_href="explore/index.html" if explore else None)
            (tmp / "index.html").write_text(html, encoding="utf-8")
            os.chmod(tmp, 0o755)
            _swap_in(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return ReportSummary(
        out_dir=out,
        index=out / "index.html",
        results_json=out / "results.json",
        figures=[out / w for w in written],
        results=results,
        seconds=time.perf_counter() - t_start,
        quick=quick,
        seed=seed,
    )
