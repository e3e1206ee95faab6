"""Small parsing helpers shared by commands (outside `cli` so the fast paths can use them without typer)."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import UsageError

RESERVED_TAG_PREFIX = "agentmeter/"  # pricing.focus.TAG_PREFIX: FOCUS provider-defined tag keys


def parse_tags(tags: list[str] | None) -> dict[str, str]:
    out = {}
    for t in tags or []:
        if "=" not in t or not t.split("=", 1)[0]:
            raise UsageError(f"bad tag {t!r}", "write tags as --tag key=value")
        k, v = t.split("=", 1)
        if k.strip().lower().startswith(RESERVED_TAG_PREFIX):
            raise UsageError(
                f"tag keys may not start with {RESERVED_TAG_PREFIX!r} (agentmeter's own FOCUS tags use it)",
                "pick another key, e.g. --tag ticket=ABC-1",
            )
        out[k.strip()] = v.strip()
    return out


_DURATION = re.compile(r"\s*(\d+)\s*([mhdw])\s*")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration_parts(text: str) -> tuple[int, str] | None:
    """`7d` → (7, "d"): a whole number and one of m, h, d, w; None when `text` is no duration. The one
    reading of a duration: `--since 7d` here, and report windows that count `Nd` in whole local days."""
    m = _DURATION.fullmatch(text)
    return (int(m.group(1)), m.group(2)) if m else None


def parse_since(text: str | None) -> timedelta | None:
    """`7d`, `12h`, `30m`, `2w`."""
    if not text:
        return None
    parts = duration_parts(text)
    if parts is None:
        raise UsageError(f"bad duration {text!r}", "use a number and a unit: 30m, 12h, 7d, 2w")
    n, unit = parts
    return timedelta(**{UNITS[unit]: n})
