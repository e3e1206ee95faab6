"""The benchmark suite's upstream: a fake Anthropic Messages endpoint with per-request stream shapes.

    python benchmarks/bench_fake.py --port-file FILE

Built on `agentmeter.testing.fake_provider` (same wire shapes), with two differences that matter for a
benchmark. Each request says what to stream back in a marker at the start of its first user text,
`[[bench DELTAS DELTA_BYTES PACE_US NONCE]]`, so every contender (direct, agentmeter, LiteLLM) gets the
same response for the same request, whatever headers a proxy forwards. And nothing is kept per request
(the test fake records every body it receives), so the fake's memory and CPU stay flat over a long run.

A streamed response is: message_start, content_block_start, ping, DELTAS content_block_delta events of
DELTA_BYTES text each, content_block_stop, message_delta (with usage), message_stop; events are written
one at a time on a fixed schedule, event k at k * PACE_US microseconds after the first. Usage is derived
from the request size (about 4 bytes per token, almost all of it cache reads, as for a Claude Code turn)
and the number of deltas, so the priced cost is realistic. GET /_bench/stats returns how many messages
requests were served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import uuid
from functools import lru_cache

from aiohttp import web

from agentmeter.testing.fake_provider import FakeConfig, FakeUsage, anthropic_json

MARKER = re.compile(rb"\[\[bench (\d+) (\d+) (\d+) \d+\]\]")
MODEL = re.compile(rb'"model"\s*:\s*"([^"]{1,200})"')
SERVED = web.AppKey("served", dict)


def usage_for(body_bytes: int, deltas: int) -> FakeUsage:
    prompt = max(100, body_bytes // 4)
    uncached = max(10, prompt // 50)
    return FakeUsage(
        input_tokens=uncached,
        cache_read_tokens=prompt - prompt // 10 - uncached,
        cache_write_tokens=prompt // 10,
        output_tokens=max(1, deltas * 3),
    )


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@lru_cache(maxsize=512)
def _delta(delta_bytes: int) -> bytes:
    return _sse(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * max(1, delta_bytes)}},
    )


@lru_cache(maxsize=1)
def _fixed() -> tuple[bytes, bytes, bytes, bytes]:
    return (
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _sse("ping", {"type": "ping"}),
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_stop", {"type": "message_stop"}),
    )


def events(model: str, deltas: int, delta_bytes: int, body_bytes: int) -> list[bytes]:
    """The Anthropic stream (same shape as agentmeter.testing.fake_provider.anthropic_events), cheaply."""
    u = usage_for(body_bytes, deltas)
    usage = {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": u.cache_write_tokens, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    start = _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_bench" + uuid.uuid4().hex[:16],
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        },
    )
    final = {k: v for k, v in usage.items() if k not in ("cache_creation", "service_tier")}
    final["output_tokens"] = u.output_tokens
    md = _sse(
        "message_delta",
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": final},
    )
    block_start, ping, block_stop, stop = _fixed()
    return [start, block_start, ping, *([_delta(delta_bytes)] * deltas), block_stop, md, stop]


async def messages(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    served = request.app[SERVED]
    served["messages"] += 1
    # Per contender (the load generator names itself in x-bench-contender; a proxy relays it): a contender
    # whose answers did not all come from here (a cache, a made-up refusal) is caught by run.py.
    who = "by:" + request.headers.get("x-bench-contender", "unnamed")
    served[who] = served.get(who, 0) + 1
    m = MARKER.search(body, 0, 8192) or MARKER.search(body)
    deltas, delta_bytes, pace_us = (int(g) for g in m.groups()) if m else (40, 40, 0)
    mm = MODEL.search(body)
    model = mm.group(1).decode() if mm else "claude-sonnet-4-5"
    if b'"stream":true' not in body and b'"stream": true' not in body:
        cfg = FakeConfig(usage=usage_for(len(body), deltas), text="x" * deltas)
        return web.json_response(anthropic_json(model, cfg), headers={"request-id": "req_bench_json"})
    evs = events(model, deltas, delta_bytes, len(body))
    resp = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "request-id": "req_bench" + uuid.uuid4().hex[:10],
        },
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    # Event k leaves at start + k * pace (a clock-driven generator): jitter does not accumulate, so a
    # stream's total time is its schedule plus whatever the path adds.
    pace = pace_us / 1e6
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for k, ev in enumerate(evs):
        if pace and k:
            delay = t0 + k * pace - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await resp.write(ev)
    await resp.write_eof()
    return resp


async def count_tokens(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"input_tokens": max(1, len(body) // 4)})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVED])


async def head_root(request: web.Request) -> web.Response:
    return web.Response(status=200)


def create_app() -> web.Application:
    app = web.Application(client_max_size=80 * 1024 * 1024, handler_args={"auto_decompress": False})
    app[SERVED] = {"messages": 0}
    for prefix in ("", "/anthropic"):
        app.router.add_post(prefix + "/v1/messages", messages)
        app.router.add_post(prefix + "/v1/messages/count_tokens", count_tokens)
    app.router.add_route("HEAD", "/", head_root)
    app.router.add_get("/_bench/stats", stats)
    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()

    async def run() -> None:
        runner = web.AppRunner(create_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os

        os.replace(args.port_file + ".tmp", args.port_file)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
