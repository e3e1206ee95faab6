"""Gemini CLI and Copilot CLI logs, in the line shapes the real binaries wrote (Gemini CLI 0.61.0, Copilot
CLI 1.0.102): the contract's buckets, and a response the proxy metered live is matched, never added."""

from __future__ import annotations

import json

import pytest

from agentmeter.core.models import RequestRecord, Usage
from agentmeter.importers import import_logs
from agentmeter.importers.base import parse_ts
from agentmeter.ledger import open_ledger

T0 = "2026-12-04T12:09:02.071Z"


def gemini_file(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {"sessionId": "9d0390cd", "projectHash": "ef00", "startTime": "2026-12-04T12:09:01.888Z", "kind": "main"}
    path.write_text("\n".join(json.dumps(x) for x in [head, {"$set": {"lastUpdated": T0}}, *lines]) + "\n")
    return path


def gemini_line(mid, tokens, at=T0):
    return {
        "id": mid,
        "timestamp": at,
        "type": "gemini",
        "content": "Hello",
        "thoughts": [],
        "tokens": tokens,
        "model": "gemini-2.5-flash",
    }


def copilot_line(call_id, *, byok=True, at=T0, inp=19200, cached=18000, out=58, reasoning=0):
    return {
        "type": "session.usage_record",
        "id": "e-" + call_id,
        "timestamp": at,
        "data": {
            "usage": {
                "model": "gpt-5.1",
                "inputTokens": inp,
                "outputTokens": out,
                "cacheReadTokens": cached,
                "cacheWriteTokens": 0,
                "reasoningTokens": reasoning,
                "apiCallId": call_id,
                "isByok": byok,
                "providerType": "openai" if byok else None,
                "apiEndpoint": "/chat/completions",
            }
        },
    }


@pytest.fixture
def ledger(tmp_path):
    lg = open_ledger(tmp_path / "ledger.db")
    lg.create_session({"id": "run1", "token_hash": "h1", "agent": "gemini", "started_at": 0})
    yield lg
    lg.close()


def proxy_row(ledger, rid, usage, *, agent="gemini", provider="gemini", response_id=None, at=T0):
    ledger.insert_request(
        RequestRecord(
            request_id=rid,
            session_id="run1",
            started_at_ms=parse_ts(at) - 2000,
            provider=provider,
            api="generate_content",
            method="POST",
            path="/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            model_requested="gemini-2.5-flash",
            model_used="gemini-2.5-flash",
            stream=True,
            status="ok",
            http_status=200,
            usage=usage,
            cost_usd=0.001,
            response_id=response_id,
            agent=agent,
        )
    )


def test_gemini_buckets_and_live_match(ledger, tmp_path):
    tokens = {"input": 19200, "output": 58, "cached": 18000, "thoughts": 7, "tool": 3, "total": 19268}
    live = Usage(input_tokens=1203, cache_read_tokens=18000, output_tokens=65, reasoning_tokens=7)
    proxy_row(ledger, "amr_1", live)
    f = gemini_file(
        tmp_path / "tmp" / "proj" / "chats" / "session-a.jsonl",
        [gemini_line("m1", tokens), gemini_line("m2", {**tokens, "output": 99}, "2026-12-04T12:10:00Z")],
    )
    s = import_logs("gemini", ledger, [tmp_path / "tmp"])
    assert (s.responses, s.matched_proxy, s.added) == (2, 1, 1)
    assert s.added_usage == Usage(input_tokens=1203, cache_read_tokens=18000, output_tokens=106, reasoning_tokens=7)
    again = import_logs("gemini", ledger, [f])
    assert again.added == 0


def test_gemini_live_row_of_another_agent_is_not_a_match(ledger, tmp_path):
    tokens = {"input": 100, "output": 5, "cached": 0, "thoughts": 0, "tool": 0, "total": 105}
    proxy_row(ledger, "amr_1", Usage(input_tokens=100, output_tokens=5), agent="claude")
    gemini_file(tmp_path / "tmp" / "p" / "chats" / "session-b.jsonl", [gemini_line("m1", tokens)])
    assert import_logs("gemini", ledger, [tmp_path / "tmp"]).added == 1


def test_copilot_byok_matched_by_response_id_and_hosted_added_as_subscription(ledger, tmp_path):
    proxy_row(
        ledger,
        "amr_1",
        Usage(input_tokens=1200, cache_read_tokens=18000, output_tokens=58),
        agent="copilot",
        provider="openai",
        response_id="chatcmpl-live",
    )
    f = tmp_path / "session-state" / "43c4" / "events.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"type": "system.message", "data": {"role": "system", "content": "…"}},
                copilot_line("chatcmpl-live"),
                copilot_line("hosted-1", byok=False, out=70, reasoning=20),
            ]
        )
        + "\n"
    )
    s = import_logs("copilot", ledger, [tmp_path / "session-state"])
    assert (s.responses, s.matched_proxy, s.added) == (2, 1, 1)
    assert s.added_usage == Usage(input_tokens=1200, cache_read_tokens=18000, output_tokens=70, reasoning_tokens=20)
    row = ledger.conn.execute(
        "SELECT subscription, agent, agent_session_id FROM requests WHERE response_id = 'hosted-1'"
    ).fetchone()
    assert tuple(row) == (1, "copilot", "43c4")
