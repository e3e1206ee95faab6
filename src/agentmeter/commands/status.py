"""`agentmeter status`: the burndown in one screen, from the daily rollup — never a scan of requests.

Imported by the fast path (cli/fast.py): standard library and agentmeter's light modules only (no typer,
aiohttp, rich or genai-prices), so it answers in tens of milliseconds whatever the ledger's size.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ..budget.policy import Thresholds, WindowSpend, standing, thresholds_of
from ..budget.spend import PREFIX, caps_of
from ..budget.windows import NAMES, window
from ..core.clock import Clock, ms_to_iso
from ..core.timezone import resolve_tz
from ..home.config import Config
from ..home.paths import get_paths
from ..ledger import read
from ..ledger import sync as ledger_sync
from ..sync.caps import cap_sources, effective_budget
from ..sync.status import sync_status
from .views import cache_hit_rate

LOW_CACHE = 0.30
HISTORY_DAYS = 90


def _connect(path) -> read.Connection | None:
    if not path.exists():
        from ..home.paths import storage_error, storage_problem

        # No ledger: a new user (zeros are right), or a home nothing can be written to (zeros would lie).
        if (problem := storage_problem()) is not None:
            raise storage_error(problem)
        return None
    from ..ledger.store import _pending, open_ledger

    if _pending(path):
        open_ledger(path).close()  # an older ledger: migrate once
    return read.connect(path, rows=True)


def build_status(config: Config, clock: Clock) -> dict:
    tz = resolve_tz(config.budget.timezone)
    now = clock.now()
    b = config.budget
    t = thresholds_of(b)
    conn = _connect(get_paths().ledger)
    team_caps = ledger_sync.team_caps(conn) if conn is not None else {}
    b = effective_budget(config, team_caps)  # a stricter team or developer cap from the collector applies
    sources = cap_sources(config, team_caps)
    today = now.astimezone(tz).date()
    day_start = datetime(today.year, today.month, today.day, tzinfo=tz)
    today_fraction = min(1.0, max(0.0, (now - day_start.astimezone(UTC)).total_seconds() / 86400))
    history: dict = {}
    if conn is not None:
        since = (today - timedelta(days=HISTORY_DAYS)).isoformat()
        for day, usd in read.cost_by_day(conn, since, today.isoformat()):
            # not strptime: its first call imports _strptime, locale and calendar (~3 ms of this command)
            history[date.fromisoformat(day)] = usd
    windows = []
    for name in NAMES:
        w = window(name, now, tz)
        first, last = w.first_day.isoformat(), w.last_day.isoformat()
        usd, tokens, _ = read.window_sums(conn, first, last) if conn else (0.0, 0, 0)
        cap_usd, cap_tokens = caps_of(b.caps, name)
        used_pct, stage = standing(WindowSpend(name, None, usd, tokens, cap_usd, cap_tokens), t)
        fc = _forecast(history, today, w, usd, today_fraction, cap_usd)
        if fc["ttc_hours"] is not None and fc["ttc_hours"] > (w.end - now).total_seconds() / 3600:
            fc["ttc_hours"] = None  # the window resets first: the cap is not reached in it
        windows.append(
            {
                "name": name,
                "start": w.start.astimezone(tz).isoformat(),
                "end": w.end.astimezone(tz).isoformat(),
                "spent_usd": round(usd, 6),
                "cap_usd": cap_usd,
                "spent_tokens": tokens,
                "cap_tokens": cap_tokens,
                "used_pct": used_pct,
                "stage": stage,
                "cap_source": sources.get(f"{PREFIX[name]}_usd") or sources.get(f"{PREFIX[name]}_tokens"),
                "forecast_usd": fc["bands"],
                "forecast_method": fc["method"],
                "burn_rate_usd_per_day": fc["rate"],
                "time_to_cap_hours": fc["ttc_hours"],
            }
        )
    month = window("month", now, tz)
    payload = {
        "generated_at": now.astimezone(tz).isoformat(timespec="seconds"),
        "timezone": b.timezone,
        "thresholds": {"alert_at": b.alert_at, "downgrade_at": b.downgrade_at, "block_at": b.block_at},
        "windows": windows,
        "today": _today(conn, day_start),
        "by_agent": _by_agent(conn, month.first_day.isoformat(), month.last_day.isoformat()),
        "unpriced_models": _unpriced(conn, month.first_day.isoformat(), month.last_day.isoformat()),
        "subscription": _subscription(conn, month.first_day.isoformat(), month.last_day.isoformat()),
        "snoozed_until": None,
        "plan": [],
        "alerts": [],
        "prices": _prices(conn),
        "sync": sync_status(conn, config, clock.now_ms(), tz),
        "wallet": _wallet(team_caps, conn, now, tz, clock.now_ms(), t),
        "empty": conn is None or not read.has_requests(conn),
    }
    if conn is not None:
        snooze = read.snoozed_until(conn)
        if snooze and snooze > clock.now_ms():
            payload["snoozed_until"] = ms_to_iso(snooze)
        payload["plan"] = _plan(conn, clock, config, t)
        payload["alerts"] = read.alerts_since(conn, int(month.start.timestamp() * 1000))
        conn.close()
    return payload


def _wallet(team_caps: dict, conn, now: datetime, tz, now_ms: int, t: Thresholds) -> dict | None:
    """The team wallet (pooled team caps): the team's last-known spend plus this machine's, and how old."""
    from ..sync import wallet

    w = wallet.wallet_of(team_caps)
    if w is None:
        return None
    first = min(window(n, now, tz).first_day for n in NAMES).isoformat()
    mine = read.spend_by_day(conn, first, now.astimezone(tz).date().isoformat())
    windows = wallet.wallet_windows(w, now, tz, lambda day: mine.get(day, (0.0, 0)))
    return wallet.view(w, windows, now_ms, t)


def _plan(conn, clock: Clock, config: Config, t: Thresholds) -> list[dict]:
    """Subscription plan windows (issue 18): each window's latest reading, pace and per-session shares."""
    from ..ledger.plan import plan_section

    return plan_section(conn, clock.now_ms() / 1000, config.budget.plan, t)


