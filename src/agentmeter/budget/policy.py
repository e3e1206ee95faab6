"""The budget policy: one pure function, used live by the proxy and by `agentmeter budget test`.

Inputs are what is already spent in each window (ledger totals plus in-flight reservations), the caps,
and the facts of the request; the output is a Decision. No clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

STAGES = ("ok", "alert", "downgrade", "blocked")


@dataclass(frozen=True)
class Thresholds:
    alert_at: float = 0.80
    downgrade_at: float = 0.95
    block_at: float = 1.10
    retry_cap: int = 3
    enforce_subscription: bool = False


@dataclass(frozen=True)
class WindowSpend:
    """One capped window: `name` is day/week/month/session, or agent:<name>:day etc."""

    name: str
    end: datetime | None  # when it resets (None for a session)
    spent_usd: float
    spent_tokens: int
    cap_usd: float | None = None
    cap_tokens: int | None = None
    # "spend" (dollars/tokens) or "plan": a subscription plan window, where spent_usd is the provider's
    # used fraction and cap_usd the configured line scaled by block_at, so the refusal starts at the line.
    kind: str = "spend"
    line: float | None = None  # plan windows: the configured line (0.9 = refuse from 90 % used)
    # Who set the cap: personal, team <name>, developer (the collector's cap for this developer), agent, run.
    source: str = "personal"

    @property
    def from_team(self) -> bool:
        """A cap the team lead set on the collector: the developer's own `budget set` cannot raise it."""
        return self.source == "developer" or self.source.startswith("team")

    @property
    def fraction(self) -> float:
        f = 0.0
        if self.cap_usd is not None:
            f = max(f, self.spent_usd / self.cap_usd if self.cap_usd > 0 else float("inf"))
        if self.cap_tokens is not None:
            f = max(f, self.spent_tokens / self.cap_tokens if self.cap_tokens > 0 else float("inf"))
        return f


@dataclass(frozen=True)
class PolicyRequest:
    billable: bool = True  # count_tokens and model listings are never refused
    subscription: bool = False
    easy_turn: bool = False  # estimated input under easy_turn_tokens
    turn_boundary: bool = False  # a new user turn, not a tool-result continuation
    pinned: bool = False  # --no-downgrade / config: leave the model alone
    downgrade_to: str | None = None  # one step down the cascade, if any
    loop_streak: int = 0


@dataclass(frozen=True)
class Decision:
    action: str = "allow"  # allow | downgrade | refuse
    stage: str = "ok"  # ok | alert | downgrade | blocked
    reason: str | None = None  # budget | plan | retry_cap | snoozed | subscription_alert_only
    window: WindowSpend | None = None  # the window that decided
    model: str | None = None  # the model to use when downgrading
    alerts: tuple[tuple[str, float], ...] = field(default_factory=tuple)  # (window name, threshold) crossed


def thresholds_of(budget) -> Thresholds:
    """The thresholds a budget (home.config.Budget, or anything with the same fields) sets."""
    return Thresholds(
        budget.alert_at, budget.downgrade_at, budget.block_at, budget.retry_cap, budget.enforce_subscription
    )


def standing(w: WindowSpend, t: Thresholds) -> tuple[float | None, str]:
    """A window against its cap: the used percentage of the tighter cap (one decimal) and the stage; (None, "ok")
    when it has no cap. A cap of 0 means everything is over it, not "no cap"."""
    if w.cap_usd is None and w.cap_tokens is None:
        return None, "ok"
    return round(w.fraction * 100, 1), stage_of(w.fraction, t)


def stage_of(fraction: float, t: Thresholds) -> str:
    if fraction >= t.block_at:
        return "blocked"
    if fraction >= t.downgrade_at and t.downgrade_at < t.block_at:
        return "downgrade"
    if fraction >= t.alert_at:
        return "alert"
    return "ok"


def decide(req: PolicyRequest, windows: list[WindowSpend], t: Thresholds, *, snoozed: bool = False) -> Decision:
    capped = [w for w in windows if w.cap_usd is not None or w.cap_tokens is not None]
    worst = max(capped, key=lambda w: w.fraction, default=None)
    stage = stage_of(worst.fraction, t) if worst else "ok"
    alerts = tuple((w.name, th) for w in capped for th in _thresholds(t) if w.fraction >= th)
    base = Decision(stage=stage, window=worst, alerts=alerts)
    if not req.billable:
        return base
    enforce = not req.subscription or t.enforce_subscription
    if req.loop_streak > t.retry_cap and not snoozed:
        return Decision("refuse", stage, "retry_cap", worst, alerts=alerts)
    if req.subscription and not enforce:
        # Dollar caps are alert-only on subscription traffic, but a plan-window line the developer set is
        # exactly the brake they asked for: it acts whatever the dollar windows say.
        plan = [w for w in capped if w.kind == "plan"]
        tight = max(plan, key=lambda w: w.fraction, default=None)
        if tight is not None and stage_of(tight.fraction, t) in ("blocked", "downgrade"):
            worst, stage, enforce = tight, stage_of(tight.fraction, t), True
    if stage == "blocked":
        if snoozed:
            return Decision("allow", stage, "snoozed", worst, alerts=alerts)
        if not enforce:
            return Decision("allow", stage, "subscription_alert_only", worst, alerts=alerts)
        return Decision("refuse", stage, _reason(worst), worst, alerts=alerts)
    if (
        stage == "downgrade"
        and enforce
        and not snoozed
        and not req.pinned
        and req.easy_turn
        and req.turn_boundary
        and req.downgrade_to
    ):
        return Decision("downgrade", stage, _reason(worst), worst, req.downgrade_to, alerts)
    return base


def _reason(w: WindowSpend | None) -> str:
    return "plan" if w is not None and w.kind == "plan" else "budget"


def _thresholds(t: Thresholds) -> tuple[float, ...]:
    return tuple(sorted({t.alert_at, t.downgrade_at, t.block_at}))
