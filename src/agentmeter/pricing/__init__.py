"""Tokens to dollars (DESIGN section 5). Pure core: no I/O, no clock, no sqlite.

Order: a config override (`[prices."provider:model"]`, USD per million tokens) wins; otherwise the
bundled genai-prices data; otherwise the model is *unpriced* and counted at a conservative fallback
rate (the configured `unknown_model` rate, else the provider's most expensive known rates), never $0.

genai-prices costs about 200 ms to import, so it is imported inside functions only: `agentmeter status`
imports this module without paying for it. It also costs ~0.07 ms a call, so the common call is answered
from a per-model rate card learned from it once and checked to give exactly its result (`_RateCard`).

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
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from agentmeter.core.models import Cost, PriceRate, Usage

from . import data, tiers

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["PriceExplanation", "explain", "fallback_rate", "price", "when"]

GENAI_PRICES = "genai-prices"
CORRECTION = "correction"  # a list price from `tiers.CORRECTIONS`, where genai-prices lacks it
ESTIMATE = "estimate"  # an unknown model priced as the nearest known model of its family (`estimate`)
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
    tier: str | None = None
    # Tier name -> rates genai-prices (or a correction) bills at that tier; dated price changes; corrections.
    tiers: dict[str, Any] = field(default_factory=dict)
    dated: list[dict[str, Any]] = field(default_factory=list)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # `data.DataInfo`: which data, of what date
    override_hint: str = ""


def price(
    provider: str,
    model: str | None,
    usage: Usage,
    *,
    overrides: Mapping[str, PriceRate] = {},
    unknown_model: PriceRate | None = None,
    tier: str | None = None,
    at: datetime | None = None,
    service_tier: str | None = None,
) -> Cost:
    """The USD cost of one request. `tier` is the row's tier (`tiers.normalize_tier`: fast, priority, flex,
    batch; None is standard), `at` the request's own time (None: today's prices); the context length is the
    usage's prompt. `service_tier` is the raw wire value, used when `tier` is not given."""
    tier = tier if tier is not None else tiers.normalize_tier(provider.strip().lower(), service_tier=service_tier)
    return _price(provider, model, usage, overrides, unknown_model, tier, at, cards=True)


def _uncached_price(
    provider: str,
    model: str | None,
    usage: Usage,
    *,
    overrides: Mapping[str, PriceRate] = {},
    unknown_model: PriceRate | None = None,
    tier: str | None = None,
    at: datetime | None = None,
) -> Cost:
    """`price` always asking genai-prices, never a rate card: what the cards are checked against."""
    return _price(provider, model, usage, overrides, unknown_model, tier, at, cards=False)


def _price(
    provider: str,
    model: str | None,
    usage: Usage,
    overrides: Mapping[str, PriceRate],
    unknown_model: PriceRate | None,
    tier: str | None,
    at: datetime | None,
    *,
    cards: bool,
) -> Cost:
    provider = provider.strip().lower()
    if not model or not model.strip():
        return _fallback_cost(provider, usage, unknown_model, "no model name in the request")
    if overrides and (hit := _override(overrides, provider, model, _plain_name(model))):
        return _override_cost(usage, *hit)
    if cards and (table := data.compact_table()) is not None:
        cost = _compact_price(table, provider, model, usage, overrides, unknown_model, tier, at)
        if cost is not None:
            return cost
    data.snapshot()  # the cached update when there is one, reloaded when `prices update` replaced it
    if cards and tier is None and (counts := _counts(usage)) is not None:
        card = _card(provider, model)
        if card is not None and card.miss is not None:
            return _unpriced_cost(provider, model, usage, unknown_model, card.miss, card.version, tier, at)
        if card is not None and card.matched is not None and (at is None or card.valid(at)):
            if overrides and (hit := _override(overrides, provider, card.matched)):
                return _override_cost(usage, *hit)
            if (usd := card.usd(counts)) is not None:
                return Cost(usd, GENAI_PRICES, matched_model=card.matched, price_version=card.version)
    calc, why, version = _lookup(provider, model, usage, tier, at)
    if calc is None:
        return _unpriced_cost(provider, model, usage, unknown_model, why, version, tier, at)
    if hit := _override(overrides, provider, calc.model.id):
        return _override_cost(usage, *hit)
    fix = tiers.correction_for(provider, calc.model.id, tier, _prompt(usage), calc.model, calc.model_price)
    if fix is not None:
        return Cost(
            _usd(_at_rate(usage, fix.rate, fix.web_search_usd)),
            CORRECTION,
            matched_model=calc.model.id,
            price_version=version,
        )
    return Cost(_usd(calc.total_price), GENAI_PRICES, matched_model=calc.model.id, price_version=version)


