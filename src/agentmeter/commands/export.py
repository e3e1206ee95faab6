"""Rows for `agentmeter export`: every request (CSV / JSONL) and FOCUS 1.2 cost rows, streamed. No SQL here
(that is `ledger/reports.py`), no printing (that is `render/report.py`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from ..core.clock import ms_to_iso
from ..ledger import Ledger
from ..ledger import reports as sql
from ..ledger import sync as ledger_sync
from .report import EXTRA_BUCKETS, Window, day_start, next_month
from .views import CONTRACT_BUCKETS

EXPORT_COLUMNS = ("request_id", "session_id", "started_at", "day", "provider", "api", "model_requested", "model_used",
                  "agent", "repo", "branch", "developer", "team", "status", "decision", "subscription",
                  *CONTRACT_BUCKETS, *EXTRA_BUCKETS, "cost_usd", "price_source", "price_model", "unpriced",
                  "partial", "unmetered")


# --- requests --------------------------------------------------------------------------------------------


def request_rows(ledger: Ledger, window: Window) -> Iterator[dict[str, Any]]:
    for r in sql.iter_requests(ledger, *window.ms_bounds()):
        out = {c: r.get(c) for c in EXPORT_COLUMNS}
        out["started_at"] = ms_to_iso(r["started_at"])
        for flag in ("subscription", "unpriced", "partial", "unmetered"):
            out[flag] = bool(r[flag])
        yield out


class Tally:
    """Counts rows and sums some of their columns as they stream past a writer."""

    def __init__(self, *fields: str) -> None:
        self.rows = 0
        self.sums = dict.fromkeys(fields, 0.0)

    def wrap(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.rows += 1
            for f in self.sums:
                self.sums[f] += float(row.get(f) or 0)
            yield row


# --- FOCUS 1.2 ------------------------------------------------------------------------------------------

FOCUS_COLUMNS = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "BillingAccountId",
    "BillingAccountName", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "InvoiceIssuerName", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceSubcategory", "ServiceName", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity",
    "PricingUnit", "ListUnitPrice", "PricingCategory", "SkuId", "SkuPriceDetails", "SubAccountId", "SubAccountName",
    "Tags", "x_Agent", "x_Repo", "x_TokenType", "x_Subscription", "x_Developer", "x_Unpriced",
)
_PROVIDER_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI", "gemini": "Google", "google": "Google"}
_SUBSCRIPTION_SERVICES = {"anthropic": "Claude subscription", "openai": "ChatGPT subscription"}
# (token type, PriceExplanation rate field); web searches are priced per request, not per token.
_TOKEN_TYPES = (("input", "input"), ("cache_read", "cache_read"), ("cache_write", "cache_write"),
                ("cache_write_1h", "cache_write_1h"), ("output", "output"))
_WEB_SEARCH_PER_1000 = 10.0


def utc_iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantities(r: dict[str, Any]) -> dict[str, int]:
    """Billable quantity per token type. 5-minute writes are the write total less the 1-hour ones;
    reasoning tokens are a subset of output and billed as output, so they get no row of their own."""
    write_1h = int(r.get("cache_write_1h_tokens") or 0)
    writes = max(int(r.get("cache_write_tokens") or 0), int(r.get("cache_write_5m_tokens") or 0) + write_1h)
    return {"input": int(r.get("input_tokens") or 0), "cache_read": int(r.get("cache_read_tokens") or 0),
            "cache_write": writes - write_1h, "cache_write_1h": write_1h, "output": int(r.get("output_tokens") or 0),
            "web_search": int(r.get("web_search_requests") or 0)}


def allocate(total: float, weights: dict[str, float]) -> dict[str, float]:
    """Split `total` in proportion to `weights`; the last weighted part takes the remainder, so the parts
    add up to `total` exactly as the ledger recorded it."""
    weighted = [k for k, w in weights.items() if w > 0]
    if not weighted:
        return dict.fromkeys(weights, 0.0)
    whole = sum(weights[k] for k in weighted)
    parts = {k: (total * weights[k] / whole if k in weighted else 0.0) for k in weights}
    parts[weighted[-1]] = total - sum(parts[k] for k in weighted[:-1])
    return parts


class _Rates:
    """List rates (USD per million tokens) per provider:model, from the same source that priced the ledger."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, provider: str, model: str) -> Any:
        if (provider, model) not in self._cache:
            from .. import pricing

            try:
                got = pricing.explain(provider, model or "unknown", overrides=self.config.prices,
                                      unknown_model=self.config.unknown_model_price)
            except Exception:  # no rates: costs are then split by token count
                got = None
            self._cache[(provider, model)] = got
        return self._cache[(provider, model)]


