"""`agentmeter budget set|show|test|snooze` as a user runs them: the real console entry point in a subprocess,
with AGENTMETER_HOME isolating config and ledger."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from agentmeter.core.clock import SystemClock
from agentmeter.home.config import Alerts, Config
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from conftest import make_stack, run_cli


def cli_json(*args: str) -> dict:
    r = run_cli(*args, "--json")
    assert r.returncode == 0, f"agentmeter {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def caps() -> dict:
    return cli_json("config", "show")["budget"]["caps"]


def test_set_writes_config_and_off_removes():
    r = run_cli("budget", "set", "--daily", "20", "--monthly", "300")
    assert r.returncode == 0, r.stderr
    assert "day" in r.stdout and "$20.00" in r.stdout
    assert caps() == {
        "daily_usd": 20.0,
        "weekly_usd": None,
        "monthly_usd": 300.0,
        "daily_tokens": None,
        "weekly_tokens": None,
        "monthly_tokens": None,
    }
    assert get_paths().config_file.exists()

    r = run_cli("budget", "set", "--daily", "off", "--weekly-tokens", "500000")
    assert r.returncode == 0, r.stderr
    got = caps()
    assert got["daily_usd"] is None and got["monthly_usd"] == 300.0 and got["weekly_tokens"] == 500000
    assert "daily_usd" not in get_paths().config_file.read_text()

    r = run_cli("budget", "set", "--agent", "codex", "--daily", "5")
    assert r.returncode == 0, r.stderr
    assert cli_json("config", "show")["budget"]["agents"]["codex"]["daily_usd"] == 5.0
    assert caps()["monthly_usd"] == 300.0  # the other keys survive


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("--daily", "abc"), "e.g. --daily 20"),
        (("--daily", "0"), "off"),
        (("--monthly=-5",), "off"),
        (("--daily-tokens", "1.5"), "e.g. --daily-tokens 500000"),
        ((), "agentmeter budget set --daily"),
    ],
)
def test_bad_values_exit_2_with_a_hint(args, hint):
    path = get_paths().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[budget]\nweekly_usd = 80.0\n")
    r = run_cli("budget", "set", *args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "hint:" in r.stderr and hint in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert path.read_text() == "[budget]\nweekly_usd = 80.0\n"  # nothing was written


def test_show_json_schema():
    run_cli("budget", "set", "--daily", "20")
    out = cli_json("budget", "show")
    assert out["schema"] == "agentmeter.budget/1"
    names = [w["name"] for w in out["windows"]]
    assert names[:3] == ["day", "week", "month"]
    day = out["windows"][0]
    assert day["cap_usd"] == 20.0 and day["spent_usd"] == 0 and day["stage"] == "ok" and day["used_pct"] == 0
    assert datetime.fromisoformat(day["end"]) > SystemClock().now()
    assert out["windows"][1]["cap_usd"] is None and out["windows"][1]["used_pct"] is None
    assert out["thresholds"] == {"alert_at": 0.8, "downgrade_at": 0.95, "block_at": 1.1}
    assert out["snoozed_until"] is None


def _fill_ledger(home, n: int = 5) -> None:
    """n requests through a real stack, $1.00 each (1M haiku input tokens), into the CLI's ledger."""
    import urllib.request

    stack, close = make_stack(home, config=Config(alerts=Alerts(desktop=False)))
    try:
        assert stack.ledger_path == get_paths().ledger
        s = stack.open_session(agent="claude")
        use = json.dumps(
            {"input_tokens": 1_000_000, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 0}
        )
        for i in range(n):
            body = {
                "model": "claude-haiku-4-5",
                "max_tokens": 100,
                "messages": [{"role": "user", "content": f"task {i}"}],
            }
            req = urllib.request.Request(
                s["anthropic"] + "/v1/messages",
                data=json.dumps(body).encode(),
                headers={"content-type": "application/json", "x-api-key": "k", "x-fake-usage": use},
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()
        rows = stack.rows()
        assert [r["cost_usd"] for r in rows] == pytest.approx([1.0] * n)
    finally:
        close()


def test_budget_test_replays_the_ledger(home):
    _fill_ledger(home)
    out = cli_json("budget", "test", "--daily", "2", "--since", "30d")
    assert out["schema"] == "agentmeter.budget_test/1"
    assert out["requests"] == 5
    assert out["caps"] == {"daily_usd": 2.0}
    # $0, $1 spent: allowed; $2 (100 %): downgrade stage, but haiku has nothing cheaper; $3, $4: refused
    assert [d["action"] for d in out["decisions"]] == ["allow", "allow", "allow", "refuse", "refuse"]
    assert out["refused"] == 2 and len(out["refused_sessions"]) == 1
    assert out["actual_usd"] == pytest.approx(5.0)
    assert out["with_caps_usd"] == pytest.approx(3.0)
    assert out["saved_usd"] == pytest.approx(2.0) and out["saved_usd"] > 0
    (stages,) = [v for k, v in out["stages"].items() if k.startswith("day")]
    assert set(stages) == {"alert", "downgrade", "blocked"}
    # the worst moment: $3 against $2 (refused requests add nothing)
    assert out["worst"]["used_pct"] == pytest.approx(150.0)

    # the dry run is a dry run: the config was not touched
    assert caps()["daily_usd"] is None
    # without caps nothing is refused
    none = cli_json("budget", "test", "--since", "30d")
    assert none["refused"] == 0 and none["saved_usd"] == 0

    text = run_cli("budget", "test", "--daily", "2")
    assert text.returncode == 0 and "refused requests: 2" in text.stdout, text.stdout


def test_snooze_without_daemon_records_an_override():
    before = SystemClock().now_ms() / 1000
    r = run_cli("budget", "snooze", "30m")
    assert r.returncode == 0, r.stderr
    shown = cli_json("budget", "show")["snoozed_until"]
    assert shown is not None
    until = datetime.fromisoformat(shown.replace("Z", "+00:00")).timestamp()
    assert before + 29 * 60 <= until <= SystemClock().now_ms() / 1000 + 30 * 60 + 1
    ledger = open_ledger(get_paths().ledger, readonly=True)
    try:
        assert ledger.snoozed_until(SystemClock().now_ms()) is not None
        assert len(ledger.snoozes()) == 1
    finally:
        ledger.close()

    r = run_cli("budget", "snooze", "off")
    assert r.returncode == 0, r.stderr
    assert cli_json("budget", "show")["snoozed_until"] is None

    r = run_cli("budget", "snooze", "3d")
    assert r.returncode == 2 and "hint:" in r.stderr