def _compact_price(
    table: Any,
    provider: str,
    model: str,
    usage: Usage,
    overrides: Mapping[str, PriceRate],
    unknown_model: PriceRate | None,
    tier: str | None,
    at: datetime | None,
) -> Cost | None:
    """`_price` from the compact table (`compact`), without genai-prices; None where the table does not
    decide (then genai-prices does, as before)."""
    from .compact import usd_of

    counts = _counts(usage)
    if counts is None:
        return None
    try:
        m = table.find(provider, model.strip().rsplit("/", 1)[-1])
    except KeyError:  # a provider the table does not hold
        return None
    version, name = table.version, f"{provider}:{model}"
    if m is None:
        return _unpriced_cost(
            provider, model, usage, unknown_model, f"no price for {name} in genai-prices {version}", version, tier, at
        )
    if not _same_model(model, m["id"]):
        return _unpriced_cost(
            provider, model, usage, unknown_model, _rejected(name, m["id"], version), version, tier, at
        )
    if hit := _override(overrides, provider, m["id"]):
        return _override_cost(usage, *hit)
    if m["p"] != provider and tier is not None:  # another provider's model: genai-prices ignores the tier
        return None
    pieces = table.pieces(m, tier, at)
    got = None if pieces is None else usd_of(pieces, counts)
    if got is None:
        return None
    if got[0] == "a":
        return Cost(got[1], GENAI_PRICES, matched_model=m["id"], price_version=version)
    rate, web = got[1]
    return Cost(_usd(_at_rate(usage, PriceRate(*rate), web)), CORRECTION, matched_model=m["id"], price_version=version)


def when(ms: int | None) -> datetime | None:
    """A ledger time (epoch ms) as the aware datetime `price(at=...)` takes."""
    from datetime import UTC
    from datetime import datetime as _dt

    return None if ms is None else _dt.fromtimestamp(ms / 1000, UTC)


def _prompt(usage: Usage) -> int:
    uncached, read, write_5m, write_1h, _ = _buckets(usage)
    return uncached + read + write_5m + write_1h


def _unpriced_cost(
    provider: str,
    model: str,
    usage: Usage,
    unknown_model: PriceRate | None,
    why: str | None,
    version: str | None,
    tier: str | None,
    at: datetime | None,
) -> Cost:
    """A model the data has no price for: the configured `unknown_model` rate, else an estimate from the
    nearest known model of its family (`estimate`), else the provider's most expensive rates. Flagged."""
    hint = f'set [prices."{provider}:{model}"] input/output (USD per million) in config.toml to price it exactly'
    if unknown_model is None and (est := _estimate_from(provider, model)) is not None:
        near = _price(provider, est, usage, {}, None, tier, at, cards=True)
        if not near.unpriced:
            return Cost(
                near.usd,
                ESTIMATE,
                matched_model=est,
                price_version=version,
                unpriced=True,
                reason=f"{why}; estimated at the rates of {provider}:{est}, the nearest known model of its "
                f"family; {hint}",
            )
    cost = _fallback_cost(provider, usage, unknown_model, why, version)
    return replace(cost, reason=f"{cost.reason}; {hint}")


def _estimate_from(provider: str, model: str) -> str | None:
    table = data.compact_table()
    if table is not None and table.known_provider(provider):
        from .estimate import nearest

        m = nearest(table.estimate_view(), provider, _parts(_plain_name(model)), _parts)
        return m.id if m is not None else None
    from genai_prices import data_snapshot

    return _nearest(id(data_snapshot.get_snapshot()), provider, _plain_name(model))


@lru_cache(maxsize=512)
def _nearest(snapshot_id: int, provider: str, name: str) -> str | None:
    from genai_prices import data_snapshot

    from .estimate import nearest

    m = nearest(data_snapshot.get_snapshot().providers, provider, _parts(name), _parts)
    return m.id if m is not None else None


