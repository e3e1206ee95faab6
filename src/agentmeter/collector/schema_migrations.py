"""Named, transactional migrations on either engine: sqlite_utils' `Migrations` API (decorator registration,
each migration committed together with its record), run through the collector's engine handle so the same
functions build the same schema on SQLite and PostgreSQL.

On SQLite the record stays in sqlite_utils' `_sqlite_migrations` table, so a collector database built before
PostgreSQL support opens unchanged; on PostgreSQL it is `_migrations` (same columns). Two processes opening
one database at once (serve and a CLI command) serialize: SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory
lock, and each migration is re-checked inside the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core.clock import SystemClock
from .engine import Database

TABLE = {"sqlite": "_sqlite_migrations", "postgresql": "_migrations"}
_LOCK_KEY = 0x61676D6D  # "agmm": pg_advisory_xact_lock's key for this set's migrations


@dataclass
class Migration:
    name: str
    fn: Callable[[Database], None]


class Migrations:
    def __init__(self, name: str) -> None:
        self.name = name
        self._migrations: list[Migration] = []

    def __call__(self, *, name: str | None = None) -> Callable:
        def inner(fn):
            mname = name or fn.__name__
            if any(m.name == mname for m in self._migrations):
                raise ValueError(f"migration {mname!r} is already registered in {self.name!r}")
            self._migrations.append(Migration(mname, fn))
            return fn

        return inner

    @property
    def names(self) -> list[str]:
        return [m.name for m in self._migrations]

    def applied(self, db: Database) -> list[str]:
        table = TABLE[db.dialect]
        if not self._table_exists(db, table):
            return []
        order = "rowid" if db.dialect == "sqlite" else "id"
        return [
            r[0] for r in db.execute(f"SELECT name FROM {table} WHERE migration_set = ? ORDER BY {order}", (self.name,))
        ]

    def pending(self, db: Database) -> list[Migration]:
        done = set(self.applied(db))
        return [m for m in self._migrations if m.name not in done]

    def apply(self, db: Database) -> list[str]:
        """Apply what is pending, each migration in its own transaction with its record. Returns the names."""
        if not self.pending(db):
            return []
        self._ensure_table(db)
        ran = []
        for m in self._migrations:
            with db.transaction():
                if db.postgres:
                    db.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))
                if m.name in self.applied(db):  # another process got here first
                    continue
                m.fn(db)
                db.execute(
                    f"INSERT INTO {TABLE[db.dialect]} (migration_set, name, applied_at) VALUES (?, ?, ?)",
                    (self.name, m.name, str(SystemClock().now())),
                )
                ran.append(m.name)
        return ran

    @staticmethod
    def _table_exists(db: Database, table: str) -> bool:
        if db.dialect == "sqlite":
            q = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            q = "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
        return db.execute(q, (table,)).fetchone() is not None

    def _ensure_table(self, db: Database) -> None:
        table = TABLE[db.dialect]
        with db.transaction():
            if db.postgres:
                db.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_KEY,))
            if self._table_exists(db, table):
                return
            # sqlite_utils' layout, so its own tools (and older agentmeter) read the SQLite one as before.
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, migration_set TEXT, name TEXT, applied_at TEXT)")
            db.execute(f"CREATE UNIQUE INDEX idx_{table.strip('_')}_set_name ON {table} (migration_set, name)")
