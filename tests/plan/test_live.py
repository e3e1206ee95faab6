"""`agentmeter top` / `status --watch`: the screen at 80 columns, a refresh driven by ledger changes (not a
polling storm), and a clean exit on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from agentmeter.commands import live
from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.config import load_config
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.render.live import screen

from .test_show import seed_readings


def add_request(n: int, session: str = "s-live") -> None:
    lg = open_ledger(get_paths().ensure().ledger)
    try:
        if lg.get_session(session) is None:
            lg.create_session(
                {
                    "id": session,
                    "token_hash": f"h-{session}",
                    "agent": "claude",
                    "repo": "github.com/acme/app",
                    "started_at": SystemClock().now_ms(),
                }
            )
        lg.insert_request(
            RequestRecord(
                request_id=f"{session}-{n}",
                session_id=session,
                started_at_ms=SystemClock().now_ms(),
                provider="anthropic",
                api="messages",
                method="POST",
                path="/v1/messages",
                model_requested="claude-sonnet-4-5",
                model_used="claude-sonnet-4-5",
                stream=True,
                status="ok",
                http_status=200,
                usage=Usage(input_tokens=100, output_tokens=50),
                cost_usd=0.25,
                agent="claude",
            )
        )
    finally:
        lg.close()


def test_screen_fits_80_columns_without_colour(home):
    from rich.console import Console

    seed_readings(
        SystemClock().now_ms() // 1000,
        five=[40, 52, 61, 70],
        every_s=600,
        line="[budget]\ndaily_usd = 1\n\n[budget.plan]\nfive_hour = 0.9\n",
    )
    add_request(1)
    payload = live.view(load_config, SystemClock(), get_paths().ledger)
    console = Console(width=80, record=True, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(screen(payload, 80))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(ln) <= 80 for ln in lines), text
    assert "today" in text and "$0.25" in text and "$1.00" in text
    assert "claude.ai 5-hour" in text and "70%" in text and "runs out" in text
    assert "s-live" in text and "$1.00" in text  # burn: $0.25 in the last 15 minutes = $1.00 an hour
    assert "\x1b[" not in console.export_text(styles=False)


def test_refresh_follows_ledger_changes_not_a_timer(home):
    add_request(1)
    ledger, config_file = get_paths().ledger, get_paths().config_file
    builds, ticks = [], [0]
    now = [0.0]

    def sleep(s: float) -> None:  # each tick is a second of an idle screen; on tick 5 a request lands
        ticks[0] += 1
        now[0] += s
        if ticks[0] == 5:
            add_request(2)

    n = live.watch(
        lambda: builds.append(1) or {},
        lambda p: None,
        lambda: live.fingerprint(ledger, config_file),
        sleep,
        lambda: now[0],
        stop=lambda: ticks[0] >= 20,
        refresh_s=1000,
    )
    assert n == 2 and len(builds) == 2  # the first screen, and one after the request; 19 idle ticks cost a stat
    n = live.watch(
        lambda: {},
        lambda p: None,
        lambda: live.fingerprint(ledger, config_file),
        sleep,
        lambda: now[0],
        stop=lambda: ticks[0] >= 50,
        refresh_s=10,
    )
    assert n == 4  # with nothing written, only the slow refresh (every 10 s) rebuilds


def test_top_exits_cleanly_on_ctrl_c(home):
    add_request(1)
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "80"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentmeter", "top"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        first = proc.stdout.readline()
        assert "agentmeter top" in first, first
        time.sleep(0.3)  # into the watch loop (not an assertion on speed)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
