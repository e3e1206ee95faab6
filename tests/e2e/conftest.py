"""Fixtures for the end-to-end tests with the real agent binaries (Claude Code, Codex CLI).

Everything is a real subprocess: the fake provider (`python -m agentmeter.testing.fake_provider`), the
daemon (`agentmeter proxy start`), the CLI and the agents. The agents always get an isolated HOME and a
minimal environment, so they never read a developer's real login, config or keys.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agentmeter.home.paths import get_paths

# Fake keys only: the "real" keys the daemon holds, and a client's own key for passthrough mode.
REAL_ANTHROPIC_KEY = "sk-ant-test-real-e2e-0000000000"
REAL_OPENAI_KEY = "sk-test-real-openai-e2e-0000000000"
REAL_GEMINI_KEY = "AIza-test-real-gemini-e2e-000000000"
CLIENT_ANTHROPIC_KEY = "sk-ant-test-client-e2e-0000000000"

AGENT_TIMEOUT = 60.0

# The pinned agent versions: one file, read here for skip reasons and by .ci/run to install them.
PINS_FILE = Path(__file__).resolve().parents[2] / ".ci" / "agents.json"


def pins() -> dict[str, dict]:
    data = json.loads(PINS_FILE.read_text())
    out = {}
    for registry in ("npm", "pypi"):
        for name, pin in data.get(registry, {}).items():
            out[name] = {**pin, "registry": registry}
    return out


def find_agent(name: str) -> str | None:
    """`$AGENTMETER_E2E_BIN/<name>` (CI installs the npm packages there; a PyPI agent's own virtualenv sits
    beside node_modules, e.g. `<dir>/aider-venv/bin/aider`), else `shutil.which`."""
    bin_dir = os.environ.get("AGENTMETER_E2E_BIN")
    if bin_dir:
        candidates = [Path(bin_dir) / name]
        venv = pins().get(name, {}).get("venv")
        if venv:
            candidates.append(Path(bin_dir).parent.parent / venv / "bin" / name)
        for p in candidates:
            if p.is_file() and os.access(p, os.X_OK):
                return str(p)
    return shutil.which(name)


def install_hint(name: str) -> str:
    pin = pins().get(name)
    if pin is None:
        return f"{name} is not pinned in .ci/agents.json"
    spec = f"{pin['package']}@{pin['version']}" if pin["registry"] == "npm" else pin["package"]
    spec = spec if pin["registry"] == "npm" or not pin["version"] else f"{pin['package']}=={pin['version']}"
    tool = "npm i" if pin["registry"] == "npm" else f"pip install (into <dir>/{pin.get('venv')})"
    return (
        f"{pin['label']} {pin['version'] or ''} binary not found: set AGENTMETER_E2E_BIN or "
        f"{tool} {spec} (pinned in .ci/agents.json)"
    ).replace("  ", " ")


def require_agent(name: str) -> str:
    path = find_agent(name)
    if path is None:
        pytest.skip(install_hint(name))
    return path


@pytest.fixture
def claude_bin() -> str:
    return require_agent("claude")


@pytest.fixture
def codex_bin() -> str:
    return require_agent("codex")


def run_group(
    cmd: list[str], *, env: dict, cwd: str | Path | None = None, timeout: float = AGENT_TIMEOUT
) -> subprocess.CompletedProcess:
    """Run in its own process group; on timeout kill that group (the agents spawn helpers)."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{cmd[0]} did not finish within {timeout:.0f} s\nstdout:\n{out}\nstderr:\n{err}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@dataclass
class FakeProvider:
    url: str
    proc: subprocess.Popen

    def received(self) -> list[dict]:
        """Requests the fake received (headers lower-cased), in order."""
        return _get_json(self.url + "/_fake/received")

    def posts(self, path: str) -> list[dict]:
        return [r for r in self.received() if r["method"] == "POST" and r["path"] == path]