def explain(
    provider: str,
    model: str,
    *,
    overrides: Mapping[str, PriceRate] = {},
    unknown_model: PriceRate | None = None,
    tier: str | None = None,
    at: datetime | None = None,
) -> PriceExplanation:
    """Which source prices `provider:model` (at `tier`, at time `at`), at what rates, and why."""
    provider = provider.strip().lower()
    name, calc, why, version = f"{provider}:{model}", None, None, None
    info = data.info()
    hit = _override(overrides, provider, model, _plain_name(model))
    if hit is None:
        calc, why, version = _lookup(provider, model, Usage(), tier, at)
        hit = _override(overrides, provider, calc.model.id) if calc is not None else None
    hint = (
        f'to set your own rates, add [prices."{provider}:{calc.model.id if calc else model}"] with input = and '
        "output = (USD per million tokens; optional cache_read, cache_write, cache_write_1h) to config.toml "
        "(agentmeter config path), then run agentmeter reprice"
    )
    extra = {"tier": tier, "data": info.as_dict(), "override_hint": hint}
    if calc is not None:
        extra.update(
            _tier_table(provider, calc.model, at),
            dated=_dated(calc.model),
            corrections=[
                {"tier": c.tier, "above": c.above, **_fields(c.rate), "source": c.source}
                for c in tiers.corrections_of(provider, calc.model.id)
            ],
        )
    explained = partial(
        PriceExplanation,
        provider,
        model,
        long_context_threshold=None,
        long_context=None,
        price_version=version,
        unpriced=False,
        **extra,
    )
    if hit is not None:
        key_model, rate = hit
        text = f'config [prices."{provider}:{key_model}"] prices {name}'
        if calc is not None:
            text += f" (genai-prices matched {calc.model.id})"
        if None in (rate.cache_read, rate.cache_write, rate.cache_write_1h):
            text += "; unset cache rates default to 0.1x (read), 1.25x (5m write), 2x (1h write) input"
        return explained("override", key_model, **_fields(_filled(rate)), price_version=None, why=text)
    fix = None if calc is None else tiers.correction_for(provider, calc.model.id, tier, 0, calc.model, calc.model_price)
    if fix is not None:
        text = (
            f"genai-prices {version} prices {name} as {calc.model.id} but has no {tier} rates; agentmeter's "
            f"correction applies the list price from {fix.source}"
        )
        return explained(CORRECTION, calc.model.id, **_fields(_filled(fix.rate)), why=text)
    if calc is not None:
        base, threshold, long_tier = _rates_of(calc.model_price)
        text = f"genai-prices {version} prices {name} as {calc.model.id}"
        if threshold is not None:
            text += f"; a prompt over {threshold:,} tokens bills entirely at the long-context rates"
        fixes = [c for c in tiers.corrections_of(provider, calc.model.id) if c.above is not None and c.tier == tier]
        if threshold is None and fixes:
            threshold, long_tier = fixes[0].above, _filled(fixes[0].rate)
            text += (
                f"; a prompt over {threshold:,} tokens bills entirely at the long-context list price "
                f"(agentmeter's correction, from {fixes[0].source})"
            )
        return explained(
            GENAI_PRICES,
            calc.model.id,
            **_fields(base),
            long_context_threshold=threshold,
            long_context=long_tier,
            why=text,
        )
    if unknown_model is None and (est := _estimate_from(provider, model)) is not None:
        ecalc, _, _ = _lookup(provider, est, Usage(), tier, at)
        if ecalc is not None:
            base, threshold, long_tier = _rates_of(ecalc.model_price)
            text = (
                f"{why}; estimated at the rates of {provider}:{est}, the nearest known model of its family "
                "(flagged * in summaries until it is priced: run agentmeter prices update, or set an override)"
            )
            return explained(
                ESTIMATE,
                est,
                **_fields(base),
                long_context_threshold=threshold,
                long_context=long_tier,
                unpriced=True,
                why=text,
            )
    rate, how = _fallback(provider, unknown_model)
    text = f"{why}; counted as unpriced at {how}"
    return explained("fallback", None, **_fields(rate), unpriced=True, why=text)


