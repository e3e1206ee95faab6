"""agentmeter import claude|codex|gemini|copilot|cursor, agentmeter reconcile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.clock import SystemClock
from ..core.parsing import parse_since
from ..core.timezone import resolve_tz
from ..home.config import load_config
from ..home.paths import get_paths

import_app = typer.Typer(
    help="Usage that did not pass through agentmeter: agents' logs, Cursor's export.", no_args_is_help=True
)

Paths = Annotated[
    list[Path] | None,
    typer.Argument(help="Files or directories (default: where the agent writes).", show_default=False),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Read and report; write nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _open(dry_run: bool):
    from ..ledger import open_ledger

    config = load_config()
    return config, open_ledger(get_paths().ledger, readonly=dry_run, tz=resolve_tz(config.budget.timezone))


def _finish(payload: dict, as_json: bool) -> None:
    from ..proxy import daemon
    from ..render import imports as render_import

    if payload.get("added") and not payload.get("dry_run"):
        info = daemon.status()
        if info.running:  # the daemon caches each day's spend for budget checks: make it re-read them
            try:
                daemon.control("/_agentmeter/v1/reload-totals", {}, info)
            except Exception:
                pass
    render_import.import_result(payload, as_json)
    if payload["unreadable"] and not payload["files_read"]:
        raise SystemExit(1)


def _logs(agent: str, paths: list[Path] | None, dry_run: bool, as_json: bool) -> None:
    from ..importers import import_logs
    from ..render import imports as render_import

    config, ledger = _open(dry_run)
    summary = import_logs(
        agent,
        ledger,
        paths,
        config=config,
        dry_run=dry_run,
        now_ms=SystemClock().now_ms(),
        progress=render_import.progress_bar,
    )
    _finish(summary.as_dict(), as_json)


@import_app.command("claude")
def claude(paths: Paths = None, dry_run: DryRun = False, as_json: AsJson = False) -> None:
    """Claude Code transcripts (~/.claude/projects, CLAUDE_CONFIG_DIR), sub-agents included."""
    _logs("claude", paths, dry_run, as_json)


@import_app.command("codex")
def codex(paths: Paths = None, dry_run: DryRun = False, as_json: AsJson = False) -> None:
    """Codex rollouts (~/.codex/sessions and archived_sessions, CODEX_HOME); forks counted once."""
    _logs("codex", paths, dry_run, as_json)


@import_app.command("gemini")
def gemini(paths: Paths = None, dry_run: DryRun = False, as_json: AsJson = False) -> None:
    """Gemini CLI session logs (~/.gemini/tmp/*/chats, GEMINI_CLI_HOME); live-metered responses counted once."""
    _logs("gemini", paths, dry_run, as_json)


@import_app.command("copilot")
def copilot(paths: Paths = None, dry_run: DryRun = False, as_json: AsJson = False) -> None:
    """Copilot CLI session logs (~/.copilot/session-state, COPILOT_HOME), Copilot-hosted models included."""
    _logs("copilot", paths, dry_run, as_json)


@import_app.command("cursor")
def cursor(
    csv_files: Annotated[
        list[Path] | None, typer.Argument(help="Usage CSV exported from cursor.com/dashboard.", show_default=False)
    ] = None,
    api: Annotated[
        bool, typer.Option("--api", help="Also read the team Admin API (key in AGENTMETER_CURSOR_ADMIN_KEY).")
    ] = False,
    since: Annotated[str, typer.Option(help="How far back the Admin API is read: 30d, 2w, …")] = "30d",
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Cursor's usage export (and the team Admin API), attributed to `run cursor` sessions by time."""
    from ..core.errors import UsageError
    from ..importers import cursor as cursor_source
    from ..importers import import_cursor

    key = cursor_source.admin_key() if api else None
    if api and not key:
        raise UsageError("no Cursor admin key", "export AGENTMETER_CURSOR_ADMIN_KEY=<key from cursor.com/dashboard>")
    if not csv_files and not api:
        raise UsageError("nothing to import", "pass the CSV from cursor.com/dashboard → Usage → Export, or --api")
    now = SystemClock().now_ms()
    delta = parse_since(since)
    config, ledger = _open(dry_run)
    summary = import_cursor(
        ledger,
        csv_files or [],
        config=config,
        dry_run=dry_run,
        now_ms=now,
        api_key=key,
        api_since_ms=now - int(delta.total_seconds() * 1000) if delta else None,
    )
    _finish(summary.as_dict(), as_json)


def reconcile(
    session: Annotated[str | None, typer.Option(help="One session (agentmeter or agent session id).")] = None,
    since: Annotated[str, typer.Option(help="How far back: 7d, 12h, …")] = "30d",
    as_json: AsJson = False,
) -> None:
    """Proxy figures against the agents' own logs, per session and day, with the known causes of differences."""
    from ..commands.reconcile import reconcile as run
    from ..core.clock import ms_to_iso
    from ..render import imports as render_import

    delta = parse_since(since)
    since_ms = SystemClock().now_ms() - int(delta.total_seconds() * 1000) if delta else None
    _config, ledger = _open(True)
    payload = run(ledger, since_ms=since_ms, session=session)
    render_import.reconcile_result({"since": ms_to_iso(since_ms), **payload}, as_json)
