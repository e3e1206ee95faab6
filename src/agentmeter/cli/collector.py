"""agentmeter collector serve|token|report|caps|export: the team collector, run by the team lead."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..core.clock import SystemClock
from ..core.errors import NotFoundError, UsageError
from ..render import sync as render_sync
from .collector_db import Db, _store

app = typer.Typer(help="The team collector: tokens, reports, caps, FOCUS export, dashboard.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens, one per developer (stored hashed).", no_args_is_help=True)
caps_app = typer.Typer(help="Team and developer caps that clients merge with their own.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(caps_app, name="caps")


def _team_commands() -> None:
    from .collector_team import alerts_app, budget_app

    app.add_typer(budget_app, name="budget")
    app.add_typer(alerts_app, name="alerts")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing.")]


class Role(StrEnum):
    developer = "developer"
    lead = "lead"
    finance = "finance"
    admin = "admin"


class By(StrEnum):
    developer = "developer"
    team = "team"
    agent = "agent"
    repo = "repo"
    model = "model"
    day = "day"
    subagent = "subagent"
    commit = "commit"


@app.command()
def serve(
    db: Db,
    host: Annotated[
        str, typer.Option(help="Address to bind. Put a TLS proxy in front for anything but loopback.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8789,
    rate: Annotated[int, typer.Option(help="Requests per minute allowed per token.")] = 60,
    metrics_network: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics-network",
            metavar="CIDR",
            help="Let scrapers from this network read GET /metrics without a token (repeatable, e.g. 10.0.0.0/8). "
            "By default /metrics needs an admin token (Authorization: Bearer; Prometheus: authorization.credentials). "
            "Behind a reverse proxy the peer is the proxy.",
        ),
    ] = None,
) -> None:
    """Run the collector in the foreground.

    Serves pushes, caps, reports, the FOCUS export, the dashboard (/dashboard) and Prometheus metrics (/metrics,
    low-cardinality series; needs the collector extra: pip install 'agentmeter\\[collector]').
    """
    from ..collector.app import serve as run
    from ..collector.metrics import parse_networks

    try:
        networks = parse_networks(metrics_network or [])
    except ValueError as exc:
        raise UsageError(f"--metrics-network: {exc}", "give a CIDR such as 10.0.0.0/8, or leave it out") from None
    _store(db, create=True).close()  # a bad --db fails here with one line, not inside the server
    from ..collector.engine import display

    render_sync.serving(f"http://{host}:{port}", display(db))
    try:
        run(db, host, port, rate_per_minute=rate, print_fn=lambda *_: None, metrics_networks=networks)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})", "pick another --port") from None


@token_app.command("add")
def token_add(
    db: Db,
    developer: Annotated[str, typer.Option(help="Who the token belongs to (their pushes are filed under it).")],
    team: Annotated[
        str | None,
        typer.Option(
            help="The developer's team (for chargeback and team caps). Pushes "
            "are filed under this team only, whatever they say."
        ),
    ] = None,
    cost_center: Annotated[
        str | None,
        typer.Option(
            "--cost-center", help="The cost centre this token's spend is charged to (set here only, never by a push)."
        ),
    ] = None,
    role: Annotated[
        Role | None,
        typer.Option(
            help="developer: push only (the default); lead: also their team's "
            "reports, caps and alerts (needs --team); finance: read-only reports, "
            "exports and audit of every team; admin: everything."
        ),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="The same as --role admin.")] = False,
    dry_run: DryRun = False,
    as_json: JsonOpt = False,
) -> None:
    """Issue a token and print it (once: only its hash is kept)."""
    from ..collector import audit

    if not developer.strip():
        raise UsageError("--developer is empty", "e.g. --developer alice@example.com")
    if admin and role not in (None, Role.admin):
        raise UsageError(f"--admin and --role {role.value} disagree", "give one of them")
    name = Role.admin.value if admin else (role or Role.developer).value
    if name == "lead" and not (team or "").strip():
        raise UsageError("a lead token needs --team", "e.g. --role lead --team payments")
    if dry_run:
        render_sync.collector_token(
            {
                "id": None,
                "token": None,
                "developer": developer.strip(),
                "team": team,
                "admin": name == "admin",
                "role": name,
                "dry_run": True,
            },
            as_json,
        )
        return
    store = _store(db, create=True)
    try:
        token_id, token = audit.add_token(
            store, audit.cli_actor(), developer.strip(), team, name, SystemClock().now_ms(), cost_center=cost_center
        )
    finally:
        store.close()
    render_sync.collector_token(
        {
            "id": token_id,
            "token": token,
            "developer": developer.strip(),
            "team": team,
            "cost_center": cost_center,
            "admin": name == "admin",
            "role": name,
        },
        as_json,
    )


@token_app.command("revoke")
@token_app.command("rm", hidden=True)
def token_rm(
    db: Db,
    token_id: Annotated[str | None, typer.Argument(help="The token's id (tok_…), from: token list.")] = None,
    developer: Annotated[str | None, typer.Option(help="Revoke every token of this developer.")] = None,
    dry_run: DryRun = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token; the collector refuses it from the next request on."""
    if bool(token_id) == bool(developer):
        raise UsageError("name one token id or --developer", "see the ids with: agentmeter collector token list")
    store = _store(db)
    try:
        if dry_run:
            n = sum(
                1
                for t in store.tokens()
                if t.get("revoked_at") is None and (t["id"] == token_id or (developer and t["developer"] == developer))
            )
        else:
            from ..collector import audit

            n = audit.revoke(store, audit.cli_actor(), SystemClock().now_ms(), token_id=token_id, developer=developer)
    finally:
        store.close()
    if not n:
        raise NotFoundError(
            f"no active token {token_id or 'for ' + str(developer)}", "see them with: agentmeter collector token list"
        )
    render_sync.revoked({"revoked": n, "dry_run": dry_run}, as_json)


