"""Reports and exports: report windows, rows shaped as the contract's dicts, CSV and JSONL writers, and
FOCUS 1.2 rows. No SQL here (that is `ledger/reports.py`), no printing (that is `render_report.py`).

Windows are whole local days [first_day, end_day) in the report's time zone, so every grouping of
the same window adds up to the same total: `--since 30d` is the 30 local days ending today,
`--until 7d` ends where `--since 7d` begins, and a date is a local day (`--until` is exclusive).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import IO, Any

from .clock import ms_to_iso
from .errors import UsageError
from .ledger import Ledger
from .ledger import reports as sql
from .views import CONTRACT_BUCKETS, cache_hit_rate

GROUPINGS = tuple(sql.GROUPS)
EXTRA_BUCKETS = ("cache_write_5m_tokens", "cache_write_1h_tokens", "web_search_requests")
REPORT_COLUMNS = ("key", "start", "end", "provider", "agent", "repo", "branch", "first_at", "last_at", "requests",
                  *CONTRACT_BUCKETS, *EXTRA_BUCKETS, "cost_usd", "billed_cost_usd", "subscription_cost_usd",
                  "unpriced_requests", "cache_hit_rate")
EXPORT_COLUMNS = ("request_id", "session_id", "started_at", "day", "provider", "api", "model_requested", "model_used",
                  "agent", "repo", "branch", "developer", "team", "status", "decision", "subscription",
                  *CONTRACT_BUCKETS, *EXTRA_BUCKETS, "cost_usd", "price_source", "price_model", "unpriced",
                  "partial", "unmetered")
_DURATION = re.compile(r"\s*(\d+)\s*([mhdw])\s*")


@dataclass(frozen=True)
class Window:
    """Local days [first_day, end_day) in `tz`; None is open-ended."""

    tz: tzinfo
    first_day: date | None
    end_day: date | None

    @property
    def zone_name(self) -> str:
        return zone_name(self.tz)

    def day_bounds(self) -> tuple[str | None, str | None]:
        return (self.first_day.isoformat() if self.first_day else None,
                self.end_day.isoformat() if self.end_day else None)

    def ms_bounds(self) -> tuple[int | None, int | None]:
        return (None if self.first_day is None else day_start_ms(self.first_day, self.tz),
                None if self.end_day is None else day_start_ms(self.end_day, self.tz))

    def days(self) -> list[date]:
        if self.first_day is None or self.end_day is None:
            return []
        return [self.first_day + timedelta(days=i) for i in range((self.end_day - self.first_day).days)]


def zone_name(tz: tzinfo | None) -> str:
    return str(getattr(tz, "key", None) or tz or "local")


def resolve_zone(name: str | None, default: tzinfo) -> tzinfo:
    if not name:
        return default
    from .timezone import resolve_tz

    try:
        return resolve_tz(name)
    except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        raise UsageError(f"unknown time zone {name!r}", "use an IANA name such as Europe/Berlin, or UTC") from None


def day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(), tz)


def day_start_ms(day: date, tz: tzinfo) -> int:
    return int(day_start(day, tz).timestamp() * 1000)


def utc_iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _point(text: str, now_local: datetime, option: str) -> date:
    """A date (YYYY-MM-DD), `today`, or a duration: Nd / Nw count whole local days back, so that
    `Nd` as a start is the N days ending today; Nh / Nm name the local day that instant falls in."""
    text = text.strip()
    today = now_local.date()
    if text == "today":
        return today
    if m := _DURATION.fullmatch(text):
        n, unit = int(m.group(1)), m.group(2)
        if unit in "dw":
            return today - timedelta(days=n * (7 if unit == "w" else 1) - 1)
        return (now_local - timedelta(**{"hours" if unit == "h" else "minutes": n})).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"bad {option} {text!r}", "use a date (2025-03-01), today, or a duration (30d, 2w, 12h)") \
            from None


def report_window(since: str | None, until: str | None, tz: tzinfo, now: datetime) -> Window:
    now_local = now.astimezone(tz)
    first = _point(since, now_local, "--since") if since else None
    end = _point(until, now_local, "--until") if until else now_local.date() + timedelta(days=1)
    if first is not None and first >= end:
        raise UsageError(f"the window {first} .. {end} (exclusive) is empty", "--until must be after --since")
    return Window(tz, first, end)


# --- grouped totals ------------------------------------------------------------------------------------


def same_zone(a: tzinfo | None, b: tzinfo | None) -> bool:
    return zone_name(a) == zone_name(b)


def grouped_rows(ledger: Ledger, by: str, window: Window, rollup_tz: tzinfo) -> tuple[list[dict], str]:
    """(rows, source). The rollup's days are local to `rollup_tz` (the configured budget zone); another
    zone regroups from `requests`, which is exact but scans the window's requests."""
    if by not in sql.GROUPS:
        raise UsageError(f"cannot group by {by!r}", "use one of: " + ", ".join(GROUPINGS))
    if by in sql.ROLLUP_GROUPS and same_zone(window.tz, rollup_tz):
        return [report_row(by, r) for r in sql.totals_by_rollup(ledger, by, *window.day_bounds())], "rollup"
    rows = sql.totals_by_requests(ledger, by, *window.ms_bounds(), window.tz)
    return [report_row(by, r) for r in rows], "requests"


