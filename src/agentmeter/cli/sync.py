"""agentmeter sync: push summaries to the team collector now, fetch team caps, export OpenTelemetry."""

from __future__ import annotations

from typing import Annotated

import typer

from ..core.clock import SystemClock
from ..home.config import load_config
from ..render import sync as render_sync


def sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be pushed; send and write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Push daily summaries and session line items (never prompts) to the collector, now."""
    from ..sync.client import sync_now, sync_preview

    if dry_run:
        preview = sync_preview(load_config())
        if as_json:
            from ..render import emit_json

            emit_json("sync", preview)
        else:
            p = preview["would_push"]
            render_sync.line(
                f"dry run: would push {p['rollups']} daily rows, {p['sessions']} sessions and "
                f"{p['deleted']} deletions to {preview['collector'] or '(no collector configured)'}; "
                f"{preview['unchanged']} unchanged"
            )
        return

    result = sync_now(load_config(), SystemClock())
    render_sync.sync_result(result, as_json)
    otel_failed = (result.get("otel") or {}).get("status") == "failed"
    raise SystemExit(1 if (result["configured"] and not result["ok"]) or otel_failed else 0)
