"""The Gemini API through the real proxy and the fake provider on loopback: the three response shapes
metered into the contract's buckets, the key swapped in the header or the `key` query parameter, countTokens
never refused, the refusal in Gemini's own shape, the downgrade rewriting the model in the URL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from agentmeter.home.config import Config
from conftest import make_stack

REAL = "AIza-test-REALGEMINIKEY000000000000"
USAGE = {
    "input_tokens": 700,
    "cache_read_tokens": 300,
    "cache_write_tokens": 0,
    "output_tokens": 90,
    "reasoning_tokens": 40,
    "tool_use_prompt_tokens": 5,
}


@pytest.fixture
def gstack(tmp_path):
    s, close = make_stack(tmp_path, keys={"gemini": REAL})
    s.configure(usage=USAGE)
    yield s
    close()


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


BODY = {"contents": [{"role": "user", "parts": [{"text": "say hello"}]}]}


def expect_buckets(row: dict) -> None:
    # promptTokenCount 1000 includes 300 cached; +5 tool-use prompt; output = candidates 50 + thoughts 40.
    assert (
        row["input_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["output_tokens"],
        row["reasoning_tokens"],
    ) == (705, 300, 0, 90, 40)
    assert row["provider"] == "gemini" and row["api"] == "generate_content"
    assert row["status"] == "ok" and row["cost_usd"] > 0 and row["price_source"] == "genai-prices"


@pytest.mark.parametrize("path", [":streamGenerateContent?alt=sse", ":streamGenerateContent", ":generateContent"])
def test_each_response_shape_is_metered_and_the_key_swapped(gstack, path):
    s = gstack.open_session(agent="gemini")
    status, raw, _ = post(
        f"{s['gemini']}/v1beta/models/gemini-2.5-flash{path}", BODY, {"x-goog-api-key": s["virtual_key"]}
    )
    assert status == 200 and b"Hello" in raw
    got = gstack.received()[-1]
    assert got.headers["x-goog-api-key"] == REAL
    assert s["virtual_key"] not in json.dumps(got.headers) + got.query
    rows = gstack.rows(s["session_id"])
    assert len(rows) == 1
    expect_buckets(rows[0])
    assert rows[0]["model_requested"] == "gemini-2.5-flash"
    assert bool(rows[0]["stream"]) == ("stream" in path)


def test_key_in_query_parameter_is_swapped_into_the_header(gstack):
    s = gstack.open_session(agent="gemini")
    status, _, _ = post(
        f"{s['gemini']}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={s['virtual_key']}", BODY
    )
    assert status == 200
    got = gstack.received()[-1]
    assert got.headers["x-goog-api-key"] == REAL
    assert "key=" not in got.query and got.query == "alt=sse"


def test_a_wrong_key_is_not_swapped(gstack):
    s = gstack.open_session(agent="gemini")
    post(f"{s['gemini']}/v1beta/models/gemini-2.5-flash:generateContent", BODY, {"x-goog-api-key": "AIza-other"})
    assert gstack.received()[-1].headers["x-goog-api-key"] == "AIza-other"


def test_bad_session_token_gets_a_google_shaped_401(gstack):
    status, raw, _ = post(f"{gstack.proxy_url}/s/nope/gemini/v1beta/models/gemini-2.5-flash:generateContent", BODY)
    err = json.loads(raw)["error"]
    assert status == 401 and err["status"] == "UNAUTHENTICATED" and err["code"] == 401
    assert err["message"].startswith("agentmeter: ")


def capped(tmp_path, **budget):
    from agentmeter.home.config import Budget, Caps

    caps = Caps(**budget)
    cfg = Config(budget=Budget(caps=caps))
    s, close = make_stack(tmp_path, keys={"gemini": REAL}, config=cfg)
    s.configure(usage={**USAGE, "input_tokens": 400_000})
    return s, close


def test_refusal_is_resource_exhausted_and_count_tokens_still_passes(tmp_path):
    s, close = capped(tmp_path, daily_usd=0.01)
    try:
        sess = s.open_session(agent="gemini")
        url = f"{sess['gemini']}/v1beta/models/gemini-2.5-pro"
        hdr = {"x-goog-api-key": sess["virtual_key"]}
        assert post(url + ":generateContent", BODY, hdr)[0] == 200  # spends past the cap
        seen = len(s.received())
        status, raw, _ = post(url + ":streamGenerateContent?alt=sse", BODY, hdr)
        assert status == 429
        err = json.loads(raw)["error"]
        assert err["code"] == 429 and err["status"] == "RESOURCE_EXHAUSTED"
        assert err["message"].startswith("agentmeter: daily budget of $0.01 reached")
        retry = next(d for d in err["details"] if d["@type"].endswith("RetryInfo"))
        assert int(retry["retryDelay"].rstrip("s")) > 300  # Gemini CLI treats it as terminal
        assert len(s.received()) == seen  # the provider never heard of it
        status, raw, _ = post(url + ":countTokens", BODY, hdr)
        assert status == 200 and "totalTokens" in json.loads(raw)
        assert [r["status"] for r in s.rows(sess["session_id"])] == ["ok", "refused", "passthrough"]
    finally:
        close()


def test_downgrade_moves_down_the_gemini_cascade_in_the_url(tmp_path):
    from agentmeter.home.config import Budget, Caps

    cfg = Config(budget=Budget(caps=Caps(daily_usd=1.0), alert_at=0.5, downgrade_at=0.6, block_at=100.0))
    s, close = make_stack(tmp_path, keys={"gemini": REAL}, config=cfg)
    try:
        sess = s.open_session(agent="gemini")
        hdr = {"x-goog-api-key": sess["virtual_key"]}
        s.configure(usage={**USAGE, "input_tokens": 400_000})
        post(f"{sess['gemini']}/v1beta/models/gemini-2.5-pro:generateContent", BODY, hdr)  # ~$1.6 at long context
        s.configure(usage=USAGE)
        status, _, _ = post(f"{sess['gemini']}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", BODY, hdr)
        assert status == 200
        assert s.received()[-1].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
        row = s.rows(sess["session_id"])[-1]
        assert (row["decision"], row["model_requested"], row["model_used"]) == (
            "downgrade",
            "gemini-2.5-pro",
            "gemini-2.5-flash",
        )
    finally:
        close()


def test_long_context_tier_is_priced(gstack):
    """gemini-2.5-pro above 200k prompt tokens bills every token at the higher tier (genai-prices data)."""
    s = gstack.open_session(agent="gemini")
    hdr = {"x-goog-api-key": s["virtual_key"]}
    url = f"{s['gemini']}/v1beta/models/gemini-2.5-pro:generateContent"
    gstack.configure(usage={"input_tokens": 100_000, "cache_read_tokens": 0, "output_tokens": 1000})
    post(url, BODY, hdr)
    gstack.configure(usage={"input_tokens": 250_000, "cache_read_tokens": 0, "output_tokens": 1000})
    post(url, BODY, hdr)
    short, long_ = gstack.rows(s["session_id"])
    assert short["cost_usd"] == pytest.approx(100_000 * 1.25e-6 + 1000 * 10e-6)
    assert long_["cost_usd"] == pytest.approx(250_000 * 2.5e-6 + 1000 * 15e-6)


def test_hanging_up_on_the_json_array_stream_stops_it_there(gstack):
    """`streamGenerateContent` without alt=sse is a stream sent as one JSON array: an agent that hangs up on it
    ends it (the proxy closes upstream, the generation stops) and the row is `partial` — the proxy does not
    read the rest as it does for a whole non-streamed body."""
    import time

    s = gstack.open_session()
    conn, resp = gstack.raw_post(
        s["gemini"] + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        json.dumps(BODY).encode(),
        {"Content-Type": "application/json", "x-goog-api-key": s["virtual_key"], "x-fake-scenario": "stall:1.0"},
    )
    assert resp.status == 200  # the headers only: the proxy holds the body's last chunk until its row is written
    conn.sock.close()
    conn.close()
    deadline = time.monotonic() + 10
    while not gstack.rows(s["session_id"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = gstack.rows(s["session_id"])
    assert [r["status"] for r in rows] == ["partial"], [(r["status"], r["reason"]) for r in rows]
