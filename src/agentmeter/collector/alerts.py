"""Team alerts on the collector: routes, what to send, and once-only claims (issue 20 item 5).

After a push the app asks `evaluate` what the team's pooled spend has crossed: each threshold of each wallet
window (`collector caps set --pooled`), once per window and period, and once when the window's forecast P50
passes the cap before the spend does; and what the pushing member's own spend has crossed against the caps each
member has (wallet sub-caps, the team's per-member caps, a developer's own), once per member, window and period.
`due_digests` gives each team's daily digest once a day after its hour.
Every message is *claimed* in `alerts_sent` (INSERT … ON CONFLICT DO NOTHING) before it goes out, so two
pushes at once can never send it twice. Sending is collector/webhooks.py, in the background.

The collector's windows are UTC calendar days/weeks/months over the rollups' days. SQL is portable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..budget.projection import HISTORY_DAYS, project, recommended_action, trend_7d
from ..budget.windows import NAMES, window
from . import wallet

FORMATS = ("slack", "json")
DEFAULT_THRESHOLDS = (0.8, 1.0)
FORECAST_WINDOWS = ("week", "month")  # a day's forecast swings with every request: alert on week/month only
PREFIX = {"day": "daily", "week": "weekly", "month": "monthly"}


@dataclass(frozen=True)
class Message:
    team: str
    kind: str
    win: str
    period_start: str
    threshold: str
    url: str
    body: dict[str, Any]


# -- routes --------------------------------------------------------------------------------------------------


def set_route(
    store,
    team: str,
    webhook: str,
    fmt: str,
    thresholds: tuple[float, ...],
    digest_hour: int | None,
    now_ms: int,
    actor: dict[str, Any] | None = None,
) -> None:
    """Create or replace a team's route. With `actor` the change is audited (old and new, the webhook as
    scheme://host/… and a fingerprint, never the URL) in the same transaction."""
    with store._tx():
        old = audited_route(route(store, team))
        store.conn.execute(
            "INSERT INTO alert_routes (team, webhook, format, thresholds, digest_hour, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (team) DO UPDATE SET webhook = excluded.webhook, "
            "format = excluded.format, thresholds = excluded.thresholds, digest_hour = excluded.digest_hour, "
            "updated_at = excluded.updated_at",
            (team, webhook, fmt, ",".join(f"{t:g}" for t in thresholds), digest_hour, now_ms),
        )
        new = audited_route(route(store, team))
        if actor is not None and new != old:
            from . import audit

            audit.record(
                store.conn,
                actor,
                at_ms=now_ms,
                action="alerts.set",
                team=team,
                target=f"alerts {team}",
                old=old,
                new=new,
            )


def remove_route(store, team: str, now_ms: int | None = None, actor: dict[str, Any] | None = None) -> int:
    with store._tx():
        old = audited_route(route(store, team))
        n = store.conn.execute("DELETE FROM alert_routes WHERE team = ?", (team,)).rowcount
        if n and actor is not None:
            from . import audit

            audit.record(
                store.conn,
                actor,
                at_ms=int(now_ms or 0),
                action="alerts.rm",
                team=team,
                target=f"alerts {team}",
                old=old,
            )
        return n


def audited_route(r: dict[str, Any] | None) -> dict[str, Any] | None:
    """A route as the audit trail keeps it: the webhook as scheme://host/… plus a fingerprint (the first 12 hex
    of its sha256) so a changed URL shows as changed, never the URL itself (its path is the secret)."""
    if r is None:
        return None
    import hashlib

    from .webhooks import redact

    return {
        "webhook": redact(r["webhook"]),
        "webhook_sha256": hashlib.sha256(r["webhook"].encode()).hexdigest()[:12],
        "format": r["format"],
        "thresholds": r["thresholds"],
        "digest_hour": r["digest_hour"],
    }


def route(store, team: str) -> dict[str, Any] | None:
    r = store.conn.execute(
        "SELECT team, webhook, format, thresholds, digest_hour, updated_at FROM alert_routes WHERE team = ?", (team,)
    ).fetchone()
    return _route(r) if r else None


def routes(store) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT team, webhook, format, thresholds, digest_hour, updated_at FROM alert_routes ORDER BY team"
    ).fetchall()
    return [_route(r) for r in rows]


