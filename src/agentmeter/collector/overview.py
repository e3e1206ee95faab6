"""The dashboard's figures in as few reads as possible (issue 20 item 2: ≤ 1 s at 2,000 developers × 60 days on
either engine).

The dashboard showed the same month of `agg_developer_day` read four times (chargeback, the developers'
burndown, totals, days) and the dimension totals twice with a distinct-developer count it never displays. Here
one grouped scan per (team, developer, cost centre) gives the chargeback table, the burndown's spend per
developer and the totals; one read of `agg_dimension_total` gives both the by-agent and by-repo tables
(requests and cost, which is all the page shows). A lead's view (one team) reads the same way: the month's
developer-days filtered by team, and that team's rollups for agent and repo (the dimension totals have no team).

Portable SQL on the store's handle, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from . import aggregates

_SATURATE = int(9.2e18)  # as aggregates.sum_int: a sum of counts never overflows
_TOKENS = "input_tokens + cache_read_tokens + cache_write_tokens + output_tokens"


def _sum_int(expr: str, dialect: str) -> str:
    """A saturated sum of counts added in floating point, as SQLite's TOTAL() does (aggregates.sum_int). On
    PostgreSQL SUM(BIGINT) is NUMERIC, whose larger aggregate state made the planner sort a month of
    developer-days on disk (~145 ms at 2,000 developers) instead of hashing its few thousand groups (~60 ms)."""
    if dialect == "sqlite":
        return aggregates.sum_int(expr, dialect)
    return f"CAST(LEAST(COALESCE(SUM(CAST({expr} AS DOUBLE PRECISION)), 0), 9.2e18) AS BIGINT)"


def _sums(dialect: str) -> str:
    return ", ".join(
        "COALESCE(SUM(cost_usd), 0.0) AS cost_usd" if c == "cost_usd" else f"{_sum_int(c, dialect)} AS {c}"
        for c in aggregates.SUMS
    )


def figures(store, since: str, until: str, team: str | None = None) -> dict[str, Any]:
    """chargeback rows, developers (spend per developer, costliest first), totals, by_agent, by_repo."""
    db, dialect = store.conn, store.dialect
    where, args = store._where(since, until, team=team)
    sums = _sums(dialect)
    # Grouped by device too, and the devices counted here: COUNT(DISTINCT device_id) made PostgreSQL sort the
    # month's rows (on disk at 2,000 developers) where a hash of a few thousand groups does.
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in db.execute(
        f"""SELECT team, developer, cost_center, {sums},
                   {_sum_int(_TOKENS, dialect)} AS tokens,
                   COALESCE(SUM(CASE WHEN subscription = 0 THEN cost_usd ELSE 0 END), 0.0) AS billed_usd,
                   COALESCE(SUM(CASE WHEN subscription = 1 THEN cost_usd ELSE 0 END), 0.0) AS subscription_usd
            FROM agg_developer_day {where} GROUP BY team, developer, cost_center, device_id""",
        args,
    ):
        r = dict(r)
        key = (r["team"], r["developer"], r["cost_center"])
        g = groups.get(key)
        if g is None:
            groups[key] = {**r, "devices": 1}
            continue
        g["devices"] += 1
        for c in (*aggregates.SUMS, "tokens", "billed_usd", "subscription_usd"):
            g[c] = g[c] + r[c] if isinstance(g[c], float) else min(_SATURATE, g[c] + r[c])
    rows = list(groups.values())
    chargeback = sorted(
        (
            {
                k: r[k]
                for k in (
                    "team",
                    "developer",
                    "cost_center",
                    "requests",
                    "tokens",
                    "billed_usd",
                    "subscription_usd",
                    "cost_usd",
                    "devices",
                )
            }
            for r in rows
        ),
        key=lambda r: (r["team"], -r["cost_usd"], r["developer"]),
    )
    spent: dict[str, float] = {}
    for r in rows:
        spent[r["developer"]] = spent.get(r["developer"], 0.0) + r["cost_usd"]
    developers = [{"key": dev, "cost_usd": usd} for dev, usd in sorted(spent.items(), key=lambda kv: (-kv[1], kv[0]))]
    totals: dict[str, Any] = {
        c: (sum(r[c] for r in rows) if c == "cost_usd" else min(_SATURATE, sum(r[c] for r in rows)))
        for c in aggregates.SUMS
    }
    totals["developers"] = len(spent)
    swhere, sargs = store._where(since, until, team=team)
    srow = db.execute(f"SELECT COUNT(*), COALESCE(SUM(cost_usd), 0.0) FROM sessions {swhere}", sargs).fetchone()
    totals["sessions"], totals["sessions_cost_usd"] = srow[0], srow[1]
    return {
        "chargeback": chargeback,
        "developers": developers,
        "totals": totals,
        **_dimensions(store, since, until, team),
    }


def _dimensions(store, since: str, until: str, team: str | None) -> dict[str, list[dict[str, Any]]]:
    """by_agent and by_repo: key, requests, cost_usd, costliest first."""
    db, dialect = store.conn, store.dialect
    req = _sum_int("requests", dialect)
    if team is None:
        where, args = store._where(since, until)
        got = db.execute(
            f"SELECT dim, key, {req} AS requests, COALESCE(SUM(cost_usd), 0.0) AS cost_usd "
            f"FROM agg_dimension_total {where} AND dim IN ('agent', 'repo') GROUP BY dim, key"
            if where
            else f"SELECT dim, key, {req} AS requests, COALESCE(SUM(cost_usd), 0.0) AS cost_usd "
            "FROM agg_dimension_total WHERE dim IN ('agent', 'repo') GROUP BY dim, key",
            args,
        )
        # The totals are kept by adding each push's difference: a value nobody has any more sums to nothing.
        rows = [(r["dim"], {"key": r["key"], "requests": r["requests"], "cost_usd": r["cost_usd"]}) for r in got]
        rows = [(d, r) for d, r in rows if r["requests"] > 0 or abs(r["cost_usd"]) > 1e-9]
    else:
        where, args = store._where(since, until, team=team)
        rows = []
        for dim in ("agent", "repo"):
            for r in db.execute(
                f"SELECT {dim} AS key, {req} AS requests, COALESCE(SUM(cost_usd), 0.0) AS cost_usd "
                f"FROM rollups {where} GROUP BY {dim}",
                args,
            ):
                rows.append((dim, dict(r)))
    out: dict[str, list[dict[str, Any]]] = {"by_agent": [], "by_repo": []}
    for dim, r in rows:
        out[f"by_{dim}"].append(r)
    for v in out.values():
        v.sort(key=lambda r: (-r["cost_usd"], r["key"] or ""))
    return out
