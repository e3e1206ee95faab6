"""Rows for `agentmeter export`: every request (CSV / JSONL) and FOCUS 1.2 cost rows, streamed. No SQL here
(that is `ledger/reports.py`), no printing (that is `render/report.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, tzinfo
from typing import Any

from ..core.clock import ms_to_iso
from ..ledger import Ledger
from ..ledger import reports as sql
from ..ledger import sync as ledger_sync
from ..pricing import focus
from .report import EXTRA_BUCKETS, Window
from .views import CONTRACT_BUCKETS

EXPORT_COLUMNS = (
    "request_id",
    "session_id",
    "started_at",
    "day",
    "provider",
    "api",
    "model_requested",
    "model_used",
    "agent",
    "repo",
    "branch",
    "developer",
    "team",
    "status",
    "decision",
    "subscription",
    *CONTRACT_BUCKETS,
    *EXTRA_BUCKETS,
    "cost_usd",
    "price_source",
    "price_model",
    "unpriced",
    "partial",
    "unmetered",
)


# --- requests --------------------------------------------------------------------------------------------


def request_rows(ledger: Ledger, window: Window) -> Iterator[dict[str, Any]]:
    for r in sql.iter_requests(ledger, *window.ms_bounds()):
        out = {c: r.get(c) for c in EXPORT_COLUMNS}
        out["started_at"] = ms_to_iso(r["started_at"])
        for flag in ("subscription", "unpriced", "partial", "unmetered"):
            out[flag] = bool(r[flag])
        yield out


class Tally:
    """Counts rows and sums some of their columns as they stream past a writer."""

    def __init__(self, *fields: str) -> None:
        self.rows = 0
        self.sums = dict.fromkeys(fields, 0.0)

    def wrap(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.rows += 1
            for f in self.sums:
                self.sums[f] += float(row.get(f) or 0)
            yield row


# --- FOCUS 1.2 (the mapping is pricing/focus.py, shared with the collector's export) ---------------------

FOCUS_COLUMNS = focus.COLUMNS


def focus_rows(ledger: Ledger, window: Window, config: Any) -> Iterator[dict[str, Any]]:
    """FOCUS 1.2 rows, one per rollup row (local day × agent × provider × model × repo × subscription) ×
    token type, streamed. Each row's cost is split across token types by list rate (`focus.split_cost`)."""
    ident = {
        "developer": config.identity.developer,
        "team": config.identity.team,
        "cost_center": config.identity.cost_center,
    }
    if not ident["developer"]:
        ident = {k: ident[k] or v for k, v in ledger_sync.latest_identity(ledger.conn).items()}
    rates = focus.ListRates(config)
    first, end = window.day_bounds()
    # The tagged share of each rollup row (sessions run with --tag K=V): a rollup row becomes one charge per
    # tag set and one for the rest, so the tags reach FOCUS Tags / x_ChargebackTags and the totals stay whole.
    tagged = ledger_sync.tag_parts(ledger.conn, first, end)
    for r in sql.iter_rollup(ledger, first, end):
        rate = rates.get(r["provider"], r["model"])
        whole = charge(r, rate, ident, window.tz)
        parts = tagged.get(ledger_sync.rollup_key(r))
        for c in focus.split_by_tags(whole, [tag_part(p, rate) for p in parts]) if parts else (whole,):
            yield from focus.focus_rows(c)


def tag_part(p: dict[str, Any], rate: Any) -> focus.TagPart:
    return focus.TagPart(
        tags=p["tags"],
        requests=int(p["requests"] or 0),
        unpriced_requests=int(p["unpriced_requests"] or 0),
        quantities=focus.quantities(p),
        costs=focus.split_cost(p, rate),
    )


def charge(r: dict[str, Any], rate: Any, ident: dict[str, Any], tz: tzinfo) -> focus.Charge:
    """One ledger rollup row as the FOCUS mapping's input."""
    return focus.Charge(
        day=date.fromisoformat(r["day"]),
        provider=r["provider"],
        model=r["model"],
        agent=r["agent"],
        repo=r["repo"],
        subscription=bool(r["subscription"]),
        developer=ident["developer"],
        team=ident["team"],
        cost_center=ident["cost_center"],
        requests=int(r["requests"] or 0),
        unpriced_requests=int(r["unpriced_requests"] or 0),
        quantities=focus.quantities(r),
        costs=focus.split_cost(r, rate),
        tz=tz,
        price_source=getattr(rate, "source", None),
    )
