"""Price tiers and the correction layer. Pure: no I/O.

A *tier* is how the provider served (and bills) a request, read off the wire and kept on the row:

| tier       | seen as                                                                | billed at                    |
|------------|------------------------------------------------------------------------|------------------------------|
| `fast`     | Anthropic `usage.speed == "fast"` (Claude Code fast mode)              | the model's fast-mode rates  |
| `priority` | OpenAI `service_tier: "priority"` (request or response; Codex "fast") | the model's priority rates   |
| `flex`     | OpenAI `service_tier: "flex"`                                          | the model's flex rates       |
| `batch`    | `service_tier: "batch"` / Batch API                                   | the model's batch rates      |
| None       | anything else (`standard`, `default`, `auto`, absent)                  | standard rates               |

Anthropic's `usage.service_tier: "priority"` (Priority Tier capacity) is billed at the standard list price
under a commitment, so it prices as standard.

The correction layer: list prices the maintained data (genai-prices) lacks or gets wrong, each with the
vendor page it came from. A correction applies only while the data still lacks it (`applies`): once
genai-prices carries the tier itself, its own rates win. The upstream fix is drafted in the pricing note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentmeter.core.models import PriceRate

TIERS = ("fast", "priority", "flex", "batch")


def normalize_tier(provider: str, *, service_tier: Any = None, speed: Any = None) -> str | None:
    """The row's tier from what the wire said; None is standard."""
    if isinstance(speed, str) and speed.strip().lower() == "fast":
        return "fast"
    if not isinstance(service_tier, str):
        return None
    t = service_tier.strip().lower()
    if t in ("priority", "flex", "batch"):
        # Anthropic's Priority Tier is a capacity commitment billed at standard list prices.
        return None if (t == "priority" and provider == "anthropic") else t
    if t == "fast":  # Codex's "fast" service tier is OpenAI's priority processing
        return "priority" if provider != "anthropic" else "fast"
    return None


def offered(provider: str) -> tuple[str, ...]:
    """The tiers a provider sells (Anthropic: fast mode and batch; OpenAI: priority, flex and batch)."""
    return ("fast", "batch") if provider == "anthropic" else ("priority", "flex", "batch")


def price_context(provider: str, tier: str | None) -> dict[str, str] | None:
    """genai-prices' `price_context` selecting the tier's price variant."""
    if tier is None:
        return None
    if tier == "batch":
        return {"processing": "batch"}
    if provider == "anthropic":
        return {"speed": "fast"} if tier == "fast" else None
    if tier == "fast":
        tier = "priority"
    return {"service_tier": tier}


@dataclass(frozen=True, slots=True)
class Correction:
    """List rates (USD per million) for `provider:model` in `tier` (None: standard); with `above`, only for a
    prompt over that many tokens, billed entirely at these rates (Anthropic's long-context rule)."""

    provider: str
    model: str  # genai-prices' model id
    tier: str | None
    rate: PriceRate
    source: str  # the vendor page the rates are copied from
    above: int | None = None
    web_search_usd: float = 10.0 / 1000

    def applies(
        self, provider: str, model_id: str, tier: str | None, prompt_tokens: int, model_price: Any, has_variant: bool
    ) -> bool:
        if (provider, model_id) != (self.provider, self.model) or tier != self.tier:
            return False
        if self.above is not None:
            # Upstream caught up once any of its prices for the model is tiered.
            if any(hasattr(v, "tiers") for v in vars(model_price).values()):
                return False
            return prompt_tokens > self.above
        return not has_variant


_ANTHROPIC_PRICING = "https://docs.claude.com/en/docs/about-claude/pricing"
_ANTHROPIC_FAST = "https://docs.claude.com/en/docs/build-with-claude/fast-mode"

CORRECTIONS: tuple[Correction, ...] = (
    # "Long context pricing": Sonnet 4 with the 1M context window, a prompt over 200K input tokens bills
    # every token at $6 input / $22.50 output per MTok (cache writes 1.25x / 2x, reads 0.1x of that input).
    # genai-prices 0.2.3 prices claude-sonnet-4-0 flat at $3 / $15.
    Correction(
        "anthropic", "claude-sonnet-4-0", None, PriceRate(6.0, 22.5, 0.6, 7.5, 12.0), _ANTHROPIC_PRICING, above=200_000
    ),
    # Fast mode (research preview) for Opus 4.6: $30 input / $150 output per MTok, 6x standard, the
    # prompt-caching multipliers on top. genai-prices 0.2.3 has no `speed: fast` variant for it.
    Correction("anthropic", "claude-opus-4-6", "fast", PriceRate(30.0, 150.0, 3.0, 37.5, 60.0), _ANTHROPIC_FAST),
)


def correction_for(
    provider: str, model_id: str, tier: str | None, prompt_tokens: int, model: Any, model_price: Any
) -> Correction | None:
    has_variant = bool(price_context(provider, tier)) and _has_variant(model, price_context(provider, tier))
    for c in CORRECTIONS:
        if c.applies(provider, model_id, tier, prompt_tokens, model_price, has_variant):
            return c
    return None


def corrections_of(provider: str, model_id: str) -> list[Correction]:
    return [c for c in CORRECTIONS if (c.provider, c.model) == (provider, model_id)]


def _has_variant(model: Any, context: dict[str, str] | None) -> bool:
    if not context:
        return False
    return any(
        all(context.get(k) == v for k, v in variant.when.items())
        for variant in (getattr(model, "price_variants", None) or ())
    )


def has_tier(model: Any, provider: str, tier: str | None) -> bool:
    """Whether genai-prices' data has a price variant for the tier (standard always has one)."""
    return tier is None or _has_variant(model, price_context(provider, tier))
