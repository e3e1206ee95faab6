"""Issue 14 item 1: a session's traffic never goes to a port another local user holds.

A real `agentmeter run` wraps a scripted agent; the daemon is SIGKILLed mid-session while a process of a
real second uid (`amother`, created here when we are root, as in CI) tries to bind the freed port as fast
as it can. The other uid must never get the port (nor a byte of the agent's traffic); the session either
keeps working on the same port or its agent is stopped, loudly, before it sends again.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from .test_run import AGENTMETER, daemon_pids, summary_of, user  # noqa: F401 (user is a fixture)

OTHER_USER = "amother"

# The scripted agent: one request, then waits for `go` (a file the test creates), then asks again,
# retrying like a real agent does while the daemon is restarted.
AGENT = textwrap.dedent("""
    import json, os, sys, time, urllib.error, urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    def ask():
        req = urllib.request.Request(
            os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages",
            data=json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": False,
                             "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01",
                     "content-type": "application/json"})
        with opener.open(req, timeout=10) as r:
            return json.loads(r.read())
    ask()
    print("FIRST ok", flush=True)
    go = os.environ["TEST_GO"]
    while not os.path.exists(go):
        time.sleep(0.02)
    for attempt in range(100):
        try:
            ask()
            break
        except (urllib.error.URLError, OSError) as exc:
            time.sleep(0.1)
    else:
        sys.exit(f"second request failed: {exc}")
    print("SECOND ok", flush=True)
""")

# Runs as the other uid: binds the port the moment it is free (both 127.0.0.1 and the wildcard, with
# SO_REUSEADDR, as an attacker would), and records everything sent to it.
RACER = textwrap.dedent("""
    import os, socket, sys, time
    port, stop = int(sys.argv[1]), sys.argv[2]
    print("READY", flush=True)
    tries, got = 0, None
    while got is None and not os.path.exists(stop):
        for host in ("127.0.0.1", "0.0.0.0"):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
                s.listen(16)
                got = s
                break
            except OSError:
                s.close()
        tries += 1
    if got is None:
        print(f"NEVER BOUND after {tries} tries", flush=True)
        sys.exit(0)
    print(f"BOUND {port} after {tries} tries", flush=True)
    got.settimeout(0.2)
    while not os.path.exists(stop):
        try:
            conn, _ = got.accept()
        except OSError:
            continue
        conn.settimeout(2)
        try:
            print("RECEIVED", conn.recv(65536)[:300], flush=True)
        except OSError:
            print("RECEIVED a connection", flush=True)
        conn.close()
