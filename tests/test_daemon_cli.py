"""The daemon and the CLI as a user runs them: real subprocesses, a real fake provider, real files."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import run_cli


@pytest.fixture
def fake(tmp_path):
    port_file = tmp_path / "fake.port"
    proc = subprocess.Popen([sys.executable, "-m", "agentmeter.testing.fake_provider", "--port-file", str(port_file)])
    deadline = time.monotonic() + 15
    while not (port_file.exists() and port_file.read_text()):
        assert time.monotonic() < deadline, "fake provider did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port_file.read_text()}"
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def env(fake, home, monkeypatch):
    monkeypatch.setenv("AGENTMETER_UPSTREAM_ANTHROPIC", fake)
    monkeypatch.setenv("AGENTMETER_UPSTREAM_OPENAI", fake)
    monkeypatch.setenv("AGENTMETER_PORT", "0")
    yield os.environ
    run_cli("proxy", "stop")


def cli_json(*args):
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


_turn = iter(range(10**9))


def anthropic_call(base: str, key: str = "sk-ant-test-client") -> dict:
    # Each call is a new user turn: identical bodies re-sent would (rightly) trip the loop brake.
    req = urllib.request.Request(
        base + "/v1/messages",
        data=json.dumps(
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 10,
                "stream": True,
                "messages": [{"role": "user", "content": f"hi {next(_turn)}"}],
            }
        ).encode(),
        headers={"Content-Type": "application/json", "x-api-key": key},
    )
    with urllib.request.urlopen(req, timeout=15) as r:
        return {"status": r.status, "body": r.read()}


def test_start_status_env_sessions_stop(env, home):
    started = cli_json("proxy", "start", "--json")
    assert started["schema"] == "agentmeter.proxy_status/1" and started["running"] and started["started"]
    again = cli_json("proxy", "start", "--json")
    assert again["pid"] == started["pid"] and not again["started"]
    st = cli_json("proxy", "status", "--json")
    assert st["running"] and st["pid"] == started["pid"] and st["url"].startswith("http://127.0.0.1:")

    e = cli_json("env", "--json")
    assert e["schema"] == "agentmeter.env/1"
    assert e["env"]["ANTHROPIC_BASE_URL"].startswith(st["url"] + "/s/")
    assert e["env"]["OPENAI_BASE_URL"].endswith("/openai/v1")
    assert "ANTHROPIC_API_KEY" not in e["env"]  # passthrough: no key configured
    out = anthropic_call(e["env"]["ANTHROPIC_BASE_URL"])
    assert b"message_stop" in out["body"]

    sessions = cli_json("sessions", "--json")
    assert sessions["schema"] == "agentmeter.sessions/1"
    (s,) = sessions["sessions"]
    for field in (
        "id",
        "agent",
        "agent_session_id",
        "repo",
        "branch",
        "cwd",
        "developer",
        "started_at",
        "ended_at",
        "exit_code",
        "requests",
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_usd",
        "cache_hit_rate",
        "retries",
        "downgrades",
        "refusals",
        "models",
    ):
        assert field in s, field
    assert s["id"] == e["session_id"] and s["requests"] == 1 and s["output_tokens"] == 58
    assert s["models"] == ["claude-sonnet-4-5"]

    show = cli_json("session", "show", s["id"][:6], "--json")
    assert show["schema"] == "agentmeter.session/1" and show["id"] == s["id"]
    (r,) = show["requests"]
    for field in (
        "started_at",
        "provider",
        "api",
        "model_requested",
        "model_used",
        "stream",
        "status",
        "input_tokens",
        "cost_usd",
        "price_source",
        "decision",
        "reason",
        "partial",
        "ttft_ms",
        "duration_ms",
    ):
        assert field in r, field
    assert r["status"] == "ok" and r["decision"] == "allow" and r["stream"] is True

    text = run_cli("sessions")
    assert text.returncode == 0 and s["id"][:6] in text.stdout

    stopped = cli_json("proxy", "stop", "--json")
    assert stopped["stopped"] is True
    assert cli_json("proxy", "status", "--json")["running"] is False


def test_env_prints_exports_that_a_shell_can_eval(env):
    r = run_cli("env", "--agent", "claude")
    assert r.returncode == 0, r.stderr
    out = subprocess.run(
        ["bash", "-c", r.stdout + '\necho "$ANTHROPIC_BASE_URL|${OPENAI_BASE_URL:-none}"'],
        capture_output=True,
        text=True,
    )
    base, openai_url = out.stdout.strip().split("|")
    assert "/s/" in base and base.endswith("/anthropic") and openai_url == "none"


def test_two_simultaneous_starts_make_one_daemon(env):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "agentmeter", "proxy", "start", "--json"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outs = [json.loads(p.communicate(timeout=30)[0]) for p in procs]
    assert len({o["pid"] for o in outs}) == 1
    assert sum(o["started"] for o in outs) == 1


def test_stale_pid_and_port_files_are_recovered(env, home):
    run_dir = home / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "proxy.pid").write_text("999999")
    (run_dir / "proxy.port").write_text("1")
    st = cli_json("proxy", "start", "--json")
    assert st["running"] and st["pid"] != 999999


def test_port_in_use_moves_to_next_free(env, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        monkeypatch.setenv("AGENTMETER_PORT", str(taken))
        st = cli_json("proxy", "start", "--json")
        assert st["running"] and st["port"] != taken and taken < st["port"] <= taken + 20


def test_files_are_private(env, home):
    cli_json("proxy", "start", "--json")
    cli_json("env", "--json")
    for path in home.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            assert mode == 0o700, (path, oct(mode))
        elif path.suffix not in (".lock",):
            assert mode & 0o077 == 0, (path, oct(mode))


def test_killed_daemon_loses_no_completed_request(env, home):
    """Rows are committed before the terminal event is relayed: SIGKILL right after the client got a
    complete response loses nothing."""
    st = cli_json("proxy", "start", "--json")
    e = cli_json("env", "--json")
    completed = 0
    for _ in range(20):
        out = anthropic_call(e["env"]["ANTHROPIC_BASE_URL"])
        assert b"message_stop" in out["body"]
        completed += 1
    os.kill(st["pid"], signal.SIGKILL)
    time.sleep(0.2)
    s = cli_json("session", "show", e["session_id"], "--json")
    assert len([r for r in s["requests"] if r["status"] == "ok"]) == completed
    # The next start recovers the stale files and the session (it lives in the ledger) keeps working.
    cli_json("proxy", "start", "--json")
    port = cli_json("proxy", "status", "--json")["port"]
    base = e["env"]["ANTHROPIC_BASE_URL"]
    base = base.replace(base.split("/s/")[0], f"http://127.0.0.1:{port}")
    anthropic_call(base)
    assert cli_json("session", "show", e["session_id"], "--json")["requests"].__len__() == completed + 1


def test_broken_config_names_file_line_and_key(env, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[budget]\ndaily_usd = "twenty"\n')
    r = run_cli("proxy", "start")
    assert r.returncode == 3
    assert "config.toml, line 2: budget.daily_usd: must be a number" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_session_is_a_clear_error(env):
    r = run_cli("session", "show", "nope")
    assert r.returncode == 4 and "no session 'nope'" in r.stderr and "agentmeter sessions" in r.stderr


def test_control_api_requires_the_control_token(env, home):
    st = cli_json("proxy", "start", "--json")
    req = urllib.request.Request(
        st["url"] + "/_agentmeter/v1/sessions", data=b"{}", method="POST", headers={"Authorization": "Bearer wrong"}
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 401


def test_prices_explain_and_reprice(env, home):
    r = cli_json("prices", "explain", "claude-sonnet-4-5-20250929", "--json")
    assert r["source"] == "genai-prices" and r["matched_model"] == "claude-sonnet-4-5"
    unknown = cli_json("prices", "explain", "openai:gpt-7-nova", "--json")
    assert unknown["unpriced"] is True and "gpt-7-nova" in unknown["why"]

    cli_json("proxy", "start", "--json")
    e = cli_json("env", "--json")
    anthropic_call(e["env"]["ANTHROPIC_BASE_URL"])
    before = cli_json("session", "show", e["session_id"], "--json")["cost_usd"]
    (home / "config.toml").write_text('[prices."anthropic:claude-sonnet-4-5"]\ninput = 30.0\noutput = 150.0\n')
    rp = cli_json("reprice", "--json")
    assert rp["rows"] == 1 and rp["changed"] == 1
    after = cli_json("session", "show", e["session_id"], "--json")
    assert after["cost_usd"] > before * 5
    assert after["requests"][0]["price_source"] == "override"


def test_daemon_event_loop_is_uvloop_unless_asked_for_asyncio(monkeypatch):
    from agentmeter.proxy import daemon

    uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed on this platform (Windows)")
    monkeypatch.delenv("AGENTMETER_EVENT_LOOP", raising=False)
    assert daemon.event_loop_factory() is uvloop.new_event_loop
    monkeypatch.setenv("AGENTMETER_EVENT_LOOP", "asyncio")
    assert daemon.event_loop_factory() is None


def test_daemon_stops_when_its_ledger_is_deleted(env, home):
    """A home removed under a running daemon (a user's rm -rf, a test's temp directory cleaned up): the daemon
    must not go on metering into an unlinked ledger nobody reads, nor stay bound to the port. It stops."""
    import shutil

    started = cli_json("proxy", "start", "--json")
    pid = started["pid"]
    ledger = next(p for p in home.rglob("ledger.db"))
    assert ledger.exists()
    shutil.rmtree(ledger.parent)
    deadline = time.monotonic() + 60  # bounded wait, not a timing assertion (the daemon checks every 5 s)
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":  # exited, not yet reaped by its parent
                break
        time.sleep(0.2)
    else:
        pytest.fail("the daemon kept running with its ledger deleted")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the keyring is read apart on Linux only")
def test_keys_set_reaches_the_running_daemon_and_keyring_edits_follow(env, tmp_path, monkeypatch):
    """With a keyring answering, the daemon reads keys in a child process and, before a new session, only
    when `keys set`/`keys rm` ran (the stamp moved); otherwise behind the session. So `keys set` is in
    force for the very next session, and a key another tool puts in the keyring a moment later."""
    store = tmp_path / "keyring.json"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "file_keyring.Keyring")
    monkeypatch.setenv("PYTHONPATH", str(os.path.join(os.path.dirname(__file__), "fixtures", "keyring_backend")))
    monkeypatch.setenv("AGENTMETER_TEST_KEYRING_FILE", str(store))
    for name in ("AGENTMETER_ANTHROPIC_API_KEY", "AGENTMETER_OPENAI_API_KEY", "AGENTMETER_GEMINI_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    assert cli_json("env", "--agent", "claude", "--json")["key_mode"] == []
    r = run_cli("keys", "set", "anthropic", input="sk-ant-test-keyring-0001\n")
    assert r.returncode == 0, r.stderr
    assert "sk-ant-test-keyring-0001" in store.read_text()  # it went to the keyring, not the 0600 file
    assert cli_json("env", "--agent", "claude", "--json")["key_mode"] == ["anthropic"]

    # Another tool adds a key to the keyring: no stamp moves, so a session or two later it is there.
    data = json.loads(store.read_text())
    store.write_text(json.dumps({**data, "agentmeter/openai": "sk-test-keyring-openai-0002"}))
    deadline = time.monotonic() + 20
    while "openai" not in cli_json("env", "--agent", "claude", "--json")["key_mode"]:
        assert time.monotonic() < deadline, "a key added to the keyring never reached the daemon"
        time.sleep(0.2)

    r = run_cli("keys", "rm", "anthropic")
    assert r.returncode == 0, r.stderr
    assert cli_json("env", "--agent", "claude", "--json")["key_mode"] == ["openai"]
