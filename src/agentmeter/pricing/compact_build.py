"""Compile the price data in force into the daemon's compact table (`compact`), from genai-prices itself.

Each model's price at each tier is learned by probing genai-prices (one token in each bucket alone, at the
bottom of each prompt range between tier thresholds) and kept only when mixed usages across the range —
both of its ends included — give genai-prices' total exactly; a range that does not check out is left to
genai-prices (`"g"`). Run by `prices update` and, when the table is missing or stale, by the daemon at start
in a child process (`python -m agentmeter.pricing.compact_build`), so the daemon never loads genai-prices.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from agentmeter.core.models import Usage

from . import compact, data, tiers

_UNIT_BUCKETS = (
    {"input_tokens": 1},
    {"cache_read_tokens": 1},
    {"cache_write_tokens": 1},
    {"cache_write_tokens": 1, "cache_write_1h_tokens": 1},
    {"output_tokens": 1},
    {"web_search_requests": 1},
)


def build(now: datetime) -> dict[str, Any]:
    """The compact table (a JSON-able dict) for the price data in force at `now` (aware, UTC)."""
    import genai_prices
    from genai_prices import data_snapshot

    from . import _RATE_FIELDS, fallback_rate
    from .estimate import _input_rate

    data.snapshot()
    # The key names the cache file as the daemon sees it (also one that failed to load: then the bundled
    # data is in force for it, in genai-prices and in this table alike).
    key = compact.data_key(compact.stat_of(data.cache_path()))
    providers: dict[str, Any] = {}
    for p in data_snapshot.get_snapshot().providers:
        if p.id not in data.KEEP:
            continue
        models = []
        for m in p.models:
            models.append(
                {
                    "id": m.id,
                    "p": p.id,
                    "match": _clause(m.match),
                    "input_rate": _input_rate(m),
                    "tiers": {
                        t or "": entry
                        for t in (None, *tiers.offered(p.id))
                        if (entry := _tier_entry(p, m, t, now)) is not None
                    },
                }
            )
        rate = fallback_rate(p.id)
        providers[p.id] = {
            "models": models,
            "fallbacks": list(p.fallback_model_providers or ()),
            "fallback": [getattr(rate, f) for f in _RATE_FIELDS],
        }
    unknown = fallback_rate("agentmeter-no-such-provider")
    return {
        "key": key,
        "version": genai_prices.__version__,
        "providers": providers,
        "unknown_fallback": [getattr(unknown, f) for f in _RATE_FIELDS],
    }


def write(table: dict[str, Any]) -> Path:
    """Store `table` where the daemon looks for it (private modes); its path."""
    from ..home.paths import write_private

    path = data.compact_path(table["key"])
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, json.dumps(table, separators=(",", ":")))
    return path


def _clause(c: Any) -> Any:
    for kind in ("starts_with", "ends_with", "contains", "regex", "equals"):
        if hasattr(c, kind):
            return [kind, getattr(c, kind)]
    if hasattr(c, "or_"):
        return ["or", [_clause(x) for x in c.or_]]
    if hasattr(c, "and_"):
        return ["and", [_clause(x) for x in c.and_]]
    raise ValueError(f"unknown genai-prices match clause {c!r}")


def _tier_entry(provider: Any, m: Any, tier: str | None, now: datetime) -> dict[str, Any] | None:
    """{"from": ISO date the prices are in force since (None: always), "pieces": [...]}, or None when the
    tier's prices are not settled (time-of-day prices, a dated price still to start)."""
    from genai_prices.types import StartDateConstraint

    context = tiers.price_context(provider.id, tier)
    since = None
    conditions = m.prices if isinstance(m.prices, list) else []
    if any(c.constraint is not None and not isinstance(c.constraint, StartDateConstraint) for c in conditions):
        return None
    if m.get_prices(datetime.max.replace(tzinfo=UTC)) is not m.get_prices(now):
        return None
    active = next((c for c in reversed(conditions) if c.constraint is None or c.constraint.active(now)), None)
    if active is not None and active.constraint is not None:
        since = active.constraint.start_date
    for v in m.price_variants or () if context else ():
        if not all(context.get(k) == w for k, w in v.when.items()):
            continue
        if v.constraint is None:
            continue
        if not isinstance(v.constraint, StartDateConstraint) or not v.constraint.active(now):
            return None  # time-of-day, or a variant still to start: genai-prices decides
        since = v.constraint.start_date if since is None else max(since, v.constraint.start_date)
    prices = m.get_prices(now, context)
    bounds = sorted(
        {t.start for k, v in vars(prices).items() if not k.startswith("_") and _tiered(v) for t in v.tiers}
        | {c.above for c in tiers.corrections_of(provider.id, m.id) if c.above is not None}
    )
    pieces: list[Any] = []
    lows = [None, *bounds]
    for lo, hi in zip(lows, [*bounds, None], strict=True):
        pieces.append([hi, *_piece(provider, m, tier, context, now, lo, hi)])
    return {"from": since.isoformat() if since else None, "pieces": pieces}


