"""The ledger: the only package that contains SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Ledger, open_ledger
    from .writer import LedgerWriter

__all__ = ["Ledger", "LedgerWriter", "open_ledger"]


def __getattr__(name: str) -> object:
    # Loaded on first use: the store (sqlite-utils' schema side) and the writer thread (logging, queue,
    # concurrent.futures) cost the fast read-only commands (`prompt`, `status`) milliseconds at every start;
    # `ledger.read` and `ledger.sync` need neither.
    if name in ("Ledger", "open_ledger"):
        from . import store

        return getattr(store, name)
    if name == "LedgerWriter":
        from .writer import LedgerWriter

        return LedgerWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
