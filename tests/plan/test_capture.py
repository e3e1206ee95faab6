"""Capture: the plan-window headers of every subscription response, read off the wire by the real proxy,
stored per request (compact) and as the latest state per account; unknown headers of the family kept."""

from __future__ import annotations

import json

from agentmeter.ledger import open_ledger
from agentmeter.ledger import plan as ledger_plan
from agentmeter.providers import ratelimits
from agentmeter.testing.fake_provider import FakePlan

from .helpers import claude_turn, codex_turn

ANTHROPIC = [
    ("anthropic-ratelimit-unified-status", "allowed_warning"),
    ("Anthropic-Ratelimit-Unified-5h-Utilization", "0.83"),
    ("anthropic-ratelimit-unified-5h-reset", "1764870000"),
    ("anthropic-ratelimit-unified-7d-utilization", "0.41"),
    ("anthropic-ratelimit-unified-7d-reset", "1765200000"),
    ("anthropic-ratelimit-unified-7d_opus-utilization", "0.12"),
    ("anthropic-ratelimit-unified-7d_opus-reset", "1765200000"),
    ("anthropic-ratelimit-unified-representative-claim", "five_hour"),
    ("anthropic-ratelimit-unified-5h-surpassed-threshold", "0.8"),
    ("anthropic-ratelimit-unified-overage-status", "rejected"),
    ("anthropic-ratelimit-unified-overage-period-monthly-utilization", "0.5"),
    ("anthropic-ratelimit-tokens-remaining", "1000"),
    ("anthropic-ratelimit-unified-brand-new-field", "yes"),
    ("content-type", "text/event-stream"),
]


def test_anthropic_unified_headers_parse_to_windows_and_keep_unknowns():
    snap = ratelimits.capture("anthropic", [(k.encode(), v.encode()) for k, v in ANTHROPIC])
    assert snap is not None
    assert snap.status == "allowed_warning" and snap.claim == "five_hour"
    by = {w.name: w for w in snap.windows}
    assert set(by) == {"five_hour", "seven_day", "seven_day_opus"}
    assert abs(by["five_hour"].used_pct - 83.0) < 1e-9 and by["five_hour"].resets_at == 1764870000
    assert abs(by["seven_day_opus"].used_pct - 12.0) < 1e-9
    assert snap.known["overage-status"] == "rejected" and snap.known["tokens-remaining"] == "1000"
    # Not understood: kept verbatim, never dropped.
    assert snap.extra["anthropic-ratelimit-unified-brand-new-field"] == "yes"
    assert snap.extra["anthropic-ratelimit-unified-overage-period-monthly-utilization"] == "0.5"
    assert "content-type" not in snap.extra


def test_codex_headers_parse_by_window_minutes_and_named_families():
    headers = [
        ("x-codex-primary-used-percent", "42.5"),
        ("x-codex-primary-window-minutes", "300"),
        ("x-codex-primary-reset-at", "1764870000"),
        ("x-codex-secondary-used-percent", "13"),
        ("x-codex-secondary-window-minutes", "10080"),
        ("x-codex-secondary-reset-after-seconds", "600"),
        ("x-codex-bengalfox-primary-used-percent", "80"),
        ("x-codex-bengalfox-primary-window-minutes", "300"),
        ("x-codex-credits-has-credits", "false"),
        ("x-codex-something-new", "1"),
    ]
    snap = ratelimits.capture("openai", headers, now_s=1_000_000)
    by = {w.name: w for w in snap.windows}
    assert by["five_hour"].used_pct == 42.5 and by["five_hour"].resets_at == 1764870000
    assert by["seven_day"].used_pct == 13 and by["seven_day"].resets_at == 1_000_600
    assert by["codex_bengalfox:five_hour"].used_pct == 80
    assert snap.known["credits-has-credits"] == "false"
    assert snap.extra == {"x-codex-something-new": "1"}
    assert ratelimits.capture("openai", [("content-type", "application/json")]) is None


def test_codex_rate_limits_stream_event():
    snap = ratelimits.from_codex_event(
        {
            "type": "codex.rate_limits",
            "rate_limits": {
                "primary": {"used_percent": 12.5, "window_minutes": 300, "reset_at": 1704069000},
                "secondary": {"used_percent": 87.4, "window_minutes": 10080, "reset_at": 1704672000},
            },
        }
    )
    assert {w.name: w.used_pct for w in snap.windows} == {"five_hour": 12.5, "seven_day": 87.4}
    assert ratelimits.from_codex_event({"type": "response.completed"}) is None


def _ledger_rows(stack):
    lg = open_ledger(stack.ledger_path, readonly=True)
    try:
        snaps = [dict(r) for r in lg.conn.execute("SELECT * FROM plan_snapshots ORDER BY at, id")]
        latest = ledger_plan.latest(lg.conn)
    finally:
        lg.close()
    return snaps, latest


def test_proxy_captures_claude_subscription_windows_as_status_climbs(stack):
    stack.configure(
        plan=FakePlan(
            five_hour_pct=70.0, step_pct=6.0, extra={"anthropic-ratelimit-unified-future-window-utilization-x": "0.5"}
        )
    )
    s = stack.open_session(agent="claude")
    statuses = []
    for _ in range(7):
        code, headers, _ = claude_turn(s["anthropic"])
        statuses.append((code, headers.get("anthropic-ratelimit-unified-status")))
    # The fake's status climbs as the scripted utilization does, and the agent sees the headers untouched.
    assert [st for _, st in statuses][:2] == ["allowed", "allowed"]
    assert "allowed_warning" in [st for _, st in statuses]
    assert statuses[-1] == (429, "rejected")

    snaps, latest = _ledger_rows(stack)
    assert len(snaps) == 7  # one compact snapshot per response, the 429 included
    assert {r["session_id"] for r in snaps} == {s["session_id"]}
    assert [r["status"] for r in snaps] == [st for _, st in statuses]
    first = json.loads(snaps[0]["data"])
    assert first["w"]["five_hour"][0] == 70.0
    assert first["x"] == {"anthropic-ratelimit-unified-future-window-utilization-x": "0.5"}  # kept verbatim
    assert len(snaps[0]["data"]) < 400  # compact
    by = {r["window"]: r for r in latest}
    assert by["five_hour"]["account"] == "claude.ai" and by["five_hour"]["used_pct"] == 100.0
    assert by["five_hour"]["status"] == "rejected"
    assert by["five_hour"]["raw"]["anthropic-ratelimit-unified-future-window-utilization-x"] == "0.5"
    assert "seven_day" in by


def test_proxy_captures_codex_chatgpt_windows(stack):
    stack.configure(plan=FakePlan(five_hour_pct=10.0, seven_day_pct=5.0, step_pct=2.0))
    s = stack.open_session(agent="codex")
    for _ in range(3):
        code, headers, _ = codex_turn(s["openai"])
        assert code == 200 and "x-codex-primary-used-percent" in headers
    assert all(r.path.startswith("/backend-api/codex/") for r in stack.received())
    snaps, latest = _ledger_rows(stack)
    assert [json.loads(r["data"])["w"]["five_hour"][0] for r in snaps] == [10.0, 12.0, 14.0]
    by = {r["window"]: r for r in latest}
    assert by["five_hour"]["account"] == "chatgpt:acct-test-1"
    assert by["seven_day"]["window_minutes"] == 10080


def test_api_key_traffic_without_plan_headers_stores_nothing(stack):
    s = stack.open_session(agent="claude")
    code, _, _ = claude_turn(s["anthropic"])
    assert code == 200
    snaps, latest = _ledger_rows(stack)
    assert snaps == [] and latest == []
