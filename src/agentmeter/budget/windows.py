"""Calendar windows in a time zone: day, week (Monday first) and month. Pure: the time is passed in.

Boundaries are local midnights converted to UTC, so a day across a DST change lasts 23 or 25 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

NAMES = ("day", "week", "month")


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC, exclusive
    first_day: date  # local calendar dates covered: [first_day, last_day]
    last_day: date

    @property
    def key(self) -> str:
        return f"{self.name}:{self.first_day.isoformat()}"

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


def _midnight(d: date, tz: tzinfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def window(name: str, now: datetime, tz: tzinfo) -> Window:
    local = now.astimezone(tz).date()
    if name == "day":
        first, nxt = local, local + timedelta(days=1)
    elif name == "week":
        first = local - timedelta(days=local.weekday())
        nxt = first + timedelta(days=7)
    elif name == "month":
        first = local.replace(day=1)
        nxt = first.replace(year=first.year + 1, month=1) if first.month == 12 else first.replace(month=first.month + 1)
    else:
        raise ValueError(f"unknown window {name!r}")
    return Window(name, _midnight(first, tz), _midnight(nxt, tz), first, nxt - timedelta(days=1))


def local_day(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).date().isoformat()
