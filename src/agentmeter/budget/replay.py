"""`agentmeter budget test`: replay recorded requests, in time order, through the live policy.

Pure: rows in, a report out. Each request is decided with exactly the facts the proxy recorded
(estimated input, turn boundary, loop streak, cascade target), against the spend the replay itself has
accumulated — so on the same ledger and caps, the dry run and the live proxy decide the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from ..home.config import Budget
from ..providers.request import METERED_APIS
from .policy import STAGES, PolicyRequest, Thresholds, decide, thresholds_of
from .spend import spend_windows

BILLABLE = METERED_APIS  # the same list the live check uses


@dataclass
class ReplayResult:
    requests: int = 0
    decisions: list[tuple[str, str, str | None]] = field(default_factory=list)  # (request_id, action, reason)
    first_stage: dict[str, dict[str, str]] = field(default_factory=dict)  # window key -> stage -> first time
    refused_sessions: dict[str, int] = field(default_factory=dict)
    downgraded_sessions: dict[str, int] = field(default_factory=dict)
    actual_usd: float = 0.0
    replay_usd: float = 0.0
    worst: dict = field(default_factory=dict)  # window, used_pct, spent_usd, cap_usd

    @property
    def saved_usd(self) -> float:
        return self.actual_usd - self.replay_usd


def _tokens(row: dict) -> int:
    return sum(
        int(row.get(c) or 0) for c in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    )


def replay(
    rows: list[dict],
    budget: Budget,
    tz: tzinfo,
    *,
    cascade_target: Callable[[dict], str | None],
    downgraded_cost: Callable[[dict, str], float],
    snoozes: Sequence[tuple[int, int]] = (),
    plan_snapshots: Sequence[dict] = (),
) -> ReplayResult:
    """`rows` are ledger request rows in time order; `snoozes` are (from_ms, until_ms) overrides;
    `plan_snapshots` the stored plan-window readings in time order (ledger/plan.py), replayed against the
    [budget.plan] lines: each request sees the readings that had arrived before it started."""
    from ..plan.brake import policy_windows
    from ..plan.tracker import PlanTracker

    tracker, pos = PlanTracker(), 0
    t = thresholds_of(budget)
    days: dict[tuple[str, str], list] = defaultdict(lambda: [0.0, 0])
    sessions: dict[str, list] = defaultdict(lambda: [0.0, 0])
    out = ReplayResult()
    rank = {s: i for i, s in enumerate(STAGES)}
    for row in rows:
        now = datetime.fromtimestamp(row["started_at"] / 1000, UTC)
        agent = row.get("agent") or ""
        windows = spend_windows(
            now,
            tz,
            budget,
            agent=agent,
            session_id=row.get("session_id"),
            session_budget_usd=row.get("session_budget_usd"),
            day_spend=lambda day, who: tuple(days[(day, who)]),
            session_spend=lambda sid: tuple(sessions[sid]),
        )
        while pos < len(plan_snapshots) and plan_snapshots[pos]["at"] < row["started_at"]:
            tracker.observe_stored(plan_snapshots[pos])
            pos += 1
        if row.get("subscription"):
            windows += policy_windows(
                tracker.for_provider(row["provider"], True), budget, agent, row["started_at"] / 1000
            )
        billable = row["api"] in BILLABLE
        target = row.get("downgrade_to") or (cascade_target(row) if billable else None)
        est = row.get("est_input_tokens")
        req = PolicyRequest(
            billable=billable,
            subscription=bool(row.get("subscription")),
            easy_turn=est is not None and est < budget.easy_turn_tokens,
            turn_boundary=bool(row.get("turn_boundary")),
            pinned=bool(row.get("pinned")),
            downgrade_to=target,
            loop_streak=int(row.get("loop_streak") or 0),
        )
        snoozed = any(a <= row["started_at"] < b for a, b in snoozes)
        d = decide(req, windows, t, snoozed=snoozed)
        out.requests += 1
        out.decisions.append((row["request_id"], d.action, d.reason))
        cost = float(row.get("cost_usd") or 0.0)
        out.actual_usd += cost
        for w in windows:
            stage = d.stage if w is d.window else _stage(w, t)
            if w.kind == "plan" and w.end:
                key = f"{w.name} resetting {w.end.astimezone(tz):%Y-%m-%d %H:%M}"
            else:
                key = (
                    f"{w.name} ending {w.end.astimezone(tz):%Y-%m-%d}" if w.end else f"session {row.get('session_id')}"
                )
            seen = out.first_stage.setdefault(key, {})
            for s in STAGES[1:]:
                if rank[stage] >= rank[s] and s not in seen:
                    seen[s] = now.astimezone(tz).isoformat(timespec="minutes")
            if w.fraction > out.worst.get("fraction", 0) and w.kind == "spend":
                out.worst = {
                    "window": key,
                    "fraction": w.fraction,
                    "used_pct": round(w.fraction * 100, 1),
                    "spent_usd": round(w.spent_usd, 4),
                    "cap_usd": w.cap_usd,
                }
        sid = row.get("session_id") or ""
        if d.action == "refuse":
            out.refused_sessions[sid] = out.refused_sessions.get(sid, 0) + 1
            continue
        if d.action == "downgrade" and d.model and row.get("decision") != "downgrade":
            cost = min(cost, downgraded_cost(row, d.model))
            out.downgraded_sessions[sid] = out.downgraded_sessions.get(sid, 0) + 1
        elif d.action == "downgrade":
            out.downgraded_sessions[sid] = out.downgraded_sessions.get(sid, 0) + 1
        out.replay_usd += cost
        tokens = _tokens(row)
        day = now.astimezone(tz).date().isoformat()
        for who in ("*", agent):
            days[(day, who)][0] += cost
            days[(day, who)][1] += tokens
        sessions[sid][0] += cost
        sessions[sid][1] += tokens
    return out


def _stage(w, t: Thresholds) -> str:
    from .policy import stage_of

    return stage_of(w.fraction, t)
