"""Crafted log lines, in the shapes Claude Code 2.1.197 and Codex CLI 0.169.0 were seen to write."""

from __future__ import annotations

import json
from pathlib import Path


def claude_line(
    mid: str | None,
    rid: str | None,
    *,
    session: str = "sess-1",
    out: int = 10,
    inp: int = 100,
    cache_read: int = 0,
    cw5: int = 0,
    cw1: int = 0,
    ts: str = "2026-01-01T00:00:00.000Z",
    sidechain: bool = False,
    model: str = "claude-sonnet-4-5",
    cwd: str | None = "/nowhere/proj",
    branch: str = "main",
    uuid: str | None = None,
    agent_id: str | None = None,
) -> str:
    message = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": inp,
            "cache_creation_input_tokens": cw5 + cw1,
            "cache_read_input_tokens": cache_read,
            "output_tokens": out,
            "cache_creation": {"ephemeral_5m_input_tokens": cw5, "ephemeral_1h_input_tokens": cw1},
            "service_tier": "standard",
        },
    }
    if mid is None:
        del message["id"]
    d = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "message": message,
        "type": "assistant",
        "uuid": uuid or f"u-{mid}-{rid}-{out}",
        "timestamp": ts,
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.197",
        "gitBranch": branch,
    }
    if rid is not None:
        d["requestId"] = rid
    if agent_id:
        d["agentId"] = agent_id
    return json.dumps(d, separators=(",", ":"))


def claude_user(text: str = "hello", session: str = "sess-1", ts: str = "2026-01-01T00:00:00.000Z") -> str:
    return json.dumps(
        {
            "type": "user",
            "message": {"role": "user", "content": text},
            "timestamp": ts,
            "sessionId": session,
            "uuid": "u-user",
        },
        separators=(",", ":"),
    )


def counts(inp: int, cached: int = 0, out: int = 0, reasoning: int = 0) -> dict:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "cache_write_input_tokens": 0,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning,
        "total_tokens": inp + out,
    }


def codex_meta(sid: str, ts: str = "2026-01-01T00:00:00.000Z", **extra) -> str:
    return json.dumps(
        {
            "timestamp": ts,
            "type": "session_meta",
            "payload": {
                "id": sid,
                "session_id": sid,
                "timestamp": ts,
                "cwd": "/nowhere/proj",
                "cli_version": "0.169.0",
                **extra,
            },
        }
    )


def codex_turn(model: str = "gpt-5", ts: str = "2026-01-01T00:00:01.000Z") -> str:
    return json.dumps({"timestamp": ts, "type": "turn_context", "payload": {"model": model, "cwd": "/nowhere/proj"}})


def codex_task(started_s: int, ts: str = "2026-01-01T00:00:01.000Z") -> str:
    return json.dumps(
        {
            "timestamp": ts,
            "type": "event_msg",
            "payload": {"type": "task_started", "turn_id": "t", "started_at": started_s},
        }
    )


def codex_count(total: dict | None, last: dict | None, ts: str = "2026-01-01T00:00:02.000Z") -> str:
    info = {}
    if total is not None:
        info["total_token_usage"] = total
    if last is not None:
        info["last_token_usage"] = last
    return json.dumps({"timestamp": ts, "type": "event_msg", "payload": {"type": "token_count", "info": info}})


def codex_record(sid: str, rid: str, usage: dict, ts: str = "2026-01-01T00:00:02.000Z") -> str:
    return json.dumps(
        {
            "timestamp": ts,
            "type": "token_usage_record",
            "payload": {"thread_id": sid, "session_id": sid, "turn_id": "t", "response_id": rid, "usage": usage},
        }
    )


def write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path
