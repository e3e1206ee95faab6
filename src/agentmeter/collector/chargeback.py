"""Chargeback by tag on the collector (issue 20 item 7): the tags a developer gave `agentmeter run --tag K=V`
(ticket, feature, cost centre …) and the commit each session ended on arrive with the session line items; one
row per (session item, tag) in `session_tags` lets `collector report --by tag:KEY` group with a plain join,
the same portable SQL on SQLite and PostgreSQL (no JSON functions).

Tags are per session, so spend by tag is the session line items' sums; the day is the session's first day.
"""

from __future__ import annotations

import json
from typing import Any

from ..ledger.schema import TOKEN_COLUMNS

_SUMS = (*TOKEN_COLUMNS, "requests", "cost_usd", "unpriced_requests")


def store_sessions(db, developer: str, sessions: list[dict[str, Any]], deleted: list[str]) -> None:
    """Inside the push's transaction, after its upserts: each session item's tags and end commit."""
    for s in sessions:
        tags = s.get("tags") or {}
        db.execute(
            "UPDATE sessions SET tags = ?, end_commit = ? WHERE developer = ? AND item_key = ?",
            (json.dumps(tags, sort_keys=True), s.get("end_commit"), developer, s["key"]),
        )
        db.execute("DELETE FROM session_tags WHERE developer = ? AND item_key = ?", (developer, s["key"]))
        if tags:
            db.executemany(
                "INSERT INTO session_tags (developer, item_key, tag, value) VALUES (?, ?, ?, ?)",
                [(developer, s["key"], k, v) for k, v in sorted(tags.items())],
            )
    for key in deleted:
        db.execute("DELETE FROM session_tags WHERE developer = ? AND item_key = ?", (developer, key))


def report_by_tag(
    store, tag: str, since: str | None = None, until: str | None = None, team: str | None = None
) -> list[dict[str, Any]]:
    """Spend per value of one tag ('' for sessions without it), from the session line items."""
    where, args = [], [tag]
    for clause, value in (("s.day >= ?", since), ("s.day <= ?", until), ("s.team = ?", team)):
        if value is not None:
            where.append(clause)
            args.append(value)
    sums = ", ".join(f"COALESCE(SUM(s.{c}), 0) AS {c}" for c in _SUMS)
    sql = (
        f"SELECT COALESCE(t.value, '') AS key, {sums}, COUNT(DISTINCT s.developer) AS developers, "
        "COUNT(*) AS sessions FROM sessions s LEFT JOIN session_tags t ON t.developer = s.developer "
        "AND t.item_key = s.item_key AND t.tag = ?"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " GROUP BY COALESCE(t.value, '') ORDER BY cost_usd DESC, key"
    )
    return [dict(r) for r in store.conn.execute(sql, args)]
