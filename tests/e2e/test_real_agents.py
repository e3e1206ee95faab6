"""The real Claude Code and Codex CLI binaries, through a real `agentmeter proxy start` daemon, against
the fake provider: what the provider received and what the ledger recorded (wire-protocols section 0).

Binaries come from `$AGENTMETER_E2E_BIN` (CI: `npm install --prefix DIR @anthropic-ai/claude-code
@openai/codex`), else PATH; each test skips with the install hint when its binary is missing.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from agentmeter.testing.fake_provider import FakeConfig, FakeUsage

from .conftest import (
    CLIENT_ANTHROPIC_KEY,
    REAL_ANTHROPIC_KEY,
    REAL_OPENAI_KEY,
    Daemon,
    run_group,
)

pytestmark = pytest.mark.e2e

FAKE_TEXT = FakeConfig().text
USAGE = FakeUsage()


def run_claude(
    claude_bin: str, daemon: Daemon, exports: dict, cwd: Path, prompt: str = "say hello", **extra: str
) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    r = run_group([claude_bin, "-p", prompt], env=daemon.agent_env(exports, **extra), cwd=cwd)
    assert r.returncode == 0, f"claude exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def run_codex(
    codex_bin: str, daemon: Daemon, exports: dict, cwd: Path, prompt: str = "say hello"
) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    base_url = exports["OPENAI_BASE_URL"]
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
        prompt,
    ]
    r = run_group(cmd, env=daemon.agent_env(exports), cwd=cwd)
    assert r.returncode == 0, f"codex exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def assert_no_header_value(received: list[dict], *secrets: str) -> None:
    for req in received:
        for name, value in req["headers"].items():
            for s in secrets:
                assert s not in value, f"{req['method']} {req['path']} carried {s!r} in header {name}"


def test_claude_key_mode_swaps_key_and_meters(claude_bin, daemon, tmp_path):
    se = daemon.session_env("claude")
    # Claude Code gets the virtual key as ANTHROPIC_AUTH_TOKEN: an ANTHROPIC_API_KEY would be asked about.
    virtual = se["env"]["ANTHROPIC_AUTH_TOKEN"]
    assert "ANTHROPIC_API_KEY" not in se["env"]
    assert virtual not in (REAL_ANTHROPIC_KEY, REAL_OPENAI_KEY)

    r = run_claude(claude_bin, daemon, se["env"], tmp_path / "work")
    assert FAKE_TEXT in r.stdout

    posts = daemon.fake.posts("/v1/messages")
    assert posts, f"the fake received no POST /v1/messages: {daemon.fake.received()}"
    for p in posts:
        assert p["headers"].get("x-api-key") == REAL_ANTHROPIC_KEY
        assert "beta=true" in p["query"].split("&")
    assert_no_header_value(daemon.fake.received(), virtual)
    header_session = posts[0]["headers"]["x-claude-code-session-id"]

    sess = daemon.session(se["session_id"])
    rows = sess["requests"]
    # exactly the billable requests: one ledger row per inference call the provider saw
    assert len(rows) == len(posts), rows
    assert [row["model_requested"] for row in rows] == [p["model"] for p in posts]
    for row, p in zip(rows, posts, strict=True):
        assert row["provider"] == "anthropic" and row["path"] == "/v1/messages"
        assert row["status"] == "ok" and row["http_status"] == 200
        assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
            USAGE.input_tokens,
            USAGE.cache_read_tokens,
            USAGE.cache_write_tokens,
            USAGE.output_tokens,
        )
        assert row["cost_usd"] > 0
        assert row["agent_session_id"] == p["headers"]["x-claude-code-session-id"]
    assert sess["agent_session_id"] == header_session
    assert sess["agent"] == "claude"


def test_claude_passthrough_forwards_client_key(claude_bin, daemon_factory, tmp_path):
    daemon = daemon_factory({"openai": REAL_OPENAI_KEY})  # no Anthropic key: passthrough for Anthropic
    everything = daemon.cli_json("env")
    assert "ANTHROPIC_API_KEY" not in everything["env"]
    assert "ANTHROPIC_BASE_URL" in everything["env"]
    se = daemon.session_env("claude")
    assert "ANTHROPIC_API_KEY" not in se["env"]
    assert "anthropic" not in se["key_mode"]

    r = run_claude(claude_bin, daemon, se["env"], tmp_path / "work", ANTHROPIC_API_KEY=CLIENT_ANTHROPIC_KEY)
    assert FAKE_TEXT in r.stdout

    posts = daemon.fake.posts("/v1/messages")
    assert posts
    for p in posts:
        assert p["headers"].get("x-api-key") == CLIENT_ANTHROPIC_KEY
    rows = daemon.session(se["session_id"])["requests"]
    assert len(rows) == len(posts)
    assert all(row["status"] == "ok" and row["input_tokens"] == USAGE.input_tokens for row in rows), rows


def test_codex_key_mode_custom_provider(codex_bin, daemon, tmp_path):
    se = daemon.session_env("codex")
    assert se["env"]["OPENAI_BASE_URL"].endswith("/openai/v1")
    virtual = se["env"]["OPENAI_API_KEY"]

    r = run_codex(codex_bin, daemon, se["env"], tmp_path / "work")
    assert FAKE_TEXT in r.stdout

    posts = daemon.fake.posts("/v1/responses")
    assert posts, f"the fake received no POST /v1/responses: {daemon.fake.received()}"
    for p in posts:
        assert p["headers"].get("authorization") == f"Bearer {REAL_OPENAI_KEY}"
    assert_no_header_value(daemon.fake.received(), virtual)

    sess = daemon.session(se["session_id"])
    rows = sess["requests"]
    assert len(rows) == len(posts), rows
    assert [row["model_requested"] for row in rows] == [p["model"] for p in posts]
    for row, p in zip(rows, posts, strict=True):
        assert row["provider"] == "openai" and row["path"] == "/v1/responses"
        assert row["status"] == "ok"
        # Responses reports input including cached tokens; the ledger keeps the uncached part only
        assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
            USAGE.input_tokens,
            USAGE.cache_read_tokens,
            0,
            USAGE.output_tokens,
        )
        assert row["cost_usd"] > 0
        header_session = p["headers"].get("session-id") or p["headers"].get("session_id")
        assert header_session and row["agent_session_id"] == header_session
    assert sess["agent"] == "codex"


def test_agent_environment_never_contains_real_keys(daemon):
    # `agentmeter env` runs in a shell that holds the daemon's real keys; its output must not.
    printed = daemon.cli("env").stdout
    printed_json = daemon.cli("env", "--json").stdout
    for out in (printed, printed_json):
        assert REAL_ANTHROPIC_KEY not in out and REAL_OPENAI_KEY not in out

    exports = {}
    for line in printed.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            exports[name] = shlex.split(value)[0] if value else ""
    virtual = exports.get("ANTHROPIC_API_KEY")
    assert virtual and exports.get("OPENAI_API_KEY") == virtual, printed

    # what an agent launched from that shell sees
    seen = subprocess.run(
        ["sh", "-c", printed + "\nexec env\n"], env=daemon.agent_env({}), capture_output=True, text=True, timeout=30
    )
    assert seen.returncode == 0, seen.stderr
    assert REAL_ANTHROPIC_KEY not in seen.stdout and REAL_OPENAI_KEY not in seen.stdout
    lines = seen.stdout.splitlines()
    assert f"ANTHROPIC_API_KEY={virtual}" in lines
    assert f"OPENAI_API_KEY={virtual}" in lines
    assert any(line.startswith("ANTHROPIC_BASE_URL=http://127.0.0.1:") for line in lines)


def _git(repo: Path, *args: str, home: Path) -> None:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=30)


def test_attribution_repo_and_branch(claude_bin, daemon, tmp_path):
    repo = tmp_path / "widgets"
    repo.mkdir()
    _git(repo, "-c", "init.defaultBranch=main", "init", "-q", home=daemon.fakehome)
    _git(repo, "config", "user.email", "dev@acme.test", home=daemon.fakehome)
    _git(repo, "config", "user.name", "Dev", home=daemon.fakehome)
    _git(repo, "remote", "add", "origin", "git@github.com:acme/widgets.git", home=daemon.fakehome)
    _git(repo, "checkout", "-q", "-b", "feature/x", home=daemon.fakehome)
    _git(repo, "-c", "commit.gpgsign=false", "commit", "-q", "--allow-empty", "-m", "init", home=daemon.fakehome)

    se = daemon.session_env("claude", cwd=repo)
    run_claude(claude_bin, daemon, se["env"], repo)

    sess = daemon.session(se["session_id"])
    assert sess["repo"] == "github.com/acme/widgets"
    assert sess["branch"] == "feature/x"
    assert sess["developer"] == "dev@acme.test"
    assert Path(sess["cwd"]) == repo.resolve()
    assert sess["requests"], "claude's traffic did not land in the session opened in the repo"


def test_claude_unknown_model_is_unpriced_not_free(claude_bin, daemon, tmp_path):
    se = daemon.session_env("claude")
    run_claude(claude_bin, daemon, se["env"], tmp_path / "work", ANTHROPIC_MODEL="claude-zeta-9")

    posts = daemon.fake.posts("/v1/messages")
    assert posts and posts[0]["model"] == "claude-zeta-9", [p["model"] for p in posts]

    rows = daemon.session(se["session_id"])["requests"]
    zeta = [row for row in rows if row["model_requested"] == "claude-zeta-9"]
    assert zeta, rows
    for row in zeta:
        assert row["status"] == "ok"
        assert row["unpriced"] is True
        assert row["cost_usd"] > 0
        assert row["reason"] and "claude-zeta-9" in row["reason"], row["reason"]
