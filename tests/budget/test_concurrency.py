"""Reservations under concurrency: N parallel requests against a nearly full cap never overshoot
`block_at × cap` by more than one request's cost, and a leaked reservation never blocks anyone for long
(DESIGN section 4)."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
import urllib.request

import aiohttp
import pytest

from agentmeter.core.models import PriceRate
from agentmeter.home.config import Alerts, Budget, Caps, Config
from agentmeter.providers.request import read_body
from conftest import make_stack

MODEL = "claude-haiku-4-5"  # the bottom of the ladder: no downgrade changes the price mid-test
RATE = PriceRate(input=10.0, output=50.0)
CAP = 1.0
BLOCK_AT = 1.1


def config(cap: float = CAP) -> Config:
    return Config(
        budget=Budget(caps=Caps(daily_usd=cap), block_at=BLOCK_AT),
        prices={f"anthropic:{MODEL}": RATE},
        alerts=Alerts(desktop=False),
    )


def body(i: int, text_bytes: int = 4000, max_tokens: int = 800, stream: bool = True) -> bytes:
    raw = json.dumps(
        {
            "model": MODEL,
            "max_tokens": max_tokens,
            "stream": stream,
            "messages": [{"role": "user", "content": f"request {i} "}],
        }
    )
    # pad the text so the body is exactly text_bytes long: the reservation estimates len(body) // 4 tokens
    pad = text_bytes - len(raw)
    return raw.replace(f"request {i} ", f"request {i} " + "x" * pad).encode()


def usage_header(input_tokens: int, output_tokens: int) -> str:
    return json.dumps(
        {"input_tokens": input_tokens, "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": output_tokens}
    )


def post(url: str, data: bytes, usage: str) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"content-type": "application/json", "x-api-key": "sk-ant-test-client", "x-fake-usage": usage},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def ledger_cost(stack) -> float:
    return sum(r["cost_usd"] or 0.0 for r in stack.rows())


@pytest.fixture
def near_full(tmp_path):
    stack, close = make_stack(tmp_path, config=config())
    stack.configure(pace_ms=15)  # keep every stream open long enough for all requests to overlap
    yield stack
    close()


def test_parallel_streams_never_overshoot_the_cap(near_full):
    stack = near_full
    s = stack.open_session()
    url = s["anthropic"] + "/v1/messages"
    # $0.90 already spent: 90 000 input tokens at $10/M
    status, _, _ = post(url, body(0, stream=False), usage_header(90_000, 0))
    assert status == 200
    assert ledger_cost(stack) == pytest.approx(0.90)

    # each request: 4000 bytes → 1000 input tokens ($0.01) + 800 output tokens ($0.04) = $0.05, exactly
    # what its reservation estimates
    n, each = 30, 0.05
    bodies = [body(i + 1) for i in range(n)]
    usage = usage_header(1000, 800)

    async def one(http: aiohttp.ClientSession, data: bytes):
        async with http.post(
            url,
            data=data,
            headers={"content-type": "application/json", "x-api-key": "sk-ant-test-client", "x-fake-usage": usage},
        ) as r:
            return r.status, dict(r.headers), await r.read()

    async def burst():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            return await asyncio.gather(*(one(http, b) for b in bodies))

    results = asyncio.run(burst())
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(ok) + len(refused) == n, [r[0] for r in results]
    assert ok, "some requests should fit under the cap"
    assert refused, "the cap must refuse some of 30 parallel requests"

    total = ledger_cost(stack)
    assert total <= BLOCK_AT * CAP + each + 1e-9, f"spent ${total:.4f} with a cap of ${CAP} × {BLOCK_AT}"
    # the cap is not needlessly strict either: requests were admitted right up to the block point
    assert total >= BLOCK_AT * CAP - each - 1e-9

    for _status, headers, raw in refused:
        err = json.loads(raw)
        assert err["type"] == "error" and err["error"]["type"] == "rate_limit_error"
        assert err["error"]["message"].startswith("agentmeter: ")
        assert headers.get("x-should-retry") == "false"

    # every admitted request's reservation was released; nothing is left in flight
    assert stack.state.enforcer.in_flight == 0
    rows = stack.rows(s["session_id"])
    assert sum(r["decision"] == "refuse" for r in rows) == len(refused)
    assert sum(r["status"] == "ok" for r in rows) == len(ok) + 1
    # refused requests never reached the provider
    assert len([r for r in stack.received() if r.path == "/v1/messages"]) == len(ok) + 1


def test_leaked_reservation_expires_and_never_blocks_later_requests(tmp_path, monkeypatch):
    import agentmeter.proxy.enforce as enforce

    monkeypatch.setattr(enforce, "RESERVATION_TTL_S", 0.6)
    stack, close = make_stack(tmp_path, config=config(cap=0.05))
    try:
        s = stack.open_session()
        url = s["anthropic"] + "/v1/messages"
        session = stack.state.sessions.lookup(s["token"])

        async def leak():
            # a request whose handler died after the check: its reservation is never released
            plain = body(999, text_bytes=100_000, max_tokens=8192, stream=False)
            chk = stack.state.enforcer.check(
                request_id="amr_leaked",
                session=session,
                provider="anthropic",
                api="messages",
                model=MODEL,
                body=read_body(plain),
                body_len=len(plain),
                subscription=False,
                agent_session=None,
                billable=True,
            )
            return chk.decision.action, stack.state.enforcer.in_flight

        action, in_flight = stack.loop.run(leak())
        assert action == "allow" and in_flight == 1
        leaked_at = time.monotonic()

        small = usage_header(10, 10)
        status, _, raw = post(url, body(1, stream=False), small)
        if time.monotonic() - leaked_at < 0.5:
            # while it lives, the reservation counts: $0.25 + $0.41 reserved against a $0.05 cap
            assert status == 429, raw
            assert json.loads(raw)["error"]["type"] == "rate_limit_error"

        deadline = time.monotonic() + 5
        i = 2
        while True:
            status, _, raw = post(url, body(i, stream=False), small)
            if status == 200 or time.monotonic() > deadline:
                break
            i += 1
            time.sleep(0.1)
        assert status == 200, f"the leaked reservation still blocks after {time.monotonic() - leaked_at:.1f} s: {raw}"
        assert time.monotonic() - leaked_at < 0.6 + 1.5
        assert stack.state.enforcer.in_flight == 0
        rows = stack.rows(s["session_id"])
        assert rows[-1]["status"] == "ok" and rows[-1]["decision"] == "allow"
    finally:
        close()


def test_reservation_ttl_outlives_a_long_stream(tmp_path):
    """A reservation held by a live stream keeps counting while the stream runs (default TTL), and is gone
    the moment that stream's row commits."""
    stack, close = make_stack(tmp_path, config=config(cap=0.04))
    try:
        s = stack.open_session()
        url = s["anthropic"] + "/v1/messages"
        import threading

        result: dict = {}

        def slow():
            req = urllib.request.Request(
                url,
                data=body(1),
                method="POST",
                headers={
                    "content-type": "application/json",
                    "x-api-key": "k",
                    "x-fake-usage": usage_header(1000, 800),
                    "x-fake-scenario": "stall:1.0",
                },
            )
            with urllib.request.urlopen(req, timeout=15) as r:
                result["status"] = r.status
                r.read()

        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 5
        while stack.state.enforcer.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stack.state.enforcer.in_flight == 1
        # $0.05 reserved against a $0.04 cap: a second request is refused while the first is in flight
        status, _, raw = post(url, body(2), usage_header(1000, 800))
        assert status == 429, raw
        t.join(10)
        assert result["status"] == 200
        assert stack.state.enforcer.in_flight == 0
    finally:
        close()


