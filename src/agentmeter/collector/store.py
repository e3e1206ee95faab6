"""The collector's SQLite store: all of the collector's SQL lives here.

One connection, used from one thread at a time (the app runs every call on a one-thread executor; the CLI
calls it directly). Tokens are stored as sha256 hashes; the token itself is shown once, at `token add`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..home.paths import make_private
from ..ledger.schema import TOKEN_COLUMNS

CAP_FIELDS = ("daily_usd", "weekly_usd", "monthly_usd", "daily_tokens", "weekly_tokens", "monthly_tokens")
REPORT_BY = {"developer": "developer", "team": "team", "agent": "agent", "repo": "repo", "model": "model",
             "day": "day", "cost_center": "cost_center", "provider": "provider"}
_SUMS = (*TOKEN_COLUMNS, "requests", "cost_usd", "unpriced_requests")
TOKEN_PREFIX = "amc_"


def _total(col: str) -> str:
    """A sum that cannot overflow: TOTAL() adds in floating point; counts come back as integers (saturated)."""
    if col == "cost_usd":
        return "TOTAL(cost_usd) AS cost_usd"
    return f"CAST(MIN(TOTAL({col}), 9.2e18) AS INTEGER) AS {col}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CollectorStore:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    # -- schema ---------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        from sqlite_utils import Database

        from .migrations import migrations

        migrations.apply(Database(self.conn))
        for suffix in ("", "-wal", "-shm"):
            make_private(Path(str(self.path) + suffix))

    def collector_id(self) -> str:
        return self.conn.execute("SELECT value FROM meta WHERE key = 'collector_id'").fetchone()[0]

    def _tx(self):
        return _Transaction(self.conn)

    # -- tokens ---------------------------------------------------------------------------------------------

    def add_token(self, developer: str, team: str | None, admin: bool, now_ms: int,
                  cost_center: str | None = None) -> tuple[str, str]:
        """Returns (public id, the token). Only the token's hash is stored. The team and cost centre given here
        are the only ones this token's pushes are ever filed under."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(4)
        with self._tx():
            self.conn.execute(
                "INSERT INTO tokens (id, token_hash, developer, team, cost_center, admin, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, hash_token(token), developer, team or None, cost_center or None, int(admin), now_ms))
        return token_id, token

    def revoke(self, now_ms: int, token_id: str | None = None, developer: str | None = None) -> int:
        with self._tx():
            if token_id is not None:
                cur = self.conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                        (now_ms, token_id))
            else:
                cur = self.conn.execute("UPDATE tokens SET revoked_at = ? WHERE developer = ? AND revoked_at IS NULL",
                                        (now_ms, developer))
        return cur.rowcount

    def tokens(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT id, developer, team, cost_center, admin, created_at, revoked_at FROM tokens "
                                 "ORDER BY created_at")
        return [dict(r) for r in rows]

    def authenticate(self, token: str) -> dict[str, Any] | None:
        """The token's row if it is valid and not revoked. The presented token is hashed first, so the lookup
        never compares secrets; compare_digest keeps the final check constant-time all the same."""
        h = hash_token(token)
        row = self.conn.execute("SELECT id, token_hash, developer, team, cost_center, admin, revoked_at FROM tokens "
                                "WHERE token_hash = ?", (h,)).fetchone()
        if row is None or not hmac.compare_digest(row["token_hash"], h) or row["revoked_at"] is not None:
            return None
        return {"id": row["id"], "developer": row["developer"], "team": row["team"],
                "cost_center": row["cost_center"], "admin": bool(row["admin"])}

    # -- pushes ---------------------------------------------------------------------------------------------

    def push(self, who: dict[str, Any], device_id: str, rollups: list[dict], sessions: list[dict],
             deleted: list[str], now_ms: int) -> dict[str, int]:
        """Upsert the items under the token's developer (a re-push replaces, never adds) in one transaction.
        Team and cost centre are the token's, whatever the push says (it says nothing: validate drops them)."""
        dev = who["developer"]

        def team_of(_item: dict) -> str:
            return who.get("team") or ""

        def cc_of(_item: dict) -> str:
            return who.get("cost_center") or ""

        rcols = ["developer", "item_key", "device_id", "team", "cost_center", "day", "agent", "provider", "model",
                 "repo", "subscription", "requests", *TOKEN_COLUMNS, "cost_usd", "unpriced_requests",
                 "cost_by_type", "received_at"]
        scols = ["developer", "item_key", "device_id", "session_id", "team", "cost_center", "agent", "repo",
                 "branch", "day", "started_at", "ended_at", "requests", *TOKEN_COLUMNS, "cost_usd",
                 "unpriced_requests", "models", "received_at"]
        rrows = [[dev, r["key"], device_id, team_of(r), cc_of(r), r["day"], r["agent"], r["provider"], r["model"],
                  r["repo"], int(r["subscription"]), r["requests"], *(r.get(c, 0) for c in TOKEN_COLUMNS),
                  r["cost_usd"], r.get("unpriced_requests", 0), json.dumps(r.get("cost_by_type") or {}, sort_keys=True),
                  now_ms] for r in rollups]
        srows = [[dev, s["key"], device_id, s["session_id"], team_of(s), cc_of(s), s["agent"], s.get("repo") or "",
                  s.get("branch") or "", s["day"], s["started_at"], s.get("ended_at"), s["requests"],
                  *(s.get(c, 0) for c in TOKEN_COLUMNS), s["cost_usd"], s.get("unpriced_requests", 0),
                  json.dumps(s.get("models") or []), now_ms] for s in sessions]
        with self._tx():
            for table, cols, rows in (("rollups", rcols, rrows), ("sessions", scols, srows)):
                if rows:
                    self.conn.executemany(
                        f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        rows)
            gone = 0
            for key in deleted:
                for table in ("rollups", "sessions"):
                    gone += self.conn.execute(f"DELETE FROM {table} WHERE developer = ? AND item_key = ?",
                                              (dev, key)).rowcount
        return {"rollups": len(rrows), "sessions": len(srows), "deleted": gone}

    # -- reports --------------------------------------------------------------------------------------------

    def _where(self, since: str | None, until: str | None, **eq: str | None) -> tuple[str, list]:
        where, args = [], []
        if since:
            where.append("day >= ?")
            args.append(since)
        if until:
            where.append("day <= ?")
            args.append(until)
        for col, value in eq.items():
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        return ("WHERE " + " AND ".join(where)) if where else "", args

    def report(self, by: str, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        col = REPORT_BY[by]
        sums = ", ".join(_total(c) for c in _SUMS)
        where, args = self._where(since, until)
        rows = self.conn.execute(
            f"SELECT {col} AS key, {sums}, COUNT(DISTINCT developer) AS developers FROM rollups {where} "
            f"GROUP BY {col} ORDER BY {'key' if by == 'day' else 'cost_usd DESC, key'}", args)
        return [dict(r) for r in rows]

    def totals(self, since: str | None = None, until: str | None = None) -> dict[str, Any]:
        sums = ", ".join(_total(c) for c in _SUMS)
        where, args = self._where(since, until)
        row = dict(self.conn.execute(f"SELECT {sums}, COUNT(DISTINCT developer) AS developers FROM rollups {where}",
                                     args).fetchone())
        srow = self.conn.execute(f"SELECT COUNT(*), TOTAL(cost_usd) FROM sessions {where}", args).fetchone()
        row["sessions"], row["sessions_cost_usd"] = srow[0], srow[1]
        return row

    def chargeback(self, since: str | None, until: str | None) -> list[dict[str, Any]]:
        where, args = self._where(since, until)
        rows = self.conn.execute(
            f"""SELECT team, developer, cost_center, {_total("requests")},
                       CAST(MIN(TOTAL(input_tokens) + TOTAL(cache_read_tokens) + TOTAL(cache_write_tokens)
                            + TOTAL(output_tokens), 9.2e18) AS INTEGER) AS tokens,
                       TOTAL(CASE WHEN subscription = 0 THEN cost_usd ELSE 0 END) AS billed_usd,
                       TOTAL(CASE WHEN subscription = 1 THEN cost_usd ELSE 0 END) AS subscription_usd,
                       TOTAL(cost_usd) AS cost_usd, COUNT(DISTINCT device_id) AS devices
                FROM rollups {where} GROUP BY team, developer, cost_center ORDER BY team, cost_usd DESC""", args)
        return [dict(r) for r in rows]

    def daily(self, since: str | None, until: str | None, developer: str | None = None) -> list[dict[str, Any]]:
        where, args = self._where(since, until, developer=developer)
        rows = self.conn.execute(f"SELECT day, TOTAL(cost_usd) AS cost_usd FROM rollups {where} GROUP BY day "
                                 "ORDER BY day", args)
        return [dict(r) for r in rows]

    def focus_source(self, since: str | None = None, until: str | None = None) -> Iterator[dict[str, Any]]:
        where, args = self._where(since, until)
        for r in self.conn.execute(f"SELECT * FROM rollups {where} ORDER BY day, developer, item_key", args):
            yield dict(r)

    # -- caps -----------------------------------------------------------------------------------------------

    def set_caps(self, scope: str, name: str, caps: dict[str, Any], now_ms: int) -> dict[str, Any]:
        """Replace the caps of one team or developer (a cap left out is removed); all None deletes the row.
        `allow_snooze` in `caps` lets developers' `budget snooze` lift these caps."""
        values = [caps.get(f) for f in CAP_FIELDS]
        allow = int(bool(caps.get("allow_snooze")))
        with self._tx():
            if all(v is None for v in values):
                self.conn.execute("DELETE FROM caps WHERE scope = ? AND name = ?", (scope, name))
            else:
                self.conn.execute(
                    f"INSERT OR REPLACE INTO caps (scope, name, {', '.join(CAP_FIELDS)}, allow_snooze, updated_at) "
                    f"VALUES (?, ?, {', '.join('?' * len(CAP_FIELDS))}, ?, ?)", (scope, name, *values, allow, now_ms))
        return self.caps(scope, name) or {}

    def caps(self, scope: str, name: str | None) -> dict[str, Any] | None:
        if not name:
            return None
        row = self.conn.execute("SELECT * FROM caps WHERE scope = ? AND name = ?", (scope, name)).fetchone()
        if row is None:
            return None
        out = {f: row[f] for f in CAP_FIELDS if row[f] is not None}
        out["name"] = name
        out["allow_snooze"] = bool(row["allow_snooze"])
        return out

    def all_caps(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM caps ORDER BY scope, name")]

    def team_of(self, developer: str) -> str | None:
        row = self.conn.execute("SELECT team FROM rollups WHERE developer = ? AND team != '' "
                                "ORDER BY received_at DESC LIMIT 1", (developer,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.conn.close()


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if kind else "COMMIT")


def open_store(path: Path) -> CollectorStore:
    path = Path(path).expanduser()
    # Create a missing parent private, but never chmod an existing one (--db /srv/collector.db).
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    store = CollectorStore(conn, path)
    store.migrate()
    return store
