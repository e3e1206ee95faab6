"""Anthropic Messages: usage from streamed (SSE) and non-streamed responses.

Stream grammar (wire-protocols.md 5.1): message_start → content blocks → message_delta+ → message_stop,
with `ping` anywhere and an `error` event possible after HTTP 200.
"""

from __future__ import annotations

from typing import Any

from agentmeter.core.models import Metered, Usage
from agentmeter.pricing.tiers import normalize_tier
from agentmeter.providers.base import (
    StreamMeter,
    as_dict,
    as_int,
    as_str,
    fault_reason,
    json_loads_safe,
    sniff_type,
)

_CONTENT_BLOCK_DELTA = b"content_block_delta"
_MESSAGE_START = b"message_start"
_MESSAGE_DELTA = b"message_delta"
_MESSAGE_STOP = b"message_stop"
_ERROR = b"error"


def usage_from_anthropic(d: Any) -> Usage:
    """Map an Anthropic `usage` object to the contract buckets; missing or null fields count 0."""
    d = as_dict(d)
    write = as_int(d.get("cache_creation_input_tokens"))
    split = d.get("cache_creation")
    if isinstance(split, dict):
        w1h = as_int(split.get("ephemeral_1h_input_tokens"))
        if not write:
            write = as_int(split.get("ephemeral_5m_input_tokens")) + w1h
        # The total wins if the two disagree (a message_delta may update the total without the split);
        # 5m takes the remainder so that 5m + 1h == cache_write always holds.
        w1h = min(w1h, write)
    else:
        # Responses without the split predate 1-hour caching, when every write was a 5-minute write.
        w1h = 0
    return Usage(
        input_tokens=as_int(d.get("input_tokens")),
        cache_read_tokens=as_int(d.get("cache_read_input_tokens")),
        cache_write_tokens=write,
        cache_write_5m_tokens=write - w1h,
        cache_write_1h_tokens=w1h,
        output_tokens=as_int(d.get("output_tokens")),
        # Extended thinking is billed as output; the split is reported where the API gives it.
        reasoning_tokens=min(
            as_int(d.get("output_tokens")), as_int(as_dict(d.get("output_tokens_details")).get("thinking_tokens"))
        ),
        web_search_requests=as_int(as_dict(d.get("server_tool_use")).get("web_search_requests")),
    )


def tier_from_anthropic(d: Any) -> str | None:
    """`usage.speed == "fast"` (fast mode) or `usage.service_tier` (batch); None is standard."""
    d = as_dict(d)
    return normalize_tier("anthropic", service_tier=d.get("service_tier"), speed=d.get("speed"))


def _merge_usage(into: dict, usage: Any) -> None:
    # message_delta usage is cumulative: replace keys, never add. A null value is treated as absent so a
    # server that nulls fields in the delta does not erase what message_start reported.
    for k, v in as_dict(usage).items():
        if v is not None:
            into[k] = v


class AnthropicStreamMeter(StreamMeter):
    """Meters a streamed Messages response.

    Only message_start, message_delta and error are JSON-parsed; content_block_delta events are counted
    by size for the cut-short estimate.
    """

    # `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}` is 80 bytes
    # (input_json_delta 94, thinking_delta 88); text deltas dominate.
    DELTA_ENVELOPE = 80
    DELTA_EVENT_PREFIX = b"event: content_block_delta\ndata: "
    TERMINAL_MARKERS = (b"event: message_stop", b"event:message_stop", b"event: error", b"event:error")
    # The stream ends at `message_stop` or `error`, named on the event line or (a stream without event lines)
    # as the data's "type", which _sniff reads only when spelled out.
    ENDING_BYTES = (b"message_stop", b"error")

    def __init__(self) -> None:
        super().__init__()
        self._usage_raw: dict | None = None

    def _on_event(self, name: bytes | None, data: bytes | str) -> None:
        if name is None:
            name = self._sniff(data)
        if name == _CONTENT_BLOCK_DELTA:
            self._count_delta(data)
        elif name == _MESSAGE_DELTA:
            self._on_message_delta(data)
        elif name == _MESSAGE_START:
            self._on_message_start(data)
        elif name == _MESSAGE_STOP:
            self._complete = True
        elif name == _ERROR:
            # The stream ends after an error event, so it is terminal too.
            self._complete = True
            self._on_error(data)
        # ping, content_block_start/stop and event types added later are ignored.

    @staticmethod
    def _sniff(data: bytes | str) -> bytes | None:
        """Event type for a stream without `event:` lines."""
        name = sniff_type(data)
        if name is not None:
            return name
        # "type" was not the first key: parse only events that can carry usage or an error.
        raw = data.encode() if isinstance(data, str) else data
        if b'"type":"message_' in raw or b'"type": "message_' in raw or b'"error"' in raw:
            t = as_dict(json_loads_safe(raw)).get("type")
            return t.encode() if isinstance(t, str) else None
        return None

    def _load(self, data: bytes | str, what: str) -> dict | None:
        d = json_loads_safe(data)
        if not isinstance(d, dict):
            self._note_fault(f"invalid JSON in {what}")
            return None
        return d

    def _on_message_start(self, data: bytes | str) -> None:
        d = self._load(data, "message_start")
        if d is None:
            return
        msg = as_dict(d.get("message"))
        self._model = as_str(msg.get("model")) or self._model
        self._response_id = as_str(msg.get("id")) or self._response_id
        if isinstance(msg.get("usage"), dict):
            self._usage_raw = {}
            _merge_usage(self._usage_raw, msg["usage"])

    def _on_message_delta(self, data: bytes | str) -> None:
        d = self._load(data, "message_delta")
        if d is None:
            return
        stop = as_str(as_dict(d.get("delta")).get("stop_reason"))
        if stop:
            self._stop_reason = stop
        if isinstance(d.get("usage"), dict):
            if self._usage_raw is None:
                self._usage_raw = {}
            _merge_usage(self._usage_raw, d["usage"])

    def _on_error(self, data: bytes | str) -> None:
        d = self._load(data, "error event")
        err = as_dict(as_dict(d).get("error"))
        self._error_type = as_str(err.get("type")) or "error"
        self._error_message = as_str(err.get("message"))

    def _usage(self) -> Usage | None:
        return None if self._usage_raw is None else usage_from_anthropic(self._usage_raw)

    def _tier(self) -> str | None:
        return tier_from_anthropic(self._usage_raw)


def parse_anthropic_json(body: bytes) -> Metered:
    """A non-streamed Messages response, or an error body `{"type":"error","error":{...}}`. Never raises."""
    try:
        return _parse_body(body)
    except Exception as exc:
        return Metered(fault=fault_reason("anthropic body", exc))


def _parse_body(body: bytes) -> Metered:
    d = json_loads_safe(body)
    if not isinstance(d, dict):
        return Metered(fault="response body is not a JSON object")
    if d.get("type") == "error" or isinstance(d.get("error"), dict):
        err = as_dict(d.get("error"))
        return Metered(
            complete=True,
            error_type=as_str(err.get("type")) or "error",
            error_message=as_str(err.get("message")),
        )
    usage = d.get("usage")
    return Metered(
        usage=usage_from_anthropic(usage) if isinstance(usage, dict) else None,
        model=as_str(d.get("model")),
        response_id=as_str(d.get("id")),
        complete=True,
        stop_reason=as_str(d.get("stop_reason")),
        fault=None if isinstance(usage, dict) else "no usage in response body",
        tier=tier_from_anthropic(usage),
    )
