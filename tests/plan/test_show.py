"""Showing plan windows: status (text and --json), the pace forecast with its band, the statusline
fallback when Claude Code's own rate_limits is missing, the prompt's tightest window."""

from __future__ import annotations

import json

from agentmeter.core.clock import SystemClock
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.ledger import plan as ledger_plan
from agentmeter.plan.pace import forecast
from agentmeter.plan.shares import Point
from agentmeter.providers.ratelimits import PlanSnapshot, PlanWindow
from agentmeter.testing.fake_provider import FakePlan
from conftest import run_cli

from .helpers import claude_turn


def seed_readings(
    now_s: int,
    *,
    five: list[float],
    every_s: int = 300,
    resets_in_s: int = 3 * 3600,
    session_id: str = "s-seeded",
    line: str | None = None,
) -> None:
    """Readings a Claude login produced over the last len(five) × every_s seconds, written by the same
    ledger code the proxy uses."""
    path = get_paths().ledger
    path.parent.mkdir(parents=True, exist_ok=True)
    lg = open_ledger(path)
    try:
        n = len(five)
        for i, used in enumerate(five):
            at = now_s - (n - 1 - i) * every_s
            windows = (
                PlanWindow("five_hour", used, now_s + resets_in_s),
                PlanWindow("seven_day", used / 40, now_s + 4 * 86400),
            )
            snap = PlanSnapshot("anthropic", "allowed", "five_hour", windows)
            lg.conn.execute("BEGIN")
            ledger_plan.insert_snapshot(
                lg,
                at_ms=at * 1000,
                request_id=f"r{i}",
                session_id=session_id,
                provider="anthropic",
                account="claude.ai",
                snap=snap,
                raw={"anthropic-ratelimit-unified-new-thing": "kept"},
            )
            lg.conn.execute("COMMIT")
    finally:
        lg.close()
    if line:
        get_paths().config_file.write_text(line)


def test_pace_forecast_runs_out_before_reset_with_a_band():
    now = 10_000
    pts = [Point((now - 3600 + i * 600) * 1000, 40 + i * 5 + (2 if i % 2 else 0), now + 3 * 3600) for i in range(7)]
    p = forecast(pts, now, 5 * 3600)
    assert p.verdict == "runs_out"
    # ~32 points an hour from 72 %: out in well under the 3 hours left
    assert now < p.runs_out_at < now + 3 * 3600
    assert p.early <= p.runs_out_at and (p.late is None or p.late >= p.runs_out_at)
    slow = [Point((now - 3600 + i * 600) * 1000, 10 + i * 0.5, now + 3 * 3600) for i in range(7)]
    assert forecast(slow, now, 5 * 3600).verdict == "on_track"
    assert forecast(pts[:1], now, 5 * 3600).verdict == "unknown"


