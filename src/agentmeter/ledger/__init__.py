"""The ledger: the only package that contains SQL."""

from .store import Ledger, open_ledger
from .writer import LedgerWriter

__all__ = ["Ledger", "LedgerWriter", "open_ledger"]
