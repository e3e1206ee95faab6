"""The shell hook with the real Claude Code binary, in real bash, zsh and fish, against the fake provider:
`claude -p …` typed in a shell that ran `eval "$(agentmeter shell-init SHELL)"` is metered in a session;
the bypasses reach the provider unmetered; inside a wrapped session the real agent joins it; and Claude
Code's own statusLine runs `agentmeter statusline`, which shows the session's metered cost.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from agentmeter.testing.fake_provider import FakeConfig

from .conftest import CLIENT_ANTHROPIC_KEY, REAL_ANTHROPIC_KEY, Daemon, run_group

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ptys and the agents' Linux builds"),
]

FAKE_TEXT = FakeConfig().text
SUMMARY = re.compile(
    r"^agentmeter · (?P<agent>\S+) · (?P<requests>\d+) requests? · .*session (?P<id>[0-9a-f]+)$", re.MULTILINE
)
SHELLS = ("bash", "zsh", "fish")
WARNING = "agentmeter: not on PATH or broken"


def hook_line(shell: str) -> str:
    """Exactly what docs/shell.md tells a user to put in the rc file."""
    return "agentmeter shell-init fish | source" if shell == "fish" else f'eval "$(agentmeter shell-init {shell})"'


@pytest.fixture(params=SHELLS)
def shell(request) -> str:
    if shutil.which(request.param) is None:
        pytest.skip(f"{request.param} is not installed (apt-get install -y zsh fish)")
    return request.param


def user_env(daemon: Daemon, claude_bin: str, *, agentmeter: bool = True, **extra: str) -> dict[str, str]:
    """A developer's shell: agentmeter and claude on PATH, an isolated HOME, the real keys for the daemon."""
    env = dict(daemon.env)
    env.update({k: v for k, v in daemon.agent_env({}).items() if k != "PATH"})
    dirs = [str(Path(claude_bin).parent)] + ([str(Path(sys.executable).parent)] if agentmeter else [])
    env["PATH"] = os.pathsep.join([*dirs, "/usr/bin", "/bin"])
    env["ZDOTDIR"] = str(daemon.fakehome)
    env.update(extra)
    return env


def in_shell(shell: str, script: str, env: dict[str, str], cwd: Path):
    return run_group([shell, "-c", f"{hook_line(shell)}\n{script}"], env=env, cwd=cwd)


def new_sessions(daemon: Daemon, before: set[str]) -> list[dict]:
    return [s for s in daemon.cli_json("sessions")["sessions"] if s["id"] not in before]


