"""Two ways to run a short read or write on the ledger: a connection of our own (the CLI; each write one
`BEGIN IMMEDIATE` transaction) or, in the daemon, a read-only connection plus the one writer thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from sqlite3 import Connection
from typing import TypeVar

T = TypeVar("T")

__all__ = ["Connection", "DirectAccess", "WriterAccess"]


class DirectAccess:
    """A read-write connection of our own (the CLI). Each write is one short transaction."""

    def __init__(self, path: Path, tz=None) -> None:
        from . import open_ledger

        self.ledger = open_ledger(path, tz=tz)

    def read(self, fn: Callable[[Connection], T]) -> T:
        return fn(self.ledger.conn)

    def write(self, fn: Callable[[Connection], T]) -> T:
        conn = self.ledger.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            out = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return out

    def close(self) -> None:
        self.ledger.close()


class WriterAccess:
    """The daemon: reads through a read-only connection, writes through the ledger writer thread."""

    def __init__(self, path: Path, writer, tz=None) -> None:
        from . import open_ledger

        self.reader = open_ledger(path, readonly=True, tz=tz)
        self.writer = writer

    def read(self, fn: Callable[[Connection], T]) -> T:
        return fn(self.reader.conn)

    def write(self, fn: Callable[[Connection], T]) -> T:
        # Bounded: at daemon shutdown the writer may be gone, and this thread must not hold the exit up.
        return self.writer.submit(lambda lg: fn(lg.conn)).result(10)

    def close(self) -> None:
        self.reader.close()
