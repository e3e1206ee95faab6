"""The aiohttp application: session-token routing, credentials, and the control API for the CLI.

URL shape: /s/<session token>/<provider>/<the provider's own path>. The token (192 random bits) is
the only way in; a request without a valid one gets a 401 in the provider's error shape.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import replace

import aiohttp
from aiohttp import web

from .. import __version__
from ..budget import downgrade
from ..budget.policy import Decision
from ..clock import Clock
from ..config import Config
from ..ledger import Ledger, LedgerWriter, open_ledger
from ..ledger.store import SpendTotals
from ..models import Metered, RequestRecord, Usage
from ..providers.request import classify, decode_body, inject_include_usage, read_body
from . import relay
from .enforce import Check, Enforcer, refusal_message
from .errors import guess_provider, provider_error, refusal

log = logging.getLogger("agentmeter.proxy")

MAX_BODY = 64 * 1024 * 1024
JOURNAL_WAIT_S = 1.0
PROVIDERS = ("anthropic", "openai")
NO_SESSION = (
    "this request has no valid agentmeter session token. Start the agent with: agentmeter run claude "
    "(or codex), or set its base URL from: agentmeter env"
)
# Headers that name the agent's own session, in every spelling seen (wire-protocols 0, 1.4, 2.3).
AGENT_SESSION_HEADERS = ("x-claude-code-session-id", "session-id", "session_id", "thread-id", "conversation_id")


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
        self._sessions: dict[str, dict] = {}
        self._noted_agent_sessions: set[str] = set()
        self.relayed = 0
        self.totals = SpendTotals(tz)
        self.enforcer: Enforcer | None = None
        self.alert_keys: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self.config_path = None
        self.port: int | None = None
        self.started_ms = clock.now_ms()

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
                          unknown_model=self.config.unknown_model_price)
        reason = c.reason if (c.unpriced and rec.status == "ok") else rec.reason
        return rec.with_(cost_usd=c.usd, price_source=c.source, price_model=c.matched_model,
                         price_version=c.price_version, unpriced=c.unpriced, reason=reason)

    async def begin(self, ex: relay.Exchange) -> None:
        """Journal a billable request before it goes upstream (write-ahead, ~0.1 ms): if the daemon is
        killed while relaying its response, the next start records it as `partial` instead of losing it."""
        if ex.api not in relay.BILLABLE:
            return
        rec = self.build_record(ex, Metered(), {})
        try:
            async with asyncio.timeout(JOURNAL_WAIT_S):
                await asyncio.wrap_future(self.writer.submit(lambda lg: lg.begin_request(rec)))
        except Exception:
            pass  # a slow or failing disk never holds a request back (the writer logs the failure)

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
        from .. import notify

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


def create_app(state: ProxyState) -> web.Application:
    # auto_decompress off: the body goes upstream as the agent sent it (Codex zstd); we decode a copy.
    app = web.Application(client_max_size=MAX_BODY,
                          handler_args={"max_field_size": 65536, "auto_decompress": False})
    app[STATE] = state
    app.cleanup_ctx.append(_resources)
    app.router.add_get("/_agentmeter/v1/health", health)
    app.router.add_post("/_agentmeter/v1/sessions", create_session)
    app.router.add_post("/_agentmeter/v1/sessions/{session_id}/end", end_session)
    app.router.add_post("/_agentmeter/v1/snooze", snooze)
    app.router.add_post("/_agentmeter/v1/reload-totals", reload_totals)
    app.router.add_route("*", "/s/{token}/{provider}", proxy)
    app.router.add_route("*", "/s/{token}/{provider}/{tail:.*}", proxy)
    app.router.add_route("*", "/{tail:.*}", no_session)
    return app


async def _resources(app: web.Application):
    state = app[STATE]
    if state.writer is None:
        state.writer = LedgerWriter(state.ledger_path, tz=state.tz, totals=state.totals).start()
    state.reader = open_ledger(state.ledger_path, readonly=True, tz=state.tz)
    if state.key_source is not None:
        # A restarted daemon serves existing key-mode sessions at once, not after the next new session.
        state.keys = await asyncio.get_running_loop().run_in_executor(None, state.key_source)
    state.enforcer = Enforcer(state.config, state.reader, state.totals, state.tz, state.clock, state.config_path)
    state.alert_keys = state.reader.alert_keys()
    state.http = aiohttp.ClientSession(
        auto_decompress=False,
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=128, keepalive_timeout=60),
        # No total timeout: agent streams run for many minutes (wire-protocols 7.4).
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )
    from ..sync import background as sync_background

    sync_background.start(state)  # periodic push to the team collector, only when one is configured
    yield
    for task in list(state._tasks):
        task.cancel()
    await state.http.close()
    state.reader.close()
    await asyncio.get_running_loop().run_in_executor(None, state.writer.close)


# -- control API (the CLI talks to these) -----------------------------------------------------------


def _control_ok(request: web.Request) -> bool:
    state = request.app[STATE]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    ok = hmac.compare_digest(presented.strip().encode(), state.control_token.encode())
    return ok and scheme == "Bearer"


async def health(request: web.Request) -> web.Response:
    """Anyone on the machine may learn that a proxy answers; the details are for its owner (the CLI sends
    the control token)."""
    state = request.app[STATE]
    if not _control_ok(request):
        return web.json_response({"ok": True})
    w = state.writer
    return web.json_response({
        "ok": True, "pid": os.getpid(), "version": __version__, "port": state.port,
        "started_at_ms": state.started_ms, "relayed": state.relayed,
        # Metering degrades loudly: rows the disk refused wait in memory and are written when it recovers.
        "metering": "degraded" if w.last_error else "ok", "ledger_backlog": w.held, "ledger_dropped": w.dropped,
        "ledger_error": w.last_error, "recovered_partial": w.recovered,
    })


async def create_session(request: web.Request) -> web.Response:
    if not _control_ok(request):
        return web.json_response({"error": "bad control token"}, status=401)
    spec = await _json_object(request)
    if spec is None:
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    budget = spec.get("budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)):
        return web.json_response({"error": "budget_usd must be a number"}, status=400)
    return web.json_response(await request.app[STATE].open_session(spec))


async def _json_object(request: web.Request) -> dict | None:
    """The body as a JSON object, or None for anything else (bad UTF-8, absurd nesting included)."""
    try:
        spec = await request.json()
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return spec if isinstance(spec, dict) else None


async def end_session(request: web.Request) -> web.Response:
    if not _control_ok(request):
        return web.json_response({"error": "bad control token"}, status=401)
    state = request.app[STATE]
    spec = await _json_object(request) or {}
    sid = request.match_info["session_id"]
    code = spec.get("exit_code")
    if isinstance(code, bool) or not isinstance(code, int) or abs(code) >= 2**31:
        code = None
    now = state.clock.now_ms()
    ok = await asyncio.wrap_future(state.writer.submit(lambda lg: lg.end_session(sid, now, code)))
    state.forget_session(sid)  # the next lookup reads it back, ended
    return web.json_response({"ended": bool(ok)}, status=200 if ok else 404)


async def snooze(request: web.Request) -> web.Response:
    """Refusals and downgrades pause until `until_ms` (alerts continue); recorded as an override."""
    if not _control_ok(request):
        return web.json_response({"error": "bad control token"}, status=401)
    state = request.app[STATE]
    spec = await _json_object(request) or {}
    until = spec.get("until_ms")
    if isinstance(until, bool) or not isinstance(until, int) or not 0 <= until < 2**62:
        return web.json_response({"error": "until_ms must be an integer"}, status=400)
    now = state.clock.now_ms()
    detail = str(spec.get("detail") or "")
    await asyncio.wrap_future(state.writer.submit(lambda lg: lg.add_override("snooze", now, until, detail)))
    state.enforcer.snooze(until if until > now else None)
    return web.json_response({"snoozed_until_ms": until})


async def reload_totals(request: web.Request) -> web.Response:
    """After `agentmeter import` wrote the ledger from outside: budget totals are re-read from it."""
    if not _control_ok(request):
        return web.json_response({"error": "bad control token"}, status=401)
    request.app[STATE].totals.forget()
    return web.json_response({"ok": True})


async def no_session(request: web.Request) -> web.Response:
    return provider_error(guess_provider(request.path), 401, NO_SESSION)


# -- the provider routes ------------------------------------------------------------------------------


async def proxy(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    provider = request.match_info["provider"]
    if provider not in PROVIDERS:
        return provider_error(guess_provider(request.path), 404,
                              f"unknown provider {provider!r}; use anthropic or openai")
    session = state.lookup(request.match_info["token"])
    if session is None:
        return provider_error(provider, 401, NO_SESSION)
    tail = request.match_info.get("tail", "")
    if any(seg in (".", "..") for seg in tail.split("/")):
        # The upstream URL is built from the tail: a dot segment would climb out of the provider's base path.
        return provider_error(provider, 400, "the request path may not contain . or .. segments")
    if request.method == "HEAD" and tail.strip("/") == "":
        return web.Response(status=200)  # Claude Code's connectivity probe: answer, never hang
    if request.headers.get("Upgrade", "").lower() == "websocket":
        from .websocket import relay_websocket

        return await relay_websocket(request, state, session, provider, tail)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return provider_error(provider, 413, f"request body is larger than {MAX_BODY // 2**20} MiB")
    return await forward(request, state, session, provider, tail, body)


def upstream_for(state: ProxyState, provider: str, headers, *, swapped: bool) -> tuple[str, bool]:
    """(base URL, subscription?) — ChatGPT-login Codex traffic must go to the ChatGPT backend."""
    if provider == "anthropic":
        bearer = headers.get("Authorization", "")
        oauth = bearer.startswith("Bearer sk-ant-oat") or "oauth-" in headers.get("anthropic-beta", "")
        return state.config.upstream("anthropic"), (oauth and not swapped)
    bearer = headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not swapped and ("chatgpt-account-id" in headers or bearer.startswith("eyJ")):
        return state.config.upstream("chatgpt"), True
    return state.config.upstream("openai"), False


def upstream_url(base: str, provider: str, tail: str, chatgpt: bool, query: str) -> str:
    path = tail.lstrip("/")
    while path.startswith("v1/v1/"):
        path = path[3:]
    if chatgpt and path.startswith("v1/"):
        path = path[3:]  # the ChatGPT Codex backend has no /v1 segment
    elif provider == "anthropic" and path.split("/", 1)[0] in ("messages", "models"):
        path = "v1/" + path  # a client whose base URL lacked /v1
    return f"{base}/{path}" + (f"?{query}" if query else "")


def swap_credentials(state: ProxyState, session: dict, provider: str, hdrs: dict) -> tuple[bool, str | None]:
    """Replace the session's virtual key with the real one. Returns (swapped, error message)."""
    presented = hdrs.get("x-api-key") or hdrs.get("X-Api-Key")
    auth_name = next((k for k in hdrs if k.lower() == "authorization"), None)
    if not presented and auth_name:
        presented = hdrs[auth_name].removeprefix("Bearer ").strip()
    vkey_hash = session.get("vkey_hash")
    if not presented or not vkey_hash or not hmac.compare_digest(token_hash(presented), vkey_hash):
        return False, None
    real = state.keys.get(provider)
    if provider not in (session.get("key_mode") or "").split(",") or not real:
        return False, (
            f"no real {provider} key is configured for this session. "
            f"Run: agentmeter keys set {provider}, then start a new session"
        )
    if not real.isprintable() or any(c.isspace() for c in real):
        # A pasted line break would split the header; never send (or echo) such a key.
        return False, (f"the configured {provider} key contains a space or control character. "
                       f"Run: agentmeter keys set {provider}")
    for name in [k for k in hdrs if k.lower() in ("x-api-key", "authorization")]:
        del hdrs[name]
    if provider == "anthropic":
        hdrs["x-api-key"] = real
    else:
        hdrs["Authorization"] = f"Bearer {real}"
    return True, None


