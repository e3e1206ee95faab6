"""WebSocket relay for the Responses API (Codex's preferred transport, wire-protocols 2.4 and 7.14).

Every frame is relayed as it arrives in both directions. Each server text frame is one Responses event;
a terminal event (`response.completed` / `incomplete` / `failed`) closes one metered response, whose row
is committed before that frame is relayed. One connection carries many responses.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
from aiohttp import WSMsgType, web

from ..models import Metered
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
    chatgpt = provider == "openai" and base == state.config.upstream("chatgpt")
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
    agent_sid = next((request.headers[h] for h in ("session-id", "session_id") if h in request.headers), None)
    state.note_agent_session(session, agent_sid)
    current: dict = {}  # the response in flight: exchange and meter

    def begin(model: str | None) -> relay.Exchange:
        ex = relay.Exchange(
            request_id=relay.new_request_id(), provider=provider, api=api, method="WS",
            path="/" + tail.lstrip("/"), session=session, started_ms=state.clock.now_ms(),
            started_mono=state.clock.monotonic(), model_requested=model, stream=True,
            subscription=subscription, agent_session_id=agent_sid,
        )
        current.update(ex=ex, meter=oai.ResponsesFrameMeter(), ttft=None)
        return ex

    async def refused(ex: relay.Exchange, text: str) -> bool:
        """The same budget check as HTTP: a WebSocket is no way around the caps."""
        from .enforce import refusal_message

        raw = text.encode()
        chk = state.enforcer.check(request_id=ex.request_id, session=session, provider=provider, api=api,
                                   model=ex.model_requested, body=read_body(raw), body_len=len(raw),
                                   subscription=subscription,
                                   agent_session=agent_sid, billable=True)
        ex.extra["check"] = chk
        state.fire_alerts(chk, session)
        if chk.decision.action != "refuse":
            return False
        ex.decision, ex.reason = "refuse", chk.decision.reason
        current.clear()
        message = refusal_message(chk.decision, state.tz, state.clock.now())
        end = chk.decision.window.end if chk.decision.window is not None else None
        await client.send_str(json.dumps({"type": "error", "status": 429, "error": {
            "type": "usage_limit_reached", "code": "agentmeter_budget_exceeded", "message": message,
            "resets_at": int(end.timestamp()) if end else None}}))
        await state.commit(state.build_record(ex, Metered(complete=True), {"http_status": 429}))
        return True

    async def close_current(metered: Metered | None, end: str | None) -> None:
        if not current:
            return
        ex, meter = current["ex"], current["meter"]
        info = {"http_status": 101, "ttft_ms": current["ttft"], "end": end,
                "duration_ms": (state.clock.monotonic() - ex.started_mono) * 1000}
        current.clear()
        try:
            await state.commit(state.build_record(ex, metered or meter.result(), info))
        except Exception as exc:
            log.error("ledger commit failed for %s: %s", ex.request_id, exc)

    async def client_to_upstream() -> None:
        async for msg in client:
            if msg.type == WSMsgType.TEXT:
                if api == "responses" and '"response.create"' in msg.data:
                    if current:  # a new request while one is open: the old one was abandoned
                        await close_current(None, "superseded")
                    ex = begin(_model_of(msg.data))
                    if await refused(ex, msg.data):
                        continue
                    await relay.journaled(state.begin(ex))
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
                if current:
                    if current["ttft"] is None:
                        current["ttft"] = (state.clock.monotonic() - current["ex"].started_mono) * 1000
                    if current["meter"].feed_text(msg.data):
                        await close_current(current["meter"].result(), None)
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
        await close_current(None, "connection closed")
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


def _model_of(text: str) -> str | None:
    data = _json_or_none(text) or {}
    response = data.get("response")
    model = data.get("model") or (response.get("model") if isinstance(response, dict) else None)
    return model if isinstance(model, str) else None
