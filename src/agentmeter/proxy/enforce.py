"""Live budget enforcement: the pure policy fed with committed spend plus in-flight reservations.

`check` runs synchronously in the request handler — no await between reading the totals and taking the
reservation — so N concurrent requests can never all slip under the cap on the same stale total. A
reservation is released when its row commits (or fails), and expires regardless, so a leak can never
refuse anyone for long.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..budget import cascade
from ..budget.limits import reserved_output_tokens
from ..budget.loops import LoopBrake, turn_facts
from ..budget.policy import Decision, PolicyRequest, Thresholds, WindowSpend, decide
from ..budget.spend import spend_windows
from ..core.models import Session, Usage
from ..home.config import Config, load_config
from ..ledger import plan as ledger_plan
from ..ledger import sync as ledger_sync
from ..ledger.store import Ledger, SpendTotals
from ..plan.brake import policy_windows
from ..plan.tracker import PlanTracker
from ..providers.request import METERED_APIS
from ..sync.caps import cap_sources, effective_budget, snooze_allowed
from ..sync.wallet import KIND as WALLET
from ..sync.wallet import refusal_message as wallet_refusal
from ..sync.wallet import wallet_of, wallet_windows

log = logging.getLogger("agentmeter.budget")
RESERVATION_TTL_S = 15 * 60


@dataclass
class Reservation:
    """A request's estimated cost, held until its row commits. The dollar figure is priced the first time a
    check reads it: with one request at a time the row commits (and the reservation goes) before any other
    check runs, so the price lookup stays off the request's path to its first byte (issue 17.5)."""

    tokens: int
    session_id: str
    agent: str
    expires: float
    price: Callable[[], float] | None = None  # prices the estimate (what `usd` reads, once)
    _usd: float | None = None

    @property
    def usd(self) -> float:
        if self._usd is None:
            price, self.price = self.price, None
            self._usd = price() if price is not None else 0.0
        return self._usd


@dataclass
class Check:
    decision: Decision
    est_input_tokens: int = 0
    turn_boundary: bool = False
    loop_streak: int = 0
    downgrade_to: str | None = None
    pinned: bool = False
    windows: list[WindowSpend] = field(default_factory=list)


def estimate_tokens(
    plain_len: int, max_tokens: int | None, provider: str = "", model: str | None = None
) -> tuple[int, int]:
    """(input, output) tokens a request may cost: ~4 bytes a token in; out, the request's own max_tokens
    capped by the model's real output limit (the model's limit when the request names none)."""
    return plain_len // 4, reserved_output_tokens(provider, model, max_tokens)


def pins_model(tags) -> bool:
    """`run --no-downgrade` sets the tag no_downgrade=1. Only that key counts: a tag *value* that happens
    to contain the text (a ticket title, say) must not pin the model."""
    if isinstance(tags, str):
        try:
            tags = json.loads(tags) if tags else {}
        except ValueError:
            return False
    if not isinstance(tags, dict):
        return False
    value = tags.get("no_downgrade")
    return value is not None and str(value).strip().lower() not in ("0", "false", "no", "off", "")


