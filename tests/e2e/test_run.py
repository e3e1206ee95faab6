"""`agentmeter run` end to end, as a developer uses it: a real `agentmeter run` process (which starts the
daemon itself), real agents or small scripts as the wrapped command, the fake provider upstream.

The environment of `agentmeter run` is the developer's shell: it holds the real provider keys
(AGENTMETER_*_API_KEY), an isolated HOME for the agents, and the agent binaries on PATH. Tests that need
Claude Code or Codex are marked e2e and skip with an install hint when the binary is missing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentmeter.testing.fake_provider import FakeConfig, FakeUsage

from .conftest import (
    CLIENT_ANTHROPIC_KEY,
    REAL_ANTHROPIC_KEY,
    REAL_OPENAI_KEY,
    Daemon,
    FakeProvider,
    _make_daemon,
    run_group,
)

FAKE_TEXT = FakeConfig().text
USAGE = FakeUsage()
AGENTMETER = [sys.executable, "-m", "agentmeter"]
SUMMARY = re.compile(
    r"^agentmeter · (?P<agent>\S+) · (?P<requests>\d+) requests? · .*session (?P<id>[0-9a-f]+)$", re.MULTILINE
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and ptys (Linux)")


def daemon_pids(home: str | Path) -> list[int]:
    """Live `agentmeter proxy serve` processes whose AGENTMETER_HOME is `home`."""
    want = f"AGENTMETER_HOME={home}".encode()
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")  # empty for a zombie
            if not (b"agentmeter" in argv and b"proxy" in argv and b"serve" in argv):
                continue
            if want in (p / "environ").read_bytes().split(b"\0"):
                found.append(int(p.name))
        except OSError:
            continue
    return sorted(found)


@dataclass
class User:
    """A developer's shell: `agentmeter run …` with the real keys exported and the agents on PATH."""

    daemon: Daemon  # not started: `agentmeter run` starts it
    home: Path  # AGENTMETER_HOME
    env: dict[str, str]
    fake: FakeProvider

    def run(
        self, *args: str, cwd: str | Path | None = None, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return run_group([*AGENTMETER, "run", *args], env=env or self.env, cwd=cwd, timeout=timeout)

    def cli_json(self, *args: str):
        r = subprocess.run([*AGENTMETER, *args, "--json"], env=self.env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"agentmeter {' '.join(args)} --json exited {r.returncode}: {r.stderr}"
        return json.loads(r.stdout)

    def sessions(self) -> list[dict]:
        return self.cli_json("sessions")["sessions"]

    def session(self, session_id: str) -> dict:
        return self.cli_json("session", "show", session_id)

    def pid_file(self) -> Path:
        return self.home / "run" / "proxy.pid"


def summary_of(stderr: str) -> re.Match:
    m = SUMMARY.search(stderr)
    assert m, f"no summary line on stderr:\n{stderr}"
    return m


@pytest.fixture
def user(tmp_path, fake_provider, home) -> User:
    d = _make_daemon(tmp_path, fake_provider, {"anthropic": REAL_ANTHROPIC_KEY, "openai": REAL_OPENAI_KEY})
    bin_dirs = [str(Path(sys.executable).parent)]  # the nested `agentmeter run`
    if os.environ.get("AGENTMETER_E2E_BIN"):
        bin_dirs.insert(0, os.environ["AGENTMETER_E2E_BIN"])
    env = dict(d.env)
    env.update({k: v for k, v in d.agent_env({}).items() if k != "PATH"})
    env["PATH"] = os.pathsep.join([*bin_dirs, os.environ.get("PATH", "/usr/bin:/bin")])
    u = User(d, Path(home), env, fake_provider)
    try:
        yield u
    finally:
        subprocess.run([*AGENTMETER, "proxy", "stop"], env=env, capture_output=True, timeout=30)
        for pid in daemon_pids(home):  # whatever `proxy stop` missed (a second daemon, a restart)
            os.kill(pid, signal.SIGKILL)


# 1, 2 — the real agents through `agentmeter run`


@pytest.mark.e2e
def test_run_claude_print_mode(claude_bin, user, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    r = user.run("claude", "-p", "say hello", cwd=work)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert FAKE_TEXT in r.stdout
    m = summary_of(r.stderr)
    assert m["agent"] == "claude" and int(m["requests"]) >= 1, m.group(0)

    [s] = [s for s in user.sessions() if s["id"] == m["id"]]
    assert s["agent"] == "claude"
    assert s["requests"] >= 1 and s["requests"] == int(m["requests"])
    assert s["ended_at"] is not None and s["exit_code"] == 0
    assert Path(s["cwd"]) == work.resolve()
    # key mode: the provider saw the real key, which the agent never had
    posts = user.fake.posts("/v1/messages")
    assert posts and all(p["headers"].get("x-api-key") == REAL_ANTHROPIC_KEY for p in posts)


@pytest.mark.e2e
def test_run_codex_exec(codex_bin, user, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    r = user.run("codex", "exec", "--skip-git-repo-check", "say hello", cwd=work)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert FAKE_TEXT in r.stdout
    m = summary_of(r.stderr)
    assert m["agent"] == "codex"

    sess = user.session(m["id"])
    assert sess["agent"] == "codex" and sess["exit_code"] == 0
    rows = sess["requests"]
    assert rows, "codex's requests were not metered"
    assert all(row["status"] == "ok" and row["output_tokens"] == USAGE.output_tokens for row in rows), rows
    posts = user.fake.posts("/v1/responses")
    assert len(posts) == len(rows)
    assert all(p["headers"].get("authorization") == f"Bearer {REAL_OPENAI_KEY}" for p in posts)


# 3 — exit codes and signals


def test_exit_code_signal_and_quiet(user):
    r = user.run("--", "sh", "-c", "exit 7")
    assert r.returncode == 7
    assert summary_of(r.stderr)["agent"] == "other"

    r = user.run("--", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 128 + signal.SIGTERM

    r = user.run("--quiet", "--", "sh", "-c", "echo out; exit 3")
    assert r.returncode == 3 and r.stdout == "out\n"
    assert r.stderr == ""


def test_sigterm_and_sighup_are_forwarded(user, tmp_path):
    script = textwrap.dedent("""
        import signal, sys, time
        def on(sig, _):
            print("child got", signal.Signals(sig).name, flush=True)
            sys.exit(40 + sig)
        signal.signal(signal.SIGTERM, on)
        signal.signal(signal.SIGHUP, on)
        print("ready", flush=True)
        time.sleep(30)
    """)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        proc = subprocess.Popen(
            [*AGENTMETER, "run", "--quiet", "--", sys.executable, "-c", script],
            env=user.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout.readline() == "ready\n"
            proc.send_signal(sig)  # to the wrapper only, not the group
            out, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert f"child got {sig.name}" in out, (out, err)
        assert proc.returncode == 40 + sig, (proc.returncode, err)


# 4 — what the wrapped process sees


def test_env_has_session_not_real_keys(user):
    assert user.env["AGENTMETER_ANTHROPIC_API_KEY"] == REAL_ANTHROPIC_KEY  # exported in the user's shell
    r = user.run("--quiet", "--", "env")
    assert r.returncode == 0, r.stderr
    assert REAL_ANTHROPIC_KEY not in r.stdout and REAL_OPENAI_KEY not in r.stdout
    seen = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert "AGENTMETER_ANTHROPIC_API_KEY" not in seen and "AGENTMETER_OPENAI_API_KEY" not in seen
    assert seen["ANTHROPIC_BASE_URL"].startswith("http://127.0.0.1:")
    # the Anthropic SDK and Claude Code append /v1/messages; the OpenAI SDK appends /responses
    assert not seen["ANTHROPIC_BASE_URL"].endswith("/v1")
    assert seen["OPENAI_BASE_URL"].startswith("http://127.0.0.1:") and seen["OPENAI_BASE_URL"].endswith("/v1")
    virtual = seen["ANTHROPIC_API_KEY"]
    assert virtual and seen["OPENAI_API_KEY"] == virtual
    assert virtual not in (REAL_ANTHROPIC_KEY, REAL_OPENAI_KEY)
    assert seen["AGENTMETER_SESSION_ID"] in {s["id"] for s in user.sessions()}


# 5 — interactive, through a pseudo-terminal

_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Za-z0-9]|\x1b[=>78]|\x1b")


class Pty:
    """A process on a fresh pseudo-terminal (its controlling TTY), read through the master side."""

    def __init__(self, argv: list[str], env: dict, cwd: str | Path | None = None, rows: int = 30, cols: int = 100):
        self.master, slave = os.openpty()
        self.resize(rows, cols)
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            close_fds=True,
        )
        os.close(slave)
        self.raw = b""
        self.eof = False

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _pump(self, timeout: float) -> None:
        if self.eof:
            time.sleep(min(timeout, 0.05))
            return
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError as exc:  # EIO: every slave fd is closed
            if exc.errno != errno.EIO:
                raise
            data = b""
        if data:
            self.raw += data
        else:
            self.eof = True

    @property
    def screen(self) -> str:
        """Everything written so far, escape sequences dropped and whitespace collapsed."""
        text = _ANSI.sub(b" ", self.raw).decode("utf-8", "replace")
        return " ".join(text.split())

    def expect(self, needle: str, timeout: float = 20, after: int = 0) -> int:
        """Wait for `needle` on screen (at or after position `after`); returns the position after it."""
        deadline = time.monotonic() + timeout
        while True:
            at = self.screen.find(needle, after)
            if at >= 0:
                return at + len(needle)
            if time.monotonic() > deadline or (self.eof and self.proc.poll() is not None):
                pytest.fail(f"{needle!r} did not appear within {timeout:.0f} s; screen so far:\n{self.screen[-3000:]}")
            self._pump(0.1)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.1)
        if self.proc.poll() is None:
            pytest.fail(f"the process did not exit within {timeout:.0f} s; screen:\n{self.screen[-3000:]}")
        while not self.eof:  # drain what is left
            self._pump(0.2)
            r, _, _ = select.select([self.master], [], [], 0)
            if not r:
                break
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        os.close(self.master)


@pytest.fixture
def pty_spawn():
    spawned: list[Pty] = []

    def spawn(*args, **kw) -> Pty:
        p = Pty(*args, **kw)
        spawned.append(p)
        return p

    try:
        yield spawn
    finally:
        for p in spawned:
            p.close()


@pytest.mark.e2e
def test_run_claude_interactive_tui(claude_bin, user, pty_spawn, tmp_path):
    # Passthrough for Anthropic (the daemon holds no Anthropic key) so the client key, and so the entry
    # that skips Claude Code's "use this API key?" question, is known before the session opens.
    work = (tmp_path / "work").resolve()
    work.mkdir()
    (user.daemon.fakehome / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "customApiKeyResponses": {"approved": [CLIENT_ANTHROPIC_KEY[-20:]], "rejected": []},
                "projects": {str(work): {"hasTrustDialogAccepted": True}},
            }
        )
    )
    env = {k: v for k, v in user.env.items() if k not in ("AGENTMETER_ANTHROPIC_API_KEY", "NO_COLOR")}
    env.update(ANTHROPIC_API_KEY=CLIENT_ANTHROPIC_KEY, TERM="xterm-256color")

    t = pty_spawn([*AGENTMETER, "run", "claude"], env=env, cwd=work)
    at = t.expect("for shortcuts", timeout=30)  # the input prompt's footer
    t.send("say hello")
    at = t.expect("say hello", after=at)
    t.send("\r")
    # Claude Code's TUI repaints only the cells that change, so the reply can reach the terminal stream with a
    # letter missing ("Hell from the fake provider."): wait for a distinctive tail of it instead.
    at = t.expect(FAKE_TEXT.split(" ", 1)[1].rstrip("."), after=at)
    t.send("/exit")
    at = t.expect("/exit", after=at)
    t.send("\r")
    code = t.wait(20)
    assert code == 0, t.screen[-2000:]
    m = SUMMARY.search(t.screen[at:].replace("agentmeter ·", "\nagentmeter ·") + "\n")
    assert m and m["agent"] == "claude", t.screen[-1000:]

    [s] = [s for s in user.sessions() if s["id"] == m["id"]]
    assert s["agent"] == "claude" and s["requests"] >= 1 and s["exit_code"] == 0
    posts = user.fake.posts("/v1/messages")
    assert posts and all(p["headers"].get("x-api-key") == CLIENT_ANTHROPIC_KEY for p in posts)


def _claude_tui_turn(t, prompt: str) -> str:
    """One turn in Claude Code's TUI, then /exit; returns the screen after the reply."""
    at = t.expect("for shortcuts", timeout=30)  # the input prompt's footer
    t.send(prompt)
    at = t.expect(prompt, after=at)
    t.send("\r")
    at = t.expect(FAKE_TEXT.split(" ", 1)[1].rstrip("."), after=at)
    t.send("/exit")
    at = t.expect("/exit", after=at)
    t.send("\r")
    assert t.wait(20) == 0, t.screen[-2000:]
    return t.screen[at:]


@pytest.mark.e2e
def test_run_claude_interactive_key_mode_asks_nothing_and_leaves_no_trace(claude_bin, user, pty_spawn, tmp_path):
    # Key mode: the daemon holds the real Anthropic key and the shell also exports one (a developer's usual
    # ANTHROPIC_API_KEY). Claude Code must start without "Detected a custom API key", the request must carry
    # the real key upstream (swapped by the proxy), and ~/.claude.json must gain nothing per session.
    work = (tmp_path / "work").resolve()
    work.mkdir()
    claude_json = user.daemon.fakehome / ".claude.json"
    claude_json.write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "projects": {str(work): {"hasTrustDialogAccepted": True}},
            }
        )
    )
    env = {k: v for k, v in user.env.items() if k != "NO_COLOR"}
    env.update(ANTHROPIC_API_KEY=CLIENT_ANTHROPIC_KEY, TERM="xterm-256color")

    seen = []
    for n in range(2):
        t = pty_spawn([*AGENTMETER, "run", "claude"], env=env, cwd=work)
        tail = _claude_tui_turn(t, f"say hello {n}")
        assert "custom API key" not in t.screen and "Not logged in" not in t.screen, t.screen[-3000:]
        m = SUMMARY.search(tail.replace("agentmeter ·", "\nagentmeter ·") + "\n")
        assert m and m["agent"] == "claude", tail[-1000:]
        [s] = [s for s in user.sessions() if s["id"] == m["id"]]
        assert s["requests"] >= 1 and s["exit_code"] == 0, s
        state = json.loads(claude_json.read_text())
        seen.append((state.get("customApiKeyResponses"), state.get("primaryApiKey")))
    # Claude Code writes its own counters each start; what must not appear is an entry per virtual key.
    assert seen[0] == seen[1] and all(
        not (c or {}).get("approved") and not (c or {}).get("rejected") and not k for c, k in seen
    ), seen
    for f in user.daemon.fakehome.rglob("*"):
        if f.is_file():
            assert b"amk_" not in f.read_bytes(), f"a virtual key was written to {f}"
    posts = user.fake.posts("/v1/messages")
    assert len(posts) >= 2 and all(p["headers"].get("x-api-key") == REAL_ANTHROPIC_KEY for p in posts), [
        p["headers"].get("x-api-key") for p in posts
    ]
    assert all("authorization" not in {h.lower() for h in p["headers"]} for p in posts)


