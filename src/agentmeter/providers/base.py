"""What every stream meter promises the proxy: bytes in, usage out, and never an exception.

The proxy tees each upstream chunk into `feed()` before relaying it. A meter bug must not break the
agent's request (DESIGN: "metering never breaks a request"), so `feed()` catches everything and records
a short `fault` instead; the row is then written as `unmetered` with that reason.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from typing import Any

from agentmeter.core.models import Metered, Usage
from agentmeter.providers.sse import SSEFramer

# Output estimate for cut-short streams: ~4 bytes of text per token for English prose and code. Each
# meter subtracts its per-event JSON envelope first (DELTA_ENVELOPE). Rough by design; the row is flagged.
BYTES_PER_TOKEN = 4

# Both providers put "type" first in every event object; reading it with an anchored regex avoids a
# json.loads of every delta on the hot path.
_TYPE_B = re.compile(rb'\s*\{\s*"type"\s*:\s*"([^"\\]*)"')
_TYPE_S = re.compile(r'\s*\{\s*"type"\s*:\s*"([^"\\]*)"')


def json_loads_safe(data: bytes | bytearray | str) -> Any:
    """`json.loads`, or None for anything that is not valid JSON (bad UTF-8 and absurd nesting too)."""
    try:
        return json.loads(data)
    except (ValueError, TypeError, RecursionError):
        return None


def as_dict(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def as_int(x: Any) -> int:
    """A token count from JSON: missing, null, negative or non-numeric → 0."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return 0
    return max(0, int(x))


def as_str(x: Any) -> str | None:
    return x if isinstance(x, str) and x else None


def sniff_type(data: bytes | str) -> bytes | None:
    """The leading `"type"` of an event's JSON without parsing it, or None."""
    if isinstance(data, str):
        ms = _TYPE_S.match(data)
        return ms.group(1).encode() if ms else None
    m = _TYPE_B.match(data)
    return m.group(1) if m else None


def fault_reason(where: str, exc: BaseException) -> str:
    return f"{where}: {type(exc).__name__}: {exc}"[:200]


class StreamMeter(ABC):
    """Meters one streamed response from the chunks the proxy relays.

    `feed(chunk)` returns True exactly once: for the chunk that completes the terminal event, so the
    proxy can commit the ledger row before relaying that chunk. `result()` may be called at any time.
    """

    # Bytes of JSON around the text of one delta event (measured on the provider's real event shapes).
    DELTA_ENVELOPE = 0
    # OpenAI streams about one token per delta event, so the event count is a floor for the estimate.
    ONE_TOKEN_PER_DELTA = False
    # Substrings that mark the terminal event, used only after the framer itself failed.
    TERMINAL_MARKERS: tuple[bytes, ...] = ()
    # `event: <delta event>\ndata: ` of the events that make up most of a stream. A chunk that is exactly
    # one such event (how the providers write them) is counted without framing or parsing it.
    DELTA_EVENT_PREFIX: bytes | None = None
    # Bytes at least one of which a chunk must hold to complete the terminal event when it starts between
    # events (may_complete); None: not known, every chunk is metered before it is relayed.
    ENDING_BYTES: tuple[bytes, ...] | None = None

    def __init__(self) -> None:
        self._framer = SSEFramer()
        self._complete = False
        self._broken = False  # the framer failed: only watch for TERMINAL_MARKERS from here on
        self._tail = b""
        self._fault: str | None = None
        self._model: str | None = None
        self._response_id: str | None = None
        self._error_type: str | None = None
        self._error_message: str | None = None
        self._stop_reason: str | None = None
        self._delta_bytes = 0
        self._delta_events = 0
        self._plan: object | None = None  # the last plan-window reading inside the stream, if any

    def feed(self, chunk: bytes) -> bool:
        """Never raises. True when this chunk completed the terminal event (only the first time)."""
        if self._complete:
            return False
        if self._broken:
            return self._scan_markers(chunk)
        prefix = self.DELTA_EVENT_PREFIX
        if (
            prefix is not None
            and chunk.startswith(prefix)
            and chunk.endswith(b"\n\n")
            and chunk.count(b"\n") == 3
            and b"\r" not in chunk
            and self._framer.idle
        ):
            # The event line, one data line, the blank line: what the framer would make of it.
            self._delta_bytes += len(chunk) - len(prefix) - 2
            self._delta_events += 1
            return False
        try:
            events = self._framer.feed(chunk)
        except Exception as exc:
            self._note_fault(fault_reason("SSE framing", exc))
            self._broken = True
            return self._scan_markers(chunk)
        # any() stops at the terminal event: later events in the same chunk are not metered.
        return any(self._dispatch(ev.event, ev.data) for ev in events)

    def may_complete(self, chunk: bytes) -> bool:
        """False only when feeding `chunk` certainly cannot complete the terminal event, so the relay may send
        it to the agent before metering it (the terminal event itself must wait for its row). Meters that
        know their terminal events' bytes say so (ENDING_BYTES); the rest always answer True."""
        if self._complete:
            return False
        ending = self.ENDING_BYTES
        if ending is None or self._broken or not self._framer.idle:
            return True  # an event begun in an earlier chunk may be the terminal one
        return any(m in chunk for m in ending)

    @property
    def truncated_mid_event(self) -> bool:
        """The bytes so far end inside an event (meaningful once the stream has ended)."""
        return self._framer.buffered > 0

    def result(self) -> Metered:
        try:
            usage = self._usage()
        except Exception as exc:  # a bug in the usage mapping must not lose the rest of the row
            usage = None
            self._note_fault(fault_reason("usage", exc))
        finished = self._complete and usage is not None and self._error_type is None
        return Metered(
            usage=usage,
            model=self._model,
            response_id=self._response_id,
            complete=self._complete,
            error_type=self._error_type,
            error_message=self._error_message,
            estimated_output_tokens=0 if finished else self._estimate(),
            fault=self._fault,
            stop_reason=self._stop_reason,
            tier=self._tier(),
            plan=self._plan,
        )

    def _tier(self) -> str | None:
        """The tier the provider says it served the response at (`pricing.tiers.normalize_tier`)."""
        return None

    # -- for subclasses --------------------------------------------------------------------------

    @abstractmethod
    def _on_event(self, name: bytes | None, data: bytes | str) -> None:
        """Handle one event. A terminal event sets `self._complete` before anything that can fail."""

    @abstractmethod
    def _usage(self) -> Usage | None: ...

    def _dispatch(self, name: bytes | None, data: bytes | str) -> bool:
        try:
            self._on_event(name, data)
        except Exception as exc:
            self._note_fault(fault_reason(f"event {name!r}", exc))
        return self._complete

    def _note_fault(self, reason: str) -> None:
        if self._fault is None:  # the first fault explains the rest
            self._fault = reason

    def _count_delta(self, data: bytes | str) -> None:
        self._delta_bytes += len(data)
        self._delta_events += 1

    def _envelope(self) -> int:
        return self.DELTA_ENVELOPE

    def _estimate(self) -> int:
        n = self._delta_events
        if not n:
            return 0
        text = max(0, self._delta_bytes - self._envelope() * n)
        est = -(-text // BYTES_PER_TOKEN)
        return max(est, n) if self.ONE_TOKEN_PER_DELTA else est

    def _scan_markers(self, chunk: bytes) -> bool:
        window = self._tail + chunk
        self._tail = window[-64:]
        if any(m in window for m in self.TERMINAL_MARKERS):
            self._complete = True
            return True
        return False
