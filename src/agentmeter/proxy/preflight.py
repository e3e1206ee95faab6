"""Preflight: everything that happens to a request before it goes upstream, for HTTP and WebSocket alike.

1. credentials — the session's virtual key is swapped for the real one (key mode), or the agent's own
   credential passes through (subscription logins); a stray virtual key never reaches a provider;
2. upstream — which base URL the credential belongs to (ChatGPT-login Codex traffic goes to the ChatGPT
   backend), and the URL built from the route's tail;
3. budget — the check and the reservation, synchronous (no await in between), guarded so a failing check
   is never a 500; alerts for crossed stages; a refusal is recorded and answered in the agent's own shape;
4. rewrite (HTTP) — a downgrade to a cheaper model, or `include_usage` added to a chat stream.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDictProxy, MultiDict

from ..agents import refusal_status
from ..budget import downgrade
from ..budget.policy import Decision
from ..core.clock import Clock
from ..core.models import Metered, Session
from ..home.config import Config
from ..ledger.writer import corrupt
from ..plan import account_of
from ..providers import gemini
from ..providers.request import BodyFacts, can_spend, classify, inject_include_usage, read_body
from .alerts import Alerts
from .bodies import BodyGate
from .enforce import Check, Enforcer, refusal_message
from .errors import provider_error, refusal
from .exchange import HOP_BY_HOP, Exchange, Outcome, Outgoing, new_request_id, short
from .metering import LedgerHealth, Metering
from .sessions import KeyRing, Sessions, token_hash

log = logging.getLogger("agentmeter.proxy")

# Headers that name the agent's own session, in every spelling seen (wire-protocols 0, 1.4, 2.3).
AGENT_SESSION_HEADERS = ("x-claude-code-session-id", "session-id", "session_id", "thread-id", "conversation_id")
KEY_HEADERS = ("x-api-key", "authorization", "x-goog-api-key")
_CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization", "api-key", "x-goog-api-key"})
CHECK_FAILED = "check_failed"  # Decision.reason when the budget check itself failed
FOREIGN_VKEY = (
    "this virtual key does not belong to this agentmeter session. "
    "Start the agent with: agentmeter run, or take a fresh one from: agentmeter env"
)

Headers = CIMultiDictProxy[str]


@dataclass(slots=True)
class Target:
    """Where a request goes: the provider's base URL, the full URL, the headers to send."""

    base: str
    url: str
    headers: dict[str, str]
    subscription: bool
    query_string: str


@dataclass(frozen=True, slots=True)
class Refusal:
    """agentmeter's 'no' to one request (already recorded): the one-line message and when the cap resets."""

    message: str
    resets_at_s: int | None


