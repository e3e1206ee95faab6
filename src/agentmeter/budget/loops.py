"""The loop brake: consecutive failing-tool turns and identical bodies re-sent, per agent session.

Pure: it is fed the facts of each request body in order and says how long the current streak is.
Counts reset on a fresh user turn (the last message is the developer's text, not a tool result).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TurnFacts:
    fresh_user_turn: bool  # the newest message is the developer's own text
    failed_tool_result: bool  # the newest message carries a failed tool result
    body_digest: str


def turn_facts(provider: str, body: dict | None, raw: bytes) -> TurnFacts:
    digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
    if not isinstance(body, dict):
        return TurnFacts(False, False, digest)
    if provider == "anthropic":
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs and isinstance(msgs[-1], dict) else {}
        content = last.get("content")
        if last.get("role") != "user":
            return TurnFacts(False, False, digest)
        if isinstance(content, str):
            return TurnFacts(True, False, digest)
        blocks = [b for b in content or [] if isinstance(b, dict)]
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if not results:
            return TurnFacts(True, False, digest)
        return TurnFacts(False, any(b.get("is_error") is True for b in results), digest)
    items = body.get("input") if "input" in body else body.get("messages")
    if isinstance(items, str):
        return TurnFacts(True, False, digest)
    items = [i for i in items or [] if isinstance(i, dict)]
    if not items:
        return TurnFacts(False, False, digest)
    last = items[-1]
    kind = last.get("type")
    if kind == "function_call_output" or last.get("role") == "tool":
        return TurnFacts(False, _failed_output(last.get("output") or last.get("content")), digest)
    if last.get("role") == "user":
        return TurnFacts(True, False, digest)
    return TurnFacts(False, False, digest)


def _failed_output(output) -> bool:
    """Codex function_call_output: a JSON string with metadata.exit_code, or text with 'Exit code: N'."""
    import json
    import re

    text = output if isinstance(output, str) else json.dumps(output) if output is not None else ""
    try:
        data = json.loads(text)
        code = (data.get("metadata") or {}).get("exit_code") if isinstance(data, dict) else None
        if isinstance(code, int):
            return code != 0
    except (ValueError, TypeError):
        pass
    m = re.search(r"[Ee]xit code:?\s*(-?\d+)", text)
    return bool(m and int(m.group(1)) != 0)


@dataclass
class LoopBrake:
    """Per-session streak of failing turns and identical re-sent bodies."""

    streak: int = 0
    last_digest: str | None = None
    # Whether the previous request got a complete answer. Re-sending the same body after an error or a
    # cut stream is an ordinary retry, not a loop.
    last_ok: bool = True

    def observe(self, facts: TurnFacts) -> int:
        resent = facts.body_digest == self.last_digest
        if resent and not self.last_ok:
            pass  # a retry: the streak stands
        elif facts.fresh_user_turn and not resent:
            self.streak = 0
        elif facts.failed_tool_result or resent:
            self.streak += 1
        else:
            self.streak = 0
        self.last_digest = facts.body_digest
        return self.streak

    def outcome(self, ok: bool) -> None:
        self.last_ok = ok
