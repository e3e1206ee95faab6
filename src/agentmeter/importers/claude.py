"""Claude Code transcripts: `~/.claude/projects/<cwd-slug>/<session>.jsonl` (and sub-agent files under
`<session>/subagents/agent-<id>.jsonl`).

Each assistant line carries the API message (`message.id`, `message.usage`) and the `requestId`. A
streamed message is written once per content block, each copy with the usage known at that moment, so
the same message id appears several times with growing output: the importer keeps the largest copy.
`--resume --fork-session` copies the parent's lines into the new file under the new session id, with the
same message and request ids (observed with 2.1.197), and a side-chain can replay a parent message under a
new request id: both are dropped by the keys.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..providers.anthropic import tier_from_anthropic, usage_from_anthropic
from .base import ImportedResponse, home, loads, parse_ts

SOURCE = "claude-log"
_AGENT_FILE = re.compile(r"^agent-(.+)\.jsonl$")


def roots() -> list[Path]:
    """`CLAUDE_CONFIG_DIR` (comma-separated) when set, else `~/.config/claude` and `~/.claude`."""
    env = os.environ.get("CLAUDE_CONFIG_DIR", "").strip()
    bases = (
        [Path(p.strip()).expanduser() for p in env.split(",") if p.strip()]
        if env
        else [home() / ".config" / "claude", home() / ".claude"]
    )
    return [b / "projects" for b in bases]


def settings_files() -> list[Path]:
    return [r.parent / "settings.json" for r in roots()]


class ClaudeTranscript:
    """One transcript file. `feed(line)` → the response on that line, if it carries usage."""

    source = SOURCE

    def __init__(self, path: Path | None = None) -> None:
        m = _AGENT_FILE.match(path.name) if path else None
        self.file_agent_id = m.group(1) if m else None
        self.mtime_ms = int(path.stat().st_mtime * 1000) if path and path.exists() else 0

    def feed(self, line: bytes) -> list[ImportedResponse]:
        # Only assistant lines carry usage; skipping the rest unparsed keeps a 1 GB history fast.
        if b'"usage"' not in line or b'"assistant"' not in line:
            return []
        d = loads(line)
        msg = d.get("message")
        if d.get("type") != "assistant" or not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            return []
        model = msg.get("model") if isinstance(msg.get("model"), str) else None
        usage = usage_from_anthropic(msg["usage"])
        # `<synthetic>` messages (API errors, interruptions) are written by Claude Code itself: not billed.
        if model == "<synthetic>" or not usage.total_tokens:
            return []
        mid = msg.get("id") if isinstance(msg.get("id"), str) else None
        rid = d.get("requestId") if isinstance(d.get("requestId"), str) else None
        if mid:
            key = f"claude:{mid}:{rid or ''}"
        elif d.get("uuid"):
            key = f"claude:uuid:{d['uuid']}"
        else:
            return []
        branch = d.get("gitBranch") if isinstance(d.get("gitBranch"), str) else None
        return [
            ImportedResponse(
                source=SOURCE,
                import_key=key,
                agent="claude",
                provider="anthropic",
                api="messages",
                path="/v1/messages",
                model=model,
                started_at_ms=parse_ts(d.get("timestamp")) or self.mtime_ms,
                usage=usage,
                agent_session_id=d.get("sessionId") or None,
                response_id=mid,
                upstream_request_id=rid,
                agent_id=d.get("agentId") or self.file_agent_id,
                cwd=d.get("cwd") or None,
                # Outside a repository (or on a detached HEAD) Claude Code writes "HEAD".
                branch=None if branch in (None, "", "HEAD") else branch,
                sidechain=bool(d.get("isSidechain")),
                tier=tier_from_anthropic(msg["usage"]),
            )
        ]
