"""The plan-window brake as the real agents see it: Claude Code logged in with a Claude subscription
(OAuth-style credentials passed through) and Codex logged in with ChatGPT, each against the fake
provider reporting a 5-hour window past the developer's line. Each agent shows agentmeter's refusal,
naming the window and its reset, and stops after one attempt; the provider never hears of it."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import pytest

from agentmeter.home.paths import get_paths

from .conftest import Daemon, run_group

pytestmark = pytest.mark.e2e

OAUTH_TOKEN = "sk-ant-oat01-test-e2e-000000000000000000000000"  # fake, in the shape of a Claude login


def write_plan_line() -> None:
    path = get_paths().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[budget.plan]\nfive_hour = 0.9\n\n[alerts]\ndesktop = false\n")


def set_plan(daemon: Daemon, five_hour_pct: float) -> None:
    req = urllib.request.Request(
        daemon.fake.url + "/_fake/config",
        method="POST",
        data=json.dumps({"plan": {"five_hour_pct": five_hour_pct, "step_pct": 0.0}}).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()


def prime(url: str, body: dict, headers: dict) -> dict:
    """One request as the logged-in agent would send it: its response carries the window reading."""
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"content-type": "application/json", **headers}
    )
    with urllib.request.urlopen(req, timeout=15) as r:
        r.read()
        return {k.lower(): v for k, v in r.headers.items()}


@pytest.fixture
def plan_daemon(daemon_factory):
    write_plan_line()
    return daemon_factory({})  # passthrough: subscription logins bring their own credentials


def _refused(daemon: Daemon, session_id: str, before: int) -> list[dict]:
    return daemon.session(session_id)["requests"][before:]


def test_claude_subscription_stops_at_the_plan_line(claude_bin, plan_daemon, tmp_path):
    daemon = plan_daemon
    set_plan(daemon, 93.0)
    se = daemon.session_env("claude")
    env = {k: v for k, v in se["env"].items() if k != "ANTHROPIC_API_KEY"}
    base = env["ANTHROPIC_BASE_URL"].rstrip("/")
    got = prime(
        base + "/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        {
            "authorization": f"Bearer {OAUTH_TOKEN}",
            "anthropic-beta": "oauth-2025-04-20",
            "anthropic-version": "2023-06-01",
        },
    )
    assert got["anthropic-ratelimit-unified-5h-utilization"] == "0.9300"
    seen_before = len(daemon.fake.received())
    rows_before = len(daemon.session(se["session_id"])["requests"])

    work = tmp_path / "work"
    work.mkdir()
    r = run_group(
        [claude_bin, "-p", "say hello"], env=daemon.agent_env(env, CLAUDE_CODE_OAUTH_TOKEN=OAUTH_TOKEN), cwd=work
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    # agentmeter's own line, not Claude Code's "temporarily limiting requests (not your usage limit)".
    assert "agentmeter: your 5-hour plan window is 93% used; your line is 90%." in out, out
    assert "not your usage limit" not in out
    assert "It resets " in out

    posts = [
        x for x in daemon.fake.received()[seen_before:] if x["method"] == "POST" and x["path"].endswith("/v1/messages")
    ]
    assert posts == [], posts
    new = _refused(daemon, se["session_id"], rows_before)
    refused = [row for row in new if row["decision"] == "refuse"]
    assert len(refused) == 1 and refused[0]["reason"] == "plan", new
    assert len([row for row in new if row["api"] == "messages"]) == 1, f"claude retried: {new}"


def _jwt(claims: dict) -> str:
    def part(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def write_chatgpt_login(codex_home: Path, account: str) -> None:
    """auth.json as `codex login` writes it for a ChatGPT account (fake tokens, far-future expiry)."""
    auth = {
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": "plus",
            "chatgpt_account_id": account,
            "chatgpt_user_id": "user-test",
        }
    }
    claims = {"email": "dev@example.com", "exp": 4102444800, "iat": 1700000000, **auth}
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "auth.json").write_text(
        json.dumps(
            {
                "OPENAI_API_KEY": None,
                "tokens": {
                    "id_token": _jwt(claims),
                    "access_token": _jwt(claims),
                    "refresh_token": "rt-test",
                    "account_id": account,
                },
                "last_refresh": "2099-01-01T00:00:00Z",
            }
        )
    )


def test_codex_chatgpt_login_stops_at_the_plan_line(codex_bin, plan_daemon, tmp_path):
    daemon = plan_daemon
    set_plan(daemon, 95.0)
    se = daemon.session_env("codex")
    env = {k: v for k, v in se["env"].items() if k != "OPENAI_API_KEY"}
    base_url = env["OPENAI_BASE_URL"]
    account = "acct-e2e-1"
    got = prime(
        base_url.rstrip("/") + "/responses",
        {
            "model": "gpt-5.1",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        },
        {"authorization": f"Bearer {_jwt({'sub': 'x'})}", "chatgpt-account-id": account},
    )
    assert got["x-codex-primary-used-percent"] == "95"
    write_chatgpt_login(daemon.fakehome / ".codex", account)
    seen_before = len(daemon.fake.received())
    rows_before = len(daemon.session(se["session_id"])["requests"])

    work = tmp_path / "work"
    work.mkdir()
    provider = (
        f'{{name="OpenAI",base_url="{base_url}",wire_api="responses",requires_openai_auth=true,'
        f"supports_websockets=false}}"
    )
    cmd = [
        codex_bin,
        "exec",
        "--skip-git-repo-check",
        "-c",
        'model_provider="agentmeter"',
        "-c",
        f"model_providers.agentmeter={provider}",
        "say hello",
    ]
    r = run_group(cmd, env=daemon.agent_env(env), cwd=work)
    out = r.stdout + r.stderr
    assert "usage limit" in out.lower(), out
    assert r.returncode != 0, out

    posts = [x for x in daemon.fake.received()[seen_before:] if x["method"] == "POST"]
    assert posts == [], posts
    new = _refused(daemon, se["session_id"], rows_before)
    refused = [row for row in new if row["decision"] == "refuse"]
    assert len(refused) == 1 and refused[0]["api"] == "responses" and refused[0]["reason"] == "plan", new
    # Logged in with ChatGPT, Codex also lists models (GET, never refused); one turn, no retry.
    assert len([row for row in new if row["api"] == "responses"]) == 1, f"codex retried: {new}"
