"""FOCUS 1.2 rows from the collector's rollups: one per day × developer × agent × model × repo × token type.

Costs per token type come from the client (the ledger's cost split by the list rates that priced it), so
the parts add up exactly to what the developers' ledgers recorded. Days are the clients' local days; the
charge period is that day in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from typing import Any

COLUMNS = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "BillingAccountId",
    "BillingAccountName", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "InvoiceIssuerName", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceSubcategory", "ServiceName", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity",
    "PricingUnit", "ListUnitPrice", "PricingCategory", "SkuId", "SkuPriceDetails", "SubAccountId", "SubAccountName",
    "Tags", "x_Developer", "x_Team", "x_CostCenter", "x_Agent", "x_Repo", "x_TokenType", "x_Subscription",
    "x_Requests",
)
_PROVIDERS = {"anthropic": "Anthropic", "openai": "OpenAI", "gemini": "Google", "google": "Google"}
_QTY = {"input": "input_tokens", "cache_read": "cache_read_tokens", "cache_write": "cache_write_tokens",
        "output": "output_tokens"}


def _utc(d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def rows(source: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for r in source:
        day = date.fromisoformat(r["day"])
        month = day.replace(day=1)
        next_month = (month + timedelta(days=32)).replace(day=1)
        provider = _PROVIDERS.get(r["provider"], r["provider"].title())
        sub = bool(r["subscription"])
        split = json.loads(r["cost_by_type"] or "{}")
        if not split and r["cost_usd"]:
            split = {"input": r["cost_usd"]}
        tags = {k: v for k, v in (("developer", r["developer"]), ("team", r["team"]),
                                  ("cost_center", r["cost_center"]), ("agent", r["agent"]), ("repo", r["repo"])) if v}
        base = {
            "BillingCurrency": "USD",
            "BillingAccountId": r["cost_center"] or r["team"] or r["developer"],
            "BillingAccountName": r["team"] or r["developer"],
            "BillingPeriodStart": _utc(month), "BillingPeriodEnd": _utc(next_month),
            "ChargePeriodStart": _utc(day), "ChargePeriodEnd": _utc(day + timedelta(days=1)),
            "ChargeCategory": "Usage", "ChargeClass": None,
            "InvoiceIssuerName": provider, "ProviderName": provider, "PublisherName": provider,
            "ServiceCategory": "AI and Machine Learning", "ServiceSubcategory": "Generative AI",
            "ServiceName": f"{provider} subscription" if sub else f"{provider} API",
            "PricingCategory": "Standard", "PricingUnit": "1000000 Tokens", "ConsumedUnit": "Tokens",
            "SkuId": r["model"] or "unknown", "SubAccountId": r["developer"], "SubAccountName": r["developer"],
            "Tags": json.dumps(tags, sort_keys=True), "x_Developer": r["developer"], "x_Team": r["team"] or None,
            "x_CostCenter": r["cost_center"] or None, "x_Agent": r["agent"], "x_Repo": r["repo"] or None,
            "x_Subscription": sub, "x_Requests": r["requests"],
        }
        for token_type, column in _QTY.items():
            qty = int(r[column] or 0)
            cost = float(split.get(token_type) or 0.0)
            if not qty and not cost:
                continue
            billed = 0.0 if sub else cost
            yield {
                **base, "BilledCost": billed, "EffectiveCost": billed, "ListCost": cost, "ContractedCost": billed,
                "ChargeDescription": f"{r['model'] or 'unknown model'} {token_type.replace('_', ' ')} tokens"
                                     + (" (subscription: API-list equivalent, not billed)" if sub else ""),
                "ConsumedQuantity": qty, "PricingQuantity": qty / 1e6,
                "ListUnitPrice": round(cost / (qty / 1e6), 6) if qty else None,
                "SkuPriceDetails": json.dumps({"TokenType": token_type}), "x_TokenType": token_type,
            }


def write_csv(rows_: Iterable[dict[str, Any]], out) -> int:
    import csv

    from ..core.csvsafe import cell

    w = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    n = 0
    for row in rows_:
        w.writerow({k: ("" if v is None else cell(v)) for k, v in row.items()})
        n += 1
    return n
