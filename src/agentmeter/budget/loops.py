"""The loop brake: consecutive failing-tool turns and identical bodies re-sent, per agent session.

Pure: it is fed the facts of each request body in order and says how long the current streak is.
Counts reset on a fresh user turn (the last message is the developer's text, not a tool result).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import msgspec

_decode = msgspec.json.Decoder().decode


def _loads(raw: bytes):
    """JSON as the json module reads it; msgspec first (about twice as fast on a long turn), and the json
    module for what msgspec does not take (NaN, integers past 64 bits, lone surrogates)."""
    try:
        return _decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return json.loads(raw)


@dataclass(frozen=True)
class TurnFacts:
    fresh_user_turn: bool  # the newest message is the developer's own text
    failed_tool_result: bool  # the newest message carries a failed tool result
    body_digest: str


def turn_facts(provider: str, facts, body_len: int) -> TurnFacts:
    """The loop brake's view of a request, from its BodyFacts (providers/request.py): the newest message,
    decoded on its own, and a digest of it with the body's length and message count. Two bodies with the
    same digest re-send the same conversation; hashing the newest turn instead of the whole body (often
    100 KB and more) keeps this off the request's critical path."""
    last_raw = facts.last_item if facts is not None else None
    h = hashlib.blake2b(last_raw or b"", digest_size=16)
    h.update(b"|%d|%d" % (facts.n_items if facts is not None else 0, body_len))
    digest = h.hexdigest()
    if facts is None or not facts.ok:
        return TurnFacts(False, False, digest)
    if facts.input_is_text:
        return TurnFacts(provider != "anthropic", False, digest)
    if last_raw is None or (provider == "anthropic" and facts.items != "messages"):
        return TurnFacts(False, False, digest)
    last = _loads(last_raw)
    if not isinstance(last, dict):
        return TurnFacts(False, False, digest)
    if provider == "anthropic":
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
    if provider == "gemini":
        return _gemini_turn(last, digest)
    kind = last.get("type")
    if kind == "function_call_output" or last.get("role") == "tool":
        return TurnFacts(False, _failed_output(last.get("output") or last.get("content")), digest)
    if last.get("role") == "user":
        return TurnFacts(True, False, digest)
    return TurnFacts(False, False, digest)


def _gemini_turn(last: dict, digest: str) -> TurnFacts:
    """Gemini `contents`: a user turn whose parts carry `functionResponse` is a tool result, failed when
    the response object holds an `error` (how Gemini CLI reports a failed tool)."""
    if last.get("role") != "user":
        return TurnFacts(False, False, digest)
    parts = [p for p in last.get("parts") or [] if isinstance(p, dict)]
    results = [p["functionResponse"] for p in parts if isinstance(p.get("functionResponse"), dict)]
    if not results:
        return TurnFacts(True, False, digest)
    failed = any(isinstance(r.get("response"), dict) and "error" in r["response"] for r in results)
    return TurnFacts(False, failed, digest)


def _failed_output(output) -> bool:
    """Codex function_call_output: a JSON string with metadata.exit_code, or text with 'Exit code: N'."""
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
