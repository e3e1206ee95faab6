"""Small parsing helpers shared by commands (outside `cli` so the fast paths can use them without typer)."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import UsageError


def parse_tags(tags: list[str] | None) -> dict[str, str]:
    out = {}
    for t in tags or []:
        if "=" not in t or not t.split("=", 1)[0]:
            raise UsageError(f"bad tag {t!r}", "write tags as --tag key=value")
        k, v = t.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def parse_since(text: str | None) -> timedelta | None:
    """`7d`, `12h`, `30m`, `2w`."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if not m:
        raise UsageError(f"bad duration {text!r}", "use a number and a unit: 30m, 12h, 7d, 2w")
    n, unit = int(m.group(1)), m.group(2)
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
