"""The configured time zone for calendar windows and the daily rollup ("local" = the system's)."""

from __future__ import annotations

from datetime import tzinfo


def resolve_tz(name: str | None) -> tzinfo | None:
    """None means the system's local zone (datetime treats tz=None as local time)."""
    if not name or name == "local":
        return None
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
