"""The provider routes: read the request, check it against the budget, relay it upstream, meter the answer.

Per request, in order: the session token is looked up; the body is read once (not cached by aiohttp, so
a long stream does not keep its 100 KB+ request alive); its facts are read by the partial decoder in
providers/request.py; the budget check and the reservation run synchronously; the journal entry is
submitted to the writer thread and the request goes upstream at once; the relay waits for the journal
only before the first response byte goes back (relay.journaled).
"""

from __future__ import annotations

import hmac
import logging
from concurrent.futures import Future
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from multidict import MultiDict

from ..agents import refusal_status
from ..budget import downgrade
from ..budget.policy import Decision
from ..core.models import Metered, RequestRecord
from ..plan import account_of
from ..providers import gemini
from ..providers.request import can_spend, classify, inject_include_usage, read_body
from . import relay
from .bodies import MAX_BODY
from .enforce import Check, refusal_message
from .errors import guess_provider, provider_error, refusal
from .state import PROVIDERS, STATE, ProxyState, token_hash

log = logging.getLogger("agentmeter.proxy")

NO_SESSION = (
    "this request has no valid agentmeter session token. Start the agent with: agentmeter run claude "
    "(or codex), or set its base URL from: agentmeter env"
)
# Headers that name the agent's own session, in every spelling seen (wire-protocols 0, 1.4, 2.3).
AGENT_SESSION_HEADERS = ("x-claude-code-session-id", "session-id", "session_id", "thread-id", "conversation_id")


@dataclass
class Outgoing:
    """A checked request, ready to go upstream. `body` is dropped once it is sent."""

    ex: relay.Exchange
    url: str
    base: str
    body: bytes | None
    headers: dict
    journal: Future | None = None  # the write-ahead journal entry (state.begin)
    held: int = 0  # bytes of the daemon's large-body budget this request holds until its body is sent


SESSION_HEADER = "X-Agentmeter-Session"  # the /h/ routes' token (never relayed: relay.HOP_BY_HOP)


