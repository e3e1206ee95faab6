"""The typer face of `agentmeter run` (help, completions, in-process calls); cli.args.parse_run parses it.

agentmeter.launch.run does the work.

click cannot parse `run` as agentmeter means it (everything after the agent is the agent's, and `run -- CMD`
differs from `run CMD`), so the command keeps the arguments it was given, before click reads them, and hands
them to that parser: the same reading as the fast path, whatever argv the process was started with.
"""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperCommand

from .args import parse_run

RAW_ARGS = "agentmeter.raw_args"


class RawArgsCommand(TyperCommand):
    """A command that keeps its unparsed arguments in `ctx.meta[RAW_ARGS]`."""

    def parse_args(self, ctx, args):
        ctx.meta[RAW_ARGS] = list(args)
        return super().parse_args(ctx, args)


def run(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(help="claude, codex, cursor, gemini, aider, opencode — or -- CMD")],
    args: Annotated[list[str] | None, typer.Argument(help="Passed to the agent unchanged.")] = None,
    budget: Annotated[float | None, typer.Option(help="A USD cap for this run.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="K=V attached to the session (repeatable).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on exit.")] = False,
    no_downgrade: Annotated[bool, typer.Option("--no-downgrade", help="Never use a cheaper model.")] = False,
    unmetered_on_error: Annotated[
        bool,
        typer.Option(
            "--unmetered-on-error",
            hidden=True,
            help="If agentmeter cannot start (home, config, proxy), run the agent unmetered (the shell hooks).",
        ),
    ] = False,
) -> None:
    """Run an agent with every request metered in a session: agentmeter run claude [ARGS…].

    The agent gets the terminal, the signals and the exit code; a one-line summary follows on stderr.
    --budget, --tag and --no-downgrade may also follow the agent name (no agent defines them); every other
    argument after it goes to the agent. An agent that exits with an error before any request leaves no session.
    """
    from .fast import run_run

    raise SystemExit(run_run(parse_run(ctx.meta[RAW_ARGS])))
