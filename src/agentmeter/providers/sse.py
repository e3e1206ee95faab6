"""Incremental Server-Sent Events framing over bytes (the WHATWG `text/event-stream` grammar).

Sans-io and hot-path code: the proxy hands every upstream chunk to a framer before relaying it, so the
framer works on bytes (never decoding the stream — a chunk may end inside a UTF-8 sequence), only looks
at the bytes a chunk added, and keeps just the current unfinished event buffered.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# A blank line is a line terminator directly followed by another one. The atomic groups stop the regex
# from reading one CRLF as CR + LF, i.e. as a line end followed by a blank line.
_BLANK_LINE = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")
_EOL = re.compile(rb"\r\n|\r|\n")
_CR = 0x0D
_COLON = 0x3A

# An upstream that never sends a blank line (an HTML page served as an event stream) must not grow the
# buffer forever. Responses' terminal event repeats the whole output (generated images are base64), so
# the bound is generous.
MAX_EVENT_BYTES = 64 * 1024 * 1024


class SSEOverflow(ValueError):
    """One event grew past MAX_EVENT_BYTES without a terminating blank line."""


class SSEEvent(NamedTuple):
    event: bytes | None  # the `event:` field; None when the event had no `event:` line
    data: bytes  # the `data:` lines joined with b"\n"


def parse_block(block: bytes, crlf: bool = True) -> SSEEvent | None:
    """Parse the lines of one event (without its terminating blank line).

    Returns None when the block has no `data:` line: WHATWG dispatches nothing for an empty data buffer
    (comment-only keep-alives, stray blank lines). `id:`, `retry:` and unknown fields are ignored.
    """
    event = None
    data = None
    for line in _EOL.split(block) if crlf else block.split(b"\n"):
        if not line or line[0] == _COLON:
            continue
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            if data is None:
                data = [value]
            else:
                data.append(value)
        elif name == b"event":
            event = value
    if data is None:
        return None
    return SSEEvent(event, data[0] if len(data) == 1 else b"\n".join(data))


class SSEFramer:
    """Turns a byte stream into SSE events, whatever the chunk boundaries.

    `feed()` returns the events completed by a chunk. At end of stream, `flush()` returns the last event
    if it lacked its blank line: WHATWG says not to dispatch it, but the meter wants to know the stream
    was cut mid-event.

    With `raw=True` use `feed_raw()`, which returns each complete block with its exact bytes so the
    stream can be relayed byte for byte minus some events (ChatUsageStripper).
    """

    __slots__ = ("_buf", "_cr", "_raw", "_skip_lf")

    def __init__(self, *, raw: bool = False) -> None:
        self._buf = bytearray()
        # Once a CR shows up the stream uses CRLF or CR framing: leave the LF-only fast path for good.
        self._cr = False
        # The last blank line ended in a CR at the end of a chunk; an LF opening the next chunk is the
        # other half of that CRLF, not another line.
        self._skip_lf = False
        self._raw = raw

    @property
    def idle(self) -> bool:
        """Between events of an LF-framed stream: nothing buffered, no CR seen, no LF to skip."""
        return not self._buf and not self._cr and not self._skip_lf

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished event held back."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by this chunk, in order."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if not chunk:
            return []
        events = []
        blocks = self._cut(chunk)
        crlf = self._cr
        for block in blocks:
            ev = parse_block(block, crlf)
            if ev is not None:
                events.append(ev)
        return events

    def feed_raw(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """`(block, raw)` for each complete block; the raws concatenate to exactly the bytes consumed.

        A block is cut only once the byte after its final CR is known, so a CRLF split across chunks
        stays inside one raw.
        """
        if not chunk:
            return []
        return self._cut(chunk)

    def flush(self) -> SSEEvent | None:
        """End of stream: the unterminated final event (not to be dispatched), and reset the buffer."""
        rest = self.take_rest()
        return parse_block(rest) if rest else None

    def take_rest(self) -> bytes:
        """End of stream: the raw bytes still buffered, and reset the buffer."""
        rest = bytes(self._buf)
        self._buf.clear()
        self._skip_lf = False
        return rest

    def _cut(self, chunk: bytes) -> list:
        """Append `chunk`; remove and return the complete blocks (with their raw bytes in raw mode)."""
        buf = self._buf
        old = len(buf)
        buf += chunk
        if not self._cr and b"\r" not in chunk:
            # Fast path (what the providers send): events end at b"\n\n". Only the new bytes, plus one
            # before them, can hold a terminator we have not seen yet.
            end = buf.rfind(b"\n\n", max(0, old - 1))
            if end < 0:
                return self._check_size()
            complete = bytes(buf[:end])
            del buf[: end + 2]
            blocks = complete.split(b"\n\n")
            if self._raw:
                return [(b, b + b"\n\n") for b in blocks]
            return blocks
        self._cr = True
        out = []
        pos = 0
        n = len(buf)
        # A blank-line pair is at most 4 bytes and the buffer held none before this chunk.
        for m in _BLANK_LINE.finditer(buf, max(0, old - 4)):
            end = m.end()
            if end == n and buf[end - 1] == _CR:
                if self._raw:
                    break  # wait for the next byte: an LF would belong to this block's raw bytes
                self._skip_lf = True
            block = bytes(buf[pos : m.start()])
            out.append((block, bytes(buf[pos:end])) if self._raw else block)
            pos = end
        if pos:
            del buf[:pos]
        elif not out:
            self._check_size()
        return out

    def _check_size(self) -> list:
        if len(self._buf) > MAX_EVENT_BYTES:
            raise SSEOverflow(f"SSE event larger than {MAX_EVENT_BYTES} bytes")
        return []
