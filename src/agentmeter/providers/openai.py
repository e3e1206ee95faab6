"""OpenAI Responses and Chat Completions: usage from streamed and non-streamed responses.

Grammars in wire-protocols.md 5.2 (Responses: usage only on the terminal event, no [DONE]) and 5.3
(Chat: data-only SSE ending in `data: [DONE]`, usage on one chunk when `include_usage` was asked for).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from agentmeter.core.models import Metered, Usage
from agentmeter.pricing.tiers import normalize_tier
from agentmeter.providers import ratelimits
from agentmeter.providers.base import (
    StreamMeter,
    as_dict,
    as_int,
    as_str,
    fault_reason,
    json_loads_safe,
    sniff_type,
)
from agentmeter.providers.sse import SSEFramer, parse_block


def web_searches(output: Any) -> int:
    """Web search tool calls in a Responses `output` array: each is billed per call."""
    if not isinstance(output, list):
        return 0
    return sum(1 for item in output if isinstance(item, dict) and item.get("type") == "web_search_call")


def tier_from_openai(d: Any) -> str | None:
    """The response's `service_tier` (priority, flex; `default`/`auto` are standard)."""
    return normalize_tier("openai", service_tier=as_dict(d).get("service_tier"))


def usage_from_openai(d: Any) -> Usage:
    """Map a Responses or a Chat `usage` object to the contract buckets.

    OpenAI counts cached (and, where reported, cache-write) tokens inside the input total, so the
    uncached `input_tokens` bucket is what remains; reasoning is a subset of output and stays counted there.
    """
    d = as_dict(d)
    if "prompt_tokens" in d or "completion_tokens" in d:  # Chat Completions
        total_in, out = as_int(d.get("prompt_tokens")), as_int(d.get("completion_tokens"))
        in_details = as_dict(d.get("prompt_tokens_details"))
        out_details = as_dict(d.get("completion_tokens_details"))
    else:  # Responses
        total_in, out = as_int(d.get("input_tokens")), as_int(d.get("output_tokens"))
        in_details = as_dict(d.get("input_tokens_details"))
        out_details = as_dict(d.get("output_tokens_details"))
    cached = as_int(in_details.get("cached_tokens"))
    write = as_int(in_details.get("cache_write_tokens"))
    return Usage(
        input_tokens=max(0, total_in - cached - write),
        cache_read_tokens=cached,
        cache_write_tokens=write,
        # OpenAI reports no TTL split; Usage keeps cache_write == 5m + 1h.
        cache_write_5m_tokens=write,
        output_tokens=out,
        reasoning_tokens=min(out, as_int(out_details.get("reasoning_tokens"))),
    )


def _error_fields(err: dict) -> tuple[str | None, str | None]:
    # `code` is the specific reason (rate_limit_exceeded, insufficient_quota, context_length_exceeded);
    # `type` is what Codex keys on when there is no code (usage_limit_reached).
    return as_str(err.get("code")) or as_str(err.get("type")), as_str(err.get("message"))


# -- Responses ---------------------------------------------------------------------------------------

_CREATED = b"response.created"
_COMPLETED = b"response.completed"
_INCOMPLETE = b"response.incomplete"
_FAILED = b"response.failed"
_TERMINAL = frozenset((_COMPLETED, _INCOMPLETE, _FAILED))
# The ChatGPT backend's plan windows inside a Codex stream (the same windows as its x-codex-* headers).
_RATE_LIMITS = b"codex.rate_limits"
_ERROR = b"error"


