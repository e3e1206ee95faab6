"""Budget views read from the ledger for the CLI: `budget show`, `budget test`, the run banner."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..budget.policy import standing, thresholds_of
from ..budget.spend import spend_windows
from ..core.clock import Clock
from ..core.timezone import resolve_tz
from ..home.config import Config
from ..home.paths import get_paths
from ..ledger import open_ledger
from ..ledger import sync as ledger_sync
from ..sync.caps import cap_sources, effective_budget, snooze_allowed
from ..sync.wallet import wallet_of, wallet_windows


def window_rows(config: Config, clock: Clock) -> tuple[list[dict], int | None]:
    tz = resolve_tz(config.budget.timezone)
    ledger = open_ledger(get_paths().ledger, readonly=True, tz=tz)
    try:
        team = ledger_sync.team_caps(ledger.conn)
        b = effective_budget(config, team)  # stricter collector caps apply
        sources = cap_sources(config, team)
        t = thresholds_of(b)
        windows = spend_windows(
            clock.now(),
            tz,
            b,
            agent="",
            session_id=None,
            session_budget_usd=None,
            day_spend=lambda day, who: ledger.window_spend(day, day, None if who == "*" else who),
            session_spend=lambda sid: (0.0, 0),
            full=True,
            sources=sources,
        )
        for agent in b.agents:
            windows += [
                w
                for w in spend_windows(
                    clock.now(),
                    tz,
                    b,
                    agent=agent,
                    session_id=None,
                    session_budget_usd=None,
                    day_spend=lambda day, who: ledger.window_spend(day, day, None if who == "*" else who),
                    session_spend=lambda sid: (0.0, 0),
                )
                if w.name.startswith(agent + " ")
            ]
        windows += wallet_windows(
            wallet_of(team),
            clock.now(),
            tz,  # the team wallet: pooled spend
            lambda day: ledger.window_spend(day, day, None),
        )
        snoozed_until = ledger.snoozed_until(clock.now_ms())
        snooze_ok = snooze_allowed(team)
    finally:
        ledger.close()
    rows = []
    for w in windows:
        capped = w.cap_usd is not None or w.cap_tokens is not None
        used_pct, stage = standing(w, t)
        rows.append(
            {
                "name": w.name,
                "end": w.end.isoformat() if w.end else None,
                "spent_usd": round(w.spent_usd, 6),
                "cap_usd": w.cap_usd,
                "spent_tokens": w.spent_tokens,
                "cap_tokens": w.cap_tokens,
                "used_pct": used_pct,
                "stage": stage,
                "source": w.source if capped else None,
                # a snooze pauses this cap (a team cap only where the team allows it)
                "snoozed": bool(capped and snoozed_until and (snooze_ok or not w.from_team)),
            }
        )
    return rows, snoozed_until


def wallet_state(config: Config, clock: Clock) -> dict | None:
    """`budget show`'s wallet section: the pooled figure's age and whether it is stale."""
    from ..sync import wallet

    tz = resolve_tz(config.budget.timezone)
    ledger = open_ledger(get_paths().ledger, readonly=True, tz=tz)
    try:
        w = wallet.wallet_of(ledger_sync.team_caps(ledger.conn))
        if w is None:
            return None
        windows = wallet.wallet_windows(w, clock.now(), tz, lambda day: ledger.window_spend(day, day, None))
        return wallet.view(w, windows, clock.now_ms(), thresholds_of(config.budget))
    finally:
        ledger.close()


def team_caps_held(config: Config) -> list[str]:
    """The caps a snooze leaves in force: those the team set on the collector without allowing snoozes."""
    ledger = open_ledger(get_paths().ledger, readonly=True)
    try:
        team = ledger_sync.team_caps(ledger.conn)
    finally:
        ledger.close()
    if snooze_allowed(team):
        return []
    return sorted(
        {
            f"{field.split('_')[0]} ({src})"
            for field, src in cap_sources(config, team).items()
            if src == "developer" or src.startswith("team")
        }
    )


def dry_run(config: Config, clock: Clock, since: timedelta) -> dict:
    from .. import pricing
    from ..budget import cascade
    from ..budget.replay import replay
    from ..ledger.store import usage_of

    tz = resolve_tz(config.budget.timezone)
    ledger = open_ledger(get_paths().ledger, readonly=True, tz=tz)
    try:
        since_ms = clock.now_ms() - int(since.total_seconds() * 1000)
        rows = ledger.replay_rows(since_ms)
        snoozes = ledger.snoozes()
        from ..ledger.plan import snapshots

        # A week of readings before the first request: the weekly window's state when the replay starts.
        plan_snaps = (
            snapshots(ledger.conn, since_ms - 8 * 86_400_000)
            if (config.budget.plan or config.budget.agent_plan)
            else []
        )
    finally:
        ledger.close()

    def target(row: dict) -> str | None:
        return cascade.next_cheaper(
            row["provider"], row.get("model_used") or row.get("model_requested"), config.cascade
        )

    def cheaper(row: dict, model: str) -> float:
        c = pricing.price(
            row["provider"], model, usage_of(row), overrides=config.prices, unknown_model=config.unknown_model_price
        )
        return c.usd or 0.0

    r = replay(
        rows,
        config.budget,
        tz,
        cascade_target=target,
        downgraded_cost=cheaper,
        snoozes=snoozes,
        plan_snapshots=plan_snaps,
    )
    first = rows[0]["started_at"] if rows else None
    return {
        "since": datetime.fromtimestamp(since_ms / 1000, tz).isoformat(timespec="minutes"),
        "first_request": datetime.fromtimestamp(first / 1000, tz).isoformat(timespec="minutes") if first else None,
        "requests": r.requests,
        "caps": {k: v for k, v in vars(config.budget.caps).items() if v is not None},
        "plan_lines": {
            **config.budget.plan,
            **{f"{a} {k}": v for a, lines in config.budget.agent_plan.items() for k, v in lines.items()},
        },
        "stages": r.first_stage,
        "refused": sum(r.refused_sessions.values()),
        "downgraded": sum(r.downgraded_sessions.values()),
        "refused_sessions": r.refused_sessions,
        "downgraded_sessions": r.downgraded_sessions,
        "actual_usd": round(r.actual_usd, 6),
        "with_caps_usd": round(r.replay_usd, 6),
        "saved_usd": round(r.saved_usd, 6),
        "worst": r.worst,
        "decisions": [{"request_id": a, "action": b, "reason": c} for a, b, c in r.decisions],
    }
