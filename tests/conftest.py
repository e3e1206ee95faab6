"""Shared fixtures: every test gets its own AGENTMETER_HOME; `stack` runs a real fake provider and a
real proxy on loopback in a background event loop, so tests use real sockets and real SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentmeter.core.clock import SystemClock
from agentmeter.home.config import Config
from agentmeter.ledger import open_ledger
from pg_cluster import collector_db, collector_engine, make_collector_db, pg_cluster  # noqa: F401  (collector tests on both engines)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """One variable isolates all state (config, ledger, runtime files, logs)."""
    h = tmp_path / "home"
    monkeypatch.setenv("AGENTMETER_HOME", str(h))
    for var in (
        "AGENTMETER_ANTHROPIC_API_KEY",
        "AGENTMETER_OPENAI_API_KEY",
        "AGENTMETER_GEMINI_API_KEY",
        "AGENTMETER_UPSTREAM_GEMINI",
        "GEMINI_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "AGENTMETER_PORT",
        "AGENTMETER_SESSION_ID",
        "AGENTMETER_UPSTREAM_ANTHROPIC",
        "AGENTMETER_UPSTREAM_OPENAI",
        "AGENTMETER_UPSTREAM_CHATGPT",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(var, raising=False)
    # keyring must never touch a real desktop keyring from tests
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield h
    _stop_daemons_under(tmp_path)


def _stop_daemons_under(root: Path) -> None:
    """A daemon a test started (`env`, `run`, `proxy start`) and did not stop: SIGTERM it, so one test run does
    not leave dozens of `proxy serve` processes holding ports. Only processes whose AGENTMETER_HOME is inside
    this test's own temp directory (read from /proc, so nothing another run or user owns is touched)."""
    import signal

    proc = Path("/proc")
    if not proc.is_dir():
        return
    me = str(root) + os.sep
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            if b"proxy\0serve" not in (d / "cmdline").read_bytes():
                continue
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        home = next((e[len(b"AGENTMETER_HOME=") :].decode() for e in env if e.startswith(b"AGENTMETER_HOME=")), "")
        if (home + os.sep).startswith(me):
            with contextlib.suppress(OSError):
                os.kill(int(d.name), signal.SIGTERM)


class LoopThread:
    """An asyncio loop in a thread, for servers that sync clients (SDKs, subprocesses) talk to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextlib.contextmanager
def webhook_receiver(path: str = "/hook"):
    """A real webhook endpoint on 127.0.0.1 (its own loop thread): yields (url, the JSON bodies received)."""
    from aiohttp import web

    lt = LoopThread()
    got: list[dict] = []

    async def receive(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({"ok": True})

    async def start():
        app = web.Application()
        app.router.add_post(path, receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}{path}"

    runner, url = lt.run(start())
    try:
        yield url, got
    finally:
        lt.run(runner.cleanup())
        lt.stop()


def wait_for(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


@dataclass
class Stack:
    loop: LoopThread
    fake_url: str
    fake_app: object
    proxy_url: str
    state: object
    ledger_path: Path

    def open_session(self, **spec) -> dict:
        got = self.loop.run(self.state.sessions.open({"agent": "test", **spec}))
        got["anthropic"] = f"{self.proxy_url}/s/{got['token']}/anthropic"
        got["openai"] = f"{self.proxy_url}/s/{got['token']}/openai/v1"
        got["gemini"] = f"{self.proxy_url}/s/{got['token']}/gemini"
        return got

    def raw_post(self, url: str, body: bytes, headers: dict[str, str]):
        """POST `body` to `url` (a session URL on this proxy) over a bare http.client connection and return
        (connection, response) with only the headers read: for tests that hang up on purpose."""
        import http.client

        port = int(self.proxy_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", url.split(f":{port}", 1)[1], body=body, headers=headers)
        return conn, conn.getresponse()

    def received(self) -> list:
        from agentmeter.testing.fake_provider import RECEIVED

        return list(self.fake_app[RECEIVED])

    def configure(self, **kw) -> None:
        from agentmeter.testing.fake_provider import CONFIG, FakeUsage

        cfg = self.fake_app[CONFIG]
        for k, v in kw.items():
            setattr(cfg, k, FakeUsage(**v) if k == "usage" else v)

    def rows(self, session_id: str | None = None) -> list[dict]:
        # Rows are committed before the terminal bytes are relayed, so they are visible right away.
        ledger = open_ledger(self.ledger_path, readonly=True)
        try:
            if session_id:
                return ledger.session_requests(session_id)
            return [dict(r) for r in ledger.conn.execute("SELECT * FROM requests ORDER BY started_at, rowid")]
        finally:
            ledger.close()


def make_stack(
    tmp_path: Path, keys: dict | None = None, config: Config | None = None, clock=None
) -> tuple[Stack, callable]:
    from aiohttp import web

    from agentmeter.proxy.app import ProxyState, create_app
    from agentmeter.testing.fake_provider import start_fake

    lt = LoopThread()
    runner, fake_url, fake_app = lt.run(start_fake())
    base = config or Config()
    cfg = Config(
        **{
            **base.__dict__,
            "upstreams": {
                "anthropic": fake_url,
                "openai": fake_url,
                "chatgpt": fake_url + "/backend-api/codex",
                "gemini": fake_url,
            },
        }
    )
    ledger_path = tmp_path / "ledger.db"

    async def start_proxy():
        state = ProxyState(cfg, ledger_path, clock or SystemClock(), control_token="test-control", keys=keys or {})
        app = create_app(state)
        prunner = web.AppRunner(app, access_log=None)
        await prunner.setup()
        site = web.TCPSite(prunner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        state.port = port
        return prunner, f"http://127.0.0.1:{port}", state

    prunner, proxy_url, state = lt.run(start_proxy())
    stack = Stack(lt, fake_url, fake_app, proxy_url, state, ledger_path)

    def close():
        lt.run(prunner.cleanup())
        lt.run(runner.cleanup())
        lt.stop()

    return stack, close


@pytest.fixture
def stack(tmp_path):
    s, close = make_stack(tmp_path)
    yield s
    close()


@pytest.fixture
def key_stack(tmp_path):
    s, close = make_stack(
        tmp_path, keys={"anthropic": "sk-ant-test-REALKEY000000000000", "openai": "sk-test-REALOPENAIKEY0000000000"}
    )
    yield s
    close()


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 60):
    """The real console entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "agentmeter", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
    )


def http_json(url: str, data: dict | None = None, headers: dict | None = None, method: str | None = None):
    req = urllib.request.Request(
        url,
        data=json.dumps(data).encode() if data is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
        method=method,
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read() or b"null")
