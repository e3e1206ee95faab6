"""Read-only SQL for the commands that must answer fast (`status`, `prompt`, `statusline`, `doctor`): plain
sqlite3 on a read-only connection, no sqlite-utils, no writer thread. Every function tolerates a connection of
None (no ledger yet: nothing recorded) and returns plain values; shaping them is the caller's job.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

Error = sqlite3.Error  # for callers that report an unreadable ledger without importing sqlite3
DatabaseError = sqlite3.DatabaseError
OperationalError = sqlite3.OperationalError
Connection = sqlite3.Connection

_TOKENS = "input_tokens + cache_read_tokens + cache_write_tokens + output_tokens"


def connect(path: Path, *, timeout: float = 5, rows: bool = False) -> sqlite3.Connection | None:
    """The ledger, read-only; None when there is none yet. Never migrates and never writes."""
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    if rows:
        conn.row_factory = sqlite3.Row
    return conn


# -- the daily rollup -----------------------------------------------------------------------------------------


def window_sums(conn: sqlite3.Connection, first: str, last: str) -> tuple[float, int, int]:
    """(usd, tokens, requests) over the rollup's days first..last (ISO dates, inclusive)."""
    usd, tokens, requests = conn.execute(
        f"SELECT COALESCE(SUM(cost_usd), 0), COALESCE(SUM({_TOKENS}), 0), COALESCE(SUM(requests), 0) "
        "FROM usage_daily WHERE day BETWEEN ? AND ?",
        (first, last),
    ).fetchone()
    return float(usd), int(tokens), int(requests)


def spend_by_day(conn: sqlite3.Connection | None, first: str, last: str) -> dict[str, tuple[float, int]]:
    """{day: (usd, tokens)} over first..last; {} for a ledger whose first migration never ran."""
    if conn is None:
        return {}
    try:
        rows = conn.execute(
            f"SELECT day, COALESCE(SUM(cost_usd), 0), COALESCE(SUM({_TOKENS}), 0) "
            "FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY day",
            (first, last),
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {day: (float(usd), int(tok)) for day, usd, tok in rows}


def cost_by_day(conn: sqlite3.Connection, since: str, before: str) -> list[tuple[str, float]]:
    """[(day, usd)] for since <= day < before: the history a forecast resamples."""
    return [
        (d, float(usd))
        for d, usd in conn.execute(
            "SELECT day, SUM(cost_usd) FROM usage_daily WHERE day >= ? AND day < ? GROUP BY day", (since, before)
        )
    ]


def by_agent(conn: sqlite3.Connection, first: str, last: str) -> list[dict]:
    """Per agent over first..last: usd, requests and the prompt-side token sums (for the cache-hit rate)."""
    cur = conn.execute(
        "SELECT agent, SUM(cost_usd) AS usd, SUM(requests) AS requests, SUM(input_tokens) AS input_tokens, "
        "SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens "
        "FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY agent ORDER BY usd DESC",
        (first, last),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def unpriced(conn: sqlite3.Connection, first: str, last: str) -> list[tuple[str, str, int, float]]:
    """[(provider, model, unpriced requests, fallback usd)] over first..last."""
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT provider, model, SUM(unpriced_requests) AS n, SUM(cost_usd) AS usd FROM usage_daily "
            "WHERE day BETWEEN ? AND ? AND unpriced_requests > 0 GROUP BY provider, model",
            (first, last),
        )
    ]


def cost_by_subscription(conn: sqlite3.Connection, first: str, last: str) -> dict[int, float]:
    """{1: API-equivalent usd of subscription traffic, 0: billed usd} over first..last."""
    return dict(
        conn.execute(
            "SELECT subscription, SUM(cost_usd) FROM usage_daily WHERE day BETWEEN ? AND ? GROUP BY subscription",
            (first, last),
        ).fetchall()
    )


# -- requests, sessions, meta -----------------------------------------------------------------------------------


def sessions_since(conn: sqlite3.Connection, start_ms: int) -> list[dict]:
    """Every session with a request since start_ms: its facts and totals, costliest first."""
    cur = conn.execute(
        "SELECT s.id, s.agent, s.repo, s.branch, s.pid, s.ended_at, COUNT(*) AS requests, "
        "COALESCE(SUM(r.cost_usd), 0) AS cost_usd, SUM(r.status = 'refused') AS refused, "
        "SUM(r.input_tokens) AS input_tokens, SUM(r.cache_read_tokens) AS cache_read_tokens, "
        "SUM(r.cache_write_tokens) AS cache_write_tokens "
        "FROM requests r JOIN sessions s ON s.id = r.session_id WHERE r.started_at >= ? "
        "GROUP BY s.id ORDER BY cost_usd DESC",
        (start_ms,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def has_requests(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM requests LIMIT 1").fetchone() is not None


def meta_value(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def snoozed_until(conn: sqlite3.Connection) -> int | None:
    """The end (ms) of the latest snooze, if any was ever set."""
    row = conn.execute(
        "SELECT until_at FROM overrides WHERE kind = 'snooze' ORDER BY created_at DESC, id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row and row[0] else None


def alerts_since(conn: sqlite3.Connection, since_ms: int) -> list[dict]:
    cur = conn.execute(
        "SELECT window, threshold, spent_usd, cap_usd, sent_at, channels FROM alerts "
        "WHERE sent_at >= ? ORDER BY sent_at",
        (since_ms,),
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def plan_latest(conn: sqlite3.Connection | None) -> list[tuple[str, str, float, float | None]]:
    """[(provider, window, used %, resets at)] of subscription accounts, fullest first; [] before plan windows."""
    if conn is None:
        return []
    try:
        return [
            tuple(r)
            for r in conn.execute(
                "SELECT provider, window, used_pct, resets_at FROM plan_latest WHERE account != 'api' "
                "ORDER BY used_pct DESC"
            )
        ]
    except sqlite3.OperationalError:
        return []


def agent_session_cost(
    conn: sqlite3.Connection, agent_session_id: str, since_ms: int, session_id: str | None
) -> float | None:
    """What was metered for one agent-side session id (Claude Code's `session_id`): through the agentmeter
    session(s) that saw it, else any request since since_ms. None when nothing matches."""
    sessions = (
        [session_id]
        if session_id
        else [r[0] for r in conn.execute("SELECT id FROM sessions WHERE agent_session_id = ?", (agent_session_id,))]
    )
    for sid in sessions:
        n, usd = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM requests WHERE session_id = ? AND agent_session_id = ?",
            (sid, agent_session_id),
        ).fetchone()
        if n:
            return float(usd)
    n, usd = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM requests WHERE started_at >= ? AND agent_session_id = ?",
        (since_ms, agent_session_id),
    ).fetchone()
    return float(usd) if n else None


def quick_check(path: Path) -> tuple[str, int]:
    """(PRAGMA quick_check's verdict, number of requests); raises DatabaseError on a file SQLite cannot read."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    finally:
        conn.close()
    return result, int(rows)
