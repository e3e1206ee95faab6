"""The one writer thread: batches whatever is queued into one transaction and resolves a future per item.

The proxy awaits the commit of a row before it relays the terminal event (a WAL commit costs well under
a millisecond). When the storage itself fails — disk full, I/O error, the file locked by another process
for longer than the busy timeout — request rows are not dropped: they are held in memory (bounded), the
failure is logged and shown by the health endpoint, and they are written as soon as the disk takes them
again. Relaying never waits on a failing disk: a held row's future resolves at once (with None).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError
from datetime import tzinfo
from pathlib import Path
from typing import Any

from ..core.bounds import bound_record
from ..core.models import RequestRecord, Usage
from .store import Ledger, SpendTotals, _Inserted, open_ledger

log = logging.getLogger("agentmeter.ledger")

_STOP = object()
# SQLite primary result codes that mean "the storage failed", not "this row is bad": BUSY, LOCKED,
# READONLY, IOERR, CORRUPT, FULL, CANTOPEN. The extended codes keep the primary one in the low byte.
_STORAGE_CODES = frozenset({5, 6, 8, 10, 11, 13, 14})
MAX_HELD = 20_000  # rows kept in memory while the disk refuses them (~1.5 KB each)
RETRY_S = 2.0  # how often a failing disk is tried again
LOG_EVERY_S = 60.0  # a still-failing disk is logged again this often


def storage_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and code is not None:
        return (code & 0xFF) in _STORAGE_CODES
    # Older SQLite bindings without error codes: match the messages of the same conditions.
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(
        m in text for m in ("disk is full", "disk i/o", "database is locked", "readonly", "unable to open")
    )


def corrupt(exc: BaseException) -> bool:
    """The ledger file itself is damaged (SQLITE_CORRUPT, SQLITE_NOTADB), as a read or write found it."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and (
        (code is not None and code & 0xFF in (11, 26)) or "malformed" in str(exc) or "not a database" in str(exc)
    )


def _resolve(fut: Future, value: Any = None, exc: BaseException | None = None) -> None:
    """Settle a caller's future. The caller may have given up on it (an `asyncio.wrap_future` that was
    cancelled or timed out cancels it): the work is done all the same, and the writer must not die of it."""
    if fut.done():
        return
    try:
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)
    except InvalidStateError:  # cancelled between the check and the set
        pass


