"""`agentmeter run`: ensure the daemon, open a session, start the agent on it, get out of the way.

The agent owns the terminal: it inherits stdin/stdout/stderr and the process group, so keys, SIGINT and
SIGWINCH reach it directly from the TTY. The wrapper forwards SIGTERM and SIGHUP, restarts the daemon on
the same port if it dies mid-session (sessions live in the ledger), and returns the agent's exit code.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass

from .agents import Launch, get_agent
from .agents import generic as generic_agent
from .config import Config
from .errors import NotFoundError, UsageError
from .proxy import daemon
from .session_env import SessionEnv, joined_session, open_session

WATCH_INTERVAL = 0.5


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    session_id: str
    joined: bool
    note: str | None = None


def resolve_binary(name: str, install: str) -> str:
    found = shutil.which(name)
    if not found:
        raise NotFoundError(f"{name} is not on PATH", f"install it: {install}")
    return found


def prepare(config: Config, agent: str | None, args: list[str], *, budget_usd: float | None = None,
            tags: dict[str, str] | None = None, environ: dict[str, str] | None = None,
            label: str | None = None) -> tuple[SessionEnv, Launch]:
    """The session (opened, or joined when nested) and how to launch the agent on it. `label` names the
    session's agent for a generic command (the demo's scripted agents)."""
    environ = dict(os.environ if environ is None else environ)
    if agent is None and not args:
        raise UsageError("nothing to run", "agentmeter run claude, or agentmeter run -- CMD [ARGS]")
    spec = get_agent(agent) if agent else None
    binary = resolve_binary(spec.binary, spec.install) if spec else None
    if spec is None and not shutil.which(args[0]) and not os.path.exists(args[0]):
        raise NotFoundError(f"{args[0]} is not on PATH", "check the command name")
    session = joined_session(environ) or open_session(config, agent=agent or label or "other", tags=tags,
                                                      budget_usd=budget_usd)
    launch = spec.prepare(session, args, environ, binary) if spec else generic_agent.prepare(session, args, environ)
    return session, launch


class DaemonWatch(threading.Thread):
    """Restarts the daemon on its port if it dies while the agent runs, so the agent's retry succeeds."""

    def __init__(self, port: int | None) -> None:
        super().__init__(name="agentmeter-watch", daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.restarts = 0

    def run(self) -> None:
        while not self.stop.wait(WATCH_INTERVAL):
            info = daemon.status()
            if info.running:
                self.port = info.port
                continue
            try:
                daemon.ensure_running(port=self.port)
                self.restarts += 1
            except Exception:
                pass  # tried again on the next tick


def spawn(launch: Launch, port: int | None) -> int:
    """Run the agent in the foreground; returns its exit code (128+N when killed by signal N)."""
    proc = subprocess.Popen(launch.argv, env=launch.env)

    def forward(signum, _frame):
        if proc.poll() is None:
            proc.send_signal(signum)

    # SIGINT comes from the TTY to the whole foreground group, agent included: the wrapper just waits.
    # (A handler rather than SIG_IGN, which the agent would inherit.)
    previous = {s: signal.signal(s, forward if s != signal.SIGINT else (lambda *_: None))
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    watch = DaemonWatch(port)
    watch.start()
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        watch.stop.set()
        for s, h in previous.items():
            signal.signal(s, h)
    return code if code >= 0 else 128 - code


def end_session(session: SessionEnv, exit_code: int) -> None:
    if session.joined:
        return
    info = daemon.status()
    if not info.running:
        info, _ = daemon.ensure_running()
    try:
        daemon.control(f"/_agentmeter/v1/sessions/{session.session_id}/end", {"exit_code": exit_code}, info)
    except Exception:
        pass  # the session still has all its requests; only ended_at is missing


def session_summary(session_id: str) -> dict | None:
    from .ledger import open_ledger
    from .paths import get_paths
    from .views import session_view

    ledger = open_ledger(get_paths().ledger, readonly=True)
    try:
        rows = ledger.sessions(session_id=session_id)
    finally:
        ledger.close()
    return session_view(rows[0]) if rows else None
