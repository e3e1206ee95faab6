"""Issue 14.5 and 14.7: no route that can spend money goes around a blown cap, a client-set oauth beta does
not turn API-key traffic into alert-only subscription traffic, and the virtual key never reaches the
provider whatever the header's case. Real proxy, real fake provider, real SQLite."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request

import pytest

from agentmeter.core.models import PriceRate
from agentmeter.home.config import Alerts, Budget, Caps, Config
from conftest import make_stack

PRICES = {"anthropic:claude-haiku-4-5": PriceRate(10.0, 50.0), "openai:gpt-5.1-mini": PriceRate(10.0, 50.0)}


def call(url: str, body: dict | None = None, headers: dict | None = None, method: str = "POST"):
    hdrs = {"content-type": "application/json", **(headers or {})}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def blown(tmp_path):
    """A $0.10 daily cap with $1.00 already spent: every billable request must be refused."""
    cfg = Config(budget=Budget(caps=Caps(daily_usd=0.10)), prices=PRICES, alerts=Alerts(desktop=False))
    stack, close = make_stack(tmp_path, config=cfg)
    s = stack.open_session()
    status, raw = call(
        s["anthropic"] + "/v1/messages",
        {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]},
        {
            "x-api-key": "sk-ant-test-client",
            "x-fake-usage": json.dumps(
                {"input_tokens": 100_000, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 0}
            ),
        },
    )
    assert status == 200, raw
    yield stack, s
    close()


SPENDING = [
    (
        "anthropic",
        "/v1/messages/batches",
        {
            "requests": [
                {
                    "custom_id": "a",
                    "params": {
                        "model": "claude-haiku-4-5",
                        "max_tokens": 10,
                        "messages": [{"role": "user", "content": "x"}],
                    },
                }
            ]
        },
    ),
    (
        "anthropic",
        "/v1/complete",
        {"model": "claude-2.1", "prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 10},
    ),
    ("openai", "/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "hi"}),
    ("openai", "/embeddings", {"model": "text-embedding-3-small", "input": "hi"}),
    ("openai", "/batches", {"input_file_id": "file-x", "endpoint": "/v1/responses", "completion_window": "24h"}),
    ("openai", "/images/generations", {"model": "gpt-image-1", "prompt": "a cat"}),
    ("openai", "/some/route/added/next/year", {"model": "gpt-9"}),
]


@pytest.mark.parametrize(("provider", "path", "body"), SPENDING, ids=[p for _, p, _ in SPENDING])
def test_spending_routes_are_refused_at_a_blown_cap(blown, provider, path, body):
    stack, s = blown
    before = len(stack.received())
    headers = (
        {"x-api-key": "sk-ant-test-client"} if provider == "anthropic" else {"authorization": "Bearer sk-test-client"}
    )
    status, raw = call(s[provider] + path, body, headers)
    assert status == 429, raw
    err = json.loads(raw)
    if provider == "anthropic":
        assert err["error"]["type"] == "rate_limit_error"
    else:
        assert err["error"]["code"] == "agentmeter_budget_exceeded"
    assert err["error"]["message"].startswith("agentmeter: ")
    assert len(stack.received()) == before, "a refused request reached the provider"
    row = stack.rows(s["session_id"])[-1]
    assert (row["status"], row["decision"]) == ("refused", "refuse")


FREE = [
    ("anthropic", "POST", "/v1/messages/count_tokens", {"model": "claude-haiku-4-5", "messages": []}),
    ("anthropic", "GET", "/v1/messages/batches/msgbatch_1/results", None),
    ("anthropic", "GET", "/v1/models", None),
    ("openai", "POST", "/moderations", {"input": "hi"}),
    ("openai", "POST", "/batches/batch_1/cancel", None),
    ("openai", "DELETE", "/files/file-1", None),
]


@pytest.mark.parametrize(("provider", "method", "path", "body"), FREE, ids=[f"{m} {p}" for _, m, p, _ in FREE])
def test_routes_that_cannot_spend_still_pass_at_a_blown_cap(blown, provider, method, path, body):
    stack, s = blown
    headers = (
        {"x-api-key": "sk-ant-test-client"} if provider == "anthropic" else {"authorization": "Bearer sk-test-client"}
    )
    status, raw = call(s[provider] + path, body, headers, method=method)
    assert status == 200, raw
    assert stack.received()[-1].path.endswith(path.split("?")[0])


def test_a_spending_route_under_the_cap_is_relayed_and_recorded_unmetered(tmp_path):
    cfg = Config(budget=Budget(caps=Caps(daily_usd=100.0)), prices=PRICES, alerts=Alerts(desktop=False))
    stack, close = make_stack(tmp_path, config=cfg)
    try:
        s = stack.open_session()
        status, raw = call(s["anthropic"] + "/v1/messages/batches", SPENDING[0][2], {"x-api-key": "sk-ant-test-client"})
        assert status == 200, raw
        assert stack.received()[-1].path == "/v1/messages/batches"
        # a route without a terminal event commits its row just after the answer: wait for it
        deadline = time.monotonic() + 10
        while not stack.rows(s["session_id"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        row = stack.rows(s["session_id"])[-1]
        assert row["status"] == "unmetered" and row["unmetered"]
        assert "can spend money" in row["reason"]
        assert stack.state.enforcer.in_flight == 0
    finally:
        close()


def test_client_set_oauth_beta_does_not_make_api_key_traffic_alert_only(blown):
    stack, s = blown
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    status, raw = call(
        s["anthropic"] + "/v1/messages",
        body,
        {"x-api-key": "sk-ant-api03-test-client", "anthropic-beta": "oauth-2025-04-20"},
    )
    assert status == 429, raw
    row = stack.rows(s["session_id"])[-1]
    assert row["decision"] == "refuse" and not row["subscription"]
    # an API key as a bearer token, with the scheme in another case, is no subscription either
    status, raw = call(
        s["anthropic"] + "/v1/messages",
        body,
        {"authorization": "bearer sk-ant-api03-test-client", "anthropic-beta": "oauth-2025-04-20"},
    )
    assert status == 429, raw
    assert not stack.rows(s["session_id"])[-1]["subscription"]
    # a real subscription login (OAuth bearer, no API key) stays alert-only by default
    status, raw = call(
        s["anthropic"] + "/v1/messages",
        body,
        {
            "authorization": "Bearer sk-ant-oat01-test",
            "anthropic-beta": "oauth-2025-04-20",
            "x-fake-usage": json.dumps(
                {"input_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 1}
            ),
        },
    )
    assert status == 200, raw
    assert stack.rows(s["session_id"])[-1]["subscription"]


REAL_ANTHROPIC = "sk-ant-test-REALKEY000000000000"


@pytest.mark.parametrize("header", ["X-API-KEY", "x-Api-key", "X-Api-Key", "x-api-key"])
def test_key_mode_swaps_the_virtual_key_whatever_the_header_case(tmp_path, header):
    stack, close = make_stack(tmp_path, keys={"anthropic": REAL_ANTHROPIC})
    try:
        s = stack.loop.run(stack.state.sessions.open({"agent": "test"}))
        url = f"{stack.proxy_url}/s/{s['token']}/anthropic/v1/messages"
        vkey = s["virtual_key"]
        body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        # http.client sends the header name exactly as written (urllib would re-case it)
        port = int(stack.proxy_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        conn.putrequest("POST", url.split(f":{port}", 1)[1])
        data = json.dumps(body).encode()
        for name, value in (("Content-Type", "application/json"), ("Content-Length", str(len(data))), (header, vkey)):
            conn.putheader(name, value)
        conn.endheaders(data)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        assert resp.status == 200, raw
        got = stack.received()[-1].headers
        assert got.get("x-api-key") == REAL_ANTHROPIC
        assert not any("amk_" in v for v in got.values()), "the virtual key reached the provider"
    finally:
        close()


def test_a_foreign_virtual_key_never_reaches_the_provider(key_stack):
    stack = key_stack
    s = stack.open_session()
    before = len(stack.received())
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    status, raw = call(s["anthropic"] + "/v1/messages", body, {"X-Api-Key": "amk_not-this-sessions-key"})
    assert status == 401, raw
    assert len(stack.received()) == before
