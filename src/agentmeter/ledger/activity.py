"""SQL for the live view (`agentmeter top`): sessions still open that saw a request recently.

Opened read-only per call on the ledger file (the live view re-reads only when the ledger changed), and a
ledger too old or too damaged for the query reads as no sessions rather than stopping the view.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_sessions_activity(ledger: Path, since_ms: int, recent_ms: int, limit: int = 12) -> list[dict]:
    """Per open session with a request since `since_ms`: requests, cost, cost since `recent_ms`, last request."""
    if not ledger.exists():
        return []
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=2)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT s.id, s.agent, s.repo, COUNT(r.request_id) AS requests, COALESCE(SUM(r.cost_usd), 0) AS cost, "
            "COALESCE(SUM(CASE WHEN r.started_at >= ? THEN r.cost_usd ELSE 0 END), 0) AS recent, "
            "MAX(r.started_at) AS last_at FROM sessions s JOIN requests r ON r.session_id = s.id "
            "WHERE s.ended_at IS NULL AND r.started_at >= ? GROUP BY s.id ORDER BY last_at DESC LIMIT ?",
            (recent_ms, since_ms, limit),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [dict(r) for r in rows]
