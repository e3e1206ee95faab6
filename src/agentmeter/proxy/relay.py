"""Relaying one request upstream and its response back, unbuffered, with a metering tap on the side.

Rules (wire-protocols section 7): forward each chunk the moment it arrives; forward unknown headers,
fields and events verbatim; pass upstream errors through byte for byte; no total timeout on streams.
The terminal event of a stream is held only long enough to commit its ledger row, so a response the
agent received completely always has its row (DESIGN section 3, durability).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from ..core.clock import Clock
from ..core.models import Metered
from ..providers import anthropic as anth
from ..providers import gemini as gem
from ..providers import openai as oai
from ..providers.base import StreamMeter
from .alerts import Alerts
from .bodies import BodyGate
from .errors import provider_error
from .exchange import BILLABLE, HOP_BY_HOP, Exchange, Outcome, Outgoing
from .metering import Metering

log = logging.getLogger("agentmeter.proxy")

# Non-streamed bodies larger than this are relayed but not parsed (a 64 MiB JSON parse would stall).
MAX_PARSE_BYTES = 32 * 1024 * 1024
HANGUP_DRAIN_S = 30.0  # how long the rest of a whole body is read for its usage after the agent hung up


def stream_meter(api: str) -> StreamMeter | None:
    if api == "messages":
        return anth.AnthropicStreamMeter()
    if api == "responses":
        return oai.ResponsesStreamMeter()
    if api == "chat":
        return oai.ChatStreamMeter()
    if api == "generate_content":
        return gem.GeminiStreamMeter()
    return None


def parse_body(api: str, body: bytes, provider: str | None = None) -> Metered:
    if api == "generate_content" or provider == "gemini":
        return gem.parse_gemini_json(body)
    if api in ("messages", "count_tokens"):
        return anth.parse_anthropic_json(body)
    if api == "responses":
        return oai.parse_responses_json(body)
    return oai.parse_chat_json(body)


class _Inflater:
    """Decodes a compressed response copy for the meter only; the agent gets the original bytes."""

    def __init__(self, encoding: str) -> None:
        self._obj: Any = None  # a zlib or zstandard decompressobj
        enc = encoding.lower()
        if enc == "gzip":
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._obj = zlib.decompressobj()
        elif enc == "zstd":
            import zstandard

            self._obj = zstandard.ZstdDecompressor().decompressobj()
        self.supported = self._obj is not None

    def __call__(self, chunk: bytes) -> bytes:
        return self._obj.decompress(chunk) if self._obj else b""


def response_headers(up: aiohttp.ClientResponse, *, keep_length: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in up.raw_headers:
        name = k.decode("latin-1")
        low = name.lower()
        if low in HOP_BY_HOP and not (keep_length and low == "content-length"):
            continue
        out.append((name, v.decode("latin-1")))
    return out  # a list keeps repeated headers (set-cookie, …) intact


class Relay:
    """Sends a checked request upstream and relays the answer; hands what it saw to metering."""

    def __init__(
        self, http: aiohttp.ClientSession, metering: Metering, alerts: Alerts, bodies: BodyGate, clock: Clock
    ) -> None:
        self._http = http
        self._metering = metering
        self._alerts = alerts
        self._bodies = bodies
        self._clock = clock

    async def forward(self, request: web.Request, out: Outgoing) -> web.StreamResponse:
        ex, body = out.ex, out.body
        out.body = None
        try:
            up = await self._http.request(
                request.method,
                out.url,
                data=body if body else None,
                headers=out.headers,
                allow_redirects=False,
            )
        except ValueError as exc:  # aiohttp refused to send a header (a control character in it)
            await self._metering.settle(ex, Metered(complete=True, error_type="bad_header"), self._failed(ex, 400))
            return provider_error(ex.provider, 400, f"a request header could not be forwarded: {exc}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            metered = Metered(complete=True, error_type="upstream_unreachable", error_message=type(exc).__name__)
            await self._metering.settle(ex, metered, self._failed(ex, 502))
            return provider_error(
                ex.provider, 502, f"could not reach {out.base} ({type(exc).__name__}); is the network up?"
            )
        del body
        self._bodies.release(out.held)  # the body has been sent: its bytes are free for the next large one
        out.held = 0
        self._alerts.observe_plan(ex, up.raw_headers, up.status)
        try:
            return await ResponseRelay(request, up, ex, self._metering, self._clock).run()
        finally:
            up.release()

    def _failed(self, ex: Exchange, status: int) -> Outcome:
        return Outcome(http_status=status, duration_ms=(self._clock.monotonic() - ex.started_mono) * 1000)


class ResponseRelay:
    """One upstream response relayed to the agent: each chunk written the moment it arrives, a copy fed to
    the meter, and the row committed before the terminal bytes leave (DESIGN section 3, durability)."""

    def __init__(
        self, request: web.Request, up: aiohttp.ClientResponse, ex: Exchange, metering: Metering, clock: Clock
    ) -> None:
        self.request, self.up, self.ex = request, up, ex
        self._metering = metering
        self._clock = clock
        is_sse = "text/event-stream" in up.headers.get("Content-Type", "").lower()
        encoding = up.headers.get("Content-Encoding", "identity")
        self.inflate = _Inflater(encoding) if encoding.lower() not in ("", "identity") else None
        self.meter = stream_meter(ex.api) if is_sse and ex.billable else None
        self.stripper = oai.ChatUsageStripper() if (self.meter and ex.strip_usage) else None
        # A whole (non-streamed) body is collected for the meter; its last chunk waits for the commit.
        parsed = ex.billable or ex.api == "count_tokens"
        self.body: bytearray | None = bytearray() if (parsed and not is_sse) else None
        self.held: bytes | None = None
        self.oversize = False
        self.committed = False
        self.outcome = Outcome(
            http_status=up.status, upstream_request_id=up.headers.get("request-id") or up.headers.get("x-request-id")
        )
        self.out = web.StreamResponse(status=up.status, reason=up.reason)
        # When we strip a chunk the length changes; otherwise the original Content-Length is exact.
        for name, value in response_headers(up, keep_length=self.stripper is None and not is_sse):
            self.out.headers.add(name, value)

    async def run(self) -> web.StreamResponse:
        try:
            await self.out.prepare(self.request)
            async for chunk in self.up.content.iter_any():
                await self._relay(chunk)
            await self._upstream_done()
            await self.out.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError) as exc:
            metered = await self._after_hangup()
            why = "the agent hung up before the end; the usage was read to the end" if metered.complete else ""
            await self._finish(metered, end="client_disconnected", fault=why or str(exc) or "client disconnected")
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            await self._upstream_reset(exc)
        except asyncio.CancelledError:
            self._cancelled()
            raise
        return self.out

    async def _relay(self, chunk: bytes) -> None:
        if self.outcome.ttft_ms is None:
            self.outcome.ttft_ms = self._elapsed_ms()
        if self.meter is not None:
            if self.inflate is None and self.stripper is None and not self.meter.may_complete(chunk):
                # Nothing in this chunk can end the stream: the agent gets it first, the meter reads it after
                # (the chunk that can end it is still metered, and its row committed, before it is relayed).
                try:
                    await self.out.write(chunk)
                finally:
                    if self.meter.feed(chunk) and not self.committed:  # may_complete said it could not
                        await self._finish(self.meter.result())
                return
            plain = chunk
            if self.inflate is not None:
                plain = self.inflate(chunk) if self.inflate.supported else b""
            if self.meter.feed(plain) and not self.committed:
                await self._finish(self.meter.result())  # the row, before the terminal event leaves
            data = self.stripper.process(chunk) if self.stripper else chunk
            if data:
                await self.out.write(data)
        elif self.body is not None:
            if len(self.body) + len(chunk) <= MAX_PARSE_BYTES:
                self.body.extend(chunk)
            else:
                self.oversize = True
            if self.held is not None:
                await self.out.write(self.held)
            self.held = chunk
        else:
            await self.out.write(chunk)

    async def _upstream_done(self) -> None:
        if self.meter is not None:
            if self.stripper is not None and (tail := self.stripper.flush()):
                await self.out.write(tail)
            if not self.committed:
                await self._finish(self.meter.result(), end="upstream_eof")
        elif self.body is not None:
            await self._finish(
                _parse_whole(self.ex.api, bytes(self.body), self.inflate, self.oversize, self.ex.provider)
            )
            if self.held is not None:
                await self.out.write(self.held)
        else:
            await self._finish(Metered(complete=True))

    async def _upstream_reset(self, exc: BaseException) -> None:
        # aiohttp raises as soon as the upstream connection fails, before handing out bytes it had already
        # received. Those still go to the agent and through the meter (a terminal event among them
        # completes the row), then the connection is closed.
        with contextlib.suppress(Exception):
            if self.out.prepared and (rest := _unread(self.up)):
                await self._relay(rest)
        await self._finish(self._interrupted(), end="upstream_reset", fault=type(exc).__name__)
        # The client gets a truncated body; closing the connection is the honest signal.
        if self.request.transport is not None:
            self.request.transport.close()

    async def _finish(self, metered: Metered, end: str | None = None, fault: str | None = None) -> None:
        if self.committed:
            return
        self.committed = True
        self.outcome.end, self.outcome.fault = end or self.outcome.end, fault or self.outcome.fault
        self.outcome.duration_ms = self._elapsed_ms()
        await self._metering.settle(self.ex, metered, self.outcome)

    async def _after_hangup(self) -> Metered:
        """The agent hung up. A stream stops here: closing upstream stops the generation, and the bill, where it
        is. A whole (non-streamed) body was generated before its headers came and is billed in full, so the
        rest of it is read, bounded in size and time, for the usage it carries."""
        if self.body is None or self.committed or self.ex.stream:  # Gemini's JSON-array stream is a stream too
            return self._interrupted()
        try:
            async with asyncio.timeout(HANGUP_DRAIN_S):
                async for chunk in self.up.content.iter_any():
                    if len(self.body) + len(chunk) > MAX_PARSE_BYTES:
                        self.oversize = True
                        break
                    self.body.extend(chunk)
        except (TimeoutError, aiohttp.ClientError, OSError):
            return self._interrupted()
        if self.oversize:
            return self._interrupted()
        return _parse_whole(self.ex.api, bytes(self.body), self.inflate, self.oversize, self.ex.provider)

    def _cancelled(self) -> None:
        """The agent went away (Ctrl-C): recorded `partial` at once, without awaiting (we are being cancelled)."""
        if self.committed:
            return
        self.committed = True
        self.outcome.end = "cancelled"
        self.outcome.duration_ms = self._elapsed_ms()
        self._metering.commit(self.ex, self._interrupted(), self.outcome)

    def _interrupted(self) -> Metered:
        return self.meter.result() if self.meter is not None else Metered(complete=False)

    def _elapsed_ms(self) -> float:
        return (self._clock.monotonic() - self.ex.started_mono) * 1000


def _unread(up: aiohttp.ClientResponse) -> bytes:
    """Bytes of the response aiohttp received but had not handed out (its StreamReader buffer; read
    defensively, as it is not public API)."""
    buf = getattr(up.content, "_buffer", None)
    if not buf:
        return b""
    data = b"".join(buf)
    buf.clear()
    return data


def _parse_whole(
    api: str, body: bytes, inflate: _Inflater | None, oversize: bool, provider: str | None = None
) -> Metered:
    if oversize:
        return Metered(complete=True, fault="response too large to meter")
    if inflate is not None:
        if not inflate.supported:
            return Metered(complete=True, fault="response encoding not supported for metering")
        try:
            body = inflate(body)
        except Exception as exc:
            return Metered(complete=True, fault=f"could not decode response: {exc}")
    if api not in BILLABLE and api != "count_tokens":
        return Metered(complete=True)
    metered = parse_body(api, body, provider)
    # A whole JSON body is complete by definition, even when it carried no usage.
    return metered if metered.complete else replace(metered, complete=True)
