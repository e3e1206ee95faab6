"""`agentmeter doctor` finds each problem and says how to fix it."""

from __future__ import annotations

import json

from conftest import run_cli


def checks(home):
    r = run_cli("doctor", "--json")
    data = json.loads(r.stdout)
    assert data["schema"] == "agentmeter.doctor/1"
    return r.returncode, {c["name"]: c for c in data["checks"]}


def test_healthy_fresh_install(home):
    code, c = checks(home)
    assert code == 0
    assert c["config"]["status"] == "ok" and c["ledger"]["status"] == "ok"
    assert {"proxy", "keyring", "anthropic key", "openai key", "permissions", "clock", "agent claude"} <= set(c)


def test_broken_config_fails_with_its_line(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[budget]\nblock_at = 'high'\n")
    code, c = checks(home)
    assert code == 1 and c["config"]["status"] == "fail" and "line 2" in c["config"]["detail"]


def test_corrupt_ledger_is_detected(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "ledger.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    (home / "ledger.db").chmod(0o600)
    code, c = checks(home)
    assert code == 1 and c["ledger"]["status"] == "fail" and "mv" in c["ledger"]["fix"]


def test_missing_agent_says_how_to_install(home, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    code, c = checks(home)
    # an agent the user does not have is information (issue 16), with the way to install it, not a warning
    assert c["agent codex"]["status"] == "info" and "npm install -g @openai/codex" in c["agent codex"]["fix"]
    assert code == 0


def test_wide_key_file_is_a_failure(home):
    (home).mkdir(parents=True, exist_ok=True)
    (home / "credentials.toml").write_text('[keys]\nopenai = "sk-test-x"\n')
    (home / "credentials.toml").chmod(0o644)
    _, c = checks(home)
    assert c["openai key"]["status"] == "fail" and "chmod 600" in c["openai key"]["fix"]
