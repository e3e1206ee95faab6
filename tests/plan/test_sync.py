"""Plan windows travel in the sync payload (issue 18 item 3): read off the wire by the real proxy, pushed by
the real sync client to a real collector, kept as each developer's latest reading and shown on the team's
dashboard next to its dollars. ChatGPT account ids never leave the machine in the clear."""

from __future__ import annotations

import pytest
from aiohttp import web

from agentmeter.collector.store import open_store
from agentmeter.core.clock import SystemClock
from agentmeter.testing.fake_provider import FakePlan
from conftest import make_stack
from sync.helpers import Client, Collector, request

from .helpers import claude_turn, codex_turn

ACCOUNT = "acct-test-1"  # the chatgpt-account-id codex_turn sends


@pytest.fixture
def pushes():
    return []


@pytest.fixture
def collector(collector_db, pushes):
    @web.middleware
    async def keep_push_bodies(req, handler):
        if req.path == "/v1/push":
            pushes.append(await req.read())
        return await handler(req)

    c = Collector(collector_db, middlewares=[keep_push_bodies]).start()
    yield c
    c.close()


def windows(collector: Collector) -> list[dict]:
    store = open_store(collector.db)
    try:
        return store.plan_windows(SystemClock().now_ms() // 1000)
    finally:
        store.close()


def test_windows_from_the_wire_reach_the_team_dashboard(tmp_path, collector, pushes):
    stack, close = make_stack(tmp_path / "alice")
    try:
        stack.configure(plan=FakePlan(five_hour_pct=10.0, seven_day_pct=5.0, step_pct=2.0))
        s = stack.open_session(agent="codex")
        for _ in range(2):
            assert codex_turn(s["openai"])[0] == 200
        alice = Client(
            tmp_path / "alice", "alice@example.com", "payments", collector.token("alice@example.com", team="payments")
        )
        first = alice.sync(collector.url)
        assert first["ok"] and first["pushed"]["plan_windows"] == 2, first  # five_hour and seven_day
        got = {w["window"]: w for w in windows(collector)}
        assert set(got) == {"five_hour", "seven_day"}
        five = got["five_hour"]
        assert (five["developer"], five["team"], five["provider"]) == ("alice@example.com", "payments", "openai")
        assert five["used_pct"] == 12.0 and five["resets_at"] > SystemClock().now_ms() // 1000
        assert five["account"].startswith("chatgpt:") and ACCOUNT not in five["account"]
        assert not any(ACCOUNT.encode() in body for body in pushes)  # hashed before it left the machine

        assert codex_turn(s["openai"])[0] == 200  # the window moves: the same row is replaced, none added
        again = alice.sync(collector.url)
        assert again["ok"] and again["pushed"]["plan_windows"] >= 1
        rows = windows(collector)
        assert len(rows) == 2 and {w["window"]: w["used_pct"] for w in rows}["five_hour"] == 14.0
    finally:
        close()
    admin = collector.token("lead@example.com", admin=True)
    status, html, _ = request(f"{collector.url}/dashboard?token={admin}")
    assert status == 200 and 'id="plan-windows"' in html and "payments" in html and "14%" in html
    assert html.index('id="chargeback-table"') < html.index('id="plan-windows"') < html.index("id='spend-chart'")

    store = open_store(collector.db)  # after the reset the reading is stale, not a full window
    try:
        later = store.plan_windows(SystemClock().now_ms() // 1000 + 8 * 86400)
    finally:
        store.close()
    assert all(w["stale"] for w in later)


def test_a_bad_window_is_refused_alone_and_the_team_is_the_tokens(collector):
    token = collector.token("bob@example.com", team="platform")
    good = {
        "key": "a" * 64,
        "provider": "anthropic",
        "account": "claude.ai",
        "window": "five_hour",
        "used_pct": 41.5,
        "resets_at": 1_900_000_000,
        "status": "allowed",
        "seen_at": 1_800_000_000,
        "runs_out_at": None,
        "team": "someone-elses-team",
    }
    bad = {**good, "key": "b" * 64, "used_pct": "lots"}
    body = {"schema": "agentmeter.push/1", "device_id": "dev-bob-123", "plan_windows": [good, bad]}
    status, got, _ = request(f"{collector.url}/v1/push", method="POST", token=token, body=body)
    assert status == 200 and got["accepted"]["plan_windows"] == 1, got
    assert [r["field"] for r in got["rejected"]] == ["plan_windows[1].used_pct"]
    rows = windows(collector)
    assert [(r["developer"], r["team"], r["used_pct"]) for r in rows] == [("bob@example.com", "platform", 41.5)]
    status, got, _ = request(
        f"{collector.url}/v1/push", method="POST", token=token, body={**body, "plan_windows": [], "deleted": ["a" * 64]}
    )
    assert status == 200 and got["accepted"]["deleted"] == 1 and windows(collector) == []


def test_claude_windows_are_pushed_with_their_plain_account(tmp_path, collector):
    stack, close = make_stack(tmp_path / "carol")
    try:
        stack.configure(plan=FakePlan(five_hour_pct=30.0, seven_day_pct=20.0, step_pct=5.0))
        s = stack.open_session(agent="claude")
        assert claude_turn(s["anthropic"])[0] == 200
    finally:
        close()
    carol = Client(tmp_path / "carol", "carol@example.com", "web", collector.token("carol@example.com", team="web"))
    assert carol.sync(collector.url)["ok"]
    got = {(w["account"], w["window"]): w["used_pct"] for w in windows(collector)}
    assert got[("claude.ai", "five_hour")] == 30.0


def _push_window(collector, token, key, provider, used_pct, resets_at=1_900_000_000):
    item = {
        "key": key * 64,
        "provider": provider,
        "account": "claude.ai" if provider == "anthropic" else "chatgpt:0123456789ab",
        "window": "five_hour",
        "used_pct": used_pct,
        "resets_at": resets_at,
        "status": "allowed",
        "seen_at": 1_800_000_000,
        "runs_out_at": None,
    }
    body = {"schema": "agentmeter.push/1", "device_id": f"dev-{key}-123", "plan_windows": [item]}
    status, got, _ = request(f"{collector.url}/v1/push", method="POST", token=token, body=body)
    assert status == 200 and got["accepted"]["plan_windows"] == 1, got


def test_plan_windows_json_api_is_role_checked(collector):
    """GET /v1/plan-windows: a lead reads its own team's windows (the dashboard's table as JSON), finance and
    admin every team's, a developer none; a lead's dashboard no longer lists other teams' windows."""
    _push_window(collector, collector.token("alice@example.com", team="payments"), "a", "anthropic", 72.5)
    _push_window(collector, collector.token("bob@example.com", team="search"), "b", "openai", 15.0, resets_at=1000)
    lead = collector.token("lena@example.com", "payments", role="lead")
    finance = collector.token("fin@example.com", role="finance")
    admin = collector.token("root@example.com", role="admin")
    developer = collector.token("dan@example.com", "payments")

    status, got, _ = request(f"{collector.url}/v1/plan-windows", token=lead)
    assert status == 200, got
    assert got["schema"] == "agentmeter.collector_plan_windows/1" and got["team"] == "payments"
    assert [(w["developer"], w["team"], w["provider"], w["window"], w["used_pct"]) for w in got["windows"]] == [
        ("alice@example.com", "payments", "anthropic", "five_hour", 72.5)
    ]
    assert got["windows"][0]["resets_at"] == 1_900_000_000 and got["windows"][0]["stale"] is False

    for token in (finance, admin):
        status, got, _ = request(f"{collector.url}/v1/plan-windows", token=token)
        assert status == 200 and got["team"] is None, got
        assert {(w["developer"], w["stale"]) for w in got["windows"]} == {
            ("alice@example.com", False),
            ("bob@example.com", True),  # its reset (1000 s after the epoch) has passed since the reading
        }
    status, got, _ = request(f"{collector.url}/v1/plan-windows?team=search", token=finance)
    assert status == 200 and [w["developer"] for w in got["windows"]] == ["bob@example.com"], got

    status, got, _ = request(f"{collector.url}/v1/plan-windows?team=search", token=lead)
    assert status == 403 and "payments" in got["message"], got
    status, got, _ = request(f"{collector.url}/v1/plan-windows", token=developer)
    assert status == 403 and "a developer token may not" in got["message"], got
    status, got, _ = request(f"{collector.url}/v1/plan-windows")
    assert status == 401, got

    status, page, _ = request(f"{collector.url}/dashboard", token=lead)
    assert status == 200 and "alice@example.com" in page and "bob@example.com" not in page