def test_hook_meters_real_claude(shell, claude_bin, daemon, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    r = in_shell(shell, "type claude\nclaude -p 'say hello'", user_env(daemon, claude_bin), work)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "function" in r.stdout and FAKE_TEXT in r.stdout
    m = SUMMARY.search(r.stderr)
    assert m and m["agent"] == "claude", r.stderr
    s = daemon.session(m["id"])
    assert s["agent"] == "claude" and s["exit_code"] == 0 and len(s["requests"]) >= 1
    assert Path(s["cwd"]) == work.resolve()
    posts = daemon.fake.posts("/v1/messages")
    assert posts and all(p["headers"].get("x-api-key") == REAL_ANTHROPIC_KEY for p in posts)


def test_bypasses_run_real_claude_unmetered(shell, claude_bin, daemon, tmp_path):
    """AGENTMETER_DISABLE=1, `command claude`, and agentmeter gone from PATH: Claude Code talks to its
    configured endpoint (here the fake provider, with the developer's own key) and no session is opened."""
    work = tmp_path / "work"
    work.mkdir()
    before = {s["id"] for s in daemon.cli_json("sessions")["sessions"]}
    env = user_env(daemon, claude_bin, ANTHROPIC_BASE_URL=daemon.fake.url, ANTHROPIC_API_KEY=CLIENT_ANTHROPIC_KEY)
    no_agentmeter = os.pathsep.join([str(Path(claude_bin).parent), "/usr/bin", "/bin"])  # uninstalled since
    unset_path = f"set PATH {no_agentmeter.replace(os.pathsep, ' ')}" if shell == "fish" else f"PATH={no_agentmeter}"
    disable = "set -x AGENTMETER_DISABLE 1" if shell == "fish" else "export AGENTMETER_DISABLE=1"
    twice = "claude -p 'say hello'; claude -p 'say hello'"
    for script, warned in [
        (f"{disable}\n{twice}", False),
        ("command claude -p 'say hello'", False),
        (f"{unset_path}\n{twice}", True),  # warned once per shell, not per call
    ]:
        r = in_shell(shell, script, env, work)
        assert r.returncode == 0 and FAKE_TEXT in r.stdout, f"{script}\n{r.stdout}\n{r.stderr}"
        assert not SUMMARY.search(r.stderr)
        assert r.stderr.count(WARNING) == (1 if warned else 0), r.stderr
    assert new_sessions(daemon, before) == []
    posts = daemon.fake.posts("/v1/messages")
    assert posts and all(p["headers"].get("x-api-key") == CLIENT_ANTHROPIC_KEY for p in posts)


def test_nested_claude_joins_the_wrapping_session(claude_bin, daemon, tmp_path):
    """`agentmeter run -- bash` whose rc loads the hook: `claude` inside runs the real agent, metered in the
    outer session, with no second session and no second summary."""
    work = tmp_path / "work"
    work.mkdir()
    before = {s["id"] for s in daemon.cli_json("sessions")["sessions"]}
    inner = f"{hook_line('bash')}\nclaude -p 'say hello'"
    r = run_group(
        [sys.executable, "-m", "agentmeter", "run", "--", "bash", "-c", inner],
        env=user_env(daemon, claude_bin),
        cwd=work,
    )
    assert r.returncode == 0 and FAKE_TEXT in r.stdout, f"{r.stdout}\n{r.stderr}"
    assert len(SUMMARY.findall(r.stderr)) == 1, r.stderr
    [outer] = new_sessions(daemon, before)
    assert outer["agent"] == "other" and outer["requests"] >= 1
    assert daemon.fake.posts("/v1/messages")


# --- Claude Code's statusLine, in its real interactive UI ---------------------------------------------------


def seed_claude_home(home: Path, work: Path, statusline: str) -> None:
    """Skip the first-run screens (onboarding, folder trust, "use this API key?") and set the statusLine."""
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    (home / ".claude" / "settings.json").write_text(
        json.dumps({"statusLine": {"type": "command", "command": statusline, "padding": 0}})
    )
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "theme": "dark",
                "customApiKeyResponses": {"approved": [CLIENT_ANTHROPIC_KEY[-20:]], "rejected": []},
                "projects": {str(work): {"hasTrustDialogAccepted": True, "allowedTools": []}},
            }
        )
    )


class Pty:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        self.out = b""

    def pump(self, seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until is not None and until():
                return True
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.out += os.read(self.fd, 65536)
                except OSError:
                    return until() if until else False
        return until() if until else False

    def close(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                break
            self.pump(2)
            if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                break
        os.close(self.fd)


def test_claude_code_statusline_shows_the_metered_session(claude_bin, daemon_factory, tmp_path):
    daemon = daemon_factory({})  # passthrough: Claude Code uses its own (pre-approved) key
    work = (tmp_path / "work").resolve()
    work.mkdir()
    lines, payloads = tmp_path / "statusline.txt", tmp_path / "payloads.jsonl"
    seed_claude_home(daemon.fakehome, work, f"tee -a {payloads} | agentmeter statusline --no-color | tee -a {lines}")
    env = user_env(daemon, claude_bin, ANTHROPIC_API_KEY=CLIENT_ANTHROPIC_KEY, TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    before = {s["id"] for s in daemon.cli_json("sessions")["sessions"]}
    term = Pty(["bash", "-c", f"{hook_line('bash')}\nclaude"], env, work)
    try:
        assert term.pump(45, until=lambda: lines.exists() and lines.read_text().strip()), term.out[-2000:]
        os.write(term.fd, b"say hello")
        term.pump(1)
        os.write(term.fd, b"\r")
        paid = re.compile(r"session \$0\.(?!00)\d\d")
        assert term.pump(60, until=lambda: bool(paid.search(lines.read_text()))), lines.read_text()
    finally:
        term.close()
    [session] = new_sessions(daemon, before)
    last = [ln for ln in lines.read_text().splitlines() if paid.search(ln)][-1]
    assert last.startswith("agentmeter │ session ") and last.endswith("(est.)")  # no plan limits on an API key
    payload = json.loads(payloads.read_text().splitlines()[-1])
    assert session["agent_session_id"] == payload["session_id"]
    assert f"session ${session['cost_usd']:.2f} " in last, (last, session)
