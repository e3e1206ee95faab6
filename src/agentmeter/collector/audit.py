"""The collector's audit trail (issue 20 item 6): every cap change and token issue or revocation, made on the
command line (`collector caps set`, team wallets `caps set --pooled|--member`, alert routes `collector alerts
set|rm`, `collector token add|revoke`) or through the HTTP API (PUT /v1/caps), with
who (the OS user, or the token's id and developer), when, and the old and new value.

Portable SQL (`?` placeholders, standard statements) on the store's handle, so it runs on SQLite and
PostgreSQL alike. Other collector modules that change something a lead answers for (wallet caps, alert routes)
call `record` with an actor from `cli_actor()` or `token_actor(who)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC
from typing import Any

COLUMNS = ("id", "at", "actor", "token_id", "developer", "via", "action", "team", "target", "old", "new", "detail")


def cli_actor() -> dict[str, Any]:
    """Someone at the collector's host, on its command line: their OS user (who can read --db is an admin)."""
    try:
        import pwd

        name = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        name = f"uid {os.getuid()}"
    return {"actor": f"os:{name}", "token_id": None, "developer": None, "via": "cli"}


def token_actor(who: dict[str, Any]) -> dict[str, Any]:
    """A request through the HTTP API: the token's public id and the developer it was issued to."""
    return {
        "actor": f"token {who['id']} ({who['developer']})",
        "token_id": who["id"],
        "developer": who["developer"],
        "via": "http",
    }


def record(
    db,
    actor: dict[str, Any],
    *,
    at_ms: int,
    action: str,
    team: str | None = None,
    target: str = "",
    old: Any = None,
    new: Any = None,
    detail: str = "",
) -> None:
    db.execute(
        "INSERT INTO audit (at, actor, token_id, developer, via, action, team, target, old, new, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at_ms,
            actor["actor"],
            actor.get("token_id"),
            actor.get("developer"),
            actor.get("via") or "cli",
            action,
            team or "",
            target,
            _json(old),
            _json(new),
            detail,
        ),
    )


def entries(
    db, *, since_ms: int | None = None, until_ms: int | None = None, team: str | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    """Oldest first. `team` limits to one team's entries (a lead's view); `action` is an action or its family
    before the dot (`caps`, `token`)."""
    return list(iter_entries(db, since_ms=since_ms, until_ms=until_ms, team=team, action=action))


def iter_entries(
    db, *, since_ms: int | None = None, until_ms: int | None = None, team: str | None = None, action: str | None = None
) -> Iterator[dict[str, Any]]:
    where, args = [], []
    if since_ms is not None:
        where.append("at >= ?")
        args.append(since_ms)
    if until_ms is not None:
        where.append("at < ?")
        args.append(until_ms)
    if team is not None:
        where.append("team = ?")
        args.append(team)
    if action:
        where.append("(action = ? OR action LIKE ? ESCAPE '!')")
        args += [action, action.replace("!", "!!").replace("_", "!_").replace("%", "!%") + ".%"]
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit"
    if where:
        sql += " WHERE " + " AND ".join(where)
    for r in db.execute(sql + " ORDER BY at, id", args):
        row = {c: r[c] for c in COLUMNS}
        row["old"], row["new"] = _load(row["old"]), _load(row["new"])
        yield row


def public(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries as `collector audit --json` and the export show them: `at` as ISO 8601 UTC, no row id."""
    from datetime import datetime

    return [
        {
            "at": datetime.fromtimestamp(r["at"] / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **{c: r[c] for c in COLUMNS if c not in ("id", "at")},
        }
        for r in rows
    ]


def write_csv(rows: list[dict[str, Any]], out) -> None:
    """The audit export: one row per entry, old and new as JSON text, formula-looking cells neutralised."""
    import csv

    from ..core.csvsafe import cell

    w = csv.writer(out, lineterminator="\n")
    cols = ["at", *[c for c in COLUMNS if c not in ("id", "at")]]
    w.writerow(cols)
    for r in rows:
        w.writerow([cell(_json(r[c]) if c in ("old", "new") else r[c]) for c in cols])


def may_set_caps(store, grant, scope: str, name: str) -> bool:
    """A lead sets the caps of their own team and of its members (by the team on their tokens) only."""
    if grant.all_teams:
        return True
    if scope == "team":
        return name == grant.team
    return _team_of(store.conn, name) == grant.team


# -- changes that record themselves -------------------------------------------------------------------------


def set_caps(store, actor: dict[str, Any], scope: str, name: str, caps: dict[str, Any], now_ms: int) -> dict:
    """store.set_caps, and an audit entry with the caps before and after (None: no caps)."""
    with store._tx():  # the change and its entry commit together (the store's own transaction joins this one)
        old = store.caps(scope, name)
        got = store.set_caps(scope, name, caps, now_ms)
        team = name if scope == "team" else _team_of(store.conn, name)
        record(
            store.conn,
            actor,
            at_ms=now_ms,
            action="caps.set",
            team=team,
            target=f"{scope} {name}",
            old=_caps_value(old),
            new=_caps_value(got),
        )
    return got


def add_token(
    store,
    actor: dict[str, Any],
    developer: str,
    team: str | None,
    role: str,
    now_ms: int,
    cost_center: str | None = None,
) -> tuple[str, str]:
    with store._tx():
        token_id, token = store.add_token(developer, team, role == "admin", now_ms, cost_center=cost_center, role=role)
        record(
            store.conn,
            actor,
            at_ms=now_ms,
            action="token.add",
            team=team,
            target=token_id,
            old=None,
            new={"developer": developer, "team": team or None, "role": role, "cost_center": cost_center or None},
        )
    return token_id, token


def revoke(store, actor: dict[str, Any], now_ms: int, token_id: str | None = None, developer: str | None = None) -> int:
    with store._tx():
        active = [
            t
            for t in store.tokens()
            if t.get("revoked_at") is None
            and (t["id"] == token_id if token_id is not None else t["developer"] == developer)
        ]
        n = store.revoke(now_ms, token_id=token_id, developer=developer)
        if n:
            for t in active:
                record(
                    store.conn,
                    actor,
                    at_ms=now_ms,
                    action="token.revoke",
                    team=t.get("team"),
                    target=t["id"],
                    old={"developer": t["developer"], "role": t.get("role"), "active": True},
                    new={"active": False},
                )
    return n


def _team_of(db, developer: str) -> str | None:
    """The team an admin gave this developer's newest token (never what a push claimed)."""
    row = db.execute(
        "SELECT team FROM tokens WHERE developer = ? AND team IS NOT NULL ORDER BY created_at DESC", (developer,)
    ).fetchone()
    return row[0] if row else None


def _caps_value(caps: dict[str, Any] | None) -> dict[str, Any] | None:
    if not caps:
        return None
    return {k: v for k, v in caps.items() if k != "name"}


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