class ResponsesStreamMeter(StreamMeter):
    """Meters a streamed Responses reply (SSE). Only created, terminal and error events are parsed."""

    # OpenAI sends about one token per delta and pads deltas with a random `obfuscation` field, so bytes
    # say little; the envelope (~150 bytes with short ids, ~200 with real ones) is set high so that the
    # per-event floor dominates unless a server batches many tokens per delta.
    DELTA_ENVELOPE = 200
    ONE_TOKEN_PER_DELTA = True
    DELTA_EVENT_PREFIX = b"event: response.output_text.delta\ndata: "
    TERMINAL_MARKERS = (b"response.completed", b"response.incomplete", b"response.failed")

    def __init__(self) -> None:
        super().__init__()
        self._usage_value: Usage | None = None
        self._tier_value: str | None = None

    def _on_event(self, name: bytes | None, data: bytes | str) -> None:
        if name is None:
            name = sniff_type(data)
            if name is None:  # "type" not first: parse it (a slow path for unusual servers only)
                t = as_dict(json_loads_safe(data)).get("type")
                name = t.encode() if isinstance(t, str) else b""
        if name.endswith(b".delta"):
            self._count_delta(data)
        elif name in _TERMINAL:
            self._complete = True
            self._on_response(name, data)
        elif name == _CREATED:
            self._on_response(name, data)
        elif name == _ERROR:
            self._on_error(data)
        elif name == _RATE_LIMITS:
            self._plan = ratelimits.from_codex_event(as_dict(json_loads_safe(data))) or self._plan

    def _on_response(self, name: bytes, data: bytes | str) -> None:
        what = name.decode()
        d = json_loads_safe(data)
        if not isinstance(d, dict):
            self._note_fault(f"invalid JSON in {what}")
            if name == _FAILED:
                self._error_type = self._error_type or what
            return
        resp = as_dict(d.get("response"))
        self._model = as_str(resp.get("model")) or self._model
        self._response_id = as_str(resp.get("id")) or self._response_id
        if name == _CREATED:
            return
        usage = resp.get("usage")
        self._tier_value = tier_from_openai(resp)
        if isinstance(usage, dict):
            self._usage_value = replace(usage_from_openai(usage), web_search_requests=web_searches(resp.get("output")))
        elif name != _FAILED:  # failed may carry usage null; completed/incomplete must not
            self._note_fault(f"no usage in {what}")
        reason = as_str(as_dict(resp.get("incomplete_details")).get("reason"))
        self._stop_reason = reason or as_str(resp.get("status")) or self._stop_reason
        if name == _FAILED:
            self._error_type, self._error_message = _error_fields(as_dict(resp.get("error")))
            self._error_type = self._error_type or what

    def _on_error(self, data: bytes | str) -> None:
        d = as_dict(json_loads_safe(data))
        if isinstance(d.get("error"), dict):  # WebSocket errors nest the error object
            code, message = _error_fields(d["error"])
        else:  # the bare event's "type" is the event name, not an error class
            code, message = as_str(d.get("code")), as_str(d.get("message"))
        self._error_type = code or "error"
        self._error_message = message

    def _usage(self) -> Usage | None:
        return self._usage_value

    def _tier(self) -> str | None:
        return self._tier_value


class ResponsesFrameMeter(ResponsesStreamMeter):
    """Responses over WebSocket: each server text frame is one JSON event, no SSE framing."""

    def feed_text(self, text: str) -> bool:
        """Never raises. True for the frame that carries the terminal event (only the first time)."""
        if self._complete:
            return False
        return self._dispatch(None, text)

    def feed(self, chunk: bytes) -> bool:
        """A binary frame: also one JSON event."""
        if self._complete:
            return False
        return self._dispatch(None, chunk)


# -- Chat Completions --------------------------------------------------------------------------------

_USAGE_OBJ = (b'"usage":{', b'"usage": {')
_ERROR_OBJ = (b'"error":{', b'"error": {')
_FINISH = re.compile(rb'"finish_reason"\s*:\s*"([^"\\]*)"')


