"""Per-session shares of a plan window: each window's rise between consecutive readings goes to the
sessions whose requests finished in between; overlapping sessions get an estimate with its error."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time

from agentmeter.core.clock import SystemClock
from agentmeter.home.paths import get_paths
from agentmeter.ledger import open_ledger
from agentmeter.ledger.plan import plan_section
from agentmeter.plan.shares import OTHER, Finished, Point, attribute
from agentmeter.testing.fake_provider import FakePlan
from conftest import run_cli

from .helpers import claude_turn


def _plan(stack) -> list[dict]:
    lg = open_ledger(stack.ledger_path, readonly=True)
    try:
        return plan_section(lg.conn, SystemClock().now_ms() / 1000)
    finally:
        lg.close()


def _shares(plan: list[dict], window: str = "five_hour") -> tuple[dict, dict]:
    e = next(x for x in plan if x["window"] == window)
    return {s["session_id"]: s for s in e["session_shares"]}, e


def test_sequential_sessions_get_exact_shares(stack):
    stack.configure(plan=FakePlan(five_hour_pct=10.0, step_pct=1.0))
    a, b = stack.open_session(agent="claude"), stack.open_session(agent="claude")
    for _ in range(2):
        claude_turn(a["anthropic"], step=2)
        claude_turn(b["anthropic"], step=5)
    claude_turn(a["anthropic"], step=0)  # a last reading, so the last rise is seen
    shares, e = _shares(_plan(stack))
    assert shares[a["session_id"]]["used_pct"] == 4.0 and shares[a["session_id"]]["error_pct"] == 0
    assert shares[b["session_id"]]["used_pct"] == 10.0 and shares[b["session_id"]]["error_pct"] == 0
    assert e["estimated_pct"] == 0 and e["other_pct"] == 0
    assert e["used_pct"] == 24.0


def test_overlapping_sessions_are_split_and_the_error_is_said(stack):
    stack.configure(plan=FakePlan(five_hour_pct=10.0, step_pct=1.0))
    a, b = stack.open_session(agent="claude"), stack.open_session(agent="claude")
    claude_turn(a["anthropic"], step=0)  # the reading before
    # A's stream stalls half way for 3 s; B starts once A's request has reached the provider, so both are in
    # flight together and both finish before the next reading.
    seen = len(stack.received())
    ta = threading.Thread(target=claude_turn, args=(a["anthropic"],), kwargs={"step": 3, "scenario": "stall:3"})
    ta.start()
    while len(stack.received()) == seen:
        time.sleep(0.01)
    tb = threading.Thread(target=claude_turn, args=(b["anthropic"],), kwargs={"step": 5})
    tb.start()
    ta.join()
    tb.join()
    claude_turn(b["anthropic"], step=0)  # the reading after
    shares, e = _shares(_plan(stack))
    sa, sb = shares[a["session_id"]], shares[b["session_id"]]
    # Both finished between the same two readings: the 8 points are split by their (equal) cost, and
    # each share says how wrong it could be (the truth lies anywhere between 0 and 8).
    assert abs(sa["used_pct"] + sb["used_pct"] - 8.0) < 1e-6
    assert e["estimated_pct"] == 8.0
    assert sa["error_pct"] >= 4.0 and sb["error_pct"] >= 4.0


def test_attribute_rules():
    pts = [Point(1000, 10.0, 100), Point(2000, 15.0, 100), Point(3000, 18.0, 100), Point(4000, 2.0, 200)]
    fin = [Finished("a", 1500, 1.0), Finished("b", 3500, 1.0)]
    out = attribute(pts, fin)
    assert out.by_session["a"].used_pct == 5.0  # a finished between the first two readings
    assert out.by_session[OTHER].used_pct == 3.0  # nothing of ours finished: someone else used it
    assert out.by_session["b"].used_pct == 2.0  # the window rolled over: all of the new reading
    assert out.mixed_pct == 0


def test_a_request_whose_end_rounds_to_before_its_own_reading_still_counts():
    """end = start + duration in whole milliseconds can land 1 ms before the reading its own response carried
    (found: 3 turns of one session gave it 3 % of a 6 % rise, the rest to `other`)."""
    pts = [Point(1001, 20.0, 100, "r1"), Point(2001, 23.0, 100, "r2"), Point(3001, 26.0, 100, "r3")]
    fin = [Finished("s", 1000, 1.0, "r1"), Finished("s", 2000, 1.0, "r2"), Finished("s", 3000, 1.0, "r3")]
    out = attribute(pts, fin)
    assert out.by_session["s"].used_pct == 6.0 and OTHER not in out.by_session


def test_session_show_says_what_share_of_the_window_it_used(stack):
    stack.configure(plan=FakePlan(five_hour_pct=20.0, step_pct=1.0))
    a, b = stack.open_session(agent="claude"), stack.open_session(agent="claude")
    claude_turn(a["anthropic"], step=12)
    claude_turn(b["anthropic"], step=1)
    claude_turn(a["anthropic"], step=0)
    dest = get_paths().ledger
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(stack.ledger_path)
    with sqlite3.connect(dest) as out:
        src.backup(out)
    src.close()
    r = run_cli("session", "show", a["session_id"], "--json")
    assert r.returncode == 0, r.stderr
    shares = json.loads(r.stdout)["plan_shares"]
    assert shares[0] == {
        "provider": "anthropic",
        "account": "claude.ai",
        "window": "five_hour",
        "label": "5-hour",
        "used_pct": 12.0,
        "error_pct": 0.0,
    }
    assert shares[1]["window"] == "seven_day" and abs(shares[1]["used_pct"] - 1.2) < 1e-6  # the fake's week: step/10
    r = run_cli("session", "show", a["session_id"])
    assert "this session used 12.0 % of your 5-hour plan window" in r.stdout, r.stdout
    listed = json.loads(run_cli("sessions", "--json").stdout)["sessions"]
    assert {s["id"]: [x["used_pct"] for x in s["plan_shares"]] for s in listed}[b["session_id"]] == [1.0, 0.1]
    shutil.rmtree(dest.parent, ignore_errors=True)
