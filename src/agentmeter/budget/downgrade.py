"""Rewriting a request for a cheaper model (sans-io). The request stays byte-identical apart from the
model, unless the cheaper model would reject something the original accepted; then only that is changed,
so the agent never sees a 400 caused by agentmeter (wire-protocols 1.4 and 7.13)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# Output-token limits of the ladder's cheaper rungs (provider docs); a larger max_tokens is clamped.
MAX_OUTPUT = {
    "claude-haiku-4-5": 64000,
    "claude-sonnet-4": 64000,
    "claude-opus-4": 32000,
    "gpt-5.1-mini": 128000,
    "gpt-5-mini": 128000,
}
# Betas only the larger models accept.
LARGE_ONLY_BETAS = ("context-1m-",)


@dataclass(frozen=True)
class Rewrite:
    body: bytes
    beta: str | None  # the new anthropic-beta header, when it changed
    changed: tuple[str, ...]  # what besides the model was changed, for the ledger's reason


def _limit(model: str) -> int | None:
    return next((v for k, v in MAX_OUTPUT.items() if model.startswith(k)), None)


def rewrite(provider: str, raw: bytes, body: dict, target: str, beta: str | None = None) -> Rewrite | None:
    """The request for `target`, or None when it cannot be rewritten safely (then: no downgrade)."""
    original = body.get("model")
    if not isinstance(original, str):
        return None
    changed: list[str] = []
    data = dict(body)
    if provider == "anthropic":
        msgs = data.get("messages") or []
        # Thinking blocks are signed by the model that wrote them; another model rejects the signature.
        # At a turn boundary earlier turns' thinking may be dropped (the API ignores it anyway).
        if any(
            isinstance(m, dict)
            and isinstance(m.get("content"), list)
            and any(isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking") for b in m["content"])
            for m in msgs
        ):
            data["messages"] = [_without_thinking(m) for m in msgs]
            changed.append("thinking blocks")
        if "haiku" in target:
            th = data.get("thinking")
            if isinstance(th, dict) and th.get("type") == "adaptive":  # adaptive thinking is 4.6+ only
                data.pop("thinking")
                changed.append("adaptive thinking")
            oc = data.get("output_config")
            if isinstance(oc, dict) and "effort" in oc:
                data["output_config"] = {k: v for k, v in oc.items() if k != "effort"} or None
                if data["output_config"] is None:
                    data.pop("output_config")
                changed.append("effort")
    else:
        items = data.get("input")
        if isinstance(items, list) and any(isinstance(i, dict) and i.get("type") == "reasoning" for i in items):
            # Encrypted reasoning from another model fails to decrypt (Codex: EncryptedContentInvalid).
            data["input"] = [i for i in items if not (isinstance(i, dict) and i.get("type") == "reasoning")]
            changed.append("reasoning items")
    limit = _limit(target)
    for key in ("max_tokens", "max_output_tokens", "max_completion_tokens"):
        if limit and isinstance(data.get(key), int) and data[key] > limit:
            data[key] = limit
            changed.append(key)
    new_beta = beta
    if provider == "anthropic" and beta and not any(s in target for s in ("opus", "sonnet")):
        kept = [b for b in (p.strip() for p in beta.split(",")) if b and not b.startswith(LARGE_ONLY_BETAS)]
        if len(kept) != len([p for p in beta.split(",") if p.strip()]):
            new_beta = ",".join(kept)
            changed.append("betas")
    if changed:
        data["model"] = target
        out = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        swapped = _swap_model(raw, original, target)
        if swapped is None:
            data["model"] = target
            swapped = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        out = swapped
    return Rewrite(out, new_beta if new_beta != beta else None, tuple(changed))


def _swap_model(raw: bytes, original: str, target: str) -> bytes | None:
    """Replace the top-level model value in place; everything else stays byte for byte."""
    pattern = re.compile(rb'("model"\s*:\s*)"' + re.escape(json.dumps(original)[1:-1].encode()) + rb'"')
    m = pattern.search(raw)
    if not m:
        return None
    out = raw[: m.start()] + m.group(1) + json.dumps(target).encode() + raw[m.end() :]
    try:
        if json.loads(out).get("model") != target:
            return None
    except ValueError:
        return None
    return out


def _without_thinking(message):
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    content = [
        b
        for b in message["content"]
        if not (isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking"))
    ]
    return {**message, "content": content or [{"type": "text", "text": ""}]}
