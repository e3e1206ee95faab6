"""agentmeter report, agentmeter export."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ..commands import export as exports
from ..commands import report as reports
from ..core.clock import SystemClock
from ..core.timezone import resolve_tz
from ..home.config import load_config
from ..home.paths import get_paths
from ..ledger import open_ledger
from ..render import report as render_report
from . import fast
from .args import REPORT_FORMATS, ReportArgs, report_by

By = StrEnum("By", {name: name for name in report_by()})  # type: ignore[misc]
ReportFormat = StrEnum("ReportFormat", {name: name for name in REPORT_FORMATS})  # type: ignore[misc]


def _check_by(value: str) -> str:
    """One of report_by(), or tag:KEY (any KEY): typer has no open choice type, so --by is checked here."""
    if (value in report_by() and value != "tag") or (value.startswith("tag:") and value[4:].strip()):
        return value
    raise typer.BadParameter(
        f"{value!r} is not one of {', '.join(b for b in report_by() if b != 'tag')}, tag:KEY (e.g. tag:ticket)"
    )


class ExportFormat(StrEnum):
    focus = "focus"
    csv = "csv"
    jsonl = "jsonl"


Since = Annotated[str | None, typer.Option(help="Start: a date (2025-03-01), today, or 30d / 2w (whole local days).")]
Until = Annotated[str | None, typer.Option(help="End, exclusive: a date or a duration back from today.")]


def report(
    ctx: typer.Context,
    by: Annotated[
        str,
        typer.Option(
            autocompletion=report_by,
            metavar="BY",
            callback=_check_by,
            help="Group rows by: day, week, month, agent, model, repo, branch, session, "
            "subagent (Claude Code sub-agents; empty: the main agent), commit (the commit "
            "each session ended on), or tag:KEY (a --tag given to run).",
        ),
    ] = "day",
    since: Since = "30d",
    until: Until = None,
    tz: Annotated[str | None, typer.Option(help="Time zone for days (default: the budget timezone in config).")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.table,
    chart: Annotated[bool, typer.Option(help="Also draw daily spend with the daily cap (table format).")] = False,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the same as --format json).")] = False,
    commits: Annotated[
        str | None,
        typer.Option(
            metavar="A..B",
            help="Only sessions that ended on a commit in "
            "this git range (of the repository here), e.g. main..feature "
            "or v1.2..HEAD; one commit alone is that commit.",
        ),
    ] = None,
) -> None:
    """Spend and tokens by day, week, month, agent, model, repo, branch, session, subagent, commit or tag:KEY."""
    fast.run_report(ReportArgs.of(**ctx.params))


def export(
    fmt: Annotated[
        ExportFormat | None, typer.Option("--format", help="focus: FOCUS 1.2 cost rows; csv/jsonl: requests.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    since: Since = None,
    until: Until = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="One JSON document {schema, rows}: requests, or FOCUS rows with --format focus."),
    ] = False,
) -> None:
    """Export the ledger: FOCUS 1.2 (one row per day × model × token type) or every request as CSV/JSONL/JSON."""
    from ..core.errors import UsageError

    if fmt is None and not as_json:
        raise UsageError("say which format", "e.g. agentmeter export --format focus, --format csv, or --json")
    fmt = fmt or ExportFormat.jsonl
    config = load_config()
    tz = resolve_tz(config.budget.timezone)
    window = reports.report_window(since, until, tz, SystemClock().now())
    ledger = open_ledger(get_paths().ledger, readonly=True, tz=tz)
    if fmt is ExportFormat.focus:
        tally = exports.Tally("BilledCost", "ListCost")
        rows, columns, kind = exports.focus_rows(ledger, window, config), exports.FOCUS_COLUMNS, "csv"
    else:
        tally = exports.Tally("cost_usd")
        rows, columns, kind = exports.request_rows(ledger, window), exports.EXPORT_COLUMNS, fmt.value
    kind = "json" if as_json else kind
    render_report.export(tally.wrap(rows), kind, columns, output)
    render_report.export_summary(fmt.value, tally, output)
