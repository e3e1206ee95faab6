"""Issue 16 conventions for `status`: NO_COLOR and non-TTY, running/refused sessions, "and N more", the bar's
marks explained, an empty ledger says what to do next, time to cap never past the window's end."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

from agentmeter.core.clock import SystemClock
from agentmeter.core.models import RequestRecord, Usage
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from conftest import run_cli

DAY_MS = 86_400_000


def in_a_terminal(*args: str, env: dict | None = None) -> str:
    """The real command with its stdout on a pseudo-terminal, as a person runs it."""
    main, sub = pty.openpty()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "agentmeter", *args],
            stdout=sub,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "100", **(env or {})},
            timeout=60,
        )
        os.close(sub)
        sub = -1
        chunks = []
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        assert p.returncode == 0, p.stderr
        return b"".join(chunks).decode()
    finally:
        os.close(main)
        if sub != -1:
            os.close(sub)


def seed(sessions: list[dict], days_back: int = 0, cost: float = 0.1) -> None:
    ledger = open_ledger(get_paths().ensure().ledger)
    now = SystemClock().now_ms()
    for i, s in enumerate(sessions):
        ledger.create_session(
            {
                "token_hash": f"h{s['id']}",
                "agent": "claude",
                "started_at": now,
                "cwd": "/tmp/x",
                **{k: v for k, v in s.items() if k not in ("status", "n")},
            }
        )
        for j in range(s.get("n", 1)):
            started = now - days_back * DAY_MS + i * 10 + j
            ledger.insert_request(
                RequestRecord(
                    request_id=f"r{s['id']}-{j}-{days_back}",
                    session_id=s["id"],
                    started_at_ms=started,
                    provider="anthropic",
                    api="messages",
                    method="POST",
                    path="/v1/messages",
                    model_requested="claude-opus-4-8",
                    model_used="claude-opus-4-8",
                    stream=False,
                    status=s.get("status", "ok"),
                    http_status=429 if s.get("status") == "refused" else 200,
                    usage=Usage() if s.get("status") == "refused" else Usage(input_tokens=100, output_tokens=10),
                    cost_usd=0.0 if s.get("status") == "refused" else cost,
                    agent="claude",
                )
            )
    ledger.close()


def test_no_color_and_non_tty_get_no_escape_codes(home):
    seed([{"id": "s1"}])
    assert "\x1b[" in in_a_terminal("status")  # a terminal gets colour …
    assert "\x1b[" not in in_a_terminal("status", env={"NO_COLOR": "1"})  # … unless NO_COLOR says no
    assert "\x1b[" not in run_cli("status").stdout  # and a pipe never does


def test_empty_ledger_says_what_to_do_next(home):
    out = run_cli("status").stdout
    assert "no usage recorded yet" in out and "agentmeter run claude" in out and "agentmeter budget set" in out
    seed([{"id": "s1"}])
    assert "no usage recorded yet" not in run_cli("status").stdout


def test_sessions_running_refused_and_more(home):
    seed(
        [{"id": f"old{i:02d}", "ended_at": 1} for i in range(9)]
        + [{"id": "live1", "pid": os.getpid(), "n": 3}, {"id": "denied", "status": "refused", "n": 2, "ended_at": 1}]
    )
    out = run_cli("status").stdout
    live = next(line for line in out.splitlines() if "live1" in line)
    assert live.lstrip().startswith("●live1") and "● running now" in out
    assert "and 3 more" in out
    data = json.loads(run_cli("status", "--json").stdout)
    denied = next(s for s in data["today"]["sessions"] if s["id"] == "denied")
    assert denied["refused"] == 2 and not denied["running"]
    assert next(s for s in data["today"]["sessions"] if s["id"] == "live1")["running"] is True


def test_refused_session_shows_as_refused(home):
    seed([{"id": "denied", "status": "refused", "n": 2, "ended_at": 1}])
    line = next(x for x in run_cli("status").stdout.splitlines() if "denied" in x)
    assert "refused" in line and "$" not in line


def test_bar_marks_are_explained(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[budget]\ndaily_usd = 20\n")
    assert "bar: █ spent · a alert 80% · d cheaper model 95% · | refusal 110%" in run_cli("status").stdout


def test_time_to_cap_never_runs_past_the_window(home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[budget]\nmonthly_usd = 100\nweekly_usd = 40\n")
    for back in range(1, 20):  # $1/day: a $100 month and a $40 week are reached, but months and weeks from now
        seed([{"id": f"d{back}", "ended_at": 1}], days_back=back, cost=1.0)
    data = json.loads(run_cli("status", "--json").stdout)
    for w in data["windows"]:
        assert w["time_to_cap_hours"] is None, w
    assert "cap in" not in run_cli("status").stdout
