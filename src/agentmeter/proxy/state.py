"""What the proxy shares across requests: sessions, credentials, the ledger writer, the enforcer, alerts.

Built by the daemon (or a test) and handed to app.create_app; the request handlers reach it as
`request.app[STATE]`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from concurrent.futures import Future
from dataclasses import replace

import aiohttp
from aiohttp import web

from ..core.clock import Clock
from ..core.models import Metered, RequestRecord, Usage
from ..home.config import Config
from ..ledger import Ledger, LedgerWriter
from ..ledger.store import SpendTotals
from ..pricing import tiers
from ..providers import ratelimits
from . import relay
from .enforce import Enforcer

PROVIDERS = ("anthropic", "openai", "gemini")
DRAIN_S = 2.0
log = logging.getLogger("agentmeter.proxy")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ProxyState:
    """What the app shares across requests. Built by the daemon (or a test) and handed to create_app."""

    def __init__(self, config: Config, ledger_path, clock: Clock, *, control_token: str,
                 keys: dict[str, str | None] | None = None, key_source=None, tz=None) -> None:
        self.config = config
        self.ledger_path = ledger_path
        self.clock = clock
        self.control_token = control_token
        self.keys = dict(keys or {})
        # Re-read on every new session, so `agentmeter keys set` needs no daemon restart.
        self.key_source = key_source
        self.tz = tz
        self.writer: LedgerWriter | None = None
        self.reader: Ledger | None = None
        self.http: aiohttp.ClientSession | None = None
        self.bodies = None  # proxy.bodies.BodyGate, built with the other resources (app._resources)
        self._sessions: dict[str, dict] = {}
        self._noted_agent_sessions: set[str] = set()
        self.relayed = 0
        self.totals = SpendTotals(tz)
        self.enforcer: Enforcer | None = None
        self.alert_keys: set[str] = set()
        self.pace_watch = None  # plan.pace.PaceWatch, made on the first plan reading
        self._tasks: set[asyncio.Task] = set()
        self.config_path = None
        # Requests being relayed, per session id: ending a session waits briefly for them (drain).
        self.inflight: dict[str, int] = {}
        self.port: int | None = None
        self.started_ms = clock.now_ms()
        # Why the ledger file is damaged (its integrity check at start, or a read that hit a bad page), or None.
        self.ledger_damage: str | None = None

    # -- sessions -------------------------------------------------------------------------------

    def lookup(self, token: str) -> dict | None:
        h = token_hash(token)
        session = self._sessions.get(h)
        if session is None and self.reader is not None:
            session = self.reader.session_by_token_hash(h)
            if session is not None:
                self._sessions[h] = session
        # The hash lookup already matched; this comparison keeps the check constant-time regardless.
        if session is not None and hmac.compare_digest(session["token_hash"], h):
            # An ended session's token (the agent exited; `run` ended it) opens nothing any more: a token
            # leaked from an old environment is dead.
            return None if session.get("ended_at") else session
        return None

    def forget_session(self, session_id: str) -> None:
        for h, s in list(self._sessions.items()):
            if s["id"] == session_id:
                del self._sessions[h]

    async def open_session(self, spec: dict) -> dict:
        if self.key_source is not None:
            self.keys = await asyncio.get_running_loop().run_in_executor(None, self.key_source)
        token = secrets.token_urlsafe(24)
        key_mode = [p for p in PROVIDERS if self.keys.get(p)]
        vkey = "amk_" + secrets.token_urlsafe(24) if key_mode else None
        session_id = spec.get("id") or secrets.token_hex(6)
        row = {
            "id": session_id,
            "token_hash": token_hash(token),
            "vkey_hash": token_hash(vkey) if vkey else None,
            "key_mode": ",".join(key_mode),
            "agent": str(spec.get("agent") or "other"),
            "developer": spec.get("developer"),
            "team": spec.get("team"),
            "cost_center": spec.get("cost_center"),
            "repo": spec.get("repo"),
            "branch": spec.get("branch"),
            "cwd": spec.get("cwd"),
            "tags": spec.get("tags") or {},
            "budget_usd": spec.get("budget_usd"),
            "pid": spec.get("pid"),
            "started_at": self.clock.now_ms(),
        }
        # keep=True: with the disk failing, the session still opens (it is held in memory and written later).
        await asyncio.wrap_future(self.writer.submit(lambda lg: lg.create_session(row), keep=True))
        self._sessions[row["token_hash"]] = {**row, "tags": json.dumps(row["tags"])}
        return {"session_id": session_id, "token": token, "virtual_key": vkey, "key_mode": key_mode}

    def note_agent_session(self, session: dict, agent_session_id: str | None) -> None:
        if not agent_session_id or session.get("agent_session_id") or session["id"] in self._noted_agent_sessions:
            return
        self._noted_agent_sessions.add(session["id"])
        self.writer.submit(lambda lg: lg.note_agent_session(session["id"], agent_session_id))

    # -- records --------------------------------------------------------------------------------

    def build_record(self, ex: relay.Exchange, m: Metered, info: dict) -> RequestRecord:
        """The row for one response, before pricing (which runs on the writer thread, off the loop)."""
        usage = m.usage or Usage()
        status, reason = "ok", ex.reason
        partial = unmetered = False
        http_status = info.get("http_status")
        if ex.decision == "refuse":
            status = "refused"
        elif http_status is not None and http_status >= 400:
            status, reason = "error", m.error_type or f"http {http_status}"
        elif m.error_type:
            status, reason = "error", m.error_type
        elif ex.api not in relay.BILLABLE and ex.extra.get("spends"):
            # A route that can spend money but whose usage agentmeter does not read: on the row, flagged.
            status, unmetered = "unmetered", True
            reason = reason or f"{ex.provider} {ex.path} can spend money; agentmeter does not read its usage"
        elif ex.api not in relay.BILLABLE:
            status = "passthrough"
        elif m.fault and m.usage is None:
            status, unmetered, reason = "unmetered", True, m.fault
        elif not m.complete:
            status, partial = "partial", True
            reason = info.get("end") or "stream ended before its final event"
            if m.estimated_output_tokens > usage.output_tokens:
                usage = replace(usage, output_tokens=m.estimated_output_tokens)
        if status == "ok" and (info.get("fault") or m.fault):
            # Metered, but not entirely: say so on the row (e.g. a usage event that was not valid JSON).
            reason = info.get("fault") or m.fault
        s = ex.session
        return RequestRecord(
            request_id=ex.request_id, session_id=s["id"], started_at_ms=ex.started_ms,
            provider=ex.provider, api=ex.api, method=ex.method, path=ex.path,
            model_requested=ex.model_requested, model_used=m.model or ex.model_requested,
            stream=ex.stream, status=status, http_status=http_status, usage=usage,
            partial=partial, unmetered=unmetered, reason=reason, decision=ex.decision,
            upstream_request_id=info.get("upstream_request_id"), response_id=m.response_id,
            agent_session_id=ex.agent_session_id, agent_id=ex.agent_id,
            tier=m.tier or tiers.normalize_tier(ex.provider, service_tier=ex.extra.get("service_tier")),
            ttft_ms=info.get("ttft_ms"), duration_ms=info.get("duration_ms"),
            subscription=ex.subscription, agent=s.get("agent"), repo=s.get("repo"), branch=s.get("branch"),
            **_check_fields(ex.extra.get("check")),
        )

    def priced(self, rec: RequestRecord) -> RequestRecord:
        """Tokens are the truth; cost is derived here (and again by `agentmeter reprice`)."""
        from .. import pricing

        if rec.api not in relay.BILLABLE:
            return rec
        if not rec.usage.total_tokens:
            return rec.with_(cost_usd=0.0)
        c = pricing.price(rec.provider, rec.model_used, rec.usage, overrides=self.config.prices,
                          unknown_model=self.config.unknown_model_price, tier=rec.tier,
                          at=pricing.when(rec.started_at_ms))
        reason = c.reason if (c.unpriced and rec.status == "ok") else rec.reason
        return rec.with_(cost_usd=c.usd, price_source=c.source, price_model=c.matched_model,
                         price_version=c.price_version, unpriced=c.unpriced, reason=reason)

    def relaying(self, session_id: str, delta: int) -> None:
        n = self.inflight.get(session_id, 0) + delta
        if n > 0:
            self.inflight[session_id] = n
        else:
            self.inflight.pop(session_id, None)

    async def drain(self, session_id: str, timeout: float = DRAIN_S) -> None:
        """Wait (at most `timeout`) until the session has no request in flight. When an agent exits (Ctrl-C),
        its abandoned requests are recorded as the daemon sees the connections close, which can be just
        after `run` asks to end the session: the summary must count them."""
        deadline = self.clock.monotonic() + timeout
        while self.inflight.get(session_id) and self.clock.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def begin(self, ex: relay.Exchange) -> Future | None:
        """Journal a billable request (write-ahead): if the daemon is killed while relaying its response, the
        next start records it as `partial` instead of losing it. Submitted before the request goes upstream;
        the relay waits for it only before the first byte goes back to the agent (relay.journaled), so the
        disk write overlaps the provider's time to first token. The writer's queue is FIFO: the journal entry
        always lands before the request's row."""
        if ex.api not in relay.BILLABLE:
            return None
        rec = self.build_record(ex, Metered(), {})
        return self.writer.submit(lambda lg: lg.begin_request(rec))

    def commit(self, rec: RequestRecord) -> asyncio.Future:
        """Price and insert on the writer thread; the future resolves once the row is committed. Then the
        request's reservation is released: its real cost is in the totals from that moment."""
        self.relayed += 1
        cf = self.writer.record(rec, prepare=self.priced)
        loop = asyncio.get_running_loop()
        ok = rec.status == "ok"

        def settled(_f) -> None:
            loop.call_soon_threadsafe(self.enforcer.release, rec.request_id, ok, rec.session_id,
                                      rec.agent_session_id)

        cf.add_done_callback(settled)
        return asyncio.wrap_future(cf)

    # -- plan windows -----------------------------------------------------------------------------

    def observe_plan(self, ex: relay.Exchange, raw_headers, http_status: int) -> None:
        """Read the plan-window headers of a response as it arrives (one prefix test per header), update
        the brake's latest state at once, and store the compact snapshot on the writer thread."""
        try:
            fam = ratelimits.family_headers(raw_headers)
            if not fam:
                return
            now_ms = self.clock.now_ms()
            snap = ratelimits.parse(ex.provider, fam, http_status=http_status, now_s=now_ms // 1000)
        except Exception as exc:  # metering never breaks a request
            log.error("plan-window headers of %s not read: %s: %s", ex.request_id, type(exc).__name__, exc)
            return
        if not snap.windows and not snap.extra and not snap.known and snap.status is None:
            return
        account = ex.extra.get("plan_account") or "default"
        self.enforcer.plan.observe(ex.provider, account, snap, now_ms / 1000)
        from ..ledger import plan as ledger_plan

        try:
            self._watch_pace(ex.provider, account, snap, now_ms, ex.session)
        except Exception as exc:
            log.error("plan pace check failed: %s: %s", type(exc).__name__, exc)

        rid, sid = ex.request_id, ex.session["id"]
        self.writer.submit(lambda lg: ledger_plan.insert_snapshot(
            lg, at_ms=now_ms, request_id=rid, session_id=sid, provider=ex.provider, account=account, snap=snap,
            raw=fam))

    def _watch_pace(self, provider: str, account: str, snap, now_ms: int, session: dict) -> None:
        """Warn once per window instance when the current pace runs the window out before its reset."""
        from ..plan.pace import PaceWatch, window_seconds
        from ..plan.shares import Point

        if self.pace_watch is None:
            self.pace_watch = PaceWatch()
            self._load_pace_history()
        for w in snap.windows:
            key = (provider, account, w.name)
            self.pace_watch.add(key, Point(now_ms, w.used_pct, w.resets_at))
            pace = self.pace_watch.due(key, now_ms / 1000, window_seconds(w.name, w.window_minutes))
            if pace is None or pace.verdict != "runs_out":
                continue
            alert_key = f"plan:{provider}:{account}:{w.name}:{w.resets_at}:pace"
            if alert_key in self.alert_keys:
                continue
            self.alert_keys.add(alert_key)
            self.spawn(self._send_pace_alert(alert_key, w, pace, account, session))

    def _load_pace_history(self) -> None:
        """After a restart the pace is known at once: the last few hours of readings from the ledger."""
        from ..ledger import plan as ledger_plan
        from ..plan.shares import Point

        if self.reader is None:
            return
        since = self.clock.now_ms() - 6 * 3600 * 1000
        for s in ledger_plan.snapshots(self.reader.conn, since):
            for name, (used, resets, _m) in s["windows"].items():
                self.pace_watch.add((s["provider"], s["account"], name), Point(int(s["at"]), float(used), resets))

    async def _send_pace_alert(self, key: str, w, pace, account: str, session: dict) -> None:
        from ..plan import label
        from . import notify

        when = pace.as_dict()["runs_out_at"]
        text = (f"{label(w.name)} plan window {w.used_pct:.0f}% used: at this pace it runs out around "
                f"{when[11:16]} UTC, before it resets")
        channels = []
        if self.config.alerts.desktop and await notify.desktop("agentmeter", text):
            channels.append("desktop")
        if self.config.alerts.webhook:
            payload = {"text": f"agentmeter: {text}", "kind": "plan_pace", "window": w.name, "account": account,
                       "used_pct": round(w.used_pct, 2), "runs_out_at": when,
                       "resets_at": w.resets_at, "developer": session.get("developer"),
                       "agent": session.get("agent"), "session_id": session["id"]}
            if await notify.webhook(self.http, self.config.alerts.webhook, payload):
                channels.append("webhook")
        row = {"key": key, "window": f"plan {w.name}", "threshold": 1.0, "spent_usd": None, "cap_usd": None,
               "sent_at": self.clock.now_ms(), "channels": ",".join(channels)}
        await asyncio.wrap_future(self.writer.submit(lambda lg: lg.insert_alert(row)))

    # -- alerts and overrides ---------------------------------------------------------------------------

    def fire_alerts(self, chk, session: dict) -> None:
        """Each (window, threshold) once, ever: recorded in the ledger, then sent in the background."""
        from ..budget.policy import stage_of

        for name, threshold in chk.decision.alerts:
            w = next((x for x in chk.windows if x.name == name), None)
            if w is None:
                continue
            ident = w.end.isoformat() if w.end is not None else session["id"]
            key = f"{name}:{ident}:{threshold:g}"
            if key in self.alert_keys:
                continue
            self.alert_keys.add(key)
            stage = stage_of(threshold, self.enforcer.thresholds)
            self.spawn(self._send_alert(key, w, threshold, stage, session))

    async def _send_alert(self, key: str, w, threshold: float, stage: str, session: dict) -> None:
        from . import notify

        if getattr(w, "kind", "spend") == "plan":
            from ..plan import label

            what = {"alert": "heads-up", "downgrade": "easy turns now use a cheaper model",
                    "blocked": "new requests are refused"}.get(stage, "")
            text = (f"{label(w.name.rpartition('plan ')[2])} plan window {w.spent_usd * 100:.0f}% used "
                    f"(your line: {(w.line or 0) * 100:.0f}%)" + (f" ({what})" if what else ""))
        else:
            text = notify.alert_text(w.name, threshold, w.spent_usd, w.cap_usd, stage)
        channels = []
        if self.config.alerts.desktop and await notify.desktop("agentmeter", text):
            channels.append("desktop")
        if self.config.alerts.webhook:
            payload = {
                "text": f"agentmeter: {text}", "window": w.name, "threshold": threshold, "stage": stage,
                "spent_usd": round(w.spent_usd, 4), "cap_usd": w.cap_usd, "spent_tokens": w.spent_tokens,
                "cap_tokens": w.cap_tokens, "resets_at": w.end.isoformat() if w.end else None,
                "developer": session.get("developer"), "agent": session.get("agent"), "session_id": session["id"],
            }
            if getattr(w, "kind", "spend") == "plan":  # a plan window: a used share of the provider's window
                payload.update({"kind": "plan", "used_pct": round(w.spent_usd * 100, 2), "line": w.line,
                                "spent_usd": None, "cap_usd": None})
            if await notify.webhook(self.http, self.config.alerts.webhook, payload):
                channels.append("webhook")
        row = {"key": key, "window": w.name, "threshold": threshold, "spent_usd": w.spent_usd, "cap_usd": w.cap_usd,
               "sent_at": self.clock.now_ms(), "channels": ",".join(channels)}
        await asyncio.wrap_future(self.writer.submit(lambda lg: lg.insert_alert(row)))

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


STATE = web.AppKey("state", ProxyState)


def _check_fields(chk) -> dict:
    if chk is None:
        return {}
    return {"est_input_tokens": chk.est_input_tokens, "turn_boundary": chk.turn_boundary,
            "loop_streak": chk.loop_streak, "downgrade_to": chk.downgrade_to, "pinned": chk.pinned}