def _piece(provider: Any, m: Any, tier: str | None, context: Any, now: datetime, lo: int | None, hi: int | None):
    """("a", terms, scale) | ("r", rate fields, web search USD) | ("g",) for prompts in (lo, hi]."""
    base = 0 if lo is None else lo + 1
    if hi is not None and hi - base < 2:
        return ("g",)

    def total(usage: Usage) -> Any:
        from . import _gp_usage

        return m.calc_price(_gp_usage(usage), provider, genai_request_timestamp=now, price_context=context)

    try:
        first = total(Usage(input_tokens=base))
        fix = tiers.correction_for(provider.id, m.id, tier, base, m, first.model_price)
        if fix is not None:
            r = fix.rate
            return ("r", [r.input, r.output, r.cache_read, r.cache_write, r.cache_write_1h], fix.web_search_usd)
        b = first.total_price
        units = [total(_plus(Usage(input_tokens=base), d)).total_price - b for d in _UNIT_BUCKETS]
    except (LookupError, ValueError):
        return ("g",)
    rates = (b - units[0] * base, *units)
    exponent = max(0, *(-int(r.as_tuple().exponent) for r in rates))
    terms = [int(r.scaleb(exponent)) for r in rates]
    if any(Fraction(t, 10**exponent) != Fraction(r) for t, r in zip(terms, rates, strict=True)):
        return ("g",)
    if sum(abs(t) for t in terms) * 10**12 >= 10**27:  # genai-prices' 28-digit Decimal would round
        return ("g",)
    from . import _checks, _counts, _usd

    checks = [*_checks(min(hi, 10**7) if hi is not None else 10**7), Usage(input_tokens=base)]
    if hi is not None:
        checks += [Usage(input_tokens=hi), Usage(input_tokens=hi - 5, cache_read_tokens=5, output_tokens=3)]
    if lo is not None:
        checks += [Usage(input_tokens=lo + 1, output_tokens=1), Usage(cache_read_tokens=lo + 1)]
    for u in checks:
        counts = _counts(u)
        prompt = sum(counts[:4]) if counts else 0
        if counts is None or (hi is not None and prompt > hi) or (lo is not None and prompt <= lo):
            continue
        try:
            want = total(u).total_price
        except (LookupError, ValueError):
            return ("g",)
        got = terms[0] + sum(t * n for t, n in zip(terms[1:], counts, strict=True))
        piece = [hi, "a", terms, 10**exponent]
        if Fraction(got, 10**exponent) != Fraction(want) or compact.usd_of([piece], counts) != ("a", _usd(want)):
            return ("g",)
    return ("a", terms, 10**exponent)


def _plus(u: Usage, d: dict[str, int]) -> Usage:
    return replace(u, **{k: getattr(u, k) + n for k, n in d.items()})


def _tiered(value: Any) -> bool:
    return hasattr(value, "tiers") and hasattr(value, "base")


def main() -> int:
    try:
        from agentmeter.core.clock import SystemClock

        write(build(SystemClock().now()))
    except Exception as e:  # the daemon falls back to genai-prices in process; say why on its stderr
        sys.stderr.write(f"agentmeter: could not build the compact price table ({e})\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
