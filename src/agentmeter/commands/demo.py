"""`agentmeter demo`: the whole path with no agent, no key and no network.

A simulated provider starts inside this process on 127.0.0.1; the real daemon and a real ledger run in
a throw-away AGENTMETER_HOME (your own ledger is never touched); two scripted agents (Claude Code-like
and Codex-like) make a few turns each through `run`; then the summaries and the session table.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

from .. import render
from ..home.config import load_config
from ..launch import wrapper
from ..proxy import daemon
from ..render import sessions as render_sessions

DEMO_KEYS = {
    "AGENTMETER_ANTHROPIC_API_KEY": "sk-ant-demo-not-a-real-key-000000",
    "AGENTMETER_OPENAI_API_KEY": "sk-demo-not-a-real-key-0000000000",
}


def _start_fake() -> tuple[str, callable]:
    from ..testing.fake_provider import FakeConfig, start_fake

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner, url, _ = asyncio.run_coroutine_threadsafe(start_fake(config=FakeConfig(pace_ms=4, deltas=12)), loop).result(
        10
    )

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)

    return url, stop


def run_demo(keep: bool = False) -> int:
    t0 = time.monotonic()
    home = tempfile.mkdtemp(prefix="agentmeter-demo-")
    saved = {
        k: os.environ.get(k)
        for k in (
            "AGENTMETER_HOME",
            "AGENTMETER_PORT",
            "AGENTMETER_UPSTREAM_ANTHROPIC",
            "AGENTMETER_UPSTREAM_OPENAI",
            "AGENTMETER_SESSION_ID",
            *DEMO_KEYS,
        )
    }
    fake_url, stop_fake = _start_fake()
    os.environ.update(
        {
            "AGENTMETER_HOME": home,
            "AGENTMETER_PORT": "0",
            "AGENTMETER_UPSTREAM_ANTHROPIC": fake_url,
            "AGENTMETER_UPSTREAM_OPENAI": fake_url,
            **DEMO_KEYS,
        }
    )
    os.environ.pop("AGENTMETER_SESSION_ID", None)
    try:
        render.line(f"agentmeter demo · simulated provider at {fake_url} · throw-away home {home}")
        info, _ = daemon.ensure_running()
        render.line(f"proxy started on {info.url} (pid {info.pid}); agents get a virtual key, never the real one\n")
        config = load_config()
        for label, family in (("claude", "anthropic"), ("codex", "openai")):
            render.line(f"$ agentmeter run {label}   (scripted stand-in: 4 turns)")
            session, launch = wrapper.prepare(
                config,
                None,
                [sys.executable, "-m", "agentmeter.testing.scripted_agent", family],
                label=label,
                tags={"demo": "yes"},
            )
            code = wrapper.spawn(launch, urlsplit(session.anthropic_url).port, session.listener)
            wrapper.end_session(session, code)
            summary = wrapper.session_summary(session.session_id)
            if summary:
                render_sessions.run_summary(summary, to_stdout=True)
            render.line("")
        render.line("$ agentmeter sessions")
        from ..home.paths import get_paths
        from ..ledger import open_ledger
        from .views import session_view

        ledger = open_ledger(get_paths().ledger, readonly=True)
        render_sessions.sessions_table([session_view(r) for r in ledger.sessions()], as_json=False)
        ledger.close()
        render.line(f"\ndone in {time.monotonic() - t0:.1f}s. For real use: agentmeter run claude")
        return 0
    finally:
        daemon.stop()
        stop_fake()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