def _common_prefix_len(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _is_done(data: bytes) -> bool:
    return data == b"[DONE]" or data.strip() == b"[DONE]"


class ChatStreamMeter(StreamMeter):
    """Meters a streamed Chat Completions reply.

    A chunk is JSON-parsed only if it is the first (model, id) or contains a usage or error object; the
    substring test cannot be fooled by message text, where JSON escapes every quote.
    """

    ONE_TOKEN_PER_DELTA = True
    # Used until two content chunks have been seen: every chunk repeats id, model and fingerprint; the
    # documented example's content chunk is 289 bytes around its text.
    DELTA_ENVELOPE = 280
    TERMINAL_MARKERS = (b"data: [DONE]", b"data:[DONE]")

    def __init__(self) -> None:
        super().__init__()
        self._usage_value: Usage | None = None
        self._seen_data = False
        self._samples: list[bytes] = []
        self._tier_value: str | None = None

    def _on_event(self, name: bytes | None, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        if _is_done(data):
            self._complete = True
            return
        first = not self._seen_data
        self._seen_data = True
        if first or any(m in data for m in _USAGE_OBJ) or any(m in data for m in _ERROR_OBJ):
            self._on_parsed_chunk(data, first)
            return
        self._count_delta(data)
        if len(self._samples) < 2:
            self._samples.append(data)
        if b'"finish_reason":' in data:
            m = _FINISH.search(data)
            if m:
                self._stop_reason = m.group(1).decode(errors="replace")

    def _on_parsed_chunk(self, data: bytes, first: bool) -> None:
        d = json_loads_safe(data)
        if not isinstance(d, dict):
            self._note_fault("invalid JSON in the first chunk" if first else "invalid JSON in a usage chunk")
            return
        self._model = self._model or as_str(d.get("model"))
        self._response_id = self._response_id or as_str(d.get("id"))
        self._tier_value = tier_from_openai(d) or self._tier_value
        if isinstance(d.get("usage"), dict):
            self._usage_value = usage_from_openai(d["usage"])
        if isinstance(d.get("error"), dict):
            self._error_type, self._error_message = _error_fields(d["error"])
            self._error_type = self._error_type or "error"
        choices = d.get("choices")
        if isinstance(choices, list) and choices:  # a content chunk (usage may ride on the last one)
            choice = as_dict(choices[0])
            delta = as_dict(choice.get("delta"))
            # The first chunk usually only announces the role: counting it would add a phantom token.
            if not first or delta.get("content") or delta.get("tool_calls"):
                self._count_delta(data)
            self._stop_reason = as_str(choice.get("finish_reason")) or self._stop_reason

    def _tier(self) -> str | None:
        return self._tier_value

    def _envelope(self) -> int:
        # Consecutive content chunks differ only in their text, so their common prefix and suffix are
        # the envelope for this server, model and id length.
        if len(self._samples) < 2:
            return self.DELTA_ENVELOPE
        a, b = self._samples
        prefix = _common_prefix_len(a, b)
        return prefix + _common_prefix_len(a[prefix:][::-1], b[prefix:][::-1])

    def _usage(self) -> Usage | None:
        return self._usage_value


class ChatUsageStripper:
    """Removes the usage-only chunk that the proxy's injected `stream_options.include_usage` added.

    Many clients index `choices[0]` unconditionally, so the extra `choices: []` chunk must not reach a
    client that did not ask for it. Everything else is relayed byte for byte as soon as each event is
    complete. Usage attached to a content chunk is left alone: clients tolerate an extra key.
    """

    def __init__(self) -> None:
        self._framer = SSEFramer(raw=True)
        self._passthrough = False  # a framing failure: relay everything unchanged from then on
        self.stripped = 0

    def process(self, chunk: bytes) -> bytes:
        """The bytes to relay now for this upstream chunk."""
        if self._passthrough:
            return chunk
        try:
            pieces = self._framer.feed_raw(chunk)
        except Exception:  # SSEOverflow; the framer appends first, so its buffer holds every unsent byte
            self._passthrough = True
            return self._framer.take_rest()
        out = []
        for block, raw in pieces:
            if self._is_injected(block):
                self.stripped += 1
            else:
                out.append(raw)
        return b"".join(out)

    def flush(self) -> bytes:
        """End of stream: the bytes still held back (an unterminated final event)."""
        if self._passthrough:
            return b""
        rest = self._framer.take_rest()
        return b"" if rest and self._is_injected(rest) else rest

    @staticmethod
    def _is_injected(block: bytes) -> bool:
        if not any(m in block for m in _USAGE_OBJ):
            return False
        try:
            ev = parse_block(block)
            d = json_loads_safe(ev.data) if ev is not None else None
        except Exception:
            return False  # unsure: relay it
        return isinstance(d, dict) and d.get("choices") == [] and isinstance(d.get("usage"), dict)


# -- Non-streamed ------------------------------------------------------------------------------------


def parse_responses_json(body: bytes) -> Metered:
    """A non-streamed Responses object, or an OpenAI error body. Never raises."""
    try:
        d = json_loads_safe(body)
        if not isinstance(d, dict):
            return Metered(fault="response body is not a JSON object")
        if isinstance(d.get("error"), dict) and d.get("object") != "response":
            return _error_body(d)
        usage = d.get("usage")
        error_type, error_message = _error_fields(as_dict(d.get("error")))
        if d.get("status") == "failed":
            error_type = error_type or "response.failed"
        reason = as_str(as_dict(d.get("incomplete_details")).get("reason"))
        return Metered(
            usage=(
                replace(usage_from_openai(usage), web_search_requests=web_searches(d.get("output")))
                if isinstance(usage, dict)
                else None
            ),
            model=as_str(d.get("model")),
            response_id=as_str(d.get("id")),
            complete=True,
            tier=tier_from_openai(d),
            error_type=error_type,
            error_message=error_message,
            stop_reason=reason or as_str(d.get("status")),
            fault=None if isinstance(usage, dict) or error_type else "no usage in response body",
        )
    except Exception as exc:
        return Metered(fault=fault_reason("responses body", exc))


def parse_chat_json(body: bytes) -> Metered:
    """A non-streamed chat.completion, or an OpenAI error body. Never raises."""
    try:
        d = json_loads_safe(body)
        if not isinstance(d, dict):
            return Metered(fault="response body is not a JSON object")
        if isinstance(d.get("error"), dict):
            return _error_body(d)
        usage = d.get("usage")
        choices = d.get("choices")
        first = as_dict(choices[0]) if isinstance(choices, list) and choices else {}
        return Metered(
            usage=usage_from_openai(usage) if isinstance(usage, dict) else None,
            model=as_str(d.get("model")),
            response_id=as_str(d.get("id")),
            complete=True,
            stop_reason=as_str(first.get("finish_reason")),
            tier=tier_from_openai(d),
            fault=None if isinstance(usage, dict) else "no usage in response body",
        )
    except Exception as exc:
        return Metered(fault=fault_reason("chat body", exc))


def _error_body(d: dict) -> Metered:
    error_type, message = _error_fields(d["error"])
    return Metered(complete=True, error_type=error_type or "error", error_message=message)
