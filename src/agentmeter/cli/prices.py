"""agentmeter prices explain|update, agentmeter reprice."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from ..home.config import load_config
from ..home.paths import get_paths
from ..render import prices as render_prices

app = typer.Typer(help="Where a price comes from, and fresh price data.", no_args_is_help=True)


@app.command("explain")
def explain(
    model: Annotated[str, typer.Argument(help="Model name, optionally provider:model.")],
    provider: Annotated[str | None, typer.Option(help="anthropic or openai (guessed from the name).")] = None,
    tier: Annotated[str | None, typer.Option(help="fast, priority, flex or batch (default: standard).")] = None,
    at: Annotated[str | None, typer.Option(help="Price at this date (YYYY-MM-DD) instead of today.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which price matched MODEL, the rates per million tokens per tier and date, and how to override it."""
    from .. import pricing
    from ..core.errors import UsageError

    if ":" in model and provider is None:
        provider, model = model.split(":", 1)
    provider = provider or guess_provider(model)
    from datetime import UTC, datetime

    from ..core.clock import SystemClock

    when = datetime.fromtimestamp(SystemClock().now_ms() / 1000, UTC)
    if at is not None:
        try:
            when = datetime.fromisoformat(at).replace(tzinfo=UTC)
        except ValueError:
            raise UsageError(f"--at {at!r} is not a date", "use YYYY-MM-DD, e.g. --at 2025-05-01") from None
    if tier is not None and tier not in pricing.tiers.TIERS and tier != "standard":
        raise UsageError(f"unknown tier {tier!r}", "use one of: standard, fast, priority, flex, batch")
    config = load_config()
    e = pricing.explain(
        provider,
        model,
        overrides=config.prices,
        unknown_model=config.unknown_model_price,
        tier=None if tier in (None, "standard") else tier,
        at=when,
    )
    render_prices.price_explanation(asdict(e), as_json)


def guess_provider(model: str) -> str:
    m = model.lower()
    if m.startswith(("claude", "anthropic")):
        return "anthropic"
    if m.startswith("gemini"):
        return "google"
    return "openai"


@app.command("update")
def update(
    url: Annotated[str | None, typer.Option(help="Fetch genai-prices' data format from this URL.")] = None,
    file: Annotated[str | None, typer.Option(help="Read genai-prices' data format from this file.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Fetch and validate; cache nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fetch the maintained price data, validate it and cache it; used offline from then on."""
    from ..commands.reprice import update_prices
    from ..core.errors import UsageError

    if url and file:
        raise UsageError("give --url or --file, not both", "agentmeter prices update --file ./data.json")
    render_prices.prices_update_result(update_prices(url, file, dry_run=dry_run), as_json)


def reprice(
    since: Annotated[str | None, typer.Option(help="Only requests of the last 7d, 12h, …")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute requests' costs from their tokens, each at its own date and tier, with today's price data
    and overrides. Unpriced rows whose model is now known become priced."""
    from ..commands.reprice import reprice as run_reprice
    from ..core.clock import SystemClock
    from ..core.parsing import parse_since
    from ..core.timezone import resolve_tz
    from ..ledger import open_ledger

    delta = parse_since(since)
    since_ms = None if delta is None else SystemClock().now_ms() - int(delta.total_seconds() * 1000)
    config = load_config()
    ledger = open_ledger(get_paths().ledger, tz=resolve_tz(config.budget.timezone))
    render_prices.reprice_result(run_reprice(config, ledger, since_ms=since_ms, dry_run=dry_run), as_json)
