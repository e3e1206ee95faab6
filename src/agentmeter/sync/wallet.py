"""The team wallet on the client: caps over the team's pooled spend, enforced with a figure from the collector.

The collector publishes, per day, the team's spend and this device's share of it as of the fetch
(collector/wallet.py). What the *others* had spent then is `team − this device`; this device's own spend is
read live from the ledger (plus in-flight reservations), so the pooled figure is

    pooled = others at the last fetch + own spend now

It is always "last-known + own spend since": when no fresh figure has come for STALE_AFTER_MS the windows
still enforce with it, and `status` / `budget show` / the refusal say that the team's part is stale.

Pure and light (the status fast path imports it): standard library and the pure budget core only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from ..budget.policy import Thresholds, WindowSpend, standing
from ..budget.windows import NAMES, window

STALE_AFTER_MS = 15 * 60 * 1000  # three missed syncs at the default 5-minute interval
KIND = "wallet"
PREFIX = {"day": "daily", "week": "weekly", "month": "monthly"}
Sum = tuple[float, int]


def wallet_of(team_caps: dict[str, Any] | None) -> dict[str, Any] | None:
    w = (team_caps or {}).get("wallet")
    return w if isinstance(w, dict) and w.get("team") else None


def _cap(caps: Any, field: str) -> float | int | None:
    value = caps.get(field) if isinstance(caps, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value) if field.endswith("_tokens") else float(value)


def age_ms(w: dict[str, Any], now_ms: int) -> int | None:
    at = w.get("fetched_at_ms")
    return max(0, now_ms - int(at)) if isinstance(at, int | float) else None


def is_stale(w: dict[str, Any], now_ms: int, stale_after_ms: int = STALE_AFTER_MS) -> bool:
    age = age_ms(w, now_ms)
    return age is None or age > stale_after_ms


def _others(row: Any, usd_col: int) -> Sum:
    """A day's spend by everyone in the scope but this device, as of the fetch (never negative)."""
    if not isinstance(row, list) or len(row) < 6:
        return 0.0, 0
    try:
        usd = float(row[usd_col]) - float(row[4])
        tok = int(row[usd_col + 1]) - int(row[5])
    except (TypeError, ValueError):
        return 0.0, 0
    return max(0.0, usd), max(0, tok)


def wallet_windows(
    w: dict[str, Any] | None,
    now: datetime,
    tz: tzinfo,
    local_day: Callable[[str], Sum],
    reserved: Sum = (0.0, 0),
    full: bool = False,
) -> list[WindowSpend]:
    """The pooled windows (`wallet day` …) then the member sub-cap windows (`wallet member day` …), each
    with its cap from the wallet. `local_day(day)` is this device's own spend on a day (the ledger)."""
    if w is None:
        return []
    source = f"team wallet {w['team']}"
    scopes = [
        (scope, caps, label)
        for scope, caps, label in (
            ("pooled", w.get("caps"), "wallet"),
            ("member", w.get("member_caps"), "wallet member"),
        )
        if (full and scope == "pooled")
        or any(_cap(caps, f"{PREFIX[n]}_{u}") is not None for n in NAMES for u in ("usd", "tokens"))
    ]
    if not scopes:
        return []
    wins = {name: window(name, now, tz) for name in NAMES}
    # Each day once, from the earliest window start to today (later days have no spend yet): this runs in
    # every request's budget check.
    today = now.astimezone(tz).date()
    figures = w.get("days") or {}
    per_day = []
    d = min(x.first_day for x in wins.values())
    while d <= today:
        iso = d.isoformat()
        mine = local_day(iso)
        row = figures.get(iso)
        per_day.append((d, *mine, _others(row, 0), _others(row, 2)))
        d += timedelta(days=1)
    out = []
    for scope, caps, label in scopes:
        col = 3 if scope == "pooled" else 4
        for name in NAMES:
            cap_usd, cap_tok = _cap(caps, f"{PREFIX[name]}_usd"), _cap(caps, f"{PREFIX[name]}_tokens")
            if cap_usd is None and cap_tok is None and not (full and scope == "pooled"):
                continue
            win = wins[name]
            usd, tok = reserved
            for day in per_day:
                if day[0] >= win.first_day:
                    usd += day[1] + day[col][0]
                    tok += day[2] + day[col][1]
            out.append(
                WindowSpend(
                    f"{label} {name}",
                    win.end,
                    usd,
                    tok,
                    cap_usd,
                    cap_tok,
                    kind=KIND,
                    source=source if scope == "pooled" else f"{source} (member cap)",
                )
            )
    return out


def snooze_allowed(w: dict[str, Any] | None) -> bool:
    return w is None or w.get("allow_snooze") is True


def view(w: dict[str, Any] | None, windows: list[WindowSpend], now_ms: int, t: Thresholds) -> dict[str, Any] | None:
    """The `wallet` section of `status --json` and `budget show --json`."""
    if w is None:
        return None
    age = age_ms(w, now_ms)
    stale = is_stale(w, now_ms)
    rows = []
    for ws in windows:
        used_pct, stage = standing(ws, t)
        rows.append(
            {
                "name": ws.name,
                "end": ws.end.isoformat() if ws.end else None,
                "spent_usd": round(ws.spent_usd, 6),
                "cap_usd": ws.cap_usd,
                "spent_tokens": ws.spent_tokens,
                "cap_tokens": ws.cap_tokens,
                "used_pct": used_pct,
                "stage": stage,
                "source": ws.source,
            }
        )
    return {
        "team": w["team"],
        "caps": w.get("caps") or {},
        "member_caps": w.get("member_caps") or {},
        "allow_snooze": bool(w.get("allow_snooze")),
        "windows": rows,
        "figure_age_s": None if age is None else age // 1000,
        "stale": stale,
        "stale_after_s": STALE_AFTER_MS // 1000,
        "note": (
            (
                "the team's part is last-known (no fresh figure for "
                + (f"{age // 60000} min" if age is not None else "ever")
                + "); your own spend is live"
            )
            if stale
            else "the team's part is fresh; your own spend is live"
        ),
    }


def refusal_message(w: WindowSpend, when: str) -> str:
    """The agent-facing line for a wallet refusal: names the team wallet, the team's spend, who can lift it.
    No double quotes (it sits in a JSON string that agents print)."""
    team = w.source.removeprefix("team wallet ").removesuffix(" (member cap)")
    period = w.name.rpartition(" ")[2]
    label = PREFIX.get(period, period)
    member = w.name.startswith("wallet member ")
    if w.cap_usd is not None and (w.cap_tokens is None or w.spent_usd / max(w.cap_usd, 1e-9) >= 1):
        amount = f"${w.cap_usd:,.2f}"
        spent = f"${w.spent_usd:,.2f}"
    else:
        amount, spent = f"{w.cap_tokens:,} tokens", f"{w.spent_tokens:,} tokens"
    if member:
        what = f"your {label} share of the team wallet of {team} ({amount}) is used up ({spent} spent by you)"
    else:
        what = f"the {label} team wallet of {team} ({amount}) is used up ({spent} spent by the team together)"
    flag = f"--{label}" if w.cap_usd is not None else f"--{label}-tokens"
    return (
        f"agentmeter: {what}; it is set on the team collector.{when} Raising your own caps does not lift it: "
        f"ask your team lead (agentmeter collector caps set --team {team} --pooled {flag} …)."
    )
