"""Building the capped windows the policy decides against. Pure: the sums come in as functions, so the
live proxy (ledger totals + reservations) and the dry run (a replay) share exactly this code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from ..home.config import Budget, Caps
from .policy import WindowSpend
from .windows import NAMES, window

PREFIX = {"day": "daily", "week": "weekly", "month": "monthly"}
Sum = tuple[float, int]


def caps_of(caps: Caps, name: str) -> tuple[float | None, int | None]:
    p = PREFIX[name]
    return getattr(caps, f"{p}_usd"), getattr(caps, f"{p}_tokens")


def spend_windows(
    now: datetime,
    tz: tzinfo,
    budget: Budget,
    *,
    agent: str,
    session_id: str | None,
    session_budget_usd: float | None,
    day_spend: Callable[[str, str], Sum],
    session_spend: Callable[[str], Sum],
    reserved: Callable[[str], Sum] = lambda scope: (0.0, 0),
    full: bool = False,
    sources: dict[str, str] | None = None,
) -> list[WindowSpend]:
    """Windows in order: day, week, month; then the agent's own caps; then the session's --budget.
    `day_spend(day, agent_or_*)` and `reserved(scope)` with scope `*`, `agent:<name>` or `session:<id>`.
    `sources` (sync.caps.cap_sources) says who set each of the budget's own caps."""
    out: list[WindowSpend] = []
    scopes = [("*", "", budget.caps)]
    if agent in budget.agents:
        scopes.append((agent, f"{agent} ", budget.agents[agent]))
    for who, label, caps in scopes:
        res = reserved("*" if who == "*" else f"agent:{who}")
        for name in NAMES:
            cap_usd, cap_tokens = caps_of(caps, name)
            if cap_usd is None and cap_tokens is None and not (full and who == "*"):
                continue
            w = window(name, now, tz)
            usd, tok, d = 0.0, 0, w.first_day
            while d <= w.last_day:
                u, t = day_spend(d.isoformat(), who)
                usd, tok, d = usd + u, tok + t, d + timedelta(days=1)
            p = PREFIX[name]
            source = (
                (sources or {}).get(f"{p}_usd" if cap_usd is not None else f"{p}_tokens", "personal")
                if who == "*"
                else "agent"
            )
            out.append(
                WindowSpend(f"{label}{name}", w.end, usd + res[0], tok + res[1], cap_usd, cap_tokens, source=source)
            )
    if session_budget_usd and session_id:
        usd, tok = session_spend(session_id)
        res = reserved(f"session:{session_id}")
        out.append(
            WindowSpend("session", None, usd + res[0], tok + res[1], float(session_budget_usd), None, source="run")
        )
    return out
