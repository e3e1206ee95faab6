"""Every registered agent that can run headless here, launched for real through `agentmeter run <agent>`
against the fake provider: exact buckets in the ledger, the real (fake) key only at the provider, the
agent's exit code kept, and a budget refusal shown in the agent's own words after exactly one attempt.

Binaries come from `$AGENTMETER_E2E_BIN` at the versions pinned in .ci/agents.json; a missing one skips
with that pin in the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentmeter.home.paths import get_paths
from agentmeter.testing.fake_provider import FakeConfig

from .conftest import (
    REAL_ANTHROPIC_KEY,
    REAL_GEMINI_KEY,
    REAL_OPENAI_KEY,
    _make_daemon,
    find_agent,
    pins,
    require_agent,
    run_group,
)

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]

AGENTMETER = [sys.executable, "-m", "agentmeter"]
FAKE_TEXT = FakeConfig().text
# Distinct numbers in every bucket, so a mix-up between buckets shows.
USAGE = {
    "input_tokens": 1234,
    "cache_read_tokens": 5000,
    "cache_write_tokens": 0,
    "output_tokens": 77,
    "reasoning_tokens": 21,
}
BIG = {"input_tokens": 900_000, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 1000}
REAL_KEYS = {"anthropic": REAL_ANTHROPIC_KEY, "openai": REAL_OPENAI_KEY, "gemini": REAL_GEMINI_KEY}


@dataclass
class Shell:
    """A developer's shell: the real keys exported for agentmeter, the agents on PATH, an isolated HOME."""

    env: dict[str, str]
    fake_url: str
    home: Path  # the agents' HOME
    agentmeter_home: Path

    def run(self, *args: str, cwd: Path, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
        cwd.mkdir(parents=True, exist_ok=True)
        return run_group([*AGENTMETER, "run", *args], env={**self.env, **extra}, cwd=cwd, timeout=timeout)

    def cli_json(self, *args: str):
        r = subprocess.run([*AGENTMETER, *args, "--json"], env=self.env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"agentmeter {' '.join(args)} exited {r.returncode}: {r.stderr}"
        return json.loads(r.stdout)

    def fake(self, path: str, data: dict | None = None):
        req = urllib.request.Request(
            self.fake_url + path,
            data=json.dumps(data).encode() if data else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def received(self) -> list[dict]:
        return self.fake("/_fake/received")

    def billable(self) -> list[dict]:
        return [
            r
            for r in self.received()
            if r["method"] == "POST"
            and not r["path"].endswith(":countTokens")
            and not r["path"].endswith("count_tokens")
        ]

    def last_session(self) -> dict:
        sessions = self.cli_json("sessions")["sessions"]
        assert sessions, "no session recorded"
        return self.cli_json("session", "show", sessions[0]["id"])


@pytest.fixture
def shell(tmp_path, fake_provider, home) -> Shell:
    d = _make_daemon(tmp_path, fake_provider, REAL_KEYS)
    env = dict(d.env)
    env.update({k: v for k, v in d.agent_env({}).items() if k != "PATH"})
    bin_dirs = [str(Path(sys.executable).parent)]
    if os.environ.get("AGENTMETER_E2E_BIN"):
        bin_dirs.insert(0, os.environ["AGENTMETER_E2E_BIN"])
    # A PyPI agent lives in its own virtualenv: link just its command onto PATH (not the venv's python).
    links = tmp_path / "agent-bin"
    links.mkdir()
    for name, pin in pins().items():
        found = find_agent(name) if pin["registry"] == "pypi" else None
        if found:
            (links / name).symlink_to(found)
    bin_dirs.insert(0, str(links))
    env["PATH"] = os.pathsep.join([*bin_dirs, os.environ.get("PATH", "/usr/bin:/bin")])
    env["GEMINI_CLI_TRUST_WORKSPACE"] = "true"  # the developer's own choice for headless use (not agentmeter's)
    s = Shell(env, fake_provider.url, d.fakehome, Path(home))
    s.fake("/_fake/config", {"usage": USAGE})
    try:
        yield s
    finally:
        subprocess.run([*AGENTMETER, "proxy", "stop"], env=env, capture_output=True, timeout=30)


def write_tiny_cap() -> None:
    path = get_paths().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[budget]\ndaily_usd = 0.01\n\n[alerts]\ndesktop = false\n")


def overspend(shell: Shell, agent_args: list[str], cwd: Path) -> None:
    """One metered run whose usage blows the $0.01 cap, so the next request is refused."""
    shell.fake("/_fake/config", {"usage": BIG})
    r = shell.run(*agent_args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    shell.fake("/_fake/config", {"usage": USAGE})
    assert shell.cli_json("budget", "show")["windows"][0]["stage"] == "blocked"


def assert_key_only_at_provider(shell: Shell, session: dict, header: str, real: str) -> None:
    posts = shell.billable()
    assert posts, f"the fake received nothing: {shell.received()}"
    for p in posts:
        value = p["headers"].get(header, "")
        assert value.removeprefix("Bearer ") == real, f"{p['path']} carried {header}={value!r}"
    text = json.dumps(session)
    assert real not in text


def assert_exact_rows(
    rows: list[dict],
    posts: int,
    *,
    cache_read: int = USAGE["cache_read_tokens"],
    input_tokens: int = USAGE["input_tokens"],
    reasoning: int = USAGE["reasoning_tokens"],
) -> None:
    billed = [r for r in rows if r["status"] != "passthrough"]
    assert len(billed) == posts, rows
    for r in billed:
        assert r["status"] == "ok", r
        assert (
            r["input_tokens"],
            r["cache_read_tokens"],
            r["cache_write_tokens"],
            r["output_tokens"],
            r["reasoning_tokens"],
        ) == (input_tokens, cache_read, 0, USAGE["output_tokens"], reasoning), r
        assert r["cost_usd"] > 0


# -- Gemini CLI ----------------------------------------------------------------------------------------

GEMINI = ["gemini", "-m", "gemini-2.5-flash", "-p", "say hello"]


def test_run_gemini_meters_exact_buckets_and_leaves_settings_alone(shell, tmp_path):
    require_agent("gemini")
    own = shell.home / ".gemini"
    own.mkdir(parents=True, exist_ok=True)
    mine = json.dumps({"ui": {"theme": "Dracula"}, "security": {"auth": {"selectedType": "oauth-personal"}}})
    (own / "settings.json").write_text(mine)

    r = shell.run(*GEMINI, cwd=tmp_path / "work")
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert FAKE_TEXT in r.stdout

    session = shell.last_session()
    assert session["agent"] == "gemini" and session["exit_code"] == 0
    posts = shell.billable()
    assert all(p["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" for p in posts), posts
    assert_key_only_at_provider(shell, session, "x-goog-api-key", REAL_GEMINI_KEY)
    assert_exact_rows(session["requests"], len(posts))
    assert (own / "settings.json").read_text() == mine  # the developer's settings were never edited
    assert list((own / "tmp").glob("*/chats/session-*.jsonl")), "the CLI's session log is in the real ~/.gemini"


def test_run_gemini_refusal_is_shown_once_and_exit_code_kept(shell, tmp_path):
    require_agent("gemini")
    write_tiny_cap()
    work = tmp_path / "work"
    overspend(shell, GEMINI, work)
    seen = len(shell.billable())

    r = shell.run(*GEMINI, cwd=work)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "agentmeter: daily budget of $0.01 reached" in out
    assert len(shell.billable()) == seen  # the provider never heard of it
    session = shell.last_session()
    assert session["exit_code"] == r.returncode  # the agent's own exit code, kept
    assert [row["status"] for row in session["requests"]] == ["refused"]  # one attempt, no retry storm


# -- Copilot CLI (BYOK), Qwen Code, OpenCode: one table --------------------------------------------------


@dataclass(frozen=True)
class Case:
    agent: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    header: str  # where the real key must arrive
    real: str
    path: str  # the one billable route they use
    reasoning: int = USAGE["reasoning_tokens"]
    refused: int = 1  # independent requests one prompt makes (OpenCode also asks for a session title)


CASES = [
    Case(
        "copilot",
        ("copilot", "-p", "say hello"),
        (("COPILOT_PROVIDER_TYPE", "openai"), ("COPILOT_MODEL", "gpt-5.1"), ("COPILOT_OFFLINE", "true")),
        "authorization",
        REAL_OPENAI_KEY,
        "/v1/chat/completions",
    ),
    Case(
        "qwen",
        ("qwen", "-p", "say hello"),
        (("OPENAI_MODEL", "gpt-4.1"),),
        "authorization",
        REAL_OPENAI_KEY,
        "/v1/chat/completions",
    ),
    Case(
        "opencode",
        ("opencode", "run", "-m", "anthropic/claude-sonnet-4-5", "say hello"),
        (),
        "x-api-key",
        REAL_ANTHROPIC_KEY,
        "/v1/messages",
        refused=2,
    ),  # thinking tokens count as reasoning
    Case(
        "aider",
        (
            "aider",
            "--model",
            "openai/gpt-4.1",
            "--no-git",
            "--yes-always",
            "--no-check-update",
            "--no-show-model-warnings",
            "--no-analytics",
            "--no-pretty",
            "--message",
            "say hello",
        ),
        (),
        "authorization",
        REAL_OPENAI_KEY,
        "/v1/chat/completions",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.agent)
def test_run_agent_meters_exact_buckets(shell, tmp_path, case):
    require_agent(case.agent)
    r = shell.run(*case.argv, cwd=tmp_path / "work", **dict(case.env))
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert FAKE_TEXT in r.stdout
    session = shell.last_session()
    assert session["agent"] == case.agent and session["exit_code"] == 0
    posts = shell.billable()
    assert {p["path"] for p in posts} == {case.path}, posts
    assert_key_only_at_provider(shell, session, case.header, case.real)
    assert_exact_rows(session["requests"], len(posts), reasoning=case.reasoning)


def overspend_direct(shell: Shell) -> None:
    """One request through a session of its own (as any tool would) whose usage blows the $0.01 cap."""
    se = shell.cli_json("env", "--agent", "codex")
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "spend"}]}
    req = urllib.request.Request(
        se["env"]["OPENAI_BASE_URL"] + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={
            "content-type": "application/json",
            "x-fake-usage": json.dumps(BIG),
            "authorization": f"Bearer {se['env']['OPENAI_API_KEY']}",
        },
    )
    with urllib.request.urlopen(req, timeout=15) as r:
        assert r.status == 200
        # The row is committed before the body's last bytes leave, not before the headers: a test that reads
        # only the status races the commit (a loaded CI run read the budget "ok" twice that way).
        assert json.loads(r.read())["usage"]
    shown = shell.cli_json("budget", "show")
    assert shown["windows"][0]["stage"] == "blocked", json.dumps(shown)


# OpenCode (AI SDK), Qwen Code and aider retry every 429 whatever its body says (measured: 6 attempts;
# minutes of backoff; a minute of backoff); their registry entries have agentmeter refuse them with a status
# each shows once (402, 402, 400).
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.agent)
def test_run_agent_refusal_once_in_its_own_words(shell, tmp_path, case):
    require_agent(case.agent)
    write_tiny_cap()
    overspend_direct(shell)
    seen = len(shell.billable())

    r = shell.run(*case.argv, cwd=tmp_path / "work", **dict(case.env))
    out = " ".join((r.stdout + r.stderr).split())  # aider wraps long lines
    assert "agentmeter: daily budget of $0.01 reached" in out, out
    assert len(shell.billable()) == seen  # the provider never heard of it
    session = shell.last_session()
    assert session["agent"] == case.agent and session["exit_code"] == r.returncode
    assert [row["status"] for row in session["requests"]] == ["refused"] * case.refused, session["requests"]


# -- import of the agents' own logs, never counting a live-metered response twice ----------------------------


def import_json(shell: Shell, agent: str) -> dict:
    return shell.cli_json("import", agent)


def test_import_gemini_log_matches_live_rows_and_adds_the_rest(shell, tmp_path):
    require_agent("gemini")
    r = shell.run(*GEMINI, cwd=tmp_path / "work")
    assert r.returncode == 0, r.stderr
    live = [row for row in shell.last_session()["requests"] if row["status"] == "ok"]
    logs = list((shell.home / ".gemini" / "tmp").glob("*/chats/session-*.jsonl"))
    assert len(logs) == 1

    first = import_json(shell, "gemini")
    assert (first["matched_proxy"], first["added"]) == (len(live), 0), first
    # A session the proxy never saw (say, run before agentmeter): its response is added, once.
    other = logs[0].with_name("session-2026-12-01T10-00-00000000.jsonl")
    other.write_text(
        json.dumps({"sessionId": "offline-1", "startTime": "2026-12-01T10:00:00Z", "kind": "main"})
        + "\n"
        + json.dumps(
            {
                "id": "m1",
                "timestamp": "2026-12-01T10:00:05Z",
                "type": "gemini",
                "content": "x",
                "model": "gemini-2.5-flash",
                "tokens": {"input": 900, "output": 30, "cached": 400, "thoughts": 10, "tool": 0, "total": 940},
            }
        )
        + "\n"
    )
    second = import_json(shell, "gemini")
    assert second["added"] == 1 and second["added_tokens"]["input_tokens"] == 500, second
    assert second["added_tokens"]["output_tokens"] == 40 and second["added_tokens"]["reasoning_tokens"] == 10
    assert import_json(shell, "gemini")["added"] == 0  # re-import: nothing twice


def test_import_copilot_log_matches_live_rows_by_response_id(shell, tmp_path):
    require_agent("copilot")
    env = dict(CASES[0].env)
    r = shell.run(*CASES[0].argv, cwd=tmp_path / "work", **env)
    assert r.returncode == 0, r.stderr
    live = [row for row in shell.last_session()["requests"] if row["status"] == "ok"]
    first = import_json(shell, "copilot")
    assert first["responses"] == len(live) and (first["matched_proxy"], first["added"]) == (len(live), 0), first
    assert import_json(shell, "copilot")["added"] == 0
