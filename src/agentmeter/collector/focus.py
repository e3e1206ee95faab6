"""FOCUS 1.2 rows from the collector's rollups: one per day × developer × agent × model × repo × token type.

The columns and values are `pricing.focus`'s, the same mapping as the local `agentmeter export --format focus`;
this module only turns one stored rollup row into that mapping's input (`charge`), a pure function over one
row so the export can stream. Costs per token type come from the client (`cost_by_type`: the ledger's cost
split by the list rates that priced it), so the parts add up to what the developers' ledgers recorded. Days are
the clients' local days; the charge period is that day in UTC (the collector does not know each client's zone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from ..pricing import focus

COLUMNS = focus.COLUMNS
FOCUS_VERSION = focus.FOCUS_VERSION


def charge(r: dict[str, Any]) -> focus.Charge:
    """One collector rollup row as the mapping's input. A client from before issue 20 split the cost over four
    types only (1-hour cache writes inside `cache_write`, web searches spread over the tokens): its row keeps
    that shape rather than showing a quantity with no cost."""
    qty = focus.quantities(r)
    split = json.loads(r["cost_by_type"] or "{}") if isinstance(r["cost_by_type"], str) else dict(r["cost_by_type"])
    if not split and r["cost_usd"]:
        split = {"input": r["cost_usd"]}
    if qty["cache_write_1h"] and "cache_write_1h" not in split:
        qty["cache_write"] += qty.pop("cache_write_1h")
    if qty["web_search"] and "web_search" not in split:
        qty.pop("web_search")
    return focus.Charge(
        day=date.fromisoformat(r["day"]),
        provider=r["provider"],
        model=r["model"],
        agent=r["agent"],
        repo=r["repo"],
        subscription=bool(r["subscription"]),
        developer=r["developer"],
        team=r["team"],
        cost_center=r["cost_center"],
        requests=int(r["requests"] or 0),
        unpriced_requests=int(r["unpriced_requests"] or 0),
        quantities=qty,
        costs={k: float(v or 0.0) for k, v in split.items()},
    )


def charges(r: dict[str, Any]) -> Iterator[focus.Charge]:
    """One stored rollup row as the mapping's charges: split by the client's `tag_split` (its share from
    sessions run with `--tag K=V`, per tag set) when it has one, so the tags reach FOCUS Tags and
    x_ChargebackTags exactly as in the local export."""
    whole = charge(r)
    raw = r.get("tag_split")
    if not raw:
        yield whole
        return
    parts = json.loads(raw) if isinstance(raw, str) else raw
    yield from focus.split_by_tags(
        whole,
        [
            focus.TagPart(
                tags=p["tags"],
                requests=int(p.get("requests") or 0),
                unpriced_requests=int(p.get("unpriced_requests") or 0),
                quantities=focus.quantities(p),
                costs={k: float(v or 0.0) for k, v in (p.get("cost_by_type") or {}).items()},
            )
            for p in parts
        ],
    )


def rows(source: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for r in source:
        for c in charges(r):
            yield from focus.focus_rows(c)


def write_csv(rows_: Iterable[dict[str, Any]], out) -> int:
    import csv

    w = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    n = 0
    for row in rows_:
        w.writerow({k: focus.csv_cell(v) for k, v in row.items()})
        n += 1
    return n
