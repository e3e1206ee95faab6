"""Budget input through the real command (issue 16): amounts with a dollar sign either side are accepted,
inf / nan / negative are refused with a one-line hint, and --agent is checked against the known agents with
a suggestion. A refused input leaves config.toml as it was."""

from __future__ import annotations

import tomllib

import pytest

from agentmeter.home.paths import get_paths
from conftest import run_cli


def config_text() -> str:
    path = get_paths().config_file
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize(
    ("flag", "value", "key"),
    [("--daily", "$10", "daily_usd"), ("--weekly", "10$", "weekly_usd"), ("--monthly", "1,234", "monthly_usd")],
)
def test_dollar_amounts_are_accepted(flag, value, key):
    r = run_cli("budget", "set", flag, value)
    assert r.returncode == 0, r.stderr
    budget = tomllib.loads(config_text())["budget"]
    assert budget[key] == (1234.0 if value == "1,234" else 10.0)


@pytest.mark.parametrize("value", ["inf", "nan", "-3", "0x10", "ten"])
def test_nonsense_amounts_are_refused_and_change_nothing(value):
    assert run_cli("budget", "set", "--daily", "20").returncode == 0
    before = config_text()
    r = run_cli("budget", "set", "--daily", value)
    assert r.returncode == 2, r.stdout
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("agentmeter: --daily") and "Traceback" not in r.stderr
    assert config_text() == before


def test_budget_test_refuses_inf_too():
    r = run_cli("budget", "test", "--daily", "inf", "--json")
    assert r.returncode == 2 and "not a cap" in r.stderr


def test_a_mistyped_agent_is_an_error_with_a_suggestion():
    r = run_cli("budget", "set", "--daily", "5", "--agent", "codx")
    assert r.returncode == 2
    assert "unknown agent 'codx'" in r.stderr and "did you mean 'codex'" in r.stderr
    assert "agents" not in tomllib.loads(config_text() or "").get("budget", {})
    assert run_cli("budget", "set", "--daily", "5", "--agent", "codex").returncode == 0
    assert tomllib.loads(config_text())["budget"]["agents"]["codex"]["daily_usd"] == 5.0
