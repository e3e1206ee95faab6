"""The pure budget core with fixed times: calendar windows, the policy, the cascade, the loop brake and the
request rewrite for a cheaper model. No clock, no I/O."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agentmeter.budget import cascade, downgrade
from agentmeter.budget.loops import LoopBrake, turn_facts
from agentmeter.budget.policy import PolicyRequest, Thresholds, WindowSpend, decide, stage_of
from agentmeter.budget.spend import spend_windows
from agentmeter.budget.windows import local_day, window
from agentmeter.home.config import Budget, Caps
from agentmeter.providers.request import read_body

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
LA = ZoneInfo("America/Los_Angeles")
T = Thresholds()
EASY = PolicyRequest(easy_turn=True, turn_boundary=True, downgrade_to="claude-sonnet-4-6")
END = datetime(2026, 3, 11, tzinfo=UTC)


def local(tz, *args) -> datetime:
    return datetime(*args, tzinfo=tz)


def day_at(spent: float, cap: float = 10.0, name: str = "day", **kw) -> WindowSpend:
    return WindowSpend(name, END, spent, 0, cap_usd=cap, **kw)


# -- windows -------------------------------------------------------------------------------------------


def test_day_edge_last_millisecond_vs_midnight():
    before = local(BERLIN, 2026, 3, 10, 23, 59, 59, 999000)
    after = local(BERLIN, 2026, 3, 11, 0, 0)
    w1, w2 = window("day", before, BERLIN), window("day", after, BERLIN)
    assert (w1.first_day, w1.last_day) == (date(2026, 3, 10), date(2026, 3, 10))
    assert (w2.first_day, w2.last_day) == (date(2026, 3, 11), date(2026, 3, 11))
    assert w1.end == w2.start == after.astimezone(UTC)
    assert w1.contains(before) and not w1.contains(after) and w2.contains(after)
    assert w1.start == local(BERLIN, 2026, 3, 10).astimezone(UTC)
    assert w1.key == "day:2026-03-10" and w2.key == "day:2026-03-11"


def test_week_starts_monday():
    # 2026-01-14 is a Wednesday; its week is Monday 12th .. Sunday 18th.
    w = window("week", local(BERLIN, 2026, 1, 14, 12), BERLIN)
    assert (w.first_day, w.last_day) == (date(2026, 1, 12), date(2026, 1, 18))
    assert w.first_day.weekday() == 0
    sunday_late = local(BERLIN, 2026, 1, 18, 23, 59, 59, 999000)
    monday = local(BERLIN, 2026, 1, 19, 0, 0)
    assert window("week", sunday_late, BERLIN).first_day == date(2026, 1, 12)
    assert window("week", monday, BERLIN).first_day == date(2026, 1, 19)
    assert w.end == monday.astimezone(UTC)
    # A Monday at midnight starts its own week, not the previous one.
    assert window("week", local(BERLIN, 2026, 1, 12, 0, 0), BERLIN).first_day == date(2026, 1, 12)


def test_month_end_and_december_to_january():
    feb = window("month", local(BERLIN, 2026, 2, 28, 23, 59, 59, 999000), BERLIN)
    assert (feb.first_day, feb.last_day) == (date(2026, 2, 1), date(2026, 2, 28))
    assert window("month", local(BERLIN, 2026, 3, 1, 0, 0), BERLIN).first_day == date(2026, 3, 1)
    dec = window("month", local(BERLIN, 2026, 12, 31, 23, 59), BERLIN)
    assert (dec.first_day, dec.last_day) == (date(2026, 12, 1), date(2026, 12, 31))
    assert dec.end == local(BERLIN, 2027, 1, 1).astimezone(UTC)
    jan = window("month", local(BERLIN, 2027, 1, 1, 0, 0), BERLIN)
    assert (jan.first_day, jan.last_day) == (date(2027, 1, 1), date(2027, 1, 31))
    assert jan.start == dec.end
    # December's last week runs into January
    wk = window("week", local(BERLIN, 2026, 12, 31, 9), BERLIN)
    assert (wk.first_day, wk.last_day) == (date(2026, 12, 28), date(2027, 1, 3))


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (BERLIN, date(2026, 3, 29), 23),
        (BERLIN, date(2026, 10, 25), 25),
        (BERLIN, date(2026, 3, 28), 24),
        (NEW_YORK, date(2026, 3, 8), 23),
        (NEW_YORK, date(2026, 11, 1), 25),
        (NEW_YORK, date(2026, 3, 29), 24),
    ],
)
def test_dst_days_are_23_or_25_hours(tz, day, hours):
    w = window("day", local(tz, day.year, day.month, day.day, 12), tz)
    assert w.end - w.start == timedelta(hours=hours)
    assert w.start == local(tz, day.year, day.month, day.day).astimezone(UTC)
    # the instant just before local midnight is still in this day, midnight is the next
    nxt = day + timedelta(days=1)
    assert window("day", w.end - timedelta(milliseconds=1), tz).first_day == day
    assert window("day", w.end, tz).first_day == nxt


def test_dst_week_and_month_lengths():
    wk = window("week", local(BERLIN, 2026, 3, 29, 12), BERLIN)  # Mon 23rd .. Sun 29th
    assert wk.first_day == date(2026, 3, 23) and wk.end - wk.start == timedelta(days=7, hours=-1)
    month = window("month", local(NEW_YORK, 2026, 11, 15), NEW_YORK)
    assert month.end - month.start == timedelta(days=30, hours=1)


def test_time_zones_one_instant_two_local_days():
    instant = datetime(2026, 6, 30, 20, 0, tzinfo=UTC)  # Tokyo: Jul 1 05:00; Los Angeles: Jun 30 13:00
    tokyo, la = window("day", instant, TOKYO), window("day", instant, LA)
    assert tokyo.first_day == date(2026, 7, 1)
    assert la.first_day == date(2026, 6, 30)
    assert local_day(instant, TOKYO) == "2026-07-01" and local_day(instant, LA) == "2026-06-30"
    assert window("month", instant, TOKYO).first_day == date(2026, 7, 1)
    assert window("month", instant, LA).first_day == date(2026, 6, 1)
    assert tokyo.start == datetime(2026, 6, 30, 15, 0, tzinfo=UTC)
    assert la.start == datetime(2026, 6, 30, 7, 0, tzinfo=UTC)


# -- the policy: stages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spent", "stage", "action"),
    [
        (7.99, "ok", "allow"),
        (8.0, "alert", "allow"),
        (9.49, "alert", "allow"),
        (9.5, "downgrade", "downgrade"),
        (10.99, "downgrade", "downgrade"),
        (11.0, "blocked", "refuse"),
        (50.0, "blocked", "refuse"),
    ],
)
def test_stages_exactly_at_the_thresholds(spent, stage, action):
    d = decide(EASY, [day_at(spent)], T)
    assert (d.stage, d.action) == (stage, action)
    assert stage_of(spent / 10.0, T) == stage
    if action == "refuse":
        assert d.reason == "budget" and d.window.name == "day"
    if action == "downgrade":
        assert d.model == "claude-sonnet-4-6"
    expected_alerts = tuple(("day", th) for th in (0.8, 0.95, 1.1) if spent / 10.0 >= th)
    assert d.alerts == expected_alerts


def test_no_caps_means_allow():
    d = decide(EASY, [WindowSpend("day", END, 1e6, 10**9)], T)
    assert (d.action, d.stage, d.alerts) == ("allow", "ok", ())


def test_usd_and_token_caps_together_worst_fraction_wins():
    tokens_over = WindowSpend("day", END, 1.0, 1100, cap_usd=10.0, cap_tokens=1000)
    d = decide(PolicyRequest(), [tokens_over], T)
    assert d.action == "refuse" and d.window is tokens_over
    usd_over = WindowSpend("day", END, 12.0, 10, cap_usd=10.0, cap_tokens=1000)
    assert decide(PolicyRequest(), [usd_over], T).action == "refuse"
    both_low = WindowSpend("day", END, 8.5, 500, cap_usd=10.0, cap_tokens=1000)
    assert decide(PolicyRequest(), [both_low], T).stage == "alert"
    # across windows: the month is over even though the day is fine
    day, month = day_at(1.0), day_at(120.0, cap=100.0, name="month")
    d = decide(PolicyRequest(), [day, month], T)
    assert d.action == "refuse" and d.window.name == "month"
    assert ("month", 1.1) in d.alerts and not any(name == "day" for name, _ in d.alerts)


def _windows(budget: Budget, agent: str, spend: dict, *, session_spent=0.0, session_budget=None, sid="s1"):
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    return spend_windows(
        now,
        BERLIN,
        budget,
        agent=agent,
        session_id=sid,
        session_budget_usd=session_budget,
        day_spend=lambda day, who: (spend.get(who, 0.0) if day == "2026-03-10" else 0.0, 0),
        session_spend=lambda s: (session_spent, 0),
    )


def test_per_agent_caps():
    budget = Budget(caps=Caps(daily_usd=20.0), agents={"codex": Caps(daily_usd=1.0)})
    spend = {"*": 1.2, "codex": 1.2, "claude": 0.0}
    ws = _windows(budget, "codex", spend)
    assert [w.name for w in ws] == ["day", "codex day"]
    d = decide(PolicyRequest(), ws, T)
    assert d.action == "refuse" and d.window.name == "codex day" and d.window.spent_usd == pytest.approx(1.2)
    # claude has no sub-cap: the same overall spend lets it through
    ws = _windows(budget, "claude", spend)
    assert [w.name for w in ws] == ["day"]
    assert decide(PolicyRequest(), ws, T).action == "allow"
    # the agent window counts the agent's own spend, not everyone's
    ws = _windows(budget, "codex", {"*": 15.0, "codex": 0.1})
    assert decide(PolicyRequest(), ws, T).stage == "ok"


def test_per_agent_caps_sum_whole_window():
    budget = Budget(agents={"codex": Caps(weekly_usd=5.0)})
    now = datetime(2026, 3, 12, 12, tzinfo=UTC)  # Thursday
    ws = spend_windows(
        now,
        BERLIN,
        budget,
        agent="codex",
        session_id=None,
        session_budget_usd=None,
        day_spend=lambda day, who: (2.0, 10) if who == "codex" else (0.0, 0),
        session_spend=lambda s: (0.0, 0),
    )
    assert [w.name for w in ws] == ["codex week"]
    assert ws[0].spent_usd == pytest.approx(14.0) and ws[0].spent_tokens == 70  # Mon..Sun, 7 days
    assert decide(PolicyRequest(), ws, T).action == "refuse"


def test_session_cap():
    ws = _windows(Budget(), "claude", {}, session_spent=5.6, session_budget=5)
    assert [w.name for w in ws] == ["session"] and ws[0].end is None
    d = decide(PolicyRequest(), ws, T)
    assert d.action == "refuse" and d.window.name == "session"
    assert (
        decide(PolicyRequest(), _windows(Budget(), "claude", {}, session_spent=5.4, session_budget=5), T).action
        == "allow"
    )
    # no session id, or no --budget: no session window at all
    assert _windows(Budget(), "claude", {}, session_spent=99, session_budget=5, sid=None) == []
    assert _windows(Budget(), "claude", {}, session_spent=99, session_budget=None) == []


def test_snooze_pauses_refusal_and_downgrade_but_alerts_continue():
    blocked = decide(EASY, [day_at(12.0)], T, snoozed=True)
    assert (blocked.action, blocked.reason, blocked.stage) == ("allow", "snoozed", "blocked")
    assert blocked.alerts == (("day", 0.8), ("day", 0.95), ("day", 1.1))
    band = decide(EASY, [day_at(9.6)], T, snoozed=True)
    assert band.action == "allow" and band.model is None and band.alerts == (("day", 0.8), ("day", 0.95))
    loop = decide(PolicyRequest(loop_streak=10), [day_at(0.0)], T, snoozed=True)
    assert loop.action == "allow"


def test_subscription_alert_only_unless_enforced():
    sub = PolicyRequest(subscription=True, easy_turn=True, turn_boundary=True, downgrade_to="claude-haiku-4-5")
    d = decide(sub, [day_at(12.0)], T)
    assert (d.action, d.reason) == ("allow", "subscription_alert_only") and d.alerts
    assert decide(sub, [day_at(9.6)], T).action == "allow"
    enforced = Thresholds(enforce_subscription=True)
    assert decide(sub, [day_at(12.0)], enforced).action == "refuse"
    assert decide(sub, [day_at(9.6)], enforced).action == "downgrade"


def test_count_tokens_and_models_never_refused():
    free = PolicyRequest(billable=False, easy_turn=True, turn_boundary=True, downgrade_to="x", loop_streak=99)
    for spent in (9.6, 12.0, 1e9):
        d = decide(free, [day_at(spent)], T)
        assert d.action == "allow" and d.model is None


@pytest.mark.parametrize("easy", [True, False])
@pytest.mark.parametrize("boundary", [True, False])
@pytest.mark.parametrize("target", ["claude-haiku-4-5", None])
@pytest.mark.parametrize("pinned", [True, False])
def test_downgrade_only_easy_turn_at_boundary_with_target_not_pinned(easy, boundary, target, pinned):
    req = PolicyRequest(easy_turn=easy, turn_boundary=boundary, downgrade_to=target, pinned=pinned)
    d = decide(req, [day_at(9.6)], T)
    if easy and boundary and target and not pinned:
        assert (d.action, d.model, d.reason) == ("downgrade", "claude-haiku-4-5", "budget")
    else:
        assert d.action == "allow" and d.model is None
    assert d.stage == "downgrade"


def test_single_hard_cap_has_no_downgrade_stage():
    hard = Thresholds(alert_at=1.0, downgrade_at=1.0, block_at=1.0)
    for spent in (0.0, 5.0, 9.5, 9.99):
        d = decide(EASY, [day_at(spent)], hard)
        assert d.action == "allow" and d.stage == "ok" and d.alerts == ()
    d = decide(EASY, [day_at(10.0)], hard)
    assert (d.action, d.stage, d.reason) == ("refuse", "blocked", "budget")
    assert d.alerts == (("day", 1.0),)
    for f in (0.5, 0.99, 1.0, 1.5):
        assert stage_of(f, hard) != "downgrade"


def test_alert_then_hard_cap_without_downgrade():
    t = Thresholds(alert_at=0.8, downgrade_at=1.0, block_at=1.0)
    assert decide(EASY, [day_at(9.9)], t).action == "allow"
    assert decide(EASY, [day_at(9.9)], t).stage == "alert"
    assert decide(EASY, [day_at(10.0)], t).action == "refuse"


def test_loop_brake_retry_cap():
    assert decide(PolicyRequest(loop_streak=3), [], T).action == "allow"
    d = decide(PolicyRequest(loop_streak=4), [], T)
    assert (d.action, d.reason) == ("refuse", "retry_cap")
    assert decide(PolicyRequest(loop_streak=1), [], Thresholds(retry_cap=0)).action == "refuse"
    # the brake wins over a downgrade
    d = decide(PolicyRequest(loop_streak=4, easy_turn=True, turn_boundary=True, downgrade_to="m"), [day_at(9.6)], T)
    assert d.reason == "retry_cap"


# -- the cascade ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "cheaper"),
    [
        ("anthropic", "claude-opus-4-8", "claude-sonnet-4-6"),
        ("anthropic", "claude-sonnet-4-6", "claude-haiku-4-5"),
        ("anthropic", "claude-haiku-4-5", None),
        ("anthropic", "claude-opus-4-8-20260115", "claude-sonnet-4-6"),
        ("anthropic", "claude-sonnet-4-6-20260201", "claude-haiku-4-5"),
        ("anthropic", "claude-haiku-4-5-20251001", None),
        ("anthropic", "Claude-Opus-4-8", "claude-sonnet-4-6"),
        ("anthropic", "claude-opus-4-1-20250805", "claude-sonnet-4-6"),
        ("anthropic", "claude-3-opus-20240229", "claude-sonnet-4-6"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"),
        ("anthropic", "claude-3-5-haiku-20241022", None),
        ("anthropic", "claude-zeta-9", None),
        ("anthropic", None, None),
        ("openai", "gpt-5.1", "gpt-5-mini"),
        ("openai", "gpt-5.1-2025-11-13", "gpt-5-mini"),
        ("openai", "gpt-5.1-codex", "gpt-5.1-codex-mini"),
        ("openai", "gpt-5.1-codex-max", "gpt-5.1-codex-mini"),
        ("openai", "gpt-5-mini", None),
        ("openai", "gpt-5.1-mini", None),
        ("openai", "gpt-5-mini", None),
        ("openai", "gpt-5-nano", None),
        ("openai", "gpt-5.1-codex-mini", None),
        ("openai", "gpt-5.1-nano", None),
        ("other", "llama-3", None),
    ],
)
def test_next_cheaper(provider, model, cheaper):
    assert cascade.next_cheaper(provider, model) == cheaper


def test_configured_ladder_wins():
    ladders = {"anthropic": ("claude-opus-4-8", "claude-haiku-4-5")}
    assert cascade.next_cheaper("anthropic", "claude-opus-4-8", ladders) == "claude-haiku-4-5"
    assert cascade.next_cheaper("anthropic", "claude-opus-4-8-20260115", ladders) == "claude-haiku-4-5"
    # a family outside the ladder steps to the ladder's rung of the next family down, or nowhere
    assert cascade.next_cheaper("anthropic", "claude-sonnet-4-5", ladders) == "claude-haiku-4-5"
    assert cascade.next_cheaper("anthropic", "claude-opus-4-1", {"anthropic": ("claude-opus-4-8",)}) is None


# -- the loop brake ---------------------------------------------------------------------------------------


def anth_body(last: dict) -> dict:
    return {
        "model": "claude-sonnet-4-6",
        "messages": [{"role": "user", "content": "start"}, {"role": "assistant", "content": "ok"}, last],
    }


def tool_result(is_error: bool | None, n: int = 0) -> dict:
    block = {"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": f"output {n}"}
    if is_error is not None:
        block["is_error"] = is_error
    return {"role": "user", "content": [block]}


def facts(provider: str, body: dict | None):
    raw = json.dumps(body).encode()
    return turn_facts(provider, read_body(raw) if body is not None else None, len(raw))


def test_turn_facts_anthropic():
    f = facts("anthropic", anth_body(tool_result(True)))
    assert (f.fresh_user_turn, f.failed_tool_result) == (False, True)
    assert facts("anthropic", anth_body(tool_result(False))).failed_tool_result is False
    assert facts("anthropic", anth_body(tool_result(None))).failed_tool_result is False
    text = facts("anthropic", anth_body({"role": "user", "content": "fix it"}))
    assert (text.fresh_user_turn, text.failed_tool_result) == (True, False)
    blocks = facts("anthropic", anth_body({"role": "user", "content": [{"type": "text", "text": "fix it"}]}))
    assert blocks.fresh_user_turn
    assert not facts("anthropic", {"messages": [{"role": "assistant", "content": "x"}]}).fresh_user_turn
    assert facts("anthropic", None).fresh_user_turn is False


def codex_body(output) -> dict:
    return {
        "model": "gpt-5.1-codex",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run tests"}]},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": output},
        ],
    }


@pytest.mark.parametrize(
    ("output", "failed"),
    [
        (json.dumps({"output": "boom", "metadata": {"exit_code": 1, "duration_seconds": 0.1}}), True),
        (json.dumps({"output": "fine", "metadata": {"exit_code": 0, "duration_seconds": 0.1}}), False),
        ("Exit code: 1\nWall time: 0.2 seconds\nOutput:\nFAILED", True),
        ("Exit code: 0\nWall time: 0.2 seconds\nOutput:\nok", False),
        ("Process exited with exit code 2", True),
        ("plain output", False),
    ],
)
def test_turn_facts_codex_function_call_output(output, failed):
    f = facts("openai", codex_body(output))
    assert f.failed_tool_result is failed and f.fresh_user_turn is False


def test_turn_facts_codex_user_message_is_fresh():
    body = codex_body("Exit code: 1")
    body["input"].append({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hm"}]})
    assert facts("openai", body).fresh_user_turn is True
    assert facts("openai", {"input": "just a string"}).fresh_user_turn is True


def test_loop_brake_counts_failures_and_fresh_turn_resets():
    brake = LoopBrake()
    streaks = []
    for n in range(5):
        streaks.append(brake.observe(facts("anthropic", anth_body(tool_result(True, n)))))
        brake.outcome(True)
    assert streaks == [1, 2, 3, 4, 5]
    assert decide(PolicyRequest(loop_streak=streaks[3]), [], T).reason == "retry_cap"
    assert brake.observe(facts("anthropic", anth_body({"role": "user", "content": "try another way"}))) == 0
    # a successful tool result also ends a streak
    brake.observe(facts("anthropic", anth_body(tool_result(True, 10))))
    assert brake.observe(facts("anthropic", anth_body(tool_result(False, 11)))) == 0


def test_loop_brake_codex_failures():
    brake = LoopBrake()
    got = []
    for n in range(4):
        got.append(brake.observe(facts("openai", codex_body(f"Exit code: 1\nOutput: attempt {n}"))))
        brake.outcome(True)
    assert got == [1, 2, 3, 4]


def test_identical_body_after_an_error_is_a_retry_not_a_loop():
    brake = LoopBrake()
    body = facts("anthropic", anth_body({"role": "user", "content": "hello"}))
    assert brake.observe(body) == 0
    for _ in range(5):
        brake.outcome(False)  # the upstream failed or the stream was cut
        assert brake.observe(body) == 0
    # after complete answers, re-sending the same body is a loop
    counts = []
    for _ in range(4):
        brake.outcome(True)
        counts.append(brake.observe(body))
    assert counts == [1, 2, 3, 4]


def test_identical_failed_tool_result_after_error_keeps_streak():
    brake = LoopBrake()
    f = facts("anthropic", anth_body(tool_result(True, 1)))
    assert brake.observe(f) == 1
    brake.outcome(False)
    assert brake.observe(f) == 1


# -- rewriting for a cheaper model ----------------------------------------------------------------------------


def test_rewrite_swaps_only_the_model_bytes():
    raw = (
        b'{ "model" : "claude-opus-4-8",\n  "max_tokens": 1024, "stream": true,\n'
        b'  "messages": [{"role": "user", "content": "h\\u00e9llo \xe2\x9c\x93"}],\n'
        b'  "metadata": {"user_id": "u1"}  }'
    )
    rw = downgrade.rewrite("anthropic", raw, json.loads(raw), "claude-sonnet-4-6")
    assert rw.body == raw.replace(b'"claude-opus-4-8"', b'"claude-sonnet-4-6"')
    assert rw.changed == () and rw.beta is None


def test_rewrite_leaves_nested_model_fields_alone():
    raw = b'{"metadata":{"model":"claude-opus-4-8"},"model":"claude-opus-4-8","max_tokens":10,"messages":[]}'
    rw = downgrade.rewrite("anthropic", raw, json.loads(raw), "claude-sonnet-4-6")
    out = json.loads(rw.body)
    assert out["model"] == "claude-sonnet-4-6" and out["metadata"] == {"model": "claude-opus-4-8"}


def test_rewrite_drops_thinking_blocks():
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 2000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {"role": "user", "content": "one"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xx"},
                    {"type": "text", "text": "answer"},
                ],
            },
            {"role": "user", "content": "two"},
        ],
    }
    rw = downgrade.rewrite("anthropic", json.dumps(body).encode(), body, "claude-sonnet-4-6")
    out = json.loads(rw.body)
    assert out["model"] == "claude-sonnet-4-6"
    assert "thinking blocks" in rw.changed
    assert out["messages"][1]["content"] == [{"type": "text", "text": "answer"}]
    assert out["messages"][0] == body["messages"][0] and out["messages"][2] == body["messages"][2]
    assert out["thinking"] == body["thinking"]  # the request's thinking setting itself is kept


def test_rewrite_clamps_max_tokens():
    body = {"model": "claude-sonnet-4-6", "max_tokens": 128000, "messages": [{"role": "user", "content": "x"}]}
    rw = downgrade.rewrite("anthropic", json.dumps(body).encode(), body, "claude-haiku-4-5")
    assert json.loads(rw.body)["max_tokens"] == 64000 and "max_tokens" in rw.changed
    small = {**body, "max_tokens": 1000}
    rw = downgrade.rewrite("anthropic", json.dumps(small).encode(), small, "claude-haiku-4-5")
    assert json.loads(rw.body)["max_tokens"] == 1000 and rw.changed == ()


def test_rewrite_drops_context_1m_beta_for_haiku_only():
    body = {"model": "claude-sonnet-4-6", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}
    raw = json.dumps(body).encode()
    beta = "context-1m-2025-08-07,fine-grained-tool-streaming-2025-05-14"
    rw = downgrade.rewrite("anthropic", raw, body, "claude-haiku-4-5", beta=beta)
    assert rw.beta == "fine-grained-tool-streaming-2025-05-14" and "betas" in rw.changed
    assert json.loads(rw.body)["model"] == "claude-haiku-4-5"
    to_sonnet = dict(body, model="claude-opus-4-8")
    rw = downgrade.rewrite("anthropic", json.dumps(to_sonnet).encode(), to_sonnet, "claude-sonnet-4-6", beta=beta)
    assert rw.beta is None and rw.changed == ()
    rw = downgrade.rewrite("anthropic", raw, body, "claude-haiku-4-5", beta="fine-grained-tool-streaming-2025-05-14")
    assert rw.beta is None and rw.changed == ()


def test_rewrite_drops_adaptive_thinking_and_effort_for_haiku():
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "messages": [{"role": "user", "content": "x"}],
    }
    rw = downgrade.rewrite("anthropic", json.dumps(body).encode(), body, "claude-haiku-4-5")
    out = json.loads(rw.body)
    assert "thinking" not in out and "output_config" not in out
    assert set(rw.changed) >= {"adaptive thinking", "effort"}


def test_rewrite_removes_openai_reasoning_items():
    body = {
        "model": "gpt-5.1",
        "stream": True,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA..."},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "next"}]},
        ],
    }
    rw = downgrade.rewrite("openai", json.dumps(body).encode(), body, "gpt-5.1-mini")
    out = json.loads(rw.body)
    assert out["model"] == "gpt-5.1-mini" and "reasoning items" in rw.changed
    assert [i["type"] for i in out["input"]] == ["message", "message", "message"]
    assert out["input"] == [i for i in body["input"] if i["type"] != "reasoning"]


def test_rewrite_refuses_without_a_model():
    assert downgrade.rewrite("anthropic", b'{"messages":[]}', {"messages": []}, "claude-haiku-4-5") is None


def test_turn_digest_tells_different_turns_apart():
    """The loop brake hashes the newest turn, the message count and the body length, not the whole body:
    different turns (string input included) must differ, an identical body must not."""
    a = facts("openai", {"model": "gpt-5.1", "input": "turn aaaa"})
    b = facts("openai", {"model": "gpt-5.1", "input": "turn bbbb"})
    assert a.body_digest != b.body_digest
    assert a.body_digest == facts("openai", {"model": "gpt-5.1", "input": "turn aaaa"}).body_digest
    one = anth_body({"role": "user", "content": "fix it"})
    longer = {**one, "messages": [{"role": "user", "content": "first"}, *one["messages"]]}
    assert facts("anthropic", one).body_digest != facts("anthropic", longer).body_digest
    system = {**one, "system": "a different system prompt"}
    assert facts("anthropic", one).body_digest != facts("anthropic", system).body_digest  # length differs
