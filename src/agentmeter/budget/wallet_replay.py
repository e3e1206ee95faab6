"""`collector budget test --team`: replay a team's history on the collector through a team wallet.

The collector keeps daily rollups, not single requests, so each member's day is replayed as its requests at
that day's average cost, the members' requests interleaved in turn (they work side by side). Each one goes
through the same `decide` the proxy uses, against the pooled windows (day/week/month) and the member
sub-cap windows, exactly as a client enforces them (sync/wallet.py). Pure: rows in, result out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .policy import STAGES, PolicyRequest, Thresholds, WindowSpend, decide

PREFIX = {"day": "daily", "week": "weekly", "month": "monthly"}


@dataclass
class TeamReplay:
    requests: int = 0
    refused: int = 0
    actual_usd: float = 0.0
    replay_usd: float = 0.0
    first_stage: dict[str, dict[str, str]] = field(default_factory=dict)  # window -> stage -> first day
    refused_members: dict[str, int] = field(default_factory=dict)
    first_refusal: dict[str, str] = field(default_factory=dict)  # member -> day
    worst: dict[str, Any] | None = None

    @property
    def saved_usd(self) -> float:
        return self.actual_usd - self.replay_usd


def _start(name: str, d: date) -> date:
    if name == "day":
        return d
    if name == "week":
        return d - timedelta(days=d.weekday())
    return d.replace(day=1)


def _cap(caps: dict[str, Any], name: str) -> tuple[float | None, int | None]:
    return caps.get(f"{PREFIX[name]}_usd"), caps.get(f"{PREFIX[name]}_tokens")


def _interleave(rows: list[dict[str, Any]]):
    """One day's member rows → (member, usd, tokens) per request, members taking turns."""
    queues = []
    for r in rows:
        n = max(1, int(r["requests"]))
        queues.append([r["developer"], n, r["cost_usd"] / n, r["tokens"] // n])
    while queues:
        for q in list(queues):
            yield q[0], q[2], q[3]
            q[1] -= 1
            if q[1] == 0:
                queues.remove(q)


def replay_team(
    rows: list[dict[str, Any]], pooled: dict[str, Any], member: dict[str, Any], t: Thresholds | None = None
) -> TeamReplay:
    """`rows`: {day, developer, cost_usd, tokens, requests} in day order (collector.wallet.team_days)."""
    t = t or Thresholds()
    out = TeamReplay()
    spent: dict[tuple, list] = defaultdict(lambda: [0.0, 0])  # (scope, window, start[, member]) -> [usd, tok]
    by_day: dict[str, list] = defaultdict(list)
    for r in rows:
        by_day[r["day"]].append(r)
    worst_frac = 0.0
    req = PolicyRequest(billable=True)
    for day in sorted(by_day):
        d = date.fromisoformat(day)
        for who, usd, tok in _interleave(by_day[day]):
            out.requests += 1
            out.actual_usd += usd
            windows = []
            for scope, caps, label in (("pooled", pooled, "wallet"), ("member", member, "wallet member")):
                for name in PREFIX:
                    cap_usd, cap_tok = _cap(caps, name)
                    if cap_usd is None and cap_tok is None:
                        continue
                    key = (scope, name, _start(name, d), who if scope == "member" else "")
                    s = spent[key]
                    windows.append(
                        WindowSpend(
                            f"{label} {name}",
                            None,
                            s[0],
                            s[1],
                            cap_usd,
                            cap_tok,
                            kind="wallet",
                            source=who if scope == "member" else "team",
                        )
                    )
            decision = decide(req, windows, t)
            for w in windows:
                stage = _stage(w.fraction, t)
                label = w.name if w.source == "team" else f"{w.name} ({w.source})"
                if stage != "ok":
                    out.first_stage.setdefault(label, {}).setdefault(stage, day)
            if decision.action == "refuse":
                out.refused += 1
                out.refused_members[who] = out.refused_members.get(who, 0) + 1
                out.first_refusal.setdefault(who, day)
                continue
            out.replay_usd += usd
            for w in windows:
                name = w.name.rpartition(" ")[2]
                scope = "member" if w.name.startswith("wallet member") else "pooled"
                s = spent[(scope, name, _start(name, d), who if scope == "member" else "")]
                s[0] += usd
                s[1] += tok
                after = WindowSpend(w.name, None, s[0], s[1], w.cap_usd, w.cap_tokens).fraction
                if after > worst_frac:
                    worst_frac = after
                    out.worst = {
                        "window": w.name if scope == "pooled" else f"{w.name} ({who})",
                        "day": day,
                        "spent_usd": round(s[0], 6),
                        "cap_usd": w.cap_usd,
                        "used_pct": round(after * 100, 1),
                    }
    return out


def _stage(fraction: float, t: Thresholds) -> str:
    from .policy import stage_of

    stage = stage_of(fraction, t)
    return stage if stage in STAGES else "ok"
