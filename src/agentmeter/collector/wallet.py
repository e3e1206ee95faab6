"""The team wallet on the collector: caps over a team's *pooled* spend, and member sub-caps inside it.

A wallet row is (team, member): member '' is the pooled wallet (the team's spend together), '*' is the
sub-cap every member has inside it, and a developer's name is that member's own sub-cap (it replaces '*').
`GET /v1/caps` publishes the wallet with the team's spend per day, the asking developer's and the asking
device's, so a client can add its own live spend to what the others had spent when the figure was taken
(others = team − this device; see sync/wallet.py).

SQL here is portable (`?` placeholders, COALESCE(SUM()), ON CONFLICT … DO UPDATE), so it runs on SQLite
and on PostgreSQL alike.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

CAP_FIELDS = ("daily_usd", "weekly_usd", "monthly_usd", "daily_tokens", "weekly_tokens", "monthly_tokens")
POOLED = ""
EVERY_MEMBER = "*"
# Days of figures published: the month window plus a week that straddles the month's start.
PUBLISHED_DAYS = 40
_TOKENS = "input_tokens + cache_read_tokens + cache_write_tokens + output_tokens"


def _cols(row: Any) -> dict[str, Any]:
    return {f: row[i] for i, f in enumerate(CAP_FIELDS) if row[i] is not None}


def set_caps(
    store,
    team: str,
    member: str,
    caps: dict[str, Any],
    allow_snooze: bool,
    now_ms: int,
    actor: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Replace one wallet row's caps; no cap at all removes the row. Returns the stored row. With `actor`
    (audit.cli_actor() / audit.token_actor(who)) the change is recorded in the audit trail, old and new, in
    the same transaction."""
    values = [caps.get(f) for f in CAP_FIELDS]
    with store._tx():
        old = row(store, team, member) if actor is not None else None
        if all(v is None for v in values):
            store.conn.execute("DELETE FROM wallets WHERE team = ? AND member = ?", (team, member))
        else:
            sets = ", ".join(f"{f} = excluded.{f}" for f in (*CAP_FIELDS, "allow_snooze", "updated_at"))
            store.conn.execute(
                f"INSERT INTO wallets (team, member, {', '.join(CAP_FIELDS)}, allow_snooze, updated_at) "
                f"VALUES (?, ?, {', '.join('?' * len(CAP_FIELDS))}, ?, ?) "
                f"ON CONFLICT (team, member) DO UPDATE SET {sets}",
                (team, member, *values, int(bool(allow_snooze)), now_ms),
            )
        got = row(store, team, member)
        if actor is not None and got != old:
            from . import audit

            audit.record(
                store.conn,
                actor,
                at_ms=now_ms,
                action="wallet.set",
                team=team,
                target=f"wallet {team}" if member == POOLED else f"wallet {team} member {member}",
                old=old,
                new=got,
            )
    return got


def row(store, team: str, member: str) -> dict[str, Any] | None:
    got = store.conn.execute(
        f"SELECT {', '.join(CAP_FIELDS)}, allow_snooze FROM wallets WHERE team = ? AND member = ?", (team, member)
    ).fetchone()
    if got is None:
        return None
    return {**_cols(got), "allow_snooze": bool(got[len(CAP_FIELDS)])}


def all_rows(store) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        f"SELECT team, member, {', '.join(CAP_FIELDS)}, allow_snooze, updated_at FROM wallets ORDER BY team, member"
    ).fetchall()
    return [
        {
            "team": r[0],
            "member": r[1] or None,
            "scope": "pooled" if r[1] == POOLED else "member",
            **{f: r[2 + i] for i, f in enumerate(CAP_FIELDS)},
            "allow_snooze": bool(r[2 + len(CAP_FIELDS)]),
            "updated_at": r[3 + len(CAP_FIELDS)],
        }
        for r in rows
    ]


def teams(store) -> list[str]:
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT team FROM wallets WHERE member = ? ORDER BY team", (POOLED,)
        ).fetchall()
    ]


def member_caps(store, team: str, developer: str) -> dict[str, Any] | None:
    """The member's own sub-cap if the lead set one, else the sub-cap every member has."""
    return row(store, team, developer) or row(store, team, EVERY_MEMBER)