class Enforcer:
    def __init__(self, config: Config, reader: Ledger, totals: SpendTotals, tz, clock, config_path=None) -> None:
        self.config = config
        self.reader = reader
        self.totals = totals
        self.tz = tz
        self.clock = clock
        self.config_path = config_path
        self._config_mtime = self._mtime()
        self._reserved: dict[str, Reservation] = {}
        self._brakes: dict[str, LoopBrake] = {}
        self._known_models: dict[tuple[str, str], bool] = {}
        self._cheaper_of: dict[tuple[str, str], str | None] = {}
        self._cheaper_for: Config | None = None  # the config the memo above was made with
        self._snooze_until: int | None = reader.snoozed_until(clock.now_ms())
        self._next_config_check = 0.0
        self.team_caps = ledger_sync.team_caps(reader.conn)  # fetched from the collector by sync
        self.plan = PlanTracker()  # the latest plan-window readings, fed by the proxy's response path
        self.plan.load(ledger_plan.readings(reader.conn))

    # -- config and overrides ------------------------------------------------------------------------

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.config_path).st_mtime if self.config_path else None
        except OSError:
            return None

    def maybe_reload(self) -> None:
        """`agentmeter budget set` edits the file; pick it up within a second, without a restart."""
        now = self.clock.monotonic()
        if now < self._next_config_check or not self.config_path:
            return
        self._next_config_check = now + 1.0
        self.team_caps = ledger_sync.team_caps(self.reader.conn)  # `agentmeter sync` may have fetched new ones
        mtime = self._mtime()
        if mtime != self._config_mtime:
            self._config_mtime = mtime
            try:
                self.config = load_config(self.config_path)
                log.info("config reloaded")
            except Exception as exc:  # keep enforcing the last good config
                log.error("config reload failed, keeping the previous one: %s", exc)

    def snooze(self, until_ms: int | None) -> None:
        self._snooze_until = until_ms

    def snoozed(self) -> bool:
        """A snooze (`agentmeter budget snooze`) is in force now."""
        return bool(self._snooze_until and self._snooze_until > self.clock.now_ms())

    @property
    def budget(self):
        """The config's budget with any stricter team or developer cap from the collector."""
        return effective_budget(self.config, self.team_caps)

    @property
    def snooze_allowed(self) -> bool:
        return snooze_allowed(self.team_caps)

    @property
    def thresholds(self) -> Thresholds:
        b = self.config.budget
        return Thresholds(b.alert_at, b.downgrade_at, b.block_at, b.retry_cap, b.enforce_subscription)

    # -- the view --------------------------------------------------------------------------------------

    def _reserved_for(self, pred) -> tuple[float, int]:
        now = self.clock.monotonic()
        usd, tokens = 0.0, 0
        for rid, r in list(self._reserved.items()):
            if r.expires < now:
                del self._reserved[rid]
                continue
            if pred(r):
                usd += r.usd
                tokens += r.tokens
        return usd, tokens

    def windows(self, session: Session, now: datetime | None = None, full: bool = False) -> list[WindowSpend]:
        """Spend against each cap (committed + reserved). `full` includes uncapped windows too."""

        def reserved(scope: str) -> tuple[float, int]:
            if scope == "*":
                return self._reserved_for(lambda r: True)
            kind, _, name = scope.partition(":")
            if kind == "agent":
                return self._reserved_for(lambda r: r.agent == name)
            return self._reserved_for(lambda r: r.session_id == name)

        now = now or self.clock.now()
        return spend_windows(
            now,
            self.tz,
            self.budget,
            agent=session.agent or "",
            session_id=session.id,
            session_budget_usd=session.budget_usd,
            day_spend=lambda day, who: self.totals.day(self.reader, day, who),
            session_spend=lambda sid: self.totals.session(self.reader, sid),
            reserved=reserved,
            full=full,
            sources=cap_sources(self.config, self.team_caps),
        ) + wallet_windows(
            wallet_of(self.team_caps),
            now,
            self.tz,  # the team's pooled spend + ours, live
            lambda day: self.totals.day(self.reader, day, "*"),
            reserved("*"),
        )

    # -- the check ---------------------------------------------------------------------------------------

    def check(
        self,
        *,
        request_id: str,
        session: Session,
        provider: str,
        api: str,
        model: str | None,
        body,
        body_len: int,
        subscription: bool,
        agent_session: str | None,
        billable: bool,
        plan_account: str | None = None,
    ) -> Check:
        """Decide and, when the request goes ahead, reserve its estimated cost. Synchronous on purpose.
        `body` is the request's BodyFacts (providers/request.py), or None when it had no JSON body."""
        from .. import pricing

        self.maybe_reload()
        b = self.budget
        est_in, est_out = estimate_tokens(body_len, body.max_tokens if body is not None else None, provider, model)
        facts = None
        # A body that could not be read (over the decode cap, an unknown encoding) has no turn to compare:
        # leaving it out keeps unrelated unreadable bodies from counting as one re-sent body.
        if billable and api in METERED_APIS and body is not None:
            try:
                facts = turn_facts(provider, body, body_len)
            except Exception as exc:  # any JSON can arrive; a shape the loop brake does not know skips it
                log.info("loop brake skipped an unusual %s body: %s: %s", provider, type(exc).__name__, exc)
        streak = 0
        if facts is not None:
            brake = self._brakes.setdefault(f"{session.id}:{agent_session or ''}", LoopBrake())
            streak = brake.observe(facts)
        pinned = pins_model(dict(session.tags)) or (model or "") in self.config.budget.pinned
        target = self._cheaper(provider, model) if billable else None
        windows = self.windows(session)
        if subscription and plan_account is not None:
            windows += self.plan_windows(provider, plan_account, session.agent or "")
        req = PolicyRequest(
            billable=billable,
            subscription=subscription,
            easy_turn=est_in < b.easy_turn_tokens,
            turn_boundary=bool(facts and facts.fresh_user_turn),
            pinned=pinned,
            downgrade_to=target,
            loop_streak=streak,
        )
        snoozed = self.snoozed()
        decision = decide(req, windows, self.thresholds, snoozed=snoozed)
        if snoozed and not snooze_allowed(self.team_caps):  # a snooze lifts personal caps, never the team's
            held = decide(req, [w for w in windows if w.from_team], self.thresholds)
            if held.action == "refuse":
                decision = held
        # Routes that can spend but whose usage is not read (batches, legacy completions, …) are refused at a
        # blown cap but reserve nothing: their cost is unknown, and a worst-case guess would refuse everyone.
        if billable and decision.action != "refuse" and api in METERED_APIS:
            used_model = decision.model or model
            overrides, unknown = self.config.prices, self.config.unknown_model_price

            def price() -> float:
                usage = Usage(input_tokens=est_in, output_tokens=est_out)
                est = pricing.price(provider, used_model, usage, overrides=overrides, unknown_model=unknown)
                return est.usd or 0.0

            self._reserved[request_id] = Reservation(
                est_in + est_out,
                session.id,
                session.agent or "",
                self.clock.monotonic() + RESERVATION_TTL_S,
                price,
            )
        return Check(decision, est_in, req.turn_boundary, streak, target, pinned, windows)

    def plan_windows(self, provider: str, account: str, agent: str) -> list[WindowSpend]:
        """The account's plan windows that have a line in [budget.plan] (or the agent's own)."""
        return policy_windows(
            self.plan.readings(provider, account), self.config.budget, agent, self.clock.now_ms() / 1000
        )

    def release(
        self, request_id: str, ok: bool | None = None, session_id: str | None = None, agent_session: str | None = None
    ) -> None:
        self._reserved.pop(request_id, None)
        if ok is not None and session_id is not None:
            brake = self._brakes.get(f"{session_id}:{agent_session or ''}")
            if brake is not None:
                brake.outcome(ok)

    def _cheaper(self, provider: str, model: str | None) -> str | None:
        """The cascade's next cheaper model that a price table knows, remembered per model until the config
        is reloaded (the ladder's regular expressions cost more than the rest of the check)."""
        if self._cheaper_for is not self.config:  # reloaded: the [cascade] ladder may have changed
            self._cheaper_of.clear()
            self._cheaper_for = self.config
        key = (provider, model or "")
        if key in self._cheaper_of:
            return self._cheaper_of[key]
        target = cascade.next_cheaper(provider, model, self.config.cascade)
        if target is not None and not self._priced(provider, target):
            target = None  # never switch to a model no price table knows: it may not exist upstream either
        if len(self._cheaper_of) >= 1024:  # model names come from request bodies: keep the memo bounded
            self._cheaper_of.clear()
        self._cheaper_of[key] = target
        return target

    def _priced(self, provider: str, model: str) -> bool:
        from .. import pricing

        known = self._known_models.get((provider, model))
        if known is None:
            known = not pricing.price(provider, model, Usage(input_tokens=1), overrides=self.config.prices).unpriced
            self._known_models[(provider, model)] = known
        return known

    @property
    def in_flight(self) -> int:
        return len(self._reserved)


