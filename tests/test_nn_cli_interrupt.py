"""``initlab train`` interrupted by Ctrl-C (SIGINT to its process group, as a terminal sends it):
one line saying where it stopped and what it had, exit status 130, no traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_train_ctrl_c_prints_epoch_step_loss_and_exits_130(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = ("import sys; from initlab.cli import main; "
            "main(['train', '--layers', '2,64,64,1', '--epochs', '1000000', '--batch-size', '8', '--no-progress'])")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, text=True)
    try:
        time.sleep(12.0)  # import, data, some epochs (the machine may be loaded)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1
    m = re.fullmatch(r"interrupted at epoch (\d+)/1000000 \(step (\d+)\), loss (\d+\.\d{4}|none \(no step finished\))", lines[0])
    assert m, lines[0]
    assert int(m.group(1)) >= 1 and int(m.group(2)) >= 0
    assert (m.group(3).startswith("none")) == (int(m.group(2)) == 0)


def test_train_ctrl_c_keeps_the_watch_so_far(tmp_path) -> None:
    """With --save-watch, Ctrl-C still writes the steps watched before it (nothing is lost)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = tmp_path / "run.json"
    code = ("import sys; from initlab.cli import main; "
            "main(['train', '--layers', '2,16,16,1', '--epochs', '1000000', '--batch-size', '40', '--no-progress', "
            f"'--watch', 'every=50', '--save-watch', {str(run)!r}])")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, text=True)
    try:
        time.sleep(12.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"saved to {run}" in err
    from initlab.diagnostics import Watch

    w = Watch.load(str(run))
    steps = [s.step for s in w.steps]
    assert steps and steps[0] == 0 and all(b - a == 50 for a, b in zip(steps, steps[1:]))