@token_app.command("list")
def token_list(db: Db, as_json: JsonOpt = False) -> None:
    """Tokens with their developer, team and state (never the tokens themselves)."""
    store = _store(db)
    try:
        rows = store.tokens()
    finally:
        store.close()
    render_sync.collector_tokens(rows, as_json)


@app.command()
def report(
    db: Db,
    by: Annotated[
        str,
        typer.Option(
            autocompletion=lambda: [*By, "tag:"],
            metavar="BY",
            help="Group by: developer, team, agent, repo, model, day, subagent (Claude Code sub-agent ids; "
            "'' is the main agent), commit (the commit each session ended on), or tag:KEY (a tag developers "
            "give `agentmeter run --tag KEY=V`); the last three from session line items.",
        ),
    ] = By.developer.value,
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Spend across developers, teams, agents, repos, models, days, sub-agents, end commits or a tag."""
    from ..collector.app import build_report

    if by not in set(By) and not (by.startswith("tag:") and len(by) > 4):
        raise UsageError(f"cannot group by {by!r}", "use one of: " + ", ".join(By) + ", tag:KEY")
    _check_days(since, until)
    store = _store(db)
    try:
        payload = build_report(store, by, since, until)
    finally:
        store.close()
    render_sync.collector_report(payload, as_json)


class ExportFormat(StrEnum):
    focus = "focus"
    audit = "audit"


@app.command()
def export(
    db: Db,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="focus: FOCUS 1.2 CSV; audit: the audit trail (cap changes, tokens issued and revoked) as CSV.",
        ),
    ] = ExportFormat.focus,
    output: Annotated[str | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The FOCUS rows as one JSON document {schema, rows}.")
    ] = False,
) -> None:
    """Every developer's usage as FOCUS 1.2 rows, for the finance tools; or the audit trail."""
    from ..collector import focus

    if fmt is ExportFormat.audit:  # since/until may be times here, not only days
        _export_audit(db, since, until, output, as_json)
        return
    _check_days(since, until)
    store = _store(db)
    try:
        rows = focus.rows(store.focus_source(since, until))
        if as_json:
            from ..render.report import export as write_rows

            write_rows(rows, "json", (), Path(output) if output else None)
            return
        render_sync.focus_csv(rows, output)
    finally:
        store.close()


@caps_app.command("set")
def caps_set(
    db: Db,
    team: Annotated[str | None, typer.Option(help="Caps for everyone on this team.")] = None,
    developer: Annotated[str | None, typer.Option(help="Caps for this developer.")] = None,
    daily: Annotated[float | None, typer.Option(help="USD per day.")] = None,
    weekly: Annotated[float | None, typer.Option(help="USD per week.")] = None,
    monthly: Annotated[float | None, typer.Option(help="USD per month.")] = None,
    daily_tokens: Annotated[int | None, typer.Option(help="Tokens per day.")] = None,
    weekly_tokens: Annotated[int | None, typer.Option(help="Tokens per week.")] = None,
    monthly_tokens: Annotated[int | None, typer.Option(help="Tokens per month.")] = None,
    allow_snooze: Annotated[
        bool,
        typer.Option(
            "--allow-snooze",
            help="Let developers lift these caps for a while "
            "with `agentmeter budget snooze` (off: snoozes leave them in force).",
        ),
    ] = False,
    pooled: Annotated[
        bool,
        typer.Option(
            "--pooled",
            help="With --team: a team wallet, capping the team's spend "
            "added up across its members (not each member's own).",
        ),
    ] = False,
    member: Annotated[
        str | None,
        typer.Option(
            help="With --team --pooled: a sub-cap inside the wallet for this "
            "member ('*': for every member without their own)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be stored; write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace a team's or a developer's caps (no cap flags: remove them). Clients apply the stricter of
    these and their own at their next sync."""
    if bool(team) == bool(developer):
        raise UsageError("name one --team or --developer", "e.g. --team payments --monthly 500")
    values = {
        "daily_usd": daily,
        "weekly_usd": weekly,
        "monthly_usd": monthly,
        "daily_tokens": daily_tokens,
        "weekly_tokens": weekly_tokens,
        "monthly_tokens": monthly_tokens,
    }
    if any(v is not None and v < 0 for v in values.values()):
        raise UsageError("caps cannot be negative", "e.g. --monthly 500")
    if pooled or member is not None:
        from .collector_team import wallet_set

        wallet_set(_store, db, team, member, pooled, values, allow_snooze, dry_run, as_json)
        return
    if dry_run:
        scope = "team" if team else "developer"
        render_sync.collector_caps(
            {
                "caps": [{"scope": scope, "name": team or developer, **values, "allow_snooze": allow_snooze}],
                "dry_run": True,
            },
            as_json,
        )
        return
    store = _store(db, create=True)
    try:
        from ..collector import audit

        audit.set_caps(
            store,
            audit.cli_actor(),
            "team" if team else "developer",
            team or developer,
            {**values, "allow_snooze": allow_snooze},
            SystemClock().now_ms(),
        )
        rows = store.all_caps()
    finally:
        store.close()
    render_sync.collector_caps({"caps": rows}, as_json)


@caps_app.command("show")
def caps_show(db: Db, as_json: JsonOpt = False) -> None:
    """Every team and developer cap the collector hands out."""
    from ..collector import wallet

    store = _store(db)
    try:
        rows, wallets = store.all_caps(), wallet.all_rows(store)
    finally:
        store.close()
    render_sync.collector_caps({"caps": rows, "wallets": wallets}, as_json)
    if wallets and not as_json:
        from ..render import team as render_team

        render_team.wallets({"wallets": wallets}, False)


@app.command("audit")
def audit_cmd(
    db: Db,
    since: Annotated[
        str | None,
        typer.Option(help="From: a date (2026-03-01), an ISO time, or a duration back from now (30m, 12h, 7d, 2w)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to (exclusive): a date, an ISO time or a duration back.")
    ] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's entries.")] = None,
    action: Annotated[
        str | None,
        typer.Option(
            help="Only this action or family: caps, caps.set, wallet, wallet.set, alerts, alerts.set, "
            "alerts.rm, token, token.add, token.revoke, …"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who changed which cap and who issued or revoked which token, when, old and new value: on this command
    line (the OS user) and through the HTTP API (the token and its developer), oldest first."""
    from ..collector import audit
    from ..render import audit as render_audit
    from .audit import point_ms

    now = SystemClock().now_ms()
    store = _store(db)
    try:
        rows = audit.entries(
            store.conn,
            since_ms=point_ms(since, now, "--since"),
            until_ms=point_ms(until, now, "--until"),
            team=team,
            action=action,
        )
    finally:
        store.close()
    render_audit.audit_log("collector_audit", {"team": team, "entries": audit.public(rows)}, as_json)


def _export_audit(db: Path, since: str | None, until: str | None, output: str | None, as_json: bool) -> None:
    from ..collector import audit
    from ..render import audit as render_audit
    from .audit import point_ms

    now = SystemClock().now_ms()
    since_ms, until_ms = point_ms(since, now, "--since"), point_ms(until, now, "--until")
    store = _store(db)
    try:
        rows = audit.public(audit.entries(store.conn, since_ms=since_ms, until_ms=until_ms))
    finally:
        store.close()
    render_audit.audit_export(rows, output, as_json)


def _check_days(*days: str | None) -> None:
    from datetime import date

    for d in days:
        if d is not None:
            try:
                date.fromisoformat(d)
            except ValueError:
                raise UsageError(f"{d!r} is not a date", "write days as YYYY-MM-DD") from None


_team_commands()
