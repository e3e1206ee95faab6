"""SQL for `agentmeter report` and `agentmeter export`. Functions take a `Ledger`; shaping is elsewhere.

Calendar and dimension groupings (day, week, month, agent, model, repo) read the `usage_daily` rollup,
whose primary key starts with `day`, so a month of a 1M-request ledger is a range scan of a few
thousand rollup rows. Only branch and session (not in the rollup), or a time zone other than the one
the rollup was written in, read `requests`, bounded by `started_at` through its index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any

from .schema import TOKEN_COLUMNS
from .store import Ledger, local_day

# ISO week key: the Monday on or before `day` (strftime %w: 0 = Sunday).
_WEEK = "date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days')"

# by -> (key expression, extra GROUP BY columns, extra aggregate columns)
GROUPS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "day": ("day", (), ()),
    "week": (_WEEK, (), ()),
    "month": ("substr(day, 1, 7)", (), ()),
    "agent": ("agent", (), ()),
    "model": ("model", ("provider",), ()),
    "repo": ("repo", (), ()),
    "branch": ("branch", ("repo",), ()),
    "session": (
        "session",
        (),
        (
            "MAX(agent) AS agent",
            "MAX(repo) AS repo",
            "MAX(branch) AS branch",
            "MIN(started_at) AS first_at",
            "MAX(started_at) AS last_at",
        ),
    ),
    # Issue 20 item 7 (chargeback): a session tag's value (`tag:KEY`), a Claude Code sub-agent (its
    # x-claude-code-agent-id; '' is the main agent), the commit the session ended on.
    "tag": ("tag", (), ()),
    "subagent": ("subagent", (), ("MAX(agent) AS agent",)),
    "commit": ("end_commit", ("repo",), ("MIN(started_at) AS first_at", "MAX(started_at) AS last_at")),
}
ROLLUP_GROUPS = ("day", "week", "month", "agent", "model", "repo")
TIME_GROUPS = ("day", "week", "month")

# The same filter `Ledger._fold` applies: a refusal or passthrough with no tokens is not usage.
_BILLABLE = "NOT (status IN ('refused', 'passthrough') AND " + " + ".join(TOKEN_COLUMNS) + " = 0)"
_NO_END = "9999-12-31"
_DAY_FN = "agentmeter_local_day"


def _aggregate_sql(source: str, by: str) -> str:
    key, group_extra, agg_extra = GROUPS[by]
    sums = ", ".join(f"SUM({c}) AS {c}" for c in TOKEN_COLUMNS)
    select_extra = "".join(f", {c}" for c in group_extra) + "".join(f", {a}" for a in agg_extra)
    group = ", ".join(("key", *group_extra))
    order = "key" if by in TIME_GROUPS else "cost_usd DESC, key"
    return f"""
        SELECT {key} AS key{select_extra}, SUM(requests) AS requests, {sums},
               SUM(cost_usd) AS cost_usd,
               SUM(CASE WHEN subscription = 1 THEN cost_usd ELSE 0 END) AS subscription_cost_usd,
               SUM(unpriced_requests) AS unpriced_requests,
               MIN(day) AS first_day, MAX(day) AS last_day
        FROM ({source}) GROUP BY {group} ORDER BY {order}"""


def totals_by_rollup(ledger: Ledger, by: str, first_day: str | None, end_day: str | None) -> list[dict[str, Any]]:
    """Totals per `by` group over local days [first_day, end_day), from `usage_daily` only."""
    if by not in ROLLUP_GROUPS:
        raise ValueError(f"{by!r} is not in the daily rollup")
    source = "SELECT * FROM usage_daily WHERE day >= ? AND day < ?"
    rows = ledger.conn.execute(_aggregate_sql(source, by), (first_day or "", end_day or _NO_END))
    return [dict(r) for r in rows]


def totals_by_requests(
    ledger: Ledger,
    by: str,
    since_ms: int | None,
    until_ms: int | None,
    tz: tzinfo | None,
    *,
    tag: str | None = None,
    commits: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Totals per `by` group over [since_ms, until_ms), from `requests`, with days local to `tz`. `tag`: the
    session tag `by="tag"` groups on; `commits`: only sessions that ended on one of these commits."""
    if by not in GROUPS:
        raise ValueError(f"unknown grouping {by!r}")
    ledger.conn.create_function(_DAY_FN, 1, lambda ms: local_day(ms, tz), deterministic=True)
    tokens = ", ".join(f"r.{c} AS {c}" for c in TOKEN_COLUMNS)
    # Tags are per session (sessions.tags, a JSON object); the key is a bound JSON path, never SQL text.
    source = f"""
        SELECT {_DAY_FN}(r.started_at) AS day, COALESCE(r.agent, '') AS agent, r.provider AS provider,
               COALESCE(NULLIF(r.model_used, ''), NULLIF(r.model_requested, ''), '') AS model,
               COALESCE(r.repo, '') AS repo, COALESCE(r.branch, '') AS branch,
               COALESCE(r.session_id, '') AS session, r.subscription AS subscription, r.started_at AS started_at,
               1 AS requests, {tokens}, COALESCE(r.cost_usd, 0) AS cost_usd, r.unpriced AS unpriced_requests,
               COALESCE(r.agent_id, '') AS subagent, COALESCE(s.end_commit, '') AS end_commit,
               COALESCE(CAST(json_extract(s.tags, ?) AS TEXT), '') AS tag
        FROM requests r LEFT JOIN sessions s ON s.id = r.session_id
        WHERE r.started_at >= ? AND r.started_at < ? AND {_BILLABLE.replace("status", "r.status")}"""
    args: list[Any] = [
        _tag_path(tag or ""),
        since_ms if since_ms is not None else -(2**62),
        until_ms if until_ms is not None else 2**62,
    ]
    if commits is not None:
        source += " AND s.end_commit IN (SELECT value FROM json_each(?))"
        args.append(json.dumps(commits))
    return [dict(r) for r in ledger.conn.execute(_aggregate_sql(source, by), args)]


def _tag_path(key: str) -> str:
    """A JSON path naming one object member, whatever characters the key has."""
    return "$." + json.dumps(key)


def iter_rollup(ledger: Ledger, first_day: str | None, end_day: str | None) -> Iterator[dict[str, Any]]:
    """Rollup rows over local days [first_day, end_day), streamed in a stable order."""
    cur = ledger.conn.execute(
        "SELECT * FROM usage_daily WHERE day >= ? AND day < ? ORDER BY day, provider, model, agent, repo, subscription",
        (first_day or "", end_day or _NO_END),
    )
    for row in cur:
        yield dict(row)


def iter_requests(ledger: Ledger, since_ms: int | None, until_ms: int | None) -> Iterator[dict[str, Any]]:
    """Request rows over [since_ms, until_ms) with their session's developer and team, streamed."""
    cur = ledger.conn.execute(
        "SELECT r.*, s.developer AS developer, s.team AS team, s.cost_center AS cost_center "
        "FROM requests r LEFT JOIN sessions s ON s.id = r.session_id "
        "WHERE r.started_at >= ? AND r.started_at < ? ORDER BY r.started_at, r.rowid",
        (since_ms if since_ms is not None else -(2**62), until_ms if until_ms is not None else 2**62),
    )
    for row in cur:
        yield dict(row)