def _forecast(history, today, w, spent: float, today_fraction: float, cap) -> dict:
    try:
        from ..budget.forecast import forecast
    except ImportError:  # pragma: no cover - forecast lands with its own module
        return {"bands": None, "method": "none", "rate": None, "ttc_hours": None}
    f = forecast(
        history,
        today=today,
        window_first=w.first_day,
        window_last=w.last_day,
        spent_in_window=spent,
        today_fraction=today_fraction,
        cap=cap,
    )
    return {
        "bands": {"p10": round(f.p10, 4), "p50": round(f.p50, 4), "p90": round(f.p90, 4)},
        "method": f.method,
        "rate": round(f.burn_rate_per_day, 4),
        "ttc_hours": None if f.time_to_cap_days is None else round(f.time_to_cap_days * 24, 1),
    }


def _today(conn, day_start: datetime) -> dict:
    out = {"spent_usd": 0.0, "requests": 0, "sessions": []}
    if conn is None:
        return out
    start_ms = int(day_start.timestamp() * 1000)
    for r in read.sessions_since(conn, start_ms):
        hit = cache_hit_rate(r)
        out["sessions"].append(
            {
                "id": r["id"],
                "agent": r["agent"],
                "repo": r["repo"],
                "branch": r["branch"],
                "requests": r["requests"],
                "cost_usd": round(r["cost_usd"], 6),
                "refused": r["refused"] or 0,
                "running": _running(r["pid"], r["ended_at"]),
                "cache_hit_rate": hit,
                "low_cache": hit is not None and hit < LOW_CACHE,
            }
        )
        out["spent_usd"] += r["cost_usd"]
        out["requests"] += r["requests"]
    out["spent_usd"] = round(out["spent_usd"], 6)
    return out


def _running(pid: int | None, ended_at: int | None) -> bool:
    """A `run` session whose agent process is still alive (`env` sessions have no process to ask)."""
    if ended_at is not None or not pid:
        return False
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's (a reused pid): not ours to claim, but alive
        return True
    except OSError:
        return False
    return True


def _by_agent(conn, first: str, last: str) -> list[dict]:
    if conn is None:
        return []
    rows = read.by_agent(conn, first, last)
    total = sum(r["usd"] for r in rows) or 0.0
    return [
        {
            "agent": r["agent"] or "other",
            "spent_usd": round(r["usd"], 6),
            "requests": r["requests"],
            "share": round(r["usd"] / total, 4) if total else None,
            "cache_hit_rate": cache_hit_rate(r),
        }
        for r in rows
    ]


def _unpriced(conn, first: str, last: str) -> list[dict]:
    if conn is None:
        return []
    return [
        {
            "provider": provider,
            "model": model,
            "requests": n,
            "fallback_usd": round(usd, 6),
            "explain": f"agentmeter prices explain {provider}:{model}",
        }
        for provider, model, n, usd in read.unpriced(conn, first, last)
    ]


def _subscription(conn, first: str, last: str) -> dict:
    if conn is None:
        return {"api_equivalent_usd": 0.0, "billed_usd": 0.0}
    rows = read.cost_by_subscription(conn, first, last)
    return {"api_equivalent_usd": round(rows.get(1) or 0.0, 6), "billed_usd": round(rows.get(0) or 0.0, 6)}


def _prices(conn) -> dict:
    if conn is None:
        return {}
    value = read.meta_value(conn, "reprice_suggested")
    return {"reprice_suggested": value} if value is not None else {}
