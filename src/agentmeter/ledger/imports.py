"""SQL for importing usage from agents' logs and Cursor's export, and for `reconcile`.

Functions take a `Ledger`. Imported rows go through `Ledger.insert_request` (the rollup is folded in the
same transaction); a re-read copy of a row that grew (a streamed message written again with more output)
replaces it, unfolding the old figures first.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from ..core.models import RequestRecord, Usage
from .schema import TOKEN_COLUMNS
from .store import Ledger, usage_of

# An imported session has no proxy token; this prefix cannot collide with a sha256 hex digest.
IMPORT_TOKEN_PREFIX = "import:"
_CHUNK = 500  # bound for IN (...) lists, well under SQLite's variable limit


@contextlib.contextmanager
def transaction(ledger: Ledger) -> Iterator[None]:
    """A short write transaction; the daemon's writer waits on busy_timeout meanwhile."""
    ledger.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        ledger.conn.execute("ROLLBACK")
        raise
    ledger.conn.execute("COMMIT")


def _chunks(items: list, n: int = _CHUNK) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# -- files ------------------------------------------------------------------------------------------


def file_states(ledger: Ledger, source: str | None = None) -> dict[str, dict[str, Any]]:
    sql, args = "SELECT * FROM import_files", []
    if source:
        sql += " WHERE source = ?"
        args.append(source)
    return {r["path"]: dict(r) for r in ledger.conn.execute(sql, args)}


def save_file_state(
    ledger: Ledger, path: str, source: str, size: int, mtime_ns: int, offset: int, rows: int, now_ms: int
) -> None:
    ledger.conn.execute(
        "INSERT INTO import_files (path, source, size, mtime_ns, offset, rows, imported_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET source = excluded.source, "
        "size = excluded.size, mtime_ns = excluded.mtime_ns, offset = excluded.offset, "
        "rows = import_files.rows + excluded.rows, imported_at = excluded.imported_at",
        (path, source, size, mtime_ns, offset, rows, now_ms),
    )


# -- matching ---------------------------------------------------------------------------------------


def response_owners(ledger: Ledger, ids: Iterable[str]) -> dict[str, list[tuple[str, str | None]]]:
    """response id → [(source, import_key)] of the rows already holding it."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = ledger.conn.execute(
            f"SELECT response_id, source, import_key FROM requests WHERE response_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for r in rows:
            out.setdefault(r[0], []).append((r[1], r[2]))
    return out


def existing_keys(ledger: Ledger, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(keys))):
        rows = ledger.conn.execute(f"SELECT * FROM requests WHERE import_key IN ({','.join('?' * len(chunk))})", chunk)
        out.update({r["import_key"]: dict(r) for r in rows})
    return out


def agent_sessions(ledger: Ledger) -> dict[str, dict[str, Any]]:
    """agent session id → {id, repo, branch, imported} for sessions the proxy saw and sessions made by imports."""
    cols = "s.id, s.repo, s.branch, s.token_hash LIKE 'import:%' AS imported"
    out = {
        r[0]: dict(r)
        for r in ledger.conn.execute(
            f"SELECT s.agent_session_id AS asid, {cols} FROM sessions s WHERE s.agent_session_id IS NOT NULL "
            "ORDER BY s.started_at"
        )
    }
    # A `run` session names only its first agent session; later ones are on its requests.
    for r in ledger.conn.execute(
        f"SELECT r.agent_session_id AS asid, {cols} FROM (SELECT agent_session_id, MIN(session_id) AS sid "
        "FROM requests WHERE source = 'proxy' AND agent_session_id IS NOT NULL AND session_id IS NOT NULL "
        "GROUP BY agent_session_id) r JOIN sessions s ON s.id = r.sid"
    ):
        out[r[0]] = dict(r)
    for v in out.values():
        v.pop("asid", None)
        v["imported"] = bool(v["imported"])
    return out


def matchable_sessions(ledger: Ledger) -> set[str]:
    """Agent sessions with rows a response without an id could be: the proxy's, and imported rows with ids."""
    return {
        r[0]
        for r in ledger.conn.execute(
            "SELECT DISTINCT agent_session_id FROM requests WHERE agent_session_id IS NOT NULL "
            "AND (source = 'proxy' OR response_id IS NOT NULL)"
        )
    }


def same_response(
    ledger: Ledger,
    agent_session_id: str,
    at_ms: int,
    usage: Usage,
    window_ms: int,
    response_id: str | None,
    taken: set[str],
) -> tuple[str, str] | None:
    """(request id, source) of a row of the same agent session, within the window, with identical token
    buckets: a proxy row, or an imported row known by its response id (the same response logged without it)."""
    rows = ledger.conn.execute(
        "SELECT request_id, source FROM requests WHERE agent_session_id = ? AND started_at BETWEEN ? AND ?"
        " AND input_tokens = ? AND cache_read_tokens = ? AND cache_write_tokens = ? AND output_tokens = ?"
        " AND (source = 'proxy' OR response_id IS NOT NULL)"
        # A log row with an id only matches a row with no id (or the same); one without matches any.
        " AND (? IS NULL OR response_id IS NULL OR response_id = ?) ORDER BY ABS(started_at - ?)",
        (
            agent_session_id,
            at_ms - window_ms,
            at_ms + window_ms,
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.output_tokens,
            response_id,
            response_id,
            at_ms,
        ),
    )
    for rid, source in rows:
        if rid not in taken:
            return rid, source
    return None


