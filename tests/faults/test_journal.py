"""The write-ahead journal (issue 17.5): a request is journalled before it goes upstream without anyone waiting
for the ledger's writer thread, and still: a response the agent got completely has its row before the terminal
event, and one cut off by a crash of the daemon is recorded `partial`.

The writer thread is held busy by a job queued ahead of everything (as a slow disk or a big batch would), which
is when the old design made the first byte wait (up to a second) for a journal entry queued behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import shutil
import socket
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from agentmeter.core.clock import SystemClock
from agentmeter.home.config import Config
from agentmeter.ledger import open_ledger
from agentmeter.ledger.store import CRASH_REASON

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


class HeldWriter:
    """Keeps the ledger's writer thread busy until released (at most `limit` seconds)."""

    def __init__(self, stack, limit: float = 30) -> None:
        self.gate = threading.Event()
        started = threading.Event()

        def hold(_lg):
            started.set()
            self.gate.wait(limit)

        stack.state.writer.submit(hold)
        assert started.wait(10), "the writer never ran the holding job"

    def release(self) -> None:
        self.gate.set()


class Stream:
    """One streamed Messages request in a thread, as an agent reads it: chunk by chunk."""

    def __init__(self, stack, fault: str = "ok") -> None:
        self.id = uuid.uuid4().hex
        self.first = threading.Event()
        self.done = threading.Event()
        self.body = bytearray()
        self.status: int | None = None
        u = urlsplit(stack.base("messages"))
        self._conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        self._conn.request(
            "POST",
            u.path + "/v1/messages",
            body=json.dumps(BODY),
            headers={
                "Content-Type": "application/json",
                "x-api-key": "sk-ant-test-client",
                "x-fault": fault,
                "x-test-id": self.id,
                "x-claude-code-agent-id": self.id,
            },
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            resp = self._conn.getresponse()
            self.status = resp.status
            while data := resp.read1(65536):
                self.body += data
                self.first.set()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            self.first.set()
            self.done.set()

    def close(self) -> None:
        if self._conn.sock is not None:
            with contextlib.suppress(OSError):
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(10)
        self._conn.close()


def journal_lines(ledger: Path) -> list[dict]:
    return [
        json.loads(line)
        for seg in sorted(ledger.parent.glob(ledger.name + ".journal.*"))
        for line in seg.read_text().splitlines()
        if line
    ]


def test_the_first_byte_does_not_wait_for_the_ledger_writer_and_the_row_still_precedes_the_last(faults):
    warm = Stream(faults)  # price data loaded, connections open: as in a daemon that has served a while
    assert warm.done.wait(20)
    warm.close()
    held = HeldWriter(faults)
    stream = Stream(faults, fault="stall:0.2")  # half the events, 0.2 s of quiet, the rest
    try:
        assert stream.first.wait(20) and stream.body, "no byte reached the agent while the writer was busy"
        # Journalled before it went upstream, though the writer thread has not run since.
        assert stream.id in [e["agent_id"] for e in journal_lines(faults.ledger_path)]
        # The rest arrives at the proxy after 0.2 s; its terminal event waits for the row, the row for the writer.
        assert not stream.done.wait(1.0) and b"message_stop" not in stream.body
    finally:
        held.release()
    assert stream.done.wait(20)
    stream.close()
    assert stream.status == 200 and b"message_stop" in stream.body
    row = faults.row(stream.id)
    assert row["status"] == "ok"
    # The time to first byte the proxy recorded did not include the held writer (the old design waited up to
    # its JOURNAL_WAIT_S, 1 s, for a journal entry queued behind the held job, before the first byte).
    assert row["ttft_ms"] < 1000, row["ttft_ms"]
    assert faults.state.journal.pending == 0  # its journal line is forgotten once the row is in


def test_a_crash_after_the_first_byte_leaves_a_partial_row_even_when_the_writer_never_ran(faults, tmp_path):
    """What a SIGKILL leaves on disk, taken as a copy while the response is mid-stream and the writer thread is
    held: the next daemon started on it records the request as `partial`."""
    held = HeldWriter(faults)
    stream = Stream(faults, fault="stall:3")  # half the events, then the provider goes quiet
    try:
        assert stream.first.wait(20) and stream.body
        crashed = tmp_path / "crashed"
        crashed.mkdir()
        for f in faults.ledger_path.parent.iterdir():
            if f.name.startswith(faults.ledger_path.name):
                shutil.copy(f, crashed / f.name)
    finally:
        held.release()
        stream.close()

    async def restart():
        from agentmeter.proxy.state import ProxyState

        state = ProxyState(Config(), crashed / faults.ledger_path.name, SystemClock(), control_token="ctl")
        recovered = state.writer.recovered
        await state.close()
        return recovered

    assert asyncio.run(restart()) >= 1
    lg = open_ledger(crashed / faults.ledger_path.name, readonly=True)
    try:
        rows = [dict(r) for r in lg.conn.execute("SELECT * FROM requests WHERE agent_id = ?", (stream.id,))]
    finally:
        lg.close()
    assert len(rows) == 1 and rows[0]["status"] == "partial" and rows[0]["reason"] == CRASH_REASON, rows
    assert not list(crashed.glob("*.journal.*")), "recovered journal segments are removed"


def test_journal_segments_roll_over_and_are_removed_once_their_rows_are_in(tmp_path):
    from agentmeter.core.models import RequestRecord
    from agentmeter.ledger import journal

    ledger = tmp_path / "ledger.db"
    j = journal.Journal(ledger, segment_bytes=2000)
    ids = [f"amr_{i}" for i in range(12)]
    for rid in ids:
        j.begin(
            RequestRecord(
                request_id=rid,
                session_id="s",
                started_at_ms=1,
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested="m",
                model_used=None,
                stream=True,
                status="partial",
                http_status=None,
            )
        )
    assert len(list(tmp_path.glob("ledger.db.journal.*"))) >= 3
    assert [e["request_id"] for e in journal_lines(ledger)] == ids
    for rid in ids[:-1]:
        j.done(rid)
    # Segments whose requests all have rows are gone; the one naming the unfinished request stays.
    left = [e["request_id"] for e in journal_lines(ledger)]
    assert ids[-1] in left and ids[0] not in left and len(left) <= 4, left
    j.done(ids[-1])
    j.close()
    assert not list(tmp_path.glob("ledger.db.journal.*"))


def test_a_request_with_undecodable_header_bytes_is_journalled_and_recovered(tmp_path):
    """Lone surrogates (undecodable header bytes) cannot be UTF-8: the line escapes them instead of failing the
    request, and a killed daemon's line still becomes the request's partial row."""
    from agentmeter.core.models import RequestRecord
    from agentmeter.ledger import journal

    ledger_path = tmp_path / "ledger.db"
    j = journal.Journal(ledger_path)
    j.begin(
        RequestRecord(
            request_id="amr_surrogate",
            session_id="s",
            started_at_ms=1,
            provider="anthropic",
            api="messages",
            method="POST",
            path="/v1/messages",
            model_requested="m\udc80\udcff",
            model_used=None,
            stream=True,
            status="partial",
            http_status=None,
            agent_session_id="\udcc3x",
        )
    )
    assert j.failed is None
    j.close()  # as a kill would leave it: the line is on disk, no row
    _segments, lines = journal.leftover(ledger_path)
    lg = open_ledger(ledger_path)
    try:
        got = lg.recover_journal(lines)
        assert [r.request_id for r in got] == ["amr_surrogate"] and got[0].status == "partial"
        assert got[0].model_requested == "m\udc80\udcff"
    finally:
        lg.close()
