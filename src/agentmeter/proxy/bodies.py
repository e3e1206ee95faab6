"""Request bodies under a memory bound, decoded off the event loop.

Issue 14.9 measured two ways a body could hurt everyone else on the daemon: eight parallel 60 MiB bodies
took it to 1.2 GB (each was held as chunks, joined into a copy, decoded into another), and a 3.9 KB zstd
body that inflates to 120 MiB stalled another session's stream for 0.66 s (decoded on the event loop).

- A body over LARGE_BODY takes its whole size from a daemon-wide byte budget (BODY_BUDGET) before it is
  read, in one step, so no request ever holds part of the budget while waiting for more (no deadlock), and
  the bytes of large bodies held at once stay bounded. Bodies under LARGE_BODY (nearly every agent turn)
  never wait. The budget is returned as soon as the body has been sent upstream.
- A body with a known length is read into one preallocated buffer: no chunk list, no join copy.
- Decoding a compressed body, and reading the facts of a large one, runs on a small thread pool
  (DECODE_THREADS at a time), never on the event loop; the inflated size read is capped by MAX_DECODED.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..providers.request import decode_body, read_body

MAX_BODY = 64 * 1024 * 1024
LARGE_BODY = 1 << 20
BODY_BUDGET = 2 * MAX_BODY
DECODE_THREADS = 2


class BodyGate:
    """One per daemon: the byte budget for large bodies and the pool that decodes them."""

    def __init__(self, budget: int = BODY_BUDGET, threads: int = DECODE_THREADS) -> None:
        self.budget = budget
        self.held = 0
        self.peak = 0  # the most bytes of large bodies held at once, for tests and `proxy status`
        self._waiters: deque[tuple[int, asyncio.Future]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="agentmeter-decode")
        self._threads = threads
        self._decoding: asyncio.Semaphore | None = None

    def _fits(self, n: int) -> bool:
        return self.held + n <= self.budget or self.held == 0  # one body over the budget still goes alone

    async def acquire(self, n: int) -> None:
        """Take n bytes of the budget, waiting (first come, first served) until they are free."""
        if not self._waiters and self._fits(n):
            self.held += n
            self.peak = max(self.peak, self.held)
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((n, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(n)  # granted just as the request was cancelled: give it back
            raise

    def release(self, n: int) -> None:
        if n <= 0:
            return
        self.held -= n
        while self._waiters:
            need, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if not self._fits(need):
                break
            self._waiters.popleft()
            self.held += need
            self.peak = max(self.peak, self.held)
            fut.set_result(None)

    async def read(self, request) -> tuple[bytes | bytearray, int] | None:
        """(body, bytes held from the budget), or None when the body is over MAX_BODY."""
        length = request.content_length
        if length is not None and length > MAX_BODY:
            return None
        if length is not None and length > LARGE_BODY:
            await self.acquire(length)
            buf = bytearray(length)
            pos = 0
            try:
                while chunk := await request.content.readany():
                    end = pos + len(chunk)
                    if end > length:
                        raise ValueError("more bytes than Content-Length")
                    buf[pos:end] = chunk
                    pos = end
            except BaseException:
                self.release(length)
                raise
            if pos != length:
                del buf[pos:]
            return buf, length
        chunks: list[bytes] = []
        size = held = 0
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > MAX_BODY:
                self.release(held)
                return None
            if size > LARGE_BODY and not held:
                held = MAX_BODY  # a chunked body of unknown length: take the most it may become, once
                await self.acquire(held)
            chunks.append(chunk)
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), held

    async def facts(self, body, content_encoding: str | None):
        """(plain bytes, BodyFacts) — off the event loop when the body is compressed or large."""
        enc = (content_encoding or "").strip().lower()
        if enc in ("", "identity") and len(body) <= LARGE_BODY:
            return body, (read_body(body) if body else None)
        if self._decoding is None:
            self._decoding = asyncio.Semaphore(self._threads)
        async with self._decoding:
            return await asyncio.get_running_loop().run_in_executor(self._pool, _decode_and_read, body, enc)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _decode_and_read(body, enc: str):
    plain = decode_body(body, enc)
    return plain, (read_body(plain) if plain else None)
