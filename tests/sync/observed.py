"""A collector with known pushes from two teams, on a fixed clock, for the /metrics, Prometheus and Grafana
tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from agentmeter.core.clock import FixedClock

from .helpers import Client, Collector, request

# 2026-11-20 12:00 UTC: the helpers' BASE_MS day (2026-11-18) and the day after are in this month; day -30
# (2026-10-19) is not.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def observed_collector(root: Path, db: Path | str, **app_kw) -> tuple[Collector, dict[str, str]]:
    """On `db` (a SQLite path or a postgresql:// URL, from the collector_db fixture). Alice (payments): 3 claude
    requests at $0.25 and 2 codex/gpt-5.1 at $0.50 this month, 1 at $5 last month. Bob (search): 4 claude
    requests at $1. A $100 monthly / 5M daily-token cap on payments."""
    c = Collector(db, clock=FixedClock(NOW), **app_kw).start()
    tokens = {
        "admin": c.token("lead@example.com", admin=True),
        "alice": c.token("alice@example.com", "payments"),
        "bob": c.token("bob@example.com", "search"),
    }
    alice = Client(root / "alice", "alice@example.com", "payments", tokens["alice"])
    alice.add_usage(3, cost=0.25)
    alice.add_usage(2, agent="codex", model="gpt-5.1", cost=0.5, day=1)
    alice.add_usage(1, cost=5.0, day=-30)
    bob = Client(root / "bob", "bob@example.com", "search", tokens["bob"])
    bob.add_usage(4, cost=1.0)
    for client in (alice, bob):
        assert client.sync(c.url)["ok"]
    status, body, _ = request(
        f"{c.url}/v1/caps",
        method="PUT",
        token=tokens["admin"],
        body={"scope": "team", "name": "payments", "monthly_usd": 100, "daily_tokens": 5_000_000},
    )
    assert status == 200, body
    return c, tokens
