"""`agentmeter run`: ensure the daemon, open a session, start the agent on it, get out of the way.

The agent owns the terminal: it inherits stdin/stdout/stderr and the process group, so keys, SIGINT and
SIGWINCH reach it directly from the TTY. The wrapper forwards SIGTERM and SIGHUP, and returns the agent's
exit code. It holds a copy of the daemon's listening socket for the whole session, so if the daemon dies
the port stays ours and the restart (sessions live in the ledger) serves the same socket; if the port is
ever not ours, the agent is stopped before it can send its key or session token to whoever took it.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace

from ..agents import Launch, get_agent
from ..agents import generic as generic_agent
from ..agents.session_env import SessionEnv, joined_session
from ..core.errors import NotFoundError, UsageError
from ..home.config import Config
from ..proxy import daemon
from .session import open_session

WATCH_INTERVAL = 0.5


def resolve_binary(name: str, install: str) -> str:
    found = shutil.which(name)
    if not found:
        raise NotFoundError(f"{name} is not on PATH", f"install it: {install}")
    return found


def prepare(
    config: Config,
    agent: str | None,
    args: list[str],
    *,
    budget_usd: float | None = None,
    tags: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
    label: str | None = None,
) -> tuple[SessionEnv, Launch]:
    """The session (opened, or joined when nested) and how to launch the agent on it. `label` names the
    session's agent for a generic command (the demo's scripted agents)."""
    environ = dict(os.environ if environ is None else environ)
    if agent is None and not args:
        raise UsageError("nothing to run", "agentmeter run claude, or agentmeter run -- CMD [ARGS]")
    spec = get_agent(agent) if agent else None
    binary = resolve_binary(spec.binary, spec.install) if spec else None
    if spec is None and not shutil.which(args[0]) and not os.path.exists(args[0]):
        raise NotFoundError(f"{args[0]} is not on PATH", "check the command name")
    session = joined_session(environ)
    if session is not None:
        session = replace(session, listener=_hold_joined(session))
    else:
        session = open_session(config, agent=agent or label or "other", tags=tags, budget_usd=budget_usd)
    launch = spec.prepare(session, args, environ, binary) if spec else generic_agent.prepare(session, args, environ)
    return session, launch


def _hold_joined(session: SessionEnv) -> socket.socket | None:
    """A nested run holds the port of the session it joins too, when the running daemon serves it."""
    from urllib.parse import urlsplit

    info = daemon.status()
    if not info.running or info.port != urlsplit(session.anthropic_url).port:
        return None
    return daemon.hold_listener(info)


class DaemonWatch(threading.Thread):
    """Keeps the session's port served while the agent runs. It wakes the moment the daemon exits (a
    pidfd), restarts it on the socket this wrapper holds, and calls `on_lost` when the session's port is
    not (or no longer) ours: no held socket, or a daemon serving elsewhere."""

    def __init__(
        self, port: int | None, listener: socket.socket | None = None, on_lost: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(name="agentmeter-watch", daemon=True)
        self.port = port
        self.listener = listener
        self.on_lost = on_lost or (lambda _why: None)
        self.stop = threading.Event()
        self.restarts = 0

    def run(self) -> None:
        # The daemon the session was just opened on: wait for it to exit before asking it anything, so a
        # short run costs no health request.
        first = daemon.read_pid()
        if first and daemon.pid_alive(first):
            self._wait_exit(first)
        while not self.stop.is_set():
            info = daemon.status()
            if info.running and (info.port == self.port or self.port is None):
                self.port = info.port
                self._wait_exit(info.pid)
                continue
            if info.pid and daemon.pid_alive(info.pid) and info.port in (self.port, None):
                # Alive but not answering (starting, or swamped): not ours to replace; a second daemon
                # on the same socket would split the session's budget state between two processes.
                self._wait_exit(info.pid)
                continue
            if info.running:
                self.on_lost(f"the proxy now listens on port {info.port}, not on this session's port {self.port}")
                return
            if self.listener is None:
                self.on_lost(f"the proxy on port {self.port} stopped and this session did not hold its port")
                return
            try:
                daemon.ensure_running(port=self.port, listener=self.listener)
                self.restarts += 1
            except Exception:
                self.stop.wait(WATCH_INTERVAL)  # tried again; the held socket keeps the port meanwhile

    def _wait_exit(self, pid: int | None) -> None:
        """Return when `pid` exits or the watch is stopped."""
        try:
            pidfd = os.pidfd_open(pid) if pid else None
        except (OSError, AttributeError):
            pidfd = None
        try:
            while not self.stop.is_set():
                if pidfd is not None:
                    if select.select([pidfd], [], [], WATCH_INTERVAL)[0]:
                        return
                elif self.stop.wait(WATCH_INTERVAL) or not daemon.pid_alive(pid):
                    return
        finally:
            if pidfd is not None:
                os.close(pidfd)


def stop_tree(pid: int) -> None:
    """Freeze, then kill, `pid` and every process below it: none of them may send another request."""
    seen: set[int] = set()
    for _ in range(3):  # a process may fork while we look: freeze what we find, look again
        new = [p for p in _descendants(pid) if p not in seen]
        if not new:
            break
        for p in new:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGSTOP)
        seen.update(new)
    for p in seen or {pid}:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return [root]
    for e in entries:
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def spawn(launch: Launch, port: int | None, listener: socket.socket | None = None) -> int:
    """Run the agent in the foreground; returns its exit code (128+N when killed by signal N)."""
    proc = subprocess.Popen(launch.argv, env=launch.env)

    def forward(signum, _frame):
        if proc.poll() is None:
            proc.send_signal(signum)

    def lost(why: str) -> None:
        if proc.poll() is None:
            stop_tree(proc.pid)
        name = os.path.basename(launch.argv[0]) if launch.argv else "the agent"
        sys.stderr.write(
            f"\nagentmeter: {why}; stopped {name} so it cannot send its key or session to another "
            "program on that port. Start it again with agentmeter run.\n"
        )
        sys.stderr.flush()

    # SIGINT comes from the TTY to the whole foreground group, agent included: the wrapper just waits.
    # (A handler rather than SIG_IGN, which the agent would inherit.)
    previous = {
        s: signal.signal(s, forward if s != signal.SIGINT else (lambda *_: None))
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    watch = DaemonWatch(port, listener, lost)
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


def end_session(session: SessionEnv, exit_code: int, *, discard_if_empty: bool = False) -> bool:
    """End the session; with `discard_if_empty`, a session without a single request is deleted instead (a
    launch that failed). Returns True when it was discarded."""
    if session.joined:
        return False
    info = daemon.status()
    if not info.running:
        info, _ = daemon.ensure_running()
    try:
        got = daemon.control(
            f"/_agentmeter/v1/sessions/{session.session_id}/end",
            {"exit_code": exit_code, "discard_if_empty": discard_if_empty, "commit": _head_commit()},
            info,
        )
    except Exception:
        return False  # the session still has all its requests; only ended_at is missing
    return bool(isinstance(got, dict) and got.get("discarded"))


def _head_commit() -> str | None:
    """The commit the session's repository is on now, at its end (issue 20 item 7: spend by commit range). The
    session ran here: `run` never changes its own directory."""
    import os

    from ..home.attribution import head_commit

    try:
        return head_commit(os.getcwd())
    except OSError:  # the directory was removed under us
        return None


def session_summary(session_id: str) -> dict | None:
    from ..commands.views import session_view
    from ..home.paths import get_paths
    from ..ledger import open_ledger

    ledger = open_ledger(get_paths().ledger, readonly=True)
    try:
        rows = ledger.sessions(session_id=session_id)
    finally:
        ledger.close()
    return session_view(rows[0]) if rows else None
