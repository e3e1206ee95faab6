"""One step down the provider's model ladder (config [cascade]), or by family for models outside it."""

from __future__ import annotations

import re

DEFAULT_LADDERS = {
    "anthropic": ("claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5"),
    "openai": ("gpt-5.1", "gpt-5.1-mini"),
}
_ANTHROPIC_FAMILIES = ("opus", "sonnet", "haiku")


def next_cheaper(provider: str, model: str | None, ladders: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """The model one step cheaper than `model`, or None when there is no cheaper one."""
    if not model:
        return None
    ladder = tuple((ladders or {}).get(provider) or DEFAULT_LADDERS.get(provider, ()))
    m = model.lower()
    for i, rung in enumerate(ladder[:-1]):
        if m == rung.lower() or m.startswith(rung.lower() + "-"):  # dated variants
            return ladder[i + 1]
    if provider == "anthropic":
        for i, fam in enumerate(_ANTHROPIC_FAMILIES[:-1]):
            if re.search(rf"(^|-){fam}(-|$)", m):
                cheaper = _ANTHROPIC_FAMILIES[i + 1]
                return next((r for r in ladder if cheaper in r.lower()), None)
        return None
    if provider == "openai":
        if m.endswith("-mini") or "-mini-" in m or m.endswith("-nano"):
            return None
        base = re.sub(r"-(codex(-max)?|chat-latest|pro)$", "", m)
        return f"{base}-mini"
    return None
