"""WebSocket relay for the Responses API (Codex's preferred transport, wire-protocols 2.4 and 7.14).

Every frame is relayed as it arrives in both directions. Each server text frame is one Responses event;
a terminal event (`response.completed` / `incomplete` / `failed`) closes one metered response, whose row
is committed before that frame is relayed. One connection carries many responses.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

import aiohttp
from aiohttp import WSMsgType, web

from ..core.models import Metered
from ..providers import openai as oai
from ..providers.request import classify, read_body
from . import relay
from .errors import provider_error

log = logging.getLogger("agentmeter.proxy")
# Headers that belong to the WebSocket handshake of each leg, never forwarded across.
_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                        "sec-websocket-accept", "sec-websocket-protocol"})


async def relay_websocket(request: web.Request, state, session: dict, provider: str, tail: str):
    from .forward import swap_credentials, upstream_for, upstream_url

    api = classify(provider, tail)
    hdrs = {k: v for k, v in request.headers.items()
            if k.lower() not in relay.HOP_BY_HOP and k.lower() not in _HANDSHAKE}
    swapped, problem = swap_credentials(state, session, provider, hdrs)
    if problem:
        return provider_error(provider, 401, problem)
    base, subscription = upstream_for(state, provider, request.headers, swapped=swapped)
    chatgpt = provider == "openai" and subscription  # the route follows the credential (issue 16)
    url = upstream_url(base, provider, tail, chatgpt, request.query_string)
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    try:
        upstream = await state.http.ws_connect(url, headers=hdrs, protocols=protocols, autoping=False,
                                               max_msg_size=64 * 1024 * 1024)
    except aiohttp.WSServerHandshakeError as exc:
        # The provider refused the upgrade (e.g. 426, 404): answer with its status so the agent falls back.
        return provider_error(provider, exc.status, f"upstream refused the WebSocket upgrade ({exc.status})")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return provider_error(provider, 502, f"could not reach {base} ({type(exc).__name__})")

    client = web.WebSocketResponse(protocols=protocols, autoping=False, max_msg_size=64 * 1024 * 1024)
    await client.prepare(request)
    from .forward import AGENT_SESSION_HEADERS, CHECK_FAILED, _checked, _short, check_failed_message

    # Every spelling the HTTP path knows (issue 14.4: only two were read here).
    agent_sid = _short(next((request.headers[h] for h in AGENT_SESSION_HEADERS if h in request.headers), None))
    state.note_agent_session(session, agent_sid)
    # Responses in flight on this connection. A client may pipeline several `response.create` frames before
    # the first answer ends (issue 14.4: five pipelined creates were answered five times and metered once),
    # so each gets its own exchange and meter: bound to the provider's response id when its
    # `response.created` arrives (oldest create first), and fed every event until its terminal one.
    waiting: deque[_Flight] = deque()  # sent upstream, no response id seen yet
    by_id: dict[str, _Flight] = {}
    latest: list[_Flight] = []  # the newest bound response: gets the events that carry no response id

    def begin(model: str | None) -> relay.Exchange:
        return relay.Exchange(
            request_id=relay.new_request_id(), provider=provider, api=api, method="WS",
            path="/" + tail.lstrip("/"), session=session, started_ms=state.clock.now_ms(),
            started_mono=state.clock.monotonic(), model_requested=model, stream=True,
            subscription=subscription, agent_session_id=agent_sid,
        )

    async def refused(ex: relay.Exchange, raw: bytes) -> bool:
        """The HTTP path's guarded check: a WebSocket is no way around the caps, and a check that fails is
        handled exactly as on HTTP (never an unchecked relay, never a crash of the connection)."""
        from ..plan import account_of
        from .enforce import refusal_message

        ex.extra["plan_account"] = account_of(provider, subscription, request.headers)  # plan lines apply too
        chk = _checked(state, ex, session, read_body(raw), len(raw), agent_sid)
        ex.extra["check"] = chk
        if chk.decision.action != "refuse":
            return False
        ex.decision, ex.reason = "refuse", chk.decision.reason
        if chk.decision.reason == CHECK_FAILED:  # the check itself failed: say so, as the HTTP path does
            ex.reason = f"budget check failed: {ex.extra.get('check_error')}"
            message = check_failed_message(ex.extra.get("check_error") or "unknown error").replace('"', "'")
        else:
            message = refusal_message(chk.decision, state.tz, state.clock.now(),
                                      state.enforcer.snooze_allowed).replace('"', "'")
        end = chk.decision.window.end if chk.decision.window is not None else None
        await client.send_str(json.dumps({"type": "error", "status": 429, "error": {
            "type": "usage_limit_reached", "code": "agentmeter_budget_exceeded", "message": message,
            "resets_at": int(end.timestamp()) if end else None}}))
        try:
            await state.commit(state.build_record(ex, Metered(complete=True), {"http_status": 429}))
        except Exception as exc:
            log.error("ledger commit failed for %s: %s", ex.request_id, exc)
        return True

    async def close_flight(flight: _Flight, metered: Metered | None, end: str | None) -> None:
        if flight.rid is not None:
            by_id.pop(flight.rid, None)
        if flight in waiting:
            waiting.remove(flight)
        if latest and latest[0] is flight:
            latest.clear()
        ex = flight.ex
        info = {"http_status": 101, "ttft_ms": flight.ttft, "end": end,
                "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        try:
            await state.commit(state.build_record(ex, metered or flight.meter.result(), info))
        except Exception as exc:
            log.error("ledger commit failed for %s: %s", ex.request_id, exc)

    def flight_for(event: dict | None) -> _Flight | None:
        rid = _response_id(event)
        if rid is not None:
            flight = by_id.get(rid)
            if flight is None and waiting:
                flight = waiting.popleft()
                flight.rid = rid
                by_id[rid] = flight
            if flight is not None:
                latest[:] = [flight]
            return flight
        if latest:
            return latest[0]
        return waiting[0] if waiting else None

    async def client_to_upstream() -> None:
        async for msg in client:
            if msg.type == WSMsgType.TEXT:
                if api == "responses":
                    event = _json_or_none(msg.data)  # parsed, never matched as a substring (JSON escapes)
                    if event is not None and (event.get("type") == "response.create" or _any_create(msg.data)):
                        ex = begin(_model_of(event))
                        if await refused(ex, msg.data.encode()):
                            continue
                        await relay.journaled(state.begin(ex))
                        waiting.append(_Flight(ex))
                await upstream.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            elif msg.type == WSMsgType.PING:
                await upstream.ping(msg.data)
            elif msg.type == WSMsgType.PONG:
                await upstream.pong(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
        await upstream.close()

    async def upstream_to_client() -> None:
        async for msg in upstream:
            if msg.type == WSMsgType.TEXT:
                flight = flight_for(_json_or_none(msg.data)) if (waiting or by_id) else None
                if flight is not None:
                    if flight.ttft is None:
                        flight.ttft = (state.clock.monotonic() - flight.ex.started_mono) * 1000
                    if flight.meter.feed_text(msg.data):
                        await close_flight(flight, flight.meter.result(), None)
                await client.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await client.send_bytes(msg.data)
            elif msg.type == WSMsgType.PING:
                await client.ping(msg.data)
            elif msg.type == WSMsgType.PONG:
                await client.pong(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
        await client.close(code=upstream.close_code or 1000)

    tasks = [asyncio.ensure_future(client_to_upstream()), asyncio.ensure_future(upstream_to_client())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            if t.exception() is not None:
                log.info("websocket relay ended: %r", t.exception())
    finally:
        for flight in [*by_id.values(), *waiting]:
            await close_flight(flight, None, "connection closed")
        if not upstream.closed:
            await upstream.close()
        if not client.closed:
            await client.close()
    return client


def _json_or_none(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _any_create(text: str) -> bool:
    """A frame whose top level names `type` twice: Python keeps the last value, a provider may keep the first.
    Such a frame counts as a create if either value says so (a frame that could be a create is checked)."""
    if text.count('"type"') < 2 and "\\u" not in text:
        return False  # (a JSON escape could spell "type" without the substring; then take the slow path)
    found = False

    def pairs(items: list) -> dict:
        nonlocal found
        if sum(1 for k, _ in items if k == "type") > 1 and any(k == "type" and v == "response.create"
                                                                for k, v in items):
            found = True
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return False
    return found


class _Flight:
    """One response on the connection: its exchange, its meter, and the provider's id once known."""

    __slots__ = ("ex", "meter", "rid", "ttft")

    def __init__(self, ex: relay.Exchange) -> None:
        self.ex = ex
        self.meter = oai.ResponsesFrameMeter()
        self.rid: str | None = None
        self.ttft: float | None = None


def _response_id(event: dict | None) -> str | None:
    if not event:
        return None
    response = event.get("response")
    rid = response.get("id") if isinstance(response, dict) else event.get("response_id")
    return rid if isinstance(rid, str) and rid else None


def _model_of(data: dict) -> str | None:
    response = data.get("response")
    model = data.get("model") or (response.get("model") if isinstance(response, dict) else None)
    return model if isinstance(model, str) else None
