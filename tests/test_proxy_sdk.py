"""Through the real proxy to a real fake provider, with the official SDKs as clients."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import anthropic
import openai
import pytest
import zstandard

FAKE_KEY = "sk-ant-test-client-key-0000"


def one_row(stack, session_id):
    rows = stack.rows(session_id)
    assert len(rows) == 1, rows
    return rows[0]


def test_anthropic_stream_exact_buckets(stack):
    s = stack.open_session()
    stack.configure(
        usage={
            "input_tokens": 3,
            "cache_read_tokens": 18230,
            "cache_write_tokens": 1204,
            "cache_write_1h_tokens": 1204,
            "output_tokens": 58,
        }
    )
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    with client.messages.stream(
        model="claude-sonnet-4-5-20250929", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as st:
        text = "".join(st.text_stream)
        final = st.get_final_message()
    assert text == "Hello from the fake provider."
    assert final.usage.output_tokens == 58
    row = one_row(stack, s["session_id"])
    assert (
        row["input_tokens"],
        row["cache_read_tokens"],
        row["cache_write_tokens"],
        row["cache_write_1h_tokens"],
        row["output_tokens"],
    ) == (3, 18230, 1204, 1204, 58)
    assert row["status"] == "ok" and row["stream"] == 1 and row["api"] == "messages"
    assert row["model_used"] == "claude-sonnet-4-5-20250929"
    assert row["price_source"] == "genai-prices" and row["cost_usd"] > 0
    assert row["ttft_ms"] is not None and row["duration_ms"] >= row["ttft_ms"]
    # The client's own key passed through untouched (passthrough mode), as did the beta/version headers.
    got = stack.received()[-1]
    assert FAKE_KEY in (got.headers.get("x-api-key"), got.headers.get("authorization", "").removeprefix("Bearer "))
    assert got.headers["anthropic-version"]  # whatever the SDK sent, relayed


def test_anthropic_json(stack):
    s = stack.open_session()
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    msg = client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert msg.content[0].text == "Hello from the fake provider."
    row = one_row(stack, s["session_id"])
    assert row["stream"] == 0 and row["status"] == "ok"
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (1200, 18000, 58)


def test_count_tokens_and_models_are_relayed_not_billed(stack):
    s = stack.open_session()
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    n = client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hello"}])
    assert n.input_tokens > 0
    rows = stack.rows(s["session_id"])
    assert [r["api"] for r in rows] == ["count_tokens"]
    assert rows[0]["status"] == "passthrough" and not rows[0]["cost_usd"]


def test_openai_responses_stream_and_json(stack):
    s = stack.open_session()
    stack.configure(
        usage={
            "input_tokens": 1034,
            "cache_read_tokens": 11776,
            "cache_write_tokens": 0,
            "output_tokens": 214,
            "reasoning_tokens": 192,
        }
    )
    client = openai.OpenAI(base_url=s["openai"], api_key="sk-test-client", max_retries=0)
    events = list(client.responses.create(model="gpt-5.1-codex", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    resp = client.responses.create(model="gpt-5.1-codex", input="hi")
    assert resp.output_text == "Hello from the fake provider."
    rows = stack.rows(s["session_id"])
    assert [r["stream"] for r in rows] == [1, 0]
    for row in rows:
        assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (
            1034,
            11776,
            214,
            192,
        )
        assert row["status"] == "ok" and row["api"] == "responses" and row["cost_usd"] > 0


def test_chat_stream_without_include_usage_is_metered_and_chunk_stripped(stack):
    s = stack.open_session()
    client = openai.OpenAI(base_url=s["openai"], api_key="sk-test-client", max_retries=0)
    chunks = list(
        client.chat.completions.create(model="gpt-4.1", stream=True, messages=[{"role": "user", "content": "hi"}])
    )
    # The client did not ask for usage: it must not see the injected empty-choices chunk.
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the fake provider."
    sent = stack.received()[-1].json
    assert sent["stream_options"] == {"include_usage": True}
    row = one_row(stack, s["session_id"])
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (1200, 18000, 58)


def test_chat_stream_with_include_usage_keeps_usage_chunk(stack):
    s = stack.open_session()
    client = openai.OpenAI(base_url=s["openai"], api_key="sk-test-client", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1",
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "hi"}],
        )
    )
    assert chunks[-1].usage.prompt_tokens == 19200 and chunks[-1].choices == []
    assert one_row(stack, s["session_id"])["output_tokens"] == 58


def test_chat_json(stack):
    s = stack.open_session()
    client = openai.OpenAI(base_url=s["openai"], api_key="sk-test-client", max_retries=0)
    r = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert r.usage.completion_tokens == 58
    assert one_row(stack, s["session_id"])["input_tokens"] == 1200


def test_unknown_model_is_unpriced_not_free(stack):
    s = stack.open_session()
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0)
    client.messages.create(model="claude-zeta-9", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    row = one_row(stack, s["session_id"])
    assert row["unpriced"] == 1 and row["price_source"] == "fallback"
    assert row["cost_usd"] > 0
    assert "claude-zeta-9" in row["reason"]


def test_bad_token_gets_provider_shaped_401(stack):
    stack.open_session()
    client = anthropic.Anthropic(base_url=f"{stack.proxy_url}/s/not-a-token/anthropic", api_key=FAKE_KEY, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as exc:
        client.messages.create(model="claude-haiku-4-5", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    body = exc.value.body
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert "agentmeter" in body["error"]["message"]
    oc = openai.OpenAI(base_url=f"{stack.proxy_url}/s/nope/openai/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as oexc:
        oc.responses.create(model="gpt-5.1", input="x")
    assert oexc.value.body["code"] == "invalid_api_key"
    # Without any session prefix at all: also refused, and nothing reached the provider.
    with pytest.raises(urllib.error.HTTPError) as herr:
        urllib.request.urlopen(urllib.request.Request(f"{stack.proxy_url}/v1/messages", data=b"{}"))
    assert herr.value.code == 401
    assert stack.received() == []


def test_oversized_body_gets_413(stack):
    s = stack.open_session()
    big = b'{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"' + b"x" * (65 * 2**20) + b'"}]}'
    req = urllib.request.Request(
        s["anthropic"] + "/v1/messages", data=big, headers={"Content-Type": "application/json", "x-api-key": FAKE_KEY}
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    assert exc.value.code == 413
    body = json.loads(exc.value.read())
    assert body["error"]["type"] == "request_too_large"
    assert stack.received() == []


def test_upstream_error_passes_through_byte_for_byte(stack):
    s = stack.open_session()
    client = anthropic.Anthropic(
        base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0, default_headers={"x-fake-scenario": "status:529"}
    )
    with pytest.raises(anthropic.APIStatusError) as exc:
        client.messages.create(model="claude-haiku-4-5", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 529
    assert exc.value.response.content == (
        b'{"type": "error", "error": {"type": "overloaded_error", "message": "fake 529"}, "request_id": "req_fake"}'
    )
    row = one_row(stack, s["session_id"])
    assert row["status"] == "error" and row["http_status"] == 529 and row["reason"] == "overloaded_error"


@pytest.mark.parametrize("scenario", ["truncate", "reset"])
def test_interrupted_stream_is_partial_with_estimate(stack, scenario):
    s = stack.open_session()
    stack.configure(deltas=20, delta_bytes=200)
    client = anthropic.Anthropic(
        base_url=s["anthropic"], api_key=FAKE_KEY, max_retries=0, default_headers={"x-fake-scenario": scenario}
    )
    try:  # a reset raises in the SDK; a clean truncation just ends the stream early
        with client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as st:
            for _ in st.text_stream:
                pass
    except Exception as exc:  # the SDK surfaces a reset as its transport's protocol error
        assert scenario == "reset", exc
    row = one_row(stack, s["session_id"])
    assert row["status"] == "partial" and row["partial"] == 1
    assert row["input_tokens"] == 1200  # from message_start
    assert row["output_tokens"] > 0  # estimated from the deltas relayed before the cut
    assert row["cost_usd"] > 0


def test_compressed_request_bodies_are_read_and_forwarded_unchanged(stack):
    s = stack.open_session()
    payload = json.dumps({"model": "gpt-5.1-codex", "input": "hi", "stream": False}).encode()
    for enc, body in (("zstd", zstandard.ZstdCompressor().compress(payload)), ("gzip", gzip.compress(payload))):
        req = urllib.request.Request(
            s["openai"] + "/responses",
            data=body,
            headers={"Content-Type": "application/json", "Content-Encoding": enc, "Authorization": "Bearer sk-test-x"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())["status"] == "completed"
        got = stack.received()[-1]
        assert got.headers["content-encoding"] == enc and got.body_bytes == len(body)
    rows = stack.rows(s["session_id"])
    assert [r["model_requested"] for r in rows] == ["gpt-5.1-codex", "gpt-5.1-codex"]


def test_key_mode_swaps_virtual_key_for_real_one(key_stack):
    s = key_stack.open_session()
    assert s["virtual_key"].startswith("amk_") and set(s["key_mode"]) == {"anthropic", "openai"}
    client = anthropic.Anthropic(base_url=s["anthropic"], api_key=s["virtual_key"], max_retries=0)
    client.messages.create(model="claude-haiku-4-5", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert key_stack.received()[-1].headers["x-api-key"] == "sk-ant-test-REALKEY000000000000"
    oc = openai.OpenAI(base_url=s["openai"], api_key=s["virtual_key"], max_retries=0)
    oc.responses.create(model="gpt-5.1", input="x")
    assert key_stack.received()[-1].headers["authorization"] == "Bearer sk-test-REALOPENAIKEY0000000000"
    # The real key is nowhere in the ledger file.
    raw = key_stack.ledger_path.read_bytes() + (
        key_stack.ledger_path.with_name("ledger.db-wal").read_bytes()
        if key_stack.ledger_path.with_name("ledger.db-wal").exists()
        else b""
    )
    assert b"REALKEY" not in raw and b"REALOPENAIKEY" not in raw


def test_chatgpt_login_traffic_goes_to_chatgpt_backend(stack):
    s = stack.open_session()
    req = urllib.request.Request(
        s["openai"] + "/responses",
        data=json.dumps({"model": "gpt-5.1-codex", "input": "hi"}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
            "chatgpt-account-id": "acct-123",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["status"] == "completed"
    assert stack.received()[-1].path == "/backend-api/codex/responses"
    assert one_row(stack, s["session_id"])["subscription"] == 1


def test_head_probe_answers_locally(stack):
    s = stack.open_session()
    req = urllib.request.Request(s["anthropic"], method="HEAD")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
    assert stack.received() == []


def test_agent_session_header_is_recorded(stack):
    s = stack.open_session()
    client = anthropic.Anthropic(
        base_url=s["anthropic"],
        api_key=FAKE_KEY,
        max_retries=0,
        default_headers={"X-Claude-Code-Session-Id": "cc-uuid-1", "x-claude-code-agent-id": "sub-1"},
    )
    client.messages.create(model="claude-haiku-4-5", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    row = one_row(stack, s["session_id"])
    assert row["agent_session_id"] == "cc-uuid-1" and row["agent_id"] == "sub-1"