async def proxy(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    provider = request.match_info["provider"]
    if provider not in PROVIDERS:
        return provider_error(guess_provider(request.path), 404,
                              f"unknown provider {provider!r}; use anthropic, openai or gemini")
    token = request.match_info.get("token") or request.headers.get(SESSION_HEADER, "")
    session = state.lookup(token) if token else None
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
    got = await state.bodies.read(request)
    if got is None:
        return provider_error(provider, 413, f"request body is larger than {MAX_BODY // 2**20} MiB")
    body, held = got
    try:
        ready = await prepare(request, state, session, provider, tail, body)
        del body  # from here on only `ready` holds the body, and _send lets go of it once it is sent
        if isinstance(ready, web.StreamResponse):
            return ready
        ready.held, held = held, 0  # _send gives the bytes back to the budget once the body is sent
        state.relaying(session["id"], +1)
        try:
            return await _send(request, state, ready, provider)
        finally:
            # Normally the commit already released it; this covers anything unexpected on the way.
            state.enforcer.release(ready.ex.request_id)
            state.bodies.release(ready.held)
            ready.held = 0
            state.relaying(session["id"], -1)
    finally:
        state.bodies.release(held)


def upstream_for(state: ProxyState, provider: str, headers, *, swapped: bool) -> tuple[str, bool]:
    """(base URL, subscription?) — ChatGPT-login Codex traffic must go to the ChatGPT backend.

    Subscription-ness follows the credential that is actually sent, never a hint the client controls: an
    `anthropic-beta: oauth-…` on a request that carries an API key stays API-key (priced, capped) traffic."""
    if provider == "gemini":
        return state.config.upstream("gemini"), False
    bearer = _bearer(headers.get("Authorization", ""))
    if provider == "anthropic":
        # Only a Claude login's OAuth token (sk-ant-oat…) makes subscription traffic; the anthropic-beta
        # header and the scheme's spelling are the client's to choose, so they decide nothing.
        oauth = not swapped and "x-api-key" not in headers and bearer.startswith("sk-ant-oat")
        return state.config.upstream("anthropic"), oauth
    if not swapped and ("chatgpt-account-id" in headers or bearer.startswith("eyJ")):
        return state.config.upstream("chatgpt"), True
    return state.config.upstream("openai"), False


def _bearer(authorization: str) -> str:
    """The token of an `Authorization: Bearer …` header, whatever the scheme's case; "" for anything else."""
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def upstream_url(base: str, provider: str, tail: str, chatgpt: bool, query: str) -> str:
    path = tail.lstrip("/")
    while path.startswith("v1/v1/"):
        path = path[3:]
    if chatgpt and path.startswith("v1/"):
        path = path[3:]  # the ChatGPT Codex backend has no /v1 segment
    elif provider == "anthropic" and path.split("/", 1)[0] in ("messages", "models"):
        path = "v1/" + path  # a client whose base URL lacked /v1
    return f"{base}/{path}" + (f"?{query}" if query else "")


KEY_HEADERS = ("x-api-key", "authorization", "x-goog-api-key")


def swap_credentials(state: ProxyState, session: dict, provider: str, hdrs: dict,
                     query: MultiDict | None = None) -> tuple[bool, str | None]:
    """Replace the session's virtual key with the real one. Returns (swapped, error message). Gemini
    clients send the key in `x-goog-api-key` or the `key` query parameter (`query`, edited in place)."""
    # Header names arrive in whatever case the client wrote (X-API-KEY, x-Api-key): compare them folded.
    # Every place may carry the virtual key (Claude Code sends ANTHROPIC_AUTH_TOKEN as a bearer, and a key of its
    # own, if it has one, as x-api-key beside it): whichever matches, all of them are replaced.
    presented = [v.removeprefix("Bearer ").strip() for k, v in hdrs.items() if k.lower() in KEY_HEADERS]
    if query is not None and query.get("key"):
        presented.append(query["key"])
    vkey_hash = session.get("vkey_hash")
    if not vkey_hash or not any(hmac.compare_digest(token_hash(p), vkey_hash) for p in presented if p):
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
    for name in [k for k in hdrs if k.lower() in KEY_HEADERS]:
        del hdrs[name]
    if provider == "gemini":
        if query is not None and "key" in query:
            query.popall("key")
        hdrs["x-goog-api-key"] = real  # a header rather than the URL: upstream logs keep no key
    elif provider == "anthropic":
        hdrs["x-api-key"] = real
    else:
        hdrs["Authorization"] = f"Bearer {real}"
    return True, None


async def prepare(request: web.Request, state: ProxyState, session: dict, provider: str, tail: str,
                  body: bytes) -> Outgoing | web.StreamResponse:
    """Everything before the request goes upstream: credentials, the budget check and the reservation, a
    downgrade or usage-option rewrite of the body. Returns the request to send, or the answer to give."""
    api = classify(provider, tail)
    hdrs = {k: v for k, v in request.headers.items() if k.lower() not in relay.HOP_BY_HOP}
    query = MultiDict(request.query) if provider == "gemini" else None
    swapped, problem = swap_credentials(state, session, provider, hdrs, query)
    if problem:
        return provider_error(provider, 401, problem)
    if not swapped and _carries_virtual_key(hdrs):
        # A virtual key that did not match this session (or arrived in a header we do not swap) must never
        # reach the provider: it is useless there and names the session in the provider's logs.
        return provider_error(provider, 401, "this virtual key does not belong to this agentmeter session. "
                              "Start the agent with: agentmeter run, or take a fresh one from: agentmeter env")
    base, subscription = upstream_for(state, provider, request.headers, swapped=swapped)
    # The route follows the credential: one gateway URL may serve both OpenAI and ChatGPT (issue 16).
    chatgpt = provider == "openai" and subscription
    query_string = urlencode(list(query.items())) if query is not None else request.query_string
    url = upstream_url(base, provider, tail, chatgpt, query_string)
    # Ask for identity so the meter reads plain bytes; the agent accepts it (it is always allowed).
    hdrs = {k: v for k, v in hdrs.items() if k.lower() != "accept-encoding"}
    hdrs["Accept-Encoding"] = "identity"

    plain, facts = (await state.bodies.facts(body, request.headers.get("Content-Encoding"))
                    if body and api != "other" else (None, None))
    if provider == "gemini" and facts is not None:
        _, facts.model, facts.stream = gemini.parse_path(tail)  # Gemini names both in the URL
    agent_sid = _short(next((request.headers[h] for h in AGENT_SESSION_HEADERS if h in request.headers), None))
    state.note_agent_session(session, agent_sid)
    ex = relay.Exchange(
        request_id=relay.new_request_id(), provider=provider, api=api, method=request.method,
        path="/" + tail.lstrip("/"), session=session, started_ms=state.clock.now_ms(),
        started_mono=state.clock.monotonic(), model_requested=_short(facts.model) if facts else None,
        stream=bool(facts and facts.stream), subscription=subscription, agent_session_id=agent_sid,
        agent_id=_short(request.headers.get("x-claude-code-agent-id")),
    )
    ex.extra["plan_account"] = account_of(provider, subscription, request.headers)
    if facts is not None and facts.service_tier:  # the response's own service_tier wins when it has one
        ex.extra["service_tier"] = _short(facts.service_tier)

    # The budget check and the reservation: synchronous, nothing awaited in between.
    if api not in relay.BILLABLE and can_spend(provider, request.method, tail):
        ex.extra["spends"] = True  # checked against the budget and recorded, though its usage is not read
    chk = _checked(state, ex, session, facts, len(plain) if plain else 0, agent_sid)
    ex.extra["check"] = chk
    decision = chk.decision
    if decision.action == "refuse":
        ex.decision, ex.reason = "refuse", decision.reason
        if decision.reason == CHECK_FAILED:
            ex.reason = f"budget check failed: {ex.extra.get('check_error')}"
        info = {"http_status": 429, "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        await _safe_commit(state, state.build_record(ex, Metered(complete=True), info))
        end = decision.window.end if decision.window is not None and decision.reason in ("budget", "plan") else None
        if decision.reason == CHECK_FAILED:
            message = check_failed_message(ex.extra.get("check_error") or "unknown error")
        else:
            message = refusal_message(decision, state.tz, state.clock.now(), state.enforcer.snooze_allowed)
        return refusal(api, provider, message, int(end.timestamp()) if end else None,
                       int(state.clock.now_ms() // 1000), refusal_status(session.get("agent")),
                       subscription=subscription)
    if decision.action == "downgrade" and provider == "gemini" and decision.model:
        tail = gemini.with_model(tail, decision.model)
        url = upstream_url(base, provider, tail, False, query_string)
        facts.model = decision.model
        ex.decision, ex.reason = "downgrade", "budget"
    elif decision.action == "downgrade" and facts and facts.parsed is not None:
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

    if facts and api == "chat" and facts.stream and not facts.include_usage and facts.ok:
        body = inject_include_usage(plain, facts)
        hdrs = {k: v for k, v in hdrs.items() if k.lower() != "content-encoding"}
        ex.strip_usage = True

    return Outgoing(ex, url, base, body, hdrs, journal=state.begin(ex))


async def _send(request: web.Request, state: ProxyState, out: Outgoing, provider: str) -> web.StreamResponse:
    ex, body = out.ex, out.body
    out.body = None
    try:
        up = await state.http.request(
            request.method, out.url, data=body if body else None, headers=out.headers, allow_redirects=False,
        )
    except ValueError as exc:  # aiohttp refused to send a header (a control character in it)
        info = {"http_status": 400, "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        await _safe_commit(state, state.build_record(ex, Metered(complete=True, error_type="bad_header"), info))
        return provider_error(provider, 400, f"a request header could not be forwarded: {exc}")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        info = {"http_status": 502, "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        metered = Metered(complete=True, error_type="upstream_unreachable", error_message=type(exc).__name__)
        await _safe_commit(state, state.build_record(ex, metered, info))
        return provider_error(provider, 502,
                              f"could not reach {out.base} ({type(exc).__name__}); is the network up?")
    del body
    state.bodies.release(out.held)  # the body has been sent: its bytes are free for the next large one
    out.held = 0
    state.observe_plan(ex, up.raw_headers, up.status)
    try:
        return await relay.relay_response(
            request, up, ex, state.commit, state.build_record, state.clock.monotonic, journal=out.journal
        )
    finally:
        up.release()


_CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization", "api-key", "x-goog-api-key"})


def _carries_virtual_key(hdrs: dict) -> bool:
    return any(k.lower() in _CREDENTIAL_HEADERS and "amk_" in v for k, v in hdrs.items())


def _short(value: str | None, limit: int = 256) -> str | None:
    """A header or body string headed for every row: bounded, so a 60 KB header cannot bloat the ledger."""
    return value[:limit] if value is not None and len(value) > limit else value


CHECK_FAILED = "check_failed"  # Decision.reason when the budget check itself failed


def _checked(state: ProxyState, ex: relay.Exchange, session: dict, facts, body_len: int, agent_sid):
    """The budget check, never a 500. When the check itself fails (a damaged ledger, a sum it cannot read, a
    body the policy code chokes on), priced traffic fails CLOSED: it is refused in the agent's own error
    shape with what failed and what to run. Traffic the brake would not stop anyway (count_tokens, model
    listings, alert-only subscription traffic) is relayed, and the row says the check failed."""
    try:
        chk = state.enforcer.check(
            request_id=ex.request_id, session=session, provider=ex.provider, api=ex.api,
            model=ex.model_requested, body=facts, body_len=body_len,
            subscription=ex.subscription, agent_session=agent_sid,
            billable=ex.api in relay.BILLABLE or bool(ex.extra.get("spends")),
            plan_account=ex.extra.get("plan_account"),
        )
    except Exception as exc:
        state.enforcer.release(ex.request_id)
        what = f"{type(exc).__name__}: {exc}"[:200]
        enforced = ex.api in relay.BILLABLE and (not ex.subscription or state.config.budget.enforce_subscription)
        log.error("budget check failed for %s, %s: %s", ex.request_id,
                  "refused (fail closed)" if enforced else "relayed (not enforced traffic)", what)
        ex.extra["check_error"] = what
        if _is_corrupt(exc):
            state.ledger_damage = what
        snoozed = (getattr(state.enforcer, "_snooze_until", None) or 0) > state.clock.now_ms()
        if enforced and not snoozed:
            return Check(Decision("refuse", stage="blocked", reason=CHECK_FAILED))
        ex.reason = f"budget check failed: {what}"
        return Check(Decision("allow"))
    try:
        state.fire_alerts(chk, session)
    except Exception as exc:  # an alert that cannot be sent never costs the request its answer
        log.error("alert for %s failed: %s: %s", ex.request_id, type(exc).__name__, exc)
    return chk


def _is_corrupt(exc: BaseException) -> bool:
    import sqlite3

    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and (
        (code is not None and code & 0xFF in (11, 26)) or "malformed" in str(exc) or "not a database" in str(exc))


def check_failed_message(what: str) -> str:
    return (f"agentmeter: the budget check failed ({what}), so this request was not sent. "
            "Run: agentmeter doctor (agentmeter doctor --repair if it reports a damaged ledger), "
            "or to send without the brake: agentmeter budget snooze 1h")


async def _safe_commit(state: ProxyState, rec: RequestRecord) -> None:
    try:
        await state.commit(rec)
    except Exception as exc:
        log.error("ledger commit failed for %s: %s", rec.request_id, exc)
