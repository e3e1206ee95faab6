"""Budget enforcement through the real proxy and the fake provider: native refusals, cheaper-model downgrades,
the loop brake, alerts by webhook, snooze and live config reload (DESIGN sections 4 and 6)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import anthropic
import pytest

from agentmeter.budget.windows import window
from agentmeter.core.clock import SystemClock
from agentmeter.core.models import PriceRate
from agentmeter.home.config import Alerts, Budget, Caps, Config
from agentmeter.ledger import open_ledger
from conftest import make_stack, webhook_receiver
from conftest import wait_for as _wait_for

PRICES = {
    "anthropic:claude-opus-4-8": PriceRate(10.0, 50.0),
    "anthropic:claude-sonnet-4-6": PriceRate(4.0, 20.0),
    "anthropic:claude-haiku-4-5": PriceRate(1.0, 5.0),
    "openai:gpt-5.1": PriceRate(10.0, 50.0),
    "openai:gpt-5.1-mini": PriceRate(1.0, 5.0),
}
CLOCK = SystemClock()
TINY = {"input_tokens": 10, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 10}


def usage(input_tokens: int, output_tokens: int = 0) -> dict:
    return {
        "input_tokens": input_tokens,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "output_tokens": output_tokens,
    }


def cfg(daily: float | None = None, **budget) -> Config:
    return Config(budget=Budget(caps=Caps(daily_usd=daily), **budget), prices=PRICES, alerts=Alerts(desktop=False))


def call(
    url: str, body: dict | None = None, *, use: dict | None = None, headers: dict | None = None, method: str = "POST"
) -> tuple[int, dict, bytes]:
    hdrs = {
        "content-type": "application/json",
        "x-api-key": "sk-ant-test-client",
        "authorization": "Bearer sk-test-client",
        **(headers or {}),
    }
    if use is not None:
        hdrs["x-fake-usage"] = json.dumps(use)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def text_turn(text: str, model: str = "claude-opus-4-8", stream: bool = False, **extra) -> dict:
    return {
        "model": model,
        "max_tokens": 512,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def tool_turn(n: int, *, is_error: bool, model: str = "claude-opus-4-8") -> dict:
    return {
        "model": model,
        "max_tokens": 512,
        "messages": [
            {"role": "user", "content": "run the tests"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": f"toolu_{n}", "name": "bash", "input": {"command": f"make test #{n}"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{n}",
                        "content": f"attempt {n}: exit 1",
                        "is_error": is_error,
                    }
                ],
            },
        ],
    }


def spend(stack, session: dict, usd: float, model: str = "claude-opus-4-8") -> None:
    """Spend `usd` with one request: input tokens at $10/M (opus)."""
    status, _, raw = call(
        session["anthropic"] + "/v1/messages", text_turn(f"spend {usd}", model=model), use=usage(round(usd * 100_000))
    )
    assert status == 200, raw


def posts(stack, path: str) -> list:
    return [r for r in stack.received() if r.method == "POST" and r.path == path]


@pytest.fixture
def blocked(tmp_path):
    """$0.02 spent against a $0.01 daily cap: everything billable is refused."""
    stack, close = make_stack(tmp_path, config=cfg(daily=0.01))
    s = stack.open_session()
    spend(stack, s, 0.02)
    yield stack, s
    close()


# -- refusals ----------------------------------------------------------------------------------------------


def test_the_refused_row_records_the_status_the_agent_got(blocked):
    """OpenCode retries every 429, so it is refused with a 402: its ledger row says 402, not a nominal 429."""
    stack, _ = blocked
    s = stack.open_session(agent="opencode")
    status, _, raw = call(s["anthropic"] + "/v1/messages", text_turn("hello from opencode", stream=True))
    assert status == 402 and json.loads(raw)["error"]["type"] == "billing_error"
    row = stack.rows(s["session_id"])[-1]
    assert (row["status"], row["http_status"]) == ("refused", 402)


def test_anthropic_refusal_shape(blocked):
    stack, s = blocked
    before = len(stack.received())
    status, headers, raw = call(s["anthropic"] + "/v1/messages", text_turn("hello again", stream=True))
    assert status == 429
    err = json.loads(raw)
    assert err["type"] == "error" and err["error"]["type"] == "rate_limit_error"
    msg = err["error"]["message"]
    assert msg.startswith("agentmeter: ") and '"' not in msg
    assert "daily budget of $0.01" in msg and "$0.02 spent" in msg
    end = window("day", CLOCK.now(), None).end.astimezone()
    assert f"resets {end:%a %d %b %H:%M}" in msg
    assert "agentmeter budget snooze 1h" in msg and "agentmeter budget set --daily" in msg
    assert headers["x-should-retry"] == "false"
    assert int(headers.get("retry-after", "0") or 0) <= 0
    assert not [h for h in headers if h.startswith("anthropic-ratelimit-unified")]
    assert headers["content-type"].startswith("application/json")
    assert len(stack.received()) == before, "a refused request must never reach the provider"

    row = stack.rows(s["session_id"])[-1]
    assert (row["status"], row["decision"], row["reason"], row["http_status"]) == ("refused", "refuse", "budget", 429)
    assert row["model_requested"] == "claude-opus-4-8" and not row["cost_usd"]


def test_responses_refusal_shape(blocked):
    stack, s = blocked
    before = len(stack.received())
    body = {
        "model": "gpt-5.1",
        "stream": True,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    }
    status, headers, raw = call(s["openai"] + "/responses", body)
    assert status == 429
    err = json.loads(raw)["error"]
    assert err["type"] == "usage_limit_reached" and err["code"] == "agentmeter_budget_exceeded"
    assert err["message"].startswith("agentmeter: ") and '"' not in err["message"]
    assert isinstance(err["resets_at"], int) and err["resets_at"] > CLOCK.now_ms() / 1000
    assert err["resets_at"] == int(window("day", CLOCK.now(), None).end.timestamp())
    assert headers["x-should-retry"] == "false"
    assert len(stack.received()) == before
    row = stack.rows(s["session_id"])[-1]
    assert (row["api"], row["status"], row["decision"], row["reason"]) == ("responses", "refused", "refuse", "budget")


def test_chat_refusal_shape(blocked):
    stack, s = blocked
    before = len(stack.received())
    status, headers, raw = call(
        s["openai"] + "/chat/completions", {"model": "gpt-5.1", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert status == 429
    err = json.loads(raw)["error"]
    assert err["type"] == "insufficient_quota" and err["code"] == "agentmeter_budget_exceeded"
    assert err["message"].startswith("agentmeter: ") and '"' not in err["message"]
    assert headers["x-should-retry"] == "false"
    assert len(stack.received()) == before
    row = stack.rows(s["session_id"])[-1]
    assert (row["api"], row["status"], row["decision"], row["reason"]) == ("chat", "refused", "refuse", "budget")


def test_sdk_makes_exactly_one_attempt(blocked):
    stack, s = blocked
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key="sk-ant-test-client", max_retries=3)
    with pytest.raises(anthropic.RateLimitError) as exc:
        client.messages.create(model="claude-opus-4-8", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert "agentmeter:" in str(exc.value)
    refused = [r for r in stack.rows(s["session_id"]) if r["decision"] == "refuse"]
    assert len(refused) == 1


def test_count_tokens_and_models_pass_when_blocked(blocked):
    stack, s = blocked
    status, _, raw = call(
        s["anthropic"] + "/v1/messages/count_tokens",
        {"model": "claude-opus-4-8", "messages": [{"role": "user", "content": "count me"}]},
    )
    assert status == 200 and json.loads(raw)["input_tokens"] > 0
    assert posts(stack, "/v1/messages/count_tokens")
    status, _, raw = call(s["anthropic"] + "/v1/models", method="GET")
    assert status == 200 and json.loads(raw)["data"]
    # and the billable request right after is still refused
    assert call(s["anthropic"] + "/v1/messages", text_turn("and now?"))[0] == 429


# -- downgrade --------------------------------------------------------------------------------------------


@pytest.fixture
def in_band(tmp_path):
    """$0.97 spent against a $1.00 cap: the downgrade band (95 %–110 %)."""
    stack, close = make_stack(tmp_path, config=cfg(daily=1.0, easy_turn_tokens=1000))
    s = stack.open_session()
    spend(stack, s, 0.97)
    yield stack, s
    close()


def test_fresh_easy_turn_is_downgraded_tool_continuation_is_not(in_band):
    stack, s = in_band
    url = s["anthropic"] + "/v1/messages"
    body = text_turn("summarise the diff", stream=True)
    body["messages"] = [
        {"role": "user", "content": "earlier question"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig-opus"},
                {"type": "text", "text": "earlier answer"},
            ],
        },
        {"role": "user", "content": "summarise the diff"},
    ]
    status, _, raw = call(url, body, use=TINY, headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert status == 200, raw
    got = posts(stack, "/v1/messages")[-1]
    assert got.json["model"] == "claude-sonnet-4-6"
    assert not any(
        b.get("type") == "thinking"
        for m in got.json["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
    )
    assert got.json["messages"][-1] == body["messages"][-1]
    assert got.headers.get("anthropic-beta") == "context-1m-2025-08-07"  # sonnet accepts it: kept
    row = stack.rows(s["session_id"])[-1]
    assert (row["model_requested"], row["model_used"], row["decision"]) == (
        "claude-opus-4-8",
        "claude-sonnet-4-6",
        "downgrade",
    )
    assert row["reason"].startswith("budget") and "thinking blocks" in row["reason"]

    status, _, raw = call(url, tool_turn(1, is_error=False), use=TINY)
    assert status == 200, raw
    assert posts(stack, "/v1/messages")[-1].json["model"] == "claude-opus-4-8"
    row = stack.rows(s["session_id"])[-1]
    assert (row["model_requested"], row["model_used"], row["decision"]) == (
        "claude-opus-4-8",
        "claude-opus-4-8",
        "allow",
    )


def test_plain_downgrade_is_byte_identical_apart_from_the_model(in_band):
    stack, s = in_band
    raw_body = (
        b'{"model": "claude-sonnet-4-6", "max_tokens": 300,\n "messages": '
        b'[{"role": "user", "content": "list the files \\u2713"}], "metadata": {"user_id": "u-1"}}'
    )
    req = urllib.request.Request(
        s["anthropic"] + "/v1/messages",
        data=raw_body,
        method="POST",
        headers={"content-type": "application/json", "x-api-key": "k", "x-fake-usage": json.dumps(TINY)},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    got = posts(stack, "/v1/messages")[-1]
    assert got.body_bytes == len(raw_body) - len(b"sonnet-4-6") + len(b"haiku-4-5")
    assert got.json == {**json.loads(raw_body), "model": "claude-haiku-4-5"}


def test_downgrade_to_haiku_drops_the_1m_context_beta_on_the_wire(in_band):
    stack, s = in_band
    beta = "context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    status, _, raw = call(
        s["anthropic"] + "/v1/messages",
        text_turn("quick one", model="claude-sonnet-4-6"),
        use=TINY,
        headers={"anthropic-beta": beta},
    )
    assert status == 200, raw
    got = posts(stack, "/v1/messages")[-1]
    assert got.json["model"] == "claude-haiku-4-5"
    assert got.headers.get("anthropic-beta") == "interleaved-thinking-2025-05-14"
    row = stack.rows(s["session_id"])[-1]
    assert row["decision"] == "downgrade" and "betas" in row["reason"]


def test_big_turn_keeps_the_model(in_band):
    stack, s = in_band
    status, _, _ = call(s["anthropic"] + "/v1/messages", text_turn("review this: " + "code " * 2000), use=TINY)
    assert status == 200
    assert posts(stack, "/v1/messages")[-1].json["model"] == "claude-opus-4-8"
    assert stack.rows(s["session_id"])[-1]["decision"] == "allow"


def test_responses_downgrade_drops_reasoning_items(in_band):
    stack, s = in_band
    body = {
        "model": "gpt-5.1",
        "stream": True,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB-opaque"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "now the docs"}]},
        ],
    }
    status, _, raw = call(s["openai"] + "/responses", body, use=TINY)
    assert status == 200, raw
    got = posts(stack, "/v1/responses")[-1]
    assert got.json["model"] == "gpt-5-mini"
    assert [i["type"] for i in got.json["input"]] == ["message", "message", "message"]
    row = stack.rows(s["session_id"])[-1]
    assert (row["model_requested"], row["decision"]) == ("gpt-5.1", "downgrade")


# -- loop brake ---------------------------------------------------------------------------------------------


def test_loop_brake_refuses_repeated_failing_tool_turns(stack):
    s = stack.open_session()
    url = s["anthropic"] + "/v1/messages"
    statuses = [call(url, tool_turn(n, is_error=True), use=TINY)[0] for n in range(3)]
    assert statuses == [200, 200, 200]
    status, headers, raw = call(url, tool_turn(3, is_error=True), use=TINY)
    assert status == 429
    err = json.loads(raw)["error"]
    assert err["type"] == "rate_limit_error" and "loop brake" in err["message"] and '"' not in err["message"]
    assert headers["x-should-retry"] == "false"
    assert call(url, tool_turn(4, is_error=True), use=TINY)[0] == 429
    assert len(posts(stack, "/v1/messages")) == 3
    rows = stack.rows(s["session_id"])
    assert [(r["decision"], r["reason"]) for r in rows[3:]] == [("refuse", "retry_cap")] * 2
    assert [r["loop_streak"] for r in rows] == [1, 2, 3, 4, 5]
    # the developer types something new: the brake lets go
    status, _, raw = call(url, text_turn("try a different approach"), use=TINY)
    assert status == 200, raw
    assert call(url, tool_turn(5, is_error=True), use=TINY)[0] == 200
    assert len(posts(stack, "/v1/messages")) == 5


def test_loop_brake_counts_identical_resends_after_complete_answers(stack):
    s = stack.open_session()
    url = s["anthropic"] + "/v1/messages"
    same = text_turn("same question")
    got = [call(url, same, use=TINY)[0] for _ in range(6)]
    assert got == [200, 200, 200, 200, 429, 429]
    assert stack.rows(s["session_id"])[4]["reason"] == "retry_cap"


def test_retry_after_upstream_error_is_not_a_loop(stack):
    s = stack.open_session()
    url = s["anthropic"] + "/v1/messages"
    same = text_turn("flaky upstream")
    got = [call(url, same, use=TINY, headers={"x-fake-scenario": "status:529"})[0] for _ in range(6)]
    assert got == [529] * 6  # passed through, never refused by the brake
    assert call(url, same, use=TINY)[0] == 200


# -- alerts --------------------------------------------------------------------------------------------------


@pytest.fixture
def webhook():
    with webhook_receiver("/hook") as hook:
        yield hook


def wait_for(pred, timeout: float = 5.0) -> bool:
    return _wait_for(pred, timeout)


def test_webhook_alert_fires_once_across_restarts(tmp_path, webhook):
    url, got = webhook
    config = Config(budget=Budget(caps=Caps(daily_usd=1.0)), prices=PRICES, alerts=Alerts(desktop=False, webhook=url))
    stack, close = make_stack(tmp_path, config=config)
    try:
        s = stack.open_session(developer="dev@example.com", agent="claude")
        spend(stack, s, 0.85)
        assert got == []  # the first request started at 0 %
        for n in range(4):
            assert call(s["anthropic"] + "/v1/messages", text_turn(f"more {n}"), use=TINY)[0] == 200
        assert wait_for(lambda: len(got) >= 1)
        time.sleep(0.3)
        assert len(got) == 1, got
        alert = got[0]
        assert alert["window"] == "day" and alert["threshold"] == 0.8 and alert["stage"] == "alert"
        assert alert["spent_usd"] == pytest.approx(0.85, abs=0.001) and alert["cap_usd"] == 1.0
        assert alert["developer"] == "dev@example.com" and alert["agent"] == "claude"
        assert alert["text"].startswith("agentmeter: ") and "80%" in alert["text"]
        # issue 20 item 5: personal alerts carry the projection for the period, the 7-day trend and an action
        p = alert["projection"]
        assert p["p10"] <= p["p50"] <= p["p90"] and p["p50"] >= 0.85 and p["method"] in ("run-rate", "bootstrap")
        assert p["period_end"] == p["period_start"] and "projected $" in alert["text"]
        assert len(alert["trend_7d"]["daily"]) == 7 and alert["recommended_action"]

        def recorded():
            lg = open_ledger(stack.ledger_path, readonly=True)
            try:
                return lg.alerts_since(0)
            finally:
                lg.close()

        assert wait_for(lambda: len(recorded()) == 1)
        assert recorded()[0]["channels"] == "webhook"
    finally:
        close()

    # a restarted proxy on the same ledger remembers the alert was sent
    stack, close = make_stack(tmp_path, config=config)
    try:
        s = stack.open_session(developer="dev@example.com", agent="claude")
        for n in range(3):
            assert call(s["anthropic"] + "/v1/messages", text_turn(f"after restart {n}"), use=TINY)[0] == 200
        time.sleep(0.4)
        assert len(got) == 1, got
    finally:
        close()


# -- snooze and config reload -----------------------------------------------------------------------------


def snooze(stack, until_ms: int, token: str = "test-control") -> tuple[int, dict, bytes]:
    return call(
        stack.proxy_url + "/_agentmeter/v1/snooze",
        {"until_ms": until_ms, "detail": "test"},
        headers={"authorization": f"Bearer {token}"},
    )


def test_snooze_lets_blocked_requests_through(blocked):
    stack, s = blocked
    url = s["anthropic"] + "/v1/messages"
    assert call(url, text_turn("blocked"))[0] == 429
    assert snooze(stack, CLOCK.now_ms() + 60_000, token="wrong")[0] == 401
    assert call(url, text_turn("still blocked"))[0] == 429

    status, _, raw = snooze(stack, CLOCK.now_ms() + 60_000)
    assert status == 200, raw
    before = len(posts(stack, "/v1/messages"))
    status, _, raw = call(url, text_turn("snoozed now"), use=TINY)
    assert status == 200, raw
    assert len(posts(stack, "/v1/messages")) == before + 1
    assert stack.rows(s["session_id"])[-1]["decision"] == "allow"
    lg = open_ledger(stack.ledger_path, readonly=True)
    try:
        assert lg.snoozed_until(CLOCK.now_ms()) is not None
    finally:
        lg.close()

    # snooze off: refusals resume
    assert snooze(stack, CLOCK.now_ms())[0] == 200
    assert call(url, text_turn("off again"))[0] == 429


def test_config_reload_raises_the_cap_without_restart(blocked, tmp_path):
    stack, s = blocked
    url = s["anthropic"] + "/v1/messages"
    path = tmp_path / "cfg" / "config.toml"
    path.parent.mkdir()
    path.write_text("[budget]\ndaily_usd = 0.01\n")
    stack.state.enforcer.config_path = path  # what the daemon sets: its config.toml
    assert call(url, text_turn("blocked 1"))[0] == 429

    path.write_text("[budget]\ndaily_usd = 50.0\n")
    t0 = time.monotonic()
    n = 0
    while True:
        n += 1
        status, _, raw = call(url, text_turn(f"poll {n}"), use=TINY)
        if status == 200 or time.monotonic() - t0 > 5:
            break
        time.sleep(0.05)
    assert status == 200, raw
    assert time.monotonic() - t0 < 2.5, "the raised cap should apply within about a second"
    assert stack.state.enforcer.config.budget.caps.daily_usd == 50.0

    # a broken edit keeps the last good config
    path.write_text("[budget\ndaily_usd = 0.01\n")
    time.sleep(1.1)
    assert call(url, text_turn("after a bad edit"), use=TINY)[0] == 200
    assert stack.state.enforcer.config.budget.caps.daily_usd == 50.0


# -- session and per-agent caps -----------------------------------------------------------------------------


def test_session_budget_refuses_only_that_session(tmp_path):
    stack, close = make_stack(tmp_path, config=cfg())
    try:
        capped = stack.open_session(budget_usd=0.05)
        other = stack.open_session()
        spend(stack, capped, 0.06)
        status, _, raw = call(capped["anthropic"] + "/v1/messages", text_turn("one more"))
        assert status == 429
        msg = json.loads(raw)["error"]["message"]
        assert "session budget of $0.05" in msg and "$0.06 spent" in msg and '"' not in msg
        row = stack.rows(capped["session_id"])[-1]
        assert (row["decision"], row["reason"]) == ("refuse", "budget")
        # another session (no --budget) is unaffected
        assert call(other["anthropic"] + "/v1/messages", text_turn("other session"), use=TINY)[0] == 200
    finally:
        close()


def test_agent_sub_cap_refusal_names_the_agent_and_its_override(tmp_path):
    stack, close = make_stack(tmp_path, config=cfg(agents={"codex": Caps(daily_usd=0.05)}))
    try:
        codex = stack.open_session(agent="codex")
        claude = stack.open_session(agent="claude")
        spend(stack, codex, 0.06)
        assert call(claude["anthropic"] + "/v1/messages", text_turn("claude is fine"), use=TINY)[0] == 200
        body = {
            "model": "gpt-5.1",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "codex again"}]}],
        }
        status, _, raw = call(codex["openai"] + "/responses", body)
        assert status == 429
        err = json.loads(raw)["error"]
        assert err["type"] == "usage_limit_reached" and isinstance(err["resets_at"], int)
        msg = err["message"]
        assert "codex" in msg and "$0.05" in msg and "$0.06 spent" in msg
        # the way to raise an agent's own cap is `budget set --agent codex --daily …`, not a run flag
        assert "agentmeter budget set --agent codex --daily" in msg, msg
    finally:
        close()


def test_cheapest_model_is_not_downgraded(in_band):
    stack, s = in_band
    for model, url, body in (
        ("claude-haiku-4-5", s["anthropic"] + "/v1/messages", text_turn("cheap already", model="claude-haiku-4-5")),
        (
            "gpt-5.1-mini",
            s["openai"] + "/responses",
            {
                "model": "gpt-5.1-mini",
                "input": [
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "cheap already"}]}
                ],
            },
        ),
    ):
        status, _, raw = call(url, body, use=TINY)
        assert status == 200, raw
        row = stack.rows(s["session_id"])[-1]
        assert (row["model_requested"], row["model_used"]) == (model, model)
        assert row["decision"] == "allow", f"{model} recorded as {row['decision']} ({row['reason']})"


def test_a_tag_value_mentioning_no_downgrade_does_not_pin_the_model(tmp_path):
    """Issue 14.12: only the no_downgrade tag *key* (set by run --no-downgrade) pins the model."""
    stack, close = make_stack(tmp_path, config=cfg(daily=1.0, easy_turn_tokens=1000))
    try:
        s = stack.open_session(tags={"ticket": "fix the no_downgrade flag"})
        spend(stack, s, 0.97)
        status, _, raw = call(s["anthropic"] + "/v1/messages", text_turn("summarise"), use=TINY)
        assert status == 200, raw
        assert posts(stack, "/v1/messages")[-1].json["model"] == "claude-sonnet-4-6"

        pinned = stack.open_session(tags={"no_downgrade": "1"})
        status, _, raw = call(pinned["anthropic"] + "/v1/messages", text_turn("summarise"), use=TINY)
        assert status == 200, raw
        assert posts(stack, "/v1/messages")[-1].json["model"] == "claude-opus-4-8"
    finally:
        close()
