"""Metering: one request's row — built from its Exchange, what the parser read and the relay's Outcome —
priced on the writer thread and committed to the ledger; its budget reservation is released once it is.

Durability (DESIGN section 3): a billable request is journalled (write-ahead) as it goes upstream, with one
append to the journal file (ledger/journal.py, ~20 µs on the loop: nobody waits for the writer thread), made
while the request travels rather than before it (journal_soon), yet always before any byte of its answer.
The relay awaits the row's commit before the terminal event goes back to the agent: a response the agent
received completely always has its row. A daemon killed mid-stream leaves the journal line, which the next
start records as `partial`. Once the row is committed, the line is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..core.models import Metered, RequestRecord, Usage
from ..home.config import Config
from ..ledger import LedgerWriter
from ..ledger.journal import Journal
from ..pricing import tiers
from ..providers.ratelimits import PlanSnapshot
from .enforce import Check, Enforcer
from .exchange import BILLABLE, Exchange, Outcome

if TYPE_CHECKING:
    from .alerts import Alerts

log = logging.getLogger("agentmeter.proxy")


def build_record(ex: Exchange, m: Metered, out: Outcome) -> RequestRecord:
    """The row for one response, before pricing (which runs on the writer thread, off the loop)."""
    usage = m.usage or Usage()
    status, reason, partial, unmetered = _status(ex, m, out)
    if partial and m.estimated_output_tokens > usage.output_tokens:
        usage = replace(usage, output_tokens=m.estimated_output_tokens)
    s = ex.session
    return RequestRecord(
        request_id=ex.request_id,
        session_id=s.id,
        started_at_ms=ex.started_ms,
        provider=ex.provider,
        api=ex.api,
        method=ex.method,
        path=ex.path,
        model_requested=ex.model_requested,
        model_used=m.model or ex.model_requested,
        stream=ex.stream,
        status=status,
        http_status=out.http_status,
        usage=usage,
        partial=partial,
        unmetered=unmetered,
        reason=reason,
        decision=ex.decision,
        upstream_request_id=out.upstream_request_id,
        response_id=m.response_id,
        agent_session_id=ex.agent_session_id,
        agent_id=ex.agent_id,
        tier=m.tier or tiers.normalize_tier(ex.provider, service_tier=ex.service_tier),
        ttft_ms=out.ttft_ms,
        duration_ms=out.duration_ms,
        subscription=ex.subscription,
        agent=s.agent,
        repo=s.repo,
        branch=s.branch,
        **_check_fields(ex.check),
    )


def _status(ex: Exchange, m: Metered, out: Outcome) -> tuple[str, str | None, bool, bool]:
    """(status, reason, partial, unmetered) of a row."""
    http_status = out.http_status
    if ex.decision == "refuse":
        return "refused", ex.reason, False, False
    if http_status is not None and http_status >= 400:
        return "error", m.error_type or f"http {http_status}", False, False
    if m.error_type:
        return "error", m.error_type, False, False
    if not ex.billable and ex.spends:
        # A route that can spend money but whose usage agentmeter does not read: on the row, flagged.
        why = ex.reason or f"{ex.provider} {ex.path} can spend money; agentmeter does not read its usage"
        return "unmetered", why, False, True
    if not ex.billable:
        return "passthrough", ex.reason, False, False
    if m.fault and m.usage is None:
        return "unmetered", m.fault, False, True
    if not m.complete:
        return "partial", out.end or "stream ended before its final event", True, False
    # Metered, but perhaps not entirely: say so on the row (e.g. a usage event that was not valid JSON).
    return "ok", out.fault or m.fault or ex.reason, False, False


def _check_fields(chk: Check | None) -> dict[str, Any]:
    if chk is None:
        return {}
    return {
        "est_input_tokens": chk.est_input_tokens,
        "turn_boundary": chk.turn_boundary,
        "loop_streak": chk.loop_streak,
        "downgrade_to": chk.downgrade_to,
        "pinned": chk.pinned,
    }


def priced(rec: RequestRecord, config: Config) -> RequestRecord:
    """Tokens are the truth; cost is derived here (and again by `agentmeter reprice`)."""
    from .. import pricing

    if rec.api not in BILLABLE:
        return rec
    if not rec.usage.total_tokens:
        return rec.with_(cost_usd=0.0)
    c = pricing.price(
        rec.provider,
        rec.model_used,
        rec.usage,
        overrides=config.prices,
        unknown_model=config.unknown_model_price,
        tier=rec.tier,
        at=pricing.when(rec.started_at_ms),
    )
    reason = c.reason if (c.unpriced and rec.status == "ok") else rec.reason
    return rec.with_(
        cost_usd=c.usd,
        price_source=c.source,
        price_model=c.matched_model,
        price_version=c.price_version,
        unpriced=c.unpriced,
        reason=reason,
    )


class Metering:
    """Journal, record, price, commit — and release the request's reservation once its cost is in the totals."""

    def __init__(
        self, config: Config, writer: LedgerWriter, journal: Journal, enforcer: Enforcer, alerts: Alerts | None = None
    ) -> None:
        self._alerts = alerts  # sees the plan-window readings found inside a stream
        self._config = config
        self._writer = writer
        self._journal = journal
        self._enforcer = enforcer
        self.relayed = 0  # rows committed (or being committed) since start, for the health endpoint

    def journal(self, ex: Exchange) -> None:
        """Write-ahead line for a billable request, just before it goes upstream: if the daemon is killed
        while relaying its response, the next start records it as `partial`."""
        if ex.billable and not ex.settled:
            self._journal.begin(build_record(ex, Metered(), Outcome()))

    def journal_soon(self, ex: Exchange) -> None:
        """The write-ahead line, written while the request is on its way upstream instead of before: two
        turns of the event loop from now. The first turn runs the request's task up to its wait for the
        answer (the request written, or its body-writing task queued behind this callback on Python < 3.12),
        the second writes the line — before anything of the answer can be relayed, since the answer's bytes
        are handled in a later turn still. Off the path to the first byte (~60 µs on a loaded machine, issue
        17.5); a daemon killed within those microseconds has no line, as the issue allows ("whenever the
        journal had time to land"). A request settled in between (refused by aiohttp at once) gets none."""
        if ex.billable:
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._journal_now, ex)

    def _journal_now(self, ex: Exchange) -> None:
        try:
            self.journal(ex)
        except Exception as exc:  # a callback's exception would only reach the loop's handler
            log.error("journal line for %s not written: %s: %s", ex.request_id, type(exc).__name__, exc)

    def commit(self, ex: Exchange, metered: Metered, out: Outcome) -> asyncio.Future:
        """Price and insert on the writer thread; the future resolves once the row is committed. Then the
        request's reservation is released: its real cost is in the totals from that moment."""
        if self._alerts is not None:
            # core.models types it `object` (the core may not import providers/): narrowed here.
            plan = metered.plan if isinstance(metered.plan, PlanSnapshot) else None
            self._alerts.observe_stream_plan(ex, plan)
        rec = build_record(ex, metered, out)
        ex.settled = True
        self.relayed += 1
        cf = self._writer.record(rec, prepare=self._priced)
        loop = asyncio.get_running_loop()
        ok = rec.status == "ok"

        def settled(_f: object) -> None:
            loop.call_soon_threadsafe(self._settled, rec.request_id, ok, rec.session_id, rec.agent_session_id)

        cf.add_done_callback(settled)
        return asyncio.wrap_future(cf)

    def _settled(self, request_id: str, ok: bool, session_id: str | None, agent_session_id: str | None) -> None:
        self._enforcer.release(request_id, ok, session_id, agent_session_id)
        self._journal.done(request_id)

    async def settle(self, ex: Exchange, metered: Metered, out: Outcome) -> None:
        """Commit and wait; a failing ledger is logged, never raised (metering never breaks a request)."""
        try:
            await self.commit(ex, metered, out)
        except Exception as exc:
            log.error("ledger commit failed for %s: %s", ex.request_id, exc)

    def _priced(self, rec: RequestRecord) -> RequestRecord:
        return priced(rec, self._config)


class LedgerHealth:
    """What is known to be wrong with the ledger file: its integrity check at start, or a read that hit a
    damaged page (the budget check's). The health endpoint and `doctor` show it."""

    def __init__(self, writer: LedgerWriter) -> None:
        self._writer = writer
        self.damage: str | None = None

    def report(self) -> dict[str, Any]:
        damage = self.damage
        err = self._writer.last_error or ""
        if damage is None and any(m in err for m in ("malformed", "not a database", "CorruptError")):
            damage = err
        if damage is None:
            return {"ledger": "ok"}
        return {
            "ledger": "damaged",
            "ledger_damage": damage[:300],
            "fix": "agentmeter proxy stop && agentmeter doctor --repair",
        }