class Preflight:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        tz: tzinfo | None,
        keys: KeyRing,
        sessions: Sessions,
        enforcer: Enforcer,
        metering: Metering,
        alerts: Alerts,
        bodies: BodyGate,
        health: LedgerHealth,
    ) -> None:
        self._config = config
        self._clock = clock
        self._tz = tz
        self._keys = keys
        self._sessions = sessions
        self._enforcer = enforcer
        self._metering = metering
        self._alerts = alerts
        self.bodies = bodies
        self._health = health

    # -- 1 and 2: credentials and upstream -------------------------------------------------------------------

    def target(
        self, request: web.Request, session: Session, provider: str, tail: str, drop: frozenset[str] = frozenset()
    ) -> Target | web.Response:
        """The credentials swapped and the upstream chosen, or the 401 to answer. `drop`: more headers that
        belong to this leg only (a WebSocket handshake's)."""
        hdrs = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() not in drop}
        query = MultiDict(request.query) if provider == "gemini" else None
        swapped, problem = swap_credentials(self._keys, session, provider, hdrs, query)
        if problem:
            return provider_error(provider, 401, problem)
        if not swapped and _carries_virtual_key(hdrs):
            # A virtual key that did not match this session (or arrived in a header we do not swap) must never
            # reach the provider: it is useless there and names the session in the provider's logs.
            return provider_error(provider, 401, FOREIGN_VKEY)
        base, subscription = upstream_for(self._config, provider, request.headers, swapped=swapped)
        # The route follows the credential: one gateway URL may serve both OpenAI and ChatGPT (issue 16).
        chatgpt = provider == "openai" and subscription
        query_string = urlencode(list(query.items())) if query is not None else request.query_string
        url = upstream_url(base, provider, tail, chatgpt, query_string)
        return Target(base, url, hdrs, subscription, query_string)

    def agent_session(self, request: web.Request, session: Session) -> str | None:
        """The agent's own session id (any spelling), noted on the session once."""
        agent_sid = short(next((request.headers[h] for h in AGENT_SESSION_HEADERS if h in request.headers), None))
        self._sessions.note_agent_session(session, agent_sid)
        return agent_sid

    def exchange(
        self,
        request: web.Request,
        session: Session,
        provider: str,
        tail: str,
        *,
        method: str,
        subscription: bool,
        model: str | None,
        stream: bool,
    ) -> Exchange:
        """The request's Exchange: who sent it, where it goes, what it asks for."""
        agent_sid = self.agent_session(request, session)
        return Exchange(
            request_id=new_request_id(),
            provider=provider,
            api=classify(provider, tail),
            method=method,
            path="/" + tail.lstrip("/"),
            session=session,
            started_ms=self._clock.now_ms(),
            started_mono=self._clock.monotonic(),
            model_requested=short(model),
            stream=stream,
            subscription=subscription,
            agent_session_id=agent_sid,
            agent_id=short(request.headers.get("x-claude-code-agent-id")),
            plan_account=account_of(provider, subscription, request.headers),
        )

    # -- 3: the budget -----------------------------------------------------------------------------------------

    async def admit(self, ex: Exchange, facts: BodyFacts | None, body_len: int, path: str) -> Refusal | None:
        """Check the budget and reserve; a refusal is recorded before it is returned (and then answered)."""
        if facts is not None and facts.service_tier:  # the response's own service_tier wins when it has one
            ex.service_tier = short(facts.service_tier)
        if not ex.billable and can_spend(ex.provider, ex.method, path):
            ex.spends = True  # checked against the budget and recorded, though its usage is not read
        chk = ex.check = self._check(ex, facts, body_len)
        decision = chk.decision
        if decision.action != "refuse":
            return None
        ex.decision, ex.reason = "refuse", decision.reason
        if decision.reason == CHECK_FAILED:
            ex.reason = f"budget check failed: {ex.check_error}"
            message = check_failed_message(ex.check_error or "unknown error")
        else:
            message = refusal_message(decision, self._tz, self._clock.now(), self._enforcer.snooze_allowed)
        end = decision.window.end if decision.window is not None and decision.reason in ("budget", "plan") else None
        duration = (self._clock.monotonic() - ex.started_mono) * 1000
        # The row says the status the agent is answered with (402 for the agents that retry every 429).
        await self._metering.settle(
            ex, Metered(complete=True), Outcome(http_status=refusal_status(ex.session.agent), duration_ms=duration)
        )
        return Refusal(message.replace('"', "'"), int(end.timestamp()) if end else None)

    def _check(self, ex: Exchange, facts: BodyFacts | None, body_len: int) -> Check:
        """The budget check, never a 500. When the check itself fails (a damaged ledger, a sum it cannot read, a
        body the policy code chokes on), priced traffic fails CLOSED: it is refused in the agent's own error
        shape with what failed and what to run. Traffic the brake would not stop anyway (count_tokens, model
        listings, alert-only subscription traffic) is relayed, and the row says the check failed."""
        try:
            chk = self._enforcer.check(
                request_id=ex.request_id,
                session=ex.session,
                provider=ex.provider,
                api=ex.api,
                model=ex.model_requested,
                body=facts,
                body_len=body_len,
                subscription=ex.subscription,
                agent_session=ex.agent_session_id,
                billable=ex.billable or ex.spends,
                plan_account=ex.plan_account,
            )
        except Exception as exc:
            return self._check_failed(ex, exc)
        try:
            self._alerts.fire(chk, ex.session)
        except Exception as exc:  # an alert that cannot be sent never costs the request its answer
            log.error("alert for %s failed: %s: %s", ex.request_id, type(exc).__name__, exc)
        return chk

    def _check_failed(self, ex: Exchange, exc: Exception) -> Check:
        self._enforcer.release(ex.request_id)
        what = f"{type(exc).__name__}: {exc}"[:200]
        enforced = ex.billable and (not ex.subscription or self._config.budget.enforce_subscription)
        log.error(
            "budget check failed for %s, %s: %s",
            ex.request_id,
            "refused (fail closed)" if enforced else "relayed (not enforced traffic)",
            what,
        )
        ex.check_error = what
        if corrupt(exc):
            self._health.damage = what
        if enforced and not self._enforcer.snoozed():
            return Check(Decision("refuse", stage="blocked", reason=CHECK_FAILED))
        ex.reason = f"budget check failed: {what}"
        return Check(Decision("allow"))

    # -- HTTP: all four steps ------------------------------------------------------------------------------------

    async def http(
        self, request: web.Request, session: Session, provider: str, tail: str, body: bytes | bytearray
    ) -> Outgoing | web.Response:
        """Everything before an HTTP request goes upstream. Returns the request to send, or the answer to give."""
        target = self.target(request, session, provider, tail)
        if isinstance(target, web.Response):
            return target
        # Ask for identity so the meter reads plain bytes; the agent accepts it (it is always allowed).
        hdrs = {k: v for k, v in target.headers.items() if k.lower() != "accept-encoding"}
        hdrs["Accept-Encoding"] = "identity"
        api = classify(provider, tail)
        plain, facts = (
            await self.bodies.facts(body, request.headers.get("Content-Encoding"))
            if body and api != "other"
            else (None, None)
        )
        if provider == "gemini" and facts is not None:
            _, facts.model, facts.stream = gemini.parse_path(tail)  # Gemini names both in the URL
        ex = self.exchange(
            request,
            session,
            provider,
            tail,
            method=request.method,
            subscription=target.subscription,
            model=facts.model if facts else None,
            stream=bool(facts and facts.stream),
        )
        refused = await self.admit(ex, facts, len(plain) if plain else 0, tail)
        if refused is not None:
            return refusal(
                ex.api,
                provider,
                refused.message,
                refused.resets_at_s,
                self._clock.now_ms() // 1000,
                refusal_status(session.agent),
                subscription=ex.subscription,
            )
        out = Outgoing(ex, target.url, target.base, body, hdrs)
        self._rewrite(out, tail, target, plain, facts)
        self._metering.journal_soon(ex)  # write-ahead, as the request goes upstream (metering.py)
        return out

    # -- 4: rewrite ----------------------------------------------------------------------------------------------

    def _rewrite(
        self, out: Outgoing, tail: str, target: Target, plain: bytes | bytearray | None, facts: BodyFacts | None
    ) -> None:
        ex, decision = out.ex, (out.ex.check.decision if out.ex.check else None)
        if decision is not None and decision.action == "downgrade" and decision.model:
            if ex.provider == "gemini" and facts is not None:
                out.url = upstream_url(
                    target.base, ex.provider, gemini.with_model(tail, decision.model), False, target.query_string
                )
                facts.model = decision.model
                ex.decision, ex.reason = "downgrade", "budget"
            elif facts is not None and facts.parsed is not None and plain is not None:
                plain, facts = self._downgrade(out, plain, facts, facts.parsed, decision.model)
        if facts and ex.api == "chat" and facts.stream and not facts.include_usage and facts.ok and plain:
            out.body = inject_include_usage(_bytes(plain), facts)
            out.headers = {k: v for k, v in out.headers.items() if k.lower() != "content-encoding"}
            ex.strip_usage = True

    def _downgrade(
        self, out: Outgoing, plain: bytes | bytearray, facts: BodyFacts, parsed: dict[str, Any], model: str
    ) -> tuple[bytes | bytearray, BodyFacts]:
        ex, hdrs = out.ex, out.headers
        beta_name = next((k for k in hdrs if k.lower() == "anthropic-beta"), None)
        try:
            rw = downgrade.rewrite(
                ex.provider, _bytes(plain), parsed, model, beta=hdrs.get(beta_name) if beta_name else None
            )
        except Exception as exc:  # an odd body is relayed as sent, never answered with a 500
            log.error("downgrade rewrite failed for %s: %s", ex.request_id, exc)
            rw = None
        if rw is None:
            return plain, facts
        out.body = rw.body
        out.headers = {k: v for k, v in hdrs.items() if k.lower() != "content-encoding"}
        if rw.beta is not None and beta_name:
            out.headers[beta_name] = rw.beta
        ex.decision = "downgrade"
        ex.reason = "budget" + (f" (also changed: {', '.join(rw.changed)})" if rw.changed else "")
        return rw.body, read_body(rw.body)


