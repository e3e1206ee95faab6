"""The budget check's window view with a team wallet against the same check without one.

    python benchmarks/wallet_check.py [--calls 20000] [--rounds 5]

A real ledger (40 days of requests) behind a real Enforcer; the wallet holds 40 days of team figures with
pooled and member caps on day, week and month (six more windows). Calls of `Enforcer.windows` (what every
request's check builds) are timed in interleaved rounds so machine drift hits both alike; prints µs per call
and the ratio. Fails loudly when the wallet's figure is wrong (others at the fetch + this device live).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="am-wallet-bench-"))
    os.environ["AGENTMETER_HOME"] = str(home)
    from agentmeter.core.clock import SystemClock
    from agentmeter.core.models import RequestRecord, Usage
    from agentmeter.home.config import Budget, Caps, Config
    from agentmeter.ledger import open_ledger
    from agentmeter.ledger.store import SpendTotals
    from agentmeter.proxy.enforce import Enforcer

    clock = SystemClock()
    path = home / "ledger.db"
    ledger = open_ledger(path, tz=UTC)
    now = clock.now()
    for d in range(40):
        at = int((now - timedelta(days=d)).timestamp() * 1000)
        for i in range(20):
            ledger.insert_request(
                RequestRecord(
                    request_id=f"r{d}-{i}",
                    session_id=None,
                    started_at_ms=at - i,
                    provider="anthropic",
                    api="messages",
                    method="POST",
                    path="/v1/messages",
                    model_requested="claude-sonnet-4-6",
                    model_used="claude-sonnet-4-6",
                    stream=False,
                    status="ok",
                    http_status=200,
                    usage=Usage(input_tokens=100, output_tokens=10),
                    cost_usd=0.05,
                    agent="claude",
                )
            )
    ledger.close()
    days = {(now - timedelta(days=d)).date().isoformat(): [30.0, 30000, 3.0, 3000, 1.0, 1000] for d in range(40)}
    wallet = {
        "team": "payments",
        "caps": {"daily_usd": 50.0, "weekly_usd": 300.0, "monthly_usd": 1000.0},
        "member_caps": {"daily_usd": 10.0, "weekly_usd": 60.0, "monthly_usd": 200.0},
        "days": days,
        "fetched_at_ms": clock.now_ms(),
    }
    config = Config(budget=Budget(timezone="UTC", caps=Caps(daily_usd=20.0, weekly_usd=80.0, monthly_usd=300.0)))
    reader = open_ledger(path, readonly=True, tz=UTC)
    plain = Enforcer(config, reader, SpendTotals(UTC), UTC, clock)
    plain.team_caps = {}
    pooled = Enforcer(config, reader, SpendTotals(UTC), UTC, clock)
    pooled.team_caps = {"wallet": wallet}
    session = {"id": "s1", "agent": "claude"}
    at = datetime.now(UTC)  # noqa: TID251 - a benchmark's own clock
    got = {w.name: w for w in pooled.windows(session, at)}
    day = got["wallet day"]
    if abs(day.spent_usd - (29.0 + 1.0)) > 1e-6:  # others 30 − 1 on the collector + 20 × $0.05 here
        print(f"WRONG: wallet day spent {day.spent_usd}, expected 30.0", file=sys.stderr)
        return 1
    if len(got) != 9:
        print(f"WRONG: {len(got)} windows, expected 3 personal + 6 wallet", file=sys.stderr)
        return 1
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(args.rounds):
        for label, enf in (("without", plain), ("with", pooled)):
            t0 = time.perf_counter()
            for _ in range(args.calls):
                enf.windows(session, at)
            times[label].append((time.perf_counter() - t0) / args.calls * 1e6)
    a, b = statistics.median(times["without"]), statistics.median(times["with"])
    print(f"Enforcer.windows: without a wallet {a:.1f} µs/call, with a wallet {b:.1f} µs/call, ratio {b / a:.2f}x")
    reader.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
