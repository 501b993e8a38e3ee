"""Executors: serial, process and Ray give identical rows; killed sweeps resume without loss;
workers never outlive the main process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from initlab.sweep import SweepStore, parse_spec, run_sweep

SMALL = {
    "name": "executors",
    "model": {"activation": "tanh", "width": 8, "sigma_b2": 0.05},
    "grid": {"sigma_w2": [0.6, 1.8, 3.5], "depth": [1, 4], "seed": [0, 1]},
    "train": {"dataset": "moons", "batch_size": 64, "steps": 15, "lr": 0.1},
}
#: long enough that a sweep can be killed in the middle (about a second per task)
SLOW_TOML = """
name = "slow"
[model]
activation = "tanh"
width = 48
sigma_b2 = 0.05
[grid]
sigma_w2 = [0.8, 1.6, 2.4, 3.2]
depth = [3, 6]
seed = [0, 1]
[train]
dataset = "moons"
batch_size = 64
steps = 300
lr = 0.05
"""
CLI = [sys.executable, "-c", "from initlab.cli import main; main()"]


def strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def rows_of(path: Path) -> list[dict]:
    with SweepStore.read(path) as st:
        return st.rows()


def children(pid: int) -> set[int]:
    out: set[int] = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out |= {int(x) for x in fh.read().split()}
    except FileNotFoundError:
        pass
    return out


def workers_of(pid: int) -> set[int]:
    """The pool workers among ``pid``'s children (not multiprocessing's resource tracker)."""
    out = set()
    for c in children(pid):
        try:
            with open(f"/proc/{c}/cmdline", "rb") as fh:
                cmd = fh.read()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmd:
            out.add(c)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return int(con.execute("SELECT COUNT(*) FROM initlab_sweep_cells").fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    d = tmp_path_factory.mktemp("ref")
    spec = d / "slow.toml"
    spec.write_text(SLOW_TOML, encoding="utf-8")
    from initlab.sweep import load_spec

    run_sweep(load_spec(spec), d / "ref.db", executor="serial", stack=16)
    return strip(rows_of(d / "ref.db"))


def test_serial_process_ray_identical_rows(tmp_path: Path) -> None:
    spec = parse_spec(SMALL)
    r1 = run_sweep(spec, tmp_path / "serial.db", executor="serial", stack=12)
    r2 = run_sweep(spec, tmp_path / "process.db", executor="process", workers=2, stack=3)
    r3 = run_sweep(spec, tmp_path / "ray.db", executor="ray", workers=2, stack=5)
    assert r1.computed == r2.computed == r3.computed == 12
    assert r2.workers == 2 and r3.executor == "ray"
    a, b, c = (strip(rows_of(tmp_path / f"{n}.db")) for n in ("serial", "process", "ray"))
    assert a == b == c
    assert len({r["train_loss"] for r in a}) == 12


def test_process_worker_count_does_not_change_rows(tmp_path: Path) -> None:
    spec = parse_spec(SMALL)
    run_sweep(spec, tmp_path / "w1.db", executor="process", workers=1, stack=4)
    run_sweep(spec, tmp_path / "w3.db", executor="process", workers=3, stack=1)
    assert strip(rows_of(tmp_path / "w1.db")) == strip(rows_of(tmp_path / "w3.db"))


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW_TOML, encoding="utf-8")
    db = tmp_path / "slow.db"
    proc = subprocess.Popen(
        [*CLI, "sweep", "run", str(spec), "--store", str(db), "--workers", "2", "--stack", "1", "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return proc, spec, db


def test_kill_9_of_the_main_process_then_resume(tmp_path: Path, reference: list[dict]) -> None:
    proc, spec, db = _start(tmp_path)
    try:
        wait_until(lambda: len(workers_of(proc.pid)) >= 2, 120, "two workers")
        workers = children(proc.pid)
        wait_until(lambda: count_rows(db) >= 2, 240, "two finished cells")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    wait_until(lambda: not any(alive(p) for p in workers), 20, "the orphaned workers to die")
    done = rows_of(db)
    assert 2 <= len(done) < 16
    r = subprocess.run([*CLI, "sweep", "run", str(spec), "--store", str(db), "--executor", "serial", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["already_done"] == len(done) and summary["computed"] == 16 - len(done)
    after = rows_of(db)
    con = sqlite3.connect(db)
    n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM initlab_sweep_cells").fetchone()
    con.close()
    assert n == distinct == 16
    assert strip(after) == reference
    by_cfg = {json.dumps({k: v for k, v in x.items() if k != "seconds"}, sort_keys=True): x for x in after}
    for row in done:  # finished rows unchanged, wall time included
        assert by_cfg[json.dumps({k: v for k, v in row.items() if k != "seconds"}, sort_keys=True)] == row


def test_kill_9_of_a_worker_is_survived(tmp_path: Path, reference: list[dict]) -> None:
    proc, spec, db = _start(tmp_path)
    try:
        wait_until(lambda: len(workers_of(proc.pid)) >= 2, 120, "two workers")
        wait_until(lambda: count_rows(db) >= 1, 240, "a finished cell")
        victim = sorted(workers_of(proc.pid))[0]
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["computed"] == 16 and summary["worker_restarts"] >= 1
    assert strip(rows_of(db)) == reference
    assert not children(proc.pid)


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    proc, spec, db = _start(tmp_path)
    try:
        wait_until(lambda: len(workers_of(proc.pid)) >= 2, 120, "two workers")
        workers = children(proc.pid)
        wait_until(lambda: count_rows(db) >= 1, 240, "a finished cell")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("initlab: interrupted; finished cells are in")
    assert "Traceback" not in err
    wait_until(lambda: not any(alive(p) for p in workers), 10, "the workers to stop")
    assert count_rows(db) >= 1


def test_cli_show_plot_export(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[model]\nactivation = "tanh"\nwidth = 8\nsigma_b2 = 0.05\n[grid]\nsigma_w2 = [0.8, 2.0]\ndepth = [1, 3]\n'
        '[train]\ndataset = "moons"\nsteps = 5\n', encoding="utf-8")
    db = tmp_path / "s.db"
    r = subprocess.run([*CLI, "sweep", "run", str(spec), "--store", str(db), "--executor", "serial"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "4 computed now" in r.stdout and "cells/s" in r.stderr and "ETA" in r.stderr
    r = subprocess.run([*CLI, "sweep", "show", str(db), "--json"], capture_output=True, text=True, timeout=120)
    data = json.loads(r.stdout)
    assert data["spec"]["model"]["width"] == 8 and len(data["rows"]) == 4
    for key in ("sigma_w2", "depth", "train_accuracy", "test_accuracy", "train_loss", "diverged", "seconds", "xi_c", "chi1"):
        assert key in data["rows"][0]
    out = tmp_path / "heat.png"
    r = subprocess.run([*CLI, "sweep", "plot", str(db), "--x", "sigma_w2", "--y", "depth", "--metric",
                        "train_accuracy", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = subprocess.run([*CLI, "sweep", "plot", str(db), "--metric", "train_acc", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "train_accuracy" in r.stderr
    r = subprocess.run([*CLI, "sweep", "export", str(db), "--out", str(tmp_path / "o.csv")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and (tmp_path / "o.csv").read_text().count("\n") == 5
    junk = tmp_path / "junk.db"
    junk.write_text("hello")
    r = subprocess.run([*CLI, "sweep", "show", str(junk)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not an SQLite database" in r.stderr
    r = subprocess.run([*CLI, "sweep", "run", str(spec), "--store", str(db), "--executor", "dask"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "'--executor'" in r.stderr and "'ray'" in r.stderr


def descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        for c in children(todo.pop()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return b""


def test_ray_worker_killed_then_main_killed_then_resume(tmp_path: Path, reference: list[dict]) -> None:
    """Ray retries the task of a killed Ray worker; kill -9 of the main process leaves no Ray
    process behind; the rerun completes every cell exactly once."""
    proc, spec, db = _start(tmp_path, "--executor", "ray")
    try:
        wait_until(lambda: any(b"ray::_ray_task" in cmdline(p) for p in descendants(proc.pid)), 240, "a Ray task")
        wait_until(lambda: count_rows(db) >= 1, 240, "a finished cell")
        victim = next(p for p in descendants(proc.pid) if b"ray::_ray_task" in cmdline(p))
        os.kill(victim, signal.SIGKILL)
        n_before = count_rows(db)
        wait_until(lambda: count_rows(db) >= n_before + 2, 240, "two more cells after the worker was killed")
        family = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    wait_until(lambda: not any(alive(p) for p in family), 240, "Ray's processes to exit after the driver died")
    r = subprocess.run([*CLI, "sweep", "run", str(spec), "--store", str(db), "--executor", "serial", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    n, distinct = con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM initlab_sweep_cells").fetchone()
    con.close()
    assert n == distinct == 16
    assert strip(rows_of(db)) == reference
