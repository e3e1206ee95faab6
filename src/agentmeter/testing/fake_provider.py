"""A fake Anthropic + OpenAI + Gemini provider on loopback, for the demo, the tests, the benchmarks.

It speaks the real wire shapes (wire-protocols section 5): Anthropic Messages SSE and JSON,
OpenAI Responses over SSE, JSON and WebSocket, Chat Completions SSE and JSON, the ChatGPT Codex
backend path, and the Gemini API (`generateContent`, `streamGenerateContent` as SSE with `alt=sse` and
as a streamed JSON array without it, `countTokens`, the model list). It records what it received
(headers and body sizes, never bodies on disk) so tests can assert on it, and its behaviour is scripted
per request by the `x-fake-scenario` header or globally through `POST /_fake/config`.

Scenarios: `ok` (default), `status:<code>` (an error in the provider's shape), `reset` (drop the
connection mid-stream), `truncate` (end the stream cleanly but without the terminal event),
`error_event` (a mid-stream error event), `stall:<seconds>` (pause mid-stream; for a whole Anthropic JSON
body, after its headers and first half).
With `plan` set (FakePlan), every response carries the plan-window headers and the utilization climbs.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web


@dataclass
class FakeUsage:
    input_tokens: int = 1200
    cache_read_tokens: int = 18000
    cache_write_tokens: int = 1204
    cache_write_1h_tokens: int = 0
    output_tokens: int = 58
    reasoning_tokens: int = 0  # Anthropic: output_tokens_details.thinking_tokens
    web_search_requests: int = 0  # Anthropic: server_tool_use; OpenAI: that many web_search_call items
    speed: str | None = None  # Anthropic usage.speed ("fast": fast mode)
    service_tier: str | None = None  # Anthropic usage.service_tier; OpenAI: else the request's, else "default"
    tool_use_prompt_tokens: int = 0  # Gemini only


@dataclass
class FakeConfig:
    usage: FakeUsage = field(default_factory=FakeUsage)
    text: str = "Hello from the fake provider."
    deltas: int = 4  # content deltas per streamed response
    pace_ms: float = 0.0  # delay between streamed events
    scenario: str = "ok"
    delta_bytes: int = 0  # pad each delta to this size (benchmarks)
    plan: FakePlan | None = None  # report plan windows (subscription traffic)


@dataclass
class FakePlan:
    """A subscription plan the fake reports on every response, the way the real backends do: Anthropic's
    `anthropic-ratelimit-unified-*` headers and the ChatGPT backend's `x-codex-*` headers. Each billable
    response adds `step_pct` (or the request's `x-fake-plan-step`) to both windows when it *finishes*
    (headers carry the reading from before it), so the status climbs allowed → allowed_warning → rejected;
    once a window is at 100 % the fake answers 429 as the provider does."""

    five_hour_pct: float = 0.0
    seven_day_pct: float = 0.0
    step_pct: float = 1.0
    seven_day_step_pct: float | None = None  # defaults to step_pct / 10
    five_hour_reset_s: int = 2 * 3600  # seconds from the fake's start to each reset
    seven_day_reset_s: int = 3 * 86400
    warn_at: float = 80.0
    extra: dict = field(default_factory=dict)  # more headers, e.g. one the provider adds later
    # The ChatGPT backend also sends the windows inside a Codex stream, as a `codex.rate_limits` event.
    codex_event: bool = False
    codex_headers: bool = True  # False: the windows only in the stream's event


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_bytes: int
    json: dict | None

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body_bytes": self.body_bytes,
            "model": (self.json or {}).get("model"),
            "stream": (self.json or {}).get("stream"),
            "json": self.json,
        }


CONFIG = web.AppKey("config", FakeConfig)
PLAN_EPOCH = web.AppKey("plan_epoch", list)  # [unix seconds the plan's reset times count from]
RECEIVED = web.AppKey("received", list)


def _sse(event: str | None, data: dict | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _chunks(text: str, n: int, pad: int) -> list[str]:
    n = max(1, n)
    size = max(1, -(-len(text) // n))
    parts = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    while len(parts) < n:
        parts.append(" ")
    if pad:
        parts = [p + " " * max(0, pad - len(p)) for p in parts]
    return parts


def anthropic_events(model: str, cfg: FakeConfig) -> list[bytes]:
    u = cfg.usage
    usage = {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": u.cache_write_tokens - u.cache_write_1h_tokens,
            "ephemeral_1h_input_tokens": u.cache_write_1h_tokens,
        },
        "output_tokens": 1,
        "service_tier": u.service_tier or "standard",
    }
    if u.speed:
        usage["speed"] = u.speed
    msg_id = "msg_fake" + uuid.uuid4().hex[:16]
    out = [
        _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        ),
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _sse("ping", {"type": "ping"}),
    ]
    for part in _chunks(cfg.text, cfg.deltas, cfg.delta_bytes):
        out.append(
            _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}},
            )
        )
    out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    final = {k: v for k, v in usage.items() if k not in ("cache_creation", "service_tier")}
    final["output_tokens"] = u.output_tokens
    final.update(_anthropic_extras(u))
    out.append(
        _sse(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": final},
        )
    )
    out.append(_sse("message_stop", {"type": "message_stop"}))
    return out


def _anthropic_extras(u: FakeUsage) -> dict:
    extra: dict = {}
    if u.reasoning_tokens:
        extra["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    if u.web_search_requests:
        extra["server_tool_use"] = {"web_search_requests": u.web_search_requests}
    return extra


def anthropic_json(model: str, cfg: FakeConfig) -> dict:
    u = cfg.usage
    tier = {"service_tier": u.service_tier or "standard", **({"speed": u.speed} if u.speed else {})}
    return {
        "id": "msg_fake" + uuid.uuid4().hex[:16],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": cfg.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": u.input_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cache_read_tokens,
            "output_tokens": u.output_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": u.cache_write_tokens - u.cache_write_1h_tokens,
                "ephemeral_1h_input_tokens": u.cache_write_1h_tokens,
            },
            **tier,
            **_anthropic_extras(u),
        },
    }


def responses_usage(cfg: FakeConfig) -> dict:
    u = cfg.usage
    return {
        "input_tokens": u.input_tokens + u.cache_read_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.cache_read_tokens + u.output_tokens,
    }


def responses_events(model: str, cfg: FakeConfig, service_tier: str | None = None) -> list[dict]:
    rid = "resp_fake" + uuid.uuid4().hex[:16]
    mid = "msg_fake" + uuid.uuid4().hex[:8]
    # OpenAI answers with the tier that actually served the request ("auto" resolves to "default").
    tier = cfg.usage.service_tier or (service_tier if service_tier not in (None, "auto") else "default")
    base = {
        "id": rid,
        "object": "response",
        "created_at": 1756400000,
        "model": model,
        "output": [],
        "service_tier": tier,
    }
    searches = [
        {
            "id": f"ws_fake{i}",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": "q"},
        }
        for i in range(cfg.usage.web_search_requests)
    ]
    ev: list[dict] = [
        {"type": "response.created", "response": {**base, "status": "in_progress", "usage": None}},
        {"type": "response.in_progress", "response": {**base, "status": "in_progress", "usage": None}},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": mid, "type": "message", "status": "in_progress", "role": "assistant", "content": []},
        },
        {
            "type": "response.content_part.added",
            "item_id": mid,
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_text", "annotations": [], "text": ""},
        },
    ]
    for part in _chunks(cfg.text, cfg.deltas, cfg.delta_bytes):
        ev.append(
            {"type": "response.output_text.delta", "item_id": mid, "output_index": 0, "content_index": 0, "delta": part}
        )
    item = {
        "id": mid,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "text": cfg.text}],
    }
    ev += [
        {"type": "response.output_text.done", "item_id": mid, "output_index": 0, "content_index": 0, "text": cfg.text},
        {
            "type": "response.content_part.done",
            "item_id": mid,
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_text", "annotations": [], "text": cfg.text},
        },
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {
            "type": "response.completed",
            "response": {**base, "status": "completed", "output": [*searches, item], "usage": responses_usage(cfg)},
        },
    ]
    for i, e in enumerate(ev):
        e["sequence_number"] = i
    return ev


def chat_events(model: str, cfg: FakeConfig, include_usage: bool) -> list[bytes]:
    cid = "chatcmpl-fake" + uuid.uuid4().hex[:12]
    head = {"id": cid, "object": "chat.completion.chunk", "created": 1741569952, "model": model}
    usage_null = {"usage": None} if include_usage else {}
    out = [
        _sse(
            None,
            {
                **head,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
                **usage_null,
            },
        )
    ]
    for part in _chunks(cfg.text, cfg.deltas, cfg.delta_bytes):
        out.append(
            _sse(
                None,
                {**head, "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}], **usage_null},
            )
        )
    out.append(_sse(None, {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **usage_null}))
    if include_usage:
        out.append(_sse(None, {**head, "choices": [], "usage": chat_usage(cfg)}))
    out.append(b"data: [DONE]\n\n")
    return out


def chat_usage(cfg: FakeConfig) -> dict:
    u = cfg.usage
    return {
        "prompt_tokens": u.input_tokens + u.cache_read_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.cache_read_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


async def _record(request: web.Request) -> tuple[bytes, dict | None]:
    body = await request.read()
    data = None
    # x-fake-skip-decode: a test sending decompression bombs keeps the fake (which may share the proxy's
    # event loop in-process) from inflating them itself.
    if body and not request.headers.get("x-fake-skip-decode"):
        from agentmeter.providers.request import decode_body

        try:
            data = json.loads(decode_body(body, request.headers.get("Content-Encoding")) or b"")
        except ValueError:
            data = None
    request.app[RECEIVED].append(
        Received(
            request.method,
            request.path,
            request.query_string,
            {k.lower(): v for k, v in request.headers.items()},
            len(body),
            data,
        )
    )
    return body, data


def _cfg(request: web.Request) -> FakeConfig:
    """The app's behaviour, with a per-request usage from `x-fake-usage` (JSON) when given."""
    cfg = request.app[CONFIG]
    raw = request.headers.get("x-fake-usage")
    if raw:
        from dataclasses import replace

        cfg = replace(cfg, usage=FakeUsage(**json.loads(raw)))
    return cfg


def _scenario(request: web.Request) -> str:
    return request.headers.get("x-fake-scenario") or request.app[CONFIG].scenario


def plan_headers(request: web.Request, provider: str) -> dict[str, str]:
    """The plan-window headers for this response (empty when no plan is configured)."""
    plan = request.app[CONFIG].plan
    if plan is None:
        return {}
    epoch = request.app[PLAN_EPOCH]
    if not epoch:
        from agentmeter.core.clock import SystemClock

        epoch.append(SystemClock().now_ms() // 1000)
    r5, r7 = epoch[0] + plan.five_hour_reset_s, epoch[0] + plan.seven_day_reset_s
    p5, p7 = min(plan.five_hour_pct, 100.0), min(plan.seven_day_pct, 100.0)
    top = max(p5, p7)
    status = "rejected" if top >= 100 else "allowed_warning" if top >= plan.warn_at else "allowed"
    if provider == "anthropic":
        h = {
            "anthropic-ratelimit-unified-status": status,
            "anthropic-ratelimit-unified-5h-utilization": f"{p5 / 100:.4f}",
            "anthropic-ratelimit-unified-5h-reset": str(r5),
            "anthropic-ratelimit-unified-7d-utilization": f"{p7 / 100:.4f}",
            "anthropic-ratelimit-unified-7d-reset": str(r7),
            "anthropic-ratelimit-unified-representative-claim": "five_hour" if p5 >= p7 else "seven_day",
            "anthropic-ratelimit-unified-reset": str(r5 if p5 >= p7 else r7),
            "anthropic-ratelimit-unified-fallback": "available",
            "anthropic-ratelimit-unified-overage-status": "rejected",
            "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
        }
    elif not plan.codex_headers:
        h = {}
    else:
        h = {
            "x-codex-primary-used-percent": f"{p5:g}",
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-at": str(r5),
            "x-codex-secondary-used-percent": f"{p7:g}",
            "x-codex-secondary-window-minutes": "10080",
            "x-codex-secondary-reset-at": str(r7),
        }
    h.update({str(k): str(v) for k, v in plan.extra.items()})
    return h


def codex_rate_limits_event(request: web.Request) -> dict | None:
    """The `codex.rate_limits` stream event as the ChatGPT backend sends it (the windows of the headers)."""
    plan = request.app[CONFIG].plan
    if plan is None or not plan.codex_event:
        return None
    epoch = request.app[PLAN_EPOCH]
    if not epoch:
        from agentmeter.core.clock import SystemClock

        epoch.append(SystemClock().now_ms() // 1000)
    p5, p7 = min(plan.five_hour_pct, 100.0), min(plan.seven_day_pct, 100.0)
    r5, r7 = epoch[0] + plan.five_hour_reset_s, epoch[0] + plan.seven_day_reset_s
    return {
        "type": "codex.rate_limits",
        "plan_type": "plus",
        "rate_limits": {
            "allowed": max(p5, p7) < 100,
            "limit_reached": max(p5, p7) >= 100,
            "primary": {
                "used_percent": p5,
                "window_minutes": 300,
                "reset_after_seconds": plan.five_hour_reset_s,
                "reset_at": r5,
            },
            "secondary": {
                "used_percent": p7,
                "window_minutes": 10080,
                "reset_after_seconds": plan.seven_day_reset_s,
                "reset_at": r7,
            },
        },
        "code_review_rate_limits": None,
    }


def plan_rejected(request: web.Request) -> bool:
    plan = request.app[CONFIG].plan
    return plan is not None and max(plan.five_hour_pct, plan.seven_day_pct) >= 100


def plan_advance(request: web.Request) -> None:
    """The provider counts a request when it finishes."""
    plan = request.app[CONFIG].plan
    if plan is None:
        return
    step = float(request.headers.get("x-fake-plan-step") or plan.step_pct)
    week = step / 10 if plan.seven_day_step_pct is None else plan.seven_day_step_pct * step / plan.step_pct
    plan.five_hour_pct = min(100.0, plan.five_hour_pct + step)
    plan.seven_day_pct = min(100.0, plan.seven_day_pct + week)


def _plan_refusal(request: web.Request, provider: str) -> web.Response:
    headers = {**plan_headers(request, provider), "request-id": "req_fake_plan", "x-request-id": "req_fake_plan"}
    if provider == "anthropic":
        body = {
            "type": "error",
            "error": {"type": "rate_limit_error", "message": "This request would exceed your account's rate limit."},
            "request_id": "req_fake_plan",
        }
    else:
        plan = request.app[CONFIG].plan
        epoch = request.app[PLAN_EPOCH][0]
        body = {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "plus",
                "resets_at": epoch + plan.five_hour_reset_s,
            }
        }
    return web.Response(status=429, body=json.dumps(body).encode(), content_type="application/json", headers=headers)


def _error(provider: str, status: int) -> web.Response:
    if provider == "anthropic":
        kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(status, "api_error")
        body = {"type": "error", "error": {"type": kind, "message": f"fake {status}"}, "request_id": "req_fake"}
    else:
        body = {"error": {"message": f"fake {status}", "type": "server_error", "param": None, "code": None}}
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers={"request-id": "req_fake_err", "x-request-id": "req_fake_err"},
    )


async def _stream(
    request: web.Request, events: list[bytes], provider: str, content_type: str = "text/event-stream"
) -> web.StreamResponse:
    cfg = request.app[CONFIG]
    scenario = _scenario(request)
    resp = web.StreamResponse(
        status=200,
        headers={
            "Content-Type": content_type,
            "Cache-Control": "no-cache",
            "request-id": "req_fake" + uuid.uuid4().hex[:10],
            "x-request-id": "req_fake" + uuid.uuid4().hex[:10],
            **plan_headers(request, provider),
        },
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    cut = max(1, len(events) // 2)
    for i, ev in enumerate(events):
        if i == cut:
            if scenario == "reset":
                request.transport.close()
                return resp
            if scenario == "truncate":
                await resp.write_eof()
                return resp
            if scenario == "error_event":
                if provider == "gemini":
                    await resp.write(_sse(None, {"error": {"code": 503, "message": "fake", "status": "UNAVAILABLE"}}))
                    await resp.write_eof()
                    return resp
                err = (
                    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    if provider == "anthropic"
                    else {"type": "error", "code": "server_error", "message": "fake", "sequence_number": i}
                )
                await resp.write(_sse("error", err))
                await resp.write_eof()
                return resp
            if scenario.startswith("stall:"):
                await asyncio.sleep(float(scenario.split(":", 1)[1]))
        await resp.write(ev)
        if cfg.pace_ms:
            await asyncio.sleep(cfg.pace_ms / 1000)
    plan_advance(request)
    await resp.write_eof()
    return resp


async def messages(request: web.Request) -> web.StreamResponse:
    _, data = await _record(request)
    scenario = _scenario(request)
    if scenario.startswith("status:"):
        return _error("anthropic", int(scenario.split(":")[1]))
    if plan_rejected(request):
        return _plan_refusal(request, "anthropic")
    cfg = _cfg(request)
    model = (data or {}).get("model") or "claude-sonnet-4-5"
    if (data or {}).get("stream"):
        return await _stream(request, anthropic_events(model, cfg), "anthropic")
    headers = {"request-id": "req_fake_json", **plan_headers(request, "anthropic")}
    plan_advance(request)
    if scenario.startswith("stall:"):
        return await _json_stalled(request, anthropic_json(model, cfg), headers, float(scenario.split(":", 1)[1]))
    return web.json_response(anthropic_json(model, cfg), headers=headers)


async def _json_stalled(request: web.Request, payload: dict, headers: dict, seconds: float) -> web.StreamResponse:
    """A whole JSON body sent as the headers and its first half, then, after `seconds`, the rest."""
    body = json.dumps(payload).encode()
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json", **headers})
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    await asyncio.sleep(seconds)
    await resp.write(body[len(body) // 2 :])
    await resp.write_eof()
    return resp


async def count_tokens(request: web.Request) -> web.Response:
    body, _ = await _record(request)
    return web.json_response({"input_tokens": max(1, len(body) // 4)})


async def models(request: web.Request) -> web.Response:
    await _record(request)
    return web.json_response(
        {
            "data": [{"id": "claude-sonnet-4-5", "type": "model"}, {"id": "gpt-5.1", "object": "model"}],
            "has_more": False,
        }
    )


async def responses(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await responses_ws(request)
    _, data = await _record(request)
    scenario = _scenario(request)
    if scenario.startswith("status:"):
        return _error("openai", int(scenario.split(":")[1]))
    if plan_rejected(request):
        return _plan_refusal(request, "openai")
    cfg = _cfg(request)
    model = (data or {}).get("model") or "gpt-5.1"
    tier = (data or {}).get("service_tier")
    events = responses_events(model, cfg, tier if isinstance(tier, str) else None)
    if (data or {}).get("stream"):
        limits = codex_rate_limits_event(request)
        if limits is not None:  # the backend sends it first, before response.created
            events = [limits, *events]
        return await _stream(request, [_sse(e["type"], e) for e in events], "openai")
    headers = {"x-request-id": "req_fake_json", **plan_headers(request, "openai")}
    plan_advance(request)
    return web.json_response(events[-1]["response"], headers=headers)


async def responses_ws(request: web.Request) -> web.WebSocketResponse:
    headers = {k.lower(): v for k, v in request.headers.items()}
    request.app[RECEIVED].append(Received("WS", request.path, request.query_string, headers, 0, None))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    cfg = request.app[CONFIG]
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        data = json.loads(msg.data)
        request.app[RECEIVED].append(Received("WS-FRAME", request.path, "", {}, len(msg.data), data))
        model = data.get("model") or (data.get("response") or {}).get("model") or "gpt-5.1"
        for e in responses_events(model, cfg):
            await ws.send_str(json.dumps(e))
    return ws


async def chat(request: web.Request) -> web.StreamResponse:
    _, data = await _record(request)
    scenario = _scenario(request)
    if scenario.startswith("status:"):
        return _error("openai", int(scenario.split(":")[1]))
    cfg = _cfg(request)
    data = data or {}
    model = data.get("model") or "gpt-4.1"
    if data.get("stream"):
        include = bool((data.get("stream_options") or {}).get("include_usage"))
        return await _stream(request, chat_events(model, cfg, include), "openai")
    return web.json_response(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1741569952,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": cfg.text}, "finish_reason": "stop"}],
            "usage": chat_usage(cfg),
        }
    )


# -- Gemini API --------------------------------------------------------------------------------------


def gemini_usage(cfg: FakeConfig) -> dict:
    """FakeUsage as `usageMetadata`: the prompt count includes the cached part; thoughts are separate from
    the candidates (Gemini has no cache writes, so that bucket is not sent)."""
    u = cfg.usage
    meta = {
        "promptTokenCount": u.input_tokens + u.cache_read_tokens,
        "candidatesTokenCount": u.output_tokens - u.reasoning_tokens,
        "totalTokenCount": u.input_tokens + u.cache_read_tokens + u.output_tokens + u.tool_use_prompt_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.input_tokens + u.cache_read_tokens}],
    }
    if u.cache_read_tokens:
        meta["cachedContentTokenCount"] = u.cache_read_tokens
    if u.reasoning_tokens:
        meta["thoughtsTokenCount"] = u.reasoning_tokens
    if u.tool_use_prompt_tokens:
        meta["toolUsePromptTokenCount"] = u.tool_use_prompt_tokens
    return meta


def gemini_chunks(model: str, cfg: FakeConfig) -> list[dict]:
    """GenerateContentResponse chunks; usage on every chunk (cumulative), finishReason on the last."""
    rid = "fake" + uuid.uuid4().hex[:12]
    parts = _chunks(cfg.text, cfg.deltas, cfg.delta_bytes)
    meta = gemini_usage(cfg)
    out = []
    for i, text in enumerate(parts):
        last = i == len(parts) - 1
        cand = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if last:
            cand["finishReason"] = "STOP"
        partial = {"promptTokenCount": meta["promptTokenCount"], "totalTokenCount": meta["promptTokenCount"]}
        out.append(
            {"candidates": [cand], "usageMetadata": meta if last else partial, "modelVersion": model, "responseId": rid}
        )
    return out


def _gemini_error(status: int) -> web.Response:
    name = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
    }.get(status, "UNKNOWN")
    body = {"error": {"code": status, "message": f"fake {status}", "status": name}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


async def gemini_model(request: web.Request) -> web.StreamResponse:
    """POST /v1beta/models/{model}:{method}."""
    model, _, method = request.match_info["spec"].partition(":")
    _, data = await _record(request)
    if method in ("countTokens", "computeTokens"):
        return web.json_response({"totalTokens": max(1, request.content_length or 0) // 4})
    if method not in ("generateContent", "streamGenerateContent"):
        return _gemini_error(404)
    scenario = _scenario(request)
    if scenario.startswith("status:"):
        return _gemini_error(int(scenario.split(":")[1]))
    cfg = _cfg(request)
    gen = (data or {}).get("generationConfig") or {}
    if gen.get("responseMimeType") == "application/json":
        # Gemini CLI's model router asks for JSON matching a schema: answer with a minimal instance.
        from dataclasses import replace

        cfg = replace(
            cfg,
            text=json.dumps(_schema_example(gen.get("responseJsonSchema") or gen.get("responseSchema") or {})),
            deltas=1,
        )
    chunks = gemini_chunks(model, cfg)
    if method == "generateContent":
        whole = dict(chunks[-1])
        whole["candidates"] = [
            {**chunks[-1]["candidates"][0], "content": {"parts": [{"text": cfg.text}], "role": "model"}}
        ]
        return web.json_response(whole)
    if request.query.get("alt") == "sse":
        return await _stream(request, [_sse(None, c) for c in chunks], "gemini")
    # No alt=sse: one JSON array, its elements written as they are produced (how the API streams it).
    events = [(b"[" if i == 0 else b"\r\n,") + json.dumps(c).encode() for i, c in enumerate(chunks)]
    events[-1] += b"]"
    return await _stream(request, events, "gemini", content_type="application/json")


def _schema_example(schema: dict):
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _schema_example(v) for k, v in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return False
    return (schema.get("enum") or ["fake"])[0]


async def gemini_models(request: web.Request) -> web.Response:
    await _record(request)
    return web.json_response(
        {
            "models": [
                {"name": f"models/{m}", "supportedGenerationMethods": ["generateContent", "countTokens"]}
                for m in ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")
            ]
        }
    )


async def head_root(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def get_received(request: web.Request) -> web.Response:
    return web.json_response([r.as_dict() for r in request.app[RECEIVED]])


async def set_config(request: web.Request) -> web.Response:
    data = await request.json()
    cfg = request.app[CONFIG]
    if "usage" in data:
        cfg.usage = FakeUsage(**data.pop("usage"))
    if "plan" in data:
        plan = data.pop("plan")
        cfg.plan = FakePlan(**plan) if plan is not None else None
    for k, v in data.items():
        setattr(cfg, k, v)
    if data.get("reset_received"):
        request.app[RECEIVED].clear()
    return web.json_response({"ok": True})


async def any_other_route(request: web.Request) -> web.Response:
    """Every route the fake does not model (batches, legacy completions, embeddings, …): recorded, then a
    200 with an empty JSON object, so a test can tell whether the proxy relayed it."""
    await _record(request)
    return web.json_response({"fake": "other route", "path": request.path})


async def clear_received(request: web.Request) -> web.Response:
    request.app[RECEIVED].clear()
    return web.json_response({"ok": True})


def create_fake_app(config: FakeConfig | None = None) -> web.Application:
    app = web.Application(client_max_size=80 * 1024 * 1024, handler_args={"auto_decompress": False})
    app[CONFIG] = config or FakeConfig()
    app[RECEIVED] = []
    app[PLAN_EPOCH] = []
    for prefix in ("", "/backend-api/codex"):
        app.router.add_post(prefix + "/v1/messages", messages)
        app.router.add_post(prefix + "/v1/messages/count_tokens", count_tokens)
        app.router.add_get(prefix + "/v1/models", models)
        app.router.add_post(prefix + "/v1/responses", responses)
        app.router.add_get(prefix + "/v1/responses", responses_ws)
        app.router.add_post(prefix + "/responses", responses)
        app.router.add_get(prefix + "/responses", responses_ws)
        app.router.add_post(prefix + "/v1/chat/completions", chat)
    for version in ("v1beta", "v1"):
        app.router.add_post(f"/{version}/models/{{spec}}", gemini_model)
        app.router.add_get(f"/{version}/models", gemini_models)
    app.router.add_route("HEAD", "/", head_root)
    app.router.add_get("/_fake/received", get_received)
    app.router.add_post("/_fake/config", set_config)
    app.router.add_post("/_fake/clear", clear_received)
    app.router.add_route("*", "/{tail:.*}", any_other_route)  # last: the routes above win
    return app


async def start_fake(host: str = "127.0.0.1", port: int = 0, config: FakeConfig | None = None):
    """Start the fake in the running loop; returns (runner, base_url, app)."""
    app = create_fake_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    return runner, f"http://{host}:{bound}", app


def main() -> None:  # python -m agentmeter.testing.fake_provider --port N
    import argparse

    parser = argparse.ArgumentParser(description="fake Anthropic/OpenAI/Gemini provider on loopback")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pace-ms", type=float, default=0.0)
    parser.add_argument("--port-file", default=None)
    args = parser.parse_args()

    async def run() -> None:
        _runner, url, _ = await start_fake(port=args.port, config=FakeConfig(pace_ms=args.pace_ms))
        if args.port_file:
            with open(args.port_file, "w") as f:
                f.write(url.rsplit(":", 1)[1])
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
