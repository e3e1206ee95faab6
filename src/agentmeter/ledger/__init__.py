"""The ledger: the only package that contains SQL."""

from .store import Ledger, LedgerWriter, open_ledger

__all__ = ["Ledger", "LedgerWriter", "open_ledger"]
