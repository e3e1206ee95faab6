"""The collector's plan windows (issue 18 item 3): each developer's subscription windows as their clients last
pushed them, one row per device × provider × account × window, replaced on every push. The SQL is portable
(`?` placeholders, `INSERT … ON CONFLICT … DO UPDATE`), so it runs on either collector engine."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    "developer",
    "item_key",
    "device_id",
    "team",
    "provider",
    "account",
    "window_name",
    "used_pct",
    "resets_at",
    "status",
    "seen_at",
    "runs_out_at",
    "received_at",
)
_UPSERT = (
    f"INSERT INTO plan_windows ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (developer, item_key) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
)


def upsert(conn: Any, who: dict[str, Any], device_id: str, items: list[dict[str, Any]], now_ms: int) -> int:
    """Store the pushed windows under the token's developer and team (never what the push says)."""
    rows = [
        (
            who["developer"],
            p["key"],
            device_id,
            who.get("team") or "",
            p["provider"],
            p["account"],
            p["window"],
            p["used_pct"],
            p["resets_at"],
            p["status"],
            p["seen_at"],
            p["runs_out_at"],
            now_ms,
        )
        for p in items
    ]
    if rows:
        conn.executemany(_UPSERT, rows)
    return len(rows)


def delete(conn: Any, developer: str, key: str) -> int:
    return conn.execute("DELETE FROM plan_windows WHERE developer = ? AND item_key = ?", (developer, key)).rowcount


def latest(conn: Any, now_s: int, team: str | None = None) -> list[dict[str, Any]]:
    """Every developer's windows (`team`: that team's only), by team, fullest first. A window whose reset has
    passed since its reading is marked `stale` (its used share started again from zero at the reset)."""
    where, args = ("WHERE team = ? ", [team]) if team is not None else ("", [])
    rows = conn.execute(
        "SELECT developer, team, provider, account, window_name, used_pct, resets_at, status, seen_at, runs_out_at "
        f"FROM plan_windows {where}ORDER BY team, used_pct DESC, developer, window_name",
        args,
    ).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["window"] = d.pop("window_name")
        d["stale"] = d["resets_at"] is not None and d["resets_at"] <= now_s
        out.append(d)
    return out
