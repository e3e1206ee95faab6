"""The client's audit trail (issue 20 item 6): every cap change, snooze and key change made on this machine,
and every change of the team caps the collector hands out, with who, when, and the old and new value.

Values are JSON (a cap's number, a snooze's end, `"set"` for a key: a key itself is never recorded). Functions
take a sqlite3 connection, so the CLI (a short write of its own) and the daemon's writer thread share them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

# What `action` may be, so a filter typo is an error rather than an empty answer.
ACTIONS = ("budget.set", "budget.snooze", "key.set", "key.rm", "team_caps.changed")


def os_user() -> str:
    """The person at this machine as the OS knows them (`os:alice`); the uid when it has no name."""
    try:
        import pwd

        return "os:" + pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return f"os:uid {os.getuid()}"


def record(
    conn: sqlite3.Connection,
    *,
    at_ms: int,
    actor: str,
    action: str,
    target: str = "",
    old: Any = None,
    new: Any = None,
    detail: str = "",
) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn.execute(
        "INSERT INTO audit (at, actor, action, target, old, new, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at_ms, actor, action, target, _json(old), _json(new), detail),
    )


def entries(
    conn: sqlite3.Connection,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Oldest first. `action` matches a whole action or its prefix before the dot (`budget`)."""
    where: list[str] = []
    args: list[Any] = []
    if since_ms is not None:
        where.append("at >= ?")
        args.append(since_ms)
    if until_ms is not None:
        where.append("at < ?")
        args.append(until_ms)
    if action:
        where.append("(action = ? OR action LIKE ? ESCAPE '\\')")
        args += [action, action.replace("_", "\\_") + ".%"]
    if actor:
        where.append("actor = ?")
        args.append(actor)
    sql = "SELECT id, at, actor, action, target, old, new, detail FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY at, id"
    try:
        rows = conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # a ledger from before m010, opened read-only
        return []
    out = [{**dict(r), "old": _load(r["old"]), "new": _load(r["new"])} for r in rows]
    return out[-limit:] if limit else out


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
