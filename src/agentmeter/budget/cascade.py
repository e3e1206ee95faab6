"""One step down the provider's model ladder (config [cascade]), or by family for models outside it."""

from __future__ import annotations

import re

# The DESIGN example ladder names gpt-5.1-mini, which no price table (and so likely no API) knows; the
# defaults use models that exist. A configured [cascade] wins.
DEFAULT_LADDERS = {
    "anthropic": ("claude-opus-4-8", "claude-sonnet-4-6", "claude-haiku-4-5"),
    "openai": ("gpt-5.1", "gpt-5-mini"),
    "gemini": ("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"),
}
# Gemini's tiers within one generation: gemini-3-pro-preview -> gemini-3-flash-preview -> …-flash-lite-….
_GEMINI_TIERS = (("-pro", "-flash"), ("-flash", "-flash-lite"))
_ANTHROPIC_FAMILIES = ("opus", "sonnet", "haiku")
# A dated or aliased variant of a rung: claude-sonnet-4-5-20250929, gpt-5.1-2025-11-13, …-latest.
_VARIANT = r"(-(\d{8}|\d{4}-\d{2}-\d{2}|latest))?"


def _is_rung(model: str, rung: str) -> bool:
    return re.fullmatch(re.escape(rung.lower()) + _VARIANT, model) is not None


def next_cheaper(provider: str, model: str | None, ladders: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """The model one step cheaper than `model`, or None when there is no cheaper one."""
    if not model:
        return None
    ladder = tuple((ladders or {}).get(provider) or DEFAULT_LADDERS.get(provider, ()))
    m = model.lower()
    for i, rung in enumerate(ladder):
        if _is_rung(m, rung):
            return ladder[i + 1] if i + 1 < len(ladder) else None
    if provider == "anthropic":
        for i, fam in enumerate(_ANTHROPIC_FAMILIES[:-1]):
            if re.search(rf"(^|-){fam}(-|$)", m):
                cheaper = _ANTHROPIC_FAMILIES[i + 1]
                return next((r for r in ladder if cheaper in r.lower()), None)
        return None
    if provider == "openai":
        if re.search(r"-(mini|nano)(-|$)", m):
            return None  # already the small model
        if "codex" in m:
            return "gpt-5.1-codex-mini"
        return ladder[-1] if ladder and ladder[-1].lower() != m else None
    if provider == "gemini":
        if "-flash-lite" in m:
            return None
        for tier, cheaper in _GEMINI_TIERS:
            if re.search(rf"{tier}(-|$)", m):
                return re.sub(rf"{tier}(?=-|$)", cheaper, m, count=1)
    return None
