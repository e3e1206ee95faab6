"""The collector's `/metrics` scrape on a company-sized store, against `collector report --by team` over the
same month on the same store (the peer: one grouped scan that a lead runs today).

    python benchmarks/collector_metrics.py [--developers 2000] [--days 60] [--runs 5] [--db PATH|postgresql://…]

Builds the rollups table in bulk (developers × days × agent/model pairs, spread over teams), then times, in
alternation, one scrape (the grouped queries + the exposition text) and one team report for the month. Fails
loudly when the scrape's month-to-date spend does not add up to the report's total, or a series is missing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

PAIRS = [
    ("claude", "anthropic", "claude-sonnet-4-5"),
    ("claude", "anthropic", "claude-opus-4-8"),
    ("codex", "openai", "gpt-5.1-codex"),
    ("codex", "openai", "gpt-5.1-mini"),
    ("gemini", "gemini", "gemini-2.5-pro"),
]
TODAY = date(2026, 11, 28)


def build(store, developers: int, days: int, pairs_per_day: int) -> int:
    from agentmeter.collector.store import ROLLUP_COLUMNS as cols  # what a push writes
    from agentmeter.ledger.schema import TOKEN_COLUMNS

    rng = random.Random(7)

    sql = f"INSERT INTO rollups ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    n, batch = 0, []
    first = TODAY - timedelta(days=days - 1)
    for d in range(developers):
        dev, team = f"dev{d:05d}@example.com", f"team-{d % 40:02d}"
        for i in range(days):
            day = (first + timedelta(days=i)).isoformat()
            for agent, provider, model in rng.sample(PAIRS, pairs_per_day):
                tokens = [rng.randrange(1000, 90000) for _ in TOKEN_COLUMNS]
                batch.append(
                    [
                        dev,
                        f"{day}|{agent}|{model}",
                        "dev-1",
                        team,
                        "CC-1",
                        day,
                        agent,
                        provider,
                        model,
                        "github.com/acme/app",
                        0,
                        rng.randrange(1, 200),
                        *tokens,
                        round(rng.uniform(0.1, 30), 4),
                        0,
                        "{}",
                        None,  # tag_split: untagged
                        1_795_000_000_000 + i * 86_400_000,
                    ]
                )
                n += 1
            if len(batch) >= 20000:
                _insert(store, sql, batch)
                batch = []
    _insert(store, sql, batch)
    from agentmeter.collector import aggregates

    aggregates.rebuild(store.db)  # the reports read the per-developer-day totals a push keeps (c018)
    return n


def _insert(store, sql: str, rows: list) -> None:
    db = getattr(store, "db", store.conn)
    with store._tx():
        db.executemany(sql, rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--developers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--pairs", type=int, default=4, help="agent/model pairs per developer and day")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--db", default=None, help="a collector database (default: a new SQLite file)")
    args = ap.parse_args()

    from agentmeter.collector import metrics
    from agentmeter.collector.app import build_report
    from agentmeter.collector.store import open_store

    tmp = tempfile.TemporaryDirectory()
    store = open_store(args.db or Path(tmp.name) / "collector.db")
    t0 = time.perf_counter()
    rows = build(store, args.developers, args.days, args.pairs)
    print(
        f"built {rows:,} rollup rows ({args.developers} developers × {args.days} days × {args.pairs} pairs) "
        f"in {time.perf_counter() - t0:.1f} s"
    )

    since, until = metrics.month_of(TODAY)
    scrape_s, report_s, body = [], [], b""
    for _ in range(args.runs):
        t = time.perf_counter()
        body, _ctype = metrics.exposition(metrics.read(getattr(store, "db", store.conn), TODAY))
        scrape_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        report = build_report(store, "team", since, until)
        report_s.append(time.perf_counter() - t)

    from prometheus_client.parser import text_string_to_metric_families

    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    spent = sum(s.value for s in fams["agentmeter_month_to_date_spend_usd"].samples)
    total = report["totals"]["cost_usd"]
    if abs(spent - total) > 1e-6 * max(1.0, total):
        print(f"WRONG: /metrics says ${spent:,.2f} this month, the team report ${total:,.2f}", file=sys.stderr)
        return 1
    missing = {metrics.PREFIX + n for n in metrics.SERIES} - set(fams)
    if missing:
        print(f"WRONG: series missing from the scrape: {sorted(missing)}", file=sys.stderr)
        return 1
    pushes = len(fams["agentmeter_developer_last_push_timestamp_seconds"].samples)
    if pushes != args.developers:
        print(f"WRONG: {pushes} last-push series for {args.developers} developers", file=sys.stderr)
        return 1
    sc, rp = statistics.median(scrape_s), statistics.median(report_s)
    print(f"scrape (3 grouped queries + exposition, {len(body):,} bytes): median {sc * 1000:.0f} ms")
    print(f"peer: report --by team for the month:                      median {rp * 1000:.0f} ms")
    print(f"ratio scrape / report: {sc / rp:.2f}  (month-to-date ${spent:,.0f} agrees with the report)")
    store.close()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
