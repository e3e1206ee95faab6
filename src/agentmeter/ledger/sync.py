"""The client side of team sync: what was pushed (`sync_pushed`) and the sync state (`sync_state`).

Functions take a sqlite3 connection so that `status` (which opens the ledger with plain sqlite3 on its
fast path) and the sync client (a `Ledger`, or the daemon's writer thread) share them.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .schema import TOKEN_COLUMNS

# The rows the daily rollup counts (store.Ledger._fold): a refusal or a non-billable call with no tokens is not
# usage. Session line items and the OTel export count the same rows, so every total agrees with the rollup.
_COUNTED = (
    "NOT (r.status IN ('refused', 'passthrough') AND "
    + " + ".join(f"COALESCE(r.{c}, 0)" for c in TOKEN_COLUMNS)
    + " = 0)"
)

# Keys of sync_state. Values are text; numbers are stored as decimal strings.
DEVICE_ID = "device_id"
COLLECTOR_ID = "collector_id"
LAST_PUSH_AT = "last_push_at"
LAST_ATTEMPT_AT = "last_attempt_at"
FAILURES = "failures"
FAILING_SINCE = "failing_since"
NEXT_ATTEMPT_AT = "next_attempt_at"
LAST_ERROR = "last_error"
PENDING = "pending"
TEAM_CAPS = "team_caps"
OTEL_ROWID = "otel_rowid"


def read_state(conn: sqlite3.Connection) -> dict[str, str]:
    try:
        return {k: v for k, v in conn.execute("SELECT key, value FROM sync_state")}
    except sqlite3.OperationalError:  # a ledger from before m004 (read-only, not yet migrated)
        return {}


def write_state(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
    """Upsert each key; a None value deletes it."""
    for key, value in values.items():
        if value is None:
            conn.execute("DELETE FROM sync_state WHERE key = ?", (key,))
        else:
            conn.execute(
                "INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value = excluded.value",
                (key, str(value)),
            )


def claim_device_id(conn: sqlite3.Connection, new: str) -> None:
    """Two syncs racing on a new ledger must agree on one id: the first one written stays."""
    conn.execute("INSERT OR IGNORE INTO sync_state (key, value) VALUES (?, ?)", (DEVICE_ID, new))


def team_caps(conn: sqlite3.Connection) -> dict[str, Any]:
    """The caps last fetched from the collector: {"team": {...} | None, "developer": {...} | None}."""
    try:
        row = conn.execute("SELECT value FROM sync_state WHERE key = ?", (TEAM_CAPS,)).fetchone()
    except sqlite3.OperationalError:
        return {}
    if not row:
        return {}
    try:
        value = json.loads(row[0])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def pushed(conn: sqlite3.Connection) -> dict[str, str]:
    return {k: d for k, d in conn.execute("SELECT item_key, digest FROM sync_pushed")}


def mark_pushed(conn: sqlite3.Connection, items: list[tuple[str, str]], now_ms: int) -> None:
    conn.executemany(
        "INSERT INTO sync_pushed (item_key, digest, pushed_at) VALUES (?, ?, ?) ON CONFLICT(item_key) DO UPDATE "
        "SET digest = excluded.digest, pushed_at = excluded.pushed_at",
        [(k, d, now_ms) for k, d in items],
    )


def forget_pushed(conn: sqlite3.Connection, keys: list[str] | None = None) -> None:
    """Forget what was pushed (all of it when the collector is a new one), so it goes out again."""
    if keys is None:
        conn.execute("DELETE FROM sync_pushed")
    else:
        conn.executemany("DELETE FROM sync_pushed WHERE item_key = ?", [(k,) for k in keys])


def latest_identity(conn: sqlite3.Connection) -> dict[str, Any]:
    """developer, team and cost_center of the most recent session that recorded a developer (each None if none)."""
    row = conn.execute(
        "SELECT developer, team, cost_center FROM sessions WHERE developer IS NOT NULL AND developer != '' "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    if not row:
        return {"developer": None, "team": None, "cost_center": None}
    return {"developer": row[0], "team": row[1], "cost_center": row[2]}


def rollup(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    cols = ", ".join(TOKEN_COLUMNS)
    rows = conn.execute(
        f"SELECT day, agent, provider, model, repo, subscription, requests, {cols}, cost_usd, "
        "unpriced_requests FROM usage_daily ORDER BY day"
    )
    names = [d[0] for d in rows.description]
    out = [dict(zip(names, r, strict=True)) for r in rows]
    parts = tag_parts(conn)
    for r in out:
        got = parts.get(rollup_key(r))
        if got:
            r["tag_parts"] = got
    return out


def rollup_key(r: dict[str, Any]) -> tuple:
    """A usage_daily row's key (ledger/store.py `_fold`), as `tag_parts` files its parts."""
    return (r["day"], r["agent"] or "", r["provider"], r["model"] or "", r["repo"] or "", int(bool(r["subscription"])))


