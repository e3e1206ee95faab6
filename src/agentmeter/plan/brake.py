"""Plan-window lines as policy windows: one function shared by the live proxy and `budget test`.

A line (five_hour = 0.9) is where the refusal starts. The window's used fraction is set against
line / block_at, so the policy's stages fall in the same proportions as for a dollar cap: with the
default thresholds, alert from 0.8/1.1 of the line (65 % used for a 0.9 line), cheaper model on easy
turns from 0.95/1.1 (78 %), refusal at the line itself (90 %).
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..budget.policy import WindowSpend
from ..home.config import Budget
from .tracker import Reading


def policy_windows(readings: list[Reading], budget: Budget, agent: str, now_s: float) -> list[WindowSpend]:
    scopes = [("", budget.plan)]
    if agent in budget.agent_plan:
        scopes.append((f"{agent} ", budget.agent_plan[agent]))
    if not any(lines for _, lines in scopes):
        return []
    block_at = budget.block_at or 1.0
    out = []
    for r in readings:
        key = r.window.rpartition(":")[2]
        for prefix, lines in scopes:
            line = lines.get(key)
            if line is None:
                continue
            end = datetime.fromtimestamp(r.resets_at, UTC) if r.resets_at else None
            out.append(
                WindowSpend(
                    f"{prefix}plan {r.window}",
                    end,
                    r.used_now(now_s) / 100,
                    0,
                    max(line, 1e-9) / block_at,
                    None,
                    kind="plan",
                    line=line,
                )
            )
    return out
