"""Reports: report windows, and totals per group shaped as the contract's dicts (`agentmeter export`'s rows
are `commands/export.py`). No SQL here (that is `ledger/reports.py`), no printing (that is `render/report.py`).

Windows are whole local days [first_day, end_day) in the report's time zone, so every grouping of
the same window adds up to the same total: `--since 30d` is the 30 local days ending today,
`--until 7d` ends where `--since 7d` begins, and a date is a local day (`--until` is exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from ..core.clock import ms_to_iso
from ..core.errors import UsageError
from ..core.parsing import UNITS, duration_parts
from ..ledger import Ledger
from ..ledger import reports as sql
from .views import CONTRACT_BUCKETS, cache_hit_rate

GROUPINGS = (*(g for g in sql.GROUPS if g != "tag"), "tag:KEY")
EXTRA_BUCKETS = ("cache_write_5m_tokens", "cache_write_1h_tokens", "web_search_requests")
REPORT_COLUMNS = (
    "key",
    "start",
    "end",
    "provider",
    "agent",
    "repo",
    "branch",
    "first_at",
    "last_at",
    "requests",
    *CONTRACT_BUCKETS,
    *EXTRA_BUCKETS,
    "cost_usd",
    "billed_cost_usd",
    "subscription_cost_usd",
    "unpriced_requests",
    "cache_hit_rate",
)


@dataclass(frozen=True)
class Window:
    """Local days [first_day, end_day) in `tz`; None is open-ended."""

    tz: tzinfo
    first_day: date | None
    end_day: date | None

    @property
    def zone_name(self) -> str:
        return zone_name(self.tz)

    def day_bounds(self) -> tuple[str | None, str | None]:
        return (
            self.first_day.isoformat() if self.first_day else None,
            self.end_day.isoformat() if self.end_day else None,
        )

    def ms_bounds(self) -> tuple[int | None, int | None]:
        return (
            None if self.first_day is None else day_start_ms(self.first_day, self.tz),
            None if self.end_day is None else day_start_ms(self.end_day, self.tz),
        )

    def days(self) -> list[date]:
        if self.first_day is None or self.end_day is None:
            return []
        return [self.first_day + timedelta(days=i) for i in range((self.end_day - self.first_day).days)]


def zone_name(tz: tzinfo | None) -> str:
    return str(getattr(tz, "key", None) or tz or "local")


def resolve_zone(name: str | None, default: tzinfo) -> tzinfo:
    if not name:
        return default
    from ..core.timezone import resolve_tz

    try:
        return resolve_tz(name)
    except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        raise UsageError(f"unknown time zone {name!r}", "use an IANA name such as Europe/Berlin, or UTC") from None


def day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tz)


def day_start_ms(day: date, tz: tzinfo) -> int:
    return int(day_start(day, tz).timestamp() * 1000)


def _point(text: str, now_local: datetime, option: str) -> date:
    """A date (YYYY-MM-DD), `today`, or a duration: Nd / Nw count whole local days back, so that
    `Nd` as a start is the N days ending today; Nh / Nm name the local day that instant falls in."""
    text = text.strip()
    today = now_local.date()
    if text == "today":
        return today
    if parts := duration_parts(text):
        n, unit = parts
        if unit in "dw":
            return today - timedelta(days=n * (7 if unit == "w" else 1) - 1)
        return (now_local - timedelta(**{UNITS[unit]: n})).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"bad {option} {text!r}", "use a date (2025-03-01), today, or a duration (30d, 2w, 12h)"
        ) from None


def report_window(since: str | None, until: str | None, tz: tzinfo, now: datetime) -> Window:
    now_local = now.astimezone(tz)
    first = _point(since, now_local, "--since") if since else None
    end = _point(until, now_local, "--until") if until else now_local.date() + timedelta(days=1)
    if first is not None and first >= end:
        raise UsageError(f"the window {first} .. {end} (exclusive) is empty", "--until must be after --since")
    return Window(tz, first, end)


# --- grouped totals ------------------------------------------------------------------------------------


def same_zone(a: tzinfo | None, b: tzinfo | None) -> bool:
    return zone_name(a) == zone_name(b)


def split_by(by: str) -> tuple[str, str | None]:
    """`tag:KEY` → ("tag", KEY); any other grouping → (by, None)."""
    group, _, tag = by.partition(":")
    if group == "tag":
        if not tag.strip():
            raise UsageError("--by tag needs the tag's key", "e.g. --by tag:ticket (tags come from run --tag K=V)")
        return "tag", tag.strip()
    if by not in sql.GROUPS:
        raise UsageError(f"cannot group by {by!r}", "use one of: " + ", ".join(GROUPINGS))
    return by, None


def grouped_rows(
    ledger: Ledger, by: str, window: Window, rollup_tz: tzinfo, commits: list[str] | None = None
) -> tuple[list[dict], str]:
    """(rows, source). The rollup's days are local to `rollup_tz` (the configured budget zone); another
    zone regroups from `requests`, which is exact but scans the window's requests. `commits`: only sessions
    that ended on one of these commits (requests only)."""
    group, tag = split_by(by)
    if group in sql.ROLLUP_GROUPS and same_zone(window.tz, rollup_tz) and commits is None:
        return [report_row(group, r) for r in sql.totals_by_rollup(ledger, group, *window.day_bounds())], "rollup"
    rows = sql.totals_by_requests(ledger, group, *window.ms_bounds(), window.tz, tag=tag, commits=commits)
    return [report_row(group, r) for r in rows], "requests"


def build_report(
    ledger: Ledger, by: str, window: Window, rollup_tz: tzinfo, commits: list[str] | None = None
) -> dict[str, Any]:
    rows, source = grouped_rows(ledger, by, window, rollup_tz, commits)
    first, end = window.day_bounds()
    out = {
        "by": by,
        "since": first,
        "until": end,
        "timezone": window.zone_name,
        "source": source,
        "rows": rows,
        "totals": totals(rows),
    }
    if commits is not None:
        out["commits"] = commits
    return out


def report_row(by: str, r: dict[str, Any]) -> dict[str, Any]:
    key = r["key"] or ""
    out: dict[str, Any] = {"key": key}
    if by == "week" and key:
        monday = date.fromisoformat(key)
        iso = monday.isocalendar()
        out.update(key=f"{iso.year}-W{iso.week:02d}", start=key, end=(monday + timedelta(days=7)).isoformat())
    elif by == "month" and key:
        start = date.fromisoformat(key + "-01")
        out.update(start=start.isoformat(), end=next_month(start).isoformat())
    for extra in ("provider", "agent", "repo", "branch"):
        if extra in r:
            out[extra] = r[extra]
    if by in ("session", "commit"):
        out.update(first_at=ms_to_iso(r["first_at"]), last_at=ms_to_iso(r["last_at"]))
    out.update(_sums(r))
    return out


def _sums(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": int(r.get("requests") or 0)}
    for b in (*CONTRACT_BUCKETS, *EXTRA_BUCKETS):
        out[b] = int(r.get(b) or 0)
    cost, sub = float(r.get("cost_usd") or 0), float(r.get("subscription_cost_usd") or 0)
    # cost_usd is everything at API list price; subscription traffic is what it would have cost, not billed.
    out.update(
        cost_usd=cost,
        billed_cost_usd=cost - sub,
        subscription_cost_usd=sub,
        unpriced_requests=int(r.get("unpriced_requests") or 0),
        cache_hit_rate=cache_hit_rate(out),
    )
    return out


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed = {
        k: sum(r[k] for r in rows)
        for k in (
            "requests",
            *CONTRACT_BUCKETS,
            *EXTRA_BUCKETS,
            "cost_usd",
            "subscription_cost_usd",
            "unpriced_requests",
        )
    }
    return _sums(summed)


def next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def daily_series(ledger: Ledger, window: Window, rollup_tz: tzinfo) -> list[tuple[str, float]]:
    """(local day, USD) for every day of the window, zero-filled; an open start begins at the first spend."""
    rows, _ = grouped_rows(ledger, "day", window, rollup_tz)
    spend = {r["key"]: r["cost_usd"] for r in rows}
    days = window.days()
    if not days and spend:
        first = date.fromisoformat(min(spend))
        end = window.end_day or date.fromisoformat(max(spend)) + timedelta(days=1)
        days = Window(window.tz, first, end).days()
    return [(d.isoformat(), spend.get(d.isoformat(), 0.0)) for d in days]


# --- the HTML page ---------------------------------------------------------------------------------------


def forecast_band(
    ledger: Ledger, window: Window, rollup_tz: tzinfo, now: datetime, cap: float | None
) -> dict[str, Any] | None:
    """P10/P50/P90 of today's end-of-day spend from `forecast.forecast`, over the last 8 weeks of daily
    history; None when the window does not include today or there is nothing to project."""
    from ..budget.forecast import forecast

    now_local = now.astimezone(window.tz)
    today = now_local.date()
    if window.end_day is None or not ((window.first_day or today) <= today < window.end_day):
        return None
    lookback = Window(window.tz, today - timedelta(days=56), today + timedelta(days=1))
    daily = {date.fromisoformat(d): v for d, v in daily_series(ledger, lookback, rollup_tz)}
    start, end = day_start(today, window.tz), day_start(today + timedelta(days=1), window.tz)
    fc = forecast(
        {d: v for d, v in daily.items() if d < today},
        today=today,
        window_first=today,
        window_last=today,
        spent_in_window=daily.get(today, 0.0),
        today_fraction=(now_local - start) / (end - start),
        cap=cap,
    )
    if fc.method == "none":
        return None
    return {"day": today.isoformat(), "p10": fc.p10, "p50": fc.p50, "p90": fc.p90, "method": fc.method}


def dashboard(ledger: Ledger, window: Window, rollup_tz: tzinfo, now: datetime, cap: float | None) -> dict[str, Any]:
    """What the HTML page shows: the daily series, today's forecast band, and reports by day/agent/model/repo."""
    series = daily_series(ledger, window, rollup_tz)
    tables = {by: build_report(ledger, by, window, rollup_tz) for by in ("day", "agent", "model", "repo")}
    return {"series": series, "band": forecast_band(ledger, window, rollup_tz, now, cap), "tables": tables}
