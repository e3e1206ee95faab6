"""The ledger: the only package that contains SQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .store import Ledger, open_ledger

if TYPE_CHECKING:
    from .writer import LedgerWriter

__all__ = ["Ledger", "LedgerWriter", "open_ledger"]


def __getattr__(name: str) -> object:
    # The writer thread is the daemon's. Its imports (logging, queue, concurrent.futures) cost the CLI's
    # read-only commands (`status`, `report`) about 5 ms at every start, so it loads on first use.
    if name == "LedgerWriter":
        from .writer import LedgerWriter

        return LedgerWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