def test_pty_child_sees_tty_and_window_size_changes(user, pty_spawn):
    script = textwrap.dedent("""
        import os, signal, sys
        def on_winch(*_):
            size = os.get_terminal_size(sys.stdout.fileno())
            print(f"WINCH {size.columns}x{size.lines}", flush=True)
        signal.signal(signal.SIGWINCH, on_winch)
        size = os.get_terminal_size(sys.stdout.fileno())
        print(f"TTY {sys.stdin.isatty()} {sys.stdout.isatty()} {size.columns}x{size.lines}", flush=True)
        print("READY", flush=True)
        print("GOT " + sys.stdin.readline().strip(), flush=True)
    """)
    t = pty_spawn([*AGENTMETER, "run", "--quiet", "--", sys.executable, "-c", script], env=user.env, rows=30, cols=100)
    at = t.expect("READY", timeout=20)
    assert "TTY True True 100x30" in t.screen, t.screen
    t.resize(33, 111)  # the terminal window is resized: the kernel sends SIGWINCH to the foreground group
    at = t.expect("WINCH 111x33", after=at)
    t.send("ping\r")
    t.expect("GOT ping", after=at)
    assert t.wait(10) == 0


# 6 — the daemon dies mid-session

DAEMON_KILLER = textwrap.dedent("""
    import json, os, signal, sys, time, urllib.error, urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    def ask():
        req = urllib.request.Request(
            os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
            data=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": False,
                             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01",
                     "content-type": "application/json"})
        with opener.open(req, timeout=5) as r:
            return json.loads(r.read())
    ask()
    pid_file = os.path.join(os.environ["AGENTMETER_HOME"], "run", "proxy.pid")
    pid = int(open(pid_file).read())
    print("killing", pid, flush=True)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    attempts = 0
    while True:
        attempts += 1
        try:
            ask()
            break
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                sys.exit(f"still failing after {attempts} attempts: {exc}")
            time.sleep(0.2)
    print("retried ok after", attempts, "attempts", flush=True)
""")