@pytest.fixture
def fake_provider(tmp_path) -> FakeProvider:
    port_file = tmp_path / "fake.port"
    log = open(tmp_path / "fake.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentmeter.testing.fake_provider", "--port-file", str(port_file)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60  # bounded, not a timing assertion: a loaded CI machine starts it slowly
        while True:
            text = port_file.read_text().strip() if port_file.exists() else ""
            if text.isdigit():
                break
            if proc.poll() is not None:
                pytest.fail(f"fake provider exited with {proc.returncode}: {(tmp_path / 'fake.log').read_text()}")
            if time.monotonic() > deadline:
                pytest.fail("fake provider did not write its port file within 60 s")
            time.sleep(0.05)
        yield FakeProvider(f"http://127.0.0.1:{text}", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Daemon:
    """A daemon started with `agentmeter proxy start`, and helpers to talk to it as a user would."""

    env: dict[str, str]  # the environment of the user's shell that runs `agentmeter …`
    fake: FakeProvider
    fakehome: Path
    pid: int | None = None
    url: str | None = None
    keys: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, cwd: str | Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [sys.executable, "-m", "agentmeter", *args],
            env=self.env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert r.returncode == 0, f"agentmeter {' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def cli_json(self, *args: str, cwd: str | Path | None = None):
        return json.loads(self.cli(*args, "--json", cwd=cwd).stdout)

    def session_env(self, agent: str, cwd: str | Path | None = None) -> dict:
        """`agentmeter env --agent AGENT --json`: {session_id, env, key_mode}."""
        return self.cli_json("env", "--agent", agent, cwd=cwd)

    def session(self, session_id: str) -> dict:
        return self.cli_json("session", "show", session_id)

    def agent_env(self, exports: dict[str, str], **extra: str) -> dict[str, str]:
        """A minimal environment for an agent: isolated HOME, no inherited credentials or config."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.fakehome),
            "USER": os.environ.get("USER", "e2e"),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "NO_COLOR": "1",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "XDG_CONFIG_HOME": str(self.fakehome / ".config"),
            "CODEX_HOME": str(self.fakehome / ".codex"),
            "DISABLE_TELEMETRY": "1",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        env.update(exports)
        env.update(extra)
        return env


def _make_daemon(tmp_path: Path, fake: FakeProvider, keys: dict[str, str]) -> Daemon:
    fakehome = tmp_path / "fakehome"
    (fakehome / ".codex").mkdir(parents=True, exist_ok=True)
    (fakehome / ".config").mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "AGENTMETER_",
                "ANTHROPIC_",
                "OPENAI_",
                "CLAUDE_",
                "CODEX_",
                "GEMINI_",
                "GOOGLE_",
                "COPILOT_",
                "QWEN_",
                "OPENCODE_",
            )
        )
    }
    env.update(
        {
            "AGENTMETER_HOME": os.environ["AGENTMETER_HOME"],  # set per test by the autouse `home` fixture
            "AGENTMETER_PORT": "0",
            "AGENTMETER_UPSTREAM_ANTHROPIC": fake.url,
            "AGENTMETER_UPSTREAM_OPENAI": fake.url,
            "AGENTMETER_UPSTREAM_GEMINI": fake.url,
            "AGENTMETER_UPSTREAM_CHATGPT": fake.url + "/backend-api/codex",  # ChatGPT-login Codex traffic
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
    )
    if "anthropic" in keys:
        env["AGENTMETER_ANTHROPIC_API_KEY"] = keys["anthropic"]
    if "openai" in keys:
        env["AGENTMETER_OPENAI_API_KEY"] = keys["openai"]
    if "gemini" in keys:
        env["AGENTMETER_GEMINI_API_KEY"] = keys["gemini"]
    return Daemon(env=env, fake=fake, fakehome=fakehome, keys=dict(keys))


def _start_daemon(d: Daemon) -> None:
    started = d.cli_json("proxy", "start")
    assert started["running"], started
    d.pid, d.url = started["pid"], started["url"]


def _stop_daemon(d: Daemon) -> None:
    if d.pid is None:  # `proxy start` failed half-way: the daemon may still have written its pid
        pid_file = get_paths().pid_file
        d.pid = int(pid_file.read_text()) if pid_file.exists() and pid_file.read_text().strip().isdigit() else None
    try:
        d.cli("proxy", "stop", check=False)
    finally:
        # Never leave a daemon behind, even if `proxy stop` is broken: end the one this test started.
        if d.pid:
            deadline = time.monotonic() + 5
            while _alive(d.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(d.pid):
                os.kill(d.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours would still answer; the daemon is detached (not our child), so this is fine
    return True


@pytest.fixture
def daemon_factory(tmp_path, fake_provider):
    """Start a daemon with the given real keys (empty dict = passthrough for every provider)."""
    started: list[Daemon] = []

    def start(keys: dict[str, str]) -> Daemon:
        d = _make_daemon(tmp_path, fake_provider, keys)
        started.append(d)  # registered first, so teardown stops it even if start-up half-failed
        _start_daemon(d)
        return d

    try:
        yield start
    finally:
        for d in started:
            _stop_daemon(d)


@pytest.fixture
def daemon(daemon_factory) -> Daemon:
    """Key mode for both providers: the daemon holds the real keys, agents get a virtual key."""
    return daemon_factory({"anthropic": REAL_ANTHROPIC_KEY, "openai": REAL_OPENAI_KEY})
