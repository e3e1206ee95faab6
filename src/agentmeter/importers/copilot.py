"""GitHub Copilot CLI session logs: `~/.copilot/session-state/<session>/events.jsonl` (COPILOT_HOME moves
`~/.copilot`).

Observed with Copilot CLI 1.0.102: each model call is a `session.usage_record` event whose
`data.usage` has `model`, `inputTokens` (cached part included, OpenAI style), `cacheReadTokens`,
`cacheWriteTokens`, `outputTokens`, `reasoningTokens` (inside output), `apiCallId` (the provider's
response id, e.g. `chatcmpl-…`), `isByok` and `providerType`. BYOK calls that went through the proxy carry
the response id the proxy recorded, so they are matched, never counted twice. Copilot-hosted calls
(`isByok` false) are subscription usage: recorded at API-list-equivalent cost and marked so.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.models import Usage
from .base import ImportedResponse, home, loads, parse_ts

SOURCE = "copilot-log"


def roots() -> list[Path]:
    base = Path(os.environ["COPILOT_HOME"]).expanduser() if os.environ.get("COPILOT_HOME") else home() / ".copilot"
    return [base / "session-state"]


def _provider(usage: dict) -> str:
    kind = usage.get("providerType")
    if kind in ("openai", "anthropic"):
        return kind
    model = str(usage.get("model") or "").lower()
    return "anthropic" if "claude" in model else "gemini" if "gemini" in model else "openai"


def usage_of(u: dict) -> Usage:
    def n(key: str) -> int:
        v = u.get(key)
        return int(v) if isinstance(v, int | float) and v > 0 else 0

    cached, write, out = n("cacheReadTokens"), n("cacheWriteTokens"), n("outputTokens")
    return Usage(
        input_tokens=max(0, n("inputTokens") - cached - write),
        cache_read_tokens=cached,
        cache_write_tokens=write,
        cache_write_5m_tokens=write,
        output_tokens=out,
        reasoning_tokens=min(out, n("reasoningTokens")),
    )


class CopilotEvents:
    """One session's events.jsonl, fed line by line."""

    source = SOURCE

    def __init__(self, path: Path | None = None) -> None:
        self.session_id = path.parent.name if path is not None else None

    def feed(self, line: bytes) -> list[ImportedResponse]:
        if b'"session.usage_record"' not in line:
            return []
        d = loads(line)
        data = d.get("data") if isinstance(d.get("data"), dict) else {}
        u = data.get("usage")
        at = parse_ts(d.get("timestamp"))
        if d.get("type") != "session.usage_record" or not isinstance(u, dict) or at is None:
            return []
        call = u.get("apiCallId") if isinstance(u.get("apiCallId"), str) else None
        key = call or (d.get("id") if isinstance(d.get("id"), str) else None)
        if key is None:
            return []
        endpoint = u.get("apiEndpoint") if isinstance(u.get("apiEndpoint"), str) else "/chat/completions"
        return [
            ImportedResponse(
                source=SOURCE,
                import_key=f"copilot:{key}",
                agent="copilot",
                provider=_provider(u),
                api="responses" if "responses" in endpoint else "messages" if "messages" in endpoint else "chat",
                path=endpoint,
                model=u.get("model") if isinstance(u.get("model"), str) else None,
                started_at_ms=at,
                usage=usage_of(u),
                agent_session_id=self.session_id,
                response_id=call,
                subscription=u.get("isByok") is not True,
            )
        ]
