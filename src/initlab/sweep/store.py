"""The sweep store: an SQLite database (standard library) that loses nothing.

* one table row per finished cell, inserted in a transaction as soon as the cell's stack
  finishes (a killed sweep keeps every committed row: SQLite's journal makes each transaction
  all-or-nothing);
* the spec is stored in the database; opening a store with a different spec is refused with
  the differing keys named; a file that is not an SQLite database, or an SQLite database that is
  not an initlab sweep store, is refused and never modified;
* :meth:`SweepStore.done_keys` says which cells exist, so a rerun computes only the missing ones;
  the cell key is the primary key, so a cell is stored at most once.

>>> import tempfile, os
>>> from initlab.sweep.spec import parse_spec
>>> spec = parse_spec({"grid": {"sigma_w2": [1.0]}, "train": {"dataset": "moons"}})
>>> path = os.path.join(tempfile.mkdtemp(), "s.db")
>>> with SweepStore.open(path, spec) as st:
...     len(st.done_keys())
0
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from initlab.sweep.spec import SweepSpec, cell_key, parse_spec

__all__ = ["SweepStore", "METRICS", "FORMAT", "spec_difference", "export"]

FORMAT = "initlab.sweep/1"
#: result columns of a cell, in the order of the table
METRICS = (
    "train_accuracy", "test_accuracy", "train_loss", "test_loss", "diverged", "diverged_step",
    "q_star", "chi1", "xi_c", "seconds",
)
_SCHEMA = """
CREATE TABLE initlab_sweep_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE initlab_sweep_cells (
    key TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    config TEXT NOT NULL,
    train_accuracy REAL, test_accuracy REAL, train_loss REAL, test_loss REAL,
    diverged INTEGER NOT NULL, diverged_step INTEGER,
    q_star REAL, chi1 REAL, xi_c REAL,
    seconds REAL NOT NULL
);
"""


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def spec_difference(stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """Lines ``key: store has A, spec has B`` for every differing (dotted) key.

    >>> spec_difference({"model": {"width": 300}}, {"model": {"width": 256}})
    ['model.width: the store has 300, the spec has 256']
    """
    a, b = _flatten(stored), _flatten(given)
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            lines.append(f"{k}: the store has {json.dumps(a.get(k, '<absent>'))}, the spec has {json.dumps(b.get(k, '<absent>'))}")
    return lines


def _not_store(path: Path, why: str) -> ValueError:
    return ValueError(f"{str(path)!r} is not an initlab sweep store: {why}. Give a new file name or the store of this sweep.")


class SweepStore:
    """An open sweep store (use :meth:`open` or :meth:`read`; a context manager)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, spec: SweepSpec) -> None:
        self.path = path
        self.conn = conn
        self.spec = spec

    # -- opening -------------------------------------------------------------------------------
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    @classmethod
    def _check(cls, path: Path) -> tuple[sqlite3.Connection, dict[str, str]]:
        """Open an existing file and verify it is an initlab store; returns (conn, meta)."""
        if path.is_dir():
            raise ValueError(f"The store {str(path)!r} is a folder; give a database file name.")
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as e:
            raise ValueError(f"The store {str(path)!r} cannot be read: {e}.") from None
        if head != b"SQLite format 3\x00":
            raise _not_store(path, "the file is not an SQLite database (corrupt, or another kind of file)")
        conn = cls._connect(path)
        try:
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise _not_store(path, f"the SQLite database is corrupt ({ok})")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"initlab_sweep_meta", "initlab_sweep_cells"} <= tables:
                raise _not_store(
                    path, f"it is an SQLite database without initlab's tables (it has {sorted(tables) or 'no tables'})"
                )
            meta = dict(conn.execute("SELECT key, value FROM initlab_sweep_meta").fetchall())
        except sqlite3.DatabaseError as e:
            conn.close()
            raise _not_store(path, f"the SQLite database is corrupt ({e})") from None
        except ValueError:
            conn.close()
            raise
        if meta.get("format") != FORMAT or "spec" not in meta:
            conn.close()
            raise _not_store(path, f"its format is {meta.get('format')!r}, expected {FORMAT!r}")
        return conn, meta

    @classmethod
    def open(cls, path: str | os.PathLike[str], spec: Any) -> "SweepStore":
        """Open (or create) the store at ``path`` for ``spec``; refuse a different spec."""
        from initlab import __version__

        p = Path(path)
        sp = parse_spec(spec)
        if p.exists() and p.stat().st_size > 0:
            conn, meta = cls._check(p)
            stored = json.loads(meta["spec"])
            if stored != sp.to_dict():
                conn.close()
                diff = spec_difference(stored, sp.to_dict())
                raise ValueError(
                    f"The store {str(p)!r} holds a different sweep; its spec differs in "
                    f"{'; '.join(diff)}. Use a new store or the same spec."
                )
            return cls(p, conn, sp)
        if not p.parent.is_dir():
            raise FileNotFoundError(f"The folder of the store {str(p)!r} does not exist.")
        conn = cls._connect(p)
        try:
            conn.execute("BEGIN IMMEDIATE")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "initlab_sweep_meta" not in tables:  # another process may have created it meanwhile
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                conn.executemany(
                    "INSERT INTO initlab_sweep_meta (key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("spec", sp.canonical()), ("initlab_version", __version__)],
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        conn.close()
        return cls.open(p, sp)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> "SweepStore":
        """Open an existing store for reading (its own spec)."""
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"The sweep store {str(p)!r} does not exist.")
        if p.stat().st_size == 0:
            raise _not_store(p, "the file is empty")
        conn, meta = cls._check(p)
        return cls(p, conn, parse_spec(json.loads(meta["spec"])))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "SweepStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- cells ---------------------------------------------------------------------------------
    def done_keys(self) -> set[str]:
        """Keys of the cells already stored."""
        return {r[0] for r in self.conn.execute("SELECT key FROM initlab_sweep_cells")}

    def add(self, items: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> int:
        """Insert finished cells ``(idx, config, result)`` in one transaction; returns how many were
        new (a cell already stored is left as it is)."""
        rows = []
        for idx, cfg, res in items:
            vals = []
            for m in METRICS:
                v = res.get(m)
                if isinstance(v, float) and math.isnan(v):
                    v = None
                vals.append(int(v) if m == "diverged" else v)
            rows.append((cell_key(cfg), int(idx), json.dumps(cfg, sort_keys=True), *vals))
        cols = ", ".join(("key", "idx", "config", *METRICS))
        marks = ", ".join("?" * (3 + len(METRICS)))
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            before = self.conn.total_changes
            self.conn.executemany(f"INSERT OR IGNORE INTO initlab_sweep_cells ({cols}) VALUES ({marks})", rows)
            n = self.conn.total_changes - before
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return n

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Stored cells in grid order: the config keys, then the metrics (``diverged`` a bool)."""
        cur = self.conn.execute(f"SELECT config, {', '.join(METRICS)} FROM initlab_sweep_cells ORDER BY idx")
        for rec in cur:
            row = json.loads(rec[0])
            for m, v in zip(METRICS, rec[1:]):
                row[m] = bool(v) if m == "diverged" else v
            yield row

    def rows(self) -> list[dict[str, Any]]:
        return list(self.iter_rows())

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM initlab_sweep_cells").fetchone()[0])


def export(store: SweepStore, out: str | os.PathLike[str]) -> Path:
    """Write the store's rows to ``out`` (``.csv``, or ``.parquet`` via pyarrow), atomically."""
    from initlab._io import atomic_write

    p = Path(out)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"The 'out' argument must end in .csv or .parquet; got {str(p)!r}.")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"The folder of {str(p)!r} does not exist.")
    rows = store.rows()
    columns: list[str] = []
    for r in rows:
        for k in r:
            if k not in columns:
                columns.append(k)
    if not columns:
        columns = ["key", *METRICS]

    def write(tmp: str) -> None:
        if suffix == ".csv":
            import csv

            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(columns)
                for r in rows:
                    w.writerow(["" if r.get(c) is None else (json.dumps(r[c]) if isinstance(r[c], list) else r[c]) for c in columns])
        else:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise ValueError(
                    "Parquet export needs pyarrow: pip install 'initlab[parquet]' (or pyarrow), or export to .csv."
                ) from None
            data = {c: [(json.dumps(r.get(c)) if isinstance(r.get(c), list) else r.get(c)) for r in rows] for c in columns}
            pq.write_table(pa.table(data), tmp)

    atomic_write(p, write)
    return p
