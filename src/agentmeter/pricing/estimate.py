"""A sane estimate for a model the price data does not know yet (a release newer than the data).

The rule: among the provider's known models, take those sharing the longest run of leading name parts
with the request (split on `- . _ :`, after the date suffix is dropped), and at least the family: two
parts (`gpt-5…` shares `gpt`, `5`; `claude-sonnet-…` shares `claude`, `sonnet`). A candidate may differ
only by version numbers: named siblings (`gpt-5.6-luna`) and variants (`pro`, `mini`, `nano`, `image`,
`search`, …) the request does not name are skipped, and a variant the request names is required (a
`mini` is estimated from a `mini`). Of what is left, the model whose version (its first two numbers) is
nearest the request's wins, then the most expensive input rate (the conservative end of the family,
never of the provider). No candidate: no estimate, and the conservative fallback applies.

The estimate is flagged: the row is `unpriced`, `price_source` is `estimate`, and the reason names the
model it was estimated from and the override to set.
"""

from __future__ import annotations

from typing import Any

_VARIANT_PARTS = frozenset(
    {
        "pro",
        "mini",
        "nano",
        "image",
        "audio",
        "realtime",
        "search",
        "deep",
        "research",
        "tts",
        "transcribe",
        "embedding",
        "instruct",
        "preview",
        "chat",
        "haiku",
        "opus",
        "sonnet",
        "cyber",
    }
)
_MIN_SHARED = 2


def nearest(providers: list[Any], provider: str, parts: list[str], split) -> Any | None:
    """The genai-prices ModelInfo to estimate from, or None."""
    models = next((p.models for p in providers if p.id == provider), None)
    if not models or len(parts) < _MIN_SHARED:
        return None
    want = _version(parts)
    variants = set(parts) & _VARIANT_PARTS  # a `mini` request is estimated from a `mini`, never its big sibling
    best, best_key = None, None
    for m in models:
        got = split(m.id)
        shared = _shared(parts, got)
        if shared < _MIN_SHARED or got == parts:
            continue
        extra = set(got[shared:]) - set(parts)
        if not variants <= set(got):
            continue
        if extra & _VARIANT_PARTS or any(not p.isdigit() for p in extra):
            continue  # a variant or a named sibling (`gpt-5.6-luna`), not the family's line
        key = (shared, -abs(want - _version(got)), _input_rate(m))
        if best_key is None or key > best_key:
            best, best_key = m, key
    return best


def _version(parts: list[str]) -> float:
    """`gpt-5.4-codex` -> 5.4, `claude-sonnet-4-5` -> 4.5: the first two numeric parts."""
    nums = [p for p in parts if p.isdigit()][:2]
    return float(".".join(nums)) if nums else 0.0


def _shared(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _input_rate(model: Any) -> float:
    prices = model.prices[-1].prices if isinstance(model.prices, list) else model.prices
    v = getattr(prices, "input_mtok", None)
    if v is None:
        return 0.0
    return float(v.base if hasattr(v, "base") else v)
