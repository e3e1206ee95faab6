"""agentmeter sync: push summaries to the team collector now, fetch team caps, export OpenTelemetry."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import render_sync
from ..clock import SystemClock
from ..config import load_config


def sync(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Push daily summaries and session line items (never prompts) to the collector, now."""
    from ..sync.client import sync_now

    result = sync_now(load_config(), SystemClock())
    render_sync.sync_result(result, as_json)
    otel_failed = (result.get("otel") or {}).get("status") == "failed"
    raise SystemExit(1 if (result["configured"] and not result["ok"]) or otel_failed else 0)