@pytest.mark.parametrize("scenario", ["status:529", "status:400", "reset", "truncate", "error_event"])
def test_every_ending_releases_its_reservation(tmp_path, scenario):
    stack, close = make_stack(tmp_path, config=config(cap=0.04))
    try:
        s = stack.open_session()
        url = s["anthropic"] + "/v1/messages"
        req = urllib.request.Request(
            url,
            data=body(1),
            method="POST",
            headers={
                "content-type": "application/json",
                "x-api-key": "k",
                "x-fake-usage": usage_header(1000, 800),
                "x-fake-scenario": scenario,
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                r.read()
        except (urllib.error.HTTPError, OSError, http.client.HTTPException):
            pass
        assert wait(lambda: stack.state.enforcer.in_flight == 0), "the reservation outlived its request"
        # the failed request did not leave $0.05 reserved against the $0.04 cap
        status, _, raw = post(url, body(2), usage_header(10, 10))
        assert status == 200, raw
    finally:
        close()


def test_client_disconnect_releases_its_reservation(tmp_path):
    stack, close = make_stack(tmp_path, config=config(cap=0.04))
    try:
        s = stack.open_session()
        stack.configure(pace_ms=200)
        conn, resp = stack.raw_post(
            s["anthropic"] + "/v1/messages",
            body(1),
            {"content-type": "application/json", "x-api-key": "k", "x-fake-usage": usage_header(1000, 800)},
        )
        assert resp.status == 200
        resp.read1(64)
        assert stack.state.enforcer.in_flight == 1
        conn.sock.close()
        conn.close()
        assert wait(lambda: stack.state.enforcer.in_flight == 0, 5), "a dropped client leaked its reservation"
        stack.configure(pace_ms=0)
        rows = stack.rows(s["session_id"])
        assert rows and rows[-1]["status"] == "partial"
    finally:
        close()


def test_an_agent_hanging_up_on_a_whole_body_still_gets_its_usage_recorded(tmp_path):
    """A non-streamed answer was generated before its headers came, and the provider bills all of it: an agent
    that hangs up after the headers (Ctrl-C, a timeout) does not make it free. The proxy reads the rest of the
    body for its usage; the row is `ok`, the hang-up named on it. (A stream is different: closing upstream
    stops its generation, and it stays `partial`.)"""
    stack, close = make_stack(tmp_path, config=config(cap=100.0))
    try:
        s = stack.open_session()
        conn, resp = stack.raw_post(
            s["anthropic"] + "/v1/messages",
            body(1, stream=False),
            {
                "content-type": "application/json",
                "x-api-key": "k",
                "x-fake-usage": usage_header(1000, 800),
                "x-fake-scenario": "stall:1.0",  # the headers and half the body, then the rest a second later
            },
        )
        assert resp.status == 200
        conn.sock.close()
        conn.close()
        assert wait(lambda: stack.state.enforcer.in_flight == 0, 10), "a dropped client leaked its reservation"
        rows = stack.rows(s["session_id"])
        assert len(rows) == 1, rows
        row = rows[0]
        assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 1000, 800), row
        assert row["cost_usd"] and row["cost_usd"] > 0 and "hung up" in (row["reason"] or ""), row
    finally:
        close()


def wait(pred, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def test_long_answers_in_parallel_overshoot_by_at_most_one_request(tmp_path):
    """Issue 14.3: 30 parallel streams whose answers are 32,000 output tokens. Reservations used to assume
    at most 8,192 output tokens, so spend passed the refusal line by 12.8× one request's cost; they now
    take the request's own max_tokens (capped by the model's real limit)."""
    cap = 20.0
    stack, close = make_stack(tmp_path, config=config(cap=cap))
    try:
        stack.configure(pace_ms=15)
        s = stack.open_session()
        url = s["anthropic"] + "/v1/messages"
        # $15 already spent: 1.5M input tokens at $10/M
        status, _, _ = post(url, body(0, stream=False), usage_header(1_500_000, 0))
        assert status == 200
        # each: 4000 bytes → 1000 input ($0.01) + 32,000 output ($1.60) = $1.61
        n, each = 30, 1.61
        usage = usage_header(1000, 32_000)

        async def one(http: aiohttp.ClientSession, data: bytes):
            async with http.post(
                url,
                data=data,
                headers={"content-type": "application/json", "x-api-key": "sk-ant-test-client", "x-fake-usage": usage},
            ) as r:
                return r.status, await r.read()

        async def burst():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                return await asyncio.gather(*(one(http, body(i + 1, max_tokens=32_000)) for i in range(n)))

        results = asyncio.run(burst())
        ok = [r for r in results if r[0] == 200]
        assert len(ok) + sum(r[0] == 429 for r in results) == n, [r[0] for r in results]
        total = ledger_cost(stack)
        line = BLOCK_AT * cap
        overshoot = (total - line) / each
        assert total <= line + each + 1e-6, f"spent ${total:.2f}: {overshoot:.1f}× one request past ${line:.2f}"
        assert ok and total >= line - each - 1e-6  # and not needlessly strict
        assert stack.state.enforcer.in_flight == 0
    finally:
        close()


def test_reservation_output_follows_max_tokens_capped_by_the_model_limit():
    from agentmeter.budget.limits import DEFAULT_CEILING, output_ceiling, reserved_output_tokens

    assert reserved_output_tokens("anthropic", "claude-haiku-4-5", 32_000) == 32_000
    assert reserved_output_tokens("anthropic", "claude-haiku-4-5", 10**12) == 64_000  # the model's real limit
    assert reserved_output_tokens("anthropic", "claude-opus-4-1-20250805", 10**6) == 32_000
    assert reserved_output_tokens("openai", "gpt-5.1-codex", None) == 128_000  # no max_output_tokens: the limit
    assert reserved_output_tokens("openai", "gpt-4.1-mini", None) == 32_768
    assert output_ceiling("openai", "a-model-from-next-year") == DEFAULT_CEILING
    assert reserved_output_tokens("anthropic", "claude-sonnet-4-5", True) == 64_000  # a bool is not a limit


def test_reservation_expiry_follows_the_enforcers_clock(tmp_path):
    """Issue 14.12: reservations expire on the enforcer's clock, not on time.monotonic() read directly."""
    from datetime import UTC, datetime

    from agentmeter.core.clock import FixedClock
    from agentmeter.core.models import Session
    from agentmeter.core.timezone import resolve_tz
    from agentmeter.ledger import open_ledger
    from agentmeter.ledger.store import SpendTotals
    from agentmeter.proxy.enforce import RESERVATION_TTL_S, Enforcer

    clock = FixedClock(datetime(2026, 12, 4, 12, tzinfo=UTC))
    ledger = open_ledger(tmp_path / "ledger.db")
    try:
        tz = resolve_tz("UTC")
        enforcer = Enforcer(config(cap=0.05), ledger, SpendTotals(tz), tz, clock)
        session = Session(id="s1", agent="test", started_at_ms=0)
        plain = body(1, text_bytes=100_000, max_tokens=8192, stream=False)
        first = enforcer.check(
            request_id="r1",
            session=session,
            provider="anthropic",
            api="messages",
            model=MODEL,
            body=read_body(plain),
            body_len=len(plain),
            subscription=False,
            agent_session=None,
            billable=True,
        )
        assert first.decision.action == "allow" and enforcer.in_flight == 1
        small = body(2, text_bytes=200, max_tokens=10, stream=False)
        again = enforcer.check(
            request_id="r2",
            session=session,
            provider="anthropic",
            api="messages",
            model=MODEL,
            body=read_body(small),
            body_len=len(small),
            subscription=False,
            agent_session=None,
            billable=True,
        )
        assert again.decision.action == "refuse"  # r1's reservation counts
        clock.advance(RESERVATION_TTL_S + 1)  # only the injected clock moves
        later = enforcer.check(
            request_id="r3",
            session=session,
            provider="anthropic",
            api="messages",
            model=MODEL,
            body=read_body(small),
            body_len=len(small),
            subscription=False,
            agent_session=None,
            billable=True,
        )
        assert later.decision.action == "allow", "the expired reservation still counted"
    finally:
        ledger.close()
