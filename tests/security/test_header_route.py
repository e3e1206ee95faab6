"""The /h/<provider>/… routes (issue 14 item 2): the session token travels in an X-Agentmeter-Session
header instead of the URL, so an agent's base URL (Codex's is in its argv) holds no secret. The header is
the only way in, and it never reaches the provider."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

BODY = json.dumps(
    {"model": "claude-sonnet-4-5", "max_tokens": 16, "stream": False, "messages": [{"role": "user", "content": "hi"}]}
).encode()


def post(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url,
        data=BODY,
        method="POST",
        headers={
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
            "x-api-key": "sk-ant-test-client",
            **headers,
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_header_route_needs_the_token_and_never_relays_it(stack):
    s = stack.open_session()
    url = f"{stack.proxy_url}/h/anthropic/v1/messages"
    for bad in (
        {},
        {"X-Agentmeter-Session": ""},
        {"X-Agentmeter-Session": s["token"] + "x"},
        {"X-Agentmeter-Session": s["session_id"]},
    ):
        code, body = post(url, bad)
        assert code == 401, (bad, code, body)
        assert "session token" in json.loads(body)["error"]["message"]
    assert stack.received() == []

    code, _ = post(url, {"x-AGENTMETER-session": s["token"]})
    assert code == 200
    got = stack.received()
    assert len(got) == 1
    assert not any(k.lower() == "x-agentmeter-session" for k in got[0].headers)
    assert s["token"] not in json.dumps(got[0].as_dict())
    rows = stack.rows(s["session_id"])
    assert [r["status"] for r in rows] == ["ok"]
