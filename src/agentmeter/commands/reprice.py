"""The use cases behind `agentmeter prices update` and `agentmeter reprice` (the CLI only parses and renders).

`update_prices` fetches genai-prices' maintained data (or a URL / file given), validates it and caches it;
the bad data is refused with the data in force kept. `reprice` recomputes every row from its tokens at the
row's own time and tier, with the price data and overrides in force now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.errors import AgentmeterError


def update_prices(
    url: str | None = None, file: str | None = None, *, now_ms: int | None = None, dry_run: bool = False
) -> dict[str, Any]:
    from ..pricing import data

    before = data.info()
    if file is not None:
        source = str(Path(file).expanduser().resolve())
        try:
            raw = Path(source).read_bytes()
        except OSError as e:
            raise AgentmeterError(
                f"cannot read price data {file}: {e.strerror or e}",
                "give a genai-prices data.json file, e.g. --file ./data.json",
            ) from None
    else:
        source = url or data.default_url()
        try:
            raw = data.fetch(source)
        except data.PriceDataError as e:
            raise AgentmeterError(str(e), "use an http(s) URL or --file PATH") from None
        except OSError as e:
            why = getattr(e, "reason", None) or e
            hint = f"prices in force are kept ({_describe(before)}); retry, or use --file PATH"
            raise AgentmeterError(f"could not fetch price data from {source}: {why}", hint) from None
    if now_ms is None:
        from ..core.clock import SystemClock

        now_ms = SystemClock().now_ms()
    date = datetime.fromtimestamp(now_ms / 1000, UTC).date().isoformat()
    try:
        if dry_run:  # validated, nothing written: the data in force stays
            snap = data._validated(raw)
            return {
                "source": source,
                "dry_run": True,
                "before": before.as_dict(),
                "after": {
                    **before.as_dict(),
                    "source": "cache",
                    "url": source,
                    "date": date,
                    "models": data._count(snap),
                },
                "hint": "valid; run again without --dry-run to use it",
            }
        after = data.update(raw, url=source, date=date)
    except data.PriceDataError as e:
        raise AgentmeterError(
            f"refused price data from {source}: {e}", f"prices in force are kept ({_describe(before)})"
        ) from None
    return {
        "source": source,
        "dry_run": False,
        "before": before.as_dict(),
        "after": after.as_dict(),
        "hint": "run agentmeter reprice to re-price past requests with the new data",
    }


def _describe(info: Any) -> str:
    return f"{info.source} data of {info.date}, genai-prices {info.genai_prices_version}"


def reprice(config: Any, ledger: Any, *, since_ms: int | None = None, dry_run: bool = False) -> dict[str, Any]:
    from .. import pricing
    from ..ledger.store import usage_of

    def price_row(row: dict[str, Any]):
        usage = usage_of(row)
        if not usage.total_tokens:
            return 0.0, "none", None, None, False, None
        c = pricing.price(
            row["provider"],
            row["model_used"] or row["model_requested"],
            usage,
            overrides=config.prices,
            unknown_model=config.unknown_model_price,
            tier=row.get("tier"),
            at=pricing.when(row["started_at"]),
        )
        return c.usd, c.source, c.matched_model, c.price_version, c.unpriced, c.reason

    result = ledger.reprice(price_row, since_ms=since_ms, dry_run=dry_run)
    result["dry_run"] = dry_run
    result["before_usd"] = round(result["before_usd"], 6)
    result["after_usd"] = round(result["after_usd"], 6)
    result["models"] = [
        {"model": k, **{f: round(v, 6) if isinstance(v, float) else v for f, v in m.items()}}
        for k, m in sorted(result["models"].items())
    ]
    result["data"] = pricing.data.info().as_dict()
    return result
