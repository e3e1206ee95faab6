"""Chargeback by tag on the collector (issue 20 item 7): the tags a developer gave `agentmeter run --tag K=V`
(ticket, feature, cost centre …) and the commit each session ended on arrive with the session line items; one
row per (session item, tag) in `session_tags` lets `collector report --by tag:KEY` group with a plain join,
the same portable SQL on SQLite and PostgreSQL (no JSON functions).

Tags are per session, so spend by tag is the session line items' sums; the day is the session's first day.
The same holds for `--by commit` (the commit each session ended on) and `--by subagent` (the sums of each
session's sub-agents, Claude Code's agent ids, in `session_subagents`; '' is the main agent: the sessions'
sums less their sub-agents').
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
        db.execute("DELETE FROM session_subagents WHERE developer = ? AND item_key = ?", (developer, s["key"]))
        if s.get("subagents"):
            cols = ("subagent", "requests", *TOKEN_COLUMNS, "cost_usd", "unpriced_requests")
            db.executemany(
                f"INSERT INTO session_subagents (developer, item_key, {', '.join(cols)}) "
                f"VALUES (?, ?, {', '.join('?' * len(cols))})",
                [(developer, s["key"], a["id"], *(a[c] for c in cols[1:])) for a in s["subagents"]],
            )
    for key in deleted:
        db.execute("DELETE FROM session_tags WHERE developer = ? AND item_key = ?", (developer, key))
        db.execute("DELETE FROM session_subagents WHERE developer = ? AND item_key = ?", (developer, key))


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


def _session_where(since: str | None, until: str | None, team: str | None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for clause, value in (("s.day >= ?", since), ("s.day <= ?", until), ("s.team = ?", team)):
        if value is not None:
            where.append(clause)
            args.append(value)
    return where, args


def report_by_commit(
    store, since: str | None = None, until: str | None = None, team: str | None = None
) -> list[dict[str, Any]]:
    """Spend per commit the sessions ended on ('' for sessions that recorded none), from the session items."""
    where, args = _session_where(since, until, team)
    sums = ", ".join(f"COALESCE(SUM(s.{c}), 0) AS {c}" for c in _SUMS)
    sql = (
        f"SELECT COALESCE(s.end_commit, '') AS key, {sums}, COUNT(DISTINCT s.developer) AS developers, "
        "COUNT(*) AS sessions FROM sessions s"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " GROUP BY COALESCE(s.end_commit, '') ORDER BY cost_usd DESC, key"
    )
    return [dict(r) for r in store.conn.execute(sql, args)]


def report_by_subagent(
    store, since: str | None = None, until: str | None = None, team: str | None = None
) -> list[dict[str, Any]]:
    """Spend per sub-agent id; '' is the main agents' part (the sessions' sums less their sub-agents')."""
    where, args = _session_where(since, until, team)
    cond = " WHERE " + " AND ".join(where) if where else ""
    sums = ", ".join(f"COALESCE(SUM(a.{c}), 0) AS {c}" for c in _SUMS)
    rows = [
        dict(r)
        for r in store.conn.execute(
            f"SELECT a.subagent AS key, {sums}, COUNT(DISTINCT s.developer) AS developers, "
            "COUNT(*) AS sessions FROM session_subagents a JOIN sessions s ON s.developer = a.developer "
            f"AND s.item_key = a.item_key{cond} GROUP BY a.subagent",
            args,
        )
    ]
    whole = store.conn.execute(
        f"SELECT {', '.join(f'COALESCE(SUM(s.{c}), 0) AS {c}' for c in _SUMS)}, "
        f"COUNT(DISTINCT s.developer) AS developers, COUNT(*) AS sessions FROM sessions s{cond}",
        args,
    ).fetchone()
    if whole["sessions"]:
        main = {"key": "", **{c: whole[c] - sum(r[c] for r in rows) for c in _SUMS}}
        main["cost_usd"] = max(0.0, round(main["cost_usd"], 9))
        main["developers"], main["sessions"] = whole["developers"], whole["sessions"]
        if main["requests"] > 0 or main["cost_usd"] > 0:
            rows.append(main)
    return sorted(rows, key=lambda r: (-r["cost_usd"], r["key"]))
