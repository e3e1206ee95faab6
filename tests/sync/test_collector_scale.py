"""Issue 20 item 2, on both engines: reports and the dashboard read pre-aggregated tables that always equal a
fresh grouping of the rollups (after pushes, re-pushes, deletions and token moves), and the FOCUS export is
streamed (chunked, produced as it is read) with the same content as the CLI's. Speed itself is measured in
benchmarks/collector_scale.py."""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import random
from urllib.parse import urlsplit

import pytest

from agentmeter.collector import aggregates, engine
from agentmeter.collector.store import REPORT_BY, open_store
from agentmeter.ledger.schema import TOKEN_COLUMNS
from conftest import run_cli

from .helpers import Collector, request

SUMS = (*TOKEN_COLUMNS, "requests", "cost_usd", "unpriced_requests")


@pytest.fixture
def collector(collector_db):
    c = Collector(collector_db).start()
    yield c
    c.close()


def hexkey(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def item(rng: random.Random, key: str, day: int) -> dict:
    return {
        "key": key,
        "day": f"2026-11-{day:02d}",
        "agent": rng.choice(["claude", "codex", "gemini"]),
        "provider": rng.choice(["anthropic", "openai"]),
        "model": rng.choice(["m-a", "m-b", "m-c"]),
        "repo": rng.choice(["github.com/acme/app", "github.com/acme/api", ""]),
        "subscription": rng.random() < 0.3,
        "requests": rng.randint(1, 50),
        "input_tokens": rng.randint(0, 10**6),
        "cache_read_tokens": rng.randint(0, 10**6),
        "cache_write_tokens": rng.randint(0, 10**5),
        "output_tokens": rng.randint(0, 10**5),
        "reasoning_tokens": rng.randint(0, 10**4),
        "cost_usd": round(rng.uniform(0, 20), 6),
        "cost_by_type": {"input": 0.1, "output": 0.2},
    }


def fresh(db: engine.Database, by: str, since: str | None = None, until: str | None = None) -> dict:
    """The report grouped straight from the rollups, as the collector did before aggregates."""
    col = REPORT_BY[by]
    where = " AND ".join(w for w, v in (("day >= ?", since), ("day <= ?", until)) if v)
    args = [v for v in (since, until) if v]
    rows = db.execute(
        f"SELECT {col}, {', '.join(f'SUM({c})' for c in SUMS)}, COUNT(DISTINCT developer) "
        f"FROM rollups {'WHERE ' + where if where else ''} GROUP BY {col}",
        args,
    )
    return {r[0]: (*r[1:-3], r[-2], r[-1], r[-3]) for r in rows}


def from_report(rows: list[dict]) -> dict:
    return {r["key"]: (*(r[c] for c in SUMS if c != "cost_usd"), r["developers"], r["cost_usd"]) for r in rows}


def same(got: dict, want: dict) -> bool:
    """Equal counts, and costs equal to the micro-dollar (sums in another order differ in the last bits)."""
    return got.keys() == want.keys() and all(
        got[k][:-1] == want[k][:-1] and abs(got[k][-1] - want[k][-1]) < 1e-6 for k in got
    )


def test_aggregates_equal_a_fresh_grouping_after_pushes_repushes_and_deletions(collector):
    rng = random.Random(20)
    devs = [f"dev{i}@example.com" for i in range(6)]
    tokens = {
        d: collector.token(d, team=("payments" if i % 2 else "infra"), cost_center=f"CC-{i % 3}")
        for i, d in enumerate(devs)
    }
    keys: dict[str, list[str]] = {d: [] for d in devs}
    for round_ in range(3):
        for d in devs:
            items = []
            for n in range(rng.randint(3, 12)):
                key = hexkey(f"{d}{round_}{n}") if rng.random() < 0.7 or not keys[d] else rng.choice(keys[d])
                items.append(item(rng, key, rng.randint(1, 9)))
                keys[d].append(key)
            deleted = rng.sample(keys[d], k=min(2, len(keys[d]))) if round_ == 2 else []
            body = {
                "schema": "agentmeter.push/1",
                "device_id": f"device-{rng.randint(1, 2):04d}",
                "rollups": list({i["key"]: i for i in items}.values()),
                "deleted": deleted,
            }
            for _ in range(2):  # a retried push changes nothing
                status, got, _ = request(f"{collector.url}/v1/push", method="POST", token=tokens[d], body=body)
                assert status == 200, got
    store = open_store(collector.db)
    try:
        assert store.db.execute("SELECT COUNT(*) FROM agg_developer_day").fetchone()[0] > 0
        for by in REPORT_BY:
            for since, until in ((None, None), ("2026-11-03", "2026-11-06")):
                got, want = from_report(store.report(by, since, until)), fresh(store.db, by, since, until)
                assert same(got, want), (by, got, want)
        lite = store.totals()
        assert lite["requests"] == store.db.execute("SELECT SUM(requests) FROM rollups").fetchone()[0]
        charge = {(r["team"], r["developer"]): r["devices"] for r in store.chargeback(None, None)}
        assert charge == {
            (t, d): n
            for t, d, n in store.db.execute(
                "SELECT team, developer, COUNT(DISTINCT device_id) FROM rollups GROUP BY team, developer"
            )
        }
        daily = {r["day"]: (r["cost_usd"],) for r in store.daily(None, None)}
        want = {d: (c,) for d, c in store.db.execute("SELECT day, SUM(cost_usd) FROM rollups GROUP BY day")}
        assert same(daily, want)
        assert store.teams() == {d: ("payments" if i % 2 else "infra") for i, d in enumerate(devs)}
        check_dashboard_figures(store)
    finally:
        store.close()


def check_dashboard_figures(store) -> None:
    """The dashboard's one-scan figures (collector/overview.py) equal the separate reads they replace, for every
    team and for one team, over the whole history and a few days."""
    from agentmeter.collector import overview

    def money(rows, cols):
        return [tuple(round(r[c], 6) if isinstance(r[c], float) else r[c] for c in cols) for r in rows]

    for team in (None, "payments"):
        for since, until in ((None, None), ("2026-11-03", "2026-11-06")):
            fig = overview.figures(store, since, until, team=team)
            cols = ("team", "developer", "cost_center", "requests", "tokens", "billed_usd", "subscription_usd")
            assert money(fig["chargeback"], (*cols, "cost_usd", "devices")) == money(
                store.chargeback(since, until, team=team), (*cols, "cost_usd", "devices")
            )
            assert money(fig["developers"], ("key", "cost_usd")) == money(
                store.report("developer", since, until, team=team), ("key", "cost_usd")
            )
            want = store.totals(since, until, team=team)
            assert {k: v for k, v in fig["totals"].items() if k != "cost_usd"} == {
                k: v for k, v in want.items() if k != "cost_usd"
            }
            assert abs(fig["totals"]["cost_usd"] - want["cost_usd"]) < 1e-6
            for dim in ("agent", "repo"):
                assert money(fig[f"by_{dim}"], ("key", "requests", "cost_usd")) == money(
                    store.report(dim, since, until, team=team), ("key", "requests", "cost_usd")
                ), (dim, team, since)


def test_the_aggregates_know_every_token_bucket_the_client_pushes():
    """A bucket added to the ledger must be added to the aggregate tables (a migration) and aggregates.TOKENS."""
    assert tuple(TOKEN_COLUMNS) == aggregates.TOKENS


def _raw_get(url: str, token: str) -> tuple[int, dict, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("GET", parts.path + "?" + parts.query, headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


def test_focus_export_is_streamed_and_matches_the_cli(collector, collector_db):
    rng = random.Random(7)
    token = collector.token("alice@example.com", team="payments")
    items = [item(rng, hexkey(f"x{n}"), 1 + n % 9) for n in range(400)]
    status, _, _ = request(
        f"{collector.url}/v1/push",
        method="POST",
        token=token,
        body={"schema": "agentmeter.push/1", "device_id": "device-0001", "rollups": items},
    )
    assert status == 200
    admin = collector.token("lead@example.com", admin=True)
    status, headers, body = _raw_get(f"{collector.url}/v1/export/focus?format=csv", admin)
    assert status == 200
    assert headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in headers  # was: one buffer
    cli = run_cli("collector", "export", "--db", str(collector_db), "--format", "focus")
    assert cli.returncode == 0, cli.stderr
    assert list(csv.reader(io.StringIO(body.decode()))) == list(csv.reader(io.StringIO(cli.stdout)))
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) > 400 and len(body) > 64 * 1024  # several chunks
    status, headers, body = _raw_get(f"{collector.url}/v1/export/focus?format=json&since=2026-11-02", admin)
    doc = json.loads(body)
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked"
    assert doc["schema"] == "agentmeter.focus/1" and doc["columns"] and doc["rows"]
    assert {r["ChargePeriodStart"][:10] for r in doc["rows"]} <= {f"2026-11-{d:02d}" for d in range(2, 10)}


def test_a_client_leaving_mid_export_leaves_the_collector_serving(collector):
    rng = random.Random(9)
    token = collector.token("alice@example.com")
    items = [item(rng, hexkey(f"y{n}"), 1 + n % 9) for n in range(2000)]
    for i in range(0, len(items), 500):
        request(
            f"{collector.url}/v1/push",
            method="POST",
            token=token,
            body={"schema": "agentmeter.push/1", "device_id": "device-0001", "rollups": items[i : i + 500]},
        )
    admin = collector.token("lead@example.com", admin=True)
    parts = urlsplit(collector.url)
    for _ in range(3):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.request("GET", "/v1/export/focus", headers={"Authorization": f"Bearer {admin}"})
        r = conn.getresponse()
        assert r.status == 200 and r.read(1000)
        conn.close()  # gone after the first kilobyte
    status, body, _ = request(
        f"{collector.url}/v1/push",
        method="POST",
        token=token,
        body={"schema": "agentmeter.push/1", "device_id": "device-0001", "rollups": [item(rng, hexkey("z"), 3)]},
    )
    assert status == 200 and body["accepted"]["rollups"] == 1
    status, body, _ = request(f"{collector.url}/v1/report?by=developer", token=admin)
    assert status == 200 and body["totals"]["requests"] > 0
