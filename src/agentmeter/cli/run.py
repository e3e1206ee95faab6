"""The typer face of `agentmeter run`, for --help and completions; the work is in agentmeter.launch.run."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..launch.run import run_main


def run(
    agent: Annotated[str, typer.Argument(help="claude, codex, cursor, gemini, aider, opencode — or -- CMD")],
    args: Annotated[list[str] | None, typer.Argument(help="Passed to the agent unchanged.")] = None,
    budget: Annotated[float | None, typer.Option(help="A USD cap for this run.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="K=V attached to the session (repeatable).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on exit.")] = False,
    no_downgrade: Annotated[bool, typer.Option("--no-downgrade", help="Never use a cheaper model.")] = False,
    unmetered_on_error: Annotated[bool, typer.Option(
        "--unmetered-on-error", hidden=True,
        help="If agentmeter cannot start (home, config, proxy), run the agent unmetered (the shell hooks)."),
    ] = False,
) -> None:
    """Run an agent with every request metered in a session: agentmeter run claude [ARGS…].

    The agent gets the terminal, the signals and the exit code; a one-line summary follows on stderr.
    --budget, --tag and --no-downgrade may also follow the agent name (no agent defines them); every other
    argument after it goes to the agent. An agent that exits with an error before any request leaves no session.
    """
    raise SystemExit(run_main(sys.argv[sys.argv.index("run") + 1 :] if "run" in sys.argv else [agent, *(args or [])]))


