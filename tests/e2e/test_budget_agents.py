"""The budget refusal as the real agents see it: Claude Code and Codex CLI, through a real daemon, with the
daily cap already exceeded. Each agent shows agentmeter's message, stops after exactly one attempt, and the
provider never hears about it (DESIGN section 6, Refusals)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from agentmeter.home.paths import get_paths

from .conftest import Daemon, run_group

pytestmark = pytest.mark.e2e

BIG_USAGE = json.dumps(
    {"input_tokens": 100_000, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 1_000}
)


def write_tiny_cap() -> None:
    path = get_paths().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[budget]\ndaily_usd = 0.01\n\n[alerts]\ndesktop = false\n")


def overspend(url: str, body: dict, headers: dict) -> None:
    """One request straight through the session (as an agent would) whose usage blows the $0.01 cap."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "x-fake-usage": BIG_USAGE, **headers},
    )
    with urllib.request.urlopen(req, timeout=15) as r:
        assert r.status == 200
        r.read()


def session_rows(daemon: Daemon, session_id: str) -> list[dict]:
    return daemon.session(session_id)["requests"]


@pytest.fixture
def capped_daemon(daemon_factory):
    from .conftest import REAL_ANTHROPIC_KEY, REAL_OPENAI_KEY

    write_tiny_cap()  # before the daemon starts: no reload timing involved
    return daemon_factory({"anthropic": REAL_ANTHROPIC_KEY, "openai": REAL_OPENAI_KEY})


def test_claude_shows_the_refusal_and_stops_after_one_attempt(claude_bin, capped_daemon, tmp_path):
    daemon = capped_daemon
    se = daemon.session_env("claude")
    env = se["env"]
    overspend(
        env["ANTHROPIC_BASE_URL"].rstrip("/") + "/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "spend"}]},
        {"x-api-key": env["ANTHROPIC_AUTH_TOKEN"], "anthropic-version": "2023-06-01"},
    )  # Claude Code's variable
    assert daemon.cli_json("budget", "show")["windows"][0]["stage"] == "blocked"
    seen_before = len(daemon.fake.received())
    rows_before = len(session_rows(daemon, se["session_id"]))

    work = tmp_path / "work"
    work.mkdir()
    r = run_group([claude_bin, "-p", "say hello"], env=daemon.agent_env(env), cwd=work)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "API Error: Request rejected (429) · agentmeter:" in out, out
    assert "daily budget" in out

    assert len(daemon.fake.received()) == seen_before, [
        (x["method"], x["path"]) for x in daemon.fake.received()[seen_before:]
    ]
    new = session_rows(daemon, se["session_id"])[rows_before:]
    refused = [row for row in new if row["decision"] == "refuse"]
    assert len(refused) == 1, new
    assert refused[0]["status"] == "refused" and refused[0]["reason"] == "budget"
    assert len(new) == 1, f"claude retried or sent more requests: {new}"


def test_codex_shows_usage_limit_and_stops_after_one_attempt(codex_bin, capped_daemon, tmp_path):
    daemon = capped_daemon
    se = daemon.session_env("codex")
    env = se["env"]
    base_url = env["OPENAI_BASE_URL"]
    overspend(
        base_url.rstrip("/") + "/responses",
        {
            "model": "gpt-5.1",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "spend"}]}],
        },
        {"authorization": f"Bearer {env['OPENAI_API_KEY']}"},
    )
    seen_before = len(daemon.fake.received())
    rows_before = len(session_rows(daemon, se["session_id"]))

    work = Path(tmp_path / "work")
    work.mkdir()
    provider = (
        f'{{name="OpenAI",base_url="{base_url}",wire_api="responses",env_key="OPENAI_API_KEY",'
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

    assert len(daemon.fake.received()) == seen_before, [
        (x["method"], x["path"]) for x in daemon.fake.received()[seen_before:]
    ]
    new = session_rows(daemon, se["session_id"])[rows_before:]
    refused = [row for row in new if row["decision"] == "refuse"]
    assert len(refused) == 1, new
    assert refused[0]["api"] == "responses" and refused[0]["reason"] == "budget"
    assert len(new) == 1, f"codex retried or sent more requests: {new}"
