"""Claude Code sub-agents roll up (issue 20 item 7): the real Claude Code binary, through a real daemon, against a
scripted Anthropic upstream that asks it to spawn a sub-agent (a tool_use of its agent tool, found by the
`subagent_type` property in the tools it sends). Claude Code marks the sub-agent's requests with
`x-claude-code-agent-id` (the 2.1 binary: `...c?.agentId&&{"x-claude-code-agent-id":…}`); agentmeter records it
per request, and `report --by subagent` splits the spend between the main agent ('') and the sub-agent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from aiohttp import web

from conftest import LoopThread

from .conftest import REAL_ANTHROPIC_KEY, _make_daemon, _start_daemon, _stop_daemon, run_group

pytestmark = pytest.mark.e2e


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _agent_tool(body: dict) -> str | None:
    for tool in body.get("tools") or []:
        if "subagent_type" in ((tool.get("input_schema") or {}).get("properties") or {}):
            return tool.get("name")
    return None


def _has_tool_result(body: dict) -> bool:
    return any(
        isinstance(m.get("content"), list) and any(b.get("type") == "tool_result" for b in m["content"])
        for m in body.get("messages") or []
    )


@dataclass
class Seen:
    agent_ids: list
    main: int = 0


def scripted_app(seen: Seen) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        agent_id = request.headers.get("x-claude-code-agent-id")
        tool = _agent_tool(body)
        usage = {
            "input_tokens": 100,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "output_tokens": 1,
        }
        if agent_id:
            seen.agent_ids.append(agent_id)
            out, blocks = 700, [{"type": "text", "text": "sub-agent: all good"}]
        elif tool and not _has_tool_result(body):
            seen.main += 1
            args = {"description": "check the repo", "prompt": "Say all good.", "subagent_type": "general-purpose"}
            out, blocks = 50, [{"type": "tool_use", "id": "toolu_01AM", "name": tool, "input": args}]
        else:
            out, blocks = 30, [{"type": "text", "text": "finished"}]
        stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
        msg = {
            "id": "msg_01AM",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return web.json_response(
                {**msg, "content": blocks, "stop_reason": stop, "usage": {**usage, "output_tokens": out}}
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_sse("message_start", {"type": "message_start", "message": msg}))
        b = blocks[0]
        if b["type"] == "tool_use":
            await resp.write(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {**b, "input": {}}},
                )
            )
            await resp.write(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(b["input"])},
                    },
                )
            )
        else:
            await resp.write(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
            )
            await resp.write(
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": b["text"]}},
                )
            )
        await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await resp.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
            )
        )
        await resp.write(_sse("message_stop", {"type": "message_stop"}))
        await resp.write_eof()
        return resp

    async def count_tokens(request: web.Request) -> web.Response:
        return web.json_response({"input_tokens": 10})

    async def other(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


@dataclass
class Upstream:
    url: str


def test_claude_code_subagent_requests_roll_up(claude_bin, tmp_path):
    seen = Seen(agent_ids=[])
    loop = LoopThread()

    async def start():
        runner = web.AppRunner(scripted_app(seen), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]

    runner, port = loop.run(start())
    daemon = _make_daemon(tmp_path, Upstream(f"http://127.0.0.1:{port}"), {"anthropic": REAL_ANTHROPIC_KEY})
    try:
        _start_daemon(daemon)
        se = daemon.session_env("claude")
        work = tmp_path / "work"
        work.mkdir()
        r = run_group(
            [claude_bin, "-p", "Use a sub-agent to check the repo, then say finished."],
            env=daemon.agent_env(se["env"]),
            cwd=work,
        )
        assert r.returncode == 0, f"claude exited {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert seen.main >= 1, "Claude Code sent no request with its agent tool"
        assert seen.agent_ids, f"no request carried x-claude-code-agent-id ({r.stdout!r})"

        rows = daemon.session(se["session_id"])["requests"]
        assert {row["agent_id"] for row in rows if row["agent_id"]} == set(seen.agent_ids)
        got = {row["key"]: row for row in daemon.cli_json("report", "--by", "subagent", "--since", "1d")["rows"]}
        sub = seen.agent_ids[0]
        assert set(got) == {"", *seen.agent_ids}, got
        assert got[sub]["requests"] == seen.agent_ids.count(sub)
        assert got[sub]["output_tokens"] == 700 * seen.agent_ids.count(sub)
        assert got[""]["requests"] == len(rows) - len(seen.agent_ids)
    finally:
        _stop_daemon(daemon)
        loop.run(runner.cleanup())
        loop.stop()
