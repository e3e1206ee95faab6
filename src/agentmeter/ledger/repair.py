"""Salvage a damaged ledger: keep the damaged file, copy every readable row into a fresh one, say what was lost.

Rows are read in rowid order, a page at a time; where a page cannot be read the reader skips forward to
the next readable rowid and counts the rowids it stepped over as lost (rowids of the `requests` table are
dense, so that count is the number of rows lost, give or take deleted ones). The rollup is rebuilt from
the rows that survived, so reports and budgets agree with the ledger again.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .store import open_ledger

# Everything but the rollup (rebuilt) and the migrations record (the fresh file has its own).
TABLES = ("sessions", "requests", "alerts", "overrides", "import_files", "sync_state", "sync_pushed", "meta",
          "inflight")
_PAGE = 256
_MAX_ROWID = 2**62


@dataclass
class Salvage:
    backup: Path
    recovered: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int | None] = field(default_factory=dict)  # None: the table could not be read at all

    @property
    def lost_rows(self) -> int | None:
        """Known rows lost, or None when some table was unreadable (nothing says how many it held)."""
        if any(v is None for v in self.lost.values()):
            return None
        return sum(v for v in self.lost.values() if v)


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


def _readable_from(conn: sqlite3.Connection, table: str, start: int) -> int | None:
    """The first rowid >= start whose page can be read, or None."""
    try:
        row = conn.execute(f"SELECT rowid FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT 1", (start,)).fetchone()
        return row[0] if row else _MAX_ROWID
    except sqlite3.DatabaseError:
        return None


def _skip(conn: sqlite3.Connection, table: str, after: int) -> int | None:
    """Past a damaged page: the next readable rowid after `after`, or None if nothing further can be read."""
    k = 1
    while k < _MAX_ROWID and _readable_from(conn, table, after + k) is None:
        k *= 2
    if k >= _MAX_ROWID:
        return None
    lo, hi = after + k // 2, after + k  # unreadable from lo (or lo == after), readable from hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _readable_from(conn, table, mid) is None:
            lo = mid
        else:
            hi = mid
    return _readable_from(conn, table, hi)


def _rows(conn: sqlite3.Connection, table: str, cols: list[str]) -> tuple[list[tuple], int | None]:
    """(readable rows, rowids skipped over damaged pages); None for the latter when nothing was readable."""
    got: list[tuple] = []
    lost = 0
    after = -1
    sql = f"SELECT rowid, {', '.join(cols)} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT {_PAGE}"
    while True:
        try:
            page = conn.execute(sql, (after,)).fetchall()
            if page and page[-1][0] <= after:  # a damaged page can read as rows out of order: never go back
                raise sqlite3.DatabaseError("rowids out of order")
        except sqlite3.DatabaseError:
            nxt = _skip(conn, table, after)
            if nxt is None and after == -1:
                return got, None
            if nxt is None or nxt >= _MAX_ROWID:
                lost += 1  # at least one row on the damaged page; how many more, nothing says
                break
            lost += max(1, nxt - after - 1)
            after = max(after + 1, nxt - 1)
            continue
        if not page:
            break
        got.extend(r[1:] for r in page if r[0] > after)
        after = page[-1][0]
    return got, lost


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def salvage(path: Path, stamp: str, tz=None) -> Salvage:
    """Move the damaged ledger aside (as `<name>.broken-<stamp>`, with its WAL) and rebuild `path` from
    what can still be read. Call only while no daemon has the ledger open."""
    backup = path.with_name(f"{path.name}.broken-{stamp}")
    work = path.with_name(f".{path.name}.salvage-{os.getpid()}")
    fresh = path.with_name(f".{path.name}.rebuilt-{os.getpid()}")
    _copy_with_wal(path, backup)
    _copy_with_wal(path, work)  # read a copy: opening a damaged WAL database may try to write to it
    for p in (fresh, Path(str(fresh) + "-wal"), Path(str(fresh) + "-shm")):
        p.unlink(missing_ok=True)
    report = Salvage(backup)
    new = open_ledger(fresh, tz=tz)
    try:
        try:
            src = sqlite3.connect(f"file:{work}?mode=ro", uri=True, timeout=5)
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            src = None
        new.conn.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            report.recovered[table], report.lost[table] = _copy_table(src, new.conn, table)
        new._rebuild_rollup()
        new.conn.execute("COMMIT")
        if src is not None:
            src.close()
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


def _copy_table(src: sqlite3.Connection | None, dst: sqlite3.Connection, table: str) -> tuple[int, int | None]:
    if src is None:
        return 0, None
    try:
        have = _columns(src, table)
    except sqlite3.DatabaseError:
        return 0, None
    if not have:
        return 0, 0  # a ledger from before the migration that added this table
    cols = [c for c in _columns(dst, table) if c in have]
    rows, lost = _rows(src, table, cols)
    if lost is None:
        return 0, None
    sql = f"INSERT OR IGNORE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    kept = 0
    for r in rows:
        try:
            kept += dst.execute(sql, r).rowcount
        except sqlite3.Error:
            lost += 1  # a row whose bytes came back garbled (wrong types for the column)
    return kept, lost


def needs_repair(path: Path) -> str | None:
    """Why the ledger needs repair (its integrity check's answer), or None when it is fine or absent."""
    if not path.exists():
        return None
    result = _quick_check(path)
    return None if result == "ok" else result
