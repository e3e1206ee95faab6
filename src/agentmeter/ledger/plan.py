"""The SQL of plan windows (migration m007): per-response snapshots and the latest reading per window.

Reads take a sqlite3 connection with `sqlite3.Row` rows (the writer's, or status's read-only one)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..plan.tracker import Reading

if TYPE_CHECKING:
    from ..providers.ratelimits import PlanSnapshot
    from .store import Ledger


def insert_snapshot(
    lg: Ledger,
    *,
    at_ms: int,
    request_id: str | None,
    session_id: str | None,
    provider: str,
    account: str,
    snap: PlanSnapshot,
    raw: dict[str, str],
) -> None:
    """One compact row per response, and the latest reading per window (an older reading never
    overwrites a newer one: responses can finish out of order)."""
    lg.conn.execute(
        "INSERT INTO plan_snapshots (at, request_id, session_id, provider, account, status, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at_ms, request_id, session_id, provider, account, snap.status, snap.compact()),
    )
    raw_json = json.dumps(raw, separators=(",", ":"), sort_keys=True)
    for w in snap.windows:
        lg.conn.execute(
            "INSERT INTO plan_latest (provider, account, window, used_pct, resets_at, window_minutes, status, at, "
            "session_id, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (provider, account, window) DO UPDATE SET used_pct = excluded.used_pct, "
            "resets_at = excluded.resets_at, window_minutes = excluded.window_minutes, status = excluded.status, "
            "at = excluded.at, session_id = excluded.session_id, raw = excluded.raw "
            "WHERE excluded.at >= plan_latest.at",
            (
                provider,
                account,
                w.name,
                w.used_pct,
                w.resets_at,
                w.window_minutes,
                snap.status,
                at_ms,
                session_id,
                raw_json,
            ),
        )


def latest(conn) -> list[dict[str, Any]]:
    try:
        rows = conn.execute("SELECT * FROM plan_latest ORDER BY provider, account, window").fetchall()
    except Exception:  # a ledger from before m007 opened read-only
        return []
    out = []
    for r in rows:
        d = dict(r)
        d["raw"] = json.loads(d.get("raw") or "{}")
        out.append(d)
    return out


def readings(conn) -> list[Reading]:
    return [
        Reading(
            r["provider"],
            r["account"],
            r["window"],
            r["used_pct"],
            r["resets_at"],
            r["status"],
            r["at"] / 1000,
            r["window_minutes"],
        )
        for r in latest(conn)
    ]


def snapshots(conn, since_ms: int, provider: str | None = None, account: str | None = None) -> list[dict[str, Any]]:
    """Snapshots in time order, each with `windows` decoded: {name: [used_pct, resets_at, minutes]}."""
    sql = "SELECT * FROM plan_snapshots WHERE at >= ?"
    args: list[Any] = [since_ms]
    if provider is not None:
        sql += " AND provider = ?"
        args.append(provider)
    if account is not None:
        sql += " AND account = ?"
        args.append(account)
    try:
        rows = conn.execute(sql + " ORDER BY at, id", args).fetchall()
    except Exception:
        return []
    out = []
    for r in rows:
        d = dict(r)
        data = json.loads(d.pop("data"))
        d["windows"] = data.get("w", {})
        d["claim"] = data.get("c")
        d["known"] = data.get("k", {})
        d["extra"] = data.get("x", {})
        out.append(d)
    return out


def finished_requests(conn, since_ms: int, provider: str, subscription: bool) -> list[dict[str, Any]]:
    """Requests of one provider (subscription or API-key traffic) that finished after `since_ms`, with their
    session, end time and weight, for the per-session shares."""
    rows = conn.execute(
        "SELECT session_id, started_at + CAST(COALESCE(duration_ms, 0) AS INTEGER) AS end_ms, cost_usd, "
        "input_tokens + cache_read_tokens + cache_write_tokens + output_tokens AS tokens, request_id "
        "FROM requests WHERE provider = ? AND subscription = ? AND started_at >= ? - 86400000 "
        "AND status IN ('ok', 'partial') ORDER BY end_ms",
        (provider, int(subscription), since_ms),
    ).fetchall()
    return [dict(r) for r in rows if r["end_ms"] >= since_ms]


def plan_section(conn, now_s: float, lines: dict[str, float] | None = None, thresholds=None) -> list[dict]:
    """Every plan window this ledger has readings for, with pace and per-session shares (plan/view.py)."""
    from ..plan.view import build

    rows = latest(conn)
    if not rows:
        return []
    # Readings of the current window instances: the weekly window reaches back a week.
    since_ms = int((now_s - 8 * 86400) * 1000)
    snaps: dict[tuple[str, str], list[dict]] = {}
    finished: dict[tuple[str, bool], list[dict]] = {}
    for r in rows:
        key = (r["provider"], r["account"])
        if key not in snaps:
            snaps[key] = snapshots(conn, since_ms, *key)
        fkey = (r["provider"], r["account"] != "api")
        if fkey not in finished:
            finished[fkey] = finished_requests(conn, since_ms, *fkey)
    kw = {}
    if thresholds is not None:
        kw = {"block_at": thresholds.block_at, "alert_at": thresholds.alert_at, "downgrade_at": thresholds.downgrade_at}
    return build(rows, snaps, finished, now_s, lines, **kw)


def daily_peaks(conn, since_ms: int | None, until_ms: int | None) -> list[dict]:
    """Each window's highest reading per UTC day in a period: the history `report --json` carries (one row
    per day and window rather than one per response)."""
    try:
        rows = conn.execute(
            "SELECT date(at / 1000, 'unixepoch') AS day, provider, account, w.key AS window, "
            "MAX(json_extract(w.value, '$[0]')) AS peak_pct, COUNT(*) AS readings "
            "FROM plan_snapshots, json_each(plan_snapshots.data, '$.w') AS w "
            "WHERE at >= ? AND at < ? GROUP BY day, provider, account, w.key ORDER BY day, provider, account, w.key",
            (since_ms or 0, until_ms or 2**62),
        ).fetchall()
    except Exception:  # a ledger from before m007
        return []
    return [dict(r) for r in rows]