class LedgerWriter:
    """`submit(fn)` runs `fn(ledger)` inside the next batch's transaction; `submit(fn, keep=True)` also
    holds it in memory and retries it if the storage fails."""

    def __init__(
        self,
        path: Path,
        tz: tzinfo | None = None,
        max_batch: int = 500,
        totals: SpendTotals | None = None,
        max_held: int = MAX_HELD,
        retry_s: float = RETRY_S,
    ) -> None:
        self.path = path
        self.tz = tz
        self.totals = totals
        self.max_batch = max_batch
        self.max_held = max_held
        self.retry_s = retry_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="agentmeter-ledger", daemon=True)
        self._held: collections.deque = collections.deque()  # items the disk refused, oldest first
        self._next_retry = 0.0
        self._last_logged = 0.0
        self.batches = 0
        self.rows = 0
        self.dropped = 0  # held items given up on (the bound was reached, or the daemon stopped)
        self.last_error: str | None = None  # the storage failure, while it lasts
        self.recovered = 0  # rows rebuilt from the in-flight journal at start

    # -- the proxy's side ---------------------------------------------------------------------------------

    def start(self) -> LedgerWriter:
        self._thread.start()
        self._ready.wait()
        if self._error:
            raise self._error
        return self

    @property
    def held(self) -> int:
        """Rows waiting in memory for the disk to take them (0 when metering is healthy)."""
        return len(self._held)

    def submit(self, fn: Callable[[Ledger], Any], *, keep: bool = False) -> Future:
        fut: Future = Future()
        self._queue.put((fn, fut, keep))
        return fut

    def record(self, rec: RequestRecord, prepare: Callable[[RequestRecord], RequestRecord] | None = None) -> Future:
        """Insert a request row (after `prepare`, e.g. pricing, runs on this thread). The future's result is
        the row as stored, or None if its request id was already there or the row is held for a failing disk."""

        def insert(lg: Ledger):
            # Bounded before pricing: an upstream's 2**62 tokens must not be priced at $69 trillion.
            final = bound_record(rec, cost=False)
            final = prepare(final) if prepare else final
            lg.conn.execute("SAVEPOINT row")
            try:
                stored = lg.insert_request(final)
                lg.conn.execute("RELEASE row")
            except Exception as exc:
                if storage_error(exc):
                    raise
                # The row itself is unstorable: keep a bare row with the reason, so the request is not
                # missing (and its journal entry does not come back as a false "agentmeter stopped" row).
                lg.conn.execute("ROLLBACK TO row")
                lg.conn.execute("RELEASE row")
                log.error("ledger: row %s could not be stored as metered: %s", rec.request_id, exc)
                final = final.with_(
                    usage=Usage(),
                    cost_usd=None,
                    status="unmetered",
                    unmetered=True,
                    reason=f"row could not be stored: {type(exc).__name__}: {exc}"[:300],
                )
                stored = lg.insert_request(final)
            return _Inserted(final) if stored else None

        return self.submit(insert, keep=True)

    def close(self, timeout: float = 10) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            ledger = open_ledger(self.path, tz=self.tz)
            self._recover(ledger)
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.retry_s if self._held else None)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    self._flush_held(ledger, final=True)
                    return
                batch = [] if item is None else [item]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)
                if self._held:
                    self._flush_held(ledger)
                if batch:
                    self._execute(ledger, batch)
                if stop:
                    self._flush_held(ledger, final=True)
                    return
        finally:
            ledger.close()

    def _recover(self, ledger: Ledger) -> None:
        conn = ledger.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = ledger.recover_inflight()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.recovered = len(rows)
        if rows:
            log.warning("%d response(s) were being relayed when the proxy last stopped; recorded as partial", len(rows))

    def _execute(self, ledger: Ledger, batch: Iterable[tuple[Callable, Future, bool]]) -> None:
        batch = list(batch)
        if self._held:
            # Rows keep their order: while older ones wait for the disk, new ones queue behind them.
            kept = [b for b in batch if b[2]]
            batch = [b for b in batch if not b[2]]
            self._hold(kept)
            if not batch:
                return
        lock = self.totals.lock if self.totals is not None else contextlib.nullcontext()
        with lock:
            results, failure = self._transaction(ledger, [(fn, fut) for fn, fut, _ in batch])
        if failure is not None:
            self._storage_failed(failure)
            self._hold([b for b in batch if b[2]])
            for _fn, fut, keep in batch:
                if not keep:
                    _resolve(fut, exc=failure)
            return
        for fut, value, exc in results:
            _resolve(fut, value.rec if isinstance(value, _Inserted) else value, exc)

    def _hold(self, items: list[tuple[Callable, Future, bool]]) -> None:
        for fn, fut, _keep in items:
            if len(self._held) >= self.max_held:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error(
                        "ledger: %d rows lost: %d already held in memory for a failing disk",
                        self.dropped,
                        self.max_held,
                    )
            else:
                self._held.append(fn)
            _resolve(fut, None)

    def _flush_held(self, ledger: Ledger, final: bool = False) -> None:
        """Write held rows, oldest first, a batch at a time, while the disk takes them."""
        now = time.monotonic()
        if not self._held or (not final and now < self._next_retry):
            return
        written = 0
        while self._held:
            chunk = [self._held[i] for i in range(min(self.max_batch, len(self._held)))]
            lock = self.totals.lock if self.totals is not None else contextlib.nullcontext()
            with lock:
                results, failure = self._transaction(ledger, [(fn, None) for fn in chunk])
            if failure is not None:
                self._storage_failed(failure)
                self._next_retry = time.monotonic() + self.retry_s
                if final:
                    self.dropped += len(self._held)
                    log.error(
                        "ledger: stopping with %d rows the disk would not take; they are lost (%s)",
                        len(self._held),
                        failure,
                    )
                return
            for _ in chunk:
                self._held.popleft()
            written += len(chunk)
            for _fut, _value, exc in results:
                if exc is not None:
                    log.error("ledger: a held row could not be written and was dropped: %s", exc)
        if self.last_error is not None:
            log.warning("ledger: the disk takes writes again; wrote %d rows held in memory", written)
        self.last_error = None

    def _storage_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        first = self.last_error is None
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._next_retry = now + self.retry_s
        if first or now - self._last_logged >= LOG_EVERY_S:
            self._last_logged = now
            log.error(
                "ledger: cannot write %s (%s); requests are still relayed, %d rows held in memory until it can",
                self.path,
                self.last_error,
                len(self._held),
            )

    def _transaction(self, ledger: Ledger, batch: list[tuple[Callable, Future | None]]):
        """(results, None), or (None, the storage error) when the transaction as a whole failed."""
        conn = ledger.conn
        results: list[tuple[Future | None, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut in batch:
                # A savepoint per item: one bad row must not roll back its neighbours.
                conn.execute("SAVEPOINT item")
                try:
                    value = fn(ledger)
                    conn.execute("RELEASE item")
                    results.append((fut, value, None))
                except Exception as exc:
                    if storage_error(exc):
                        raise  # the disk, not the row: the whole batch waits
                    conn.execute("ROLLBACK TO item")
                    conn.execute("RELEASE item")
                    results.append((fut, None, exc))
            conn.execute("COMMIT")
            self.batches += 1
            self.rows += len(results)
        except Exception as exc:
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            if not storage_error(exc):
                exc = sqlite3.OperationalError(f"ledger transaction failed: {exc}")
            return None, exc
        if self.totals is not None:
            for _fut, value, _exc in results:
                if isinstance(value, _Inserted):
                    self.totals.add(value.rec)
        return results, None
