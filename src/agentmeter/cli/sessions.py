"""agentmeter sessions, agentmeter session show."""

from __future__ import annotations

from typing import Annotated

import typer

from ..commands.views import request_view, session_view
from ..core.clock import SystemClock
from ..core.errors import NotFoundError
from ..core.parsing import parse_since
from ..home.paths import get_paths
from ..ledger import open_ledger
from ..plan.view import session_shares
from ..render import sessions as render_sessions

session_app = typer.Typer(help="One session, turn by turn.", no_args_is_help=True)


def sessions(
    since: Annotated[str | None, typer.Option(help="Only sessions started in the last 7d, 12h, …")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sessions with their requests, tokens by bucket and cost."""
    delta = parse_since(since)
    since_ms = None if delta is None else SystemClock().now_ms() - int(delta.total_seconds() * 1000)
    ledger = open_ledger(get_paths().ledger, readonly=True)
    rows = [session_view(r) for r in ledger.sessions(since_ms=since_ms)]
    plan = _plan(ledger)
    for row in rows:
        row["plan_shares"] = session_shares(plan, row["id"])
    render_sessions.sessions_table(rows, as_json)


@session_app.command("show")
def show(
    session_id: Annotated[str, typer.Argument(help="Session id (a unique prefix is enough).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every request of a session: model requested and used, tokens, cost, decision."""
    ledger = open_ledger(get_paths().ledger, readonly=True)
    found = ledger.get_session(session_id)
    if found is None:
        raise NotFoundError(f"no session {session_id!r}", "list them with: agentmeter sessions")
    row = ledger.sessions(session_id=found["id"])[0]
    # The contract: the session's fields plus `requests` as the list of its requests.
    detail = {**session_view(row), "requests": [request_view(r) for r in ledger.session_requests(found["id"])]}
    detail["plan_shares"] = session_shares(_plan(ledger), found["id"])  # "used 12 % of your 5-hour window"
    render_sessions.session_detail(detail, as_json)


def _plan(ledger) -> list[dict]:
    from ..ledger.plan import plan_section

    return plan_section(ledger.conn, SystemClock().now_ms() / 1000)