def _tier_table(provider: str, info: Any, at: datetime | None) -> dict[str, Any]:
    """Base rates per tier the data (or a correction) has for the model, at `at`."""
    from datetime import UTC
    from datetime import datetime as _dt

    when = at or _dt.max.replace(tzinfo=UTC)  # no time given: the newest prices (the CLI passes today)
    table: dict[str, Any] = {}
    for t in (None, *tiers.offered(provider)):
        fix = next((c for c in tiers.corrections_of(provider, info.id) if c.tier == t and c.above is None), None)
        if fix is not None and not tiers.has_tier(info, provider, t):
            table[t or "standard"] = {**_fields(_filled(fix.rate)), "source": fix.source}
        elif tiers.has_tier(info, provider, t):
            base, _, _ = _rates_of(info.get_prices(when, tiers.price_context(provider, t)))
            table[t or "standard"] = _fields(base)
    return {"tiers": table}


def _dated(info: Any) -> list[dict[str, Any]]:
    """The model's dated prices, oldest first (`from` None: since the model was listed)."""
    if not isinstance(info.prices, list):
        return []
    out = []
    for c in info.prices:
        start = getattr(c.constraint, "start_date", None)
        base, _, _ = _rates_of(c.prices)
        out.append({"from": start.isoformat() if start else None, **_fields(base)})
    return out


def fallback_rate(provider: str) -> PriceRate:
    """`_fallback_rate` for the price data in force."""
    return _fallback_rate(id(data.snapshot()), provider)


@lru_cache(maxsize=64)
def _fallback_rate(snapshot_id: int, provider: str) -> PriceRate:
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


def _lookup(provider: str, model: str, usage: Usage, tier: str | None, at: datetime | None):
    """(genai-prices' PriceCalculation, None, version) for an accepted match, else (None, reason, version)."""
    import genai_prices

    version = genai_prices.__version__
    name = f"{provider}:{model}"
    try:
        calc = _gp_calc(provider, model, usage, tier, at)
    except LookupError as e:
        return None, _unknown(e, provider, name, version), version
    except ValueError as e:  # usage genai-prices refuses; count it rather than fail the request
        return None, f"genai-prices {version} could not price {name}: {e}", version
    if not _same_model(model, calc.model.id):
        return None, _rejected(name, calc.model.id, version), version
    return calc, None, version


def _gp_calc(provider: str, model: str, usage: Usage, tier: str | None = None, at: datetime | None = None) -> Any:
    """genai-prices' PriceCalculation; raises LookupError (no match) and ValueError (usage refused)."""
    import genai_prices

    ref = model.strip().rsplit("/", 1)[-1]
    context = tiers.price_context(provider, tier)
    if context and at is not None:
        at = _tier_time(provider, ref, context, at)
    return genai_prices.calc_price(
        _gp_usage(usage),
        ref,
        provider_id=provider,
        genai_request_timestamp=at,
        price_context=context,
    )


def _tier_time(provider: str, ref: str, context: dict[str, str], at: datetime) -> datetime:
    """genai-prices dates a tier's price variant from when it was added to the data (OpenAI's priority and
    flex variants: 2026-10-12), not from when the vendor started selling the tier (2025). A tier request
    older than every variant for it is priced at the variant's first rates rather than silently at
    standard rates."""
    from datetime import UTC, time
    from datetime import datetime as _dt

    from genai_prices import data_snapshot

    try:
        _, info = data_snapshot.get_snapshot().find_provider_model(ref, None, provider, None)
    except LookupError:
        return at
    variants = [v for v in info.price_variants or () if v.when and all(context.get(k) == w for k, w in v.when.items())]
    if not variants or any(v.constraint is None or v.constraint.active(at) for v in variants):
        return at
    starts = [v.constraint.start_date for v in variants if hasattr(v.constraint, "start_date")]
    return max(at, _dt.combine(min(starts), time(0), UTC)) if starts else at


def _unknown(error: LookupError, provider: str, name: str, version: str) -> str:
    what = f"unknown provider {provider!r}" if "find provider" in str(error) else "no price"
    return f"{what} for {name} in genai-prices {version}"


def _rejected(name: str, matched: str, version: str) -> str:
    return f"genai-prices {version} matches {name} to {matched}, a different model name"


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
        return PriceRate(
            inp,
            _first(rate("output_mtok"), 0.0),
            _first(rate("cache_read_mtok"), inp),
            write,
            _first(rate("cache_write_1h_mtok"), write),
        )

    return at_level(False), threshold, (at_level(True) if threshold is not None else None)


