"""agentmeter collector caps set --pooled, collector budget test --team, collector alerts …: the team wallet
and the team's alert routes (issue 20 items 4 and 5). The logic is in collector/wallet.py, collector/alerts.py
and budget/wallet_replay.py; these commands parse, call, and hand the result to render/team.py."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer

from ..core.clock import SystemClock
from ..core.errors import UsageError
from ..render import team as render_team
from .collector_db import Db, _store  # one --db: a SQLite file or a postgresql:// URL (AGENTMETER_COLLECTOR_DB)

budget_app = typer.Typer(help="Team wallets: replay a team's history through pooled caps.", no_args_is_help=True)
alerts_app = typer.Typer(
    help="Per-team alert webhooks (Slack or generic JSON) and the daily digest.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def wallet_set(
    open_store,
    db: str,
    team: str | None,
    member: str | None,
    pooled: bool,
    values: dict,
    allow_snooze: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    from ..collector import wallet

    if not team:
        raise UsageError("--pooled and --member go with --team", "e.g. --team payments --pooled --monthly 2000")
    who = (member or "").strip() if member is not None else wallet.POOLED
    if member is not None and not who:
        raise UsageError("--member is empty", "name a developer, or '*' for every member")
    if dry_run:
        render_team.wallets(
            {
                "wallets": [
                    {
                        "team": team,
                        "member": who or None,
                        "scope": "member" if who else "pooled",
                        **values,
                        "allow_snooze": allow_snooze,
                    }
                ],
                "dry_run": True,
            },
            as_json,
        )
        return
    store = open_store(db, create=True)
    try:
        from ..collector import audit

        wallet.set_caps(store, team, who, values, allow_snooze, SystemClock().now_ms(), actor=audit.cli_actor())
        rows = wallet.all_rows(store)
    finally:
        store.close()
    render_team.wallets({"wallets": rows}, as_json)


def _open(db: str):
    return _store(db)


@budget_app.command("test")
def budget_test(
    db: Db,
    team: Annotated[str, typer.Option(help="The team whose pushed history is replayed.")],
    daily: Annotated[float | None, typer.Option(help="Pooled USD per day (default: the wallet's).")] = None,
    weekly: Annotated[float | None, typer.Option(help="Pooled USD per week.")] = None,
    monthly: Annotated[float | None, typer.Option(help="Pooled USD per month.")] = None,
    member_daily: Annotated[float | None, typer.Option(help="Each member's USD per day inside the wallet.")] = None,
    member_weekly: Annotated[float | None, typer.Option(help="Each member's USD per week.")] = None,
    member_monthly: Annotated[float | None, typer.Option(help="Each member's USD per month.")] = None,
    since: Annotated[str, typer.Option(help="How far back: 30d, 8w, or a day YYYY-MM-DD.")] = "30d",
    as_json: JsonOpt = False,
) -> None:
    """Replay the team's history through a team wallet: when each stage would have fired, who would have
    been refused, and what it would have saved."""
    from ..collector.wallet import replay_payload

    first = _since_day(since)
    flags = {"daily_usd": daily, "weekly_usd": weekly, "monthly_usd": monthly}
    member = {"daily_usd": member_daily, "weekly_usd": member_weekly, "monthly_usd": member_monthly}
    if any(v is not None and v < 0 for v in (*flags.values(), *member.values())):
        raise UsageError("caps cannot be negative", "e.g. --monthly 2000")
    store = _open(db)
    try:
        payload = replay_payload(store, team, first, flags, member)
    finally:
        store.close()
    render_team.team_budget_test(payload, as_json)


def _since_day(text: str) -> str:
    from datetime import date

    from ..core.parsing import parse_since

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        delta = parse_since(text)
    except UsageError:
        delta = None
    if delta is None or delta <= timedelta(0):
        raise UsageError(f"--since {text!r} is not a duration or a day", "e.g. --since 30d or --since 2026-11-01")
    return (SystemClock().now() - delta).date().isoformat()


class Format(StrEnum):
    slack = "slack"
    json = "json"


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        got = tuple(
            sorted(
                {
                    float(x.strip().rstrip("%")) / (100 if x.strip().endswith("%") else 1)
                    for x in text.split(",")
                    if x.strip()
                }
            )
        )
    except ValueError:
        got = ()
    if not got or any(not (0 < t <= 5) for t in got):
        raise UsageError(f"--thresholds {text!r}: give fractions of the cap", "e.g. --thresholds 0.5,0.8,1.0")
    return got


def _webhook(value: str) -> str:
    import sys

    from ..collector.webhooks import valid

    url = sys.stdin.readline().strip() if value == "-" else value.strip()
    if not valid(url):
        raise UsageError(
            "the webhook is not an http(s) URL",
            "e.g. --webhook https://hooks.slack.com/services/… "
            "(or --webhook - to read it from stdin, out of your shell history)",
        )
    return url


@alerts_app.command("set")
def alerts_set(
    db: Db,
    team: Annotated[str, typer.Option(help="The team whose alerts go to this webhook.")],
    webhook: Annotated[
        str,
        typer.Option(
            help="Where to POST (a Slack incoming webhook or any JSON endpoint); "
            "'-' reads it from stdin so it stays out of argv and shell history."
        ),
    ],
    fmt: Annotated[
        Format,
        typer.Option("--format", help="slack: Slack's text+blocks; json: the full agentmeter.team_alert/1 document."),
    ] = Format.json,
    thresholds: Annotated[
        str, typer.Option(help="Fractions of each pooled cap that alert (once per window).")
    ] = "0.8,1.0",
    digest_hour: Annotated[
        int | None,
        typer.Option(help="Send the daily digest at or after this hour (UTC, 0-23); leave out for no digest."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be stored; write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Route a team's alerts (pooled wallet thresholds, forecast overruns, daily digest) to a webhook."""
    from ..collector import alerts

    if not team.strip():
        raise UsageError("--team is empty", "e.g. --team payments")
    if digest_hour is not None and not 0 <= digest_hour <= 23:
        raise UsageError("--digest-hour must be 0 to 23 (UTC)", "e.g. --digest-hour 8")
    url, ths = _webhook(webhook), _thresholds(thresholds)
    if dry_run:
        render_team.alert_routes(
            {
                "routes": [
                    {
                        "team": team.strip(),
                        "webhook": url,
                        "format": fmt.value,
                        "thresholds": list(ths),
                        "digest_hour": digest_hour,
                        "updated_at": None,
                    }
                ],
                "dry_run": True,
            },
            as_json,
        )
        return
    store = _store(db, create=True)
    try:
        from ..collector import audit

        alerts.set_route(
            store, team.strip(), url, fmt.value, ths, digest_hour, SystemClock().now_ms(), actor=audit.cli_actor()
        )
        rows = alerts.routes(store)
    finally:
        store.close()
    render_team.alert_routes({"routes": rows}, as_json)


