"""The projection an alert carries: P10/P50/P90 for the window (the same forecast `status` shows), the 7-day
trend, and a recommended action. Pure: a day → spend history in, plain dicts out. Used by the personal alerts
(proxy) and by the collector's team alerts and digest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from .windows import window

HISTORY_DAYS = 56


def project(
    history: Mapping[date, float], name: str, now: datetime, tz: tzinfo, spent: float, cap: float | None
) -> dict[str, Any]:
    """End-of-window spend for window `name` (day/week/month): {p10, p50, p90, method, time_to_cap_hours,
    period_start, period_end}. `history` holds whole days before today; `spent` is the window's so far."""
    from .forecast import forecast

    w = window(name, now, tz)
    local = now.astimezone(tz)  # tz None: the machine's own zone, still an aware datetime
    today = local.date()
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    frac = min(1.0, max(0.0, (local - start).total_seconds() / 86400))
    past = {d: v for d, v in history.items() if d < today}
    f = forecast(
        past,
        today=today,
        window_first=w.first_day,
        window_last=w.last_day,
        spent_in_window=spent,
        today_fraction=frac,
        cap=cap,
    )
    ttc = None if f.time_to_cap_days is None else round(f.time_to_cap_days * 24, 1)
    return {
        "p10": round(f.p10, 4),
        "p50": round(f.p50, 4),
        "p90": round(f.p90, 4),
        "method": f.method,
        "time_to_cap_hours": ttc,
        "period_start": w.first_day.isoformat(),
        "period_end": w.last_day.isoformat(),
    }


def trend_7d(history: Mapping[date, float], today: date) -> dict[str, Any]:
    """The last seven whole days against the seven before them."""
    last = [(today - timedelta(days=i)) for i in range(7, 0, -1)]
    prior = [(today - timedelta(days=i)) for i in range(14, 7, -1)]
    a = sum(history.get(d, 0.0) for d in last)
    b = sum(history.get(d, 0.0) for d in prior)
    return {
        "last_7d_usd": round(a, 4),
        "prior_7d_usd": round(b, 4),
        "change_pct": round((a - b) / b * 100, 1) if b > 0 else None,
        "daily": [{"day": d.isoformat(), "cost_usd": round(history.get(d, 0.0), 4)} for d in last],
    }


def recommended_action(
    spent: float, cap: float | None, proj: dict[str, Any], *, block_at: float = 1.10, raise_cmd: str = "", top: str = ""
) -> str:
    """One sentence a person can act on, from where the spend is and where it is heading."""
    who = f" (most of it: {top})" if top else ""
    if not cap:
        return f"No cap is set; projected {_usd(proj['p50'])} (P90 {_usd(proj['p90'])}) by {proj['period_end']}."
    if spent >= cap * block_at:
        return (
            f"The cap of {_usd(cap)} is spent and requests are refused until {proj['period_end']} ends{who}. "
            f"If the work must go on, raise it{': ' + raise_cmd if raise_cmd else ''}."
        )
    if spent >= cap:
        return (
            f"The cap of {_usd(cap)} is reached; requests are refused from {block_at:.0%}{who}. Decide now "
            f"whether to raise it{': ' + raise_cmd if raise_cmd else ''} or let it stop."
        )
    if proj["p50"] >= cap:
        return (
            f"At this pace the cap of {_usd(cap)} runs out before {proj['period_end']} "
            f"(P50 {_usd(proj['p50'])}, P90 {_usd(proj['p90'])}){who}. Check the top spenders' sessions "
            f"or raise it to about {_usd(proj['p90'])}{': ' + raise_cmd if raise_cmd else ''}."
        )
    return (
        f"On track: P50 {_usd(proj['p50'])} and P90 {_usd(proj['p90'])} against the cap of {_usd(cap)}; "
        "nothing to do yet."
    )


def _usd(v: float) -> str:
    return f"${v:,.2f}"


def alert_fields(day_spend, name: str, now: datetime, tz: tzinfo, spent: float, cap: float | None) -> dict[str, Any]:
    """What a personal alert adds for a day/week/month window: the projection, the 7-day trend and the
    action. `day_spend(iso_day)` is the spend of one whole day (the ledger's daily rollup)."""
    today = now.astimezone(tz).date()
    hist = {d: float(day_spend(d.isoformat())) for d in (today - timedelta(days=i) for i in range(1, HISTORY_DAYS + 1))}
    proj = project(hist, name, now, tz, spent, cap)
    return {
        "projection": proj,
        "trend_7d": trend_7d(hist, today),
        "recommended_action": recommended_action(
            spent,
            cap,
            proj,
            raise_cmd=(
                f"agentmeter budget set --{ {'day': 'daily', 'week': 'weekly', 'month': 'monthly'}[name] } "
                f"{(cap or 0) * 1.5:g}"
                if cap
                else ""
            ),
        ),
    }
