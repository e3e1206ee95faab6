"""agentmeter audit: who changed which cap, snooze or key on this machine, and which team caps arrived."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

import typer

from ..core.errors import UsageError

Since = Annotated[
    str | None,
    typer.Option(help="From: a date (2026-03-01), an ISO time, or a duration back from now (30m, 12h, 7d, 2w)."),
]
Until = Annotated[str | None, typer.Option(help="Up to (exclusive): a date, an ISO time or a duration back.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def point_ms(text: str | None, now_ms: int, option: str) -> int | None:
    """A date (local midnight), an ISO 8601 time, or a duration back from now, as epoch milliseconds."""
    if not text:
        return None
    from ..core.parsing import parse_since

    text = text.strip()
    try:
        delta = parse_since(text)
    except UsageError:
        delta = None
    if delta is not None:
        return now_ms - int(delta.total_seconds() * 1000)
    try:
        if len(text) == 10:
            at = datetime.combine(date.fromisoformat(text), time()).astimezone()
        else:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            at = at if at.tzinfo else at.astimezone()
    except ValueError:
        raise UsageError(
            f"bad {option} {text!r}", "use a date (2026-03-01), an ISO time or a duration (7d, 12h)"
        ) from None
    return int(at.timestamp() * 1000)


def audit(
    since: Since = None,
    until: Until = None,
    action: Annotated[
        str | None,
        typer.Option(
            help="Only this action or family: budget, budget.set, budget.snooze, key, key.set, key.rm, team_caps."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cap changes, snoozes and key changes on this machine (who, when, old and new), oldest first; also the team
    caps the collector handed out whenever they changed."""
    from .. import render
    from ..core.clock import SystemClock
    from ..home.paths import get_paths
    from ..ledger import open_ledger
    from ..ledger.audit import ACTIONS, entries
    from ..render import audit as render_audit

    now = SystemClock().now_ms()
    since_ms, until_ms = point_ms(since, now, "--since"), point_ms(until, now, "--until")
    families = sorted({a.split(".")[0] for a in ACTIONS})
    if action and action not in ACTIONS and action not in families:
        raise UsageError(f"unknown action {action!r}", "use one of: " + ", ".join(families + list(ACTIONS)))
    ledger = open_ledger(get_paths().ledger, readonly=True)
    try:
        rows = entries(ledger.conn, since_ms=since_ms, until_ms=until_ms, action=action)
    finally:
        ledger.close()
    out = [
        {
            "at": render.iso(r["at"]),
            "actor": r["actor"],
            "action": r["action"],
            "target": r["target"],
            "old": r["old"],
            "new": r["new"],
            "detail": r["detail"],
        }
        for r in rows
    ]
    render_audit.audit_log(
        "audit", {"since": render.iso(since_ms), "until": render.iso(until_ms), "entries": out}, as_json
    )
