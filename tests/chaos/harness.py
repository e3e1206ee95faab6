"""Shared machinery for the crash trials and the soak: real processes, real sockets, a real ledger file.

`agentmeter run -- python load_agent.py` starts the daemon itself and keeps it alive (DaemonWatch); the
fake provider runs as its own process; the harness kills, watches and finally compares what every client
received (load_agent's log) with the rows in the ledger.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENT = HERE / "load_agent.py"
# A distinctive fake "real" key: the security tests grep for it, and it must never reach the agent.
REAL_KEY = "sk-ant-chaos-REAL-7c1f0e2d9b8a-do-not-leak"


@dataclass
class Fake:
    url: str
    proc: subprocess.Popen

    def configure(self, **cfg) -> None:
        req = urllib.request.Request(
            self.url + "/_fake/config", data=json.dumps(cfg).encode(), headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_fake(workdir: Path, pace_ms: float = 0.0) -> Fake:
    port_file = workdir / "fake.port"
    log = open(workdir / "fake.log", "wb")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentmeter.testing.fake_provider",
            "--port-file",
            str(port_file),
            "--pace-ms",
            str(pace_ms),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    log.close()
    deadline = time.monotonic() + 60  # bounded (it exits early on a dead process), not a timing assertion
    while not (port_file.exists() and port_file.read_text().strip().isdigit()):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"fake provider did not start: {(workdir / 'fake.log').read_text()}")
        time.sleep(0.05)
    return Fake(f"http://127.0.0.1:{port_file.read_text().strip()}", proc)


def user_env(home: Path, fake: Fake, key_mode: bool = True) -> dict[str, str]:
    """The developer's shell: real key in AGENTMETER_ANTHROPIC_API_KEY, everything else isolated."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTMETER_", "ANTHROPIC_", "OPENAI_", "CLAUDE_", "CODEX_"))
    }
    env.update(
        {
            "AGENTMETER_HOME": str(home),
            "AGENTMETER_PORT": "0",
            "AGENTMETER_UPSTREAM_ANTHROPIC": fake.url,
            "AGENTMETER_UPSTREAM_OPENAI": fake.url,
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
    )
    if key_mode:
        env["AGENTMETER_ANTHROPIC_API_KEY"] = REAL_KEY
    return env


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def daemon_health(home: Path) -> dict | None:
    """Full health (with the control token), or None when no daemon answers."""
    port, token = _read(home / "run" / "proxy.port"), _read(home / "run" / "control.token")
    if not port or not token:
        return None
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/_agentmeter/v1/health", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            h = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return h if h.get("pid") and str(h["pid"]) == _read(home / "run" / "proxy.pid") else None


def wait_healthy(home: Path, not_pid: int | None = None, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = daemon_health(home)
        if h and h["pid"] != not_pid:
            return h
        time.sleep(0.02)
    raise TimeoutError(f"no healthy daemon within {timeout:.0f} s")


def proc_stats(pid: int) -> dict:
    """Resident memory (KiB), open descriptors and threads of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    vals = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kib": int(vals["VmRSS"].split()[0]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(vals["Threads"].strip()),
    }


@dataclass
class Run:
    """`agentmeter run -- python load_agent.py` in its own process group."""

    home: Path
    env: dict
    log: Path
    stop_file: Path
    proc: subprocess.Popen | None = None
    stdout: str = ""
    stderr: str = ""

    def start(self, streams: int, extra: tuple[str, ...] = ()) -> Run:
        cmd = [
            sys.executable,
            "-m",
            "agentmeter",
            "run",
            "--quiet",
            "--",
            sys.executable,
            str(AGENT),
            "--streams",
            str(streams),
            "--log",
            str(self.log),
            "--stop-file",
            str(self.stop_file),
            *extra,
        ]
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return self

    def finish(self, timeout: float = 180) -> int:
        self.stop_file.touch()
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.stdout, self.stderr = self.proc.communicate()
            raise
        return self.proc.returncode

    def completed(self) -> int:
        try:
            return sum('"outcome": "complete"' in line for line in self.log.read_text().splitlines())
        except OSError:
            return 0


def stop_daemon(home: Path, env: dict) -> None:
    subprocess.run([sys.executable, "-m", "agentmeter", "proxy", "stop"], env=env, capture_output=True, timeout=60)


@dataclass
class Verdict:
    attempts: collections.Counter = field(default_factory=collections.Counter)
    errors_by_kind: collections.Counter = field(default_factory=collections.Counter)
    complete: int = 0
    complete_without_row: list = field(default_factory=list)
    interrupted: int = 0
    interrupted_rows: collections.Counter = field(default_factory=collections.Counter)
    interrupted_without_row: list = field(default_factory=list)
    no_response_with_row: int = 0
    duplicate_rows: int = 0
    rows: int = 0
    rows_by_status: collections.Counter = field(default_factory=collections.Counter)
    sessions: int = 0
    session_ended: bool = False
    session_exit_code: int | None = None

    @property
    def rows_lost(self) -> int:
        return len(self.complete_without_row) + len(self.interrupted_without_row)

    def as_dict(self) -> dict:
        return {
            "attempts": dict(self.attempts),
            "errors_by_kind": dict(self.errors_by_kind),
            "complete": self.complete,
            "complete_without_row": len(self.complete_without_row),
            "interrupted": self.interrupted,
            "interrupted_rows": dict(self.interrupted_rows),
            "interrupted_without_row": len(self.interrupted_without_row),
            "no_response_with_row": self.no_response_with_row,
            "duplicate_rows": self.duplicate_rows,
            "rows": self.rows,
            "rows_by_status": dict(self.rows_by_status),
            "rows_lost": self.rows_lost,
            "sessions": self.sessions,
            "session_ended": self.session_ended,
            "session_exit_code": self.session_exit_code,
        }


def verify(ledger: Path, log: Path) -> Verdict:
    """What each client received against what the ledger holds, matched by the per-attempt agent id."""
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT agent_id, status, response_id, reason, session_id FROM requests")]
    sessions = [dict(r) for r in conn.execute("SELECT id, ended_at, exit_code FROM sessions")]
    conn.close()
    v = Verdict(rows=len(rows), sessions=len(sessions))
    if len(sessions) == 1:
        v.session_ended = sessions[0]["ended_at"] is not None
        v.session_exit_code = sessions[0]["exit_code"]
    by_attempt: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        by_attempt[r["agent_id"]].append(r)
        v.rows_by_status[r["status"]] += 1
    v.duplicate_rows = sum(len(rs) - 1 for rs in by_attempt.values() if len(rs) > 1)
    for line in log.read_text().splitlines():
        a = json.loads(line)
        v.attempts[a["outcome"]] += 1
        got = by_attempt.get(a["id"], [])
        if a["outcome"] == "complete":
            v.complete += 1
            if not any(r["status"] == "ok" and r["response_id"] == a["rid"] for r in got):
                v.complete_without_row.append(a)
        elif a["outcome"] == "interrupted":
            v.interrupted += 1
            v.errors_by_kind[f"stream cut: {a.get('error') or 'EOF before the terminal event'}"] += 1
            if got:
                v.interrupted_rows[got[0]["status"]] += 1
            else:
                v.interrupted_without_row.append(a)
        elif a["outcome"] == "no_response":
            v.errors_by_kind[f"no response: {a.get('error')}"] += 1
            v.no_response_with_row += bool(got)
        else:
            v.errors_by_kind[f"HTTP {a['status']}"] += 1
    return v
