"""The aiohttp application: the routes, the resources they share, and the control API for the CLI.

URL shape: /s/<session token>/<provider>/<the provider's own path>, relayed by route.py, or
/h/<provider>/<path> with the token in an X-Agentmeter-Session header, for agents whose base URL would
otherwise have to travel in argv (Codex reads the header's value from an environment variable). The token
(192 random bits) is the only way in; a request without a valid one gets a 401 in the provider's error shape.
The control API (/_agentmeter/v1/...) answers only the CLI, which presents the daemon's control token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .. import __version__
from ..home.config import DEFAULT_UPSTREAMS
from .bodies import MAX_BODY
from .errors import guess_provider, provider_error
from .route import NO_SESSION, provider_route
from .sessions import token_hash
from .state import STATE, ProxyState

log = logging.getLogger("agentmeter.proxy")
__all__ = ["STATE", "ProxyState", "create_app", "token_hash"]


def create_app(state: ProxyState) -> web.Application:
    # auto_decompress off: the body goes upstream as the agent sent it (Codex zstd); we decode a copy.
    app = web.Application(client_max_size=MAX_BODY, handler_args={"max_field_size": 65536, "auto_decompress": False})
    app[STATE] = state
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/_agentmeter/v1/health", health)
    app.router.add_post("/_agentmeter/v1/sessions", create_session)
    app.router.add_post("/_agentmeter/v1/sessions/{session_id}/end", end_session)
    app.router.add_post("/_agentmeter/v1/snooze", snooze)
    app.router.add_post("/_agentmeter/v1/reload-totals", reload_totals)
    app.router.add_route("*", "/s/{token}/{provider}", provider_route)
    app.router.add_route("*", "/s/{token}/{provider}/{tail:.*}", provider_route)
    app.router.add_route("*", "/h/{provider}", provider_route)
    app.router.add_route("*", "/h/{provider}/{tail:.*}", provider_route)
    app.router.add_route("*", "/{tail:.*}", no_session)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Background work while serving; every part closed after."""
    state = app[STATE]
    from ..sync import background as sync_background

    sync_background.start(state)  # periodic push to the team collector, only when one is configured
    state.spawn(_integrity_check(state))
    yield
    await state.close()


async def _integrity_check(state: ProxyState) -> None:
    """A damaged ledger is noticed at start, not when a report breaks: SQLite's quick_check (on its own
    read-only connection, off the event loop) runs once, and health says what it found."""
    from ..ledger.repair import needs_repair

    try:
        why = await asyncio.get_running_loop().run_in_executor(None, needs_repair, state.ledger_path)
    except Exception as exc:  # the check itself could not run: that is a finding too
        why = f"{type(exc).__name__}: {exc}"
    if why is not None:
        state.health.damage = why
        log.error(
            "the ledger %s is damaged (%s). Run: agentmeter proxy stop && agentmeter doctor --repair",
            state.ledger_path,
            why,
        )


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
    return web.json_response(
        {
            "ok": True,
            "pid": os.getpid(),
            "version": __version__,
            "port": state.port,
            "started_at_ms": state.started_ms,
            "relayed": state.metering.relayed,
            # Metering degrades loudly: rows the disk refused wait in memory and are written when it recovers.
            "metering": "degraded" if w.last_error else "ok",
            "ledger_backlog": w.held,
            "ledger_dropped": w.dropped,
            "ledger_error": w.last_error,
            "recovered_partial": w.recovered,
            **state.health.report(),
            "journal_error": state.journal.failed,
            # what this process relays to (its own environment at start, then config): `proxy status` and `doctor`
            # show these, not what a new process would compute
            "upstreams": {name: state.config.upstream(name) for name in DEFAULT_UPSTREAMS},
        }
    )


async def create_session(request: web.Request) -> web.Response:
    if not _control_ok(request):
        return web.json_response({"error": "bad control token"}, status=401)
    spec = await _json_object(request)
    if spec is None:
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    budget = spec.get("budget_usd")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)):
        return web.json_response({"error": "budget_usd must be a number"}, status=400)
    return web.json_response(await request.app[STATE].sessions.open(spec))


async def _json_object(request: web.Request) -> dict[str, Any] | None:
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
    await state.sessions.drain(sid)
    now = state.clock.now_ms()
    # `run` after a failed launch: no empty session is kept.
    if spec.get("discard_if_empty") is True and await asyncio.wrap_future(
        state.writer.submit(lambda lg: lg.discard_empty_session(sid))
    ):
        state.sessions.forget(sid)
        return web.json_response({"ended": True, "discarded": True})
    commit = spec.get("commit") if isinstance(spec.get("commit"), str) else None
    commit = commit if commit and len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit) else None
    ok = await asyncio.wrap_future(state.writer.submit(lambda lg: lg.end_session(sid, now, code, commit)))
    state.sessions.forget(sid)  # the next lookup reads it back, ended
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