# --- rate cards -----------------------------------------------------------------------------------------
# genai-prices takes ~0.07 ms a call (Decimal arithmetic over its unit registry; a miss rescans every model)
# and `price` runs twice per proxied request, once on the event loop. A rate card is what genai-prices does
# for one `provider:model` at current prices with no service tier, learned once by probing it: the same miss
# for every usage, or an accepted match whose total is exactly affine in the buckets while the prompt stays
# at or under the smallest long-context threshold. Everything else still asks genai-prices.

_CARDS = 512  # agents can send any model string; an LRU keeps the cards bounded
# Larger counts go to genai-prices: up to this its 28-digit Decimal arithmetic is exact, as ours is, so both
# totals round to the same float.
_MAX_COUNT = 10**12
_MIN_TIER = 100  # the probes need this much prompt under a tier; no real model has less


@dataclass(frozen=True, slots=True)
class _RateCard:
    """genai-prices' answer for one `provider:model` (current prices, no service tier). `miss`: the fallback
    reason, the same for every usage. `matched`: the accepted id, whose total is `terms` · (1, uncached,
    cache read, 5m write, 1h write, output, web searches) / `scale` USD while the prompt is at most
    `max_prompt` (None: any prompt). Neither: ask genai-prices every time."""

    snapshot: Any  # the genai-prices data it was learned from
    version: str
    miss: str | None = None
    matched: str | None = None
    terms: tuple[int, ...] = ()
    scale: int = 1
    max_prompt: int | None = None
    info: Any = None  # genai-prices' ModelInfo and the ModelPrice the card was learned from
    prices: Any = None

    def valid(self, at: datetime) -> bool:
        """The card's prices are the ones in force at `at` (dated prices: o3 before 2025-06-10 is not)."""
        return self.info is not None and self.info.get_prices(at) is self.prices

    def usd(self, counts: tuple[int, ...]) -> float | None:
        """`_usd` of genai-prices' total for `_counts(usage)`, or None when the usage is off the card."""
        uncached, read, write_5m, write_1h, output, searches = counts
        if self.max_prompt is not None and uncached + read + write_5m + write_1h > self.max_prompt:
            return None
        c, t_in, t_read, t_5m, t_1h, t_out, t_search = self.terms
        units = (
            c
            + t_in * uncached
            + t_read * read
            + t_5m * write_5m
            + t_1h * write_1h
            + t_out * output
            + t_search * searches
        )
        # int / int is correctly rounded, as float(Decimal) is: the same exact total gives the same float.
        return max(round(units / self.scale, 9), 0.0)


def _counts(usage: Usage) -> tuple[int, int, int, int, int, int] | None:
    """(uncached, cache read, 5m write, 1h write, output, web searches) when each is a plain int up to
    `_MAX_COUNT`; None for anything else (floats, bools, huge counts), which genai-prices prices itself."""
    counts = (*_buckets(usage), max(usage.web_search_requests, 0))
    for n in counts:
        if type(n) is not int or n > _MAX_COUNT:
            return None
    return counts


def _card(provider: str, model: str) -> _RateCard | None:
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    card = _learned_card(id(snapshot), provider, model)
    return card if card.snapshot is snapshot else None


@lru_cache(maxsize=_CARDS)
def _learned_card(snapshot_id: int, provider: str, model: str) -> _RateCard:
    """Keyed by the genai-prices data too: UpdatePrices can replace it. The card holds that data, so the
    id cannot be reused while the card lives."""
    return _learn(provider, model)


