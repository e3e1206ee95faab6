"""A scripted upstream that misbehaves on request, and a real proxy in front of it.

The upstream speaks the fake provider's real event shapes, and the header `x-fault` picks what goes
wrong: `reset` (connection dropped mid-stream), `truncate` (clean EOF before the terminal event),
`stall:<s>`, `status:<code>`, `bad-json` (the usage event is not JSON), `big-event:<bytes>`,
`flood:<bytes>` (as fast as the socket takes it), `html` (a 200 HTML page), `error-event`. Every body
byte it sends is kept, so tests can compare what the agent got with what the provider sent.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from agentmeter.core.clock import SystemClock
from agentmeter.home.config import Config
from agentmeter.ledger import open_ledger
from agentmeter.testing.fake_provider import FakeConfig, _sse, anthropic_events, chat_events, responses_events
from conftest import LoopThread

SENT = web.AppKey("sent", dict)


def events_for(api: str, fake: FakeConfig) -> list[bytes]:
    if api == "messages":
        return anthropic_events("claude-sonnet-4-5", fake)
    if api == "responses":
        return [_sse(e["type"], e) for e in responses_events("gpt-5.1", fake)]
    return chat_events("gpt-4.1", fake, include_usage=True)


def error_body(api: str, status: int) -> bytes:
    if api == "messages":
        kind = {529: "overloaded_error", 500: "api_error", 503: "api_error", 502: "api_error"}.get(status, "api_error")
        return json.dumps(
            {
                "type": "error",
                "error": {"type": kind, "message": f"upstream says {status}"},
                "request_id": "req_upstream",
            }
        ).encode()
    return json.dumps(
        {"error": {"message": f"upstream says {status}", "type": "server_error", "param": None, "code": "server_error"}}
    ).encode()


async def scripted(request: web.Request) -> web.StreamResponse:
    api = {"/v1/messages": "messages", "/v1/responses": "responses", "/v1/chat/completions": "chat"}.get(request.path)
    if api is None:
        return web.Response(status=404, text="no such route upstream")
    await request.read()
    fault = request.headers.get("x-fault", "ok")
    sent = request.app[SENT]
    rid = request.headers.get("x-test-id", "")
    if fault.startswith("status:"):
        code = int(fault.split(":")[1])
        body = error_body(api, code)
        sent[rid] = body
        return web.Response(
            status=code,
            body=body,
            content_type="application/json",
            headers={"retry-after": "3", "x-should-retry": "true", "request-id": "req_upstream"},
        )
    if fault == "html":
        body = b"<html><body>Gateway says hello</body></html>"
        sent[rid] = body
        return web.Response(status=200, body=body, content_type="text/html")
    fake = FakeConfig(deltas=8)
    events = events_for(api, fake)
    if fault.startswith("big-event:"):
        size = int(fault.split(":")[1])
        big = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * size}}
        events.insert(4, _sse("content_block_delta", big))
    if fault.startswith("flood:"):
        size, chunk = int(fault.split(":")[1]), 64 * 1024
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "y" * chunk}}
        events[4:4] = [_sse("content_block_delta", delta)] * (size // chunk)
    if fault == "bad-json":
        i = next(i for i, e in enumerate(events) if b"message_delta" in e)
        events[i] = b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":58,\n\n'
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream", "request-id": "req_up"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    out = sent.setdefault(rid, bytearray())
    cut = len(events) // 2
    for i, ev in enumerate(events):
        if i == cut:
            if fault == "reset":
                request.transport.abort()
                return resp
            if fault == "truncate":
                await resp.write_eof()
                return resp
            if fault == "error-event":
                err = (
                    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                    b'"message":"Overloaded"}}\n\n'
                )
                out += err
                await resp.write(err)
                await resp.write_eof()
                return resp
            if fault.startswith("stall:"):
                await asyncio.sleep(float(fault.split(":")[1]))
        out += ev
        await resp.write(ev)
    await resp.write_eof()
    return resp


def create_upstream() -> web.Application:
    app = web.Application(client_max_size=80 * 2**20, handler_args={"auto_decompress": False})
    app[SENT] = {}
    app.router.add_route("*", "/{tail:.*}", scripted)
    return app


@dataclass
class FaultStack:
    loop: LoopThread
    upstream_url: str
    upstream: web.Application
    proxy_url: str
    state: object
    ledger_path: Path
    session: dict = field(default_factory=dict)

    def base(self, api: str) -> str:
        return f"{self.proxy_url}/s/{self.session['token']}/" + ("anthropic" if api == "messages" else "openai/v1")

    def sent(self, test_id: str) -> bytes:
        return bytes(self.upstream[SENT].get(test_id, b""))

    def rows(self) -> list[dict]:
        ledger = open_ledger(self.ledger_path, readonly=True)
        try:
            return [dict(r) for r in ledger.conn.execute("SELECT * FROM requests ORDER BY started_at, rowid")]
        finally:
            ledger.close()

    def row(self, test_id: str) -> dict:
        rows = [r for r in self.rows() if r["agent_id"] == test_id]
        assert len(rows) == 1, rows
        return rows[0]


def start_stack(tmp_path: Path, upstream_url: str | None = None) -> tuple[FaultStack, callable]:
    from agentmeter.proxy.app import ProxyState, create_app

    lt = LoopThread()

    async def start():
        up = create_upstream()
        urunner = web.AppRunner(up, access_log=None)
        await urunner.setup()
        usite = web.TCPSite(urunner, "127.0.0.1", 0)
        await usite.start()
        uurl = f"http://127.0.0.1:{usite._server.sockets[0].getsockname()[1]}"
        target = upstream_url or uurl
        cfg = Config(
            **{
                **Config().__dict__,
                "upstreams": {"anthropic": target, "openai": target, "chatgpt": target + "/backend-api/codex"},
            }
        )
        state = ProxyState(cfg, tmp_path / "ledger.db", SystemClock(), control_token="ctl")
        prunner = web.AppRunner(create_app(state), access_log=None)
        await prunner.setup()
        site = web.TCPSite(prunner, "127.0.0.1", 0)
        await site.start()
        state.port = site._server.sockets[0].getsockname()[1]
        return urunner, up, uurl, prunner, state

    urunner, up, uurl, prunner, state = lt.run(start())
    stack = FaultStack(lt, uurl, up, f"http://127.0.0.1:{state.port}", state, tmp_path / "ledger.db")
    stack.session = lt.run(state.sessions.open({"agent": "test"}))

    def close():
        lt.run(prunner.cleanup())
        lt.run(urunner.cleanup())
        lt.stop()

    return stack, close


@pytest.fixture
def faults(tmp_path):
    s, close = start_stack(tmp_path)
    yield s
    close()