@alerts_app.command("list")
def alerts_list(db: Db, as_json: JsonOpt = False) -> None:
    """Each team's route (the webhook shown as scheme://host/… only) and the alerts sent lately."""
    from ..collector import alerts

    store = _open(db)
    try:
        rows, sent = alerts.routes(store), alerts.sent(store)
    finally:
        store.close()
    render_team.alert_routes({"routes": rows, "sent": sent}, as_json)


@alerts_app.command("rm")
def alerts_rm(
    db: Db,
    team: Annotated[str, typer.Option(help="The team whose route to remove.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be removed.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Stop sending a team's alerts."""
    from ..collector import alerts
    from ..core.errors import NotFoundError

    store = _open(db)
    try:
        from ..collector import audit

        n = (
            (1 if alerts.route(store, team) else 0)
            if dry_run
            else alerts.remove_route(store, team, SystemClock().now_ms(), actor=audit.cli_actor())
        )
    finally:
        store.close()
    if not n:
        raise NotFoundError(f"no alert route for team {team}", "see them with: agentmeter collector alerts list")
    render_team.alert_routes({"routes": [], "removed": team, "dry_run": dry_run}, as_json)


@alerts_app.command("test")
def alerts_test(
    db: Db, team: Annotated[str, typer.Option(help="The team whose webhook to try.")], as_json: JsonOpt = False
) -> None:
    """Send a test message with the team's figures now, to check the webhook."""
    _send_now(db, team, "test", dry_run=False, as_json=as_json)


@alerts_app.command("digest")
def alerts_digest(
    db: Db,
    team: Annotated[str, typer.Option(help="The team whose daily digest to send now.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the digest; send nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send the team's daily digest now (the collector also sends it once a day at --digest-hour)."""
    _send_now(db, team, "digest", dry_run=dry_run, as_json=as_json)


def _send_now(db: str, team: str, kind: str, *, dry_run: bool, as_json: bool) -> None:
    import asyncio

    from ..collector import alerts
    from ..collector.webhooks import deliver, redact
    from ..core.errors import NotFoundError

    store = _open(db)
    try:
        now = SystemClock().now()
        m = alerts.digest(store, team, now, claim=False) if kind == "digest" else alerts.test_message(store, team, now)
    finally:
        store.close()
    if m is None:
        raise NotFoundError(
            f"no alert route for team {team}",
            "add one: agentmeter collector alerts set --team T --webhook URL --db PATH",
        )
    delivered = attempts = None
    if not dry_run:

        async def go():
            import aiohttp

            async with aiohttp.ClientSession() as session:
                return await deliver(session, m.url, m.body)

        delivered, attempts = asyncio.run(go())
    render_team.alert_sent(
        {
            "team": team,
            "kind": kind,
            "webhook": redact(m.url),
            "dry_run": dry_run,
            "delivered": delivered,
            "attempts": attempts,
            "body": m.body,
        },
        as_json,
    )
    if delivered is False:
        raise typer.Exit(1)