def test_daemon_killed_mid_session_is_restarted_on_same_port(user):
    started = json.loads(
        subprocess.run(
            [*AGENTMETER, "proxy", "start", "--json"],
            env=user.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    )
    old_pid, port = started["pid"], started["port"]

    r = user.run("--", sys.executable, "-c", DAEMON_KILLER, timeout=40)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert f"killing {old_pid}" in r.stdout and "retried ok" in r.stdout

    status = user.cli_json("proxy", "status")
    assert status["running"], status
    assert status["pid"] != old_pid and status["port"] == port
    assert daemon_pids(user.home) == [status["pid"]]
    sess = user.session(summary_of(r.stderr)["id"])
    assert [row["status"] for row in sess["requests"]] == ["ok", "ok"], sess["requests"]
    assert sess["exit_code"] == 0 and sess["ended_at"] is not None


# 7 — two launches at once start one daemon


def test_simultaneous_runs_start_one_daemon(user):
    assert daemon_pids(user.home) == []
    procs = [
        subprocess.Popen(
            [*AGENTMETER, "run", "--", "true"],
            env=user.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(30), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results] == [0, 0], results
    pids = daemon_pids(user.home)
    assert len(pids) == 1, f"{len(pids)} daemons running: {pids}"
    assert int(user.pid_file().read_text()) == pids[0]
    ids = {summary_of(err)["id"] for _, err in results}
    assert len(ids) == 2 and ids <= {s["id"] for s in user.sessions()}


# 8 — errors a user can act on


def test_unknown_agent_missing_binary_bad_budget(user, tmp_path):
    r = user.run("frobnicate")
    assert r.returncode == 2
    for name in ("claude", "codex", "aider"):
        assert name in r.stderr, r.stderr
    assert "frobnicate" in r.stderr

    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    no_aider = {**user.env, "PATH": os.pathsep.join([str(empty_bin), str(Path(sys.executable).parent)])}
    assert not any((Path(d) / "aider").exists() for d in no_aider["PATH"].split(os.pathsep))
    r = user.run("aider", "--help", env=no_aider)
    assert r.returncode != 0
    assert "aider is not on PATH" in r.stderr, r.stderr
    assert "pipx install aider-chat" in r.stderr, r.stderr

    r = user.run("--budget", "abc", "claude")
    assert r.returncode == 2, r.stderr
    assert "--budget" in r.stderr and "abc" in r.stderr and "not a number" in r.stderr
    assert "Traceback" not in r.stderr


# 9 — a nested run joins the outer session


def test_nested_run_joins_outer_session(user):
    inner = f"{shlex.join(AGENTMETER)} run -- sh -c 'echo $AGENTMETER_SESSION_ID'"
    r = user.run("--", "sh", "-c", f"{inner}; echo outer=$AGENTMETER_SESSION_ID")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0] and lines[1] == f"outer={lines[0]}", r.stdout
    assert [s["id"] for s in user.sessions()] == [lines[0]]
    assert r.stderr.count("agentmeter · ") == 1, r.stderr  # one summary, from the outer run


# 10 — the demo


def test_demo_is_self_contained(user):
    user_home = user.home
    r = subprocess.run(
        [*AGENTMETER, "demo"], env=user.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=45
    )
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    summaries = {m["agent"]: m for m in SUMMARY.finditer(r.stdout)}
    assert set(summaries) == {"claude", "codex"}, r.stdout
    table = r.stdout[r.stdout.index("$ agentmeter sessions") :]
    for agent, m in summaries.items():
        assert int(m["requests"]) > 0
        assert re.search(rf"^{m['id']}\s+{agent}\s", table, re.MULTILINE), table

    demo_home = re.search(r"throw-away home (\S+)", r.stdout)[1]
    demo_pid = int(re.search(r"\(pid (\d+)\)", r.stdout)[1])
    assert daemon_pids(demo_home) == [], "the demo left its daemon running"
    try:
        assert b"serve" not in Path(f"/proc/{demo_pid}/cmdline").read_bytes(), "the demo left its daemon running"
    except FileNotFoundError:
        pass
    assert not Path(demo_home).exists()
    assert daemon_pids(user_home) == []
    assert not (user_home / "ledger.db").exists()
