"""The SQLite ledger: requests, sessions and the daily rollup kept in the same transaction.

One writer: the daemon owns a `LedgerWriter` thread (writer.py) that batches whatever is queued into one
transaction (a WAL commit costs well under a millisecond) and resolves a future per item, so the proxy
can await the commit of a row before it relays the terminal event. The CLI opens the file read-only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..home.paths import ensure_private_dir, make_private
from .schema import SCHEMA_VERSION, TOKEN_COLUMNS

if TYPE_CHECKING:
    from ..core.models import RequestRecord, Usage

# The reason on a row rebuilt from the in-flight journal after the daemon died mid-response.
CRASH_REASON = "agentmeter stopped while relaying this response; usage unknown"
_ROLLUP_SUMS = (*TOKEN_COLUMNS, "cost_usd")


@cache
def _record_columns() -> tuple[str, ...]:
    # `models` is imported by the write paths only: building its dataclasses costs the read-only CLI
    # commands (`status`, `report`) a few milliseconds at every start.
    from dataclasses import fields

    from ..core.models import RequestRecord

    return tuple(f.name for f in fields(RequestRecord) if f.name != "usage")


def local_day(ms: int, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).astimezone(tz).date().isoformat()


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, check_same_thread=False)
    else:
        ensure_private_dir(path.parent, tighten=False)  # the file itself is created 0600
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
        """Insert one row and fold it into the rollup. A request id seen before adds nothing. Usage and cost
        are bounded first (core/bounds.py): no row, whoever built it, can make a sum overflow."""
        from ..core.bounds import bound_record

        rec = bound_record(rec)
        row = {c: getattr(rec, c) for c in _record_columns()}
        row.update(rec.usage.as_dict())
        for flag in ("stream", "unpriced", "partial", "unmetered", "subscription"):
            row[flag] = int(bool(row[flag]))
        for flag in ("turn_boundary", "pinned"):
            row[flag] = None if row[flag] is None else int(bool(row[flag]))
        row["started_at"] = rec.started_at_ms
        del row["started_at_ms"]
        row["day"] = local_day(rec.started_at_ms, self.tz)
        cols = list(row)
        sql = f"INSERT OR IGNORE INTO requests ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self.conn.execute("DELETE FROM inflight WHERE request_id = ?", (rec.request_id,))
        try:
            cur = self.conn.execute(sql, [row[c] for c in cols])
        except UnicodeEncodeError:  # a lone surrogate from a header or a JSON escape: keep the row, not the char
            row = _utf8(row)
            cur = self.conn.execute(sql, [row[c] for c in cols])
        if cur.rowcount != 1:
            if not self._replace_recovered(rec.request_id):
                return False
            cur = self.conn.execute(sql, [row[c] for c in cols])
        self._fold(row, +1)
        return True

    def _replace_recovered(self, request_id: str) -> bool:
        """A row the start-up recovery wrote for a response a dying daemon was still finishing: the real
        row, when it does arrive, wins."""
        old = self.conn.execute(
            "SELECT * FROM requests WHERE request_id = ? AND reason = ?", (request_id, CRASH_REASON)
        ).fetchone()
        if old is None:
            return False
        self._fold(dict(old), -1)
        self.conn.execute("DELETE FROM requests WHERE request_id = ?", (request_id,))
        return True

    def begin_request(self, rec: RequestRecord) -> None:
        """Journal a response about to be relayed (see migration m005); `insert_request` clears it."""
        fields_ = {c: getattr(rec, c) for c in _record_columns()}
        self.conn.execute(
            "INSERT OR IGNORE INTO inflight (request_id, started_at, record) VALUES (?, ?, ?)",
            (rec.request_id, rec.started_at_ms, json.dumps(fields_)),
        )

    def recover_inflight(self) -> list[RequestRecord]:
        """Turn the journal entries a killed daemon left behind into `partial` rows. Their usage is unknown
        (the meter's state died with the process), which the reason says."""
        raws = [raw for (raw,) in self.conn.execute("SELECT record FROM inflight ORDER BY started_at").fetchall()]
        out = self.recover_journal(raws)
        self.conn.execute("DELETE FROM inflight")
        return out

    def recover_journal(self, raws: list[str]) -> list[RequestRecord]:
        """Journal entries (JSON records, ledger/journal.py or the inflight table) as `partial` rows, for the
        requests that have no row yet (a request whose row was committed is left as it is)."""
        from ..core.models import RequestRecord, Usage

        out = []
        for raw in raws:
            try:
                known = {k: v for k, v in json.loads(raw).items() if k in _record_columns()}
                rec = RequestRecord(**known).with_(
                    status="partial",
                    partial=True,
                    unmetered=False,
                    http_status=None,
                    usage=Usage(),
                    cost_usd=0.0,
                    price_source="none",
                    reason=CRASH_REASON,
                )
            except (ValueError, TypeError):
                continue
            if self.insert_request(rec):
                out.append(rec)
        return out

    def _fold(self, row: dict[str, Any], sign: int) -> None:
        if row["status"] in ("refused", "passthrough") and not any(row[c] for c in TOKEN_COLUMNS):
            return
        key = (
            row["day"],
            row["agent"] or "",
            row["provider"],
            row["model_used"] or row["model_requested"] or "",
            row["repo"] or "",
            int(bool(row["subscription"])),
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
        sql = f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        try:
            self.conn.execute(sql, [row[c] for c in cols])
        except UnicodeEncodeError:  # e.g. a working directory whose name is not UTF-8
            row = _utf8(row)
            self.conn.execute(sql, [row[c] for c in cols])

    def end_session(
        self, session_id: str, ended_at_ms: int, exit_code: int | None, end_commit: str | None = None
    ) -> bool:
        cur = self.conn.execute(
            "UPDATE sessions SET ended_at = ?, exit_code = ?, end_commit = COALESCE(?, end_commit) WHERE id = ?",
            (ended_at_ms, exit_code, end_commit, session_id),
        )
        return cur.rowcount == 1

    def discard_empty_session(self, session_id: str) -> bool:
        """Delete a session that has no request row (a launch that failed). False if it has any."""
        cur = self.conn.execute(
            "DELETE FROM sessions WHERE id = ? AND NOT EXISTS (SELECT 1 FROM requests WHERE session_id = ?)",
            (session_id, session_id),
        )
        return cur.rowcount == 1

    def note_agent_session(self, session_id: str, agent_session_id: str) -> None:
        self.conn.execute(
            "UPDATE sessions SET agent_session_id = ? WHERE id = ? AND agent_session_id IS NULL",
            (agent_session_id, session_id),
        )

    def reprice(
        self,
        price: Callable[[dict[str, Any]], tuple[float | None, str, str | None, str | None, bool, str | None]],
        *,
        since_ms: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Recompute rows' costs from their tokens (at each row's own time and tier), then rebuild the
        rollup. `price(row)` gives (usd, source, matched model, price version, unpriced, reason); the reason
        replaces a stale pricing reason on the row ("unpriced ..." once the model is priced). With `dry_run`
        nothing is written. Returns rows seen, rows changed, USD before and after, and the models changed."""
        out: dict[str, Any] = {"rows": 0, "changed": 0, "before_usd": 0.0, "after_usd": 0.0, "models": {}}
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            sql = (
                f"SELECT request_id, started_at, provider, model_requested, model_used, cost_usd, price_source, "
                f"price_model, unpriced, status, reason, tier, {', '.join(TOKEN_COLUMNS)} FROM requests "
                "WHERE status NOT IN ('refused', 'passthrough')"
            )
            args: list[Any] = []
            if since_ms is not None:
                sql += " AND started_at >= ?"
                args.append(since_ms)
            for r in self.conn.execute(sql, args).fetchall():
                row = dict(r)
                usd, source, model, version, unpriced, why = price(row)
                reason = _repriced_reason(row, unpriced, why)
                out["rows"] += 1
                out["before_usd"] += row["cost_usd"] or 0.0
                out["after_usd"] += usd or 0.0
                if usd != row["cost_usd"] or source != row["price_source"] or reason != row["reason"]:
                    out["changed"] += 1
                    name = f"{row['provider']}:{row['model_used'] or row['model_requested']}"
                    m = out["models"].setdefault(
                        name, {"rows": 0, "before_usd": 0.0, "after_usd": 0.0, "source": source, "price_model": model}
                    )
                    m["rows"] += 1
                    m["before_usd"] += row["cost_usd"] or 0.0
                    m["after_usd"] += usd or 0.0
                if not dry_run:
                    self.conn.execute(
                        "UPDATE requests SET cost_usd = ?, price_source = ?, price_model = ?, price_version = ?, "
                        "unpriced = ?, reason = ? WHERE request_id = ?",
                        (usd, source, model, version, int(unpriced), reason, r["request_id"]),
                    )
            if dry_run:
                self.conn.execute("ROLLBACK")
                return out
            self._rebuild_rollup()
            self.conn.execute("ROLLBACK" if dry_run else "COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return out

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
            rows = self.conn.execute("SELECT * FROM sessions WHERE id LIKE ? LIMIT 2", (session_id + "%",)).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return dict(row) if row else None

    def sessions(self, since_ms: int | None = None, session_id: str | None = None) -> list[dict[str, Any]]:
        sums = ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in TOKEN_COLUMNS)
        where: list[str] = []
        args: list[Any] = []
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
        # TOTAL() sums as a float: a ledger written before the bounds existed cannot overflow the budget check.
        sql = (
            "SELECT TOTAL(cost_usd), TOTAL(input_tokens) + TOTAL(cache_read_tokens) + "
            "TOTAL(cache_write_tokens) + TOTAL(output_tokens) FROM usage_daily WHERE day BETWEEN ? AND ?"
        )
        args: list = [first_day, last_day]
        if agent is not None:
            sql += " AND agent = ?"
            args.append(agent)
        usd, tokens = self.conn.execute(sql, args).fetchone()
        return float(usd), int(tokens)

    def session_spend(self, session_id: str) -> tuple[float, int]:
        usd, tokens = self.conn.execute(
            "SELECT TOTAL(cost_usd), TOTAL(input_tokens) + TOTAL(cache_read_tokens) + TOTAL(cache_write_tokens)"
            " + TOTAL(output_tokens) FROM requests WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        return float(usd), int(tokens)

    def alert_keys(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT key FROM alerts")}

    def insert_alert(self, row: dict[str, Any]) -> bool:
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO alerts (key, window, threshold, spent_usd, cap_usd, sent_at, channels) "
            "VALUES (:key, :window, :threshold, :spent_usd, :cap_usd, :sent_at, :channels)",
            row,
        )
        return cur.rowcount == 1

    def alerts_since(self, since_ms: int) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM alerts WHERE sent_at >= ? ORDER BY sent_at", (since_ms,))
        return [dict(r) for r in rows]

    def add_override(self, kind: str, created_ms: int, until_ms: int | None, detail: str) -> None:
        self.conn.execute(
            "INSERT INTO overrides (kind, created_at, until_at, detail) VALUES (?, ?, ?, ?)",
            (kind, created_ms, until_ms, detail),
        )

    def snoozed_until(self, now_ms: int) -> int | None:
        """The latest snooze decides (`snooze off` records one that ends at once)."""
        row = self.conn.execute(
            "SELECT until_at FROM overrides WHERE kind = 'snooze' ORDER BY created_at DESC, id DESC LIMIT 1"
        ).fetchone()
        return row[0] if row and row[0] and row[0] > now_ms else None

    def replay_rows(self, since_ms: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT r.*, s.budget_usd AS session_budget_usd FROM requests r LEFT JOIN sessions s "
            "ON s.id = r.session_id WHERE r.started_at >= ? ORDER BY r.started_at, r.rowid",
            (since_ms,),
        )
        return [dict(r) for r in rows]

    def snoozes(self) -> list[tuple[int, int]]:
        """Snooze intervals [from, until); a later snooze (or `off`) cuts the one before it short."""
        rows = self.conn.execute(
            "SELECT created_at, until_at FROM overrides WHERE kind = 'snooze' "
            "AND until_at IS NOT NULL ORDER BY created_at, id"
        ).fetchall()
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


def _utf8(row: dict[str, Any]) -> dict[str, Any]:
    """Strings SQLite can store: lone surrogates (undecodable bytes, bad JSON escapes) become '?'."""
    return {k: v.encode("utf-8", "replace").decode() if isinstance(v, str) else v for k, v in row.items()}


# Reasons pricing writes on a row (pricing._unpriced_cost); `reprice` replaces them, never others.
_PRICE_REASON_MARKS = ("counted as unpriced at", "estimated at the rates of")


def _repriced_reason(row: dict[str, Any], unpriced: bool, why: str | None) -> str | None:
    old = row.get("reason")
    if old is not None and not any(m in old for m in _PRICE_REASON_MARKS):
        return old  # an error, a partial stream, a clamp: not pricing's to change
    if row.get("status") != "ok":
        return old
    return why if unpriced else None


def usage_of(row: dict[str, Any]) -> Usage:
    from ..core.models import Usage

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
