"""The Responses WebSocket transport (Codex's first choice) relayed frame by frame and metered."""

from __future__ import annotations

import json

import aiohttp


async def _ws_turns(url: str, headers: dict, turns: int) -> list[list[dict]]:
    out = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        for i in range(turns):
            await ws.send_str(
                json.dumps(
                    {
                        "type": "response.create",
                        "model": "gpt-5.1-codex",
                        "input": [{"role": "user", "content": f"turn {i}"}],
                    }
                )
            )
            events = []
            while True:
                msg = await ws.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                events.append(json.loads(msg.data))
                if events[-1]["type"] == "response.completed":
                    break
            out.append(events)
    return out


def test_websocket_frames_relayed_and_each_response_metered(stack):
    s = stack.open_session()
    url = s["openai"].replace("http://", "ws://") + "/responses"
    turns = stack.loop.run(
        _ws_turns(url, {"Authorization": "Bearer sk-test-client", "session-id": "codex-thread-1"}, 3)
    )
    assert [t[-1]["type"] for t in turns] == ["response.completed"] * 3
    assert [e["type"] for e in turns[0]][:2] == ["response.created", "response.in_progress"]
    frames = [r for r in stack.received() if r.method == "WS-FRAME"]
    assert len(frames) == 3 and frames[0].json["input"][0]["content"] == "turn 0"
    upgrade = next(r for r in stack.received() if r.method == "WS")
    assert upgrade.headers["authorization"] == "Bearer sk-test-client"
    rows = stack.rows(s["session_id"])
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "ok" and row["method"] == "WS" and row["api"] == "responses"
        assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (1200, 18000, 58)
        assert row["model_requested"] == "gpt-5.1-codex" and row["agent_session_id"] == "codex-thread-1"
    assert len({r["response_id"] for r in rows}) == 3


def test_websocket_needs_the_session_token(stack):
    stack.open_session()

    async def attempt():
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(f"{stack.proxy_url.replace('http', 'ws')}/s/bad/openai/v1/responses"):
                    return None
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert stack.loop.run(attempt()) == 401
    assert stack.received() == []


def test_websocket_key_mode_swaps_the_key(key_stack):
    s = key_stack.open_session()
    url = s["openai"].replace("http://", "ws://") + "/responses"
    key_stack.loop.run(_ws_turns(url, {"Authorization": f"Bearer {s['virtual_key']}"}, 1))
    upgrade = next(r for r in key_stack.received() if r.method == "WS")
    assert upgrade.headers["authorization"] == "Bearer sk-test-REALOPENAIKEY0000000000"


def test_websocket_turns_are_capped_like_http(tmp_path):
    from agentmeter.home.config import Budget, Caps, Config
    from conftest import make_stack

    s, close = make_stack(tmp_path, config=Config(budget=Budget(caps=Caps(daily_usd=0.000001))))
    try:
        sess = s.open_session()
        url = sess["openai"].replace("http://", "ws://") + "/responses"

        async def two_turns():
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(url, headers={"Authorization": "Bearer sk-test-client"}) as ws,
            ):
                seen = []
                for i in range(2):
                    await ws.send_str(
                        json.dumps(
                            {
                                "type": "response.create",
                                "model": "gpt-5.1-codex",
                                "input": [{"role": "user", "content": f"turn {i}"}],
                            }
                        )
                    )
                    while True:
                        ev = json.loads((await ws.receive(timeout=10)).data)
                        if ev["type"] in ("response.completed", "error"):
                            seen.append(ev)
                            break
                return seen

        first, second = s.loop.run(two_turns())
        assert first["type"] == "response.completed"
        assert second["type"] == "error" and second["error"]["type"] == "usage_limit_reached"
        assert "agentmeter" in second["error"]["message"] and second["error"]["resets_at"] > 0
        assert len([r for r in s.received() if r.method == "WS-FRAME"]) == 1  # the refused turn never left
        rows = s.rows(sess["session_id"])
        assert [r["status"] for r in rows] == ["ok", "refused"]
    finally:
        close()


def test_websocket_escaped_create_is_still_checked_and_metered(tmp_path):
    """Issue 14.4: `"response\\u002ecreate"` is the same JSON string as "response.create"; it went through a
    blown cap unmetered when frames were matched by substring."""
    from agentmeter.home.config import Budget, Caps, Config
    from conftest import make_stack

    s, close = make_stack(tmp_path, config=Config(budget=Budget(caps=Caps(daily_usd=0.000001))))
    try:
        sess = s.open_session()
        url = sess["openai"].replace("http://", "ws://") + "/responses"
        plain = json.dumps({"type": "response.create", "model": "gpt-5.1-codex", "input": "turn 0"})
        escaped = plain.replace('"response.create"', '"response\\u002ecreate"')
        assert json.loads(escaped)["type"] == "response.create"
        # the same key twice: Python keeps the last value, a provider may keep the first
        doubled = '{"type": "response.create", "model": "gpt-5.1-codex", "input": "turn 1", "type": "x"}'

        async def two():
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(url, headers={"Authorization": "Bearer sk-test-client"}) as ws,
            ):
                seen = []
                for frame in (plain, escaped, doubled):
                    await ws.send_str(frame)
                    while True:
                        ev = json.loads((await ws.receive(timeout=10)).data)
                        if ev["type"] in ("response.completed", "error"):
                            seen.append(ev["type"])
                            break
                return seen

        assert s.loop.run(two()) == ["response.completed", "error", "error"]
        assert len([r for r in s.received() if r.method == "WS-FRAME"]) == 1
        assert [r["status"] for r in s.rows(sess["session_id"])] == ["ok", "refused", "refused"]
    finally:
        close()


def test_websocket_pipelined_creates_are_each_metered(stack):
    """Issue 14.4: five response.create frames sent before any answer: five answers, five ledger rows."""
    s = stack.open_session()
    url = s["openai"].replace("http://", "ws://") + "/responses"

    async def pipelined():
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(
                url, headers={"Authorization": "Bearer sk-test-client", "x-claude-code-session-id": "thread-9"}
            ) as ws,
        ):
            for i in range(5):
                await ws.send_str(
                    json.dumps(
                        {
                            "type": "response.create",
                            "model": "gpt-5.1-codex",
                            "input": [{"role": "user", "content": f"turn {i}"}],
                        }
                    )
                )
            done = 0
            while done < 5:
                ev = json.loads((await ws.receive(timeout=10)).data)
                done += ev["type"] == "response.completed"
            return done

    assert stack.loop.run(pipelined()) == 5
    rows = stack.rows(s["session_id"])
    assert len(rows) == 5, [r["status"] for r in rows]
    assert all(r["status"] == "ok" and r["output_tokens"] == 58 for r in rows)
    assert len({r["response_id"] for r in rows}) == 5
    assert all(r["agent_session_id"] == "thread-9" for r in rows)  # every header spelling HTTP knows
