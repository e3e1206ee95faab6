"""The brake on plan windows: [budget.plan] lines act on subscription traffic with the same stages as a
dollar cap, and the refusal (in each agent's own shape) names the window and when it resets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentmeter.core.errors import ConfigError
from agentmeter.home.config import parse_config
from agentmeter.testing.fake_provider import FakePlan
from conftest import make_stack

from .helpers import claude_turn, codex_turn


def _config(text: str):
    import tomllib

    return parse_config(tomllib.loads(text), Path("config.toml"), text)


@pytest.fixture
def plan_stack(tmp_path):
    cfg = _config(
        "[budget.plan]\nfive_hour = 0.9\nseven_day = 0.95\n\n[budget.agents.codex.plan]\n"
        "five_hour = 0.5\n\n[alerts]\ndesktop = false\n"
    )
    s, close = make_stack(tmp_path, config=cfg)
    yield s
    close()


def test_claude_subscription_is_refused_at_the_five_hour_line(plan_stack):
    stack = plan_stack
    stack.configure(plan=FakePlan(five_hour_pct=80.0, step_pct=4.0))
    s = stack.open_session(agent="claude")
    codes = []
    for _ in range(5):
        code, headers, body = claude_turn(s["anthropic"])
        codes.append(code)
        if code == 429:
            break
    # 80 → 84 → 88 → 92: the reading at 92 % is past the 90 % line, so the next request never leaves.
    assert codes == [200, 200, 200, 200, 429]
    assert len(stack.received()) == 4
    err = json.loads(body)
    assert err["type"] == "error" and err["error"]["type"] == "rate_limit_error"
    msg = err["error"]["message"]
    assert msg.startswith("agentmeter: your 5-hour plan window is 92% used; your line is 90%.")
    assert "It resets " in msg and "[budget.plan]" in msg and '"' not in msg
    assert headers.get("x-should-retry") == "false"
    assert [k for k in headers if k.startswith("anthropic-ratelimit-unified")] == [
        "anthropic-ratelimit-unified-overage-disabled-reason"
    ]  # so Claude Code shows our message alone
    rows = stack.rows(s["session_id"])
    assert rows[-1]["decision"] == "refuse" and rows[-1]["reason"] == "plan"


def test_below_the_line_dollar_caps_stay_alert_only_for_subscriptions(tmp_path):
    cfg = _config("[budget]\ndaily_usd = 0.0001\n\n[budget.plan]\nfive_hour = 0.9\n\n[alerts]\ndesktop = false\n")
    stack, close = make_stack(tmp_path, config=cfg)
    try:
        stack.configure(plan=FakePlan(five_hour_pct=10.0, step_pct=1.0))
        s = stack.open_session(agent="claude")
        assert [claude_turn(s["anthropic"])[0] for _ in range(3)] == [200, 200, 200]
    finally:
        close()


def test_codex_chatgpt_refusal_names_window_and_reset_and_per_agent_line(plan_stack):
    stack = plan_stack
    stack.configure(plan=FakePlan(five_hour_pct=45.0, step_pct=6.0))
    s = stack.open_session(agent="codex")
    first = codex_turn(s["openai"])
    assert first[0] == 200
    code, _headers, body = codex_turn(s["openai"])  # the reading said 45 %; now 51 % > the codex line of 50 %
    assert code == 200
    code, _headers, body = codex_turn(s["openai"])
    assert code == 429
    err = json.loads(body)["error"]
    assert err["type"] == "usage_limit_reached" and err["code"] == "agentmeter_budget_exceeded"
    assert "codex 5-hour plan window is 51% used; your line is 50%" in err["message"]
    assert "[budget.agents.codex.plan]" in err["message"]
    epoch_reset = int(first[1]["x-codex-primary-reset-at"])
    assert err["resets_at"] == epoch_reset  # the provider's own reset time, not a calendar day


def test_plan_config_is_validated():
    assert _config("[budget.plan]\nfive_hour = 0.9\n").budget.plan == {"five_hour": 0.9}
    with pytest.raises(ConfigError, match=r"budget\.plan\.five_hour: 90 is out of range"):
        _config("[budget.plan]\nfive_hour = 90\n")
    with pytest.raises(ConfigError, match="unknown plan window 'weekly'"):
        _config("[budget.plan]\nweekly = 0.9\n")
    assert _config("[budget.agents.codex.plan]\nseven_day = 0.8\n").budget.agent_plan == {"codex": {"seven_day": 0.8}}


def _to_home(stack) -> None:
    import sqlite3

    from agentmeter.home.paths import get_paths

    dest = get_paths().ledger
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(stack.ledger_path)
    with sqlite3.connect(dest) as out:
        src.backup(out)
    src.close()


def test_budget_test_replays_window_caps_over_stored_snapshots(stack):
    from conftest import run_cli

    stack.configure(plan=FakePlan(five_hour_pct=70.0, step_pct=5.0))
    s = stack.open_session(agent="claude")
    assert [claude_turn(s["anthropic"])[0] for _ in range(6)] == [200] * 6  # no line live: all went through
    _to_home(stack)
    r = run_cli("budget", "test", "--five-hour", "0.8", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    # Readings 70, 75, 80, 85, 90, 95 (each seen by the next request). Line 0.8: easy turns go to a cheaper
    # model from 0.8 × 0.95/1.1 = 69 % used, and from the 80 % reading on every request would be refused.
    assert got["plan_lines"] == {"five_hour": 0.8}
    assert [(d["action"], d["reason"]) for d in got["decisions"]] == [
        ("allow", None),
        ("downgrade", "plan"),
        ("downgrade", "plan"),
        ("refuse", "plan"),
        ("refuse", "plan"),
        ("refuse", "plan"),
    ]
    assert got["refused"] == 3 and got["refused_sessions"] == {s["session_id"]: 3}
    (key,) = [k for k in got["stages"] if k.startswith("plan five_hour resetting")]
    assert set(got["stages"][key]) == {"alert", "downgrade", "blocked"}
    plain = run_cli("budget", "test", "--five-hour", "0.8")
    assert "plan-window lines five_hour=0.8" in plain.stdout and "refused requests: 3" in plain.stdout
    none = json.loads(run_cli("budget", "test", "--json").stdout)
    assert none["refused"] == 0 and not any(k.startswith("plan ") for k in none["stages"])
    bad = run_cli("budget", "test", "--five-hour", "90")
    assert bad.returncode != 0 and "fraction" in bad.stderr
