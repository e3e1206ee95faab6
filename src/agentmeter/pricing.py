"""Tokens to dollars (DESIGN section 5). Pure core: no I/O, no clock, no sqlite.

Order: a config override (`[prices."provider:model"]`, USD per million tokens) wins; otherwise the
bundled genai-prices data; otherwise the model is *unpriced* and counted at a conservative fallback
rate (the configured `unknown_model` rate, else the provider's most expensive known rates), never $0.

genai-prices costs about 200 ms to import, so it is imported inside functions only: `agentmeter status`
imports this module without paying for it.

Fuzzy-match guard. genai-prices matches names loosely (prefix rules and curated aliases; 0.2.3 even lists
`gpt-5.1-mini` as an alias of `gpt-5.1-codex-mini`). Its match is accepted only when the requested name
is the matched id plus qualifiers: both names are lowercased and stripped of a `provider/` prefix, a date
suffix (`-20250929`, `-2025-09-29`, `@20250929`), `-latest` and a trailing `-0` (`claude-opus-4-0` is
`claude-opus-4`), then split on `- . _ :`. The matched id's parts must be the leading parts of the
request's, and the extra parts must not include `pro` (a premium sibling; under-pricing is the dangerous
direction). Accepted: `claude-sonnet-4-5-20250929` -> `claude-sonnet-4-5`, `gpt-5.1-codex` -> `gpt-5.1`,
`gpt-5-codex` -> `gpt-5` (genai-prices prices codex variants as their base model, as OpenAI does).
Rejected: `gpt-5.1-mini` -> `gpt-5.1-codex-mini` (the match adds a part the request lacks, so it names a
different model) and `claude-sonnet-4-5-pro` -> `claude-sonnet-4-5`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from agentmeter.models import Cost, PriceRate, Usage

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["PriceExplanation", "explain", "fallback_rate", "price"]

GENAI_PRICES = "genai-prices"
# Providers whose combined maximum prices a request to a provider genai-prices does not know.
_MAJOR_PROVIDERS = ("anthropic", "openai")
_PREMIUM_PARTS = frozenset({"pro"})
# Anthropic and OpenAI both list $10 per 1,000 web searches; used where genai-prices is not (override,
# fallback). genai-prices' own rate applies on its path.
_WEB_SEARCH_USD = 10.0 / 1000
_DATE_SUFFIX = re.compile(r"[-@](?:\d{8}|\d{4}-\d{2}-\d{2})$")
# genai-prices price keys, in PriceRate field order.
_KEYS = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok")
_RATE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")


@dataclass(frozen=True, slots=True)
class PriceExplanation:
    """How `provider:model` is priced; backs `agentmeter prices explain MODEL`. Rates are USD per million."""

    provider: str
    model: str
    source: str  # `override`, `genai-prices` or `fallback`
    matched_model: str | None
    input: float
    output: float
    cache_read: float
    cache_write: float  # 5-minute writes
    cache_write_1h: float
    # A prompt (uncached + cache reads + cache writes) over this many tokens bills *entirely* at
    # `long_context`; None when the model has no long-context tier.
    long_context_threshold: int | None
    long_context: PriceRate | None
    price_version: str | None
    unpriced: bool
    why: str


def price(
    provider: str,
    model: str | None,
    usage: Usage,
    *,
    overrides: Mapping[str, PriceRate] = {},
    unknown_model: PriceRate | None = None,
    service_tier: str | None = None,
    at: datetime | None = None,
) -> Cost:
    """The USD cost of one request. `at` is the request time (None: genai-prices' current prices)."""
    provider = provider.strip().lower()
    if not model or not model.strip():
        return _fallback_cost(provider, usage, unknown_model, "no model name in the request")
    if hit := _override(overrides, provider, model, _plain_name(model)):
        return _override_cost(usage, *hit)
    calc, why, version = _lookup(provider, model, usage, service_tier, at)
    if calc is None:
        return _fallback_cost(provider, usage, unknown_model, why, version)
    if hit := _override(overrides, provider, calc.model.id):
        return _override_cost(usage, *hit)
    return Cost(_usd(calc.total_price), GENAI_PRICES, matched_model=calc.model.id, price_version=version)


def explain(
    provider: str,
    model: str,
    *,
    overrides: Mapping[str, PriceRate] = {},
    unknown_model: PriceRate | None = None,
    service_tier: str | None = None,
    at: datetime | None = None,
) -> PriceExplanation:
    """Which source prices `provider:model`, at what rates, and why."""
    provider = provider.strip().lower()
    name, calc, why, version = f"{provider}:{model}", None, None, None
    hit = _override(overrides, provider, model, _plain_name(model))
    if hit is None:
        calc, why, version = _lookup(provider, model, Usage(), service_tier, at)
        hit = _override(overrides, provider, calc.model.id) if calc is not None else None
    explained = partial(PriceExplanation, provider, model, long_context_threshold=None, long_context=None,
                        price_version=version, unpriced=False)
    if hit is not None:
        key_model, rate = hit
        text = f'config [prices."{provider}:{key_model}"] prices {name}'
        if calc is not None:
            text += f" (genai-prices matched {calc.model.id})"
        if None in (rate.cache_read, rate.cache_write, rate.cache_write_1h):
            text += "; unset cache rates default to 0.1x (read), 1.25x (5m write), 2x (1h write) input"
        return explained("override", key_model, **_fields(_filled(rate)), price_version=None, why=text)
    if calc is not None:
        base, threshold, tier = _rates_of(calc.model_price)
        text = f"genai-prices {version} prices {name} as {calc.model.id}"
        if threshold is not None:
            text += f"; a prompt over {threshold:,} tokens bills entirely at the long-context rates"
        return explained(GENAI_PRICES, calc.model.id, **_fields(base), long_context_threshold=threshold,
                         long_context=tier, why=text)
    rate, how = _fallback(provider, unknown_model)
    text = f"{why}; counted as unpriced at {how}"
    return explained("fallback", None, **_fields(rate), unpriced=True, why=text)


@cache
def fallback_rate(provider: str) -> PriceRate:
    """The provider's most expensive known rates: each bucket's maximum explicit rate over the provider's
    models in genai-prices (current prices, long-context tiers included); a bucket no model prices gets
    the default multiple of the maximum input rate. A provider genai-prices does not know gets the
    bucket-wise maximum over Anthropic and OpenAI."""
    from genai_prices import data_snapshot

    providers = {p.id: p for p in data_snapshot.get_snapshot().providers}
    pid = provider.strip().lower()
    if pid not in providers:
        rates = [fallback_rate(p) for p in _MAJOR_PROVIDERS if p in providers]
        return PriceRate(*(max(getattr(r, f) for r in rates) for f in _RATE_FIELDS))
    best: dict[str, float] = {}
    for model in providers[pid].models:
        # The last conditional price is the newest (later ones take precedence in genai-prices).
        prices = model.prices[-1].prices if isinstance(model.prices, list) else model.prices
        for key in _KEYS:
            value = getattr(prices, key, None)
            if value is not None:
                top = max([value.base, *(t.price for t in value.tiers)]) if _tiered(value) else value
                best[key] = max(best.get(key, 0.0), float(top))
    inp, out, read, write, write_1h = (best.get(key) for key in _KEYS)
    return _filled(PriceRate(inp or 0.0, out or 0.0, read, write, write_1h))


def _known_provider(provider: str) -> bool:
    from genai_prices import data_snapshot

    return any(p.id == provider for p in data_snapshot.get_snapshot().providers)


# --- genai-prices ---------------------------------------------------------------------------------------


def _lookup(provider: str, model: str, usage: Usage, service_tier: str | None, at: datetime | None):
    """(genai-prices' PriceCalculation, None, version) for an accepted match, else (None, reason, version)."""
    import genai_prices

    version = genai_prices.__version__
    name = f"{provider}:{model}"
    try:
        calc = genai_prices.calc_price(
            _gp_usage(usage),
            model.strip().rsplit("/", 1)[-1],
            provider_id=provider,
            genai_request_timestamp=at,
            price_context={"service_tier": service_tier} if service_tier else None,
        )
    except LookupError as e:
        what = f"unknown provider {provider!r}" if "find provider" in str(e) else "no price"
        return None, f"{what} for {name} in genai-prices {version}", version
    except ValueError as e:  # usage genai-prices refuses; count it rather than fail the request
        return None, f"genai-prices {version} could not price {name}: {e}", version
    if not _same_model(model, calc.model.id):
        reason = f"genai-prices {version} matches {name} to {calc.model.id}, a different model name"
        return None, reason, version
    return calc, None, version


def _gp_usage(usage: Usage) -> Any:
    """Our buckets as genai-prices' Usage, whose `input_tokens` is the TOTAL prompt (uncached + cache
    reads + cache writes) and whose `cache_write_tokens` total includes the 1h subset."""
    from genai_prices import Usage as GPUsage

    uncached, read, write_5m, write_1h, output = _buckets(usage)
    return GPUsage(
        input_tokens=uncached + read + write_5m + write_1h,
        cache_read_tokens=read,
        cache_write_tokens=write_5m + write_1h,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        output_tokens=output,
        web_searches=max(usage.web_search_requests, 0),
    )


def _rates_of(prices: Any) -> tuple[PriceRate, int | None, PriceRate | None]:
    """Effective base rates, the long-context threshold and the rates above it, from a ModelPrice.
    Unpriced buckets bill as genai-prices bills them: reads and writes at input, 1h writes at 5m writes."""
    values = {key: getattr(prices, key, None) for key in (*_KEYS, "cache_write_5m_mtok")}
    starts = [v.tiers[0].start for v in values.values() if _tiered(v) and v.tiers]
    threshold = min(starts, default=None)

    def at_level(upper: bool) -> PriceRate:
        def rate(key: str) -> float | None:
            v = values[key]
            if v is None:
                return None
            if _tiered(v):
                return float(v.tiers[0].price if upper and v.tiers else v.base)
            return float(v)

        inp = _first(rate("input_mtok"), 0.0)
        write = _first(rate("cache_write_5m_mtok"), rate("cache_write_mtok"), inp)
        return PriceRate(inp, _first(rate("output_mtok"), 0.0), _first(rate("cache_read_mtok"), inp),
                         write, _first(rate("cache_write_1h_mtok"), write))

    return at_level(False), threshold, (at_level(True) if threshold is not None else None)


# --- overrides, fallback, arithmetic ---------------------------------------------------------------------


def _override(
    overrides: Mapping[str, PriceRate], provider: str, *models: str
) -> tuple[str, PriceRate] | None:
    """(the key's model, rate) of the first `provider:model` key matching one of `models`, ignoring case."""
    if not overrides:
        return None
    table = {key.strip().lower(): (key.split(":", 1)[-1].strip(), rate) for key, rate in overrides.items()}
    for model in models:
        if hit := table.get(f"{provider}:{model.strip().lower()}"):
            return hit
    return None


def _override_cost(usage: Usage, key_model: str, rate: PriceRate) -> Cost:
    return Cost(usd=_usd(_at_rate(usage, rate)), source="override", matched_model=key_model)


def _fallback(provider: str, unknown_model: PriceRate | None) -> tuple[PriceRate, str]:
    if unknown_model is not None:
        return _filled(unknown_model), "the configured unknown_model rate"
    if provider and _known_provider(provider):
        return fallback_rate(provider), f"{provider}'s most expensive known rates"
    return fallback_rate(provider), "the most expensive known Anthropic and OpenAI rates"


def _fallback_cost(
    provider: str, usage: Usage, unknown_model: PriceRate | None, why: str | None, version: str | None = None
) -> Cost:
    rate, how = _fallback(provider, unknown_model)
    return Cost(usd=_usd(_at_rate(usage, rate)), source="fallback", price_version=version, unpriced=True,
                reason=f"{why}; counted as unpriced at {how}")


def _fields(rate: PriceRate) -> dict[str, Any]:
    return {f: getattr(rate, f) for f in _RATE_FIELDS}


def _buckets(usage: Usage) -> tuple[int, int, int, int, int]:
    """(uncached input, cache reads, 5m writes, 1h writes, output), non-negative. The write total is at
    least the 5m + 1h split; writes not attributed to 1h are 5-minute writes."""
    write_1h = max(usage.cache_write_1h_tokens, 0)
    writes = max(usage.cache_write_tokens, max(usage.cache_write_5m_tokens, 0) + write_1h)
    return (max(usage.input_tokens, 0), max(usage.cache_read_tokens, 0), writes - write_1h, write_1h,
            max(usage.output_tokens, 0))


def _at_rate(usage: Usage, rate: PriceRate) -> float:
    r = _filled(rate)
    uncached, read, write_5m, write_1h, output = _buckets(usage)
    tokens = (uncached * r.input + read * r.cache_read + write_5m * r.cache_write
              + write_1h * r.cache_write_1h + output * r.output)
    return tokens / 1e6 + max(usage.web_search_requests, 0) * _WEB_SEARCH_USD


def _filled(rate: PriceRate) -> PriceRate:
    """`rate` with default cache rates: read 0.1x, 5m write 1.25x, 1h write 2x input."""
    inp = float(rate.input)
    return PriceRate(
        input=inp,
        output=float(rate.output),
        cache_read=float(_first(rate.cache_read, 0.1 * inp)),
        cache_write=float(_first(rate.cache_write, 1.25 * inp)),
        cache_write_1h=float(_first(rate.cache_write_1h, 2.0 * inp)),
    )


def _plain_name(model: str) -> str:
    """Lowercase, without a `provider/` prefix, a date suffix or `-latest`."""
    name = _DATE_SUFFIX.sub("", model.strip().lower().rsplit("/", 1)[-1])
    return _DATE_SUFFIX.sub("", name.removesuffix("-latest"))


def _parts(model: str) -> list[str]:
    parts = [p for p in re.split(r"[-._:]", _plain_name(model)) if p]
    if len(parts) > 1 and parts[-1] == "0" and parts[-2].isdigit():
        parts.pop()  # claude-opus-4-0 is claude-opus-4
    return parts


def _same_model(requested: str, matched: str) -> bool:
    """The fuzzy-match guard (module docstring): `requested` is `matched` plus qualifiers, none premium."""
    req, got = _parts(requested), _parts(matched)
    return bool(got) and req[: len(got)] == got and not _PREMIUM_PARTS.intersection(req[len(got):])


def _tiered(value: Any) -> bool:
    return hasattr(value, "tiers") and hasattr(value, "base")


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _usd(value: Any) -> float:
    return max(round(float(value), 9), 0.0)


def warm() -> None:
    """Load genai-prices' data now (the daemon calls this at start), not on the first request."""
    from .models import Usage as _U

    price("anthropic", "claude-sonnet-4-5", _U(input_tokens=1, output_tokens=1))
    fallback_rate("anthropic")
    fallback_rate("openai")
