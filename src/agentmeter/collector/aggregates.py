"""Spend pre-aggregated per developer and day, kept in step with the rollups by every push, so reports and the
dashboard read a few rows per developer-day instead of every rollup (issue 20 item 2: 2,000 developers ×
60 days is a million rollups; a month's dashboard was six scans of half of them).

Three tables (migration c018_aggregates):
- `agg_developer_day`: one row per day × developer × device × team × cost centre × subscription — reports by
  developer, team, cost centre and day, totals, chargeback (devices counted exactly), the daily chart.
- `agg_dimension_day`: one row per dimension (agent, repo, model, provider) × day × value × developer —
  the number of distinct developers behind each value, exact over any range of days.
- `agg_dimension_total`: the same summed over developers, kept by adding each push's difference — the sums
  of a report by agent, repo, model or provider read a few rows per day.

Both are keyed by day first and clustered that way on SQLite (WITHOUT ROWID), so a month is one range read.
A push recomputes the developer-days it touched from the rollups (delete, then insert … select … group by) in
the push's own transaction: the aggregates always equal a fresh grouping of the rollups, whatever was
replaced or deleted, and a repeated push leaves them unchanged. On PostgreSQL the developer is locked for the
transaction first, so two devices of one developer pushing at once cannot interleave their recomputations.
"""

from __future__ import annotations

from collections.abc import Iterable

from .engine import Database

# The columns c018 built (migrations.py): a token bucket added later needs a migration adding it to both
# tables, and an entry here.
TOKENS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "web_search_requests",
)
SUMS = (*TOKENS, "requests", "cost_usd", "unpriced_requests")
DEV_KEY = ("day", "developer", "device_id", "team", "cost_center", "subscription")
DIMENSIONS = ("agent", "repo", "model", "provider")


def sum_int(expr: str, dialect: str) -> str:
    """A sum of counts that cannot overflow, as an integer (saturated at 9.2e18). SQLite's SUM raises on an
    integer overflow (rows an older collector accepted may hold up to 2**62), so it adds in floating point;
    PostgreSQL's SUM(BIGINT) is NUMERIC, exact."""
    if dialect == "sqlite":
        return f"CAST(MIN(TOTAL({expr}), 9.2e18) AS INTEGER)"
    return f"CAST(LEAST(COALESCE(SUM({expr}), 0), 9.2e18) AS BIGINT)"


def sums_sql(dialect: str) -> str:
    """Every summed column, named as itself."""
    return ", ".join(
        "COALESCE(SUM(cost_usd), 0.0) AS cost_usd" if c == "cost_usd" else f"{sum_int(c, dialect)} AS {c}" for c in SUMS
    )


def _fill(db: Database, where: str, args: tuple) -> None:
    sums = sums_sql(db.dialect)
    cols = ", ".join(SUMS)
    db.execute(
        f"INSERT INTO agg_developer_day ({', '.join(DEV_KEY)}, {cols}, received_at) "
        f"SELECT {', '.join(DEV_KEY)}, {sums}, MAX(received_at) FROM rollups {where} "
        f"GROUP BY {', '.join(DEV_KEY)}",
        args,
    )
    for dim in DIMENSIONS:
        db.execute(
            f"INSERT INTO agg_dimension_day (dim, day, key, developer, {cols}) "
            f"SELECT '{dim}', day, {dim}, developer, {sums} FROM rollups {where} "
            f"GROUP BY day, {dim}, developer",
            args,
        )


def rebuild(db: Database) -> None:
    """The three tables from all the rollups (the migration's backfill; also after a bulk load)."""
    with db.transaction():
        db.execute("DELETE FROM agg_developer_day")
        db.execute("DELETE FROM agg_dimension_day")
        db.execute("DELETE FROM agg_dimension_total")
        _fill(db, "", ())
        db.execute(
            f"INSERT INTO agg_dimension_total (dim, day, key, {', '.join(SUMS)}) SELECT dim, day, key, "
            f"{sums_sql(db.dialect)} FROM agg_dimension_day GROUP BY dim, day, key"
        )


def _dimension_rows(db: Database, developer: str, day: str) -> dict[tuple[str, str], tuple]:
    return {
        (r[0], r[1]): tuple(r[2:])
        for r in db.execute(
            f"SELECT dim, key, {', '.join(SUMS)} FROM agg_dimension_day WHERE developer = ? AND day = ?",
            (developer, day),
        )
    }


def refresh(db: Database, developer: str, days: Iterable[str]) -> None:
    """Recompute `developer`'s aggregates for `days` from the rollups. Call inside the push's transaction,
    after its rollups are written."""
    days = sorted(set(days))
    if not days:
        return
    if db.postgres:  # SQLite's BEGIN IMMEDIATE already serializes every writer
        db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", ("agentmeter-developer:" + developer,))
    zero = (0,) * len(SUMS)
    add = ", ".join(f"{c} = agg_dimension_total.{c} + excluded.{c}" for c in SUMS)
    upsert = (
        f"INSERT INTO agg_dimension_total (dim, day, key, {', '.join(SUMS)}) "
        f"VALUES (?, ?, ?, {', '.join('?' * len(SUMS))}) ON CONFLICT (dim, day, key) DO UPDATE SET {add}"
    )
    for day in days:
        before = _dimension_rows(db, developer, day)
        db.execute("DELETE FROM agg_developer_day WHERE day = ? AND developer = ?", (day, developer))
        db.execute("DELETE FROM agg_dimension_day WHERE developer = ? AND day = ?", (developer, day))
        _fill(db, "WHERE developer = ? AND day = ?", (developer, day))
        after = _dimension_rows(db, developer, day)
        # The totals move by this developer's difference; keys in one order, so concurrent pushes on
        # PostgreSQL take the rows' locks in the same order and never deadlock.
        for dim, key in sorted(before.keys() | after.keys()):
            old, new = before.get((dim, key), zero), after.get((dim, key), zero)
            if old != new:
                db.execute(upsert, (dim, day, key, *(n - o for n, o in zip(new, old, strict=True))))
