"""Requests as a subscription-logged-in agent sends them, through a real proxy, to the fake provider."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request

OAUTH = "Bearer sk-ant-oat01-test-0000000000000000"  # the shape of a Claude Pro/Max login token (fake)
_turns = itertools.count()  # each turn says something new: identical re-sends trip the loop brake
CHATGPT_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0In0.fake"  # the shape of a ChatGPT login token (fake)


def claude_turn(
    base: str,
    session_header: str | None = None,
    step: float | None = None,
    stream: bool = True,
    scenario: str | None = None,
) -> tuple[int, dict, bytes]:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": f"hi {next(_turns)}"}],
    }
    headers = {
        "content-type": "application/json",
        "authorization": OAUTH,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "oauth-2025-04-20",
    }
    if session_header:
        headers["x-claude-code-session-id"] = session_header
    if step is not None:
        headers["x-fake-plan-step"] = str(step)
    if scenario:
        headers["x-fake-scenario"] = scenario
    return _post(base.rstrip("/") + "/v1/messages", body, headers)


def codex_turn(base: str, step: float | None = None) -> tuple[int, dict, bytes]:
    body = {
        "model": "gpt-5.1",
        "stream": True,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"hi {next(_turns)}"}]}
        ],
    }
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {CHATGPT_JWT}",
        "chatgpt-account-id": "acct-test-1",
    }
    if step is not None:
        headers["x-fake-plan-step"] = str(step)
    return _post(base.rstrip("/") + "/responses", body, headers)


def _post(url: str, body: dict, headers: dict) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
