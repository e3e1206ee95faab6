"""Issue 16 item 2: a typo in config.toml is an error naming file, line and key, never a silently
missing cap; `budget set` keeps the user's comments and layout."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli


def write(home, text: str):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home / "config.toml"


@pytest.mark.parametrize(
    ("text", "where", "suggestion"),
    [
        ("[budget]\ndialy_usd = 20\n", "line 2: budget.dialy_usd: unknown key", "did you mean 'daily_usd'?"),
        ("# caps\n[budgets]\ndaily_usd = 20\n", "line 2: budgets: unknown section", "did you mean 'budget'?"),
        (
            "[budget.agents.codex]\nweekly = 3\n",
            "line 2: budget.agents.codex.weekly: unknown key",
            "did you mean 'weekly_usd'?",
        ),
        (
            '[upstreams]\nantropic = "https://gw.example"\n',
            "line 2: upstreams.antropic: unknown key",
            "did you mean 'anthropic'?",
        ),
        ("[alerts]\ndesktop = true\n[alerts.slack]\nurl = 1\n", "line 3: alerts.slack: unknown section", "known in"),
    ],
)
def test_budget_show_refuses_a_typo_with_line_and_suggestion(home, text, where, suggestion):
    path = write(home, text)
    r = run_cli("budget", "show")
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{path}, {where}" in r.stderr and suggestion in r.stderr
    assert "no caps" not in r.stdout and "Traceback" not in r.stderr


def test_doctor_fails_on_a_typo(home):
    write(home, "[budget]\ndialy_usd = 20\n")
    r = run_cli("doctor", "--json")
    assert r.returncode == 1
    config = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "config")
    assert config["status"] == "fail" and "dialy_usd" in config["detail"]


def test_known_keys_still_load(home):
    write(home, '[budget]\ndaily_usd = 20\n[budget.agents.codex]\nweekly_usd = 5\n[shell]\nagents = ["claude"]\n')
    r = run_cli("budget", "show", "--json")
    assert r.returncode == 0, r.stderr


def test_budget_set_keeps_comments_and_layout(home):
    original = (
        '# my caps, set by hand\n[identity]\ndeveloper = "me"  # who I am\n\n'
        "[budget]\n# keep it low\ndaily_usd = 20\n\n[alerts]\ndesktop = false  # no popups\n"
    )
    path = write(home, original)
    assert run_cli("budget", "set", "--monthly", "300").returncode == 0
    assert run_cli("budget", "set", "--weekly", "5", "--agent", "codex").returncode == 0
    text = path.read_text()
    for kept in (
        "# my caps, set by hand",
        'developer = "me"  # who I am',
        "# keep it low",
        "desktop = false  # no popups",
    ):
        assert kept in text, text
    assert text.startswith(original.split("[alerts]")[0].rstrip("\n"))
    assert "monthly_usd = 300" in text and "[budget.agents.codex]" in text
    assert run_cli("budget", "set", "--daily", "off").returncode == 0
    assert "daily_usd" not in path.read_text() and "# keep it low" in path.read_text()