def build_report(ledger: Ledger, by: str, window: Window, rollup_tz: tzinfo) -> dict[str, Any]:
    rows, source = grouped_rows(ledger, by, window, rollup_tz)
    first, end = window.day_bounds()
    return {"by": by, "since": first, "until": end, "timezone": window.zone_name, "source": source,
            "rows": rows, "totals": totals(rows)}


def report_row(by: str, r: dict[str, Any]) -> dict[str, Any]:
    key = r["key"] or ""
    out: dict[str, Any] = {"key": key}
    if by == "week" and key:
        monday = date.fromisoformat(key)
        iso = monday.isocalendar()
        out.update(key=f"{iso.year}-W{iso.week:02d}", start=key, end=(monday + timedelta(days=7)).isoformat())
    elif by == "month" and key:
        start = date.fromisoformat(key + "-01")
        out.update(start=start.isoformat(), end=_next_month(start).isoformat())
    for extra in ("provider", "agent", "repo", "branch"):
        if extra in r:
            out[extra] = r[extra]
    if by == "session":
        out.update(first_at=ms_to_iso(r["first_at"]), last_at=ms_to_iso(r["last_at"]))
    out.update(_sums(r))
    return out


def _sums(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"requests": int(r.get("requests") or 0)}
    for b in (*CONTRACT_BUCKETS, *EXTRA_BUCKETS):
        out[b] = int(r.get(b) or 0)
    cost, sub = float(r.get("cost_usd") or 0), float(r.get("subscription_cost_usd") or 0)
    # cost_usd is everything at API list price; subscription traffic is what it would have cost, not billed.
    out.update(cost_usd=cost, billed_cost_usd=cost - sub, subscription_cost_usd=sub,
               unpriced_requests=int(r.get("unpriced_requests") or 0), cache_hit_rate=cache_hit_rate(out))
    return out


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summed = {k: sum(r[k] for r in rows) for k in ("requests", *CONTRACT_BUCKETS, *EXTRA_BUCKETS, "cost_usd",
                                                     "subscription_cost_usd", "unpriced_requests")}
    return _sums(summed)


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def daily_series(ledger: Ledger, window: Window, rollup_tz: tzinfo) -> list[tuple[str, float]]:
    """(local day, USD) for every day of the window, zero-filled; an open start begins at the first spend."""
    rows, _ = grouped_rows(ledger, "day", window, rollup_tz)
    spend = {r["key"]: r["cost_usd"] for r in rows}
    days = window.days()
    if not days and spend:
        first = date.fromisoformat(min(spend))
        end = window.end_day or date.fromisoformat(max(spend)) + timedelta(days=1)
        days = Window(window.tz, first, end).days()
    return [(d.isoformat(), spend.get(d.isoformat(), 0.0)) for d in days]


# --- request export, writers ----------------------------------------------------------------------------


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


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def write_csv(rows: Iterable[dict[str, Any]], out: IO[str], columns: Iterable[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
        n += 1
    return n


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    n = 0
    for row in rows:
        out.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
        n += 1
    return n


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
            from . import pricing

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
        ident = {k: ident[k] or v for k, v in sql.latest_identity(ledger).items()}
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
        "BillingPeriodEnd": utc_iso(day_start(_next_month(month), tz)),
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


def forecast_band(ledger: Ledger, window: Window, rollup_tz: tzinfo, now: datetime,
                  cap: float | None) -> dict[str, Any] | None:
    """P10/P50/P90 of today's end-of-day spend from `forecast.forecast`, over the last 8 weeks of daily
    history; None when the window does not include today or there is nothing to project."""
    from .forecast import forecast

    now_local = now.astimezone(window.tz)
    today = now_local.date()
    if window.end_day is None or not ((window.first_day or today) <= today < window.end_day):
        return None
    lookback = Window(window.tz, today - timedelta(days=56), today + timedelta(days=1))
    daily = {date.fromisoformat(d): v for d, v in daily_series(ledger, lookback, rollup_tz)}
    start, end = day_start(today, window.tz), day_start(today + timedelta(days=1), window.tz)
    fc = forecast({d: v for d, v in daily.items() if d < today}, today=today, window_first=today,
                  window_last=today, spent_in_window=daily.get(today, 0.0),
                  today_fraction=(now_local - start) / (end - start), cap=cap)
    if fc.method == "none":
        return None
    return {"day": today.isoformat(), "p10": fc.p10, "p50": fc.p50, "p90": fc.p90, "method": fc.method}


def dashboard(ledger: Ledger, window: Window, rollup_tz: tzinfo, now: datetime, cap: float | None) -> dict[str, Any]:
    """What the HTML page shows: the daily series, today's forecast band, and reports by day/agent/model/repo."""
    series = daily_series(ledger, window, rollup_tz)
    tables = {by: build_report(ledger, by, window, rollup_tz) for by in ("day", "agent", "model", "repo")}
    return {"series": series, "band": forecast_band(ledger, window, rollup_tz, now, cap), "tables": tables}