def same_unlabelled_response(
    ledger: Ledger, agent: str, at_ms: int, usage: Usage, window_ms: int, taken: set[str]
) -> str | None:
    """The request id of a proxy row of `agent` that carries no agent session id (Gemini CLI sends none),
    within the window, with identical token buckets: the same response, metered live."""
    rows = ledger.conn.execute(
        "SELECT request_id FROM requests WHERE source = 'proxy' AND agent = ? AND agent_session_id IS NULL"
        " AND started_at BETWEEN ? AND ? AND input_tokens = ? AND cache_read_tokens = ?"
        " AND cache_write_tokens = ? AND output_tokens = ? ORDER BY ABS(started_at - ?)",
        (
            agent,
            at_ms - window_ms,
            at_ms + window_ms,
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.output_tokens,
            at_ms,
        ),
    )
    return next((rid for (rid,) in rows if rid not in taken), None)


# -- writes -----------------------------------------------------------------------------------------


def upsert(ledger: Ledger, rec: RequestRecord, old: dict[str, Any] | None) -> str:
    """`added`, `updated` (the stored copy had fewer tokens) or `kept`."""
    if old is None:
        return "added" if ledger.insert_request(rec) else "kept"
    if (rec.usage.total_tokens, rec.usage.output_tokens) <= (usage_of(old).total_tokens, old["output_tokens"]):
        return "kept"
    ledger._fold(old, -1)
    values = {
        **rec.usage.as_dict(),
        "cost_usd": rec.cost_usd,
        "price_source": rec.price_source,
        "price_model": rec.price_model,
        "price_version": rec.price_version,
        "unpriced": int(rec.unpriced),
        "model_used": rec.model_used,
        "reason": rec.reason,
        "tier": rec.tier,
    }
    ledger.conn.execute(
        f"UPDATE requests SET {', '.join(f'{k} = ?' for k in values)} WHERE request_id = ?",
        [*values.values(), old["request_id"]],
    )
    new = ledger.conn.execute("SELECT * FROM requests WHERE request_id = ?", (old["request_id"],)).fetchone()
    ledger._fold(dict(new), +1)
    return "updated"


def ensure_session(ledger: Ledger, row: dict[str, Any]) -> bool:
    """Create an imported session if its id is new; widen its time span either way."""
    exists = ledger.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (row["id"],)).fetchone()
    if exists is None:
        cols = list(row)
        values = [json.dumps(row[c], sort_keys=True) if c == "tags" else row[c] for c in cols]
        ledger.conn.execute(f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", values)
        return True
    ledger.conn.execute(
        "UPDATE sessions SET started_at = MIN(started_at, ?), ended_at = MAX(COALESCE(ended_at, 0), ?) "
        "WHERE id = ? AND token_hash LIKE ?",
        (row["started_at"], row["ended_at"], row["id"], IMPORT_TOKEN_PREFIX + "%"),
    )
    return False


def cursor_sessions(ledger: Ledger, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
    """`agentmeter run cursor` sessions that overlap [since, until]."""
    rows = ledger.conn.execute(
        "SELECT id, developer, repo, branch, started_at, ended_at FROM sessions WHERE agent = 'cursor' "
        "AND token_hash NOT LIKE ? "
        "AND started_at <= ? AND COALESCE(ended_at, started_at + 86400000) >= ? ORDER BY started_at",
        (IMPORT_TOKEN_PREFIX + "%", until_ms, since_ms),
    )
    return [dict(r) for r in rows]


# -- reconcile --------------------------------------------------------------------------------------


def metered_rows(ledger: Ledger, since_ms: int | None) -> list[dict[str, Any]]:
    """Rows of the agents that write logs, with what reconcile compares."""
    cols = ", ".join(TOKEN_COLUMNS)
    sql = (
        f"SELECT request_id, session_id, agent_session_id, agent, source, status, started_at, day, response_id, "
        f"import_key, api, {cols} FROM requests WHERE agent IN ('claude', 'codex') "
        "AND status NOT IN ('refused', 'passthrough')"
    )
    args: list = []
    if since_ms is not None:
        sql += " AND started_at >= ?"
        args.append(since_ms)
    return [dict(r) for r in ledger.conn.execute(sql + " ORDER BY started_at", args)]


def imported_paths(ledger: Ledger) -> dict[str, int]:
    """Path → size at its last import, for doctor's clean-up warning."""
    return {r[0]: r[1] for r in ledger.conn.execute("SELECT path, size FROM import_files")}