def test_status_shows_each_plan_window_with_pace(home):
    now = SystemClock().now_ms() // 1000
    seed_readings(now, five=[40, 45, 50, 56, 61, 66, 72], every_s=600, line="[budget.plan]\nfive_hour = 0.9\n")
    r = run_cli("status", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "agentmeter.status/1"
    by = {e["window"]: e for e in data["plan"]}
    five = by["five_hour"]
    assert {"provider", "account", "window", "used_pct", "resets_at", "status", "pace", "session_shares"} <= set(five)
    assert five["provider"] == "anthropic" and five["account"] == "claude.ai" and five["used_pct"] == 72
    # 72 % is past 0.9 × 0.8/1.1 of the window: the alert stage
    assert five["status"] == "allowed" and five["line_pct"] == 90.0 and five["stage"] == "alert"
    assert five["pace"]["verdict"] == "runs_out" and five["pace"]["runs_out_at"] < five["resets_at"]
    assert set(five["pace"]["band"]) == {"early", "late"}
    # No request of ours finished between these readings: the use came from elsewhere (web app, a laptop).
    assert five["session_shares"] == [] and five["other_pct"] == 32.0
    assert five["raw"] == {"anthropic-ratelimit-unified-new-thing": "kept"}  # a header added later, shown raw
    assert by["seven_day"]["pace"]["verdict"] == "on_track"
    text = run_cli("status", env={"COLUMNS": "80"}).stdout
    assert "plan windows (from the provider's own headers):" in text
    assert "claude.ai 5-hour" in text and "72%" in text and "runs out ~" in text
    assert all(len(ln) <= 80 for ln in text.splitlines()), text


def test_status_plan_is_empty_without_subscription_traffic(stack):
    r = run_cli("status", "--json")
    assert json.loads(r.stdout)["plan"] == []
    assert "plan windows" not in run_cli("status").stdout


def test_status_plan_from_real_proxy_traffic(stack):
    import sqlite3

    stack.configure(plan=FakePlan(five_hour_pct=20.0, step_pct=3.0))
    s = stack.open_session(agent="claude")
    for _ in range(3):
        claude_turn(s["anthropic"])
    dest = get_paths().ledger
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(stack.ledger_path)
    with sqlite3.connect(dest) as out:
        src.backup(out)
    src.close()
    plan = json.loads(run_cli("status", "--json").stdout)["plan"]
    five = next(e for e in plan if e["window"] == "five_hour")
    assert five["used_pct"] == 26.0
    assert five["session_shares"] == [{"session_id": s["session_id"], "used_pct": 6.0, "error_pct": 0.0}]


def test_statusline_shows_wire_plan_when_claude_codes_rate_limits_is_missing(home):
    from agentmeter.commands.statusline import render_statusline
    from agentmeter.home.config import load_config

    now = SystemClock().now_ms() // 1000
    seed_readings(now, five=[30, 41], every_s=60)
    payload = {"session_id": "cc-1", "model": {"id": "claude-sonnet-4-5"}}  # rate_limits left out
    line = render_statusline(payload, load_config(), SystemClock(), get_paths().ledger, color=False, environ={})
    assert line.endswith("│ plan 5h 41% · 7d 1% (wire)"), line
    official = {
        **payload,
        "rate_limits": {
            "five_hour": {"used_percentage": 24, "resets_at": now + 60},
            "seven_day": {"used_percentage": 41, "resets_at": now + 600},
        },
    }
    line = render_statusline(official, load_config(), SystemClock(), get_paths().ledger, color=False, environ={})
    assert line.endswith("│ plan 5h 24% · 7d 41% (official)") and "(wire)" not in line
    r = run_cli("statusline", "--no-color", input=json.dumps(payload))
    assert r.stdout.strip().endswith("plan 5h 41% · 7d 1% (wire)"), r.stdout


def test_prompt_plan_shows_the_tightest_window(home):
    now = SystemClock().now_ms() // 1000
    seed_readings(now, five=[50, 85], every_s=60, line="[budget.plan]\nfive_hour = 0.9\n")
    r = run_cli("prompt", "--plan", "--no-color")
    assert r.stdout == "plan 5h 85%\n", r.stdout
    got = json.loads(run_cli("prompt", "--plan", "--json").stdout)
    assert got["plan"] == {"window": "5h", "used_pct": 85.0, "stage": "alert", "provider": "anthropic"}
    coloured = run_cli("prompt", "--plan", "--shell", "zsh", env={"NO_COLOR": ""}).stdout
    assert "%{\x1b[33m%}plan 5h 85%%%{\x1b[0m%}" in coloured, repr(coloured)
    assert run_cli("prompt", "--plan", env={"NO_COLOR": "1"}).stdout == "plan 5h 85%\n"


def test_proxy_alerts_once_per_window_before_it_runs_out(tmp_path):
    """Readings of the last half hour climbing 60 points an hour: the 5-hour window runs out long before
    its reset, so the proxy warns — once for this window, however many responses follow."""
    import time

    from agentmeter.home.config import Alerts, Config
    from agentmeter.testing.fake_provider import PLAN_EPOCH
    from conftest import make_stack

    now = SystemClock().now_ms() // 1000
    resets = now + 7200
    lg = open_ledger(tmp_path / "ledger.db")
    for i, used in enumerate([40, 50, 60, 70]):
        snap = PlanSnapshot("anthropic", "allowed", None, (PlanWindow("five_hour", used, resets),))
        lg.conn.execute("BEGIN")
        ledger_plan.insert_snapshot(
            lg,
            at_ms=(now - 1800 + i * 600) * 1000,
            request_id=None,
            session_id=None,
            provider="anthropic",
            account="claude.ai",
            snap=snap,
            raw={},
        )
        lg.conn.execute("COMMIT")
    lg.close()
    stack, close = make_stack(tmp_path, config=Config(alerts=Alerts(desktop=False)))
    try:
        stack.fake_app[PLAN_EPOCH].append(now)  # the fake's window resets when the seeded one does
        stack.configure(plan=FakePlan(five_hour_pct=72.0, seven_day_pct=1.0, step_pct=1.0))
        s = stack.open_session(agent="claude")
        for _ in range(3):
            assert claude_turn(s["anthropic"])[0] == 200

        def alerts():
            ro = open_ledger(stack.ledger_path, readonly=True)
            try:
                return [dict(r) for r in ro.conn.execute("SELECT * FROM alerts")]
            finally:
                ro.close()

        deadline = time.monotonic() + 10
        while not alerts() and time.monotonic() < deadline:
            time.sleep(0.05)
        got = alerts()
        assert [a["key"] for a in got] == [f"plan:anthropic:claude.ai:five_hour:{resets}:pace"]
        assert got[0]["window"] == "plan five_hour"
        stack.state.alerts.pace_watch._checked.clear()  # as if a minute had passed: checked again, not sent again
        assert claude_turn(s["anthropic"])[0] == 200
        assert len(alerts()) == 1
    finally:
        close()


def test_report_json_carries_plan_windows_and_their_daily_peaks(home):
    now = SystemClock().now_ms() // 1000
    seed_readings(now, five=[10, 35, 30], every_s=60)
    got = json.loads(run_cli("report", "--format", "json").stdout)
    assert [e["window"] for e in got["plan"]] == ["five_hour", "seven_day"]
    peaks = {p["window"]: p for p in got["plan_daily"]}
    assert peaks["five_hour"]["peak_pct"] == 35 and peaks["five_hour"]["readings"] == 3
    assert peaks["five_hour"]["account"] == "claude.ai"
