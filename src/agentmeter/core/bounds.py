"""Ceilings on numbers that arrive from outside (an upstream's usage, an importer's log, a client's push).

A hostile or broken upstream can report any JSON number as usage: 2**62 tokens priced at $69 trillion and
two such rows overflowed SQLite's 64-bit SUM, which broke `status` and switched the budget check off. Every
number is therefore bounded where a ledger row is built or committed (not in each parser, so every
provider and importer is covered), and the row says so in its `reason`.

The ceilings are far above anything real and far below what can overflow a sum:

- one request, one token bucket: 10,000,000 tokens. The largest context window on sale is 2M tokens and
  the largest output 128k; 10M leaves room for models not yet released. 10M × 8 buckets × 10^11 rows still
  fits in a signed 64-bit integer.
- one request, web searches: 10,000.
- one request, cost: $100,000 (the whole 10M-token ceiling at any list price today is below $10,000).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import RequestRecord, Usage

# What a push to the team collector may carry (collector/validate.py checks it, sync/payload.py keeps to it):
# one item (a developer's day in one dimension, or a session) holds at most 10^12 of anything, a million
# requests of the per-request ceiling; 9.2 million such items would be needed to overflow a 64-bit sum, and
# the collector sums with TOTAL() anyway. Text fields hold at most 256 characters.
MAX_PUSH_COUNT = 10**12
MAX_PUSH_TEXT = 256
MAX_PUSH_USD = 1e9
MAX_TOKENS_PER_REQUEST = 10_000_000
MAX_WEB_SEARCHES_PER_REQUEST = 10_000
MAX_COST_USD_PER_REQUEST = 100_000.0
CLAMP_PREFIX = "usage clamped"


def clip_text(value: str | None, limit: int = MAX_PUSH_TEXT) -> str | None:
    """At most `limit` characters: a 260-character git branch is shortened, never the reason a push fails."""
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def bound_count(value: Any, ceiling: int) -> tuple[int, str | None]:
    """(a whole number in [0, ceiling], why it was changed or None)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0, "not a number"
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0, "not a finite number"
        value = int(value)
    if value < 0:
        return 0, f"negative ({value})"
    if value > ceiling:
        return ceiling, f"{value} over the ceiling {ceiling:,}"
    return value, None


def bound_usage(usage: Usage) -> tuple[Usage, list[str]]:
    """The usage with every bucket within its per-request ceiling, and one note per bucket changed."""
    notes: list[str] = []
    changes: dict[str, int] = {}
    for f in fields(usage):
        raw = getattr(usage, f.name)
        ceiling = MAX_WEB_SEARCHES_PER_REQUEST if f.name == "web_search_requests" else MAX_TOKENS_PER_REQUEST
        got, why = bound_count(raw, ceiling)
        if why is not None or type(raw) is not int:
            changes[f.name] = got
        if why is not None:
            notes.append(f"{f.name} {why}")
    if not changes:
        return usage, notes
    bounded = replace(usage, **changes)
    # The parts stay within their wholes: reasoning within output, the 5m/1h split within cache writes.
    if bounded.reasoning_tokens > bounded.output_tokens:
        bounded = replace(bounded, reasoning_tokens=bounded.output_tokens)
    if bounded.cache_write_5m_tokens + bounded.cache_write_1h_tokens > bounded.cache_write_tokens:
        w1h = min(bounded.cache_write_1h_tokens, bounded.cache_write_tokens)
        bounded = replace(bounded, cache_write_1h_tokens=w1h, cache_write_5m_tokens=bounded.cache_write_tokens - w1h)
    return bounded, notes


def bound_cost(cost: Any) -> tuple[float | None, str | None]:
    if cost is None:
        return None, None
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
        return MAX_COST_USD_PER_REQUEST, "cost_usd not a finite number"
    if cost < 0:
        return 0.0, f"cost_usd negative ({cost})"
    if cost > MAX_COST_USD_PER_REQUEST:
        return MAX_COST_USD_PER_REQUEST, f"cost_usd {cost} over the ceiling {MAX_COST_USD_PER_REQUEST:,.0f}"
    return float(cost), None


def _with_note(reason: str | None, notes: list[str]) -> str:
    text = f"{CLAMP_PREFIX}: {'; '.join(notes)}"
    if reason and reason.startswith(CLAMP_PREFIX):
        return reason
    return f"{text} | {reason}" if reason else text


def bound_record(rec: RequestRecord, *, cost: bool = True) -> RequestRecord:
    """The record with its usage (and, with `cost`, its cost) within the ceilings. A changed record keeps the
    reason it had, behind a note that starts with `usage clamped:` and names each bucket and value."""
    usage, notes = bound_usage(rec.usage)
    usd = rec.cost_usd
    if cost:
        usd, why = bound_cost(rec.cost_usd)
        if why is not None:
            notes.append(why)
    if not notes and usage is rec.usage and usd == rec.cost_usd:
        return rec
    if not notes:
        return replace(rec, usage=usage, cost_usd=usd)
    return replace(rec, usage=usage, cost_usd=usd, reason=_with_note(rec.reason, notes))
