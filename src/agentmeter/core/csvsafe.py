"""Spreadsheet formula injection (CWE-1236): a CSV cell a developer could write must not run as a formula.

Branch names, repo names, model names and tags reach CSV exports that an admin opens in a spreadsheet. A
text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula by Excel,
LibreOffice and Google Sheets (`=HYPERLINK(…)` leaks data on a click). Such a cell gets a leading `'`, as
OWASP recommends: the spreadsheet shows the text as written and runs nothing. Numbers are never touched
(a negative number is a number, not text).
"""

from __future__ import annotations

from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