def upstream_for(config: Config, provider: str, headers: Headers, *, swapped: bool) -> tuple[str, bool]:
    """(base URL, subscription?) — ChatGPT-login Codex traffic must go to the ChatGPT backend.

    Subscription-ness follows the credential that is actually sent, never a hint the client controls: an
    `anthropic-beta: oauth-…` on a request that carries an API key stays API-key (priced, capped) traffic."""
    if provider == "gemini":
        return config.upstream("gemini"), False
    bearer = _bearer(headers.get("Authorization", ""))
    if provider == "anthropic":
        # Only a Claude login's OAuth token (sk-ant-oat…) makes subscription traffic; the anthropic-beta
        # header and the scheme's spelling are the client's to choose, so they decide nothing.
        oauth = not swapped and "x-api-key" not in headers and bearer.startswith("sk-ant-oat")
        return config.upstream("anthropic"), oauth
    if not swapped and ("chatgpt-account-id" in headers or bearer.startswith("eyJ")):
        return config.upstream("chatgpt"), True
    return config.upstream("openai"), False


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


def swap_credentials(
    keys: KeyRing, session: Session, provider: str, hdrs: dict[str, str], query: MultiDict[str] | None = None
) -> tuple[bool, str | None]:
    """Replace the session's virtual key with the real one. Returns (swapped, error message). Gemini
    clients send the key in `x-goog-api-key` or the `key` query parameter (`query`, edited in place)."""
    # Header names arrive in whatever case the client wrote (X-API-KEY, x-Api-key): compare them folded.
    # Every place may carry the virtual key (Claude Code sends ANTHROPIC_AUTH_TOKEN as a bearer, and a key of its
    # own, if it has one, as x-api-key beside it): whichever matches, all of them are replaced.
    presented = [v.removeprefix("Bearer ").strip() for k, v in hdrs.items() if k.lower() in KEY_HEADERS]
    if query is not None and query.get("key"):
        presented.append(query["key"])
    vkey_hash = session.vkey_hash
    if not vkey_hash or not any(hmac.compare_digest(token_hash(p), vkey_hash) for p in presented if p):
        return False, None
    real = keys.get(provider)
    if provider not in session.key_mode or not real:
        return False, (
            f"no real {provider} key is configured for this session. "
            f"Run: agentmeter keys set {provider}, then start a new session"
        )
    if not real.isprintable() or any(c.isspace() for c in real):
        # A pasted line break would split the header; never send (or echo) such a key.
        return False, (
            f"the configured {provider} key contains a space or control character. Run: agentmeter keys set {provider}"
        )
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


def _bytes(body: bytes | bytearray) -> bytes:
    """A body read into one preallocated buffer (bodies.py) is a bytearray; the rewriters take bytes (a copy,
    made only for the rare body that is rewritten)."""
    return bytes(body) if isinstance(body, bytearray) else body


def _carries_virtual_key(hdrs: dict[str, str]) -> bool:
    return any(k.lower() in _CREDENTIAL_HEADERS and "amk_" in v for k, v in hdrs.items())


def check_failed_message(what: str) -> str:
    return (
        f"agentmeter: the budget check failed ({what}), so this request was not sent. "
        "Run: agentmeter doctor (agentmeter doctor --repair if it reports a damaged ledger), "
        "or to send without the brake: agentmeter budget snooze 1h"
    )
