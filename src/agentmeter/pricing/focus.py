"""FOCUS 1.2 cost rows: the one mapping both exports use (`agentmeter export --format focus` over the ledger,
`collector export` / `GET /v1/export/focus` over the team's pushes). Pure: a `Charge` in, its rows out.

A charge is one rollup row (day × provider × model × agent × repo × subscription, with who it belongs to);
it becomes one FOCUS row per token type it has. Its recorded cost is split across token types in proportion to
tokens × the model's list rate for each type (`split_cost`), so the parts add up exactly to what the ledger
recorded. Subscription traffic is not billed: BilledCost, EffectiveCost and ContractedCost are 0 and ListCost
is the API-list equivalent. ListUnitPrice is each part's ListCost per PricingUnit, so ListCost = ListUnitPrice ×
PricingQuantity holds on every row, tiers and overrides included.

Columns: every FOCUS 1.2 Cost and Usage column that applies to a metered API (the mandatory ones and the
recommended ChargeFrequency, InvoiceId and ServiceSubcategory), then `x_` columns of our own. An `x_` column is
one line in `X_COLUMNS`. Checked by the FinOps Foundation's validator (`tests/test_focus_validator.py`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

FOCUS_VERSION = "1.2"

# Token types in row order, and the PriceExplanation rate that prices each. Reasoning tokens are part of the
# output and billed as output, so they get no row of their own. Web searches are priced per request.
TOKEN_TYPES = ("input", "cache_read", "cache_write", "cache_write_1h", "output", "web_search")
_RATE_FIELDS = {
    "input": "input",
    "cache_read": "cache_read",
    "cache_write": "cache_write",
    "cache_write_1h": "cache_write_1h",
    "output": "output",
}
WEB_SEARCH_USD_PER_1000 = 10.0  # Anthropic's and OpenAI's list price, the weight of a search in the split

PROVIDER_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI", "gemini": "Google", "google": "Google"}
_SUBSCRIPTION_SERVICES = {
    "anthropic": "Claude subscription",
    "openai": "ChatGPT subscription",
    "gemini": "Gemini subscription",
    "google": "Gemini subscription",
}


@dataclass(frozen=True, slots=True)
class Charge:
    """One rollup row, from whichever store: what the mapping needs and nothing else."""

    day: date
    provider: str
    model: str | None
    agent: str | None
    repo: str | None
    subscription: bool
    developer: str | None
    team: str | None
    cost_center: str | None
    requests: int
    unpriced_requests: int
    quantities: Mapping[str, int]  # per token type (`quantities`)
    costs: Mapping[str, float]  # per token type; adds up to the row's recorded cost (`split_cost`)
    tz: tzinfo = UTC  # the day's time zone: the client's own locally; the collector knows only UTC days
    price_source: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)  # more FOCUS Tags (key=value chargeback tags)


# --- the columns ------------------------------------------------------------------------------------------

FOCUS_COLUMNS = (
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingAccountName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "InvoiceId",
    "InvoiceIssuerName",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceSubcategory",
    "ServiceName",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "ListUnitPrice",
    "PricingCategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceId",
    "SkuPriceDetails",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)

# FOCUS 1.2 Tags: provider-defined tag keys carry a prefix of the provider's (Tags-C-012-M: these are
# agentmeter's attribution); user-defined ones, the chargeback tags of `agentmeter run --tag K=V`, are one scheme
# and so carry none (Tags-C-016-C), and may not use the reserved prefix (Tags-C-017-M: `run` refuses it, and a
# key with it that arrives anyway is left out here).
TAG_PREFIX = "agentmeter/"


def user_tags(c: Charge) -> dict[str, str]:
    """The charge's chargeback tags (`run --tag K=V`), without keys in the reserved prefix."""
    return {k: v for k, v in c.tags.items() if v is not None and not k.lower().startswith(TAG_PREFIX)}


# Our own columns: name → value for (charge, token type). Adding one is one line here.
X_COLUMNS: dict[str, Callable[[Charge, str], Any]] = {
    "x_Developer": lambda c, t: c.developer or None,
    "x_Team": lambda c, t: c.team or None,
    "x_CostCenter": lambda c, t: c.cost_center or None,
    "x_Agent": lambda c, t: c.agent or None,
    "x_Repo": lambda c, t: c.repo or None,
    "x_TokenType": lambda c, t: t,
    "x_Subscription": lambda c, t: c.subscription,
    "x_Requests": lambda c, t: c.requests,
    "x_Unpriced": lambda c, t: c.unpriced_requests > 0,
    # The chargeback tags alone, as a JSON object (null when untagged): one column a FinOps tool can expand
    # without knowing the Tags prefixes. Tagged and untagged traffic of one rollup are separate rows.
    "x_ChargebackTags": lambda c, t: json.dumps(user_tags(c), sort_keys=True) if user_tags(c) else None,
}