def days(store, team: str, developer: str, device_id: str, since: str) -> dict[str, list]:
    """Per day since `since`: [team usd, team tokens, member usd, member tokens, device usd, device tokens]."""
    rows = store.conn.execute(
        f"""SELECT day, COALESCE(SUM(cost_usd), 0), COALESCE(SUM({_TOKENS}), 0),
                   COALESCE(SUM(CASE WHEN developer = ? THEN cost_usd ELSE 0 END), 0),
                   COALESCE(SUM(CASE WHEN developer = ? THEN {_TOKENS} ELSE 0 END), 0),
                   COALESCE(SUM(CASE WHEN developer = ? AND device_id = ? THEN cost_usd ELSE 0 END), 0),
                   COALESCE(SUM(CASE WHEN developer = ? AND device_id = ? THEN {_TOKENS} ELSE 0 END), 0)
            FROM rollups WHERE team = ? AND day >= ? GROUP BY day ORDER BY day""",
        (developer, developer, developer, device_id, developer, device_id, team, since),
    ).fetchall()
    return {
        r[0]: [round(float(r[1]), 6), int(r[2]), round(float(r[3]), 6), int(r[4]), round(float(r[5]), 6), int(r[6])]
        for r in rows
    }


def team_days(store, team: str, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
    """The team's spend per (day, member), in day order: what `collector budget test --team` replays."""
    where, args = ["team = ?"], [team]
    if since:
        where.append("day >= ?")
        args.append(since)
    if until:
        where.append("day <= ?")
        args.append(until)
    rows = store.conn.execute(
        f"""SELECT day, developer, COALESCE(SUM(cost_usd), 0), COALESCE(SUM({_TOKENS}), 0),
                   COALESCE(SUM(requests), 0)
            FROM rollups WHERE {" AND ".join(where)} GROUP BY day, developer ORDER BY day, developer""",
        args,
    ).fetchall()
    return [
        {"day": r[0], "developer": r[1], "cost_usd": float(r[2]), "tokens": int(r[3]), "requests": int(r[4])}
        for r in rows
    ]


def publish(store, team: str | None, developer: str, device_id: str, today: date, now_ms: int) -> dict[str, Any] | None:
    """What a member's client needs to enforce the wallet, or None when the team has no wallet."""
    if not team:
        return None
    pooled = row(store, team, POOLED)
    member = member_caps(store, team, developer)
    if pooled is None and member is None:
        return None
    since = (today - timedelta(days=PUBLISHED_DAYS)).isoformat()
    return {
        "team": team,
        "caps": {k: v for k, v in (pooled or {}).items() if k != "allow_snooze"},
        "member_caps": {k: v for k, v in (member or {}).items() if k != "allow_snooze"},
        "allow_snooze": bool((pooled or member or {}).get("allow_snooze", False)),
        "as_of_ms": now_ms,
        "since": since,
        "columns": ["team_usd", "team_tokens", "member_usd", "member_tokens", "device_usd", "device_tokens"],
        "days": days(store, team, developer, device_id, since),
    }


def replay_payload(
    store, team: str, since: str, pooled_flags: dict[str, Any], member_flags: dict[str, Any]
) -> dict[str, Any]:
    """`collector budget test --team`: the wallet's caps (or the flags given) replayed over the team's days."""
    from ..budget.wallet_replay import replay_team

    def caps_of(stored: dict[str, Any] | None, flags: dict[str, Any]) -> dict[str, Any]:
        given = {k: v for k, v in flags.items() if v is not None}
        if given:
            return given
        return {k: v for k, v in (stored or {}).items() if k in CAP_FIELDS}

    pooled = caps_of(row(store, team, POOLED), pooled_flags)
    member = caps_of(row(store, team, EVERY_MEMBER), member_flags)
    rows = team_days(store, team, since)
    r = replay_team(rows, pooled, member)
    return {
        "team": team,
        "since": since,
        "first_day": rows[0]["day"] if rows else None,
        "members": len({x["developer"] for x in rows}),
        "requests": r.requests,
        "caps": pooled,
        "member_caps": member,
        "stages": r.first_stage,
        "refused": r.refused,
        "refused_members": r.refused_members,
        "first_refusal": r.first_refusal,
        "actual_usd": round(r.actual_usd, 6),
        "with_caps_usd": round(r.replay_usd, 6),
        "saved_usd": round(r.saved_usd, 6),
        "worst": r.worst,
        "method": "daily rollups replayed as requests at each member-day's average cost, members in turn",
    }
