"""Codex's in-stream plan windows (issue 18 item 1): the ChatGPT backend also sends the windows inside the
Responses stream as a `codex.rate_limits` event. The sans-io meter reads it; the proxy's metering step records
it like a header reading (brake state, pace, snapshot), and a reading that only repeats the headers is not
stored twice."""

from __future__ import annotations

import json

import pytest

from agentmeter.ledger import open_ledger
from agentmeter.ledger import plan as ledger_plan
from agentmeter.providers.openai import ResponsesStreamMeter
from agentmeter.testing.fake_provider import FakePlan
from conftest import make_stack

from .helpers import codex_turn
from .test_brake import _config

EVENT = {
    "type": "codex.rate_limits",
    "plan_type": "pro",
    "rate_limits": {
        "allowed": True,
        "limit_reached": False,
        "primary": {"used_percent": 7, "window_minutes": 300, "reset_after_seconds": 13168, "reset_at": 1779398785},
        "secondary": {
            "used_percent": 29,
            "window_minutes": 10080,
            "reset_after_seconds": 434962,
            "reset_at": 1779820580,
        },
    },
    "code_review_rate_limits": None,
}


def _sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


STREAM = b"".join(
    [
        _sse(EVENT),
        _sse({"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5.1", "usage": None}}),
        _sse({"type": "response.output_text.delta", "delta": "hi"}),
        _sse(
            {
                "type": "response.completed",
                "response": {
                    "id": "resp_1",
                    "model": "gpt-5.1",
                    "status": "completed",
                    "usage": {"input_tokens": 10, "output_tokens": 2},
                },
            }
        ),
    ]
)


@pytest.mark.parametrize("size", [1, 7, 64, len(STREAM)])
def test_the_responses_meter_reads_the_event_in_any_chunking(size):
    meter = ResponsesStreamMeter()
    for i in range(0, len(STREAM), size):
        meter.feed(STREAM[i : i + size])
    got = meter.result()
    assert got.complete and got.usage.output_tokens == 2
    assert {w.name: (w.used_pct, w.resets_at, w.window_minutes) for w in got.plan.windows} == {
        "five_hour": (7.0, 1779398785, 300),
        "seven_day": (29.0, 1779820580, 10080),
    }
    assert got.plan.status == "allowed"
    reached = {**EVENT, "rate_limits": {**EVENT["rate_limits"], "allowed": False, "limit_reached": True}}
    meter = ResponsesStreamMeter()
    meter.feed(_sse(reached))
    assert meter.result().plan.status == "rejected"


def _snapshots(stack) -> list[dict]:
    lg = open_ledger(stack.ledger_path, readonly=True)
    try:
        return [dict(r) for r in lg.conn.execute("SELECT * FROM plan_snapshots ORDER BY at, id")]
    finally:
        lg.close()


def test_the_proxy_records_windows_read_only_from_the_stream(stack):
    stack.configure(
        plan=FakePlan(five_hour_pct=10.0, seven_day_pct=5.0, step_pct=2.0, codex_event=True, codex_headers=False)
    )
    s = stack.open_session(agent="codex")
    for _ in range(3):
        code, headers, body = codex_turn(s["openai"])
        assert code == 200 and b"codex.rate_limits" in body
        assert not any(h.startswith("x-codex-") for h in headers)  # the event is the only source
    snaps = _snapshots(stack)
    assert [json.loads(r["data"])["w"]["five_hour"][0] for r in snaps] == [10.0, 12.0, 14.0]
    assert all(r["request_id"] for r in snaps)
    lg = open_ledger(stack.ledger_path, readonly=True)
    try:
        latest = {r["window"]: r for r in ledger_plan.latest(lg.conn)}
    finally:
        lg.close()
    assert latest["five_hour"]["account"] == "chatgpt:acct-test-1" and latest["seven_day"]["window_minutes"] == 10080
    live = {r.window: r.used_pct for r in stack.state.enforcer.plan.readings("openai", "chatgpt:acct-test-1")}
    assert live == {"five_hour": 14.0, "seven_day": 5.4}  # the brake's own state, not only the ledger


def test_the_brake_acts_on_a_window_read_from_the_stream(tmp_path):
    cfg = _config("[budget.agents.codex.plan]\nfive_hour = 0.5\n\n[alerts]\ndesktop = false\n")
    stack, close = make_stack(tmp_path, config=cfg)
    try:
        stack.configure(plan=FakePlan(five_hour_pct=45.0, step_pct=6.0, codex_event=True, codex_headers=False))
        s = stack.open_session(agent="codex")
        assert codex_turn(s["openai"])[0] == 200  # the event says 45 %
        assert codex_turn(s["openai"])[0] == 200  # and now 51 %, over the line of 50 %
        code, _headers, body = codex_turn(s["openai"])
        assert code == 429
        assert "codex 5-hour plan window is 51% used; your line is 50%" in json.loads(body)["error"]["message"]
    finally:
        close()


def test_an_event_that_repeats_the_headers_is_not_stored_twice(stack):
    stack.configure(plan=FakePlan(five_hour_pct=10.0, seven_day_pct=5.0, step_pct=2.0, codex_event=True))
    s = stack.open_session(agent="codex")
    for _ in range(2):
        code, headers, body = codex_turn(s["openai"])
        assert code == 200 and "x-codex-primary-used-percent" in headers and b"codex.rate_limits" in body
    assert [json.loads(r["data"])["w"]["five_hour"][0] for r in _snapshots(stack)] == [10.0, 12.0]