COLUMNS = (*FOCUS_COLUMNS, *X_COLUMNS)


# --- quantities and the cost split --------------------------------------------------------------------------


def quantities(row: Mapping[str, Any]) -> dict[str, int]:
    """Billable quantity per token type from a rollup row (the ledger's `usage_daily` or the collector's
    `rollups`: the same token columns). 5-minute writes are the write total less the 1-hour ones."""

    def n(col: str) -> int:
        return max(0, int(row.get(col) or 0))

    write_1h = n("cache_write_1h_tokens")
    writes = max(n("cache_write_tokens"), n("cache_write_5m_tokens") + write_1h)
    return {
        "input": n("input_tokens"),
        "cache_read": n("cache_read_tokens"),
        "cache_write": writes - write_1h,
        "cache_write_1h": write_1h,
        "output": n("output_tokens"),
        "web_search": n("web_search_requests"),
    }


def allocate(total: float, weights: Mapping[str, float]) -> dict[str, float]:
    """Split `total` in proportion to `weights`; the last weighted part takes the remainder, so the parts
    add up to `total` exactly as the ledger recorded it."""
    weighted = [k for k, w in weights.items() if w > 0]
    if not weighted:
        return dict.fromkeys(weights, 0.0)
    whole = sum(weights[k] for k in weighted)
    parts = {k: (total * weights[k] / whole if k in weighted else 0.0) for k in weights}
    parts[weighted[-1]] = total - sum(parts[k] for k in weighted[:-1])
    return parts


def split_cost(row: Mapping[str, Any], rate: Any) -> dict[str, float]:
    """The row's recorded cost per token type: tokens × the model's list rate for each type weighs the split
    (by token count when there is no rate). Types with no quantity and no cost are left out."""
    qty = quantities(row)
    if rate is not None:
        weights = {t: qty[t] * float(getattr(rate, _RATE_FIELDS[t], None) or 0.0) / 1e6 for t in _RATE_FIELDS}
        weights["web_search"] = qty["web_search"] * WEB_SEARCH_USD_PER_1000 / 1000
    else:
        weights = {t: float(qty[t]) for t in TOKEN_TYPES}
    cost = float(row.get("cost_usd") or 0.0)
    parts = allocate(cost, weights)
    if cost and not any(parts.values()):
        parts["input"] = cost  # a cost with nothing to weigh it by (no rates and no tokens)
    return {t: v for t, v in parts.items() if v or qty[t]}


