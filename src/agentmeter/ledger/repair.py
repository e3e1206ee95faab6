"""Salvage a damaged ledger: keep the damaged file, copy every readable row into a fresh one, say what was lost.

The rows are read from the file's pages directly (pages.py), cell by cell, so a damaged page costs the rows
on it and nothing else, and a damaged interior page costs nothing that its leaves still hold. The count of
rows lost comes from the rowid ranges of the damaged pages (rowids of the ledger's tables are dense), so
recovered + lost is the number of rows there were. The rollup is rebuilt from the rows that survived, so
reports and budgets agree with the ledger again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .pages import recover
from .store import open_ledger

# Everything but the rollup (rebuilt) and the migrations record (the fresh file has its own).
TABLES = (
    "sessions",
    "requests",
    "alerts",
    "overrides",
    "import_files",
    "sync_state",
    "sync_pushed",
    "meta",
    "inflight",
)


@dataclass
class Salvage:
    backup: Path
    recovered: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int | None] = field(default_factory=dict)  # None: the table could not be read at all
    estimated: set[str] = field(default_factory=set)  # tables whose loss count is partly an estimate


def _quick_check(path: Path) -> str:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)


def _copy_with_wal(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        s = Path(str(src) + suffix)
        if s.exists():
            shutil.copyfile(s, str(dst) + suffix)
            os.chmod(str(dst) + suffix, 0o600)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:  # in the order rows store them
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def salvage(path: Path, stamp: str, tz=None) -> Salvage:
    """Move the damaged ledger aside (as `<name>.broken-<stamp>`, with its WAL) and rebuild `path` from
    what can still be read. Call only while no daemon has the ledger open."""
    backup = path.with_name(f"{path.name}.broken-{stamp}")
    work = path.with_name(f".{path.name}.salvage-{os.getpid()}")
    fresh = path.with_name(f".{path.name}.rebuilt-{os.getpid()}")
    _copy_with_wal(path, backup)
    _copy_with_wal(path, work)  # work on a copy: folding the WAL in writes to the file
    for p in (fresh, Path(str(fresh) + "-wal"), Path(str(fresh) + "-shm")):
        p.unlink(missing_ok=True)
    report = Salvage(backup)
    new = open_ledger(fresh, tz=tz)
    try:
        _fold_wal(work)
        tables = {t: _columns(new.conn, t) for t in TABLES}
        found = recover(work.read_bytes(), {t: len(cols) for t, cols in tables.items()})
        report.estimated = set(found.estimated)
        new.conn.execute("BEGIN IMMEDIATE")
        for table, cols in tables.items():
            rows = found.rows.get(table, {})
            if not rows and not found.schema_found:
                report.recovered[table], report.lost[table] = 0, None  # nothing says what it held
                continue
            kept, bad = _insert(new.conn, table, cols, rows)
            lost = found.lost.get(table, 0) + bad
            # Without the schema, a table found by nothing but its column count says nothing of what it held.
            report.recovered[table], report.lost[table] = kept, (None if kept == 0 and not found.schema_found else lost)
        new._rebuild_rollup()
        new.conn.execute("COMMIT")
    finally:
        new.close()
        for p in (work, Path(str(work) + "-wal"), Path(str(work) + "-shm")):
            p.unlink(missing_ok=True)
    # The damaged file's WAL must not be replayed into the rebuilt one: it is kept with the backup.
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(fresh, path)
    os.chmod(path, 0o600)
    return report


def _fold_wal(work: Path) -> None:
    """Copy committed WAL frames into the file, so the page reader sees the latest rows. A WAL too damaged
    for that is left out (its rows are lost; the backup keeps it)."""
    if not Path(str(work) + "-wal").exists():
        return
    try:
        conn = sqlite3.connect(work, timeout=5)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        pass


def _insert(dst: sqlite3.Connection, table: str, cols: list[str], rows: dict[int, list]) -> tuple[int, int]:
    """(rows kept, rows whose bytes came back garbled: wrong types for their columns)."""
    # An INTEGER PRIMARY KEY column is the rowid itself; the record stores NULL in its place.
    info = dst.execute(f"PRAGMA table_info({table})").fetchall()
    pks = [r[1] for r in info if r[5]]
    rowid_col = pks[0] if len(pks) == 1 and next(r[2] for r in info if r[1] == pks[0]).upper() == "INTEGER" else None
    kept = bad = 0
    for rowid, values in sorted(rows.items()):
        names = cols[: len(values)]
        vals = list(values)
        if rowid_col in names and vals[names.index(rowid_col)] is None:
            vals[names.index(rowid_col)] = rowid
        sql = f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        try:
            kept += dst.execute(sql, vals).rowcount
        except sqlite3.Error:
            bad += 1
    return kept, bad


def needs_repair(path: Path) -> str | None:
    """Why the ledger needs repair (its integrity check's answer), or None when it is fine or absent."""
    if not path.exists():
        return None
    result = _quick_check(path)
    return None if result == "ok" else result
