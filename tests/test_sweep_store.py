"""The SQLite store: resume, spec mismatch, corrupt and foreign files, export."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from initlab.sweep import SweepStore, export, parse_spec, run_sweep

RAW = {
    "name": "store-test",
    "model": {"activation": "tanh", "width": 6, "sigma_b2": 0.05},
    "grid": {"sigma_w2": [0.8, 2.0], "depth": [1, 3], "seed": [0, 1]},
    "train": {"dataset": "moons", "batch_size": 100, "steps": 10, "lr": 0.1},
}


def rows_of(path: Path) -> list[dict]:
    with SweepStore.read(path) as st:
        return st.rows()


def test_resume_computes_only_missing_cells(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    full = parse_spec(RAW)
    r = run_sweep(full, db, executor="serial")
    assert (r.cells, r.computed, r.already_done) == (8, 8, 0)
    before = rows_of(db)
    # delete three cells, as if the sweep had been killed before they finished
    con = sqlite3.connect(db)
    keys = [k for (k,) in con.execute("SELECT key FROM initlab_sweep_cells ORDER BY idx")][2:5]
    con.executemany("DELETE FROM initlab_sweep_cells WHERE key = ?", [(k,) for k in keys])
    con.commit()
    con.close()
    r2 = run_sweep(full, db, executor="serial", stack=2)
    assert (r2.computed, r2.already_done) == (3, 5)
    after = rows_of(db)
    strip = lambda rows: [{k: v for k, v in x.items() if k != "seconds"} for x in rows]  # noqa: E731
    assert strip(after) == strip(before)
    kept = [i for i in range(8) if i not in (2, 3, 4)]
    assert [after[i] for i in kept] == [before[i] for i in kept]  # untouched, seconds included
    r3 = run_sweep(full, db, executor="serial")
    assert (r3.computed, r3.already_done, r3.tasks) == (0, 8, 0)


def test_other_spec_refused_with_the_difference_named(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_sweep(RAW, db, executor="serial")
    other = {**RAW, "model": {**RAW["model"], "width": 7}, "train": {**RAW["train"], "steps": 11}}
    with pytest.raises(ValueError) as e:
        run_sweep(other, db, executor="serial")
    msg = str(e.value)
    assert "different sweep" in msg and "model.width: the store has 6, the spec has 7" in msg
    assert "train.steps: the store has 10, the spec has 11" in msg
    assert len(rows_of(db)) == 8


def test_corrupt_and_foreign_files_refused_and_untouched(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ValueError, match="not an SQLite database"):
        run_sweep(RAW, junk, executor="serial")
    assert junk.read_bytes() == b"this is not a database at all" * 100
    with pytest.raises(ValueError, match="not an SQLite database"):
        SweepStore.read(junk)

    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    data = foreign.read_bytes()
    with pytest.raises(ValueError, match="without initlab's tables.*users"):
        run_sweep(RAW, foreign, executor="serial")
    assert foreign.read_bytes() == data

    # a real store whose pages were overwritten in the middle
    db = tmp_path / "s.db"
    run_sweep(RAW, db, executor="serial")
    raw = bytearray(db.read_bytes())
    assert len(raw) > 4096
    raw[1024 + 100 : len(raw) - 100] = b"\xff" * (len(raw) - 1224)
    db.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        SweepStore.read(db)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SweepStore.read(tmp_path / "none.db")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        SweepStore.read(empty)
    with pytest.raises(FileNotFoundError, match="folder"):
        run_sweep(RAW, tmp_path / "no" / "s.db", executor="serial")


def test_export_csv_and_parquet(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_sweep(RAW, db, executor="serial")
    rows = rows_of(db)
    with SweepStore.read(db) as st:
        export(st, tmp_path / "out.csv")
        export(st, tmp_path / "out.parquet")
        with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
            export(st, tmp_path / "out.xlsx")
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 8 and float(got[3]["train_accuracy"]) == rows[3]["train_accuracy"]
    assert float(got[3]["xi_c"]) == rows[3]["xi_c"] and got[3]["sigma_w2"] == str(rows[3]["sigma_w2"])
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["train_loss"] for r in t] == [r["train_loss"] for r in rows]
    assert [r["diverged"] for r in t] == [r["diverged"] for r in rows]


def test_missing_optional_packages_give_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    db = tmp_path / "s.db"
    run_sweep(RAW, db, executor="serial")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with SweepStore.read(db) as st:
        with pytest.raises(ValueError, match=r"Parquet export needs pyarrow: pip install 'initlab\[parquet\]'"):
            export(st, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ValueError, match=r"The 'ray' executor needs Ray: pip install 'initlab\[ray\]'"):
        run_sweep({**RAW, "train": {**RAW["train"], "steps": 11}}, tmp_path / "r.db", executor="ray")
    assert not (tmp_path / "r.db").exists()