class ListRates:
    """List rates per provider:model from the pricing that priced the ledger (genai-prices + overrides), each
    looked up once per export or sync."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, provider: str, model: str | None) -> Any:
        key = (provider, model or "unknown")
        if key not in self._cache:
            from . import explain

            try:
                got = explain(
                    provider, key[1], overrides=self.config.prices, unknown_model=self.config.unknown_model_price
                )
            except Exception:  # no rates: the cost is then split by token counts
                got = None
            self._cache[key] = got
        return self._cache[key]


# --- splitting a charge by chargeback tags ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TagPart:
    """The share of one rollup row that came from sessions with one set of chargeback tags."""

    tags: Mapping[str, str]
    requests: int
    unpriced_requests: int
    quantities: Mapping[str, int]  # per token type (`quantities`)
    costs: Mapping[str, float]  # per token type (`split_cost`, or the client's `cost_by_type`)


def split_by_tags(c: Charge, parts: Iterable[TagPart]) -> Iterator[Charge]:
    """`c` as one charge per tag set, then the rest (the untagged traffic) if any is left. The parts and the rest
    add up to `c`: quantities exactly, costs to the float (the rest is the difference), so a tag split never
    changes a total."""
    quantities, costs = dict(c.quantities), dict(c.costs)
    requests, unpriced = c.requests, c.unpriced_requests
    for p in parts:
        yield replace(
            c,
            tags={**c.tags, **p.tags},
            requests=p.requests,
            unpriced_requests=p.unpriced_requests,
            quantities=dict(p.quantities),
            costs={k: v for k, v in p.costs.items() if v or p.quantities.get(k)},
        )
        requests, unpriced = requests - p.requests, unpriced - p.unpriced_requests
        for t, q in p.quantities.items():
            quantities[t] = quantities.get(t, 0) - int(q or 0)
        for t, v in p.costs.items():
            costs[t] = costs.get(t, 0.0) - float(v or 0.0)
    quantities = {t: max(0, q) for t, q in quantities.items()}
    costs = {t: (v if v > 1e-9 else 0.0) for t, v in costs.items()}  # float dust of the subtraction
    costs = {t: v for t, v in costs.items() if v or quantities.get(t)}
    if requests > 0 or any(quantities.values()) or any(costs.values()):
        yield replace(
            c, requests=max(0, requests), unpriced_requests=max(0, unpriced), quantities=quantities, costs=costs
        )


# --- the rows ---------------------------------------------------------------------------------------------


def _utc(d: date, tz: tzinfo) -> str:
    return datetime.combine(d, time(), tz).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def focus_rows(c: Charge) -> Iterator[dict[str, Any]]:
    """The FOCUS rows of one charge, one per token type with a quantity or a cost, in `COLUMNS` order."""
    month = c.day.replace(day=1)
    provider = PROVIDER_NAMES.get(c.provider, c.provider.title())
    if c.subscription:
        service = _SUBSCRIPTION_SERVICES.get(c.provider, f"{provider} subscription")
    else:
        service = f"{provider} API"
    model = c.model or "unknown"
    tags: dict[str, str] = user_tags(c)
    tags.update(
        {
            TAG_PREFIX + k: v
            for k, v in (
                ("agent", c.agent),
                ("repo", c.repo),
                ("team", c.team),
                ("cost_center", c.cost_center),
                ("developer", c.developer),
            )
            if v
        }
    )
    account = c.cost_center or c.team or c.developer or "local"
    common = {
        "BillingCurrency": "USD",
        "BillingAccountId": account,
        "BillingAccountName": c.team or c.developer or "local",
        "BillingPeriodStart": _utc(month, c.tz),
        "BillingPeriodEnd": _utc(_next_month(month), c.tz),
        "ChargePeriodStart": _utc(c.day, c.tz),
        "ChargePeriodEnd": _utc(c.day + timedelta(days=1), c.tz),
        "ChargeCategory": "Usage",
        "ChargeClass": None,
        "ChargeFrequency": "Usage-Based",
        # Metered usage, not an invoice line: the provider's invoice (for API keys) is not on the wire, and a
        # charge with no invoice or provisional invoice has a null InvoiceId (FOCUS 1.2, InvoiceId-C-004-C).
        "InvoiceId": None,
        "InvoiceIssuerName": provider,
        "ProviderName": provider,
        "PublisherName": provider,
        "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "Generative AI",
        "ServiceName": service,
        "PricingCategory": "Standard",
        "SkuId": model,
        "SubAccountId": c.developer or None,
        "SubAccountName": c.developer or None,
        "Tags": json.dumps(tags, sort_keys=True),
    }
    for token_type in TOKEN_TYPES:
        qty = int(c.quantities.get(token_type) or 0)
        list_cost = float(c.costs.get(token_type) or 0.0)
        if not qty and not list_cost:
            continue
        per_request = token_type == "web_search"
        per = 1000 if per_request else 1_000_000
        billed = 0.0 if c.subscription else list_cost
        what = f"{model} {token_type.replace('_', ' ')} {'requests' if per_request else 'tokens'}"
        row = {
            **common,
            "BilledCost": billed,
            "EffectiveCost": billed,
            "ListCost": list_cost,
            "ContractedCost": billed,
            "ChargeDescription": what + (" (subscription: API-list equivalent, not billed)" if c.subscription else ""),
            "ConsumedQuantity": qty,
            "ConsumedUnit": "Requests" if per_request else "Tokens",
            "PricingQuantity": qty / per,
            "PricingUnit": "1000 Requests" if per_request else "1000000 Tokens",
            "ListUnitPrice": list_cost / (qty / per) if qty else None,
            "SkuMeter": token_type.replace("_", " ") + (" requests" if per_request else " tokens"),
            "SkuPriceId": f"{model}:{token_type}",
            "SkuPriceDetails": json.dumps({"TokenType": token_type, "Source": c.price_source}),
        }
        yield {col: row[col] for col in FOCUS_COLUMNS} | {
            name: value(c, token_type) for name, value in X_COLUMNS.items()
        }


def csv_cell(value: Any) -> Any:
    """A value as both exports write it to CSV: empty for null, true/false, floats to 10 places (binary noise
    such as 0.30000000000000004 gone), and text a spreadsheet would run as a formula neutralised."""
    from ..core.csvsafe import cell

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return round(value, 10)
    return cell(value)
