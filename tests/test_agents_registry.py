"""The agent registry as data: every agent module's launch never carries a real key, each names how it is
metered, `agentmeter agents --json` lists them all, and the Gemini overlay leaves ~/.gemini alone."""

from __future__ import annotations

import json
import os
import stat

import pytest

from agentmeter.agents import METERING, MODULES, get_agent, registry
from agentmeter.agents.session_env import SessionEnv
from agentmeter.core.errors import UsageError
from conftest import run_cli

REAL = {
    "AGENTMETER_ANTHROPIC_API_KEY": "sk-ant-test-REAL",
    "AGENTMETER_OPENAI_API_KEY": "sk-test-REAL",
    "AGENTMETER_GEMINI_API_KEY": "AIza-test-REAL",
    "AGENTMETER_COLLECTOR_TOKEN": "amc_test_REAL",
}
SESSION = SessionEnv(
    "s1",
    "http://127.0.0.1:9/s/tok/anthropic",
    "http://127.0.0.1:9/s/tok/openai/v1",
    "amk_virtual",
    ("anthropic", "openai", "gemini"),
)


def test_every_module_is_registered_with_its_metering():
    reg = registry()
    assert list(reg) == list(MODULES)
    for spec in reg.values():
        assert spec.metering in METERING and spec.how and spec.wire and spec.package, spec.name
    for name in ("claude", "codex", "gemini", "copilot", "opencode", "qwen", "aider", "cursor"):
        assert name in reg
    with pytest.raises(UsageError):
        get_agent("nope")


@pytest.mark.parametrize("name", MODULES)
def test_no_launch_carries_a_real_key(name, tmp_path, home):
    environ = {**REAL, "HOME": str(tmp_path), "PATH": "/usr/bin", "COPILOT_PROVIDER_TYPE": "openai"}
    launch = get_agent(name).prepare(SESSION, ["-p", "hi"], environ, f"/bin/{name}")
    blob = json.dumps(launch.argv) + json.dumps(launch.env)
    for secret in REAL.values():
        assert secret not in blob, f"{name} launch carries {secret}"
    assert "amk_virtual" not in json.dumps(launch.argv)  # the virtual key only ever in the environment


def test_gemini_is_pointed_at_the_session_through_an_overlay(tmp_path, home):
    user = tmp_path / "user"
    (user / ".gemini" / "tmp").mkdir(parents=True)
    mine = {"ui": {"theme": "Dracula"}, "security": {"auth": {"selectedType": "oauth-personal"}}}
    (user / ".gemini" / "settings.json").write_text(json.dumps(mine))
    launch = get_agent("gemini").prepare(SESSION, [], {"HOME": str(user)}, "/bin/gemini")
    assert launch.env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:9/s/tok/gemini"
    assert launch.env["GEMINI_API_KEY"] == "amk_virtual"
    over = os.path.join(launch.env["GEMINI_CLI_HOME"], ".gemini")
    with open(os.path.join(over, "settings.json")) as f:
        settings = json.load(f)
    assert settings["ui"] == {"theme": "Dracula"} and settings["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert stat.S_IMODE(os.stat(os.path.join(over, "settings.json")).st_mode) == 0o600
    assert os.readlink(os.path.join(over, "tmp")) == str(user / ".gemini" / "tmp")
    assert json.loads((user / ".gemini" / "settings.json").read_text()) == mine  # never edited


def test_gemini_google_login_is_said_once_and_left_alone(tmp_path, home):
    passthrough = SessionEnv("s1", SESSION.anthropic_url, SESSION.openai_url)
    launch = get_agent("gemini").prepare(passthrough, [], {"HOME": str(tmp_path)}, "/bin/gemini")
    assert "GEMINI_CLI_HOME" not in launch.env and "Code Assist" in launch.note


def test_copilot_hosted_models_are_said_once(tmp_path):
    launch = get_agent("copilot").prepare(SESSION, [], {"HOME": str(tmp_path)}, "/bin/copilot")
    assert "COPILOT_PROVIDER_BASE_URL" not in launch.env and "not metered live" in launch.note
    byok = get_agent("copilot").prepare(SESSION, [], {"COPILOT_PROVIDER_TYPE": "anthropic"}, "/bin/copilot")
    assert byok.env["COPILOT_PROVIDER_BASE_URL"] == SESSION.anthropic_url and byok.note is None


def test_opencode_overlay_keeps_the_developers_inline_config():
    mine = json.dumps({"theme": "x", "provider": {"openai": {"options": {"timeout": 5}}}})
    launch = get_agent("opencode").prepare(SESSION, [], {"OPENCODE_CONFIG_CONTENT": mine}, "/bin/opencode")
    cfg = json.loads(launch.env["OPENCODE_CONFIG_CONTENT"])
    assert cfg["theme"] == "x" and cfg["provider"]["openai"]["options"]["timeout"] == 5
    assert cfg["provider"]["openai"]["options"]["baseURL"] == SESSION.openai_url
    assert cfg["provider"]["anthropic"]["options"]["baseURL"] == SESSION.anthropic_url + "/v1"


def test_agents_command_json(tmp_path):
    r = run_cli("agents", "--json", env={"PATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "agentmeter.agents/1"
    by = {a["name"]: a for a in data["agents"]}
    assert by["gemini"]["metering"] == "live" and by["copilot"]["metering"] == "byok"
    assert by["cursor"]["metering"] == "import" and by["amp"]["metering"] == "none"
    assert by["claude"]["installed"] is False


@pytest.mark.parametrize(
    ("agent", "path", "status", "kind"),
    [
        ("claude", "anthropic/v1/messages", 429, "rate_limit_error"),
        ("opencode", "anthropic/v1/messages", 402, "billing_error"),
        ("qwen", "openai/v1/chat/completions", 402, "insufficient_quota"),
        ("aider", "openai/v1/chat/completions", 400, "insufficient_quota"),
        ("copilot", "openai/v1/chat/completions", 429, "insufficient_quota"),
    ],
)
def test_refusal_status_follows_the_agents_registry_entry(tmp_path, agent, path, status, kind):
    """Agents measured to retry every 429 (OpenCode, Qwen Code) are refused with 402 instead."""
    import urllib.error
    import urllib.request

    from agentmeter.home.config import Budget, Caps, Config
    from conftest import make_stack

    s, close = make_stack(
        tmp_path,
        keys={"anthropic": "sk-ant-test-REAL", "openai": "sk-test-REAL"},
        config=Config(budget=Budget(caps=Caps(daily_tokens=1))),
    )
    try:
        sess = s.open_session(agent=agent)
        url = f"{s.proxy_url}/s/{sess['token']}/{path}"
        body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        hdr = {
            "content-type": "application/json",
            "x-api-key": sess["virtual_key"],
            "authorization": f"Bearer {sess['virtual_key']}",
        }
        for _ in range(2):  # the first spends past the 1-token cap, the second is refused
            req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=hdr, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    got = (r.status, json.loads(r.read()))
            except urllib.error.HTTPError as e:
                got = (e.code, json.loads(e.read()))
        assert got[0] == status and got[1]["error"]["type"] == kind
        assert got[1]["error"]["message"].startswith("agentmeter: ")
    finally:
        close()
