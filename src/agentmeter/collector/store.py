"""The collector's store, on SQLite or PostgreSQL (engine.py): the collector's core SQL lives here.

`self.conn` is the engine's handle, safe from several threads (a connection per thread on SQLite, a pool on
PostgreSQL); write with `with self._tx():`. Tokens are stored as sha256 hashes; the token itself is shown
once, at `token add`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..home.paths import make_private
from ..ledger.schema import TOKEN_COLUMNS
from . import aggregates, chargeback, engine
from . import plan_windows as plan_store

CAP_FIELDS = ("daily_usd", "weekly_usd", "monthly_usd", "daily_tokens", "weekly_tokens", "monthly_tokens")
REPORT_BY = {
    "developer": "developer",
    "team": "team",
    "agent": "agent",
    "repo": "repo",
    "model": "model",
    "day": "day",
    "cost_center": "cost_center",
    "provider": "provider",
}
TOKEN_PREFIX = "amc_"

# The columns a push writes (benchmarks/collector_scale.py fills the same tables with them).
ROLLUP_COLUMNS = [
    "developer",
    "item_key",
    "device_id",
    "team",
    "cost_center",
    "day",
    "agent",
    "provider",
    "model",
    "repo",
    "subscription",
    "requests",
    *TOKEN_COLUMNS,
    "cost_usd",
    "unpriced_requests",
    "cost_by_type",
    "tag_split",
    "received_at",
]
SESSION_COLUMNS = [
    "developer",
    "item_key",
    "device_id",
    "session_id",
    "team",
    "cost_center",
    "agent",
    "repo",
    "branch",
    "day",
    "started_at",
    "ended_at",
    "requests",
    *TOKEN_COLUMNS,
    "cost_usd",
    "unpriced_requests",
    "models",
    "received_at",
]


def upsert(table: str, cols: Sequence[str], key: Sequence[str]) -> str:
    """INSERT … ON CONFLICT (key) DO UPDATE SET every other column: the same statement on both engines, and
    re-running it with the same row leaves the same row (idempotent)."""
    rest = [c for c in cols if c not in key]
    action = f"DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in rest)}" if rest else "DO NOTHING"
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
        f"ON CONFLICT ({', '.join(key)}) {action}"
    )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CollectorStore:
    def __init__(self, db: engine.Database) -> None:
        self.conn = self.db = db
        self.dialect = db.dialect
        self.target = db.target
        self._collector_id: str | None = None

    # -- schema ---------------------------------------------------------------------------------------------

    def migrate(self) -> None:
        from .migrations import migrations

        migrations.apply(self.db)
        if self.dialect == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                make_private(Path(str(self.target) + suffix))

    def applied_migrations(self) -> list[str]:
        from .migrations import migrations

        return migrations.applied(self.db)

    def collector_id(self) -> str:
        """Written once by the first migration, never changed: read once per store, not once per push."""
        if self._collector_id is None:
            self._collector_id = self.conn.execute("SELECT value FROM meta WHERE key = 'collector_id'").fetchone()[0]
        return self._collector_id

    def _tx(self):
        return self.db.transaction()

    # -- tokens ---------------------------------------------------------------------------------------------

    def add_token(
        self,
        developer: str,
        team: str | None,
        admin: bool,
        now_ms: int,
        cost_center: str | None = None,
        role: str | None = None,
    ) -> tuple[str, str]:
        """Returns (public id, the token). Only the token's hash is stored. The team and cost centre given here
        are the only ones this token's pushes are ever filed under."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = "tok_" + secrets.token_hex(4)
        with self._tx():
            self.conn.execute(
                "INSERT INTO tokens (id, token_hash, developer, team, cost_center, admin, role, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    hash_token(token),
                    developer,
                    team or None,
                    cost_center or None,
                    int(admin),
                    role or ("admin" if admin else "developer"),
                    now_ms,
                ),
            )
        return token_id, token

    def revoke(self, now_ms: int, token_id: str | None = None, developer: str | None = None) -> int:
        with self._tx():
            if token_id is not None:
                cur = self.conn.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now_ms, token_id)
                )
            else:
                cur = self.conn.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE developer = ? AND revoked_at IS NULL", (now_ms, developer)
                )
        return cur.rowcount

    def tokens(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, developer, team, cost_center, admin, role, created_at, revoked_at "
            "FROM tokens ORDER BY created_at"
        )
        return [dict(r) for r in rows]

    def authenticate(self, token: str) -> dict[str, Any] | None:
        """The token's row if it is valid and not revoked. The presented token is hashed first, so the lookup
        never compares secrets; compare_digest keeps the final check constant-time all the same."""
        h = hash_token(token)
        row = self.conn.execute(
            "SELECT id, token_hash, developer, team, cost_center, admin, role, revoked_at "
            "FROM tokens WHERE token_hash = ?",
            (h,),
        ).fetchone()
        if row is None or not hmac.compare_digest(row["token_hash"], h) or row["revoked_at"] is not None:
            return None
        return {
            "id": row["id"],
            "developer": row["developer"],
            "team": row["team"],
            "cost_center": row["cost_center"],
            "admin": bool(row["admin"]),
            "role": row["role"],
        }

    # -- pushes ---------------------------------------------------------------------------------------------

    def push(
        self,
        who: dict[str, Any],
        device_id: str,
        rollups: list[dict],
        sessions: list[dict],
        deleted: list[str],
        now_ms: int,
        plan_windows: list[dict] | None = None,
    ) -> dict[str, int]:
        """Upsert the items under the token's developer (a re-push replaces, never adds) in one transaction.
        Team and cost centre are the token's, whatever the push says (it says nothing: validate drops them)."""
        dev = who["developer"]

        def team_of(_item: dict) -> str:
            return who.get("team") or ""

        def cc_of(_item: dict) -> str:
            return who.get("cost_center") or ""

        rcols, scols = ROLLUP_COLUMNS, SESSION_COLUMNS
        rrows = [
            [
                dev,
                r["key"],
                device_id,
                team_of(r),
                cc_of(r),
                r["day"],
                r["agent"],
                r["provider"],
                r["model"],
                r["repo"],
                int(r["subscription"]),
                r["requests"],
                *(r.get(c, 0) for c in TOKEN_COLUMNS),
                r["cost_usd"],
                r.get("unpriced_requests", 0),
                json.dumps(r.get("cost_by_type") or {}, sort_keys=True),
                json.dumps(r["tag_split"], sort_keys=True) if r.get("tag_split") else None,  # for the FOCUS export
                now_ms,
            ]
            for r in rollups
        ]
        srows = [
            [
                dev,
                s["key"],
                device_id,
                s["session_id"],
                team_of(s),
                cc_of(s),
                s["agent"],
                s.get("repo") or "",
                s.get("branch") or "",
                s["day"],
                s["started_at"],
                s.get("ended_at"),
                s["requests"],
                *(s.get(c, 0) for c in TOKEN_COLUMNS),
                s["cost_usd"],
                s.get("unpriced_requests", 0),
                json.dumps(s.get("models") or []),
                now_ms,
            ]
            for s in sessions
        ]
        days = {r["day"] for r in rollups}
        with self._tx():
            # A replaced row may have been filed under another day: that day's aggregates change too.
            keys = [r["key"] for r in rollups]
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                marks = ", ".join("?" * len(chunk))
                days.update(
                    r[0]
                    for r in self.conn.execute(
                        f"SELECT DISTINCT day FROM rollups WHERE developer = ? AND item_key IN ({marks})", (dev, *chunk)
                    )
                )
            for table, cols, rows in (("rollups", rcols, rrows), ("sessions", scols, srows)):
                if rows:
                    self.conn.executemany(upsert(table, cols, ("developer", "item_key")), rows)
            windows = plan_store.upsert(self.conn, who, device_id, plan_windows or [], now_ms)
            gone = 0
            for key in deleted:
                for table in ("rollups", "sessions"):
                    if table == "rollups":
                        days.update(
                            r[0]
                            for r in self.conn.execute(
                                "SELECT day FROM rollups WHERE developer = ? AND item_key = ?", (dev, key)
                            )
                        )
                    gone += self.conn.execute(
                        f"DELETE FROM {table} WHERE developer = ? AND item_key = ?", (dev, key)
                    ).rowcount
                gone += plan_store.delete(self.conn, dev, key)
            aggregates.refresh(self.db, dev, days)
            chargeback.store_sessions(self.conn, dev, sessions, deleted)  # tags, end commit (issue 20 item 7)
        return {"rollups": len(rrows), "sessions": len(srows), "deleted": gone, "plan_windows": windows}

    def plan_windows(self, now_s: int, team: str | None = None) -> list[dict[str, Any]]:
        return plan_store.latest(self.conn, now_s, team)

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

    def report(
        self, by: str, since: str | None = None, until: str | None = None, team: str | None = None
    ) -> list[dict[str, Any]]:
        """One grouped read of the pre-aggregated tables (aggregates.py), never of the rollups; one team's report
        (a lead's token) reads that team's rollups, which the aggregates do not split by team."""
        col = REPORT_BY[by]
        if team is not None:
            sums = aggregates.sums_sql(self.dialect)
            where, args = self._where(since, until, team=team)
            return [
                dict(r)
                for r in self.conn.execute(
                    f"SELECT {col} AS key, {sums}, COUNT(DISTINCT developer) AS developers FROM rollups {where} "
                    f"GROUP BY {col} ORDER BY {'key' if by == 'day' else 'cost_usd DESC, key'}",
                    args,
                )
            ]
        sums = aggregates.sums_sql(self.dialect)
        order = "key" if by == "day" else "cost_usd DESC, key"
        if col in aggregates.DIMENSIONS:
            # Sums from the totals, developers from the per-developer rows (a value nobody has left drops out).
            where, args = self._where(since, until, dim=col)
            devs = {
                r[0]: r[1]
                for r in self.conn.execute(
                    f"SELECT key, COUNT(DISTINCT developer) FROM agg_dimension_day {where} GROUP BY key", args
                )
            }
            rows = [
                dict(r)
                for r in self.conn.execute(f"SELECT key, {sums} FROM agg_dimension_total {where} GROUP BY key", args)
                if r["key"] in devs
            ]
            for r in rows:
                r["developers"] = devs[r["key"]]
            return sorted(rows, key=lambda r: (-r["cost_usd"], r["key"]))
        else:
            where, args = self._where(since, until)
            q = (
                f"SELECT {col} AS key, {sums}, COUNT(DISTINCT developer) AS developers FROM agg_developer_day "
                f"{where} GROUP BY {col} ORDER BY {order}"
            )
        return [dict(r) for r in self.conn.execute(q, args)]

    def totals(self, since: str | None = None, until: str | None = None, team: str | None = None) -> dict[str, Any]:
        sums = aggregates.sums_sql(self.dialect)
        where, args = self._where(since, until, team=team)
        row = dict(
            self.conn.execute(
                f"SELECT {sums}, COUNT(DISTINCT developer) AS developers FROM agg_developer_day {where}", args
            ).fetchone()
        )
        srow = self.conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(cost_usd), 0.0) FROM sessions {where}", args
        ).fetchone()
        row["sessions"], row["sessions_cost_usd"] = srow[0], srow[1]
        return row

    def chargeback(self, since: str | None, until: str | None, team: str | None = None) -> list[dict[str, Any]]:
        where, args = self._where(since, until, team=team)
        rows = self.conn.execute(
            f"""SELECT team, developer, cost_center, {aggregates.sum_int("requests", self.dialect)} AS requests,
                       {
                aggregates.sum_int(
                    "input_tokens + cache_read_tokens + cache_write_tokens + output_tokens", self.dialect
                )
            } AS tokens,
                       COALESCE(SUM(CASE WHEN subscription = 0 THEN cost_usd ELSE 0 END), 0.0) AS billed_usd,
                       COALESCE(SUM(CASE WHEN subscription = 1 THEN cost_usd ELSE 0 END), 0.0) AS subscription_usd,
                       COALESCE(SUM(cost_usd), 0.0) AS cost_usd, COUNT(DISTINCT device_id) AS devices
                FROM agg_developer_day {where} GROUP BY team, developer, cost_center
                ORDER BY team, cost_usd DESC, developer""",
            args,
        )
        return [dict(r) for r in rows]

    def daily(
        self, since: str | None, until: str | None, developer: str | None = None, team: str | None = None
    ) -> list[dict[str, Any]]:
        where, args = self._where(since, until, developer=developer, team=team)
        rows = self.conn.execute(
            f"SELECT day, COALESCE(SUM(cost_usd), 0.0) AS cost_usd FROM agg_developer_day "
            f"{where} GROUP BY day ORDER BY day",
            args,
        )
        return [dict(r) for r in rows]

    def focus_source(
        self, since: str | None = None, until: str | None = None, team: str | None = None
    ) -> Iterator[dict[str, Any]]:
        where, args = self._where(since, until, team=team)
        for r in self.db.stream(f"SELECT * FROM rollups {where} ORDER BY day, developer, item_key", args):
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
                    upsert("caps", ("scope", "name", *CAP_FIELDS, "allow_snooze", "updated_at"), ("scope", "name")),
                    (scope, name, *values, allow, now_ms),
                )
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
        row = self.conn.execute(
            "SELECT team FROM agg_developer_day WHERE developer = ? AND team != '' ORDER BY received_at DESC LIMIT 1",
            (developer,),
        ).fetchone()
        return row[0] if row else None

    def teams(self) -> dict[str, str]:
        """Every developer's team (the one their latest push was filed under), in one read."""
        latest: dict[str, tuple[int, str]] = {}
        for dev, team, at in self.conn.execute(
            "SELECT developer, team, MAX(received_at) FROM agg_developer_day WHERE team != '' GROUP BY developer, team"
        ):
            if dev not in latest or at > latest[dev][0]:
                latest[dev] = (at, team)
        return {dev: team for dev, (_at, team) in latest.items()}

    def close(self) -> None:
        self.conn.close()


def open_store(target: Path | str) -> CollectorStore:
    """The store on `target` (a SQLite file path, or a postgresql:// URL), migrated."""
    store = CollectorStore(engine.connect(target))
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
