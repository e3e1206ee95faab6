"""The write-ahead journal of requests being relayed: one line appended per request as it goes upstream.

A daemon killed while relaying a response leaves that response's line behind, and the next start records it
as `partial` (Ledger.recover_journal). The line is written with one os.write(2) on the event loop: about
20 µs, so nobody waits for the ledger's writer thread before a request goes upstream or before its first
byte goes back (issue 17.5: that wait was ~1 ms of the proxy's added time to first byte). Once write()
returns, the kernel holds the bytes: a SIGKILL of the daemon cannot lose them (a power cut can, as it can
lose the last commits of the ledger itself, which runs with synchronous=NORMAL).

The journal is a series of segment files beside the ledger (`<ledger>.journal.<n>`, 0600). A segment is
deleted once every request it names has its row committed and a newer segment has started; whatever is
left at start is recovered and removed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import msgspec

from ..core.models import RequestRecord

log = logging.getLogger("agentmeter.ledger")

SEGMENT_BYTES = 1 << 20  # a new segment after this many bytes (~1,000 requests)
# A record as one JSON object (msgspec: ~20 µs where json.dumps of its fields took ~140 µs on a loaded 2-core
# machine); recovery reads it with json.loads and keeps the row's columns.
_encode = msgspec.json.Encoder().encode


def _line(rec: RequestRecord) -> bytes:
    try:
        return _encode(rec) + b"\n"
    except UnicodeEncodeError:
        # A header or body field with undecodable bytes arrives as lone surrogates (surrogateescape), which UTF-8
        # cannot carry: json escapes them (\\udc80), and recovery's json.loads gives the same string back.
        import json

        return json.dumps(msgspec.to_builtins(rec), ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def _segments(ledger: Path) -> list[Path]:
    def number(p: Path) -> int:
        tail = p.name.rpartition(".")[2]
        return int(tail) if tail.isdigit() else -1

    found = [p for p in ledger.parent.glob(ledger.name + ".journal.*") if number(p) >= 0]
    return sorted(found, key=number)


def next_number(ledger: Path) -> int:
    """The segment number after any that exist (those are a previous daemon's, not yet recovered)."""
    segments = _segments(ledger)
    return int(segments[-1].name.rpartition(".")[2]) + 1 if segments else 0


def leftover(ledger: Path) -> tuple[list[Path], list[str]]:
    """The segments a previous daemon left, and their lines (JSON records), oldest first."""
    segments = _segments(ledger)
    lines: list[str] = []
    for seg in segments:
        try:
            text = seg.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            log.error("journal segment %s could not be read: %s", seg, exc)
            continue
        # A line cut by the kill (no newline yet) is not valid JSON: recovery skips it.
        lines += [ln for ln in text.split("\n") if ln]
    return segments, lines


class Journal:
    """Appends one line per request; forgets a segment once all its requests have their rows."""

    def __init__(self, ledger: Path, first: int = 0, segment_bytes: int = SEGMENT_BYTES) -> None:
        self._ledger = ledger
        self._segment_bytes = segment_bytes
        self._number = first
        self._fd = -1
        self._size = 0
        self._open: dict[int, int] = {}  # segment number → requests in it without a committed row
        self._where: dict[str, int] = {}  # request id → its segment number
        self.failed: str | None = None  # why the journal cannot be written (then requests go on unjournalled)
        self._start_segment()

    def _path(self, number: int) -> Path:
        return self._ledger.with_name(f"{self._ledger.name}.journal.{number}")

    def _start_segment(self) -> None:
        old = self._fd
        try:
            self._fd = os.open(self._path(self._number), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._fd = -1
            self._failed(exc)
        self._size = 0
        self._open.setdefault(self._number, 0)
        if old >= 0 and old != self._fd:
            os.close(old)

    def begin(self, rec: RequestRecord) -> None:
        """Journal a request about to be relayed. Never raises: a journal that cannot be written is logged
        (once) and shown by the health endpoint; the request is relayed all the same."""
        if self._fd < 0:
            self._start_segment()  # the directory refused the file before: try again (one open per request)
            if self._fd < 0:
                return
        try:
            line = _line(rec)
        except (TypeError, ValueError, msgspec.EncodeError) as exc:  # never stop a request for its journal line
            self._failed(exc)
            return
        try:
            os.write(self._fd, line)
        except OSError as exc:  # a full disk, say: the next request tries again
            self._failed(exc)
            return
        self.failed = None
        self._size += len(line)
        self._where[rec.request_id] = self._number
        self._open[self._number] += 1
        if self._size >= self._segment_bytes:
            self._number += 1
            self._start_segment()

    def done(self, request_id: str) -> None:
        """The request's row is committed (or held for a failing disk): its line is no longer needed."""
        number = self._where.pop(request_id, None)
        if number is None:
            return
        self._open[number] -= 1
        if self._open[number] <= 0 and number != self._number:
            del self._open[number]
            try:
                self._path(number).unlink()
            except OSError as exc:
                log.error("journal segment %s could not be removed: %s", self._path(number), exc)

    @property
    def pending(self) -> int:
        return len(self._where)

    def close(self) -> None:
        """At a clean stop: every row is committed, so no segment is needed any more."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if not self._where:
            for number in list(self._open):
                self._path(number).unlink(missing_ok=True)
            self._open.clear()

    def _failed(self, exc: Exception) -> None:
        if self.failed is None:
            log.error(
                "the request journal beside %s cannot be written (%s); requests are still relayed, but "
                "one cut off by a crash of the proxy would not be recorded",
                self._ledger,
                exc,
            )
        self.failed = f"{type(exc).__name__}: {exc}"
