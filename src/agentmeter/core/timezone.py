"""The configured time zone for calendar windows and the daily rollup ("local" = the system's).

"local" is resolved to a real IANA zone (TZ, then /etc/localtime) rather than a fixed UTC offset, so
windows stay calendar-correct across daylight-saving changes.
"""

from __future__ import annotations

import os
from datetime import UTC, tzinfo
from functools import cache
from pathlib import Path


@cache
def local_zone() -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").lstrip(":")
    candidates = [name] if name else []
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    tz_file = Path("/etc/timezone")
    if tz_file.exists():
        candidates.append(tz_file.read_text().strip())
    for cand in candidates:
        try:
            return ZoneInfo(cand)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    from datetime import datetime

    return datetime.now().astimezone().tzinfo or UTC  # noqa: TID251 - a fixed offset, last resort


def resolve_tz(name: str | None) -> tzinfo:
    if not name or name == "local":
        return local_zone()
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
