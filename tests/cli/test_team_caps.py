"""Issue 16 item 3: a team cap explains itself (every view names who set it) and holds (a snooze lifts it only
where the team allows it; a refusal never tells the developer to raise their own cap)."""

from __future__ import annotations

import json

import pytest

from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.config import Alerts, Budget, Caps, Config
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from budget.test_enforcement import PRICES, TINY, call, text_turn
from conftest import make_stack, run_cli
from sync.helpers import Collector


def seed_spend(usd: float) -> None:
    ledger = open_ledger(get_paths().ensure().ledger)
    now = SystemClock().now_ms()
    ledger.create_session({"id": "s0", "token_hash": "h0", "agent": "claude", "started_at": now, "cwd": "/tmp/x"})
    ledger.insert_request(
        RequestRecord(
            request_id=f"r{now}",
            session_id="s0",
            started_at_ms=now,
            provider="anthropic",
            api="messages",
            method="POST",
            path="/v1/messages",
            model_requested="claude-opus-4-8",
            model_used="claude-opus-4-8",
            stream=False,
            status="ok",
            http_status=200,
            usage=Usage(input_tokens=1000, output_tokens=200),
            cost_usd=usd,
            agent="claude",
        )
    )
    ledger.close()


@pytest.fixture
def team(tmp_path, home, make_collector_db):
    """A collector whose lead set a $1 daily cap for team payments; alice has spent $2 today and synced."""

    def make(allow_snooze: bool):
        db = make_collector_db("team")
        token = run_cli(
            "collector", "token", "add", "--developer", "alice@example.com", "--team", "payments", "--db", str(db)
        ).stdout.strip()
        args = ["collector", "caps", "set", "--team", "payments", "--daily", "1", "--db", str(db)]
        r = run_cli(*args, *(["--allow-snooze"] if allow_snooze else []))
        assert r.returncode == 0, r.stderr
        assert ("developers may snooze" if allow_snooze else "not snoozable") in r.stdout
        collector = Collector(db).start()
        seed_spend(2.0)
        env = {"AGENTMETER_COLLECTOR_URL": collector.url, "AGENTMETER_COLLECTOR_TOKEN": token}
        r = run_cli("sync", env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        collector.close()

    return make


def _refused_message(stack) -> tuple[int, str]:
    s = stack.open_session(agent="claude")
    status, _h, body = call(f"{s['anthropic']}/v1/messages", text_turn("hi"), use=TINY)
    return status, (json.loads(body)["error"]["message"] if status == 429 else "")


def _snooze_live(stack) -> None:
    import urllib.request

    req = urllib.request.Request(
        f"{stack.proxy_url}/_agentmeter/v1/snooze",
        method="POST",
        data=json.dumps({"until_ms": SystemClock().now_ms() + 3_600_000}).encode(),
        headers={"Authorization": "Bearer test-control", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def test_budget_show_and_banner_name_the_team(team):
    team(allow_snooze=False)
    data = json.loads(run_cli("budget", "show", "--json").stdout)
    day = next(w for w in data["windows"] if w["name"] == "day")
    assert day["cap_usd"] == 1.0 and day["source"] == "team payments" and day["stage"] == "blocked"
    assert "set by: team payments" in run_cli("budget", "show").stdout


def test_team_refusal_points_to_the_lead_and_a_snooze_does_not_lift_it(tmp_path, team):
    team(allow_snooze=False)
    stack, close = make_stack(get_paths().ledger.parent, config=Config(prices=PRICES, alerts=Alerts(desktop=False)))
    try:
        status, message = _refused_message(stack)
        assert status == 429
        assert "team payments" in message and "ask your team lead" in message
        assert "agentmeter budget set" not in message and "snooze" not in message  # neither would change anything
        _snooze_live(stack)
        status, message = _refused_message(stack)
        assert status == 429 and "team payments" in message
    finally:
        close()
    r = run_cli("budget", "snooze", "1h")
    assert r.returncode == 0 and "team caps still apply" in r.stdout and "daily (team payments)" in r.stdout


def test_a_team_that_allows_snoozing_can_be_snoozed(tmp_path, team):
    team(allow_snooze=True)
    stack, close = make_stack(get_paths().ledger.parent, config=Config(prices=PRICES, alerts=Alerts(desktop=False)))
    try:
        status, message = _refused_message(stack)
        assert status == 429 and "snooze" in message and "agentmeter budget set" not in message
        _snooze_live(stack)
        assert _refused_message(stack)[0] == 200
    finally:
        close()
    assert "team caps still apply" not in run_cli("budget", "snooze", "1h").stdout


def test_personal_refusal_still_offers_raising_it(tmp_path, home):
    seed_spend(2.0)
    home.mkdir(parents=True, exist_ok=True)
    stack, close = make_stack(
        get_paths().ledger.parent,
        config=Config(prices=PRICES, alerts=Alerts(desktop=False), budget=Budget(caps=Caps(daily_usd=1.0))),
    )
    try:
        status, message = _refused_message(stack)
        assert status == 429 and "budget set --daily" in message and "team" not in message
    finally:
        close()
