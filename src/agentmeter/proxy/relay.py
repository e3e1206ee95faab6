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
import os
import random
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import aiohttp
from aiohttp import web

from ..core.models import Metered, RequestRecord
from ..providers import anthropic as anth
from ..providers import gemini as gem
from ..providers import openai as oai
from ..providers.base import StreamMeter
from ..providers.request import METERED_APIS

log = logging.getLogger("agentmeter.proxy")

# Hop-by-hop headers (RFC 9110 7.6.1) plus the ones aiohttp recomputes for the new connection.
HOP_BY_HOP = frozenset(
    {
        "x-agentmeter-session",  # the session token of /h/ routes: ours, never the provider's
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Non-streamed bodies larger than this are relayed but not parsed (a 64 MiB JSON parse would stall).
MAX_PARSE_BYTES = 32 * 1024 * 1024
BILLABLE = METERED_APIS  # one list of the APIs whose usage is read and priced (providers/request.py)
JOURNAL_WAIT_S = 1.0


@dataclass
class Exchange:
    """Everything known about one request while it is in flight."""

    request_id: str
    provider: str
    api: str
    method: str
    path: str
    session: dict
    started_ms: int
    started_mono: float
    model_requested: str | None = None
    stream: bool = False
    subscription: bool = False
    agent_session_id: str | None = None
    agent_id: str | None = None
    strip_usage: bool = False
    decision: str = "allow"
    reason: str | None = None
    extra: dict = field(default_factory=dict)


# Request ids need to be unique, not secret: 128 bits from a generator seeded once from os.urandom. uuid4()
# reads os.urandom on every call, which costs ~40 µs in some VMs (a getrandom syscall each time).
_ids = random.Random(os.urandom(32))


def new_request_id() -> str:
    return f"amr_{_ids.getrandbits(128):032x}"


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
        self._obj = None
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


def response_headers(up: aiohttp.ClientResponse, *, keep_length: bool) -> dict[str, str]:
    out: list[tuple[str, str]] = []
    for k, v in up.raw_headers:
        name = k.decode("latin-1")
        low = name.lower()
        if low in HOP_BY_HOP and not (keep_length and low == "content-length"):
            continue
        out.append((name, v.decode("latin-1")))
    return out  # a list keeps repeated headers (set-cookie, …) intact


async def relay_response(
    request: web.Request,
    up: aiohttp.ClientResponse,
    ex: Exchange,
    commit: Callable[[RequestRecord], asyncio.Future],
    build: Callable[[Exchange, Metered, dict], RequestRecord],
    clock_mono: Callable[[], float],
    journal: Future | None = None,
) -> web.StreamResponse:
    """Relay `up` to the client; commit the ledger row before the terminal bytes leave. `journal` is the
    request's write-ahead entry (state.begin): no byte goes back to the agent before it is on disk."""
    ctype = up.headers.get("Content-Type", "").lower()
    is_sse = "text/event-stream" in ctype
    encoding = up.headers.get("Content-Encoding", "identity")
    inflate = _Inflater(encoding) if encoding.lower() not in ("", "identity") else None
    meter = stream_meter(ex.api) if is_sse and ex.api in BILLABLE else None
    stripper = oai.ChatUsageStripper() if (meter and ex.strip_usage) else None
    billable = ex.api in BILLABLE or ex.api == "count_tokens"
    # When we strip a chunk the length changes; otherwise the original Content-Length is exact.
    keep_length = stripper is None and not is_sse
    out = web.StreamResponse(status=up.status, reason=up.reason)
    for name, value in response_headers(up, keep_length=keep_length):
        out.headers.add(name, value)
    info: dict = {
        "http_status": up.status,
        "upstream_request_id": up.headers.get("request-id") or up.headers.get("x-request-id"),
        "ttft_ms": None,
    }
    committed = False
    held: bytes | None = None  # non-streamed bodies: the last chunk waits for the commit
    body = bytearray() if (billable and not is_sse) else None
    oversize = False

    async def finish(metered: Metered, **more) -> None:
        nonlocal committed
        if committed:
            return
        committed = True
        info.update(more)
        info["duration_ms"] = (clock_mono() - ex.started_mono) * 1000
        try:
            await commit(build(ex, metered, info))
        except Exception as exc:  # metering never breaks a request
            log.error("ledger commit failed for %s: %s", ex.request_id, exc)

    async def relay_chunk(chunk: bytes) -> None:
        nonlocal held, oversize
        if info["ttft_ms"] is None:
            info["ttft_ms"] = (clock_mono() - ex.started_mono) * 1000
        if meter is not None:
            plain = chunk
            if inflate is not None:
                plain = inflate(chunk) if inflate.supported else b""
            if meter.feed(plain) and not committed:
                await finish(meter.result())
            data = stripper.process(chunk) if stripper else chunk
            if data:
                await out.write(data)
            return
        if body is not None:
            if len(body) + len(chunk) <= MAX_PARSE_BYTES:
                body.extend(chunk)
            else:
                oversize = True
            if held is not None:
                await out.write(held)
            held = chunk
            return
        await out.write(chunk)

    try:
        await journaled(journal)
        await out.prepare(request)
        async for chunk in up.content.iter_any():
            await relay_chunk(chunk)
        # Upstream finished.
        if meter is not None:
            if stripper is not None:
                tail = stripper.flush()
                if tail:
                    await out.write(tail)
            if not committed:
                result = meter.result()
                await finish(result, end="upstream_eof")
        elif body is not None:
            await finish(_parse_whole(ex.api, bytes(body), inflate, oversize, up.status, ex.provider))
            if held is not None:
                await out.write(held)
        else:
            await finish(Metered(complete=True))
        await out.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError) as exc:
        await finish(_interrupted(meter), end="client_disconnected", fault=str(exc) or "client disconnected")
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        # aiohttp raises as soon as the upstream connection fails, before handing out bytes it had already
        # received. Those still go to the agent and through the meter (a terminal event among them
        # completes the row), then the connection is closed.
        with contextlib.suppress(Exception):
            if out.prepared and (rest := _unread(up)):
                await relay_chunk(rest)
        await finish(_interrupted(meter), end="upstream_reset", fault=type(exc).__name__)
        # The client gets a truncated body; closing the connection is the honest signal.
        if request.transport is not None:
            request.transport.close()
    except asyncio.CancelledError:
        if not committed:
            committed = True
            info["end"] = "cancelled"
            info["duration_ms"] = (clock_mono() - ex.started_mono) * 1000
            commit(build(ex, _interrupted(meter), info))  # no await: we are being cancelled
        raise
    return out


def _unread(up: aiohttp.ClientResponse) -> bytes:
    """Bytes of the response aiohttp received but had not handed out (its StreamReader buffer; read
    defensively, as it is not public API)."""
    buf = getattr(up.content, "_buffer", None)
    if not buf:
        return b""
    data = b"".join(buf)
    buf.clear()
    return data


async def journaled(fut: Future | None) -> None:
    """Wait (at most JOURNAL_WAIT_S) for a journal entry. It was submitted when the request went upstream
    and is nearly always on disk by the time the provider answers: then this costs nothing. A slow or
    failing disk never holds a response back (the writer logs the failure)."""
    if fut is None or fut.done():
        return
    try:
        async with asyncio.timeout(JOURNAL_WAIT_S):
            await asyncio.wrap_future(fut)
    except Exception:
        pass


def _interrupted(meter: StreamMeter | None) -> Metered:
    return meter.result() if meter is not None else Metered(complete=False)


def _parse_whole(api: str, body: bytes, inflate: _Inflater | None, oversize: bool, status: int,
                 provider: str | None = None) -> Metered:
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
