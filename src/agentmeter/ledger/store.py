"""The SQLite ledger: requests, sessions and the daily rollup kept in the same transaction.

One writer: the daemon owns a `LedgerWriter` thread that batches whatever is queued into one
transaction (a WAL commit costs well under a millisecond) and resolves a future per item, so the proxy
can await the commit of a row before it relays the terminal event. The CLI opens the file read-only.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import fields
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from ..models import RequestRecord, Usage
from ..paths import ensure_private_dir, make_private
from .schema import SCHEMA_VERSION, TOKEN_COLUMNS

_RECORD_COLUMNS = [f.name for f in fields(RequestRecord) if f.name != "usage"]
_ROLLUP_SUMS = (*TOKEN_COLUMNS, "cost_usd")


def local_day(ms: int, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).astimezone(tz).date().isoformat()


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
    else:
        ensure_private_dir(path.parent)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, timeout=5, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (SIGKILL); only power loss can drop the last commit.
        conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class Ledger:
    """All SQL lives here. Construct with `open_ledger`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, tz: tzinfo | None = None) -> None:
        self.conn = conn
        self.path = path
        self.tz = tz

    # -- writes -----------------------------------------------------------------------------------

    def migrate(self) -> None:
        from sqlite_utils import Database

        from .migrations import migrations

        db = Database(self.conn)
        migrations.apply(db)
        if not migrations.pending(db):
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        for suffix in ("", "-wal", "-shm"):
            make_private(Path(str(self.path) + suffix))

    def insert_request(self, rec: RequestRecord) -> bool:
        """Insert one row and fold it into the rollup. A request id seen before adds nothing."""
        row = {c: getattr(rec, c) for c in _RECORD_COLUMNS}
        row.update(rec.usage.as_dict())
        for flag in ("stream", "unpriced", "partial", "unmetered", "subscription"):
            row[flag] = int(bool(row[flag]))
        for flag in ("turn_boundary", "pinned"):
            row[flag] = None if row[flag] is None else int(bool(row[flag]))
        row["started_at"] = rec.started_at_ms
        del row["started_at_ms"]
        row["day"] = local_day(rec.started_at_ms, self.tz)
        cols = list(row)
        cur = self.conn.execute(
            f"INSERT OR IGNORE INTO requests ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [row[c] for c in cols],
        )
        if cur.rowcount != 1:
            return False
        self._fold(row, +1)
        return True

    def _fold(self, row: dict[str, Any], sign: int) -> None:
        if row["status"] in ("refused", "passthrough") and not any(row[c] for c in TOKEN_COLUMNS):
            return
        key = (
            row["day"], row["agent"] or "", row["provider"], row["model_used"] or row["model_requested"] or "",
            row["repo"] or "", int(bool(row["subscription"])),
        )
        sums = [sign * (row[c] or 0) for c in _ROLLUP_SUMS]
        sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in _ROLLUP_SUMS)
        self.conn.execute(
            f"""INSERT INTO usage_daily (day, agent, provider, model, repo, subscription, requests,
                {", ".join(_ROLLUP_SUMS)}, unpriced_requests)
                VALUES (?, ?, ?, ?, ?, ?, ?, {", ".join("?" * len(_ROLLUP_SUMS))}, ?)
                ON CONFLICT DO UPDATE SET requests = requests + excluded.requests, {sets},
                unpriced_requests = unpriced_requests + excluded.unpriced_requests""",
            [*key, sign, *sums, sign * int(bool(row["unpriced"]))],
        )

    def create_session(self, row: dict[str, Any]) -> None:
        row = dict(row)
        row["tags"] = json.dumps(row.get("tags") or {}, sort_keys=True)
        cols = list(row)
        self.conn.execute(
            f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [row[c] for c in cols],
        )

    def end_session(self, session_id: str, ended_at_ms: int, exit_code: int | None) -> bool:
        cur = self.conn.execute(
            "UPDATE sessions SET ended_at = ?, exit_code = ? WHERE id = ?", (ended_at_ms, exit_code, session_id)
        )
        return cur.rowcount == 1

    def note_agent_session(self, session_id: str, agent_session_id: str) -> None:
        self.conn.execute(
            "UPDATE sessions SET agent_session_id = ? WHERE id = ? AND agent_session_id IS NULL",
            (agent_session_id, session_id),
        )

    def reprice(self, price: Callable[[dict[str, Any]], tuple[float | None, str, str | None, str | None, bool]]) -> int:
        """Recompute every row's cost from its tokens, then rebuild the rollup. Returns rows changed."""
        changed = 0
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            rows = self.conn.execute(
                f"SELECT request_id, provider, model_requested, model_used, cost_usd, price_source, "
                f"{', '.join(TOKEN_COLUMNS)} FROM requests WHERE status NOT IN ('refused', 'passthrough')"
            ).fetchall()
            for r in rows:
                usd, source, model, version, unpriced = price(dict(r))
                if usd != r["cost_usd"] or source != r["price_source"]:
                    changed += 1
                self.conn.execute(
                    "UPDATE requests SET cost_usd = ?, price_source = ?, price_model = ?, price_version = ?, "
                    "unpriced = ? WHERE request_id = ?",
                    (usd, source, model, version, int(unpriced), r["request_id"]),
                )
            self._rebuild_rollup()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return changed

    def _rebuild_rollup(self) -> None:
        self.conn.execute("DELETE FROM usage_daily")
        for row in self.conn.execute("SELECT * FROM requests").fetchall():
            self._fold(dict(row), +1)

    # -- reads ------------------------------------------------------------------------------------

    def session_by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM sessions WHERE token_hash = ?", (token_hash,)).fetchone()
        return dict(row) if row else None

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            rows = self.conn.execute(
                "SELECT * FROM sessions WHERE id LIKE ? LIMIT 2", (session_id + "%",)
            ).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return dict(row) if row else None

    def sessions(self, since_ms: int | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
        sums = ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in TOKEN_COLUMNS)
        where, args = [], []
        if since_ms is not None:
            where.append("s.started_at >= ?")
            args.append(since_ms)
        if session_id is not None:
            where.append("s.id = ?")
            args.append(session_id)
        sql = f"""
            SELECT s.*, COUNT(r.request_id) AS requests, {sums},
                   COALESCE(SUM(r.cost_usd), 0) AS cost_usd,
                   COALESCE(SUM(r.decision = 'downgrade'), 0) AS downgrades,
                   COALESCE(SUM(r.status IN ('error', 'partial')), 0) AS retries,
                   COALESCE(SUM(r.decision = 'refuse'), 0) AS refusals,
                   COALESCE(SUM(r.unpriced), 0) AS unpriced_requests,
                   GROUP_CONCAT(DISTINCT r.model_used) AS models
            FROM sessions s LEFT JOIN requests r ON r.session_id = s.id
            {"WHERE " + " AND ".join(where) if where else ""}
            GROUP BY s.id ORDER BY s.started_at DESC"""
        return [dict(r) for r in self.conn.execute(sql, args).fetchall()]

    def session_requests(self, session_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM requests WHERE session_id = ? ORDER BY started_at, rowid", (session_id,)
        ).fetchall()
        return [dict(r) for r in rows]

    def request(self, request_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return dict(row) if row else None

    def rollup(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM usage_daily ORDER BY day").fetchall()]

    def totals_from_requests(self) -> dict[str, Any]:
        sums = ", ".join(f"COALESCE(SUM({c}), 0) AS {c}" for c in _ROLLUP_SUMS)
        return dict(self.conn.execute(f"SELECT COUNT(*) AS requests, {sums} FROM requests").fetchone())

    # -- budgets ----------------------------------------------------------------------------------

    def window_spend(self, first_day: str, last_day: str, agent: str | None = None) -> tuple[float, int]:
        """USD and tokens (all buckets) in a calendar window, from the rollup."""
        sql = ("SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens + cache_read_tokens + "
               "cache_write_tokens + output_tokens), 0) FROM usage_daily WHERE day BETWEEN ? AND ?")
        args: list = [first_day, last_day]
        if agent is not None:
            sql += " AND agent = ?"
            args.append(agent)
        usd, tokens = self.conn.execute(sql, args).fetchone()
        return float(usd), int(tokens)

    def session_spend(self, session_id: str) -> tuple[float, int]:
        usd, tokens = self.conn.execute(
            "SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM(input_tokens + cache_read_tokens + cache_write_tokens"
            " + output_tokens), 0) FROM requests WHERE session_id = ?", (session_id,)).fetchone()
        return float(usd), int(tokens)

    def alert_keys(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT key FROM alerts")}

    def insert_alert(self, row: dict[str, Any]) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO alerts (key, window, threshold, spent_usd, cap_usd, sent_at, channels) "
            "VALUES (:key, :window, :threshold, :spent_usd, :cap_usd, :sent_at, :channels)", row)
        return cur.rowcount == 1

    def alerts_since(self, since_ms: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM alerts WHERE sent_at >= ? ORDER BY sent_at", (since_ms,))
        return [dict(r) for r in rows]

    def add_override(self, kind: str, created_ms: int, until_ms: int | None, detail: str) -> None:
        self.conn.execute("INSERT INTO overrides (kind, created_at, until_at, detail) VALUES (?, ?, ?, ?)",
                          (kind, created_ms, until_ms, detail))

    def snoozed_until(self, now_ms: int) -> int | None:
        """The latest snooze decides (`snooze off` records one that ends at once)."""
        row = self.conn.execute("SELECT until_at FROM overrides WHERE kind = 'snooze' "
                                "ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
        return row[0] if row and row[0] and row[0] > now_ms else None

    def replay_rows(self, since_ms: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT r.*, s.budget_usd AS session_budget_usd FROM requests r LEFT JOIN sessions s "
            "ON s.id = r.session_id WHERE r.started_at >= ? ORDER BY r.started_at, r.rowid", (since_ms,))
        return [dict(r) for r in rows]

    def snoozes(self) -> list[tuple[int, int]]:
        """Snooze intervals [from, until); a later snooze (or `off`) cuts the one before it short."""
        rows = self.conn.execute("SELECT created_at, until_at FROM overrides WHERE kind = 'snooze' "
                                 "AND until_at IS NOT NULL ORDER BY created_at, id").fetchall()
        out = []
        for i, (start, until) in enumerate(rows):
            end = min(until, rows[i + 1][0]) if i + 1 < len(rows) else until
            if end > start:
                out.append((int(start), int(end)))
        return out

    def close(self) -> None:
        self.conn.close()


class _Inserted:
    __slots__ = ("rec",)

    def __init__(self, rec: RequestRecord) -> None:
        self.rec = rec


def usage_of(row: dict[str, Any]) -> Usage:
    return Usage(**{c: int(row.get(c) or 0) for c in TOKEN_COLUMNS})


def open_ledger(path: Path, *, readonly: bool = False, tz: tzinfo | None = None) -> Ledger:
    if readonly and not path.exists():
        # Nothing recorded yet: an empty, migrated ledger in memory answers every read.
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        conn.row_factory = sqlite3.Row
        ledger = Ledger(conn, path, tz)
        ledger.migrate()
        return ledger
    if readonly and _pending(path):
        # A ledger from an older version: bring its schema up to date once (a short write), then read.
        open_ledger(path, tz=tz).close()
    ledger = Ledger(_connect(path, readonly), path, tz)
    if not readonly:
        ledger.migrate()
    return ledger


def _pending(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return True
    return version < SCHEMA_VERSION


_STOP = object()


def _tokens(rec: RequestRecord) -> int:
    u = rec.usage
    return u.input_tokens + u.cache_read_tokens + u.cache_write_tokens + u.output_tokens


class SpendTotals:
    """Committed spend per local day (overall and per agent) and per session, kept in memory for the
    budget check. The writer adds each committed row while holding `lock` across its commit; a day is
    loaded from the rollup under the same lock the first time it is asked for, so a row is never
    counted twice or missed. Reads of loaded entries take no lock (tuple swaps are atomic)."""

    def __init__(self, tz: tzinfo | None) -> None:
        self.tz = tz
        self.lock = threading.Lock()
        self._days: dict[tuple[str, str], tuple[float, int]] = {}
        self._sessions: dict[str, tuple[float, int]] = {}

    def add(self, rec: RequestRecord) -> None:
        """Called by the writer with `lock` held, right after the commit."""
        usd, tokens = rec.cost_usd or 0.0, _tokens(rec)
        if not usd and not tokens:
            return
        day = local_day(rec.started_at_ms, self.tz)
        for key in ((day, "*"), (day, rec.agent or "")):
            cur = self._days.get(key)
            if cur is not None:
                self._days[key] = (cur[0] + usd, cur[1] + tokens)
        if rec.session_id in self._sessions:
            cur = self._sessions[rec.session_id]
            self._sessions[rec.session_id] = (cur[0] + usd, cur[1] + tokens)

    def day(self, reader: Ledger, day: str, agent: str = "*") -> tuple[float, int]:
        got = self._days.get((day, agent))
        if got is None:
            with self.lock:
                got = self._days.get((day, agent))
                if got is None:
                    got = reader.window_spend(day, day, None if agent == "*" else agent)
                    self._days[(day, agent)] = got
        return got

    def session(self, reader: Ledger, session_id: str) -> tuple[float, int]:
        got = self._sessions.get(session_id)
        if got is None:
            with self.lock:
                got = self._sessions.get(session_id)
                if got is None:
                    got = reader.session_spend(session_id)
                    self._sessions[session_id] = got
        return got

    def forget(self) -> None:
        """After a bulk change (reprice, import): reload lazily from the ledger."""
        with self.lock:
            self._days.clear()
            self._sessions.clear()


class LedgerWriter:
    """The one writer thread. `submit(fn)` runs `fn(ledger)` inside the next batch's transaction."""

    def __init__(self, path: Path, tz: tzinfo | None = None, max_batch: int = 500,
                 totals: SpendTotals | None = None) -> None:
        self.path = path
        self.tz = tz
        self.totals = totals
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="agentmeter-ledger", daemon=True)
        self.batches = 0
        self.rows = 0

    def start(self) -> LedgerWriter:
        self._thread.start()
        self._ready.wait()
        if self._error:
            raise self._error
        return self

    def submit(self, fn: Callable[[Ledger], Any]) -> Future:
        fut: Future = Future()
        self._queue.put((fn, fut))
        return fut

    def record(self, rec: RequestRecord, prepare: Callable[[RequestRecord], RequestRecord] | None = None) -> Future:
        """Insert a request row (after `prepare`, e.g. pricing, runs on this thread). The future's result is
        the row as stored, or None if its request id was already there."""

        def insert(lg: Ledger):
            final = prepare(rec) if prepare else rec
            return _Inserted(final) if lg.insert_request(final) else None

        return self.submit(insert)

    def close(self, timeout: float = 10) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            ledger = open_ledger(self.path, tz=self.tz)
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                batch = [item]
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        self._execute(ledger, batch)
                        return
                    batch.append(nxt)
                self._execute(ledger, batch)
        finally:
            ledger.close()

    def _execute(self, ledger: Ledger, batch: Iterable[tuple[Callable, Future]]) -> None:
        results: list[tuple[Future, Any, BaseException | None]] = []
        conn = ledger.conn
        lock = self.totals.lock if self.totals is not None else contextlib.nullcontext()
        with lock:
            results = self._transaction(conn, ledger, batch)
        for fut, value, exc in results:
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(value.rec if isinstance(value, _Inserted) else value)

    def _transaction(self, conn, ledger: Ledger, batch) -> list:
        results: list[tuple[Future, Any, BaseException | None]] = []
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
                    conn.execute("ROLLBACK TO item")
                    conn.execute("RELEASE item")
                    results.append((fut, None, exc))
            conn.execute("COMMIT")
            self.batches += 1
            self.rows += len(results)
        except Exception as exc:  # the commit itself failed (disk full, I/O error)
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            return [(fut, None, exc) for _, fut in batch]
        if self.totals is not None:
            for _fut, value, _exc in results:
                if isinstance(value, _Inserted):
                    self.totals.add(value.rec)
        return results
