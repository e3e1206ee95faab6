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
from aiohttp import WSMessage, WSMsgType, web

from ..core.clock import Clock
from ..core.models import Metered, Session
from ..providers import openai as oai
from ..providers.request import classify, read_body
from .errors import provider_error
from .exchange import Exchange, Outcome
from .metering import Metering
from .preflight import Preflight, Refusal

log = logging.getLogger("agentmeter.proxy")
# Headers that belong to the WebSocket handshake of each leg, never forwarded across.
_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "sec-websocket-protocol",
    }
)
MAX_MESSAGE = 64 * 1024 * 1024
_ENDS = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)

WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


class WebSockets:
    """Opens the upstream leg of an agent's WebSocket (after the same preflight as HTTP) and relays it."""

    def __init__(self, http: aiohttp.ClientSession, preflight: Preflight, metering: Metering, clock: Clock) -> None:
        self._http = http
        self._preflight = preflight
        self._metering = metering
        self._clock = clock

    async def relay(self, request: web.Request, session: Session, provider: str, tail: str) -> web.StreamResponse:
        target = self._preflight.target(request, session, provider, tail, drop=_HANDSHAKE)
        if isinstance(target, web.Response):
            return target
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        try:
            upstream = await self._http.ws_connect(
                target.url, headers=target.headers, protocols=protocols, autoping=False, max_msg_size=MAX_MESSAGE
            )
        except aiohttp.WSServerHandshakeError as exc:
            # The provider refused the upgrade (e.g. 426, 404): answer with its status so the agent falls back.
            return provider_error(provider, exc.status, f"upstream refused the WebSocket upgrade ({exc.status})")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return provider_error(provider, 502, f"could not reach {target.base} ({type(exc).__name__})")
        client = web.WebSocketResponse(protocols=protocols, autoping=False, max_msg_size=MAX_MESSAGE)
        await client.prepare(request)
        self._preflight.agent_session(request, session)
        conn = _Connection(
            request,
            client,
            upstream,
            session,
            provider,
            tail,
            target.subscription,
            self._preflight,
            self._metering,
            self._clock,
        )
        await conn.run()
        return client


class _Flight:
    """One response on the connection: its exchange, its meter, and the provider's id once known."""

    __slots__ = ("ex", "meter", "rid", "ttft")

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.meter = oai.ResponsesFrameMeter()
        self.rid: str | None = None
        self.ttft: float | None = None


