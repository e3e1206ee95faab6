"""config.toml: defaults, every key of the contract, and errors naming file, line and key."""

from __future__ import annotations

import tomllib

import pytest

from agentmeter.core.errors import ConfigError
from agentmeter.home.config import Config, load_config, update_config

FULL = """
[identity]
developer = "alice@example.com"
team = "payments"
cost_center = "CC-1234"

[budget]
timezone = "Europe/Berlin"
daily_usd = 20.0
weekly_usd = 80
monthly_usd = 300.0
daily_tokens = 5000000
alert_at = 0.80
downgrade_at = 0.95
block_at = 1.10
easy_turn_tokens = 10000
retry_cap = 3
enforce_subscription = false

[budget.agents.codex]
daily_usd = 10.0

[cascade]
anthropic = ["claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5"]
openai = ["gpt-5.1", "gpt-5.1-mini"]

[alerts]
desktop = true
webhook = ""

[prices."anthropic:claude-opus-4-8"]
input = 5.0
output = 25.0

[prices.unknown_model]
input = 10.0
output = 50.0

[upstreams]
anthropic = "https://api.anthropic.com"
openai = "https://api.openai.com"
chatgpt = "https://chatgpt.com/backend-api/codex"

[sync]
collector = ""
otlp_endpoint = ""
"""


def write(home, text):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home / "config.toml"


def test_missing_file_gives_defaults(home):
    c = load_config()
    assert c == Config() and c.budget.alert_at == 0.8 and c.port() == 8788


def test_full_contract_config_loads(home):
    c = load_config(write(home, FULL))
    assert c.identity.developer == "alice@example.com"
    assert c.budget.caps.daily_usd == 20.0 and c.budget.caps.weekly_usd == 80
    assert c.budget.caps.daily_tokens == 5_000_000
    assert c.budget.agents["codex"].daily_usd == 10.0
    assert c.cascade["anthropic"][-1] == "claude-haiku-4-5"
    assert c.prices["anthropic:claude-opus-4-8"].output == 25.0
    assert c.unknown_model_price.input == 10.0
    assert c.budget.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('[budget]\ndaily_usd = "20"\n', "line 2: budget.daily_usd", "must be a number"),
        ("[budget]\n\n\nretry_cap = 2.5\n", "line 4: budget.retry_cap", "whole number"),
        ('[budget]\ntimezone = "Mars/Olympus"\n', "line 2: budget.timezone", "unknown time zone"),
        ("[budget]\nalert_at = 1.5\nblock_at = 1.0\n", "line 2: budget.alert_at", "above block_at"),
        ('[upstreams]\nanthropic = "ftp://x"\n', "line 2: upstreams.anthropic", "not an http"),
        ('[prices."anthropic:x"]\ninput = 1\n', 'line 1: prices."anthropic:x"', "missing output"),
        ('[cascade]\nanthropic = "claude"\n', "line 2: cascade.anthropic", "list of model names"),
    ],
)
def test_errors_name_file_line_and_key(home, text, where, what):
    path = write(home, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}, {where}: "), str(exc.value)
    assert what in str(exc.value) and exc.value.hint


def test_syntax_error_names_the_line(home):
    path = write(home, "[budget]\ndaily_usd = = 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value) and "line 2" in str(exc.value)


def test_env_port_and_upstream_override_config(home, monkeypatch):
    c = load_config(write(home, '[proxy]\nport = 9000\n[upstreams]\nanthropic = "https://a.example"\n'))
    assert c.port() == 9000 and c.upstream("anthropic") == "https://a.example"
    monkeypatch.setenv("AGENTMETER_PORT", "0")
    monkeypatch.setenv("AGENTMETER_UPSTREAM_ANTHROPIC", "http://127.0.0.1:1/")
    assert c.port() == 0 and c.upstream("anthropic") == "http://127.0.0.1:1"
    monkeypatch.setenv("AGENTMETER_PORT", "http")
    with pytest.raises(ConfigError):
        c.port()


def test_update_config_keeps_other_keys_and_refuses_invalid(home):
    path = write(home, FULL)
    update_config(path, {"budget": {"daily_usd": 25.0, "weekly_usd": None}})
    data = tomllib.loads(path.read_text())
    assert data["budget"]["daily_usd"] == 25.0 and "weekly_usd" not in data["budget"]
    assert data["identity"]["team"] == "payments" and data["budget"]["agents"]["codex"]["daily_usd"] == 10.0
    with pytest.raises(ConfigError):
        update_config(path, {"budget": {"daily_usd": "lots"}})
    assert tomllib.loads(path.read_text())["budget"]["daily_usd"] == 25.0