async def forward(request: web.Request, state: ProxyState, session: dict, provider: str, tail: str,
                  body: bytes) -> web.StreamResponse:
    api = classify(provider, tail)
    hdrs = {k: v for k, v in request.headers.items() if k.lower() not in relay.HOP_BY_HOP}
    swapped, problem = swap_credentials(state, session, provider, hdrs)
    if problem:
        return provider_error(provider, 401, problem)
    base, subscription = upstream_for(state, provider, request.headers, swapped=swapped)
    chatgpt = base == state.config.upstream("chatgpt") and provider == "openai"
    url = upstream_url(base, provider, tail, chatgpt, request.query_string)
    # Ask for identity so the meter reads plain bytes; the agent accepts it (it is always allowed).
    hdrs = {k: v for k, v in hdrs.items() if k.lower() != "accept-encoding"}
    hdrs["Accept-Encoding"] = "identity"

    plain = decode_body(body, request.headers.get("Content-Encoding")) if body and api != "other" else None
    facts = read_body(plain) if plain else None
    agent_sid = _short(next((request.headers[h] for h in AGENT_SESSION_HEADERS if h in request.headers), None))
    state.note_agent_session(session, agent_sid)
    ex = relay.Exchange(
        request_id=relay.new_request_id(), provider=provider, api=api, method=request.method,
        path="/" + tail.lstrip("/"), session=session, started_ms=state.clock.now_ms(),
        started_mono=state.clock.monotonic(), model_requested=_short(facts.model) if facts else None,
        stream=bool(facts and facts.stream), subscription=subscription, agent_session_id=agent_sid,
        agent_id=_short(request.headers.get("x-claude-code-agent-id")),
    )

    # The budget check and the reservation: synchronous, nothing awaited in between.
    chk = _checked(state, ex, session, facts, plain, agent_sid)
    ex.extra["check"] = chk
    decision = chk.decision
    if decision.action == "refuse":
        ex.decision, ex.reason = "refuse", decision.reason
        info = {"http_status": 429, "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        await _safe_commit(state, state.build_record(ex, Metered(complete=True), info))
        end = decision.window.end if decision.window is not None and decision.reason == "budget" else None
        message = refusal_message(decision, state.tz, state.clock.now())
        return refusal(api, provider, message, int(end.timestamp()) if end else None)
    if decision.action == "downgrade" and facts and facts.parsed is not None:
        beta_name = next((k for k in hdrs if k.lower() == "anthropic-beta"), None)
        try:
            rw = downgrade.rewrite(provider, plain, facts.parsed, decision.model,
                                   beta=hdrs.get(beta_name) if beta_name else None)
        except Exception as exc:  # an odd body is relayed as sent, never answered with a 500
            log.error("downgrade rewrite failed for %s: %s", ex.request_id, exc)
            rw = None
        if rw is not None:
            body, plain = rw.body, rw.body
            facts = read_body(plain)
            hdrs = {k: v for k, v in hdrs.items() if k.lower() != "content-encoding"}
            if rw.beta is not None and beta_name:
                hdrs[beta_name] = rw.beta
            ex.decision = "downgrade"
            ex.reason = "budget" + (f" (also changed: {', '.join(rw.changed)})" if rw.changed else "")

    if facts and api == "chat" and facts.stream and not facts.include_usage and facts.parsed is not None:
        body = inject_include_usage(plain, facts)
        hdrs = {k: v for k, v in hdrs.items() if k.lower() != "content-encoding"}
        ex.strip_usage = True

    await state.begin(ex)
    try:
        return await _send(request, state, ex, url, body, hdrs, provider, base)
    finally:
        # Normally the commit already released it; this covers anything unexpected on the way.
        state.enforcer.release(ex.request_id)


async def _send(request: web.Request, state: ProxyState, ex: relay.Exchange, url: str, body: bytes, hdrs: dict,
                provider: str, base: str) -> web.StreamResponse:
    try:
        up = await state.http.request(
            request.method, url, data=body if body else None, headers=hdrs, allow_redirects=False,
        )
    except ValueError as exc:  # aiohttp refused to send a header (a control character in it)
        info = {"http_status": 400, "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        await _safe_commit(state, state.build_record(ex, Metered(complete=True, error_type="bad_header"), info))
        return provider_error(provider, 400, f"a request header could not be forwarded: {exc}")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        info = {"http_status": 502, "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        metered = Metered(complete=True, error_type="upstream_unreachable", error_message=type(exc).__name__)
        await _safe_commit(state, state.build_record(ex, metered, info))
        return provider_error(provider, 502, f"could not reach {base} ({type(exc).__name__}); is the network up?")
    try:
        return await relay.relay_response(
            request, up, ex, state.commit, state.build_record, state.clock.monotonic
        )
    finally:
        up.release()


def _short(value: str | None, limit: int = 256) -> str | None:
    """A header or body string headed for every row: bounded, so a 60 KB header cannot bloat the ledger."""
    return value[:limit] if value is not None and len(value) > limit else value


def _checked(state: ProxyState, ex: relay.Exchange, session: dict, facts, plain: bytes | None, agent_sid):
    """The budget check. A request body the policy code chokes on (any JSON at all can arrive) is relayed
    unchecked and logged: metering and enforcement never turn a request into a 500."""
    try:
        chk = state.enforcer.check(
            request_id=ex.request_id, session=session, provider=ex.provider, api=ex.api,
            model=ex.model_requested, body=facts.parsed if facts else None, plain=plain,
            subscription=ex.subscription, agent_session=agent_sid, billable=ex.api in relay.BILLABLE,
        )
    except Exception as exc:
        log.error("budget check failed for %s, relaying unchecked: %s: %s", ex.request_id, type(exc).__name__, exc)
        ex.reason = "budget check failed"
        return Check(Decision("allow"))
    state.fire_alerts(chk, session)
    return chk


def _check_fields(chk) -> dict:
    if chk is None:
        return {}
    return {"est_input_tokens": chk.est_input_tokens, "turn_boundary": chk.turn_boundary,
            "loop_streak": chk.loop_streak, "downgrade_to": chk.downgrade_to, "pinned": chk.pinned}


async def _safe_commit(state: ProxyState, rec: RequestRecord) -> None:
    try:
        await state.commit(rec)
    except Exception as exc:
        log.error("ledger commit failed for %s: %s", rec.request_id, exc)
