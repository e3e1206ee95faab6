"""agentmeter prices explain, agentmeter reprice."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from .. import render
from ..config import load_config
from ..paths import get_paths

app = typer.Typer(help="Where a price comes from.", no_args_is_help=True)


@app.command("explain")
def explain(
    model: Annotated[str, typer.Argument(help="Model name, optionally provider:model.")],
    provider: Annotated[str | None, typer.Option(help="anthropic or openai (guessed from the name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which price matched MODEL, the rates per million tokens, and why."""
    from .. import pricing

    if ":" in model and provider is None:
        provider, model = model.split(":", 1)
    provider = provider or guess_provider(model)
    config = load_config()
    e = pricing.explain(provider, model, overrides=config.prices, unknown_model=config.unknown_model_price)
    payload = asdict(e)
    payload.setdefault("provider", provider)
    payload.setdefault("model", model)
    render.price_explanation(payload, as_json)


def guess_provider(model: str) -> str:
    m = model.lower()
    if m.startswith(("claude", "anthropic")):
        return "anthropic"
    return "openai"


def reprice(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute every request's cost from its tokens with today's prices and overrides."""
    from .. import pricing
    from ..ledger import open_ledger
    from ..ledger.store import usage_of
    from ..timezone import resolve_tz

    config = load_config()
    ledger = open_ledger(get_paths().ledger, tz=resolve_tz(config.budget.timezone))
    before = ledger.totals_from_requests()
    delta = [0.0]  # new minus old cost over every repriced row: the total after, without writing

    def price_row(row: dict):
        usage = usage_of(row)
        if not usage.total_tokens:
            result = 0.0, "none", None, None, False
        else:
            c = pricing.price(row["provider"], row["model_used"] or row["model_requested"], usage,
                              overrides=config.prices, unknown_model=config.unknown_model_price)
            result = c.usd, c.source, c.matched_model, c.price_version, c.unpriced
        delta[0] += (result[0] or 0.0) - (row["cost_usd"] or 0.0)
        return result

    changed = ledger.reprice(price_row, dry_run=dry_run)
    after_usd = before["cost_usd"] + delta[0] if dry_run else ledger.totals_from_requests()["cost_usd"]
    render.reprice_result({"rows": before["requests"], "changed": changed, "dry_run": dry_run,
                           "before_usd": round(before["cost_usd"], 6), "after_usd": round(after_usd, 6)},
                          as_json)