def tag_parts(conn: sqlite3.Connection, first_day: str | None = None, end_day: str | None = None) -> dict[tuple, list]:
    """The tagged share of each usage_daily row over local days [first_day, end_day): per rollup key, one part
    per set of session tags (`run --tag K=V`) with its sums, the costliest first. What is left of the row is
    untagged traffic. Read from the requests of tagged sessions only (requests_session index)."""
    sums = ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in TOKEN_COLUMNS)
    rows = conn.execute(
        f"""SELECT r.day AS day, COALESCE(r.agent, '') AS agent, r.provider AS provider,
                   COALESCE(NULLIF(r.model_used, ''), NULLIF(r.model_requested, ''), '') AS model,
                   COALESCE(r.repo, '') AS repo, r.subscription AS subscription, s.tags AS tags,
                   COUNT(*) AS requests, {sums}, COALESCE(SUM(r.cost_usd), 0) AS cost_usd,
                   COALESCE(SUM(r.unpriced), 0) AS unpriced_requests
            FROM sessions s JOIN requests r ON r.session_id = s.id
            WHERE s.tags IS NOT NULL AND s.tags NOT IN ('', '{{}}') AND r.day >= ? AND r.day < ? AND {_COUNTED}
            GROUP BY r.day, COALESCE(r.agent, ''), r.provider,
                     COALESCE(NULLIF(r.model_used, ''), NULLIF(r.model_requested, ''), ''),
                     COALESCE(r.repo, ''), r.subscription, s.tags""",
        (first_day or "", end_day or "9999-99-99"),
    )
    names = [d[0] for d in rows.description]
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        d = dict(zip(names, r, strict=True))
        try:
            tags = json.loads(d.pop("tags"))
        except ValueError:
            continue
        if not isinstance(tags, dict) or not tags:
            continue
        d["tags"] = {str(k): str(v) for k, v in tags.items()}
        out.setdefault(rollup_key(d), []).append(d)
    for parts in out.values():
        parts.sort(key=lambda p: (-p["cost_usd"], json.dumps(p["tags"], sort_keys=True)))
    return out


def session_totals(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per-session line items: attribution, the chargeback tags given to `run --tag` and the commit the session
    ended on, and sums (never cwd or anything from a request body)."""
    sums = ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in TOKEN_COLUMNS)
    rows = conn.execute(
        f"""SELECT s.id, s.agent, s.repo, s.branch, s.team, s.cost_center, s.started_at, s.ended_at, s.tags,
                   s.end_commit,
                   COUNT(r.request_id) AS requests, {sums}, COALESCE(SUM(r.cost_usd), 0) AS cost_usd,
                   COALESCE(SUM(r.unpriced), 0) AS unpriced_requests,
                   GROUP_CONCAT(DISTINCT COALESCE(r.model_used, r.model_requested)) AS models
            FROM sessions s JOIN requests r ON r.session_id = s.id
            WHERE {_COUNTED}
            GROUP BY s.id ORDER BY s.started_at"""
    )
    names = [d[0] for d in rows.description]
    out = [dict(zip(names, r, strict=True)) for r in rows]
    subagents = session_subagents(conn)
    for s in out:
        if s["id"] in subagents:
            s["subagents"] = subagents[s["id"]]
    return out


def session_subagents(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """Per session, the sums of its sub-agents' requests (Claude Code's `x-claude-code-agent-id`), the
    biggest first; the main agent's part is the session's sums less these. Sessions without sub-agents are
    absent."""
    sums = ", ".join(f"COALESCE(SUM(r.{c}), 0) AS {c}" for c in TOKEN_COLUMNS)
    rows = conn.execute(
        f"""SELECT r.session_id AS session_id, r.agent_id AS id, COUNT(*) AS requests, {sums},
                   COALESCE(SUM(r.cost_usd), 0) AS cost_usd, COALESCE(SUM(r.unpriced), 0) AS unpriced_requests
            FROM requests r
            WHERE r.session_id IS NOT NULL AND r.agent_id IS NOT NULL AND r.agent_id != '' AND {_COUNTED}
            GROUP BY r.session_id, r.agent_id ORDER BY r.session_id, cost_usd DESC, r.agent_id"""
    )
    names = [d[0] for d in rows.description]
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        d = dict(zip(names, r, strict=True))
        out.setdefault(d.pop("session_id"), []).append(d)
    return out


def requests_after(conn: sqlite3.Connection, rowid: int, limit: int = 5000) -> list[dict[str, Any]]:
    """Metered requests added since `rowid`, oldest first, for the OpenTelemetry export."""
    cols = ", ".join(f"r.{c}" for c in TOKEN_COLUMNS)
    rows = conn.execute(
        f"""SELECT r.rowid AS rowid, r.provider, r.model_requested, r.model_used, r.agent, r.repo, r.cost_usd,
                   s.developer, s.team, s.cost_center, {cols}
            FROM requests r LEFT JOIN sessions s ON s.id = r.session_id
            WHERE r.rowid > ? AND {_COUNTED} ORDER BY r.rowid LIMIT ?""",
        (rowid, limit),
    )
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r, strict=True)) for r in rows]


def max_request_rowid(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM requests").fetchone()[0])
