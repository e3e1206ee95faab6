"""The provider routes: find the session, read the body, then preflight → relay (→ metering → alerts).

Per request, in order: the session token is looked up; the body is read once (not cached by aiohttp, so
a long stream does not keep its 100 KB+ request alive); preflight swaps credentials, picks the upstream,
checks and reserves the budget and rewrites the body if it must; the relay sends it and streams the answer
back while metering reads a copy. The write-ahead journal entry is submitted as the request goes upstream
and nobody waits for it (metering.py).
"""

from __future__ import annotations

import logging

from aiohttp import web

from .bodies import MAX_BODY
from .errors import guess_provider, provider_error
from .sessions import PROVIDERS
from .state import STATE

log = logging.getLogger("agentmeter.proxy")

NO_SESSION = (
    "this request has no valid agentmeter session token. Start the agent with: agentmeter run claude "
    "(or codex), or set its base URL from: agentmeter env"
)
SESSION_HEADER = "X-Agentmeter-Session"  # the /h/ routes' token (never relayed: exchange.HOP_BY_HOP)


async def provider_route(request: web.Request) -> web.StreamResponse:
    proxy = request.app[STATE]
    provider = request.match_info["provider"]
    if provider not in PROVIDERS:
        return provider_error(
            guess_provider(request.path), 404, f"unknown provider {provider!r}; use anthropic, openai or gemini"
        )
    token = request.match_info.get("token") or request.headers.get(SESSION_HEADER, "")
    session = proxy.sessions.lookup(token) if token else None
    if session is None:
        return provider_error(provider, 401, NO_SESSION)
    tail = request.match_info.get("tail", "")
    if any(seg in (".", "..") for seg in tail.split("/")):
        # The upstream URL is built from the tail: a dot segment would climb out of the provider's base path.
        return provider_error(provider, 400, "the request path may not contain . or .. segments")
    if request.method == "HEAD" and tail.strip("/") == "":
        return web.Response(status=200)  # Claude Code's connectivity probe: answer, never hang
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await proxy.websockets.relay(request, session, provider, tail)
    got = await proxy.bodies.read(request)
    if got is None:
        return provider_error(provider, 413, f"request body is larger than {MAX_BODY // 2**20} MiB")
    body, held = got
    try:
        ready = await proxy.preflight.http(request, session, provider, tail, body)
        del body  # from here on only `ready` holds the body, and the relay lets go of it once it is sent
        if isinstance(ready, web.StreamResponse):
            return ready
        ready.held, held = held, 0  # the relay gives the bytes back to the budget once the body is sent
        proxy.sessions.relaying(session.id, +1)
        try:
            return await proxy.relay.forward(request, ready)
        finally:
            # Normally the commit already released it; this covers anything unexpected on the way.
            proxy.enforcer.release(ready.ex.request_id)
            proxy.bodies.release(ready.held)
            ready.held = 0
            proxy.sessions.relaying(session.id, -1)
    finally:
        proxy.bodies.release(held)