def focus_rows(ledger: Ledger, window: Window, config: Any) -> Iterator[dict[str, Any]]:
    """FOCUS 1.2 rows, one per rollup row (local day × agent × provider × model × repo × subscription) ×
    token type, streamed. The rollup keeps only each row's total cost; it is allocated across token types
    in proportion to tokens × the model's list rate for that type, and the parts add up exactly to the
    ledger's cost. Subscription traffic is not billed: BilledCost, EffectiveCost and ContractedCost are 0
    and ListCost is the API-list equivalent."""
    ident = {"developer": config.identity.developer, "team": config.identity.team,
             "cost_center": config.identity.cost_center}
    if not ident["developer"]:
        ident = {k: ident[k] or v for k, v in ledger_sync.latest_identity(ledger.conn).items()}
    rates = _Rates(config)
    for r in sql.iter_rollup(ledger, *window.day_bounds()):
        yield from _focus_for(r, rates.get(r["provider"], r["model"]), ident, window.tz)


def _focus_for(r: dict[str, Any], rate: Any, ident: dict[str, Any], tz: tzinfo) -> Iterator[dict[str, Any]]:
    qty = _quantities(r)
    unit_price = {t: (getattr(rate, f) if rate is not None else None) for t, f in _TOKEN_TYPES}
    unit_price["web_search"] = _WEB_SEARCH_PER_1000
    weights = {t: qty[t] * (unit_price[t] / 1e6 if t != "web_search" else unit_price[t] / 1000)
               for t in qty} if rate is not None else {t: float(qty[t]) for t in qty}
    cost = float(r["cost_usd"] or 0)
    parts = allocate(cost, weights)
    if cost and not any(parts.values()):
        parts["input"] = cost  # a cost with nothing to weigh it by (no rates and no tokens)
    day = date.fromisoformat(r["day"])
    month = day.replace(day=1)
    sub = bool(r["subscription"])
    provider = _PROVIDER_NAMES.get(r["provider"], r["provider"].title())
    service = _SUBSCRIPTION_SERVICES.get(r["provider"], f"{provider} subscription") if sub else f"{provider} API"
    tags = {k: v for k, v in (("agent", r["agent"]), ("repo", r["repo"]), ("team", ident["team"]),
                              ("cost_center", ident["cost_center"]), ("developer", ident["developer"])) if v}
    base = {
        "BillingCurrency": "USD",
        "BillingAccountId": ident["cost_center"] or ident["team"] or ident["developer"] or "local",
        "BillingAccountName": ident["team"] or ident["developer"] or "local",
        "BillingPeriodStart": utc_iso(day_start(month, tz)),
        "BillingPeriodEnd": utc_iso(day_start(next_month(month), tz)),
        "ChargePeriodStart": utc_iso(day_start(day, tz)),
        "ChargePeriodEnd": utc_iso(day_start(day + timedelta(days=1), tz)),
        "ChargeCategory": "Usage", "ChargeClass": None,
        "InvoiceIssuerName": provider, "ProviderName": provider, "PublisherName": provider,
        "ServiceCategory": "AI and Machine Learning", "ServiceSubcategory": "Generative AI", "ServiceName": service,
        "PricingCategory": "Standard", "SkuId": r["model"] or "unknown",
        "SubAccountId": ident["developer"] or r["repo"] or None,
        "SubAccountName": ident["developer"] or r["repo"] or None,
        "Tags": json.dumps(tags, sort_keys=True),
        "x_Agent": r["agent"], "x_Repo": r["repo"], "x_Subscription": sub, "x_Developer": ident["developer"],
        "x_Unpriced": bool(r["unpriced_requests"]),
    }
    for token_type, amount in parts.items():
        if not qty[token_type] and not amount:
            continue
        per_request = token_type == "web_search"
        list_cost = amount
        billed = 0.0 if sub else amount
        unit = "requests" if per_request else "tokens"
        what = f"{r['model'] or 'unknown model'} {token_type.replace('_', ' ')} {unit}"
        yield {
            **base,
            "BilledCost": billed, "EffectiveCost": billed, "ListCost": list_cost, "ContractedCost": billed,
            "ChargeDescription": what + (" (subscription: API-list equivalent, not billed)" if sub else ""),
            "ConsumedQuantity": qty[token_type], "ConsumedUnit": "Requests" if per_request else "Tokens",
            "PricingQuantity": qty[token_type] / (1000 if per_request else 1e6),
            "PricingUnit": "1000 Requests" if per_request else "1000000 Tokens",
            "ListUnitPrice": unit_price[token_type],
            "SkuPriceDetails": json.dumps({"TokenType": token_type, "Source": getattr(rate, "source", None)}),
            "x_TokenType": token_type,
        }