def refusal_message(decision: Decision, tz, now: datetime, snooze_ok: bool = True) -> str:
    """One line: which cap (and who set it), spent vs cap, when it resets, and the override. No double quotes.
    A team cap is not the developer's to raise: the message says who to ask instead."""
    if decision.reason == "retry_cap":
        return (
            "agentmeter: this session repeated a failing step too many times (loop brake). "
            "Send a new message to continue, or pause the brake: agentmeter budget snooze 30m"
        )
    w = decision.window
    if w is None:
        return "agentmeter: budget reached"
    if w.kind == "plan":
        return plan_refusal_message(w, tz, now)
    agent, _, period = w.name.rpartition(" ")  # "day", or "codex day" for an agent's own cap
    label = {"day": "daily", "week": "weekly", "month": "monthly"}.get(period, period)
    label = f"{agent} {label}" if agent else label
    flag = {"day": "--daily", "week": "--weekly", "month": "--monthly"}.get(period)
    scope = f"--agent {agent} " if agent else ""
    if w.cap_usd is not None and (w.cap_tokens is None or w.spent_usd / max(w.cap_usd, 1e-9) >= 1):
        what = f"{label} budget of ${w.cap_usd:,.2f} reached (${w.spent_usd:,.2f} spent)"
        raise_hint = (
            f"agentmeter budget set {scope}{flag} {w.cap_usd * 2:g}"
            if flag
            else "start a new run with a bigger --budget"
        )
    else:
        what = f"{label} token budget of {w.cap_tokens:,} reached ({w.spent_tokens:,} used)"
        raise_hint = (
            f"agentmeter budget set {scope}{flag}-tokens {(w.cap_tokens or 0) * 2}"
            if flag
            else "start a new run with a bigger --budget"
        )
    when = ""
    if w.end is not None:
        local = w.end.astimezone(tz)
        left = w.end - now
        hours = max(0, int(left.total_seconds() // 3600))
        when = f" It resets {local:%a %d %b %H:%M %Z} (in {hours}h)."
    if w.kind == WALLET:
        return wallet_refusal(w, when)
    if w.from_team:
        who = w.source if w.source != "developer" else "your team lead for you"
        snooze = " or snooze it: agentmeter budget snooze 1h" if snooze_ok else ""
        return (
            f"agentmeter: {what}; this cap is set by {who} on the team collector.{when} "
            f"Raising your own caps does not lift it: ask your team lead{snooze}."
        )
    return f"agentmeter: {what}.{when} To continue now: agentmeter budget snooze 1h, or raise it: {raise_hint}"


def plan_refusal_message(w: WindowSpend, tz, now: datetime) -> str:
    """Names the window, how full it is against the line, and when the provider resets it."""
    from ..plan import label

    agent, _, name = w.name.rpartition("plan ")
    scope = f"{agent.strip()} " if agent.strip() else ""
    what = (
        f"your {scope}{label(name)} plan window is {w.spent_usd * 100:.0f}% used; "
        f"your line is {(w.line or 0) * 100:.0f}%"
    )
    when = ""
    if w.end is not None:
        left = w.end - now
        hours, minutes = divmod(max(0, int(left.total_seconds() // 60)), 60)
        when = f" It resets {w.end.astimezone(tz):%a %d %b %H:%M} (in {hours}h{minutes:02d}m)."
    key = name.rpartition(":")[2]
    section = f"[budget.agents.{scope.strip()}.plan]" if scope else "[budget.plan]"
    return (
        f"agentmeter: {what}.{when} To continue now: agentmeter budget snooze 1h, "
        f"or raise {key} in {section} of your config"
    )