class _Connection:
    """One agent connection and its upstream twin. A client may pipeline several `response.create` frames
    before the first answer ends (issue 14.4: five pipelined creates were answered five times and metered
    once), so each gets its own exchange and meter: bound to the provider's response id when its
    `response.created` arrives (oldest create first), and fed every event until its terminal one."""

    def __init__(
        self,
        request: web.Request,
        client: web.WebSocketResponse,
        upstream: aiohttp.ClientWebSocketResponse,
        session: Session,
        provider: str,
        tail: str,
        subscription: bool,
        preflight: Preflight,
        metering: Metering,
        clock: Clock,
    ) -> None:
        self.request, self.client, self.upstream = request, client, upstream
        self.session, self.provider, self.tail, self.subscription = session, provider, tail, subscription
        self._preflight, self._metering, self._clock = preflight, metering, clock
        self.metered = classify(provider, tail) == "responses"  # each create is checked, journalled, metered
        self.waiting: deque[_Flight] = deque()  # sent upstream, no response id seen yet
        self.by_id: dict[str, _Flight] = {}
        self.latest: _Flight | None = None  # the newest bound response: gets the events that carry no id

    async def run(self) -> None:
        # Both referenced here and awaited below (not background work, so not ProxyState.spawn).
        tasks = [
            asyncio.ensure_future(self._client_to_upstream()),  # noqa: TID251
            asyncio.ensure_future(self._upstream_to_client()),  # noqa: TID251
        ]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for t in done:
                if t.exception() is not None:
                    log.info("websocket relay ended: %r", t.exception())
        finally:
            for flight in [*self.by_id.values(), *self.waiting]:
                await self._close_flight(flight, None, "connection closed")
            if not self.upstream.closed:
                await self.upstream.close()
            if not self.client.closed:
                await self.client.close()

    async def _client_to_upstream(self) -> None:
        async for msg in self.client:
            if msg.type == WSMsgType.TEXT:
                if self.metered and await self._refused_create(msg.data):
                    continue
                await self.upstream.send_str(msg.data)
            elif not await _pass(msg, self.upstream):
                break
        await self.upstream.close()

    async def _upstream_to_client(self) -> None:
        async for msg in self.upstream:
            if msg.type == WSMsgType.TEXT:
                flight = self._flight_for(_json_or_none(msg.data)) if (self.waiting or self.by_id) else None
                if flight is not None:
                    if flight.ttft is None:
                        flight.ttft = (self._clock.monotonic() - flight.ex.started_mono) * 1000
                    if flight.meter.feed_text(msg.data):  # terminal: the row before the frame
                        await self._close_flight(flight, flight.meter.result(), None)
                await self.client.send_str(msg.data)
            elif not await _pass(msg, self.client):
                break
        await self.client.close(code=self.upstream.close_code or 1000)

    async def _refused_create(self, text: str) -> bool:
        """A `response.create` goes through the HTTP path's preflight: a WebSocket is no way around the caps,
        and a check that fails is handled exactly as on HTTP. Returns True when it was refused (answered)."""
        event = _json_or_none(text)  # parsed, never matched as a substring (JSON escapes)
        if event is None or not (event.get("type") == "response.create" or _any_create(text)):
            return False
        ex = self._preflight.exchange(
            self.request,
            self.session,
            self.provider,
            self.tail,
            method="WS",
            subscription=self.subscription,
            model=_model_of(event),
            stream=True,
        )
        raw = text.encode()
        refused = await self._preflight.admit(ex, read_body(raw), len(raw), self.tail)
        if refused is not None:
            await self.client.send_str(_refusal_frame(refused))
            return True
        self._metering.journal(ex)  # write-ahead, not waited for
        self.waiting.append(_Flight(ex))
        return False

    def _flight_for(self, event: dict | None) -> _Flight | None:
        rid = _response_id(event)
        if rid is None:
            return self.latest or (self.waiting[0] if self.waiting else None)
        flight = self.by_id.get(rid)
        if flight is None and self.waiting:
            flight = self.waiting.popleft()
            flight.rid = rid
            self.by_id[rid] = flight
        if flight is not None:
            self.latest = flight
        return flight

    async def _close_flight(self, flight: _Flight, metered: Metered | None, end: str | None) -> None:
        if flight.rid is not None:
            self.by_id.pop(flight.rid, None)
        if flight in self.waiting:
            self.waiting.remove(flight)
        if self.latest is flight:
            self.latest = None
        ex = flight.ex
        out = Outcome(
            http_status=101,
            ttft_ms=flight.ttft,
            end=end,
            duration_ms=(self._clock.monotonic() - ex.started_mono) * 1000,
        )
        await self._metering.settle(ex, metered or flight.meter.result(), out)


async def _pass(msg: WSMessage, to: WebSocket) -> bool:
    """Relay a non-text frame as it is; False when the connection is ending."""
    if msg.type == WSMsgType.BINARY:
        await to.send_bytes(msg.data)
    elif msg.type == WSMsgType.PING:
        await to.ping(msg.data)
    elif msg.type == WSMsgType.PONG:
        await to.pong(msg.data)
    elif msg.type in _ENDS:
        return False
    return True


def _refusal_frame(refused: Refusal) -> str:
    return json.dumps(
        {
            "type": "error",
            "status": 429,
            "error": {
                "type": "usage_limit_reached",
                "code": "agentmeter_budget_exceeded",
                "message": refused.message,
                "resets_at": refused.resets_at_s,
            },
        }
    )


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
        if sum(1 for k, _ in items if k == "type") > 1 and any(
            k == "type" and v == "response.create" for k, v in items
        ):
            found = True
        return dict(items)

    try:
        json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return False
    return found


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