def _learn(provider: str, model: str) -> _RateCard:
    """Probe genai-prices: one token (one search) in each bucket alone gives the rates, and the card is
    kept only if mixed usages up to the threshold then agree with genai-prices exactly."""
    import genai_prices
    from genai_prices import data_snapshot

    version, name = genai_prices.__version__, f"{provider}:{model}"
    unknown = _RateCard(data_snapshot.get_snapshot(), version)
    try:
        # No match is decided from the name before the usage is read; the all-positive usage confirms it
        # (genai-prices refuses some usages by which buckets are non-zero, never by their size).
        zero, full = (_ask(provider, model, u, version) for u in (Usage(), _EVERY_BUCKET))
        if isinstance(zero, str) or isinstance(full, str):
            return replace(unknown, miss=zero) if zero == full else unknown
        units = [_ask(provider, model, u, version) for u in _UNIT_PROBES]
    except ValueError:
        return unknown
    if any(
        isinstance(o, str) or o.model is not zero.model or o.model_price is not zero.model_price for o in (full, *units)
    ):
        return unknown
    if not _same_model(model, zero.model.id):
        return replace(unknown, miss=_rejected(name, zero.model.id, version))
    max_prompt = _threshold(zero.model_price)
    for fix in tiers.corrections_of(provider, zero.model.id):  # a long-context correction bills above it
        if fix.tier is None and fix.above is not None:
            max_prompt = fix.above if max_prompt is None else min(max_prompt, fix.above)
    if not _settled(zero.model, zero.model_price) or (max_prompt is not None and max_prompt < _MIN_TIER):
        return unknown
    rates = (zero.total_price, *(u.total_price - zero.total_price for u in units))
    exponent = max(0, *(-int(r.as_tuple().exponent) for r in rates))
    terms = tuple(int(r.scaleb(exponent)) for r in rates)
    if sum(abs(t) for t in terms) * _MAX_COUNT >= 10**27:  # genai-prices' Decimal would round
        return unknown
    card = replace(
        unknown,
        matched=zero.model.id,
        terms=terms,
        scale=10**exponent,
        max_prompt=max_prompt,
        info=zero.model,
        prices=zero.model_price,
    )
    checks = _checks(10**6 if max_prompt is None else min(max_prompt, 10**6))
    return card if all(_agrees(card, provider, model, u, zero.model) for u in checks) else unknown


def _ask(provider: str, model: str, usage: Usage, version: str) -> Any:
    """genai-prices' PriceCalculation, or the reason when it matches no model. ValueError propagates."""
    try:
        return _gp_calc(provider, model, usage)
    except LookupError as e:
        return _unknown(e, provider, f"{provider}:{model}", version)


def _agrees(card: _RateCard, provider: str, model: str, usage: Usage, info: Any) -> bool:
    """The card's total for `usage` is genai-prices' exactly, as a Decimal and after `_usd`."""
    from fractions import Fraction

    try:
        calc = _gp_calc(provider, model, usage)
    except (LookupError, ValueError):
        return False
    counts = _counts(usage)
    if counts is None or calc.model is not info:
        return False
    units = card.terms[0] + sum(t * n for t, n in zip(card.terms[1:], counts, strict=True))
    return Fraction(calc.total_price) == Fraction(units, card.scale) and card.usd(counts) == _usd(calc.total_price)


# One token (one web search) in each bucket alone, in `_counts` order; and every bucket at once.
_UNIT_PROBES = (
    Usage(input_tokens=1),
    Usage(cache_read_tokens=1),
    Usage(cache_write_tokens=1),
    Usage(cache_write_tokens=1, cache_write_1h_tokens=1),
    Usage(output_tokens=1),
    Usage(web_search_requests=1),
)
_EVERY_BUCKET = Usage(
    input_tokens=1,
    cache_read_tokens=1,
    cache_write_tokens=2,
    cache_write_1h_tokens=1,
    output_tokens=1,
    web_search_requests=1,
)


def _checks(prompt: int) -> tuple[Usage, ...]:
    """Usages a card must price exactly as genai-prices does: each bucket alone at `prompt` tokens, mixes
    whose prompt is exactly `prompt` (the tier boundary) and under it, and the largest counts."""
    uncached, write_5m, write_1h = prompt // 10, prompt // 20, prompt // 40
    read = prompt - uncached - write_5m - write_1h
    return (
        Usage(input_tokens=prompt),
        Usage(cache_read_tokens=prompt),
        Usage(cache_write_tokens=prompt),
        Usage(cache_write_tokens=prompt, cache_write_1h_tokens=prompt),
        Usage(output_tokens=10**6),
        Usage(web_search_requests=1000),
        Usage(
            input_tokens=uncached,
            cache_read_tokens=read,
            cache_write_tokens=write_5m + write_1h,
            cache_write_1h_tokens=write_1h,
            output_tokens=12_345,
            web_search_requests=7,
        ),
        Usage(
            input_tokens=prompt // 3 + 1,
            cache_read_tokens=prompt // 5 + 2,
            cache_write_tokens=prompt // 7 + prompt // 11 + 7,
            cache_write_1h_tokens=prompt // 11 + 4,
            output_tokens=98_765,
            web_search_requests=1,
        ),
        Usage(cache_read_tokens=prompt, output_tokens=_MAX_COUNT, web_search_requests=_MAX_COUNT),
    )


