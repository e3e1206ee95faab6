"""Gemini CLI session logs: `~/.gemini/tmp/<project>/chats/session-*.jsonl` (GEMINI_CLI_HOME moves `~`).

Observed with Gemini CLI 0.61.0: the first line is the session header (`sessionId`, `startTime`); each
model response is a `"type":"gemini"` line with its message `id`, `timestamp`, `model` and
`tokens: {input, output, cached, thoughts, tool, total}` — the API's usageMetadata (`input` is the whole
prompt, cached part included). Other lines (`$set` updates, user messages) are skipped. The log has no
API response id, and Gemini CLI sends no session header, so a response the proxy metered live is found
by agent, time and identical buckets (ingest.py, never counted twice).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.models import Usage
from .base import ImportedResponse, home, loads, parse_ts

SOURCE = "gemini-log"


def roots() -> list[Path]:
    base = Path(os.environ["GEMINI_CLI_HOME"]).expanduser() if os.environ.get("GEMINI_CLI_HOME") else home()
    return [base / ".gemini" / "tmp"]


def usage_of(tokens: dict) -> Usage:
    def n(key: str) -> int:
        v = tokens.get(key)
        return int(v) if isinstance(v, int | float) and v > 0 else 0

    cached = min(n("cached"), n("input"))
    return Usage(
        input_tokens=n("input") - cached + n("tool"),
        cache_read_tokens=cached,
        output_tokens=n("output") + n("thoughts"),
        reasoning_tokens=n("thoughts"),
    )


class GeminiSession:
    """One session file, fed line by line."""

    source = SOURCE

    def __init__(self, path: Path | None = None) -> None:
        self.session_id: str | None = None

    def feed(self, line: bytes) -> list[ImportedResponse]:
        if b'"sessionId"' not in line and b'"tokens"' not in line:
            return []
        d = loads(line)
        if isinstance(d.get("sessionId"), str) and "type" not in d:
            self.session_id = d["sessionId"]
            return []
        tokens = d.get("tokens")
        if d.get("type") != "gemini" or not isinstance(tokens, dict):
            return []
        at = parse_ts(d.get("timestamp"))
        msg_id = d.get("id") if isinstance(d.get("id"), str) else None
        if at is None or msg_id is None:
            return []
        model = d.get("model") if isinstance(d.get("model"), str) else None
        return [
            ImportedResponse(
                source=SOURCE,
                import_key=f"gemini:{self.session_id or ''}:{msg_id}",
                agent="gemini",
                provider="gemini",
                api="generate_content",
                path="/v1beta/models/{model}:streamGenerateContent",
                model=model,
                started_at_ms=at,
                usage=usage_of(tokens),
                agent_session_id=self.session_id,
            )
        ]