def _route(r) -> dict[str, Any]:
    return {
        "team": r[0],
        "webhook": r[1],
        "format": r[2],
        "thresholds": [float(x) for x in str(r[3]).split(",") if x],
        "digest_hour": r[4],
        "updated_at": r[5],
    }


def sent(store, team: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    where, args = ("WHERE team = ?", [team]) if team else ("", [])
    rows = store.conn.execute(
        f"SELECT team, kind, win, period_start, threshold, claimed_at, delivered_at, attempts "
        f"FROM alerts_sent {where} ORDER BY claimed_at DESC",
        args,
    ).fetchall()[:limit]
    keys = ("team", "kind", "window", "period_start", "threshold", "claimed_at", "delivered_at", "attempts")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def _claim(store, team: str, kind: str, win: str, period_start: str, threshold: str, now_ms: int) -> bool:
    cur = store.conn.execute(
        "INSERT INTO alerts_sent (team, kind, win, period_start, threshold, claimed_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (team, kind, win, period_start, threshold) DO NOTHING",
        (team, kind, win, period_start, threshold, now_ms),
    )
    return cur.rowcount == 1


def mark(store, m: Message, delivered: bool, attempts: int, now_ms: int) -> None:
    with store._tx():
        store.conn.execute(
            "UPDATE alerts_sent SET delivered_at = ?, attempts = ? WHERE team = ? AND kind = ? AND win = ? AND "
            "period_start = ? AND threshold = ?",
            (now_ms if delivered else None, attempts, m.team, m.kind, m.win, m.period_start, m.threshold),
        )


# -- figures -------------------------------------------------------------------------------------------------


def history(store, team: str, today: date) -> dict[date, float]:
    since = (today - timedelta(days=HISTORY_DAYS)).isoformat()
    rows = store.conn.execute(
        "SELECT day, COALESCE(SUM(cost_usd), 0) FROM rollups WHERE team = ? AND day >= ? GROUP BY day", (team, since)
    ).fetchall()
    return {date.fromisoformat(r[0]): float(r[1]) for r in rows}


def top_members(store, team: str, first: str, last: str, n: int = 3) -> list[dict[str, Any]]:
    rows = store.conn.execute(
        "SELECT developer, COALESCE(SUM(cost_usd), 0) AS usd FROM rollups WHERE team = ? AND day >= ? AND day <= ? "
        "GROUP BY developer ORDER BY usd DESC, developer",
        (team, first, last),
    ).fetchall()[:n]
    return [{"developer": r[0], "cost_usd": round(float(r[1]), 4)} for r in rows]


def _spent(hist: dict[date, float], first: date, last: date) -> float:
    return sum(v for d, v in hist.items() if first <= d <= last)


def _raise_cmd(team: str, name: str, cap: float) -> str:
    return f"agentmeter collector caps set --team {team} --pooled --{PREFIX[name]} {cap * 1.5:g}"


def _facts(store, team: str, name: str, now: datetime, hist: dict[date, float], cap: float | None) -> dict[str, Any]:
    w = window(name, now, UTC)
    spent = _spent(hist, w.first_day, w.last_day)
    proj = project(hist, name, now, UTC, spent, cap)
    top = top_members(store, team, w.first_day.isoformat(), w.last_day.isoformat())
    top_text = ", ".join(f"{t['developer']} ${t['cost_usd']:,.2f}" for t in top[:2])
    return {
        "window": name,
        "period": {"start": w.first_day.isoformat(), "end": w.last_day.isoformat()},
        "spent_usd": round(spent, 4),
        "cap_usd": cap,
        "used_pct": round(spent / cap * 100, 1) if cap else None,
        "projection": proj,
        "trend_7d": trend_7d(hist, now.date()),
        "top_members": top,
        "recommended_action": recommended_action(
            spent, cap, proj, raise_cmd=_raise_cmd(team, name, cap or 0) if cap else "", top=top_text
        ),
    }


# -- what to send ---------------------------------------------------------------------------------------------


def evaluate(store, team: str, now: datetime, developer: str | None = None) -> list[Message]:
    """The alerts the team's pooled spend calls for now, and those `developer`'s own spend calls for against the
    caps each member has (wallet sub-caps, the team's per-member caps, their own), each claimed (so returned)
    once, ever."""
    r = route(store, team) if team else None
    if not r:
        return []
    out = _member_alerts(store, r, developer, now) if developer else []
    caps = wallet.row(store, team, wallet.POOLED)
    if not caps:
        return out
    hist = history(store, team, now.date())
    now_ms = int(now.timestamp() * 1000)
    for name in NAMES:
        cap = caps.get(f"{PREFIX[name]}_usd")
        if not cap:
            continue
        facts = _facts(store, team, name, now, hist, cap)
        start = facts["period"]["start"]
        crossed = [t for t in r["thresholds"] if facts["spent_usd"] >= cap * t]
        with store._tx():
            claimed = [t for t in crossed if _claim(store, team, "threshold", name, start, f"{t:g}", now_ms)]
            ahead = (
                name in FORECAST_WINDOWS
                and facts["spent_usd"] < cap <= facts["projection"]["p50"]
                and _claim(store, team, "forecast", name, start, "p50", now_ms)
            )
        if claimed:  # several crossed at once (a big push): one message, at the highest
            t = max(claimed)
            out.append(_message(r, "threshold", name, start, f"{t:g}", {**facts, "threshold": t}))
        if ahead:
            out.append(_message(r, "forecast", name, start, "p50", {**facts, "threshold": None}))
    return out


def member_history(store, team: str, developer: str, today: date) -> dict[date, float]:
    since = (today - timedelta(days=HISTORY_DAYS)).isoformat()
    rows = store.conn.execute(
        "SELECT day, COALESCE(SUM(cost_usd), 0) FROM agg_developer_day WHERE developer = ? AND team = ? AND day >= ? "
        "GROUP BY day",
        (developer, team, since),
    ).fetchall()
    return {date.fromisoformat(r[0]): float(r[1]) for r in rows}


def member_cap(store, team: str, developer: str, name: str) -> tuple[float, str] | None:
    """The strictest USD cap this member has in window `name`, and the command that would raise it: a wallet
    sub-cap (their own, else every member's), the team's per-member cap (`collector caps set --team`), their
    own (`--developer`)."""
    field, flag = f"{PREFIX[name]}_usd", PREFIX[name]
    own = wallet.row(store, team, developer)
    member = developer if own else "'*'"  # quoted for the shell
    sources = (
        (own or wallet.row(store, team, wallet.EVERY_MEMBER), f"--team {team} --member {member}"),
        (store.caps("team", team), f"--team {team}"),
        (store.caps("developer", developer), f"--developer {developer}"),
    )
    found = [(c[field], where) for c, where in sources if c and c.get(field)]
    if not found:
        return None
    cap, where = min(found)
    return cap, f"agentmeter collector caps set {where} --{flag} {cap * 1.5:g}"


def _member_alerts(store, r: dict[str, Any], developer: str, now: datetime) -> list[Message]:
    team, out = r["team"], []
    hist: dict[date, float] | None = None
    now_ms = int(now.timestamp() * 1000)
    for name in NAMES:
        found = member_cap(store, team, developer, name)
        if found is None:
            continue
        cap, raise_cmd = found
        if hist is None:
            hist = member_history(store, team, developer, now.date())
        w = window(name, now, UTC)
        spent = _spent(hist, w.first_day, w.last_day)
        start = w.first_day.isoformat()
        crossed = [t for t in r["thresholds"] if spent >= cap * t]
        if not crossed:
            continue
        with store._tx():
            claimed = [t for t in crossed if _claim(store, team, "member", name, start, f"{t:g} {developer}", now_ms)]
        if not claimed:
            continue
        t = max(claimed)
        proj = project(hist, name, now, UTC, spent, cap)
        facts = {
            "window": name,
            "period": {"start": start, "end": w.last_day.isoformat()},
            "developer": developer,
            "spent_usd": round(spent, 4),
            "cap_usd": cap,
            "used_pct": round(spent / cap * 100, 1),
            "projection": proj,
            "trend_7d": trend_7d(hist, now.date()),
            "top_members": [],
            "recommended_action": recommended_action(spent, cap, proj, raise_cmd=raise_cmd),
            "threshold": t,
        }
        out.append(_message(r, "member", name, start, f"{t:g} {developer}", facts))
    return out


def due_digests(store, now: datetime) -> list[Message]:
    """Each team's digest for yesterday (UTC), once, at or after its digest hour."""
    out = []
    for r in routes(store):
        if r["digest_hour"] is None or now.hour < r["digest_hour"]:
            continue
        m = digest(store, r["team"], now, claim=True)
        if m is not None:
            out.append(m)
    return out


def digest(store, team: str, now: datetime, *, claim: bool) -> Message | None:
    r = route(store, team)
    if r is None:
        return None
    yesterday = (now.date() - timedelta(days=1)).isoformat()
    if claim:
        with store._tx():
            if not _claim(store, team, "digest", "day", yesterday, "-", int(now.timestamp() * 1000)):
                return None
    caps = wallet.row(store, team, wallet.POOLED) or {}
    hist = history(store, team, now.date())
    month = _facts(store, team, "month", now, hist, caps.get("monthly_usd"))
    body = {
        **month,
        "day": yesterday,
        "yesterday_usd": round(hist.get(date.fromisoformat(yesterday), 0.0), 4),
        "top_members_yesterday": top_members(store, team, yesterday, yesterday),
        "threshold": None,
    }
    return _message(r, "digest", "day", yesterday, "-", body)


def test_message(store, team: str, now: datetime) -> Message | None:
    """`collector alerts test`: a message with today's real figures, not claimed (it can be sent again)."""
    r = route(store, team)
    if r is None:
        return None
    caps = wallet.row(store, team, wallet.POOLED) or {}
    facts = _facts(store, team, "month", now, history(store, team, now.date()), caps.get("monthly_usd"))
    return _message(r, "test", "month", facts["period"]["start"], "-", {**facts, "threshold": None})


# -- payloads ------------------------------------------------------------------------------------------------


def headline(kind: str, team: str, f: dict[str, Any]) -> str:
    name, p = f["window"], f["projection"]
    cap = f"${f['cap_usd']:,.2f}" if f.get("cap_usd") else "no cap"
    label = {"day": "daily", "week": "weekly", "month": "monthly"}[name]
    if kind == "threshold":
        return (
            f"agentmeter: team {team}'s {label} wallet is at {f['used_pct']:.0f}% "
            f"(${f['spent_usd']:,.2f} of {cap}); projected P50 ${p['p50']:,.2f}, P90 ${p['p90']:,.2f}"
        )
    if kind == "member":
        return (
            f"agentmeter: {f['developer']} (team {team}) is at {f['used_pct']:.0f}% of the {label} member cap "
            f"(${f['spent_usd']:,.2f} of {cap}); projected P50 ${p['p50']:,.2f}, P90 ${p['p90']:,.2f}"
        )
    if kind == "forecast":
        return (
            f"agentmeter: team {team}'s {label} wallet is on course to run out: projected P50 "
            f"${p['p50']:,.2f} > {cap} (spent ${f['spent_usd']:,.2f} so far)"
        )
    if kind == "digest":
        return (
            f"agentmeter daily digest for team {team}, {f['day']}: ${f['yesterday_usd']:,.2f} yesterday; "
            f"month to date ${f['spent_usd']:,.2f} of {cap}; month P50 ${p['p50']:,.2f}, P90 ${p['p90']:,.2f}"
        )
    return f"agentmeter: test alert for team {team}; month to date ${f['spent_usd']:,.2f} of {cap}"


def _message(r: dict[str, Any], kind: str, win: str, start: str, threshold: str, facts: dict[str, Any]) -> Message:
    text = headline(kind, r["team"], facts)
    body = {"schema": "agentmeter.team_alert/1", "kind": kind, "team": r["team"], "text": text, **facts}
    if r["format"] == "slack":
        body = slack(body)
    return Message(r["team"], kind, win, start, threshold, r["webhook"], body)


def slack(b: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook shape: `text` (the notification) and blocks (what the channel shows)."""
    p, t = b["projection"], b["trend_7d"]
    change = f" ({t['change_pct']:+.0f}% on the week before)" if t["change_pct"] is not None else ""
    fields = [
        f"*Spent*: ${b['spent_usd']:,.2f}" + (f" of ${b['cap_usd']:,.2f}" if b.get("cap_usd") else ""),
        f"*Projection* ({p['period_end']}): P50 ${p['p50']:,.2f} · P90 ${p['p90']:,.2f}",
        f"*Last 7 days*: ${t['last_7d_usd']:,.2f}{change}",
    ]
    if b.get("top_members"):
        fields.append("*Top*: " + ", ".join(f"{m['developer']} ${m['cost_usd']:,.2f}" for m in b["top_members"]))
    return {
        "text": b["text"],
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": b["text"]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": b["recommended_action"]}]},
        ],
    }