def _threshold(prices: Any) -> int | None:
    """The smallest tier start over every price genai-prices would bill: a prompt over it is tiered."""
    starts = [t.start for key, v in vars(prices).items() if not key.startswith("_") and _tiered(v) for t in v.tiers]
    return min(starts, default=None)


def _settled(info: Any, prices: Any) -> bool:
    """genai-prices will go on choosing `prices` for this model at current time: no time-of-day prices, and
    no dated price still to start (the newest dated price is the one in force)."""
    from datetime import UTC, datetime

    from genai_prices.types import StartDateConstraint

    conditions = info.prices if isinstance(info.prices, list) else []
    if any(c.constraint is not None and not isinstance(c.constraint, StartDateConstraint) for c in conditions):
        return False
    return info.get_prices(datetime.max.replace(tzinfo=UTC)) is prices


# --- overrides, fallback, arithmetic ---------------------------------------------------------------------


def _override(overrides: Mapping[str, PriceRate], provider: str, *models: str) -> tuple[str, PriceRate] | None:
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
    table = data.compact_table()
    if provider and table is not None and table.known_provider(provider):
        return PriceRate(*table.providers[provider]["fallback"]), f"{provider}'s most expensive known rates"
    if provider and _known_provider(provider):
        return fallback_rate(provider), f"{provider}'s most expensive known rates"
    return fallback_rate(provider), "the most expensive known Anthropic and OpenAI rates"


def _fallback_cost(
    provider: str, usage: Usage, unknown_model: PriceRate | None, why: str | None, version: str | None = None
) -> Cost:
    rate, how = _fallback(provider, unknown_model)
    return Cost(
        usd=_usd(_at_rate(usage, rate)),
        source="fallback",
        price_version=version,
        unpriced=True,
        reason=f"{why}; counted as unpriced at {how}",
    )


def _fields(rate: PriceRate) -> dict[str, Any]:
    return {f: getattr(rate, f) for f in _RATE_FIELDS}


def _buckets(usage: Usage) -> tuple[int, int, int, int, int]:
    """(uncached input, cache reads, 5m writes, 1h writes, output), non-negative. The write total is at
    least the 5m + 1h split; writes not attributed to 1h are 5-minute writes."""
    write_1h = max(usage.cache_write_1h_tokens, 0)
    writes = max(usage.cache_write_tokens, max(usage.cache_write_5m_tokens, 0) + write_1h)
    return (
        max(usage.input_tokens, 0),
        max(usage.cache_read_tokens, 0),
        writes - write_1h,
        write_1h,
        max(usage.output_tokens, 0),
    )


def _at_rate(usage: Usage, rate: PriceRate, web_search_usd: float = _WEB_SEARCH_USD) -> float:
    r = _filled(rate)
    uncached, read, write_5m, write_1h, output = _buckets(usage)
    tokens = (
        uncached * r.input
        + read * r.cache_read
        + write_5m * r.cache_write
        + write_1h * r.cache_write_1h
        + output * r.output
    )
    return tokens / 1e6 + max(usage.web_search_requests, 0) * web_search_usd


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


@lru_cache(maxsize=1024)
def _same_model(requested: str, matched: str) -> bool:
    """The fuzzy-match guard (module docstring): `requested` is `matched` plus qualifiers, none premium."""
    req, got = _parts(requested), _parts(matched)
    return bool(got) and req[: len(got)] == got and not _PREMIUM_PARTS.intersection(req[len(got) :])


def _tiered(value: Any) -> bool:
    return hasattr(value, "tiers") and hasattr(value, "base")


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _usd(value: Any) -> float:
    return max(round(float(value), 9), 0.0)


def warm() -> None:
    """Make the first request as fast as the next (the daemon calls this at start): load the compact price
    table (building it in a child process when missing or stale), or else genai-prices' data."""
    from ..core.models import Usage as _U

    if data.ensure_compact() is not None:
        price("anthropic", "claude-sonnet-4-5", _U(input_tokens=1, output_tokens=1))
        return

    price("anthropic", "claude-sonnet-4-5", _U(input_tokens=1, output_tokens=1))
    fallback_rate("anthropic")
    fallback_rate("openai")