""")


def _system_python() -> str:
    # A python the other uid can run: the venv may live under a root-only directory.
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""):
        if cand and os.access(cand, os.X_OK):
            return cand
    return sys.executable


@pytest.fixture
def other_uid() -> pwd.struct_passwd:
    if not sys.platform.startswith("linux"):
        pytest.skip("needs Linux (SO_PEERCRED, pidfd, /proc)")
    if os.geteuid() != 0:
        pytest.skip("needs root to run a racing binder as a second uid (CI runs as root)")
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        pass
    made = subprocess.run(
        ["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", OTHER_USER], capture_output=True, text=True
    )
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        pytest.skip(f"no second uid: user {OTHER_USER} is missing and useradd failed: {made.stderr.strip()}")


class Racer:
    """A process of the other uid racing to bind `port`."""

    def __init__(self, who: pwd.struct_passwd, port: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="am-racer-"))
        os.chmod(self.dir, 0o1777)
        self.stop_file = self.dir / "stop"
        self.proc = subprocess.Popen(
            [
                "setpriv",
                f"--reuid={who.pw_uid}",
                f"--regid={who.pw_gid}",
                "--clear-groups",
                "--",
                _system_python(),
                "-c",
                RACER,
                str(port),
                str(self.stop_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd="/",
        )
        assert self.proc.stdout.readline().strip() == "READY"

    def finish(self) -> str:
        self.stop_file.touch()
        out, _ = self.proc.communicate(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
        return out


def _start_run(user, tmp_path: Path) -> tuple[subprocess.Popen, Path]:  # noqa: F811
    go = tmp_path / "go"
    env = {**user.env, "TEST_GO": str(go)}
    proc = subprocess.Popen(
        [*AGENTMETER, "run", "--", sys.executable, "-c", AGENT],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = proc.stdout.readline()
    if line.strip() != "FIRST ok":
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the agent's first request failed: {line}{out}\n{err}")
    return proc, go


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`agentmeter run` did not finish\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err


def test_daemon_killed_while_other_uid_races_for_the_port(user, other_uid, tmp_path):  # noqa: F811
    proc, go = _start_run(user, tmp_path)
    status = user.cli_json("proxy", "status")
    old_pid, port = status["pid"], status["port"]
    racer = Racer(other_uid, port)
    try:
        os.kill(old_pid, signal.SIGKILL)
        # The wrapper restarts the daemon; only then does the agent send again (no timing involved).
        deadline_polls = 0
        while True:
            st = user.cli_json("proxy", "status")
            if st["running"] and st["pid"] != old_pid:
                break
            deadline_polls += 1
            assert deadline_polls < 600, f"the daemon was not restarted: {st}"
        go.touch()
        code, out, err = _finish(proc)
    finally:
        seen = racer.finish()
    assert "BOUND" not in seen.replace("NEVER BOUND", ""), f"the other uid took the port:\n{seen}"
    assert "RECEIVED" not in seen, seen
    assert "NEVER BOUND" in seen, seen
    # The session kept working, on the same port, through a new daemon.
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert "SECOND ok" in out
    assert st["port"] == port
    sess = user.session(summary_of(err)["id"])
    assert [row["status"] for row in sess["requests"]] == ["ok", "ok"], sess["requests"]


def test_port_not_held_stops_the_agent_loudly_before_it_sends(user, other_uid, tmp_path):  # noqa: F811
    """A wrapper that could not get a copy of the listening socket (a daemon of an older agentmeter, whose
    runtime dir has no listener.sock) must stop its agent when the daemon dies, before it sends again."""
    started = user.cli_json("proxy", "start")
    Path(user.home, "run", "listener.sock").unlink()  # what a daemon without the hand-over looks like
    proc, go = _start_run(user, tmp_path)
    racer = Racer(other_uid, started["port"])
    try:
        os.kill(started["pid"], signal.SIGKILL)
        code, out, err = _finish(proc)  # the wrapper stops the agent by itself; it never reaches `go`
        go.touch()
    finally:
        seen = racer.finish()
    assert "RECEIVED" not in seen, f"the agent's traffic reached the other uid:\n{seen}"
    assert code == 128 + signal.SIGKILL, f"the agent was not stopped (exit {code})\n{out}\n{err}"
    assert "SECOND ok" not in out
    lines = [ln for ln in err.splitlines() if ln.startswith("agentmeter: the proxy on port")]
    assert len(lines) == 1 and "stopped python" in lines[0] and "agentmeter run" in lines[0], err
    assert "Traceback" not in err
    json.dumps(daemon_pids(user.home))  # the fixture stops whatever daemon is left


def test_daemon_started_elsewhere_while_the_session_holds_its_port_stops_the_agent(user, tmp_path):  # noqa: F811
    """The daemon dies while the session's wrapper is frozen, and a fresh `proxy start` (which cannot have
    the held socket) comes up on another port. The session's port is still ours, but nobody serves it:
    the wrapper, once it runs again, stops the agent with one line instead of leaving it retrying."""
    proc, go = _start_run(user, tmp_path)
    status = user.cli_json("proxy", "status")
    os.kill(proc.pid, signal.SIGSTOP)  # the wrapper (`agentmeter run` itself), not its agent
    try:
        os.kill(status["pid"], signal.SIGKILL)
        fresh = user.cli_json("proxy", "start")
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert fresh["running"] and fresh["port"] != status["port"], fresh
    code, out, err = _finish(proc)
    go.touch()
    assert code == 128 + signal.SIGKILL, f"the agent was not stopped (exit {code})\n{out}\n{err}"
    line = [ln for ln in err.splitlines() if ln.startswith("agentmeter: the proxy now listens on port")]
    assert len(line) == 1 and f"not on this session's port {status['port']}" in line[0], err
